//! The orchestrator loop: queued jobs are matched to healthy idle
//! machines, leased, and run by workers; leases are kept alive by
//! heartbeats; a job whose holder died is taken over once its lease
//! expires and resumes its run.
//!
//! Every decision is a pure transition ([`crate::lifecycle`]) persisted by
//! the store with a guarded update *before* anything acts on it, so several
//! daemons can share one store (PostgreSQL) and any of them can die at any
//! instant without a job being lost or run twice. A worker's writes of
//! its run are fenced by its lease ([`Store::fenced`]): a daemon that
//! stalled past its lease cannot write a run another daemon took over.
//!
//! Scheduling is driven by events: a worker ending, a health check passing
//! and a shutdown wake the loop at once; submissions by other processes and
//! expired leases are noticed by a short poll (`poll`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use certlab_lab::Target;
use certlab_suites::Plan;
use ed25519_dalek::SigningKey;
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use crate::events::{JobStep, RunEvent};
use crate::lifecycle::{
    next_health, next_job, schedule, Candidate, Health, HealthEvent, JobEvent, JobState,
    JobStateKind, MachineState, QueuedJob,
};
use crate::runner::{certify, RunError, RunSpec};
use crate::store::{JobRow, Store, StoreError};
use crate::sut::SutControl;

/// A boxed future, so [`MachineAccess`] can be used as a trait object.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// How a daemon reaches the lab's machines: the SSH (or local, or
/// simulated) target of a machine, and its health check.
pub trait MachineAccess: Send + Sync + 'static {
    /// The target to run a plan on.
    fn target<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>>;
    /// Checks that the machine can take a job (its BMC answers, no
    /// critical SEL entry, SSH answers); the error says why not.
    fn health_check<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// The machine's power, console and boot identity through its BMC,
    /// for a run on `target` whose outputs go to `out_dir` (the console is
    /// captured there); `None` when the machine has no BMC.
    fn sut<'a>(
        &'a self,
        machine: &'a str,
        target: Arc<dyn Target>,
        out_dir: PathBuf,
    ) -> BoxFuture<'a, Option<Arc<dyn SutControl>>> {
        let _ = (machine, target, out_dir);
        Box::pin(async { None })
    }
    /// The prepare step of a job on `machine`: its health gate (BMC
    /// answers, no critical SEL entry since its last job) and power (SSH
    /// answers, or it is powered on through its BMC and waited for). `Ok`
    /// says what it took. The default: nothing to do.
    fn prepare<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<String, PrepareError>> {
        let _ = machine;
        Box::pin(async { Ok(String::new()) })
    }
    /// The machine's provisioning hook, when it has one: what it runs.
    fn provision_command(&self, machine: &str) -> Option<String> {
        let _ = machine;
        None
    }
    /// Runs the provisioning hook (a boot override, then the command).
    fn provision<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Provisioned> {
        let _ = machine;
        Box::pin(async { Provisioned::default() })
    }
    /// The release step after a job on `machine`: notes where its SEL
    /// stands and applies its power policy (`more_work`: another queued
    /// job could run on it). `Ok((policy, what was done))`.
    fn release<'a>(
        &'a self,
        machine: &'a str,
        more_work: bool,
    ) -> BoxFuture<'a, Result<(String, String), String>> {
        let _ = (machine, more_work);
        Box::pin(async { Ok(("keep".to_string(), "nothing".to_string())) })
    }
}

/// Why the prepare step refused a machine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    /// The machine must not take jobs until someone looks at it (a
    /// critical SEL entry): it goes `bad` with this reason.
    #[error("{0}")]
    Unhealthy(String),
    /// It could not be prepared this time (BMC or SSH unreachable).
    #[error("{0}")]
    Infrastructure(String),
}

/// What a provisioning hook did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provisioned {
    pub command: String,
    /// The boot override set first, if any.
    pub boot: Option<String>,
    /// `None`: killed, timed out, or not started (see `output`).
    pub exit: Option<i32>,
    /// The tail of its output (stdout and stderr).
    pub output: String,
}

/// The daemon's settings.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// This daemon's identity as a lease holder (unique per process).
    pub owner: String,
    pub lease_ttl: Duration,
    /// Runs carried out at once.
    pub max_runs: usize,
    /// Attempts of a job before it fails (infrastructure faults).
    pub max_attempts: u32,
    /// Times a case that meets an infrastructure error is tried again
    /// before its job goes back to the queue.
    pub case_retries: u32,
    /// Consecutive jobs ending in infrastructure faults on a machine that
    /// make it `bad`.
    pub machine_failure_limit: u32,
    /// How long a `bad` machine waits before its health is checked again.
    pub bad_recheck: Duration,
    /// How often the store is polled for what other processes changed.
    pub poll: Duration,
    /// Where each run's outputs go: `<out_root>/<run id>/`.
    pub out_root: PathBuf,
    pub tool_version: String,
}

/// What went wrong in the daemon itself (not in a job).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Runs until `shutdown` turns true; then stops taking jobs and returns
/// once its running jobs have ended or been left resumable.
pub async fn run(
    store: Store,
    access: Arc<dyn MachineAccess>,
    signer: SigningKey,
    config: DaemonConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), DaemonError> {
    // Who drives the lab: registered now, beating while it runs.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    store
        .register_daemon(
            &config.owner,
            &host,
            std::process::id(),
            OffsetDateTime::now_utc(),
        )
        .await?;
    let beat_every = DAEMON_BEAT.min(config.lease_ttl / 3);
    let mut last_beat = std::time::Instant::now();
    let wake = Arc::new(Notify::new());
    let mut workers: JoinSet<()> = JoinSet::new();
    let mut checks = HealthChecks::new();
    // PostgreSQL: other processes' changes wake this loop at once.
    let listener = match store.listen().await? {
        Some(mut l) => {
            let wake = wake.clone();
            Some(tokio::spawn(async move {
                loop {
                    match l.recv().await {
                        Ok(_) => wake.notify_one(),
                        Err(e) => {
                            tracing::warn!(error = %e, "lab listener");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            }))
        }
        None => None,
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        while let Some(done) = workers.try_join_next() {
            if let Err(e) = done {
                tracing::error!(error = %e, "a worker task panicked");
            }
        }
        if last_beat.elapsed() >= beat_every {
            store
                .daemon_heartbeat(&config.owner, OffsetDateTime::now_utc())
                .await?;
            last_beat = std::time::Instant::now();
        }
        reclaim_expired(&store).await?;
        check_machines(&store, &access, config.bad_recheck, &mut checks, &wake).await?;
        let free = config.max_runs.saturating_sub(workers.len());
        if free > 0 {
            for job in lease_jobs(&store, &config, free).await? {
                let ctx = Worker {
                    store: store.clone(),
                    access: access.clone(),
                    signer: signer.clone(),
                    config: config.clone(),
                    wake: wake.clone(),
                    shutdown: shutdown.clone(),
                };
                workers.spawn(async move { ctx.run(job).await });
            }
        }
        // Sleep until something happens: a wake-up, the next lease expiry,
        // or the poll for what this process cannot be told.
        let mut nap = config.poll.min(beat_every);
        if let Some(next) = store.next_lease_expiry().await? {
            let left = next - OffsetDateTime::now_utc();
            let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
            nap = nap.min(left + Duration::from_millis(50));
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = shutdown.changed() => {}
            Some(done) = workers.join_next(), if !workers.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "a worker task panicked");
                }
            }
        }
    }
    if let Some(l) = listener {
        l.abort();
    }
    // A machine whose check is cut short stays `unknown`: checked again.
    checks.tasks.abort_all();
    // Stop taking jobs; running ones end at their next step and stay
    // resumable (their leases expire and another daemon takes them).
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "a worker task panicked");
        }
    }
    store
        .daemon_stopped(&config.owner, OffsetDateTime::now_utc())
        .await?;
    Ok(())
}

/// How often a daemon notes in the store that it is alive (at most; a
/// third of the lease when that is shorter).
pub const DAEMON_BEAT: Duration = Duration::from_secs(10);

/// Jobs whose holder stopped beating go back to the queue to resume.
async fn reclaim_expired(store: &Store) -> Result<(), DaemonError> {
    let now = OffsetDateTime::now_utc();
    for job in store.expired_leases(now).await? {
        let Ok(next) = next_job(&job.state, &JobEvent::LeaseExpired, now) else {
            continue;
        };
        match store.apply_job(&job.id, &job.state, &next, now).await {
            Ok(()) => tracing::info!(job = %job.id, "lease expired: queued to resume"),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Health checks run at once, at most (each may power-cycle a machine and
/// wait for its boot).
const HEALTH_CHECKS_AT_ONCE: usize = 64;

/// Health checks in the background: the loop goes on scheduling while
/// they run; each one wakes it when it is done.
struct HealthChecks {
    tasks: JoinSet<()>,
    in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    slots: Arc<tokio::sync::Semaphore>,
}

impl HealthChecks {
    fn new() -> HealthChecks {
        HealthChecks {
            tasks: JoinSet::new(),
            in_flight: Arc::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(HEALTH_CHECKS_AT_ONCE)),
        }
    }
}

/// Machines of unknown health get their health check, and `bad` ones again
/// once they have been bad for `bad_recheck`: started in the background,
/// each machine at most once at a time.
async fn check_machines(
    store: &Store,
    access: &Arc<dyn MachineAccess>,
    bad_recheck: Duration,
    checks: &mut HealthChecks,
    wake: &Arc<Notify>,
) -> Result<(), DaemonError> {
    while checks.tasks.try_join_next().is_some() {}
    let now = OffsetDateTime::now_utc();
    for m in store.machines().await? {
        let due = match &m.health {
            Health::Unknown { .. } => true,
            Health::Bad { since, .. } => now - *since >= ttl(bad_recheck),
            _ => false,
        };
        if !m.in_lab || !due || m.state != MachineState::Idle {
            continue;
        }
        let name = m.facts.name.clone();
        {
            let Ok(mut set) = checks.in_flight.lock() else {
                continue;
            };
            if !set.insert(name.clone()) {
                continue;
            }
        }
        let (store, access, wake) = (store.clone(), access.clone(), wake.clone());
        let (in_flight, slots) = (checks.in_flight.clone(), checks.slots.clone());
        checks.tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let event = match access.health_check(&name).await {
                Ok(()) => HealthEvent::CheckPassed,
                Err(reason) => HealthEvent::CheckFailed { reason },
            };
            if let Ok(to) = next_health(&m.health, &event, OffsetDateTime::now_utc()) {
                match store.set_health(&name, &m.health, &to).await {
                    Ok(()) | Err(StoreError::Conflict { .. }) => {}
                    Err(e) => tracing::warn!(machine = %name, error = %e, "health not recorded"),
                }
            }
            if let Ok(mut set) = in_flight.lock() {
                set.remove(&name);
            }
            wake.notify_one();
        });
    }
    Ok(())
}

/// One scheduling pass: leases up to `free` jobs, records why the others wait.
async fn lease_jobs(
    store: &Store,
    config: &DaemonConfig,
    free: usize,
) -> Result<Vec<JobRow>, DaemonError> {
    let queued = store.jobs(Some(JobStateKind::Queued)).await?;
    if queued.is_empty() {
        return Ok(Vec::new());
    }
    let machines = store.machines().await?;
    let candidates: Vec<Candidate> = machines
        .iter()
        .filter(|m| m.in_lab)
        .map(|m| Candidate {
            facts: m.facts.clone(),
            state: m.state.clone(),
            health: m.health.clone(),
        })
        .collect();
    let view: Vec<QueuedJob> = queued
        .iter()
        .map(|j| QueuedJob {
            id: j.id.clone(),
            // A job resuming a run asks for the machine that run is on.
            requirements: match &j.state {
                JobState::Queued {
                    resume: Some(r), ..
                } => crate::lifecycle::Requirements {
                    name: Some(r.machine.clone()),
                    ..j.requirements.clone()
                },
                _ => j.requirements.clone(),
            },
            priority: j.priority,
            submitter: j.submitter.clone(),
            age_key: j.submitted.unix_timestamp_nanos().to_string(),
            avoid: match &j.state {
                JobState::Queued { avoid, .. } => avoid.clone(),
                _ => None,
            },
        })
        .collect();
    let plan = schedule(&view, &candidates);
    let mut waiting: Vec<(String, String)> = plan.waiting.into_iter().collect();
    let by_id: std::collections::HashMap<&str, &JobRow> =
        queued.iter().map(|j| (j.id.as_str(), j)).collect();
    let now = OffsetDateTime::now_utc();
    let mut asked: Vec<(&JobRow, JobState)> = Vec::new();
    for (job_id, machine) in plan.leases {
        let Some(job) = by_id.get(job_id.as_str()).copied() else {
            continue;
        };
        if asked.len() >= free {
            waiting.push((
                job_id,
                format!("{machine} is free but this daemon is at --max-runs"),
            ));
            continue;
        }
        let event = JobEvent::Lease {
            machine: machine.clone(),
            owner: config.owner.clone(),
            new_run: uuid::Uuid::now_v7().to_string(),
            ttl: ttl(config.lease_ttl),
        };
        if let Ok(to) = next_job(&job.state, &event, now) {
            asked.push((job, to));
        }
    }
    // One transaction for the whole pass (a savepoint per job).
    let done: std::collections::HashSet<String> = store
        .lease_many(&asked, now)
        .await?
        .into_iter()
        .map(|l| l.job)
        .collect();
    let leased = asked
        .into_iter()
        .filter(|(job, _)| done.contains(&job.id))
        .map(|(job, to)| {
            let mut job = job.clone();
            job.state = to;
            job
        })
        .collect();
    store.set_waiting_reasons(&waiting).await?;
    Ok(leased)
}

fn ttl(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::seconds(60))
}

/// Carries out one leased job.
struct Worker {
    store: Store,
    access: Arc<dyn MachineAccess>,
    signer: SigningKey,
    config: DaemonConfig,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<bool>,
}

/// Why a job's attempt stopped short of its end.
#[derive(Debug)]
enum Stop {
    /// Another daemon holds the job now (this one's lease lapsed): the
    /// attempt is not this daemon's to end; nothing more is written.
    LeaseLost(String),
    /// An infrastructure fault: the run is interrupted, the job moves on.
    Fault(String),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        match e {
            StoreError::Fenced { .. } => Stop::LeaseLost(e.to_string()),
            e => Stop::Fault(e.to_string()),
        }
    }
}

impl From<RunError> for Stop {
    fn from(e: RunError) -> Stop {
        match e {
            RunError::Store(e) => e.into(),
            e => Stop::Fault(e.to_string()),
        }
    }
}

impl Worker {
    async fn run(mut self, job: JobRow) {
        let id = job.id.clone();
        // Every write of the job's run needs this daemon's lease of it.
        self.store = self.store.fenced(&job.id, &self.config.owner);
        if let Err(e) = self.carry_out(job).await {
            tracing::error!(job = %id, error = %e, "job step failed");
        }
        self.wake.notify_one();
    }

    /// Applies `event` to the job as it is stored; `None` when the job is
    /// no longer this daemon's (cancelled, or its lease was taken over).
    async fn step(
        &self,
        state: &JobState,
        id: &str,
        event: JobEvent,
    ) -> Result<Option<JobState>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let Ok(next) = next_job(state, &event, now) else {
            return Ok(None);
        };
        match self.store.apply_job(id, state, &next, now).await {
            Ok(()) => Ok(Some(next)),
            Err(StoreError::Conflict { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn carry_out(&self, job: JobRow) -> Result<(), StoreError> {
        let owner = self.config.owner.clone();
        let JobState::Leased { machine, run, .. } = job.state.clone() else {
            return Ok(());
        };
        let Some(mut state) = self
            .step(
                &job.state,
                &job.id,
                JobEvent::Start {
                    owner: owner.clone(),
                },
            )
            .await?
        else {
            return Ok(());
        };

        // Heartbeats keep the lease while the run goes on.
        let (stop_beat, mut beat_stopped) = watch::channel(false);
        let beat_state = Arc::new(tokio::sync::Mutex::new(state.clone()));
        let beat = {
            let store = self.store.clone();
            let beat_state = beat_state.clone();
            let id = job.id.clone();
            let owner = owner.clone();
            let every = self.config.lease_ttl / 3;
            let ttl = ttl(self.config.lease_ttl);
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(every) => {}
                        _ = beat_stopped.changed() => return,
                    }
                    let mut s = beat_state.lock().await;
                    let now = OffsetDateTime::now_utc();
                    let ev = JobEvent::Heartbeat {
                        owner: owner.clone(),
                        ttl,
                    };
                    let Ok(next) = next_job(&s, &ev, now) else {
                        return;
                    };
                    match store.apply_job(&id, &s, &next, now).await {
                        Ok(()) => *s = next,
                        Err(e @ StoreError::Conflict { .. }) => {
                            // The job is someone else's now: the run's
                            // writes are refused by the fence from here on.
                            tracing::warn!(job = %id, error = %e, "lease lost");
                            return;
                        }
                        Err(e) => {
                            // The store did not answer: try again at the
                            // next beat (the lease lasts three of them).
                            tracing::warn!(job = %id, error = %e, "heartbeat failed");
                        }
                    }
                }
            })
        };

        let outcome = self.run_plan(&job, &machine, &run).await;
        let _ = stop_beat.send(true);
        let _ = beat.await;
        state = beat_state.lock().await.clone();

        let event = match outcome {
            Ok(()) => {
                self.store.clear_infra_failures(&machine).await?;
                JobEvent::RunEnded { owner }
            }
            Err(Stop::LeaseLost(error)) => {
                tracing::warn!(job = %job.id, %machine, %error, "lease lost: the attempt stops");
                return Ok(());
            }
            Err(Stop::Fault(error)) if *self.shutdown.borrow() => {
                // Left resumable: the lease expires and a daemon takes it over.
                tracing::info!(job = %job.id, %error, "stopped at shutdown");
                return Ok(());
            }
            Err(Stop::Fault(error)) => {
                tracing::warn!(job = %job.id, %machine, %error, "infrastructure fault");
                // This attempt's run stops here, its recorded cases kept;
                // the job goes to another machine (a new run) or fails.
                let now = OffsetDateTime::now_utc();
                match self.store.mark_interrupted(&run, now, &error).await {
                    Ok(()) => {}
                    Err(e @ StoreError::Fenced { .. }) => {
                        tracing::warn!(%run, error = %e, "lease lost: the attempt stops");
                        return Ok(());
                    }
                    Err(e) => tracing::debug!(%run, error = %e, "run not marked interrupted"),
                }
                self.machine_failed(&machine, &error).await?;
                JobEvent::InfraFault {
                    owner,
                    error,
                    max_attempts: self.config.max_attempts,
                }
            }
        };
        self.step(&state, &job.id, event).await?;
        Ok(())
    }

    /// Counts an infrastructure fault against `machine`; at the limit it
    /// goes `bad` with the reason.
    async fn machine_failed(&self, machine: &str, error: &str) -> Result<(), StoreError> {
        let failures = self.store.count_infra_failure(machine).await?;
        let Some(m) = self
            .store
            .machines()
            .await?
            .into_iter()
            .find(|m| m.facts.name == machine)
        else {
            return Ok(());
        };
        let event = HealthEvent::InfraFailures {
            failures,
            limit: self.config.machine_failure_limit,
            last_error: error.to_string(),
        };
        let now = OffsetDateTime::now_utc();
        let Ok(to) = next_health(&m.health, &event, now) else {
            return Ok(());
        };
        if to == m.health {
            return Ok(());
        }
        match self.store.set_health(machine, &m.health, &to).await {
            Ok(()) | Err(StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Appends a job step's event to the run's log (before the step acts).
    async fn log(&self, run: &str, ev: RunEvent) -> Result<(), StoreError> {
        let seq = self.store.events(run).await?.last().map_or(0, |e| e.seq);
        let mut payload = serde_json::to_value(&ev).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = payload.as_object_mut() {
            obj.insert("v".into(), crate::runner::STORED_EVENT_VERSION.into());
        }
        self.store
            .append_event(run, seq + 1, OffsetDateTime::now_utc(), ev.kind(), &payload)
            .await
    }

    /// Prepare (health gate, power) and provision, each logged first.
    async fn prepare(&self, machine: &str, run: &str) -> Result<(), Stop> {
        self.log(
            run,
            RunEvent::StepStarted {
                step: JobStep::Prepare,
            },
        )
        .await?;
        match self.access.prepare(machine).await {
            Ok(note) => self.log(run, RunEvent::Prepared { note }).await?,
            Err(PrepareError::Unhealthy(reason)) => {
                self.machine_unhealthy(machine, &reason).await;
                return Err(Stop::Fault(format!(
                    "{machine} failed its health gate: {reason}"
                )));
            }
            Err(PrepareError::Infrastructure(e)) => {
                return Err(Stop::Fault(format!("{machine} could not be prepared: {e}")))
            }
        }
        if self.access.provision_command(machine).is_some() {
            self.log(
                run,
                RunEvent::StepStarted {
                    step: JobStep::Provision,
                },
            )
            .await?;
            let p = self.access.provision(machine).await;
            let ok = p.exit == Some(0);
            let ev = RunEvent::Provisioned {
                command: p.command.clone(),
                boot: p.boot.clone(),
                exit: p.exit,
                output: p.output.clone(),
            };
            self.log(run, ev).await?;
            if !ok {
                return Err(Stop::Fault(format!(
                    "{machine}: provisioning `{}` {}",
                    p.command,
                    match p.exit {
                        Some(code) => format!("exited {code}"),
                        None => format!("did not finish: {}", p.output.trim()),
                    }
                )));
            }
        }
        Ok(())
    }

    /// The health gate refused the machine: it goes `bad` with the reason.
    async fn machine_unhealthy(&self, machine: &str, reason: &str) {
        let Ok(machines) = self.store.machines().await else {
            return;
        };
        let Some(m) = machines.into_iter().find(|m| m.facts.name == machine) else {
            return;
        };
        let event = HealthEvent::CheckFailed {
            reason: reason.to_string(),
        };
        if let Ok(to) = next_health(&m.health, &event, OffsetDateTime::now_utc()) {
            if let Err(e) = self.store.set_health(machine, &m.health, &to).await {
                tracing::warn!(%machine, error = %e, "health not recorded");
            }
        }
    }

    /// Release: the SEL position noted, the power policy applied. A
    /// failure here is logged, not the run's: its results stand.
    async fn release(&self, machine: &str, run: &str) {
        let step = RunEvent::StepStarted {
            step: JobStep::Release,
        };
        if let Err(e) = self.log(run, step).await {
            tracing::warn!(%run, error = %e, "release not logged");
        }
        let more_work = match self.store.jobs(Some(JobStateKind::Queued)).await {
            Ok(queued) => {
                let facts = self
                    .store
                    .machines()
                    .await
                    .ok()
                    .and_then(|ms| ms.into_iter().find(|m| m.facts.name == machine))
                    .map(|m| m.facts);
                queued.iter().any(|j| match &facts {
                    Some(f) => j.requirements.matches(f),
                    None => true,
                })
            }
            Err(_) => true,
        };
        let ev = match self.access.release(machine, more_work).await {
            Ok((policy, action)) => RunEvent::Released { policy, action },
            Err(e) => RunEvent::Released {
                policy: "?".into(),
                action: format!("failed: {e}"),
            },
        };
        if let Err(e) = self.log(run, ev).await {
            tracing::warn!(%run, error = %e, "release not logged");
        }
    }

    async fn run_plan(&self, job: &JobRow, machine: &str, run: &str) -> Result<(), Stop> {
        let plan = match &job.plan_text {
            Some(text) => Plan::parse(&job.plan, text),
            None => Plan::load(&job.plan),
        }
        .map_err(|e| Stop::Fault(e.to_string()))?;
        self.prepare(machine, run).await?;
        let result = self.run_prepared(plan, machine, run).await;
        if result.is_ok() {
            self.release(machine, run).await;
        }
        result
    }

    async fn run_prepared(&self, plan: Plan, machine: &str, run: &str) -> Result<(), Stop> {
        let target = self.access.target(machine).await.map_err(Stop::Fault)?;
        let out_dir = self.config.out_root.join(run);
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| Stop::Fault(format!("create {}: {e}", out_dir.display())))?;
        let sut = self
            .access
            .sut(machine, target.clone(), out_dir.clone())
            .await;
        let spec = RunSpec {
            run_id: run.to_string(),
            plan,
            target,
            out_dir,
            signer: self.signer.clone(),
            tool_version: self.config.tool_version.clone(),
            case_retries: Some(self.config.case_retries),
            sut,
        };
        // Every RunError is an infrastructure fault (the product's verdicts
        // are in the run, whatever they are).
        certify(spec, &self.store, &mut |_| {})
            .await
            .map(|_| ())
            .map_err(Stop::from)
    }
}
