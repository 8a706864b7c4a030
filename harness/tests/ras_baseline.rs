//! RAS counters against the baseline end to end, on SQLite and PostgreSQL:
//! a run whose `ras.aer` case read clean counters becomes the machine's
//! baseline (its counters and uptime kept, one reading each); a run with
//! uncorrected AER errors on functions the baseline never saw fails the
//! run as a new error class, with the comparison stored and in
//! results.json; a clean run again passes at its baseline.
//!
//! The machine is the simulator (real hwdb fixtures) whose AER walk is run
//! by this machine's `sh` over the real sysfs trees of
//! `suites/tests/fixtures/aer` (clean: prometheus/node_exporter's; failing:
//! prometheus/procfs's; see its PROVENANCE.tsv), and whose uptime is the
//! test's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::{certify, RunSpec, Store};
use certlab_lab::sim::{SimMachine, SimSpec};
use certlab_lab::{DirEntry, ExecOutput, Local, Target, TargetError};
use certlab_reports::{BaselineScope, Outcome, PerfVerdict, RunRecord, Verdict};
use certlab_suites::checks::ras::aer_walk_at;
use certlab_suites::checks::ras_delta::UPTIME_METRIC;
use certlab_suites::Plan;
use ed25519_dalek::SigningKey;

const PLAN: &str = r#"
[plan]
id = "nightly-ras-test"
version = "3"
title = "AER counters against the baseline"

[[case]]
id = "ras.aer"
check = "ras-aer"
title = "Uncorrected AER errors not above the baseline"
blocker = true
timeout_s = 30
[case.params]
errors = "uncorrected"
baseline = true
"#;

/// A `bus/pci/devices` directory linking to every function of the AER
/// fixture tree `rel`, as sysfs does.
fn bus_tree(rel: &str) -> (tempfile::TempDir, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../suites/tests/fixtures/aer")
        .join(rel);
    assert!(root.is_dir(), "{}", root.display());
    let tmp = tempfile::tempdir().unwrap();
    let bus = tmp.path().join("bus/pci/devices");
    std::fs::create_dir_all(&bus).unwrap();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if !p.is_dir() {
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("pci") {
                std::os::unix::fs::symlink(&p, bus.join(&name)).unwrap();
            }
            stack.push(p);
        }
    }
    (tmp, bus)
}

/// A simulated machine whose PCI functions count what fixture tree `tree`
/// says, up `uptime_s` seconds.
struct WithAer {
    inner: certlab_lab::sim::SimTarget,
    bus: PathBuf,
    uptime_s: f64,
}

impl Target for WithAer {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        if command.starts_with(": certlab aer-walk;") {
            let bus = self.bus.to_str().unwrap_or_default();
            return Local::default().exec(&aer_walk_at(bus), timeout);
        }
        self.inner.exec(command, timeout)
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        if path == "/proc/uptime" {
            return Ok(format!("{:.2} 1.00\n", self.uptime_s).into_bytes());
        }
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
    dir: &Path,
    run_id: &str,
    tree: &str,
    uptime_s: f64,
) -> Result<RunRecord> {
    let spec = SimSpec {
        time_scale: 0.0,
        ..SimSpec::new("kunpeng-920")
    };
    let sim = SimMachine::new("sim-1", spec)?;
    let (_tmp, bus) = bus_tree(tree);
    let target = WithAer {
        inner: sim.target(),
        bus,
        uptime_s,
    };
    let spec = RunSpec {
        run_id: run_id.to_string(),
        plan: Plan::parse("nightly-ras-test.toml", PLAN)?,
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

    // No baseline yet: judged on the counts since boot, and it says so.
    let first = run(&store, dir.path(), "run-clean", "node_exporter", 36000.0).await?;
    let case = &first.cases[0];
    ensure!(case.verdict == Verdict::Pass, "{}", case.reason);
    ensure!(case.baseline.is_none());
    ensure!(case.reason.contains("no RAS baseline"), "{}", case.reason);

    // It becomes the machine's baseline: each counter and the uptime, once.
    let rows = store
        .set_baselines_from_run("run-clean", BaselineScope::Machine, now)
        .await?;
    let fatal = rows
        .iter()
        .find(|r| r.metric == "aer.0000:45:00.0.fatal")
        .context("no baseline of a counter")?;
    ensure!(
        fatal.samples == [0.0] && fatal.unit == "errors",
        "{fatal:?}"
    );
    ensure!(fatal.case_id == "ras.aer" && fatal.key == "sim-1");
    let up = rows
        .iter()
        .find(|r| r.metric == UPTIME_METRIC)
        .context("no uptime")?;
    ensure!(up.samples == [36000.0], "{up:?}");
    // Read back as the baseline a case is given.
    let b = store
        .baseline_for_case("sim-1", "no platform", "ras.aer")
        .await?
        .context("no baseline in force")?;
    ensure!(b.metrics.len() == rows.len() && b.source_run == "run-clean");
    ensure!(b.metrics["aer.0000:01:00.0.nonfatal"].samples == [0.0]);

    // Fatal and non-fatal errors where the baseline had none: the run fails.
    let bad = run(&store, dir.path(), "run-bad", "procfs", 3600.0).await?;
    let case = &bad.cases[0];
    ensure!(
        case.verdict == Verdict::Fail && case.blocker,
        "{}",
        case.reason
    );
    ensure!(case.reason.contains("a new error class"), "{}", case.reason);
    let cmp = case.baseline.as_ref().context("no comparison")?;
    ensure!(cmp.source_run == "run-clean" && cmp.scope == BaselineScope::Machine);
    ensure!(cmp.metrics[0].verdict == PerfVerdict::Regression);
    ensure!(bad.summary.outcome == Outcome::Fail);
    let stored = store.get_run("run-bad").await?.context("run not stored")?;
    let kept = stored.cases[0]
        .baseline
        .as_ref()
        .context("comparison not stored")?;
    ensure!(kept.metrics.len() == cmp.metrics.len() && kept.metrics[0].name == cmp.metrics[0].name);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("run-bad/results.json"))?)?;
    ensure!(json["cases"][0]["baseline"]["metrics"][0]["verdict"] == "regression");
    ensure!(json["cases"][0]["baseline"]["metrics"][0]["baseline"][0] == 0.0);

    // Clean again, after a shorter night: at the baseline, a pass.
    let again = run(&store, dir.path(), "run-again", "node_exporter", 7200.0).await?;
    let case = &again.cases[0];
    ensure!(case.verdict == Verdict::Pass, "{}", case.reason);
    ensure!(
        case.reason
            .starts_with("no counter above the machine baseline sim-1"),
        "{}",
        case.reason
    );
    ensure!(case.baseline.is_some());
    store.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ras_baselines_on_sqlite() -> Result<()> {
    let dir = tempfile::tempdir()?;
    scenario(common::sqlite_url(&dir)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ras_baselines_on_postgres() -> Result<()> {
    common::with_postgres("ras_baselines_on_postgres", scenario).await
}
