-- Where each machine's BMC event log (SEL) stood after its last job: the
-- health gate before the next job judges only what came after it. NULL
-- until the orchestrator first reads it (that first reading is the
-- baseline, not judged).

ALTER TABLE machines ADD COLUMN sel_cursor TEXT;
