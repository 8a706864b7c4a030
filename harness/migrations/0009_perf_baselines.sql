-- Performance baselines: the samples of a performance case's metric that
-- later runs are compared with, for one machine (scope `machine`, key: its
-- name in the lab; a local run's `local:HOSTNAME`) or for every machine of a
-- platform (scope `platform`, key: suites::perf::platform_key — system
-- vendor and product, CPU family and model). Setting a baseline adds one row
-- per metric of each case, all with the same `created`; rows are never
-- changed, and a case's newest set for a (scope, key) is the one in force.
-- `metric` is the name the case records (without the case id); samples are
-- a JSON array of numbers. No reference to runs: a baseline outlives its run.

CREATE TABLE perf_baselines (
    id           TEXT NOT NULL PRIMARY KEY,
    scope        TEXT NOT NULL CHECK (scope IN ('machine', 'platform')),
    scope_key    TEXT NOT NULL,
    case_id      TEXT NOT NULL,
    metric       TEXT NOT NULL,
    unit         TEXT NOT NULL,
    direction    TEXT NOT NULL CHECK (direction IN ('higher', 'lower')),
    samples_json TEXT NOT NULL,
    source_run   TEXT NOT NULL,
    created      TEXT NOT NULL,
    kernel       TEXT NOT NULL,
    plan_id      TEXT NOT NULL,
    plan_version TEXT NOT NULL
);

CREATE INDEX perf_baselines_case_idx ON perf_baselines (scope, scope_key, case_id, created);
