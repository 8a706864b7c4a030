-- SSH host keys trusted on first use, per machine: later connections pin
-- the recorded key, so a changed key is refused instead of trusted again.

CREATE TABLE ssh_host_keys (
    machine    TEXT NOT NULL PRIMARY KEY,
    address    TEXT NOT NULL,
    host_key   TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
