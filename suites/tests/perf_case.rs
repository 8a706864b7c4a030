//! The `perf-fio` case: skipped with its reason where it cannot measure,
//! passing once the bandwidth settles, failing when it does not — on
//! scripted targets replying real fio reports (`fixtures/perf/fio`,
//! PROVENANCE.tsv) and on this machine with the real fio.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failure should panic

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::{DirEntry, ExecOutput, Local, Scripted, Target, TargetError};
use certlab_reports::{Evidence, Verdict};
use certlab_suites::{checks, CaseCtx, CaseOutcome, MemorySink};

const SEQREAD: &str = include_str!("fixtures/perf/fio/fio-3.33-seqread.json");
const SEQREAD_4K: &str = include_str!("fixtures/perf/fio/fio-3.33-seqread-4k.json");
const WRITE_EPERM: &str = include_str!("fixtures/perf/fio/fio-3.33-write-error.json");
const STRESS_CPU: &str = include_str!("fixtures/perf/stress-ng/stress-ng-cpu-metrics.stdout");
const STRESS_CPU_2: &str = include_str!("fixtures/perf/stress-ng/stress-ng-cpu-brief-2s.stdout");
const IPERF_LOOPBACK: &str = include_str!("fixtures/perf/iperf3/iperf3-3.12-tcp-loopback.json");
const IPERF_LAN: &str = include_str!("fixtures/perf/iperf3/iperf3-3.0.11-tcp.json");
const IPERF_REFUSED: &str = include_str!("fixtures/perf/iperf3/iperf3-3.12-refused.json");
const DF_EXT4: &str = include_str!("fixtures/seqread/df-ext4.stdout");
const DF_TMPFS: &str = include_str!("fixtures/seqread/df-stat-tmpfs.stdout");

fn run(target: &dyn Target, params: &str) -> (CaseOutcome, Vec<Evidence>) {
    run_case("perf-fio", target, params)
}

fn run_case(name: &str, target: &dyn Target, params: &str) -> (CaseOutcome, Vec<Evidence>) {
    let profile = HardwareProfile::default();
    common::check_with(name, target, &profile, params, Duration::from_secs(120))
}

fn commands(evidence: &[Evidence], prefix: &str) -> usize {
    evidence
        .iter()
        .filter(|e| matches!(e, Evidence::Command { cmd, .. } if cmd.starts_with(prefix)))
        .count()
}

fn machine(fio_exit: i32, fio_report: &str) -> Scripted {
    Scripted::new("sut")
        .command("command -v fio", 0, "/usr/bin/fio\n", "")
        .command("df -Pk", 0, DF_EXT4, "")
        .command("mktemp -d", 0, "/var/tmp/certlab-fio.Xy12Ab\n", "")
        .command("fio --name=certlab", fio_exit, fio_report, "")
        .command("rm -rf", 0, "", "")
}

#[test]
fn no_fio_is_a_skip_with_the_reason() {
    let m = Scripted::new("sut").command("command -v fio", 1, "", "");
    let (o, _) = run(&m, "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("fio is not installed"), "{}", o.reason);
}

#[test]
fn a_file_system_in_memory_is_not_measured() {
    let m = Scripted::new("sut")
        .command("command -v fio", 0, "/usr/bin/fio\n", "")
        .command("df -Pk", 0, DF_TMPFS, "");
    let (o, e) = run(&m, "");
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(o.reason.contains("on tmpfs"), "{}", o.reason);
    assert_eq!(commands(&e, "fio "), 0);
}

#[test]
fn a_steady_figure_passes_after_the_minimum_runs_all_kept() {
    let (o, e) = run(&machine(0, SEQREAD), "min_runs = 3\nmax_runs = 10");
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.starts_with("3 runs of fio rw=read bs=1M"),
        "{}",
        o.reason
    );
    assert_eq!(commands(&e, "fio --name=certlab"), 3);
    // Every figure of every run is a sample: 7 per run (bw, iops, clat mean
    // and 4 percentiles), named without the job.
    assert_eq!(o.metrics.len(), 21, "{:?}", o.metrics);
    let bw: Vec<f64> = o
        .metrics
        .iter()
        .filter(|m| m.name == "read.bw")
        .map(|m| m.value)
        .collect();
    assert_eq!(bw, vec![1_677_002_501.0; 3]);
    // The working directory is removed.
    assert_eq!(commands(&e, "rm -rf /var/tmp/certlab-fio.Xy12Ab"), 1);
}

/// A scripted machine whose answers to commands starting with `prefix`
/// cycle through `reports`.
struct Cycling {
    inner: Scripted,
    prefix: &'static str,
    reports: Vec<&'static str>,
    n: AtomicUsize,
}

impl Target for Cycling {
    fn name(&self) -> &str {
        "sut"
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        if command.starts_with(self.prefix) {
            let i = self.n.fetch_add(1, Ordering::SeqCst) % self.reports.len();
            return Ok(ExecOutput {
                exit: Some(0),
                stdout: self.reports[i].as_bytes().to_vec(),
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

#[test]
fn a_figure_that_does_not_settle_fails_at_the_cap() {
    // Two real reports of one read, 128 KiB and 4 KiB blocks: 1.68 and
    // 1.42 GB/s, a coefficient of variation near 9 %.
    let t = Cycling {
        inner: machine(0, SEQREAD),
        prefix: "fio ",
        reports: vec![SEQREAD, SEQREAD_4K],
        n: AtomicUsize::new(0),
    };
    let (o, e) = run(&t, "min_runs = 3\nmax_runs = 4\nmax_cv_pct = 3.0");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("does not settle"), "{}", o.reason);
    assert!(o.reason.contains("4 runs"), "{}", o.reason);
    assert_eq!(commands(&e, "fio --name=certlab"), 4);
    assert_eq!(o.metrics.iter().filter(|m| m.name == "read.bw").count(), 4);
    // With a looser threshold the same runs pass at the minimum.
    let t = Cycling {
        inner: machine(0, SEQREAD),
        prefix: "fio ",
        reports: vec![SEQREAD, SEQREAD_4K],
        n: AtomicUsize::new(0),
    };
    let (o, _) = run(&t, "min_runs = 3\nmax_runs = 4\nmax_cv_pct = 20.0");
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}

#[test]
fn no_right_to_write_is_a_skip_not_a_product_failure() {
    // fio's job error 1 (EPERM), a real report.
    let (o, _) = run(&machine(1, WRITE_EPERM), "");
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(o.reason.contains("cannot use a test file"), "{}", o.reason);
    assert!(o.metrics.is_empty());
}

#[test]
fn on_this_machine_it_measures_or_says_why_not() {
    let local = Local::new(None);
    let has_fio = local
        .exec("command -v fio", Duration::from_secs(10))
        .unwrap()
        .success();
    assert!(
        has_fio,
        "fio is not installed on this machine: `scripts/bootstrap --test` installs it"
    );
    let leftovers = || {
        std::fs::read_dir("/var/tmp")
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("certlab-fio."))
            .count()
    };
    let before = leftovers();
    let (o, e) = run(
        &local,
        "dir = \"/var/tmp\"\nsize_mib = 16\nruntime_s = 1\nmin_runs = 3\nmax_runs = 5\nmax_cv_pct = 50.0",
    );
    match o.verdict {
        Verdict::Pass | Verdict::Fail => {
            let bw = o.metrics.iter().filter(|m| m.name == "read.bw").count();
            assert!((3..=5).contains(&bw), "{bw} samples: {}", o.reason);
            assert_eq!(commands(&e, "fio --name=certlab"), bw);
        }
        Verdict::Skip => assert!(
            o.reason.contains("O_DIRECT")
                || o.reason.contains("in memory")
                || o.reason.contains("free"),
            "{}",
            o.reason
        ),
        v => panic!("{v}: {}", o.reason),
    }
    println!("perf-fio here: {}: {}", o.verdict, o.reason);
    assert_eq!(leftovers(), before, "the working directory was left behind");
}

// ---- perf-stress-ng --------------------------------------------------------

fn stress_machine(report: &str) -> Scripted {
    Scripted::new("sut")
        .command("command -v stress-ng", 0, "/usr/bin/stress-ng\n", "")
        .command("stress-ng --cpu", 0, report, "")
}

#[test]
fn stress_ng_missing_is_a_skip_with_the_reason() {
    let m = Scripted::new("sut").command("command -v stress-ng", 1, "", "");
    let (o, _) = run_case("perf-stress-ng", &m, "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("stress-ng is not installed"),
        "{}",
        o.reason
    );
}

#[test]
fn stress_ng_steady_rate_passes_with_every_run_kept() {
    let (o, e) = run_case(
        "perf-stress-ng",
        &stress_machine(STRESS_CPU),
        "timeout_s = 3",
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.starts_with(
            "3 runs of stress-ng --cpu 1 for 3 s: cpu.bogo_ops_per_sec_real mean 1671.9"
        ),
        "{}",
        o.reason
    );
    assert_eq!(
        commands(&e, "stress-ng --cpu 1 --timeout 3s --metrics-brief"),
        3
    );
    assert_eq!(o.metrics.len(), 6, "{:?}", o.metrics);
}

#[test]
fn stress_ng_rate_that_wanders_fails_at_the_cap() {
    // Two real runs, 1671.90 and 1624.94 bogo ops/s: a CV near 1.6 %.
    let cycling = || Cycling {
        inner: stress_machine(STRESS_CPU),
        prefix: "stress-ng --cpu",
        reports: vec![STRESS_CPU, STRESS_CPU_2],
        n: AtomicUsize::new(0),
    };
    let (o, _) = run_case(
        "perf-stress-ng",
        &cycling(),
        "max_runs = 5\nmax_cv_pct = 1.0",
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("does not settle") && o.reason.contains("5 runs"),
        "{}",
        o.reason
    );
    let (o, _) = run_case(
        "perf-stress-ng",
        &cycling(),
        "max_runs = 5\nmax_cv_pct = 3.0",
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert_eq!(o.metrics.len(), 6);
}

#[test]
fn stress_ng_refuses_a_stressor_name_it_would_have_to_quote() {
    let m = stress_machine(STRESS_CPU);
    let check = checks::lookup("perf-stress-ng").unwrap();
    let params: toml::Table = toml::from_str("stressor = \"cpu; reboot\"").unwrap();
    let sink = MemorySink::default();
    let (inv, profile) = (Inventory::default(), HardwareProfile::default());
    let ctx = CaseCtx::new(&m, &profile, &inv, &params, &sink, Duration::from_secs(5));
    let e = check.run(&ctx).unwrap_err();
    assert!(e.to_string().contains("cpu; reboot"), "{e}");
}

#[test]
fn stress_ng_on_this_machine() {
    let local = Local::new(None);
    let has = local
        .exec("command -v stress-ng", Duration::from_secs(10))
        .unwrap()
        .success();
    assert!(
        has,
        "stress-ng is not installed on this machine: `scripts/bootstrap --test` installs it"
    );
    let (o, e) = run_case(
        "perf-stress-ng",
        &local,
        "timeout_s = 1\nmin_runs = 3\nmax_runs = 4\nmax_cv_pct = 50.0",
    );
    assert!(
        matches!(o.verdict, Verdict::Pass | Verdict::Fail),
        "{}: {}",
        o.verdict,
        o.reason
    );
    let n = o
        .metrics
        .iter()
        .filter(|m| m.name == "cpu.bogo_ops_per_sec_real")
        .count();
    assert!((3..=4).contains(&n), "{n}: {}", o.reason);
    assert_eq!(commands(&e, "stress-ng --cpu"), n);
    println!("perf-stress-ng here: {}: {}", o.verdict, o.reason);
}

// ---- perf-iperf3 -----------------------------------------------------------

fn iperf_machine(exit: i32, report: &str) -> Scripted {
    Scripted::new("sut")
        .command("command -v iperf3", 0, "/usr/bin/iperf3\n", "")
        .command("s=; d=$(mktemp -d)", exit, report, "")
        .command("iperf3 -c", exit, report, "")
}

#[test]
fn iperf3_missing_is_a_skip_with_the_reason() {
    let m = Scripted::new("sut").command("command -v iperf3", 1, "", "");
    let (o, _) = run_case("perf-iperf3", &m, "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("iperf3 is not installed"), "{}", o.reason);
}

#[test]
fn iperf3_steady_loopback_passes_and_a_peer_is_used_when_named() {
    let (o, e) = run_case(
        "perf-iperf3",
        &iperf_machine(0, IPERF_LOOPBACK),
        "duration_s = 2",
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason
            .starts_with("3 runs of iperf3 loopback, 1 stream(s) for 2 s"),
        "{}",
        o.reason
    );
    // sent, received, retransmits per run.
    assert_eq!(o.metrics.len(), 9, "{:?}", o.metrics);
    assert_eq!(commands(&e, "s=; d=$(mktemp -d)"), 3);
    let (o, e) = run_case(
        "perf-iperf3",
        &iperf_machine(0, IPERF_LAN),
        "peer = \"192.0.2.7\"",
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("iperf3 to 192.0.2.7") && o.reason.contains("mean 934.3 Mbit/s"),
        "{}",
        o.reason
    );
    assert_eq!(commands(&e, "iperf3 -c 192.0.2.7 -t 5 -P 1 -J"), 3);
}

#[test]
fn iperf3_rate_that_does_not_settle_fails_at_the_cap() {
    let t = Cycling {
        inner: iperf_machine(0, IPERF_LAN),
        prefix: "iperf3 -c",
        reports: vec![IPERF_LAN, IPERF_LOOPBACK],
        n: AtomicUsize::new(0),
    };
    let (o, _) = run_case("perf-iperf3", &t, "peer = \"192.0.2.7\"\nmax_runs = 4");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("does not settle"), "{}", o.reason);
}

#[test]
fn iperf3_refused_is_an_infrastructure_error() {
    let m = iperf_machine(1, IPERF_REFUSED);
    let check = checks::lookup("perf-iperf3").unwrap();
    let params: toml::Table = toml::from_str("peer = \"192.0.2.7\"").unwrap();
    let sink = MemorySink::default();
    let (inv, profile) = (Inventory::default(), HardwareProfile::default());
    let ctx = CaseCtx::new(&m, &profile, &inv, &params, &sink, Duration::from_secs(5));
    let e = check.run(&ctx).unwrap_err();
    assert!(e.to_string().contains("Connection refused"), "{e}");
    assert!(!ctx.take_evidence().is_empty());
}

#[test]
fn iperf3_over_loopback_on_this_machine() {
    let local = Local::new(None);
    let has = local
        .exec("command -v iperf3", Duration::from_secs(10))
        .unwrap()
        .success();
    assert!(
        has,
        "iperf3 is not installed on this machine: `scripts/bootstrap --test` installs it"
    );
    let (o, e) = run_case(
        "perf-iperf3",
        &local,
        "duration_s = 1\nmin_runs = 3\nmax_runs = 4\nmax_cv_pct = 50.0",
    );
    assert!(
        matches!(o.verdict, Verdict::Pass | Verdict::Fail),
        "{}: {}",
        o.verdict,
        o.reason
    );
    let n = o
        .metrics
        .iter()
        .filter(|m| m.name == "received.bits_per_second")
        .count();
    assert!((3..=4).contains(&n), "{n}: {}", o.reason);
    assert_eq!(commands(&e, "s=; d=$(mktemp -d)"), n);
    // Every server it started is gone.
    let left = local
        .exec("pgrep -x iperf3 || true", Duration::from_secs(10))
        .unwrap();
    assert!(
        left.stdout_str().trim().is_empty(),
        "left running: {}",
        left.stdout_str()
    );
    println!("perf-iperf3 here: {}: {}", o.verdict, o.reason);
}
