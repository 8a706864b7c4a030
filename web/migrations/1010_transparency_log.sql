-- The transparency log: one row per state change of a submission or a
-- certification, appended by PortalStore::record_change in the transaction
-- that makes the change. `entry` is the reports::tlog LogEntry in canonical
-- JSON, exactly the bytes its leaf hash covers; `seq` is its index, from 0.
-- Numbered 1010: 1003-1009 are left for the portal's own tables, 1020 and up
-- for the lab dashboard's.
CREATE TABLE portal_log (
    seq BIGINT PRIMARY KEY,
    entry TEXT NOT NULL,
    leaf_hash TEXT NOT NULL
);
