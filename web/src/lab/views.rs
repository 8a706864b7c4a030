//! What the dashboard and the lab API show: views made from the lab store's
//! rows (`certlab_harness`), with the links between them.

use certlab_harness::lifecycle::MachineState;
use certlab_harness::{JobRow, MachineRow, RunRow, StoredEvent};
use serde::Serialize;
use time::OffsetDateTime;

use crate::AppState;

fn ts(t: OffsetDateTime) -> String {
    crate::store::ts(t)
}

/// A machine: what it does (state) apart from whether it may be used (health).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MachineView {
    pub name: String,
    pub arch: String,
    pub family: Option<String>,
    pub pool: Option<String>,
    pub tags: Vec<String>,
    /// Still described in the lab's inventory.
    pub in_lab: bool,
    /// `idle`, `leased`, `running` or `offline`.
    pub state: &'static str,
    /// Why it is offline.
    pub state_reason: Option<String>,
    pub state_since: String,
    /// `good`, `unknown`, `bad`, `maintenance` or `retired`.
    pub health: &'static str,
    pub health_reason: Option<String>,
    pub health_since: String,
    /// The job it is leased to or runs.
    pub job: Option<String>,
    /// The run it runs.
    pub run: Option<String>,
    pub run_url: Option<String>,
    /// Consecutive jobs on it that ended in infrastructure faults.
    pub infra_failures: u32,
}

impl MachineView {
    pub fn new(state: &AppState, m: &MachineRow) -> MachineView {
        let (job, run, reason) = match &m.state {
            MachineState::Idle => (None, None, None),
            MachineState::Leased { job } => (Some(job.clone()), None, None),
            MachineState::Running { job, run } => (Some(job.clone()), Some(run.clone()), None),
            MachineState::Offline { reason } => (None, None, Some(reason.clone())),
        };
        MachineView {
            name: m.facts.name.clone(),
            arch: m.facts.arch.clone(),
            family: m.facts.family.clone(),
            pool: m.facts.pool.clone(),
            tags: m.facts.tags.clone(),
            in_lab: m.in_lab,
            state: m.state.name(),
            state_reason: reason,
            state_since: ts(m.state_since),
            health: m.health.name(),
            health_reason: m.health.reason().map(str::to_string),
            health_since: ts(m.health.since()),
            job,
            run_url: run.as_deref().map(|r| run_link(state, r)),
            run,
            infra_failures: m.infra_failures,
        }
    }
}

/// A job in the orchestrator's queue, or done.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: String,
    /// `queued`, `leased`, `running`, `finished`, `failed` or `cancelled`.
    pub state: &'static str,
    pub state_since: String,
    pub plan: String,
    pub plan_version: String,
    /// `name=…`, `KEY=VALUE,…`, or `any machine`.
    pub requirements: String,
    pub submitter: String,
    /// 0–100, higher first.
    pub priority: u8,
    pub attempt: u32,
    /// The machine it is on or finished on.
    pub machine: Option<String>,
    pub submitted: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Why a queued job waits, as the scheduler last saw it.
    pub waiting_reason: Option<String>,
    /// The failure, the cancellation reason, or a queued job's last error.
    pub error: Option<String>,
    /// The run it runs, ran, or will resume.
    pub run: Option<String>,
    pub run_url: Option<String>,
}

impl JobView {
    pub fn new(state: &AppState, j: &JobRow) -> JobView {
        JobView {
            id: j.id.clone(),
            state: j.state.kind().as_str(),
            state_since: ts(j.state_since),
            plan: j.plan.clone(),
            plan_version: j.plan_version.clone(),
            requirements: j.requirements.to_string(),
            submitter: j.submitter.clone(),
            priority: j.priority,
            attempt: j.state.attempt(),
            machine: j.machine().map(str::to_string),
            submitted: ts(j.submitted),
            started: j.started.map(ts),
            finished: j.finished().map(ts),
            waiting_reason: j.waiting_reason.clone(),
            error: j.error().map(str::to_string),
            run: j.run_id().map(str::to_string),
            run_url: j.run_id().map(|r| run_link(state, r)),
        }
    }
}

/// A run on a lab machine (or of `certlab certify` on the same store).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunView {
    pub id: String,
    pub plan: String,
    pub plan_version: String,
    /// The machine's name in the lab inventory.
    pub target: String,
    pub hostname: String,
    pub kernel: String,
    /// `running`, `finished` or `interrupted`.
    pub state: &'static str,
    /// `pass` or `fail`, once finished.
    pub outcome: Option<&'static str>,
    pub pass: u32,
    pub fail: u32,
    pub warning: u32,
    pub skip: u32,
    pub error: u32,
    pub crash: u32,
    pub started: String,
    pub finished: Option<String>,
    pub interrupt_reason: Option<String>,
    /// The run's page on the dashboard.
    pub url: String,
    /// Its stored events (JSON).
    pub events_url: String,
    /// Its events as server-sent events, stored then live.
    pub stream_url: String,
}

impl RunView {
    pub fn new(state: &AppState, r: &RunRow) -> RunView {
        RunView {
            id: r.id.clone(),
            plan: r.plan_id.clone(),
            plan_version: r.plan_version.clone(),
            target: r.target.clone(),
            hostname: r.hostname.clone(),
            kernel: r.kernel.clone(),
            state: r.state.as_str(),
            outcome: r.outcome.map(|o| o.as_str()),
            pass: r.pass,
            fail: r.fail,
            warning: r.warning,
            skip: r.skip,
            error: r.error,
            crash: r.crash,
            started: ts(r.started),
            finished: r.finished.map(ts),
            interrupt_reason: r.interrupt_reason.clone(),
            url: run_link(state, &r.id),
            events_url: state.link(&format!("/api/v1/lab/runs/{}/events", r.id)),
            stream_url: state.link(&format!("/api/v1/lab/runs/{}/events/stream", r.id)),
        }
    }
}

/// One entry of a run's event log: the `RunEvent` as stored, with its
/// sequence number (the SSE event id) and time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub seq: u64,
    pub at: String,
    /// `run_started`, `case_finished`, `step_started`, …
    pub kind: String,
    /// What the event says, in one line.
    pub summary: String,
    /// The event as stored (`event`: its kind, `v`: the stored format's version).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

impl EventView {
    pub fn new(e: &StoredEvent) -> EventView {
        EventView {
            seq: e.seq,
            at: ts(e.at),
            kind: e.kind.clone(),
            summary: certlab_harness::events::summary(&e.kind, &e.payload),
            event: e.payload.clone(),
        }
    }
}

fn run_link(state: &AppState, run: &str) -> String {
    state.link(&format!("/lab/runs/{run}"))
}
