//! The nightly RAS cases against a stored baseline (`baseline = true`):
//! each counter the case read is compared with the baseline's — a counter
//! that counts errors the baseline did not, or at a higher rate per hour of
//! uptime, fails (or warns); at or below it passes; without a baseline the
//! case judges the counts since boot and says so.
//!
//! Real outputs on Scripted targets: the EDAC tree of prometheus/
//! node_exporter's sysfs fixture (`fixtures/edac`), the AER walk over the
//! clean and failing AER trees (`fixtures/aer`), and rasdaemon databases
//! whose rows are read off real `ras-mc-ctl` outputs (`fixtures/rasdaemon`;
//! see each PROVENANCE.tsv). A baseline is what the store keeps of a run:
//! each counter's one reading ([`ras_delta::is_ras_counter`]).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::Scripted;
use certlab_reports::{BaselineScope, Metric, PerfVerdict, Verdict};
use certlab_suites::checks::ras::aer_walk;
use certlab_suites::checks::ras_delta::{self, UPTIME_METRIC};
use certlab_suites::perf::samples::Series;
use certlab_suites::perf::Baseline;
use certlab_suites::{checks, CaseCtx, CaseOutcome, MemorySink};

/// Runs check `name` with `params` and, when given, `baseline`; insists
/// on evidence.
fn run(name: &str, target: &Scripted, params: &str, baseline: Option<&Baseline>) -> CaseOutcome {
    let check = checks::lookup(name).unwrap();
    assert!(check.compares_with_baseline(), "{name}");
    let params: toml::Table = toml::from_str(params).unwrap();
    let sink = MemorySink::default();
    let (profile, inv) = (HardwareProfile::default(), Inventory::default());
    let ctx = CaseCtx::new(
        target,
        &profile,
        &inv,
        &params,
        &sink,
        Duration::from_secs(30),
    )
    .with_baseline(baseline);
    let out = check.run(&ctx).unwrap();
    assert!(!ctx.take_evidence().is_empty(), "{name}: no evidence");
    out
}

/// The baseline the store makes of a run's case: every RAS counter (and
/// the uptime) with its one reading.
fn baseline_of(o: &CaseOutcome) -> Baseline {
    let metrics: BTreeMap<String, Series> = o
        .metrics
        .iter()
        .filter(|m| ras_delta::is_ras_counter(m))
        .map(|m| {
            (
                m.name.clone(),
                Series {
                    unit: m.unit.clone(),
                    direction: m.better,
                    samples: vec![m.value],
                },
            )
        })
        .collect();
    assert!(!metrics.is_empty());
    Baseline {
        scope: BaselineScope::Machine,
        key: "sut".into(),
        source_run: "run-0".into(),
        created: time::OffsetDateTime::UNIX_EPOCH,
        kernel: "6.1.0-28-amd64".into(),
        plan_version: "1.2.0".into(),
        metrics,
    }
}

fn metric<'a>(o: &'a CaseOutcome, name: &str) -> &'a Metric {
    o.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name}: {:?}", o.metrics))
}

fn uptime(s: f64) -> String {
    format!("{s:.2} {:.2}\n", s * 3.0)
}

/// The node_exporter EDAC tree as a machine's sysfs, up `up` seconds.
fn edac_machine(up: f64) -> Scripted {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/edac/node_exporter");
    let mut t = Scripted::new("sut").file("/proc/uptime", uptime(up));
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
            t = t.file(
                &format!("/sys/devices/system/edac/mc/{rel}"),
                std::fs::read(&p).unwrap(),
            );
        }
    }
    t
}

const NIGHTLY: &str = "max_ce = 0\nbaseline = true\nregression = \"fail\"\n";

#[test]
fn edac_counters_per_controller_and_dimm_are_recorded() {
    let o = run("ras-edac", &edac_machine(36000.0), "max_ce = 0", None);
    // As before: the UEs fail the case.
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.baseline.is_none());
    for (name, v) in [
        ("edac.mc0.ce", 1.0),
        ("edac.mc0.ce_noinfo", 2.0),
        ("edac.mc0.ue", 5.0),
        ("edac.mc0.ue_noinfo", 6.0),
        ("edac.mc0.csrow0.ch0.ce", 0.0),
        ("edac.mc0.csrow0.ue", 4.0),
        ("edac.mc0.csrow2.ue", 5.0),
        (UPTIME_METRIC, 36000.0),
    ] {
        assert_eq!(metric(&o, name).value, v, "{name}");
    }
    assert_eq!(metric(&o, "edac.mc0.ue").unit, "errors");
}

#[test]
fn edac_without_a_baseline_judges_since_boot_and_says_so() {
    let o = run("ras-edac", &edac_machine(36000.0), NIGHTLY, None);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("no RAS baseline for this machine"),
        "{}",
        o.reason
    );
    assert!(o.baseline.is_none());
}

#[test]
fn edac_at_its_baseline_passes_and_above_its_rate_fails() {
    let night = run("ras-edac", &edac_machine(36000.0), "max_ce = 0", None);
    let b = baseline_of(&night);
    // The same counts over the same uptime: at the baseline, a pass,
    // though the counts since boot alone would fail.
    let o = run("ras-edac", &edac_machine(36000.0), NIGHTLY, Some(&b));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason
            .starts_with("no counter above the machine baseline sut (run run-0"),
        "{}",
        o.reason
    );
    let cmp = o.baseline.as_ref().unwrap();
    assert!(
        cmp.metrics
            .iter()
            .all(|m| m.verdict == PerfVerdict::NoChange),
        "{cmp:?}"
    );
    // Every counter non-zero on either side is reported, with the baseline's value.
    let ue = cmp
        .metrics
        .iter()
        .find(|m| m.name == "edac.mc0.ue")
        .unwrap();
    assert_eq!(ue.baseline, vec![5.0]);
    // The same counts in a tenth of the uptime: ten times the rate, a fail.
    let o = run("ras-edac", &edac_machine(3600.0), NIGHTLY, Some(&b));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(!o.warning);
    assert!(
        o.reason
            .contains("edac.mc0.ue: 5 (5.000/h) above the baseline's 5 (0.500/h)"),
        "{}",
        o.reason
    );
    let cmp = o.baseline.as_ref().unwrap();
    assert_eq!(cmp.metrics[0].verdict, PerfVerdict::Regression);
    assert_eq!(cmp.metrics[0].change_pct.map(f64::round), Some(900.0));
    // ... which the plan may make a warning.
    let o = run(
        "ras-edac",
        &edac_machine(3600.0),
        "baseline = true\nregression = \"warn\"\n",
        Some(&b),
    );
    assert!(o.verdict == Verdict::Fail && o.warning, "{}", o.reason);
}

fn aer_machine(tree: &str, up: f64) -> Scripted {
    Scripted::new("sut")
        .command(&aer_walk(), 0, &common::aer_walk_output(tree), "")
        .file("/proc/uptime", uptime(up))
}

#[test]
fn aer_errors_the_baseline_did_not_have_are_a_new_error_class() {
    // The clean tree (every counter 0) is the baseline.
    let clean = run("ras-aer", &aer_machine("node_exporter", 36000.0), "", None);
    assert_eq!(clean.verdict, Verdict::Pass, "{}", clean.reason);
    assert_eq!(metric(&clean, "aer.0000:01:00.0.fatal").value, 0.0);
    let b = baseline_of(&clean);
    // The failing tree: fatal and non-fatal errors on functions the
    // baseline never saw fail as new error classes, even after a long uptime.
    let params = "errors = \"uncorrected\"\nbaseline = true\n";
    let o = run(
        "ras-aer",
        &aer_machine("procfs", 360000.0),
        params,
        Some(&b),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("aer.0000:00:1f.6.fatal:") && o.reason.contains("a new error class"),
        "{}",
        o.reason
    );
    // Only the uncorrected counters are this case's.
    let cmp = o.baseline.as_ref().unwrap();
    assert!(
        cmp.metrics.iter().all(|m| !m.name.ends_with(".corrected")),
        "{cmp:?}"
    );
    assert!(
        o.reason.contains("not read this run: aer.0000:45:00.0"),
        "{}",
        o.reason
    );
    // The corrected case sees the corrected ones, and its plan warns.
    let o = run(
        "ras-aer",
        &aer_machine("procfs", 360000.0),
        "errors = \"corrected\"\nbaseline = true\nregression = \"warn\"\n",
        Some(&b),
    );
    assert!(o.verdict == Verdict::Fail && o.warning, "{}", o.reason);
    assert!(o.reason.contains(".corrected:"), "{}", o.reason);
    // The other way round: fewer errors than the baseline pass.
    let failing = run("ras-aer", &aer_machine("procfs", 3600.0), "", None);
    let b = baseline_of(&failing);
    let o = run("ras-aer", &aer_machine("procfs", 7200.0), params, Some(&b));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(o
        .baseline
        .as_ref()
        .unwrap()
        .metrics
        .iter()
        .any(|m| m.verdict == PerfVerdict::Improvement));
}

fn rasdaemon_machine(db: &str, up: f64) -> Scripted {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/rasdaemon")
        .join(db);
    Scripted::new("sut")
        .file(certlab_suites::rasdb::DEFAULT_DB, std::fs::read(p).unwrap())
        .file("/proc/uptime", uptime(up))
}

#[test]
fn rasdaemon_rows_per_table_and_class_against_the_baseline() {
    // `since = "all"`: every row counts, and counts (not rates) are compared.
    let corrected = run(
        "ras-rasdaemon",
        &rasdaemon_machine("rasdaemon-0.8.5-corrected.db", 36000.0),
        "since = \"all\"",
        None,
    );
    assert_eq!(corrected.verdict, Verdict::Pass, "{}", corrected.reason);
    assert!(metric(&corrected, "rasdaemon.mc_event.corrected").value > 0.0);
    assert!(!corrected.metrics.iter().any(|m| m.name == UPTIME_METRIC));
    let b = baseline_of(&corrected);
    // The database with injected AER errors: uncorrected rows where the
    // baseline had none.
    let injected = rasdaemon_machine("rasdaemon-0.8.5-aer-injected.db", 36000.0);
    let o = run(
        "ras-rasdaemon",
        &injected,
        "since = \"all\"\nbaseline = true\n",
        Some(&b),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("rasdaemon.aer_event.uncorrected:")
            && o.reason.contains("(counts: an uptime is missing)"),
        "{}",
        o.reason
    );
    // The corrected database against itself: at its baseline.
    let o = run(
        "ras-rasdaemon",
        &rasdaemon_machine("rasdaemon-0.8.5-corrected.db", 36000.0),
        "since = \"all\"\nerrors = \"corrected\"\nbaseline = true\n",
        Some(&b),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}
