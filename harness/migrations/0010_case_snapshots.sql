-- The before-snapshot of a case that reboots the machine (reboot.warm/cold,
-- kdump.crash, watchdog.reset): what the check's `before` noted, the boot
-- it noted it on, where the BMC's event log stood, and the evidence of that
-- phase (artifact references into the run's evidence directory). Written
-- before the machine is taken down, so an orchestrator that dies between
-- `before` and `after` leaves the run resumable from it: the next attempt
-- sees the boot changed and runs `after` against this snapshot instead of
-- taking a new one on the new boot and rebooting again. One row per case
-- of a run; a later `before` of the same case (a retry) replaces it.

CREATE TABLE case_snapshots (
    run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    case_id       TEXT NOT NULL,
    boot_id       TEXT NOT NULL,
    sel_mark      TEXT,
    snapshot_json TEXT NOT NULL,
    evidence_json TEXT NOT NULL,
    created       TEXT NOT NULL,
    PRIMARY KEY (run_id, case_id)
);
