-- KABI allowlists per OS release and architecture, uploaded by admins.
-- `allowlist_json` is certlab's own format (whatever format was uploaded,
-- imported); `symvers` the Module.symvers text a driver is checked against:
-- the release's own when one was uploaded, else the lines of the
-- allowlist's recorded CRCs (NULL when it has none). `id` is
-- `<release>/<arch>`, the subject of its transparency log entries.
CREATE TABLE portal_kabi (
    id TEXT PRIMARY KEY,
    release TEXT NOT NULL,
    arch TEXT NOT NULL,
    source_format TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    symbols BIGINT NOT NULL,
    allowlist_json TEXT NOT NULL,
    symvers TEXT,
    symvers_sha256 TEXT,
    updated TEXT NOT NULL,
    updated_by TEXT NOT NULL
);
