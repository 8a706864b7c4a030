//! The RAS suite's cases on real sysfs trees: the AER walk run by `sh` over
//! fixture trees laid out as the kernel does (`bus/pci/devices/BDF` links
//! to `devices/pciDDDD:BB/…/BDF`), its output fed to a Scripted target;
//! every verdict with evidence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory, PciDevice};
use certlab_lab::{Local, Scripted, Target};
use certlab_reports::Verdict;
use certlab_suites::checks::ras::{aer_walk, parse_aer, Severity};
use certlab_suites::plan::Plan;
use certlab_suites::{checks, CaseCtx, CaseOutcome, MemorySink};

use common::aer_walk_output as walk_output;

fn run(target: &dyn Target, profile: &HardwareProfile, params: &str) -> CaseOutcome {
    common::check_with("ras-aer", target, profile, params, Duration::from_secs(30)).0
}

fn scripted(walk: &str) -> Scripted {
    Scripted::new("ras-sut").command(&aer_walk(), 0, walk, "")
}

#[test]
fn the_walk_reads_the_kernel_format_of_the_real_tree() {
    let devs = parse_aer(&walk_output("procfs")).unwrap();
    let addrs: Vec<&str> = devs.iter().map(|d| d.address.as_str()).collect();
    assert_eq!(devs.len(), 5, "{addrs:?}");
    let bad = devs.iter().find(|d| d.address == "0000:00:1f.6").unwrap();
    assert_eq!(bad.totals[&Severity::Corrected], 9);
    assert_eq!(bad.totals[&Severity::Fatal], 28);
    assert_eq!(bad.totals[&Severity::NonFatal], 48);
    // 8 correctable bits and 18 bits in each uncorrectable file, all non-zero.
    assert_eq!(bad.nonzero.len(), 8 + 18 + 18);
    let port = devs.iter().find(|d| d.address == "0000:00:03.0").unwrap();
    assert_eq!(port.rootport.len(), 3);
    assert!(port.rootport.values().all(|n| *n == 0));
    for d in devs.iter().filter(|d| d.address != "0000:00:1f.6") {
        assert!(d.nonzero.is_empty(), "{}", d.address);
    }
}

#[test]
fn aer_fails_on_the_real_failing_tree_naming_device_and_counter() {
    let mut profile = HardwareProfile::default();
    profile.pci_devices.push(PciDevice {
        address: "0000:00:1f.6".into(),
        vendor_id: 0x8086,
        device_id: 0x15d7,
        vendor_name: Some("Intel Corporation".into()),
        device_name: Some("Ethernet Connection (4) I219-LM".into()),
        ..PciDevice::default()
    });
    let o = run(&scripted(&walk_output("procfs")), &profile, "");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("0000:00:1f.6 (Intel Corporation Ethernet Connection (4) I219-LM): 28 uncorrected fatal errors"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("48 uncorrected non-fatal errors"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("aer_dev_fatal.MalfTLP 19"),
        "{}",
        o.reason
    );
    // Corrected errors are noted, not judged, by the uncorrected case.
    assert!(o.reason.contains("noted: 0000:00:1f.6"), "{}", o.reason);
    assert!(!o.reason.contains("0000:01:00.0"), "{}", o.reason);
}

#[test]
fn corrected_errors_fail_above_the_plan_limit_only() {
    let walk = walk_output("procfs");
    let p = HardwareProfile::default();
    let o = run(
        &scripted(&walk),
        &p,
        "errors = \"corrected\"\nmax_corrected = 5",
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("0000:00:1f.6: 9 corrected errors (aer_dev_correctable.BadDLLP 3"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("above the plan's limit 5"),
        "{}",
        o.reason
    );
    let o = run(
        &scripted(&walk),
        &p,
        "errors = \"corrected\"\nmax_corrected = 9",
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}

#[test]
fn bad_errors_parameter_is_an_error_naming_it() {
    let check = checks::lookup("ras-aer").unwrap();
    let sink = MemorySink::default();
    let params: toml::Table = toml::from_str("errors = \"both\"").unwrap();
    let (p, inv) = (HardwareProfile::default(), Inventory::default());
    let t = scripted("");
    let ctx = CaseCtx::new(&t, &p, &inv, &params, &sink, Duration::from_secs(30));
    let e = check.run(&ctx).unwrap_err().to_string();
    assert!(e.contains("`errors`") && e.contains("both"), "{e}");
}

#[test]
fn aer_passes_on_the_real_clean_tree() {
    let walk = walk_output("node_exporter");
    let p = HardwareProfile::default();
    for params in ["", "errors = \"corrected\""] {
        let o = run(&scripted(&walk), &p, params);
        assert_eq!(o.verdict, Verdict::Pass, "{params}: {}", o.reason);
        assert!(
            o.reason
                .contains("2 PCI functions with AER counters, 0 corrected"),
            "{}",
            o.reason
        );
    }
}

#[test]
fn aer_skips_with_the_reason_without_counters_and_on_unreadable_ones() {
    let p = HardwareProfile::default();
    let o = run(&scripted(""), &p, "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("no PCI function exposes AER counters"),
        "{}",
        o.reason
    );
    let o = run(
        &scripted(
            "@ 0000:01:00.0\naer_dev_correctable.TOTAL_ERR_COR=0\nunreadable.aer_dev_fatal=1\n",
        ),
        &p,
        "",
    );
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("0000:01:00.0/aer_dev_fatal"),
        "{}",
        o.reason
    );
}

/// This VM has no AER counters: skip with the reason. On a machine that
/// has them the case must reach a verdict instead.
#[test]
fn aer_on_this_machine() {
    let has_aer = std::fs::read_dir("/sys/bus/pci/devices")
        .map(|d| {
            d.flatten()
                .any(|e| e.path().join("aer_dev_correctable").exists())
        })
        .unwrap_or(false);
    let o = run(&Local::default(), &HardwareProfile::default(), "");
    if has_aer {
        assert_ne!(o.verdict, Verdict::Skip, "{}", o.reason);
    } else {
        assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
        assert!(o.reason.contains("AER"), "{}", o.reason);
    }
}

#[test]
fn server_cert_has_both_aer_cases() {
    let plan = Plan::load("server-cert").unwrap();
    let uncorrected = plan.cases.iter().find(|c| c.id == "ras.aer").unwrap();
    assert!(uncorrected.blocker);
    let corrected = plan
        .cases
        .iter()
        .find(|c| c.id == "ras.aer-corrected")
        .unwrap();
    assert!(!corrected.blocker);
}
