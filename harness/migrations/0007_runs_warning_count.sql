-- Warnings: a failed case that is not a blocker (results.json schema
-- version 2). It no longer counts in n_fail, and a run whose only failures
-- are warnings has the outcome 'pass'. Rows written before this migration
-- keep their counts: there every failure counted in n_fail.

ALTER TABLE runs ADD COLUMN n_warning BIGINT NOT NULL DEFAULT 0;
