//! The orchestrator loop on this machine: machines are names whose target
//! is the Local machine (so the real checks run), jobs are queued in a
//! real store (SQLite and PostgreSQL), and the daemon must carry every job
//! to its end exactly once, keep bad machines out of service, say why a
//! job waits, and take over a job whose holder died.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::daemon::{self, BoxFuture, DaemonConfig, MachineAccess};
use certlab_harness::lifecycle::{
    next_job, Health, JobEvent, JobState, JobStateKind, MachineFacts, MachineState, Requirements,
};
use certlab_harness::{NewJob, RunState, Store};
use certlab_lab::{DirEntry, ExecOutput, Local, Target, TargetError};
use certlab_reports::{CaseResult, Verdict};
use ed25519_dalek::SigningKey;
use std::sync::atomic::{AtomicU32, Ordering};
use time::OffsetDateTime;
use tokio::sync::watch;

const PLAN: &str = r#"
[plan]
id = "daemon-test"
version = "1"
title = "two cheap cases"
description = "for the daemon test"

[[case]]
id = "cpu.online"
check = "cpu-online"
title = "All present CPUs are online"
blocker = true
timeout_s = 30

[[case]]
id = "kernel.taint"
check = "kernel-taint"
title = "Kernel not tainted"
blocker = true
timeout_s = 30
"#;

/// Every machine is this machine; machines named `bad-*` fail their
/// health check. On `flaky-*` machines the `kernel.taint` case's read of
/// the taint flags loses the connection once (as an SSH session dropped
/// mid-case does); on `dead-*` machines it always does. (Discovery reads
/// the flags first: that read goes through.)
struct LocalAccess;

/// Discovery's read of the taint flags comes first; the case's is the second.
const TAINTED: &str = "/proc/sys/kernel/tainted";

impl MachineAccess for LocalAccess {
    fn target<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>> {
        Box::pin(async move {
            let drops = if machine.starts_with("flaky-") {
                1
            } else if machine.starts_with("dead-") {
                u32::MAX
            } else {
                return Ok(Arc::new(Local::default()) as Arc<dyn Target>);
            };
            let pass_first = AtomicU32::new(1);
            let drops = AtomicU32::new(drops);
            let take = |n: &AtomicU32| {
                n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            };
            Ok(Hooked::target("dropping", move |path| {
                if path == TAINTED && !take(&pass_first) && take(&drops) {
                    return Err(TargetError::Disconnected {
                        target: "dropping".into(),
                        reason: "session closed by peer (test)".into(),
                    });
                }
                Ok(())
            }))
        })
    }
    fn health_check<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if machine.starts_with("bad-") {
                Err("BMC does not answer (test)".to_string())
            } else {
                Ok(())
            }
        })
    }
}

/// A read hook before each file read.
type ReadHook = Box<dyn Fn(&str) -> Result<(), TargetError> + Send + Sync>;

/// The local machine, with `hook` run before each file read: it can fail
/// the read (a lost connection) or hold it (a stalled daemon).
struct Hooked {
    inner: Local,
    name: &'static str,
    hook: ReadHook,
}

impl Hooked {
    fn target(
        name: &'static str,
        hook: impl Fn(&str) -> Result<(), TargetError> + Send + Sync + 'static,
    ) -> Arc<dyn Target> {
        Arc::new(Hooked {
            inner: Local::default(),
            name,
            hook: Box::new(hook),
        })
    }
}

impl Target for Hooked {
    fn name(&self) -> &str {
        self.name
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        self.inner.exec(command, timeout)
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        (self.hook)(path)?;
        self.inner.read_file(path)
    }
    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        self.inner.list_dir(path)
    }
    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        self.inner.read_link(path)
    }
    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError> {
        self.inner.put_file(path, data, mode)
    }
}

fn facts(name: &str) -> MachineFacts {
    MachineFacts {
        name: name.into(),
        arch: std::env::consts::ARCH.into(),
        family: None,
        pool: Some("local".into()),
        tags: vec![],
    }
}

fn job(id: &str, requirements: Requirements) -> NewJob {
    NewJob {
        id: id.into(),
        plan: "daemon-test.toml".into(),
        plan_version: "1".into(),
        plan_digest: String::new(),
        plan_text: Some(PLAN.into()),
        requirements,
        priority: 50,
        submitter: "ci".into(),
    }
}

fn config(owner: &str, out: &std::path::Path) -> DaemonConfig {
    DaemonConfig {
        owner: owner.into(),
        lease_ttl: Duration::from_secs(3),
        max_runs: 3,
        max_attempts: 2,
        case_retries: 2,
        machine_failure_limit: 3,
        bad_recheck: Duration::from_secs(900),
        poll: Duration::from_millis(100),
        out_root: out.to_path_buf(),
        tool_version: "test".into(),
    }
}

/// Polls until every job is final, or fails after `secs`.
async fn wait_final(store: &Store, jobs: &[&str], secs: u64) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let mut pending = Vec::new();
        for id in jobs {
            let j = store.job(id).await?.context("job")?;
            if !j.state.kind().is_terminal() {
                pending.push(format!(
                    "{id}: {} ({})",
                    j.state.kind(),
                    j.waiting_reason.as_deref().unwrap_or("-")
                ));
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "jobs not final after {secs} s: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn every_job_runs_once_and_bad_machines_stay_out(url: String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&url).await?;
    let names = ["m1", "m2", "m3", "bad-1"];
    let machines: Vec<MachineFacts> = names.iter().map(|n| facts(n)).collect();
    store
        .sync_machines(&machines, OffsetDateTime::now_utc())
        .await?;
    let ids: Vec<String> = (0..7).map(|i| format!("job-{i}")).collect();
    for id in &ids {
        store
            .submit_job(&job(id, Requirements::default()), OffsetDateTime::now_utc())
            .await?;
    }
    let riscv = Requirements::parse("arch=riscv64,pool=local")?;
    store
        .submit_job(&job("never", riscv), OffsetDateTime::now_utc())
        .await?;

    let (stop, stopped) = watch::channel(false);
    let d = tokio::spawn(daemon::run(
        store.clone(),
        Arc::new(LocalAccess),
        SigningKey::from_bytes(&[3u8; 32]),
        config("d1", dir.path()),
        stopped,
    ));
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let waited = wait_final(&store, &id_refs, 300).await;
    stop.send(true)?;
    d.await??;
    waited?;

    let mut runs = BTreeSet::new();
    for id in &ids {
        let j = store.job(id).await?.context("job")?;
        let JobState::Finished { machine, run, .. } = &j.state else {
            anyhow::bail!("{id}: {:?}", j.state)
        };
        ensure!(machine.starts_with('m'), "{id} ran on {machine}");
        ensure!(runs.insert(run.clone()), "{id}: run {run} used twice");
        let detail = store.get_run(run).await?.context("run")?;
        ensure!(detail.run.state == RunState::Finished, "{:?}", detail.run);
        let cases: Vec<&str> = detail.cases.iter().map(|c| c.id.as_str()).collect();
        ensure!(cases == ["cpu.online", "kernel.taint"], "{id}: {cases:?}");
    }
    let never = store.job("never").await?.context("never")?;
    ensure!(never.state.kind() == JobStateKind::Queued);
    let reason = never.waiting_reason.unwrap_or_default();
    ensure!(
        reason.contains("no machine in the lab matches arch=riscv64"),
        "{reason}"
    );
    for m in store.machines().await? {
        ensure!(m.state == MachineState::Idle, "{m:?}");
        if m.facts.name == "bad-1" {
            ensure!(
                matches!(&m.health, Health::Bad { reason, .. } if reason.contains("BMC")),
                "{:?}",
                m.health
            );
        } else {
            ensure!(matches!(m.health, Health::Good { .. }), "{:?}", m.health);
        }
    }
    store.close().await;
    Ok(())
}

/// A daemon that died holding a job, one case done: another daemon takes
/// the job over once the lease expires, on the same machine, and the run
/// keeps that case.
async fn a_dead_daemons_job_is_taken_over(url: String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&url).await?;
    store
        .sync_machines(&[facts("m1"), facts("m2")], OffsetDateTime::now_utc())
        .await?;
    for m in store.machines().await? {
        let to = Health::Good {
            since: OffsetDateTime::now_utc(),
        };
        store.set_health(&m.facts.name, &m.health, &to).await?;
    }
    store
        .submit_job(
            &job("j", Requirements::default()),
            OffsetDateTime::now_utc(),
        )
        .await?;
    let queued = store.job("j").await?.context("j")?;
    let now = OffsetDateTime::now_utc();
    let lease = JobEvent::Lease {
        machine: "m2".into(),
        owner: "dead".into(),
        new_run: "run-dead".into(),
        ttl: time::Duration::seconds(1),
    };
    let leased = next_job(&queued.state, &lease, now)?;
    store.lease(&queued, &leased, now).await?.context("lease")?;
    let running = next_job(
        &leased,
        &JobEvent::Start {
            owner: "dead".into(),
        },
        now,
    )?;
    store.apply_job("j", &leased, &running, now).await?;
    let kept = CaseResult {
        id: "cpu.online".into(),
        title: "All present CPUs are online".into(),
        blocker: true,
        verdict: Verdict::Pass,
        reason: "recorded by the dead daemon".into(),
        started: now,
        duration_ms: 1,
        metrics: vec![],
        evidence: vec![],
        baseline: None,
    };
    store.record_case("run-dead", 0, &kept).await?;

    let (stop, stopped) = watch::channel(false);
    let d = tokio::spawn(daemon::run(
        store.clone(),
        Arc::new(LocalAccess),
        SigningKey::from_bytes(&[3u8; 32]),
        config("d2", dir.path()),
        stopped,
    ));
    let waited = wait_final(&store, &["j"], 120).await;
    stop.send(true)?;
    d.await??;
    waited?;
    let j = store.job("j").await?.context("j")?;
    let JobState::Finished { machine, run, .. } = &j.state else {
        anyhow::bail!("{:?}", j.state)
    };
    ensure!(
        machine == "m2" && run == "run-dead",
        "resumed in place: {:?}",
        j.state
    );
    let detail = store.get_run("run-dead").await?.context("run")?;
    ensure!(detail.cases.len() == 2, "{:?}", detail.cases);
    ensure!(detail.cases[0].reason == "recorded by the dead daemon");
    store.close().await;
    Ok(())
}

/// The local machine, whose read of the taint flags in a case (the second
/// read: discovery's goes through) stalls until the test opens the gate —
/// a daemon that hangs mid-case, as a stalled process does.
struct StallAccess {
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    /// (a read is waiting, the gate is open)
    state: std::sync::Mutex<(bool, bool)>,
    changed: std::sync::Condvar,
}

impl MachineAccess for StallAccess {
    fn target<'a>(&'a self, _machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>> {
        Box::pin(async move {
            let gate = self.gate.clone();
            let reads = AtomicU32::new(0);
            Ok(Hooked::target("stalling", move |path| {
                if path == TAINTED && reads.fetch_add(1, Ordering::SeqCst) == 1 {
                    let mut s = gate.state.lock().unwrap_or_else(|e| e.into_inner());
                    s.0 = true;
                    gate.changed.notify_all();
                    while !s.1 {
                        s = gate.changed.wait(s).unwrap_or_else(|e| e.into_inner());
                    }
                }
                Ok(())
            }))
        })
    }
    fn health_check<'a>(&'a self, _machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Ok(()) })
    }
}

/// A daemon stalls mid-case; meanwhile its lease lapses and another
/// orchestrator takes the job over (resuming the same run). When the stalled
/// daemon wakes up it must not write the run it lost: the case it was in is
/// not recorded, the run is neither finished nor interrupted by it, no new
/// run is started, and the job stays the new holder's.
async fn a_daemon_that_lost_its_lease_writes_nothing_more(url: String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&url).await?;
    let now = OffsetDateTime::now_utc();
    store.sync_machines(&[facts("m1")], now).await?;
    for m in store.machines().await? {
        let to = Health::Good { since: now };
        store.set_health(&m.facts.name, &m.health, &to).await?;
    }
    store
        .submit_job(&job("j", Requirements::default()), now)
        .await?;
    let gate = Arc::new(Gate::default());
    let (stop, stopped) = watch::channel(false);
    let d = tokio::spawn(daemon::run(
        store.clone(),
        Arc::new(StallAccess { gate: gate.clone() }),
        SigningKey::from_bytes(&[4u8; 32]),
        config("stalled", dir.path()),
        stopped,
    ));
    // Wait until the daemon is stuck in the job's second case.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = gate.state.lock().map(|s| s.0).unwrap_or(false);
        if waiting {
            break;
        }
        ensure!(tokio::time::Instant::now() < deadline, "the case never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let running = store.job("j").await?.context("j")?;
    let JobState::Running { run, until, .. } = running.state.clone() else {
        anyhow::bail!("{:?}", running.state)
    };
    // Another orchestrator, once the lease has lapsed, takes the job over.
    let later = until + time::Duration::seconds(1);
    let queued = next_job(&running.state, &JobEvent::LeaseExpired, later)?;
    store.apply_job("j", &running.state, &queued, later).await?;
    let requeued = store.job("j").await?.context("j")?;
    let lease = JobEvent::Lease {
        machine: "m1".into(),
        owner: "other".into(),
        new_run: "run-other".into(),
        ttl: time::Duration::hours(1),
    };
    let leased = next_job(&requeued.state, &lease, later)?;
    store
        .lease(&requeued, &leased, later)
        .await?
        .context("lease")?;
    let taken = next_job(
        &leased,
        &JobEvent::Start {
            owner: "other".into(),
        },
        later,
    )?;
    store.apply_job("j", &leased, &taken, later).await?;

    // The stalled daemon wakes up and finishes its case.
    {
        let mut s = gate.state.lock().unwrap_or_else(|e| e.into_inner());
        s.1 = true;
        gate.changed.notify_all();
    }
    // A stopping daemon waits for its workers: this one's last write.
    stop.send(true)?;
    d.await??;

    let j = store.job("j").await?.context("j")?;
    ensure!(j.state == taken, "still the new holder's: {:?}", j.state);
    let detail = store.get_run(&run).await?.context("run")?;
    ensure!(
        detail.run.state == RunState::Running,
        "neither finished nor interrupted by the stalled daemon: {:?}",
        detail.run.state
    );
    let ids: Vec<&str> = detail.cases.iter().map(|c| c.id.as_str()).collect();
    ensure!(
        ids == ["cpu.online"],
        "only what it recorded in time: {ids:?}"
    );
    let runs = store.list_runs(10).await?;
    ensure!(runs.len() == 1, "no new run: {runs:?}");
    store.close().await;
    Ok(())
}

/// Infrastructure faults are never product verdicts: a case whose
/// connection dropped once is tried again and the job finishes with every
/// case judged; on a machine where it always drops, each attempt's run is
/// interrupted (no `fail`, no `error` recorded), the job goes back to the
/// queue, and after `machine_failure_limit` such jobs the machine is `bad`
/// with the reason.
async fn infrastructure_faults_are_retried_never_judged(url: String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&url).await?;
    let machines: Vec<MachineFacts> = ["flaky-1", "dead-1"].iter().map(|n| facts(n)).collect();
    store
        .sync_machines(&machines, OffsetDateTime::now_utc())
        .await?;
    let on = |name: &str| Requirements::parse(&format!("name={name}"));
    store
        .submit_job(&job("flaky", on("flaky-1")?), OffsetDateTime::now_utc())
        .await?;
    store
        .submit_job(&job("dead", on("dead-1")?), OffsetDateTime::now_utc())
        .await?;

    let mut cfg = config("d1", dir.path());
    cfg.max_attempts = 5;
    cfg.machine_failure_limit = 2;
    let (stop, stopped) = watch::channel(false);
    let d = tokio::spawn(daemon::run(
        store.clone(),
        Arc::new(LocalAccess),
        SigningKey::from_bytes(&[3u8; 32]),
        cfg,
        stopped,
    ));
    let waited = async {
        wait_final(&store, &["flaky"], 120).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let m = store.machines().await?;
            if m.iter()
                .any(|m| m.facts.name == "dead-1" && matches!(m.health, Health::Bad { .. }))
            {
                return anyhow::Ok(());
            }
            ensure!(
                tokio::time::Instant::now() < deadline,
                "dead-1 never went bad: {m:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    .await;
    stop.send(true)?;
    d.await??;
    waited?;

    let flaky = store.job("flaky").await?.context("flaky")?;
    let JobState::Finished { run, .. } = &flaky.state else {
        anyhow::bail!("flaky: {:?}", flaky.state)
    };
    let detail = store.get_run(run).await?.context("run")?;
    let verdicts: Vec<(String, Verdict)> = detail
        .cases
        .iter()
        .map(|c| (c.id.clone(), c.verdict))
        .collect();
    ensure!(
        verdicts.len() == 2 && verdicts.iter().all(|(_, v)| *v != Verdict::Error),
        "{verdicts:?}"
    );
    let retried = store
        .events(run)
        .await?
        .into_iter()
        .filter(|e| e.kind == "case_retried")
        .count();
    ensure!(retried == 1, "{retried} retries logged");

    let dead = store.job("dead").await?.context("dead")?;
    ensure!(
        dead.state.kind() == JobStateKind::Queued,
        "dead: {:?}",
        dead.state
    );
    let m = store.machines().await?;
    let dead_machine = m
        .iter()
        .find(|m| m.facts.name == "dead-1")
        .context("dead-1")?;
    let Health::Bad { reason, .. } = &dead_machine.health else {
        anyhow::bail!("{:?}", dead_machine.health)
    };
    ensure!(
        reason.contains("2 consecutive infrastructure failures")
            && reason.contains("connection lost"),
        "{reason}"
    );
    // Its attempts' runs were interrupted with nothing judged.
    let runs = store.list_runs(100).await?;
    let mut interrupted = 0;
    for r in &runs {
        let d = store.get_run(&r.id).await?.context("run")?;
        if d.run.state == RunState::Interrupted {
            interrupted += 1;
            ensure!(
                d.cases.iter().all(|c| c.id != "kernel.taint"),
                "an infrastructure fault was recorded as a verdict: {:?}",
                d.cases
            );
        }
    }
    ensure!(interrupted >= 2, "{interrupted} interrupted runs");
    store.close().await;
    Ok(())
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    let dir = tempfile::tempdir()?;
                    super::$name(super::common::sqlite_url(&dir)).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() -> anyhow::Result<()> {
                    super::common::with_postgres(stringify!($name), super::$name).await
                }
            )*
        }
    };
}

on_both!(
    every_job_runs_once_and_bad_machines_stay_out,
    a_dead_daemons_job_is_taken_over,
    a_daemon_that_lost_its_lease_writes_nothing_more,
    infrastructure_faults_are_retried_never_judged,
);
