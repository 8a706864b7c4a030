-- SSH host keys are recorded per machine *and* address (`host:port`, as
-- certlab connects): a machine that moves is a new host to trust, and the
-- key recorded for one address never vouches for another.
--
-- Rows recorded before this migration keep their address as it was
-- written then (the host without its port); they match again only if a
-- machine's lab.toml address is written the same way, so such a machine is
-- trusted on first use once more and recorded under its `host:port`.

CREATE TABLE ssh_known_hosts (
    machine    TEXT NOT NULL,
    address    TEXT NOT NULL,
    host_key   TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (machine, address)
);

INSERT INTO ssh_known_hosts (machine, address, host_key, first_seen)
    SELECT machine, address, host_key, first_seen FROM ssh_host_keys;

DROP TABLE ssh_host_keys;
