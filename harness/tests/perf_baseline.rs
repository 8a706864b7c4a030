//! Performance baselines end to end, on SQLite and PostgreSQL: a run on a
//! simulated machine becomes the machine's baseline; a second run with the
//! same figures passes as no change; a run with slower figures injected is a
//! regression that fails the run, with the comparison in results.json and a
//! plot in report.html; a machine without a baseline of its own is compared
//! with its platform's.
//!
//! The machine is the simulator (real hwdb fixtures) with stress-ng added:
//! each run of the benchmark answers stress-ng's real `--metrics-brief`
//! output (`suites/tests/fixtures/perf/stress-ng/stress-ng-cpu-brief-2s.stdout`)
//! with its real-time rate replaced by the next sample of the test's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::{certify, machine_key, RunSpec, Store};
use certlab_lab::sim::{SimMachine, SimSpec};
use certlab_lab::{DirEntry, ExecOutput, Target, TargetError};
use certlab_reports::{BaselineScope, Outcome, PerfVerdict, RunRecord, Verdict};
use certlab_suites::Plan;
use ed25519_dalek::SigningKey;

const BRIEF: &str =
    include_str!("../../suites/tests/fixtures/perf/stress-ng/stress-ng-cpu-brief-2s.stdout");
/// The real rate in that output (bogo ops/s of real time).
const REAL_RATE: &str = "1624.94";

const PLAN: &str = r#"
[plan]
id = "nightly-test"
version = "7"
title = "perf against the baseline"

[[case]]
id = "perf.cpu"
check = "perf-stress-ng"
title = "stress-ng cpu against the baseline"
blocker = true
timeout_s = 60
[case.params]
min_runs = 5
max_runs = 10
max_cv_pct = 3.0
"#;

/// Rates around the real one: its ±1.5 % spread in five steps.
const SAME: [f64; 5] = [1624.94, 1601.3, 1640.2, 1615.8, 1633.1];
const SAME_AGAIN: [f64; 5] = [1630.5, 1609.9, 1621.4, 1644.0, 1612.7];

/// A simulated machine that has stress-ng.
struct WithStress {
    inner: certlab_lab::sim::SimTarget,
    rates: Vec<f64>,
    n: AtomicUsize,
}

impl Target for WithStress {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        let reply = |exit: i32, out: String| {
            Ok(ExecOutput {
                exit: Some(exit),
                stdout: out.into_bytes(),
                stderr: Vec::new(),
                duration: Duration::from_millis(1),
                timed_out: false,
            })
        };
        if command == "command -v 'stress-ng'" || command == "command -v stress-ng" {
            return reply(0, "/usr/bin/stress-ng\n".into());
        }
        if command.starts_with("stress-ng --cpu") {
            let i = self.n.fetch_add(1, Ordering::SeqCst) % self.rates.len();
            let rate = format!("{:.2}", self.rates[i]);
            return reply(0, BRIEF.replace(REAL_RATE, &rate));
        }
        self.inner.exec(command, timeout)
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
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

async fn run(
    store: &Store,
    dir: &std::path::Path,
    machine: &str,
    run_id: &str,
    rates: &[f64],
) -> Result<RunRecord> {
    let spec = SimSpec {
        time_scale: 0.0,
        ..SimSpec::new("kunpeng-920")
    };
    let sim = SimMachine::new(machine, spec)?;
    let target = WithStress {
        inner: sim.target(),
        rates: rates.to_vec(),
        n: AtomicUsize::new(0),
    };
    let spec = RunSpec {
        run_id: run_id.to_string(),
        plan: Plan::parse("nightly-test.toml", PLAN)?,
        target: Arc::new(target),
        out_dir: dir.join(run_id),
        signer: SigningKey::from_bytes(&[9u8; 32]),
        tool_version: "test".into(),
        case_retries: None,
        sut: None,
    };
    let (record, _) = certify(spec, store, &mut |_| {}).await?;
    Ok(record)
}

async fn scenario(url: String) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&url).await?;
    let now = time::OffsetDateTime::now_utc();

    // No baseline yet: the case passes once its figure settles.
    let first = run(&store, dir.path(), "sim-1", "run-base", &SAME).await?;
    let case = &first.cases[0];
    ensure!(case.verdict == Verdict::Pass, "{}", case.reason);
    ensure!(case.baseline.is_none());

    // It becomes the machine's baseline: one row per metric sampled 5 times.
    let rows = store
        .set_baselines_from_run("run-base", BaselineScope::Machine, now)
        .await?;
    let key = machine_key("sim-1", &first.host.hostname);
    ensure!(key == "sim-1", "{key}");
    let bogo = rows
        .iter()
        .find(|r| r.metric == "cpu.bogo_ops_per_sec_real")
        .context("no baseline of the key figure")?;
    ensure!(bogo.samples == SAME.to_vec(), "{:?}", bogo.samples);
    ensure!(bogo.case_id == "perf.cpu" && bogo.source_run == "run-base");
    ensure!(bogo.plan_version == "7" && bogo.kernel == first.host.kernel);
    ensure!(rows
        .iter()
        .all(|r| r.scope == BaselineScope::Machine && r.key == "sim-1"));
    let listed = store.list_baselines(None, None, false).await?;
    ensure!(listed.len() == rows.len(), "{} listed", listed.len());
    let prefix: String = bogo.id.chars().take(30).collect();
    ensure!(store.get_baseline(&prefix).await?.as_ref() == Some(bogo));

    // The same figures again: no change, a pass, the comparison recorded.
    let same = run(&store, dir.path(), "sim-1", "run-same", &SAME_AGAIN).await?;
    let case = &same.cases[0];
    ensure!(case.verdict == Verdict::Pass, "{}", case.reason);
    let cmp = case.baseline.as_ref().context("no comparison recorded")?;
    ensure!(cmp.scope == BaselineScope::Machine && cmp.source_run == "run-base");
    ensure!(
        cmp.metrics[0].verdict == PerfVerdict::NoChange,
        "{}",
        cmp.metrics[0].reason
    );
    ensure!(cmp.metrics[0].baseline == SAME.to_vec());

    // Slower figures injected (20 % less): a regression, the blocker fails.
    let slower: Vec<f64> = SAME_AGAIN.iter().map(|v| v * 0.8).collect();
    let slow = run(&store, dir.path(), "sim-1", "run-slow", &slower).await?;
    let case = &slow.cases[0];
    ensure!(
        case.verdict == Verdict::Fail && case.blocker,
        "{}",
        case.reason
    );
    let m = &case.baseline.as_ref().context("no comparison")?.metrics[0];
    ensure!(m.verdict == PerfVerdict::Regression, "{}", m.reason);
    ensure!(slow.summary.outcome == Outcome::Fail);
    // Stored as written, and published: results.json and a plot in report.html.
    let stored = store.get_run("run-slow").await?.context("run not stored")?;
    // (serde_json reads a float back within an ulp, not always exactly)
    let kept = stored.cases[0]
        .baseline
        .as_ref()
        .context("comparison not stored")?;
    ensure!(kept.metrics[0].verdict == m.verdict && kept.source_run == "run-base");
    ensure!(kept.metrics[0].baseline.len() == m.baseline.len());
    let html = std::fs::read_to_string(dir.path().join("run-slow/report.html"))?;
    ensure!(html.contains("<svg") && html.matches("<circle").count() == 10);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run-slow/results.json"))?)?;
    ensure!(json["cases"][0]["baseline"]["metrics"][0]["verdict"] == "regression");

    // Another machine of the platform: no baseline of its own, so the
    // platform's once one is set.
    let other = run(&store, dir.path(), "sim-2", "run-other-1", &SAME_AGAIN).await?;
    ensure!(other.cases[0].baseline.is_none());
    store
        .set_baselines_from_run("run-base", BaselineScope::Platform, now)
        .await?;
    let other = run(&store, dir.path(), "sim-2", "run-other-2", &slower).await?;
    let cmp = other.cases[0]
        .baseline
        .as_ref()
        .context("no platform comparison")?;
    ensure!(cmp.scope == BaselineScope::Platform, "{:?}", cmp.scope);
    ensure!(cmp.key.contains("kunpeng"), "{}", cmp.key);
    ensure!(cmp.metrics[0].verdict == PerfVerdict::Regression);
    // sim-1 still has its own.
    let again = run(&store, dir.path(), "sim-1", "run-own", &SAME_AGAIN).await?;
    ensure!(again.cases[0].baseline.as_ref().map(|b| b.scope) == Some(BaselineScope::Machine));

    // A newer baseline replaces the older in force; --all keeps both.
    let later = now + time::Duration::seconds(5);
    store
        .set_baselines_from_run("run-same", BaselineScope::Machine, later)
        .await?;
    let in_force = store
        .list_baselines(Some(BaselineScope::Machine), Some("sim-1"), false)
        .await?;
    ensure!(in_force.iter().all(|r| r.source_run == "run-same"));
    let all = store
        .list_baselines(Some(BaselineScope::Machine), Some("sim-1"), true)
        .await?;
    ensure!(all.len() == 2 * in_force.len());

    // A run whose cases sampled nothing 3 times cannot be a baseline.
    let e = store
        .set_baselines_from_run("run-slow", BaselineScope::Machine, now)
        .await
        .unwrap_err();
    ensure!(e.to_string().contains("no case that passed"), "{e}");
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_on_sqlite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    scenario(common::sqlite_url(&dir)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baselines_on_postgres() -> Result<()> {
    common::with_postgres("baselines_on_postgres", scenario).await
}
