-- The lab's machines and jobs, for the orchestrator.
--
-- Machines are synchronised from lab.toml when a daemon starts; a machine
-- that left the file keeps its row (its history) with in_lab = 0. A
-- machine's *state* (what it does) is kept apart from its *health*
-- (whether it may be used), each with its reason and since when.
--
-- A job's columns are its lifecycle state (harness/src/lifecycle/job.rs)
-- flattened: every transition is one guarded UPDATE that compares the
-- columns the transition read (state, attempt, lease owner and expiry), so
-- two orchestrators can never both apply a transition to the same state.
-- Portable as the other migrations: TEXT ids and timestamps (fixed-width
-- RFC 3339 UTC), BIGINT integers, TEXT JSON.

CREATE TABLE machines (
    name           TEXT NOT NULL PRIMARY KEY,
    arch           TEXT NOT NULL,
    family         TEXT,
    pool           TEXT,
    tags_json      TEXT NOT NULL,
    in_lab         BIGINT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('idle', 'leased', 'running', 'offline')),
    state_reason   TEXT,
    state_since    TEXT NOT NULL,
    job_id         TEXT,
    run_id         TEXT,
    health         TEXT NOT NULL CHECK (health IN ('good', 'unknown', 'bad', 'maintenance', 'retired')),
    health_reason  TEXT,
    health_since   TEXT NOT NULL,
    infra_failures BIGINT NOT NULL
);

CREATE TABLE jobs (
    id                TEXT NOT NULL PRIMARY KEY,
    plan              TEXT NOT NULL,
    plan_version      TEXT NOT NULL,
    plan_digest       TEXT NOT NULL,
    -- The plan's text when it was submitted as a file, so any daemon can run it.
    plan_text         TEXT,
    requirements_json TEXT NOT NULL,
    priority          BIGINT NOT NULL CHECK (priority BETWEEN 0 AND 100),
    submitter         TEXT NOT NULL,
    submitted         TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('queued', 'leased', 'running', 'finished', 'failed', 'cancelled')),
    state_since       TEXT NOT NULL,
    attempt           BIGINT NOT NULL,
    machine           TEXT,
    lease_owner       TEXT,
    lease_until       TEXT,
    run_id            TEXT,
    resume_run        TEXT,
    resume_machine    TEXT,
    started           TEXT,
    finished          TEXT,
    waiting_reason    TEXT,
    error             TEXT
);

CREATE INDEX jobs_state_idx ON jobs (state, priority, submitted);
CREATE INDEX jobs_lease_idx ON jobs (lease_until);

-- Orchestrator processes, with their heartbeats: a lease whose owner
-- stopped beating is reclaimed by another daemon once it expires.
CREATE TABLE daemons (
    id        TEXT NOT NULL PRIMARY KEY,
    host      TEXT NOT NULL,
    pid       BIGINT NOT NULL,
    started   TEXT NOT NULL,
    heartbeat TEXT NOT NULL,
    stopped   TEXT
);
