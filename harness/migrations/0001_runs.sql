-- The lab store's runs, their case results and their event log.
--
-- Portable between SQLite and PostgreSQL: ids are app-generated TEXT (UUIDs),
-- integers are BIGINT, timestamps are TEXT in fixed-width RFC 3339 UTC
-- (`2024-05-01T12:00:00.000000000Z`, so text order is time order), and JSON
-- payloads are TEXT. Released migrations are never edited: add a new file.

CREATE TABLE runs (
    id               TEXT NOT NULL PRIMARY KEY,
    plan_id          TEXT NOT NULL,
    plan_version     TEXT NOT NULL,
    plan_digest      TEXT NOT NULL,
    target           TEXT NOT NULL,
    hostname         TEXT NOT NULL,
    kernel           TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('running', 'finished', 'interrupted')),
    outcome          TEXT CHECK (outcome IN ('pass', 'fail', 'error')),
    n_pass           BIGINT NOT NULL DEFAULT 0,
    n_fail           BIGINT NOT NULL DEFAULT 0,
    n_skip           BIGINT NOT NULL DEFAULT 0,
    n_error          BIGINT NOT NULL DEFAULT 0,
    n_crash          BIGINT NOT NULL DEFAULT 0,
    started          TEXT NOT NULL,
    finished         TEXT,
    interrupt_reason TEXT,
    out_dir          TEXT,
    record_json      TEXT
);

CREATE INDEX runs_started_idx ON runs (started);

CREATE TABLE case_results (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    case_id     TEXT NOT NULL,
    title       TEXT NOT NULL,
    verdict     TEXT NOT NULL CHECK (verdict IN ('pass', 'fail', 'skip', 'error', 'crash')),
    reason      TEXT NOT NULL,
    started     TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    result_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq),
    UNIQUE (run_id, case_id)
);

CREATE TABLE run_events (
    run_id       TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    at           TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
