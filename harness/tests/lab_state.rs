//! The lab's machines and jobs in the store, on SQLite and PostgreSQL:
//! lifecycle transitions applied with guarded updates, leases that two
//! orchestrators cannot both take, expired leases resumed on their machine.

mod common;

use anyhow::{ensure, Context, Result};
use certlab_harness::lifecycle::{
    next_health, next_job, Health, HealthEvent, JobEvent, JobState, JobStateKind, MachineFacts,
    MachineState, Requirements,
};
use certlab_harness::{NewJob, RunState, Store, StoreError};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn at(secs: i64) -> OffsetDateTime {
    datetime!(2026-12-01 08:00:00.5 UTC) + Duration::seconds(secs)
}

const TTL: Duration = Duration::seconds(30);

fn facts(name: &str, arch: &str) -> MachineFacts {
    MachineFacts {
        name: name.into(),
        arch: arch.into(),
        family: Some("kunpeng".into()),
        pool: Some("rack1".into()),
        tags: vec!["nvme".into()],
    }
}

fn new_job(id: &str) -> NewJob {
    NewJob {
        id: id.into(),
        plan: "server-basic".into(),
        plan_version: "1".into(),
        plan_digest: "ab".repeat(32),
        plan_text: None,
        requirements: Requirements {
            arch: Some("aarch64".into()),
            ..Requirements::default()
        },
        priority: 50,
        submitter: "alice".into(),
    }
}

/// Makes every machine healthy, as a passed health check would.
async fn all_good(store: &Store, now: OffsetDateTime) -> Result<()> {
    for m in store.machines().await? {
        let to = next_health(&m.health, &HealthEvent::CheckPassed, now)?;
        store.set_health(&m.facts.name, &m.health, &to).await?;
    }
    Ok(())
}

fn lease_event(machine: &str, owner: &str, run: &str) -> JobEvent {
    JobEvent::Lease {
        machine: machine.into(),
        owner: owner.into(),
        new_run: run.into(),
        ttl: TTL,
    }
}

async fn machines_sync_from_the_inventory(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    let r = store
        .sync_machines(&[facts("kp1", "aarch64"), facts("kp2", "aarch64")], at(0))
        .await?;
    ensure!(r.added == ["kp1", "kp2"], "{r:?}");
    let all = store.machines().await?;
    ensure!(all.len() == 2);
    ensure!(
        all[0].health == Health::Unknown { since: at(0) },
        "{:?}",
        all[0]
    );
    ensure!(all[0].state == MachineState::Idle);
    ensure!(all[0].facts == facts("kp1", "aarch64"));
    // kp2 changes arch, kp1 leaves the file, kp3 arrives.
    let r = store
        .sync_machines(&[facts("kp2", "x86_64"), facts("kp3", "aarch64")], at(5))
        .await?;
    ensure!(
        r.added == ["kp3"] && r.updated == ["kp2"] && r.removed == ["kp1"],
        "{r:?}"
    );
    let all = store.machines().await?;
    ensure!(all.len() == 3, "history kept");
    ensure!(!all[0].in_lab && all[1].in_lab && all[1].facts.arch == "x86_64");
    // Unchanged: nothing to do.
    let r = store
        .sync_machines(&[facts("kp2", "x86_64"), facts("kp3", "aarch64")], at(9))
        .await?;
    ensure!(r == Default::default(), "{r:?}");
    store.close().await;
    Ok(())
}

/// Daemons starting at the same moment all synchronise the same lab.toml:
/// none fails, each machine is added once.
async fn concurrent_syncs_add_each_machine_once(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    let machines: Vec<MachineFacts> = (0..20)
        .map(|i| facts(&format!("m{i:02}"), "aarch64"))
        .collect();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (store, machines) = (store.clone(), machines.clone());
        tasks.spawn(async move {
            store
                .sync_machines(&machines, OffsetDateTime::now_utc())
                .await
        });
    }
    let mut added = 0;
    while let Some(r) = tasks.join_next().await {
        added += r??.added.len();
    }
    ensure!(added == 20, "{added} additions reported");
    ensure!(store.machines().await?.len() == 20);
    store.close().await;
    Ok(())
}

async fn a_job_runs_through_its_lifecycle(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    store
        .sync_machines(&[facts("kp1", "aarch64")], at(0))
        .await?;
    all_good(&store, at(1)).await?;
    store.submit_job(&new_job("j1"), at(2)).await?;
    let job = store.job("j1").await?.context("j1")?;
    ensure!(job.state == JobState::new(at(2)), "{:?}", job.state);

    let leased = next_job(&job.state, &lease_event("kp1", "d1", "run-1"), at(3))?;
    let got = store.lease(&job, &leased, at(3)).await?.context("lease")?;
    ensure!(got.run == "run-1" && !got.resumed);
    // The run row exists from the lease on, before discovery.
    let run = store.get_run("run-1").await?.context("run row")?;
    ensure!(run.run.state == RunState::Running && run.run.target == "kp1");
    let m = &store.machines().await?[0];
    ensure!(
        m.state == MachineState::Leased { job: "j1".into() },
        "{:?}",
        m.state
    );

    let job = store.job("j1").await?.context("j1")?;
    ensure!(job.state == leased, "{:?} != {leased:?}", job.state);
    let running = next_job(&job.state, &JobEvent::Start { owner: "d1".into() }, at(4))?;
    store.apply_job("j1", &job.state, &running, at(4)).await?;
    let m = &store.machines().await?[0];
    ensure!(
        m.state
            == MachineState::Running {
                job: "j1".into(),
                run: "run-1".into()
            },
        "{:?}",
        m.state
    );
    let hb = JobEvent::Heartbeat {
        owner: "d1".into(),
        ttl: TTL,
    };
    let beat = next_job(&running, &hb, at(20))?;
    store.apply_job("j1", &running, &beat, at(20)).await?;
    let done = next_job(&beat, &JobEvent::RunEnded { owner: "d1".into() }, at(25))?;
    store.apply_job("j1", &beat, &done, at(25)).await?;
    let job = store.job("j1").await?.context("j1")?;
    ensure!(job.state.kind() == JobStateKind::Finished);
    ensure!(job.run_id() == Some("run-1") && job.machine() == Some("kp1"));
    ensure!(job.started == Some(at(4)) && job.finished() == Some(at(25)));
    ensure!(store.machines().await?[0].state == MachineState::Idle);
    // A stale transition (computed from an older state) changes nothing.
    let late = next_job(&running, &JobEvent::Cancel { reason: "x".into() }, at(26))?;
    match store.apply_job("j1", &running, &late, at(26)).await {
        Err(StoreError::Conflict { detail, .. }) => {
            ensure!(detail.contains("finished"), "{detail}")
        }
        other => anyhow::bail!("expected a conflict, got {other:?}"),
    }
    ensure!(store.jobs(Some(JobStateKind::Finished)).await?.len() == 1);
    ensure!(store.jobs(Some(JobStateKind::Queued)).await?.is_empty());
    store.close().await;
    Ok(())
}

/// Two orchestrators try to lease the same queued job, each to its own
/// idle machine, at the same moment, many times: exactly one wins each
/// time, and the loser's machine stays idle.
async fn only_one_orchestrator_gets_a_job(url: String) -> Result<()> {
    let a = Store::open(&url).await?;
    let b = Store::open(&url).await?;
    a.sync_machines(&[facts("kp1", "aarch64"), facts("kp2", "aarch64")], at(0))
        .await?;
    all_good(&a, at(1)).await?;
    for round in 0..20 {
        let id = format!("j{round}");
        a.submit_job(&new_job(&id), at(2)).await?;
        let job = a.job(&id).await?.context("job")?;
        let to_a = next_job(
            &job.state,
            &lease_event("kp1", "da", &format!("ra{round}")),
            at(3),
        )?;
        let to_b = next_job(
            &job.state,
            &lease_event("kp2", "db", &format!("rb{round}")),
            at(3),
        )?;
        let (ra, rb) = tokio::join!(a.lease(&job, &to_a, at(3)), b.lease(&job, &to_b, at(3)));
        let (ra, rb) = (ra?, rb?);
        ensure!(
            ra.is_some() != rb.is_some(),
            "round {round}: exactly one lease must win: {ra:?} {rb:?}"
        );
        let machines = a.machines().await?;
        let busy: Vec<&str> = machines
            .iter()
            .filter(|m| m.state != MachineState::Idle)
            .map(|m| m.facts.name.as_str())
            .collect();
        ensure!(busy.len() == 1, "round {round}: {busy:?}");
        // Cancel to free the machine for the next round.
        let job = a.job(&id).await?.context("job")?;
        let cancelled = next_job(&job.state, &JobEvent::Cancel { reason: "t".into() }, at(4))?;
        a.apply_job(&id, &job.state, &cancelled, at(4)).await?;
        ensure!(a
            .machines()
            .await?
            .iter()
            .all(|m| m.state == MachineState::Idle));
    }
    a.close().await;
    b.close().await;
    Ok(())
}

/// A scheduling pass leases its jobs in one transaction: a lease that can
/// no longer be made (its machine was taken meanwhile) is left out, the
/// others are all made, each with its run row.
async fn a_pass_leases_its_jobs_together(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    store
        .sync_machines(
            &[
                facts("m1", "aarch64"),
                facts("m2", "aarch64"),
                facts("m3", "aarch64"),
            ],
            at(0),
        )
        .await?;
    all_good(&store, at(1)).await?;
    let mut asked = Vec::new();
    for id in ["a", "b", "c"] {
        store.submit_job(&new_job(id), at(2)).await?;
    }
    let jobs: Vec<_> = {
        let mut v = Vec::new();
        for id in ["a", "b", "c"] {
            v.push(store.job(id).await?.context("job")?);
        }
        v
    };
    // b and c both asked for m2: only the first gets it.
    for (job, machine) in jobs.iter().zip(["m1", "m2", "m2"]) {
        let to = next_job(
            &job.state,
            &lease_event(machine, "d1", &format!("run-{}", job.id)),
            at(3),
        )?;
        asked.push((job, to));
    }
    let done = store.lease_many(&asked, at(3)).await?;
    let got: Vec<(&str, &str)> = done
        .iter()
        .map(|l| (l.job.as_str(), l.machine.as_str()))
        .collect();
    ensure!(got == [("a", "m1"), ("b", "m2")], "{got:?}");
    let c = store.job("c").await?.context("c")?;
    ensure!(c.state.kind() == JobStateKind::Queued, "{:?}", c.state);
    for run in ["run-a", "run-b"] {
        ensure!(store.get_run(run).await?.is_some(), "{run} has no row");
    }
    ensure!(store.get_run("run-c").await?.is_none());
    store.close().await;
    Ok(())
}

/// One machine `kp1`, healthy; job `j1` submitted, leased to `owner` on
/// it as run `run-1` at 3 s and started at 4 s. Returns the running state.
async fn one_job_running(store: &Store, owner: &str) -> Result<JobState> {
    store
        .sync_machines(&[facts("kp1", "aarch64")], at(0))
        .await?;
    all_good(store, at(1)).await?;
    store.submit_job(&new_job("j1"), at(2)).await?;
    let job = store.job("j1").await?.context("j1")?;
    let leased = next_job(&job.state, &lease_event("kp1", owner, "run-1"), at(3))?;
    store.lease(&job, &leased, at(3)).await?.context("lease")?;
    let start = JobEvent::Start {
        owner: owner.into(),
    };
    let running = next_job(&leased, &start, at(4))?;
    store.apply_job("j1", &leased, &running, at(4)).await?;
    Ok(running)
}

/// A daemon dies holding a running job: once its lease expires the job is
/// queued to resume its run, and a lease on the same machine continues
/// that run (its row and cases kept); the machine is not leased twice.
async fn an_expired_lease_resumes_its_run(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    one_job_running(&store, "dead").await?;

    ensure!(store.expired_leases(at(20)).await?.is_empty());
    let expired = store.expired_leases(at(40)).await?;
    ensure!(expired.len() == 1 && expired[0].id == "j1");
    let queued = next_job(&expired[0].state, &JobEvent::LeaseExpired, at(40))?;
    store
        .apply_job("j1", &expired[0].state, &queued, at(40))
        .await?;
    let job = store.job("j1").await?.context("j1")?;
    ensure!(
        job.run_id() == Some("run-1"),
        "resume kept: {:?}",
        job.state
    );
    ensure!(
        job.error().is_some_and(|e| e.contains("dead")),
        "{:?}",
        job.error()
    );

    let again = next_job(&job.state, &lease_event("kp1", "alive", "run-2"), at(41))?;
    let got = store.lease(&job, &again, at(41)).await?.context("lease")?;
    ensure!(got.resumed && got.run == "run-1", "{got:?}");
    ensure!(store.get_run("run-2").await?.is_none(), "no new run");
    store.close().await;
    Ok(())
}

fn result(id: &str, secs: i64) -> certlab_reports::CaseResult {
    certlab_reports::CaseResult {
        id: id.into(),
        title: format!("Case {id}"),
        blocker: true,
        verdict: certlab_reports::Verdict::Pass,
        reason: "ok".into(),
        started: at(secs),
        duration_ms: 10,
        metrics: vec![],
        evidence: vec![],
        baseline: None,
    }
}

/// A daemon whose lease lapsed while it still carried out the run (a
/// stalled process): once another daemon took the job over, every run
/// write through the stalled one's fenced store is refused and changes
/// nothing, while the new holder resumes the run with what was recorded
/// before the takeover and writes on. Without the fence the two would
/// race on the run's case and event sequence numbers.
async fn a_lapsed_holder_cannot_write_the_run_it_lost(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    one_job_running(&store, "slow").await?;
    let start = |owner: &str| JobEvent::Start {
        owner: owner.into(),
    };

    // While it holds the lease, the slow daemon writes.
    let slow = store.fenced("j1", "slow");
    ensure!(slow.fence().is_some_and(|f| f.owner == "slow"));
    let payload = serde_json::json!({"note": "one"});
    slow.append_event("run-1", 1, at(5), "note", &payload)
        .await?;
    slow.record_case("run-1", 0, &result("c1", 5)).await?;
    // A fence of another holder refuses at once.
    let other = store.fenced("j1", "someone-else");
    let refused = other.record_case("run-1", 1, &result("c2", 6)).await;
    ensure!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );

    // Its lease lapses; the job is queued to resume, then taken over.
    let expired = store.expired_leases(at(40)).await?;
    ensure!(expired.len() == 1);
    let queued = next_job(&expired[0].state, &JobEvent::LeaseExpired, at(40))?;
    store
        .apply_job("j1", &expired[0].state, &queued, at(40))
        .await?;
    let refused = slow
        .append_event("run-1", 2, at(41), "note", &payload)
        .await;
    ensure!(
        matches!(&refused, Err(StoreError::Fenced { job, owner, .. }) if job == "j1" && owner == "slow"),
        "a queued job fences its old holder out: {refused:?}"
    );
    let job = store.job("j1").await?.context("j1")?;
    let again = next_job(&job.state, &lease_event("kp1", "alive", "run-2"), at(41))?;
    store.lease(&job, &again, at(41)).await?.context("lease")?;
    let running = next_job(&again, &start("alive"), at(42))?;
    store.apply_job("j1", &again, &running, at(42)).await?;

    // Every write of the slow daemon is refused and leaves nothing.
    let refused = [
        slow.record_case("run-1", 1, &result("c2", 43)).await,
        slow.append_event("run-1", 2, at(43), "note", &payload)
            .await,
        slow.mark_interrupted("run-1", at(43), "ssh dropped").await,
    ];
    for r in &refused {
        ensure!(matches!(r, Err(StoreError::Fenced { .. })), "{r:?}");
        let msg = r
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        ensure!(msg.contains("`j1`") && msg.contains("`slow`"), "{msg}");
    }
    let run = store.get_run("run-1").await?.context("run-1")?;
    ensure!(run.run.state == RunState::Running, "{:?}", run.run.state);
    ensure!(store.events("run-1").await?.len() == 1, "no event added");

    // The new holder resumes with what the slow one wrote in time.
    let alive = store.fenced("j1", "alive");
    let mut new_run = certlab_harness::NewRun {
        id: "run-1".into(),
        plan_id: "server-basic".into(),
        plan_version: "1".into(),
        plan_digest: "ab".repeat(32),
        target: "kp1".into(),
        hostname: "kp1.lab".into(),
        kernel: "6.6.0".into(),
        started: at(42),
        out_dir: None,
    };
    let resume = alive.begin_run(&new_run).await?;
    ensure!(resume.cases.len() == 1 && resume.cases[0].1.id == "c1");
    ensure!(resume.last_event_seq == 1, "{}", resume.last_event_seq);
    alive.record_case("run-1", 1, &result("c2", 44)).await?;
    alive
        .append_event("run-1", 2, at(44), "note", &payload)
        .await?;
    // A fenced store cannot start a run of a job it does not hold either.
    new_run.id = "run-9".into();
    let refused = slow.begin_run(&new_run).await;
    ensure!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    ensure!(store.get_run("run-9").await?.is_none(), "nothing created");
    store.close().await;
    Ok(())
}

async fn health_changes_are_guarded(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    store
        .sync_machines(&[facts("kp1", "aarch64")], at(0))
        .await?;
    let m = store.machines().await?.remove(0);
    let bad = next_health(
        &m.health,
        &HealthEvent::CheckFailed {
            reason: "critical SEL entry: Uncorrectable ECC".into(),
        },
        at(1),
    )?;
    store.set_health("kp1", &m.health, &bad).await?;
    // A second writer that read the old health is refused.
    let good = next_health(&m.health, &HealthEvent::CheckPassed, at(2))?;
    ensure!(matches!(
        store.set_health("kp1", &m.health, &good).await,
        Err(StoreError::Conflict { .. })
    ));
    let m = store.machines().await?.remove(0);
    ensure!(m.health == bad, "{:?}", m.health);
    ensure!(m.health.reason() == Some("critical SEL entry: Uncorrectable ECC"));
    // A bad machine takes no lease.
    store.submit_job(&new_job("j1"), at(3)).await?;
    let job = store.job("j1").await?.context("j1")?;
    let to = next_job(&job.state, &lease_event("kp1", "d", "r"), at(4))?;
    ensure!(store.lease(&job, &to, at(4)).await?.is_none());
    ensure!(store.get_run("r").await?.is_none(), "nothing left behind");
    store.close().await;
    Ok(())
}

/// On PostgreSQL a daemon hears of changes made by other processes at once.
#[tokio::test]
async fn postgres_announces_lab_changes() -> Result<()> {
    common::with_postgres("postgres_announces_lab_changes", |url| async move {
        let a = Store::open(&url).await?;
        let b = Store::open(&url).await?;
        let mut l = a.listen().await?.context("a listener on PostgreSQL")?;
        b.submit_job(&new_job("j1"), at(0)).await?;
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), l.recv()).await??;
        ensure!(got == "job:j1:queued", "{got}");
        b.sync_machines(&[facts("kp1", "aarch64")], at(1)).await?;
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), l.recv()).await??;
        ensure!(got == "machines", "{got}");
        // SQLite has no listener: daemons on it poll.
        let dir = tempfile::tempdir()?;
        let s = Store::open(&common::sqlite_url(&dir)).await?;
        ensure!(s.listen().await?.is_none());
        a.close().await;
        b.close().await;
        Ok(())
    })
    .await
}

/// What a follower of a run's log reads: the entries after a sequence
/// number, and whether more may come — while the run runs, and while a job
/// still holds it after it stopped (the release step is logged then).
async fn a_run_is_open_while_its_job_holds_it(url: String) -> Result<()> {
    let store = Store::open(&url).await?;
    store
        .sync_machines(&[facts("kp1", "aarch64")], at(0))
        .await?;
    all_good(&store, at(1)).await?;
    ensure!(store.run_open("run-1").await?.is_none(), "no such run");
    store.submit_job(&new_job("j1"), at(2)).await?;
    store.submit_job(&new_job("j2"), at(3)).await?;
    let newest = store.recent_jobs(None, 1).await?;
    ensure!(newest.len() == 1 && newest[0].id == "j2", "{newest:?}");
    let queued = store.recent_jobs(Some(JobStateKind::Queued), 10).await?;
    ensure!(queued.iter().map(|j| j.id.as_str()).collect::<Vec<_>>() == ["j2", "j1"]);
    ensure!(store
        .recent_jobs(Some(JobStateKind::Cancelled), 10)
        .await?
        .is_empty());

    let job = store.job("j1").await?.context("j1")?;
    let leased = next_job(&job.state, &lease_event("kp1", "d1", "run-1"), at(4))?;
    store.lease(&job, &leased, at(4)).await?.context("lease")?;
    ensure!(store.run_open("run-1").await? == Some(true));
    for seq in 1..=5u64 {
        let payload = serde_json::json!({"event": "step_started", "step": "prepare", "n": seq});
        store
            .append_event("run-1", seq, at(5), "step_started", &payload)
            .await?;
    }
    let page = store.events_after("run-1", Some(2), Some(2)).await?;
    ensure!(page.iter().map(|e| e.seq).collect::<Vec<_>>() == [3, 4]);
    ensure!(page[0].payload["n"] == 3);
    ensure!(store.events_after("run-1", Some(5), None).await?.is_empty());
    ensure!(store.events("run-1").await?.len() == 5);
    ensure!(store.events_after("run-1", None, Some(1)).await?[0].seq == 1);

    // the run stops; its job still holds it, so more may come
    store.mark_interrupted("run-1", at(6), "lost").await?;
    ensure!(store.run_open("run-1").await? == Some(true));
    let job = store.job("j1").await?.context("j1")?;
    let cancel = JobEvent::Cancel {
        reason: "enough".into(),
    };
    let cancelled = next_job(&job.state, &cancel, at(7))?;
    store.apply_job("j1", &job.state, &cancelled, at(7)).await?;
    ensure!(store.run_open("run-1").await? == Some(false), "over");
    let done = store.recent_jobs(Some(JobStateKind::Cancelled), 10).await?;
    ensure!(done.len() == 1 && done[0].id == "j1");
    store.close().await;
    Ok(())
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let dir = tempfile::tempdir()?;
                    super::$name(super::common::sqlite_url(&dir)).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    super::common::with_postgres(stringify!($name), super::$name).await
                }
            )*
        }
    };
}

on_both!(
    machines_sync_from_the_inventory,
    concurrent_syncs_add_each_machine_once,
    a_job_runs_through_its_lifecycle,
    only_one_orchestrator_gets_a_job,
    a_pass_leases_its_jobs_together,
    an_expired_lease_resumes_its_run,
    a_lapsed_holder_cannot_write_the_run_it_lost,
    health_changes_are_guarded,
    a_run_is_open_while_its_job_holds_it,
);
