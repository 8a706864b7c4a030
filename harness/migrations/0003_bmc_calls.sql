-- Every BMC call (one row per attempt), so the lab can judge a BMC's health
-- later: which operation, when, how long it took and how it ended.
--
-- `machine` is the machine's name in the lab inventory; `started` is a TEXT
-- timestamp in the store's fixed-width RFC 3339 UTC format; `outcome` is
-- `ok`, `retryable` or `fatal` (a failed attempt, by its error class), or
-- `circuit_open` (refused locally by the circuit breaker); `error_kind` and
-- `error` (the message, which never carries a credential) are set for every
-- outcome but `ok`.

CREATE TABLE bmc_calls (
    machine    TEXT NOT NULL,
    operation  TEXT NOT NULL,
    attempt    BIGINT NOT NULL,
    started    TEXT NOT NULL,
    latency_ms BIGINT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('ok', 'retryable', 'fatal', 'circuit_open')),
    error_kind TEXT,
    error      TEXT,
    PRIMARY KEY (machine, started, operation, attempt)
);
