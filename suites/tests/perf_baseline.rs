//! Performance cases against a stored baseline: no change passes, a
//! regression fails (or warns, as the plan says), a comparison that cannot
//! tell warns, and the comparison is recorded with the baseline's samples.
//!
//! The samples are real: the per-second throughputs of a real `iperf3 -J`
//! run (`fixtures/perf/iperf3/iperf3-3.6-tcp-4streams.json`, 60 one-second
//! intervals of 4 streams, PROVENANCE.tsv). Each benchmark run of the case
//! is answered with the real loopback report
//! (`iperf3-3.12-tcp-loopback.json`) carrying one of those figures as its
//! received rate; "slower" runs carry them scaled by 0.85.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::{DirEntry, ExecOutput, Scripted, Target, TargetError};
use certlab_reports::{BaselineScope, Better, Verdict};
use certlab_suites::perf::samples::Series;
use certlab_suites::perf::{self, Baseline};
use certlab_suites::{checks, CaseCtx, CaseOutcome, MemorySink};

const FOUR_STREAMS: &str = include_str!("fixtures/perf/iperf3/iperf3-3.6-tcp-4streams.json");
const LOOPBACK: &str = include_str!("fixtures/perf/iperf3/iperf3-3.12-tcp-loopback.json");
const KEY: &str = "received.bits_per_second";

/// The real per-second throughputs (bit/s) of the 4-stream run.
fn intervals() -> Vec<f64> {
    let v: serde_json::Value = serde_json::from_str(FOUR_STREAMS).unwrap();
    v["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["sum"]["bits_per_second"].as_f64().unwrap())
        .collect()
}

/// The real loopback report with `bps` as its received rate.
fn report(bps: f64) -> String {
    let mut v: serde_json::Value = serde_json::from_str(LOOPBACK).unwrap();
    v["end"]["sum_received"]["bits_per_second"] = serde_json::json!(bps);
    serde_json::to_string_pretty(&v).unwrap()
}

/// A machine with iperf3 whose loopback runs answer `reports` in turn.
struct Machine {
    inner: Scripted,
    reports: Vec<String>,
    n: AtomicUsize,
}

impl Machine {
    fn new(rates: &[f64]) -> Machine {
        Machine {
            inner: Scripted::new("sut").command("command -v iperf3", 0, "/usr/bin/iperf3\n", ""),
            reports: rates.iter().map(|r| report(*r)).collect(),
            n: AtomicUsize::new(0),
        }
    }
}

impl Target for Machine {
    fn name(&self) -> &str {
        "sut"
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        if command.starts_with("s=; d=") {
            let i = self.n.fetch_add(1, Ordering::SeqCst) % self.reports.len();
            return Ok(ExecOutput {
                exit: Some(0),
                stdout: self.reports[i].clone().into_bytes(),
                stderr: Vec::new(),
                duration: Duration::from_millis(1),
                timed_out: false,
            });
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

fn baseline(samples: &[f64]) -> Baseline {
    let mut metrics = BTreeMap::new();
    metrics.insert(
        KEY.to_string(),
        Series {
            unit: "bit/s".into(),
            direction: Better::Higher,
            samples: samples.to_vec(),
        },
    );
    Baseline {
        scope: BaselineScope::Platform,
        key: "QEMU Standard PC / intel Xeon".into(),
        source_run: "0193c1d2-aaaa-7bbb-8ccc-000000000001".into(),
        created: time::OffsetDateTime::UNIX_EPOCH,
        kernel: "6.1.0-28-amd64".into(),
        plan_version: "1.0.0".into(),
        metrics,
    }
}

/// Runs `perf-iperf3` on `target` with `params`, given `baseline`.
fn run(target: &dyn Target, params: &str, baseline: Option<&Baseline>) -> CaseOutcome {
    let check = checks::lookup("perf-iperf3").unwrap();
    assert!(check.compares_with_baseline());
    let params: toml::Table = toml::from_str(params).unwrap();
    let (profile, inv, sink) = (
        HardwareProfile::default(),
        Inventory::default(),
        MemorySink::default(),
    );
    let ctx = CaseCtx::new(
        target,
        &profile,
        &inv,
        &params,
        &sink,
        Duration::from_secs(60),
    )
    .with_baseline(baseline);
    let out = check.run(&ctx).unwrap();
    assert!(!ctx.take_evidence().is_empty());
    out
}

const PARAMS: &str = "min_runs = 5\nmax_runs = 10\nmax_cv_pct = 3.0";

#[test]
fn the_same_throughput_passes_as_no_change_with_the_comparison_recorded() {
    let iv = intervals();
    // Seconds 11-15 of the real run as the baseline, 21-25 as this run.
    let base = baseline(&iv[10..15]);
    let o = run(&Machine::new(&iv[20..25]), PARAMS, Some(&base));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(!o.warning);
    let cmp = o.baseline.as_ref().unwrap();
    assert_eq!(cmp.scope, BaselineScope::Platform);
    assert_eq!(cmp.metrics.len(), 1);
    let m = &cmp.metrics[0];
    assert_eq!(
        (m.name.as_str(), m.verdict),
        (KEY, perf::Verdict::NoChange),
        "{}",
        m.reason
    );
    assert_eq!(m.baseline, iv[10..15].to_vec());
    assert!(o.reason.contains("no_change"), "{}", o.reason);
    // The run's samples are the case's metrics, as without a baseline.
    let samples: Vec<f64> = o
        .metrics
        .iter()
        .filter(|x| x.name == KEY)
        .map(|x| x.value)
        .collect();
    assert_eq!(samples, iv[20..25].to_vec());
}

#[test]
fn a_slower_run_is_a_regression_that_fails_or_warns_as_the_plan_says() {
    let iv = intervals();
    let base = baseline(&iv[10..15]);
    let slower: Vec<f64> = iv[20..25].iter().map(|v| v * 0.85).collect();
    let o = run(&Machine::new(&slower), PARAMS, Some(&base));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(!o.warning, "regression = fail (the default) is a failure");
    let m = &o.baseline.as_ref().unwrap().metrics[0];
    assert_eq!(m.verdict, perf::Verdict::Regression, "{}", m.reason);
    let change = m.change_pct.unwrap();
    assert!((-18.0..-12.0).contains(&change), "{change}");
    assert!(o.reason.contains("regression: -1"), "{}", o.reason);
    // regression = "warn": the same failure, as a warning.
    let o = run(
        &Machine::new(&slower),
        &format!("{PARAMS}\nregression = \"warn\""),
        Some(&base),
    );
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.warning);
    // Anything else is refused, not guessed.
    let check = checks::lookup("perf-iperf3").unwrap();
    let params: toml::Table =
        toml::from_str(&format!("{PARAMS}\nregression = \"ignore\"")).unwrap();
    let (profile, inv, sink) = (
        HardwareProfile::default(),
        Inventory::default(),
        MemorySink::default(),
    );
    let m = Machine::new(&slower);
    let ctx = CaseCtx::new(&m, &profile, &inv, &params, &sink, Duration::from_secs(60))
        .with_baseline(Some(&base));
    let e = check.run(&ctx).unwrap_err().to_string();
    assert!(e.contains("`regression` is `ignore`"), "{e}");
}

#[test]
fn a_comparison_that_cannot_tell_is_a_warning() {
    let iv = intervals();
    // A baseline of two samples: too few to judge.
    let base = baseline(&iv[10..12]);
    let o = run(&Machine::new(&iv[20..25]), PARAMS, Some(&base));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.warning);
    let m = &o.baseline.as_ref().unwrap().metrics[0];
    assert_eq!(m.verdict, perf::Verdict::Inconclusive);
    assert!(o.reason.contains("cannot tell"), "{}", o.reason);
}

#[test]
fn without_a_baseline_nothing_is_compared() {
    let iv = intervals();
    let o = run(&Machine::new(&iv[20..25]), PARAMS, None);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(o.baseline.is_none() && !o.warning);
}

#[test]
fn a_figure_that_does_not_settle_fails_whatever_the_baseline_says() {
    let iv = intervals();
    let base = baseline(&iv[10..15]);
    // Seconds 50-54 hold the run's dip (12.1 Mbit/s among 17-18): the CV
    // stays above 3 % to the cap.
    let o = run(
        &Machine::new(&iv[49..54]),
        "min_runs = 5\nmax_runs = 5\nmax_cv_pct = 3.0",
        Some(&base),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(!o.warning);
    assert!(o.reason.contains("does not settle"), "{}", o.reason);
    assert!(o.baseline.is_some());
}
