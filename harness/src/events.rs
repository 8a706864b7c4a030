//! The one closed set of things a run reports while it happens.
//!
//! The runner never prints: it emits [`RunEvent`]s to a callback. The
//! terminal display, the JSON output and the store's event log are
//! separate consumers.

use serde::Serialize;
use std::time::Duration;

use certlab_reports::{CaseResult, Summary};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Discover,
    Select,
    Execute,
    Publish,
    Finished,
}

/// Something that happened in a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        run_id: String,
        plan_id: String,
        plan_version: String,
        target: String,
        out_dir: String,
    },
    StageChanged {
        stage: Stage,
    },
    /// Discovery finished; `notes` say which facts could not be collected.
    Discovered {
        hostname: String,
        kernel: String,
        cpu: String,
        family: String,
        facts: usize,
        notes: Vec<String>,
    },
    /// The plan's cases were matched against the machine.
    Selected {
        selected: usize,
        skipped: usize,
    },
    /// The run continues an earlier attempt: these cases' recorded
    /// results are kept and not run again.
    Resumed {
        kept: Vec<String>,
    },
    CaseStarted {
        index: usize,
        total: usize,
        id: String,
        title: String,
    },
    CaseFinished {
        index: usize,
        total: usize,
        result: Box<CaseResult>,
    },
    /// The machine booted again: before a case that declares
    /// `reboots = true` (`declared`), or after a crash.
    Rebooted {
        index: usize,
        id: String,
        boot_id: String,
        declared: bool,
    },
    /// A case met an infrastructure error and is tried again (`attempt`
    /// counts from 1; this is the attempt about to start).
    CaseRetried {
        index: usize,
        id: String,
        attempt: u32,
        error: String,
    },
    /// Outputs written.
    Published {
        results: String,
        junit: String,
        html: String,
        bundle: String,
        key_id: String,
    },
    RunFinished {
        summary: Summary,
        #[serde(with = "duration_ms")]
        elapsed: Duration,
    },
}

impl RunEvent {
    /// The event's kind, as stored in the event log.
    pub fn kind(&self) -> &'static str {
        match self {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::StageChanged { .. } => "stage_changed",
            RunEvent::Discovered { .. } => "discovered",
            RunEvent::Selected { .. } => "selected",
            RunEvent::Resumed { .. } => "resumed",
            RunEvent::CaseStarted { .. } => "case_started",
            RunEvent::CaseFinished { .. } => "case_finished",
            RunEvent::CaseRetried { .. } => "case_retried",
            RunEvent::Rebooted { .. } => "rebooted",
            RunEvent::Published { .. } => "published",
            RunEvent::RunFinished { .. } => "run_finished",
        }
    }
}

mod duration_ms {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}
