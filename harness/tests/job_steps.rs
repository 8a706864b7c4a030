//! A job's steps around its run, on the simulated lab (machines with an
//! in-process BMC): prepare (health gate, power), the `[machine.provision]`
//! hook, the run, the sweep of the BMC's event log, release (the power
//! policy) — each logged in the run's event stream before it acts. A hook
//! that fails is an infrastructure error: the job goes to another machine
//! (not the one that failed it), and nothing is recorded as `fail`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::access::LabAccess;
use certlab_harness::daemon::MachineAccess;
use certlab_harness::lifecycle::{Health, JobState};
use certlab_harness::{NewJob, Store};
use certlab_lab::bmc::{Bmc, PowerState};
use certlab_lab::Lab;
use certlab_reports::{RunRecord, Verdict};
use time::OffsetDateTime;

const PLAN: &str = r#"
[plan]
id = "steps"
version = "1"
title = "two cheap cases and the SEL over the run"

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

[[case]]
id = "ras.sel"
check = "ras-sel"
title = "The BMC logged no critical event during the run"
blocker = true
timeout_s = 30
"#;

fn sim(name: &str, extra: &str) -> String {
    format!(
        "[[machine]]\nname = \"{name}\"\narch = \"aarch64\"\npool = \"sim\"\n{extra}\n\
         [machine.sim]\nprofile = \"kunpeng-920\"\nfaults = \"none\"\nseed = 1\n\
         defect = \"none\"\ntime_scale = 0.001\n\n"
    )
}

struct Lab1 {
    dir: tempfile::TempDir,
    store: Store,
    access: Arc<LabAccess>,
}

async fn lab(toml: &str) -> Result<Lab1> {
    let dir = tempfile::tempdir()?;
    let lab_file = dir.path().join("lab.toml");
    std::fs::write(&lab_file, format!("version = 1\n\n{toml}"))?;
    let lab = Lab::load(&lab_file)?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let access = Arc::new(LabAccess::new(lab, &store));
    store
        .sync_machines(&access.facts(), OffsetDateTime::now_utc())
        .await?;
    Ok(Lab1 { dir, store, access })
}

fn new_job(id: &str, require: &str) -> Result<NewJob> {
    common::test_job(id, "steps.toml", Some(PLAN), require)
}

async fn submit(store: &Store, id: &str, require: &str) -> Result<()> {
    store
        .submit_job(&new_job(id, require)?, OffsetDateTime::now_utc())
        .await?;
    Ok(())
}

/// Runs a daemon until job `id` ends; returns the job's final state.
async fn run_until_done(l: &Lab1, id: &str, max_attempts: u32) -> Result<JobState> {
    let config = common::daemon_config(&l.dir.path().join("runs"), 2, max_attempts);
    common::run_daemon_until_done(
        &l.store,
        l.access.clone() as Arc<dyn MachineAccess>,
        config,
        id,
        Duration::from_secs(120),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_is_logged_before_it_acts_and_the_power_policy_applies() -> Result<()> {
    let hook = "echo \"provisioning $CERTLAB_MACHINE\"; env | grep -c -i password || true";
    let l = lab(&sim(
        "sim-0001",
        &format!("power_policy = \"off\"\n[machine.provision]\ncommand = '{hook}'\n"),
    ))
    .await?;
    submit(&l.store, "j1", "name=sim-0001").await?;
    let JobState::Finished { run, .. } = run_until_done(&l, "j1", 1).await? else {
        anyhow::bail!("j1 did not finish")
    };
    let events = l.store.events(&run).await?;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    let step = |name: &str| {
        events
            .iter()
            .position(|e| e.kind == "step_started" && e.payload["step"] == name)
            .with_context(|| format!("no {name} step in {kinds:?}"))
    };
    let at = |kind: &str| {
        kinds
            .iter()
            .position(|k| *k == kind)
            .with_context(|| format!("no {kind} in {kinds:?}"))
    };
    // In order, each step logged before what it does.
    let order = [
        step("prepare")?,
        at("prepared")?,
        step("provision")?,
        at("provisioned")?,
        at("run_started")?,
        at("case_finished")?,
        step("sweep")?,
        at("swept")?,
        at("published")?,
        at("run_finished")?,
        step("release")?,
        at("released")?,
    ];
    ensure!(
        order.windows(2).all(|w| w[0] < w[1]),
        "{order:?}: {kinds:?}"
    );
    // The hook ran on this host with the machine's name, and no password
    // in its environment.
    let p = &events[at("provisioned")?].payload;
    ensure!(p["exit"] == 0, "{p}");
    let out = p["output"].as_str().unwrap_or_default();
    ensure!(out.starts_with("provisioning sim-0001\n0"), "{p}");
    // The sweep: the BMC's log over the run, in results.json.
    let s = &events[at("swept")?].payload;
    ensure!(s["error"].is_null(), "{s}");
    let results: RunRecord = serde_json::from_slice(&std::fs::read(
        l.dir.path().join("runs").join(&run).join("results.json"),
    )?)?;
    ensure!(
        results.inventory.iter().any(|e| matches!(
            e,
            certlab_reports::Evidence::Bmc { source, .. } if source == "sel"
        )),
        "no SEL sweep in results.json"
    );
    ensure!(results.cases.iter().all(|c| c.verdict == Verdict::Pass));
    // ras.sel was handed the BMC's log since the run began: the power-on
    // of the prepare step is in it, nothing critical.
    let sel = results
        .cases
        .iter()
        .find(|c| c.id == "ras.sel")
        .context("ras.sel")?;
    ensure!(
        sel.reason.starts_with("no critical SEL entry; ") && sel.reason.contains("0 critical"),
        "{}",
        sel.reason
    );
    // Release: `power_policy = "off"` powered it off through its BMC.
    let r = &events[at("released")?].payload;
    ensure!(r["policy"] == "off", "{r}");
    ensure!(r["action"] == "powered off through its BMC", "{r}");
    let bmc = l.access.sims().get("sim-0001").context("sim")?.bmc();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    bmc.wait_for(PowerState::Off, deadline).await?;

    // The next job's prepare powers it on through its BMC again.
    submit(&l.store, "j2", "name=sim-0001").await?;
    let JobState::Finished { run, .. } = run_until_done(&l, "j2", 1).await? else {
        anyhow::bail!("j2 did not finish")
    };
    let events = l.store.events(&run).await?;
    let cases: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "case_finished")
        .map(|e| e.payload["result"]["verdict"].clone())
        .collect();
    ensure!(cases == ["pass", "pass", "pass"], "{cases:?}");
    l.store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_provision_hook_sends_the_job_to_another_machine() -> Result<()> {
    let broken = "[machine.provision]\ncommand = 'echo \"image server down\" >&2; exit 3'\n";
    let l = lab(&(sim("sim-0001", broken) + &sim("sim-0002", ""))).await?;
    // Both machines known healthy, so the first pass leases both: j0
    // (first by priority) takes sim-0002, j1 sim-0001, whose hook fails.
    for m in l.store.machines().await? {
        let good = Health::Good {
            since: OffsetDateTime::now_utc(),
        };
        l.store.set_health(&m.facts.name, &m.health, &good).await?;
    }
    l.store
        .submit_job(
            &NewJob {
                id: "j0-first".into(),
                priority: 90,
                ..new_job("j0-first", "name=sim-0002")?
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
    submit(&l.store, "j1", "pool=sim").await?;
    // Two attempts: without avoiding the machine that failed it, the job
    // would go to sim-0001 (first by name) twice and fail.
    let state = run_until_done(&l, "j1", 2).await?;
    let JobState::Finished { machine, run, .. } = &state else {
        anyhow::bail!("{state:?}")
    };
    ensure!(machine == "sim-0002", "{state:?}");
    let detail = l.store.get_run(run).await?.context("run")?;
    ensure!(
        detail.cases.iter().all(|c| c.verdict == Verdict::Pass),
        "{:?}",
        detail.cases
    );
    // The attempt on sim-0001: the hook's exit and output in its log, no
    // case recorded (an infrastructure error is never a product verdict).
    let mut first = None;
    for r in l.store.list_runs(10).await? {
        let events = l.store.events(&r.id).await?;
        let failed = events
            .iter()
            .any(|e| e.kind == "provisioned" && e.payload["exit"] != 0);
        if failed {
            ensure!(first.is_none(), "sim-0001 was tried twice");
            first = Some((r, events));
        }
    }
    let (first, events) = first.context("the first attempt's run")?;
    let p = events
        .iter()
        .find(|e| e.kind == "provisioned")
        .context("provisioned")?;
    ensure!(p.payload["exit"] == 3, "{}", p.payload);
    ensure!(
        p.payload["output"] == "image server down\n",
        "{}",
        p.payload
    );
    ensure!(
        !events.iter().any(|e| e.kind == "case_finished"),
        "{events:?}"
    );
    let first = l.store.get_run(&first.id).await?.context("run")?;
    ensure!(first.cases.is_empty(), "{:?}", first.cases);
    l.store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_when_idle_keeps_a_machine_on_while_work_is_queued_for_it() -> Result<()> {
    let l = lab(&sim("sim-0001", "power_policy = \"off-when-idle\"\n")).await?;
    submit(&l.store, "j1", "name=sim-0001").await?;
    submit(&l.store, "j2", "pool=sim").await?;
    let JobState::Finished { run: second, .. } = run_until_done(&l, "j2", 1).await? else {
        anyhow::bail!("j2 did not finish")
    };
    let Some(JobState::Finished { run: first, .. }) = l.store.job("j1").await?.map(|j| j.state)
    else {
        anyhow::bail!("j1 did not finish")
    };
    let released = |events: Vec<certlab_harness::StoredEvent>| {
        events
            .into_iter()
            .find(|e| e.kind == "released")
            .map(|e| e.payload["action"].as_str().unwrap_or_default().to_string())
    };
    // j1 ended with j2 queued for the same machine (one machine, one job
    // at a time): kept on. j2 ended with nothing queued: off.
    let a = released(l.store.events(&first).await?);
    let b = released(l.store.events(&second).await?);
    ensure!(
        a.as_deref() == Some("kept on: more work is queued for it"),
        "{a:?}"
    );
    ensure!(b.as_deref() == Some("powered off through its BMC"), "{b:?}");
    let bmc = l.access.sims().get("sim-0001").context("sim")?.bmc();
    bmc.wait_for(
        PowerState::Off,
        std::time::Instant::now() + Duration::from_secs(10),
    )
    .await?;
    l.store.close().await;
    Ok(())
}
