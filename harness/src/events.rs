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

/// A step of a job under the orchestrator, around its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStep {
    /// The health gate (BMC answers, no critical SEL entry since the
    /// machine's last job) and power: SSH answers, or the machine is
    /// powered on through its BMC and waited for.
    Prepare,
    /// The machine's `[machine.provision]` hook (boot override, command).
    Provision,
    /// The BMC's event log over the run, kept with the run.
    Sweep,
    /// The machine's power policy applied; its SEL position noted.
    Release,
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
    /// The machine booted again: within a case that declares
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
    /// A job step begins: logged before it acts.
    StepStarted {
        step: JobStep,
    },
    /// The machine passed its health gate and answers; `note` says what
    /// it took (powered on through the BMC, …).
    Prepared {
        note: String,
    },
    /// The provisioning hook ran: its exit status (`None`: killed or timed
    /// out) and the tail of its output.
    Provisioned {
        command: String,
        boot: Option<String>,
        exit: Option<i32>,
        output: String,
    },
    /// The BMC's event log over the run (`entries`, of which `critical`)
    /// was kept as the run's `bmc` evidence; `error` when it could not be
    /// read.
    Swept {
        entries: usize,
        critical: usize,
        error: Option<String>,
    },
    /// The machine's power policy was applied: `action` says what was done.
    Released {
        policy: String,
        action: String,
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
            RunEvent::StepStarted { .. } => "step_started",
            RunEvent::Prepared { .. } => "prepared",
            RunEvent::Provisioned { .. } => "provisioned",
            RunEvent::Swept { .. } => "swept",
            RunEvent::Released { .. } => "released",
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
