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
use certlab_lab::{Local, Target};
use certlab_reports::{CaseResult, Verdict};
use ed25519_dalek::SigningKey;
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
/// health check.
struct LocalAccess;

impl MachineAccess for LocalAccess {
    fn target<'a>(&'a self, _machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>> {
        Box::pin(async { Ok(Arc::new(Local::default()) as Arc<dyn Target>) })
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
                pending.push(format!("{id}: {}", j.state.kind()));
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
);
