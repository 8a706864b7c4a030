//! The GPU suite's cases: skipped without an accelerator, failing on a
//! Scripted target fed real failing outputs, passing on real healthy ones,
//! every verdict of `run` with evidence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use certlab_hwdb::{Accelerator, HardwareProfile, Inventory};
use certlab_lab::{Scripted, Target};
use certlab_reports::{Evidence, Verdict};
use certlab_suites::plan::{Applies, Plan};
use certlab_suites::{checks, CaseCtx, CaseOutcome, MemorySink};

fn accel_fixture(rel: &str) -> String {
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hwdb/tests/fixtures/accel")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn kernlog_fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kernlog")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A profile with one accelerator of `vendor_id`.
fn profile(vendor_id: u16) -> HardwareProfile {
    let mut p = HardwareProfile::default();
    p.accelerators.push(Accelerator {
        address: "0000:07:00.0".into(),
        vendor_id,
        device_id: 0x2236,
        vendor: "vendor".into(),
        model: "model".into(),
        link_speed: None,
        link_width: None,
        max_link_speed: None,
        max_link_width: None,
    });
    p
}

/// Runs a check the profile selects; every verdict must carry evidence.
fn run(name: &str, target: &dyn Target, profile: &HardwareProfile) -> (CaseOutcome, Vec<Evidence>) {
    let check = checks::lookup(name).unwrap();
    assert_eq!(check.applies(profile, &Inventory::default()), Applies::Yes);
    common::check_with(name, target, profile, "", Duration::from_secs(30))
}

use common::commands;

/// A machine with nvidia-smi answering `nvidia-smi -q` with `text`.
fn nvidia(text: &str) -> Scripted {
    Scripted::new("gpu-sut")
        .command("command -v 'nvidia-smi'", 0, "/usr/bin/nvidia-smi\n", "")
        .command("command -v nvidia-smi", 0, "/usr/bin/nvidia-smi\n", "")
        .command("nvidia-smi -q", 0, text, "")
}

const A10: &str = "nvidia-smi-q/gpud-nvidia-smi-query.535.129.03.out.0.valid.a10.txt";
const H100: &str = "nvidia-smi-q/gpud-nvidia-smi-query.535.161.08.out.0.valid.txt";

#[test]
fn cases_are_not_selected_without_an_accelerator() {
    let none = HardwareProfile::default();
    let plan = Plan::load("gpu-cert").unwrap();
    assert_eq!(plan.cases.len(), 6);
    for s in plan.select(&none, &Inventory::default()) {
        match s.selected {
            Applies::No(why) => assert!(why.contains("NVIDIA"), "{}: {why}", s.case.id),
            Applies::Yes => panic!("{} selected without an accelerator", s.case.id),
        }
    }
    // An AMD GPU selects the tool cases, not the Xid, DCGM and burn ones
    // (NVIDIA's).
    let amd = profile(0x1002);
    let sel = plan.select(&amd, &Inventory::default());
    let xid = sel.iter().find(|s| s.case.id == "gpu.xid").unwrap();
    assert!(matches!(&xid.selected, Applies::No(w) if w.contains("Xid")));
    assert!(sel.iter().filter(|s| s.selected == Applies::Yes).count() == 3);
}

/// The real A10 with 4 uncorrectable remapped rows and a remapping pending.
#[test]
fn memory_retirement_fails_on_the_real_a10_with_a_remap_pending() {
    let (o, ev) = run(
        "gpu-memory-retirement",
        &nvidia(&accel_fixture(A10)),
        &profile(0x10de),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("0000:07:00.0 (NVIDIA A10)"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("row remapping is pending"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("0 correctable, 4 uncorrectable"),
        "{}",
        o.reason
    );
    assert!(
        commands(&ev).contains(&"nvidia-smi -q".to_string()),
        "{:?}",
        commands(&ev)
    );
    // Eight healthy H100s pass.
    let (o, _) = run(
        "gpu-memory-retirement",
        &nvidia(&accel_fixture(H100)),
        &profile(0x10de),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert_eq!(
        o.reason.matches("nothing pending").count(),
        8,
        "{}",
        o.reason
    );
}

/// No real output with uncorrected volatile ECC errors was found; the real
/// A10 output with its volatile `DRAM Uncorrectable` set to 2 (the only
/// edit) stands in for one.
#[test]
fn ecc_fails_on_uncorrected_volatile_errors_and_passes_clean_gpus() {
    let a10 = accel_fixture(A10);
    let at = a10.find("DRAM Uncorrectable            : 0").unwrap();
    let mut bad = a10.clone();
    bad.replace_range(
        at..at + "DRAM Uncorrectable            : 0".len(),
        "DRAM Uncorrectable            : 2",
    );
    let (o, _) = run("gpu-ecc", &nvidia(&bad), &profile(0x10de));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("2 uncorrected volatile ECC errors"),
        "{}",
        o.reason
    );
    let (o, _) = run("gpu-ecc", &nvidia(&a10), &profile(0x10de));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    // Eight RTX 4090s without ECC: nothing to judge, a skip saying so, not a pass.
    let (o, _) = run(
        "gpu-ecc",
        &nvidia(&accel_fixture(
            "nvidia-smi-q/gpud-nvidia-smi-query.535.154.05.out.1.valid.txt",
        )),
        &profile(0x10de),
    );
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(o.reason.contains("ECC disabled"), "{}", o.reason);
}

/// Width is judged, link rate is not: the real TITAN V idles at Gen1 of
/// Gen3 and passes; the real A10 output with its current width set to 8x
/// (the only edit; the real narrow links at hand are XML) fails.
#[test]
fn pcie_link_fails_narrow_links_and_notes_idle_link_rates() {
    let (o, _) = run(
        "gpu-pcie-link",
        &nvidia(&accel_fixture(
            "nvidia-smi-q/gpud-nvidia-smi-query.560.35.03.out.0.valid.txt",
        )),
        &profile(0x10de),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(o.reason.contains("at Gen1 of Gen3"), "{}", o.reason);
    let a10 = accel_fixture(A10);
    let cur = "                Current                   : 16x";
    let at = a10.find(cur).unwrap();
    let mut narrow = a10.clone();
    narrow.replace_range(
        at..at + cur.len(),
        "                Current                   : 8x",
    );
    let (o, _) = run("gpu-pcie-link", &nvidia(&narrow), &profile(0x10de));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("0000:07:00.0 (NVIDIA A10): x8 of x16"),
        "{}",
        o.reason
    );
    // A Gen4 device behind a Gen3 host port (as the real RTX 4090 XML
    // reports): the A10 log with its `Host Max` N/A set to 3 (the only edit).
    let host = "                Host Max                  : N/A";
    let at = a10.find(host).unwrap();
    let mut gen3 = a10.clone();
    gen3.replace_range(
        at..at + host.len(),
        "                Host Max                  : 3",
    );
    let (o, _) = run("gpu-pcie-link", &nvidia(&gen3), &profile(0x10de));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("the host side allows Gen3, the device Gen4"),
        "{}",
        o.reason
    );
    // The real 8 RTX 4090s (Gen1 of Gen4 at idle, host and device Gen4): pass.
    let (o, _) = run(
        "gpu-pcie-link",
        &nvidia(&accel_fixture(
            "nvidia-smi-q/gpud-nvidia-smi-query.535.154.05.out.1.valid.txt",
        )),
        &profile(0x10de),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}

#[test]
fn xid_fails_on_real_gsp_timeouts_and_notes_application_xids() {
    let m = Scripted::new("gpu-sut").command(
        "dmesg",
        0,
        &kernlog_fixture("gpud-dmesg-with-xid-119.log"),
        "",
    );
    let (o, ev) = run("gpu-xid", &m, &profile(0x10de));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("0000:9b:00: Xid 119 ×5 (GSP RPC Timeout)"),
        "{}",
        o.reason
    );
    assert_eq!(commands(&ev), vec!["dmesg".to_string()]);
    // Xid 13 (Graphics Engine Exception) is usually the application's: noted, passed.
    let m = Scripted::new("gpu-sut").command(
        "dmesg",
        0,
        &kernlog_fixture("gpud-memory-dmesg.decode.iso.log"),
        "",
    );
    let (o, _) = run("gpu-xid", &m, &profile(0x10de));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(o.reason.contains("Xid 13"), "{}", o.reason);
    let m = Scripted::new("gpu-sut").command("dmesg", 0, &kernlog_fixture("gpud-kmsg.1.log"), "");
    assert_eq!(
        run("gpu-xid", &m, &profile(0x10de)).0.verdict,
        Verdict::Pass
    );
}

/// A GPU whose tool is not installed: a skip naming the tool, with the
/// probe as evidence; a tool that fails: a skip quoting it.
#[test]
fn missing_or_failing_tools_skip_with_the_reason() {
    let bare = Scripted::new("gpu-sut");
    for case in ["gpu-ecc", "gpu-memory-retirement", "gpu-pcie-link"] {
        let (o, ev) = run(case, &bare, &profile(0x10de));
        assert_eq!(o.verdict, Verdict::Skip, "{case}: {}", o.reason);
        assert!(
            o.reason
                .contains("nvidia-smi (for the NVIDIA accelerators) is not installed"),
            "{}",
            o.reason
        );
        assert!(
            commands(&ev).iter().any(|c| c.starts_with("command -v")),
            "{case}"
        );
    }
    let broken = Scripted::new("gpu-sut")
        .command("command -v", 0, "/usr/bin/nvidia-smi\n", "")
        .command(
            "nvidia-smi -q",
            9,
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\n",
            "",
        );
    let (o, _) = run("gpu-ecc", &broken, &profile(0x10de));
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("exited 9: NVIDIA-SMI has failed"),
        "{}",
        o.reason
    );
    // Ascend: npu-smi reports no ECC; the case says so.
    let npu = Scripted::new("npu-sut")
        .command("command -v", 0, "/usr/local/sbin/npu-smi\n", "")
        .command(
            "npu-smi info",
            0,
            &accel_fixture("npu-smi/nputop-npusmi_hbm.npu-smi-info.txt"),
            "",
        );
    let (o, _) = run("gpu-ecc", &npu, &profile(0x19e5));
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason
            .contains("0000:5a:00.0 (910B2C): ECC counters not reported (npu-smi info)"),
        "{}",
        o.reason
    );
}

/// Run on a machine without an accelerator (the runner would not select
/// them there): a skip whose evidence is the PCI listing.
#[test]
fn run_without_an_accelerator_skips_with_evidence() {
    let m = Scripted::new("plain").file("/sys/bus/pci/devices/0000:00:00.0/vendor", "0x8086\n");
    let none = HardwareProfile::default();
    for case in ["gpu-ecc", "gpu-memory-retirement", "gpu-pcie-link"] {
        let check = checks::lookup(case).unwrap();
        assert!(matches!(
            check.applies(&none, &Inventory::default()),
            Applies::No(_)
        ));
        let sink = MemorySink::default();
        let (params, inv) = (toml::Table::new(), Inventory::default());
        let ctx = CaseCtx::new(&m, &none, &inv, &params, &sink, Duration::from_secs(5));
        let o = check.run(&ctx).unwrap();
        assert_eq!(o.verdict, Verdict::Skip, "{case}");
        let ev = ctx.take_evidence();
        assert!(
            matches!(&ev[..], [Evidence::File { path, .. }] if path == "/sys/bus/pci/devices/"),
            "{case}: {ev:?}"
        );
    }
}
