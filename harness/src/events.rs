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

/// One line saying what a stored event (its kind and payload, as in the
/// event log) says: what `certlab job logs` prints and the lab dashboard
/// shows. Kinds it does not know are shown as their JSON.
pub fn summary(kind: &str, e: &serde_json::Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
    match kind {
        "run_started" => format!(
            "plan {} {} on {}",
            s("plan_id"),
            s("plan_version"),
            s("target")
        ),
        "stage_changed" => s("stage"),
        "discovered" => format!(
            "{}: {} `{}`, kernel {}",
            s("hostname"),
            s("family"),
            s("cpu"),
            s("kernel")
        ),
        "selected" => format!("{} selected, {} do not apply", e["selected"], e["skipped"]),
        "resumed" => format!(
            "{} case(s) kept from an earlier attempt",
            e["kept"].as_array().map_or(0, Vec::len)
        ),
        "case_started" => format!("{} {}", s("id"), s("title")),
        "case_finished" => {
            let r = &e["result"];
            format!(
                "{} {} {}",
                r["id"].as_str().unwrap_or_default(),
                r["verdict"].as_str().unwrap_or_default(),
                r["reason"].as_str().unwrap_or_default()
            )
        }
        "case_retried" => format!("{} attempt {}: {}", s("id"), e["attempt"], s("error")),
        "rebooted" => format!(
            "{} boot {} ({})",
            s("id"),
            s("boot_id"),
            if e["declared"] == serde_json::Value::Bool(true) {
                "declared"
            } else {
                "after a crash"
            }
        ),
        "published" => format!("bundle {}", s("bundle")),
        "run_finished" => format!(
            "{} — {} pass, {} fail, {} skip, {} error",
            e["summary"]["outcome"].as_str().unwrap_or_default(),
            e["summary"]["pass"],
            e["summary"]["fail"],
            e["summary"]["skip"],
            e["summary"]["error"]
        ),
        "step_started" => s("step"),
        "prepared" => s("note"),
        "released" => format!("{}: {}", s("policy"), s("action")),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary of an event is made from the event as the log stores it.
    #[test]
    fn summaries_read_the_stored_payload() {
        let stored = |ev: &RunEvent| serde_json::to_value(ev).unwrap();
        let ev = RunEvent::CaseStarted {
            index: 1,
            total: 3,
            id: "cpu.online".into(),
            title: "All CPUs online".into(),
        };
        assert_eq!(
            summary(ev.kind(), &stored(&ev)),
            "cpu.online All CPUs online"
        );
        let ev = RunEvent::Released {
            policy: "off".into(),
            action: "powered off".into(),
        };
        assert_eq!(summary(ev.kind(), &stored(&ev)), "off: powered off");
        let ev = RunEvent::StepStarted {
            step: JobStep::Prepare,
        };
        assert_eq!(summary(ev.kind(), &stored(&ev)), "prepare");
        let odd = serde_json::json!({"x": 1});
        assert_eq!(summary("from_a_newer_version", &odd), r#"{"x":1}"#);
    }
}
