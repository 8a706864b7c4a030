//! `ras.einj` and `ras.mce-inject` on a machine that changes when the
//! injection command runs: a Scripted target before, another after.
//!
//! The kernel logs are real: abrt's `abrt-mce2.txt` (fixtures/kernlog) is a
//! dmesg taken after mce-inject logged a corrected machine check — its
//! lines up to "Machine check injector initialized" are the log before the
//! injection. The rasdaemon databases are fixtures/rasdaemon's: the one the
//! real rasdaemon 0.6.8 created (no rows) before, one with mc_event and
//! mce_record rows after.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use certlab_hwdb::HardwareProfile;
use certlab_lab::{DirEntry, ExecOutput, Scripted, Target, TargetError};
use certlab_reports::Verdict;

/// A machine whose state is `before` until a command starting with
/// `trigger` runs (answered by `after`), and `after` from then on.
struct Injectable {
    before: Scripted,
    after: Scripted,
    trigger: String,
    fired: AtomicBool,
}

impl Injectable {
    fn now(&self) -> &Scripted {
        if self.fired.load(Ordering::SeqCst) {
            &self.after
        } else {
            &self.before
        }
    }
}

impl Target for Injectable {
    fn name(&self) -> &str {
        "sut"
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        if command.starts_with(&self.trigger) {
            self.fired.store(true, Ordering::SeqCst);
        }
        self.now().exec(command, timeout)
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        self.now().read_file(path)
    }
    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        self.now().list_dir(path)
    }
    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        self.now().read_link(path)
    }
    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError> {
        self.now().put_file(path, data, mode)
    }
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(rel),
    )
    .unwrap()
}

fn mce_logs() -> (String, String) {
    let all = String::from_utf8(read("kernlog/abrt-mce2.txt")).unwrap();
    let cut = all.find("Machine check injector initialized").unwrap();
    let before = all[..cut].rsplit_once('\n').unwrap().0.to_string();
    (before, all)
}

const DB: &str = "/var/lib/rasdaemon/ras-mc_event.db";
const MCE: &str = "cd /sys/kernel/debug/mce-inject";
const EINJ: &str = "cd /sys/kernel/debug/apei/einj";

/// A machine with EDAC controller mc0 counting `ce` corrected errors, the
/// kernel log `log`, rasdaemon's database `db` (fixtures/rasdaemon), the
/// mce-inject and EINJ (memory and PCIe correctable) interfaces.
fn machine(log: &str, ce: u64, db: &str) -> Scripted {
    Scripted::new("sut")
        .command("dmesg", 0, log, "")
        .file("/sys/devices/system/edac/mc/mc0/ce_count", format!("{ce}\n"))
        .file("/sys/devices/system/edac/mc/mc0/ce_noinfo_count", "0\n")
        .file("/sys/devices/system/edac/mc/mc0/ue_count", "0\n")
        .file("/sys/devices/system/edac/mc/mc0/ue_noinfo_count", "0\n")
        .file(DB, read(&format!("rasdaemon/{db}")))
        .file("/sys/kernel/debug/mce-inject/bank", "0\n")
        .file(
            "/sys/kernel/debug/apei/einj/available_error_type",
            "0x00000008\tMemory Correctable\n0x00000010\tMemory Uncorrectable non-fatal\n0x00000040\tPCI Express Correctable\n",
        )
        .file("/proc/iomem", "00000000-00000fff : Reserved\n00100000-bffdffff : System RAM\n")
}

fn case(check: &str, t: &Injectable, params: &str) -> certlab_suites::CaseOutcome {
    common::check_with(
        check,
        t,
        &HardwareProfile::default(),
        params,
        Duration::from_secs(30),
    )
    .0
}

fn injectable(trigger: &str, before: Scripted, after: Scripted) -> Injectable {
    Injectable {
        before,
        after,
        trigger: trigger.into(),
        fired: AtomicBool::new(false),
    }
}

#[test]
fn off_unless_the_plan_turns_it_on() {
    let (before, _) = mce_logs();
    let t = injectable(
        MCE,
        machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db"),
        Scripted::new("x"),
    );
    let o = case("ras-mce-inject", &t, "");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("inject = true"), "{}", o.reason);
    assert!(!t.fired.load(Ordering::SeqCst));
    let o = case("ras-einj", &t, "inject = true\nerror_type = 0x10");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("inject_uncorrectable = true"),
        "{}",
        o.reason
    );
    assert!(!t.fired.load(Ordering::SeqCst));
}

#[test]
fn a_software_mce_that_reaches_log_edac_and_rasdaemon_passes() {
    let (before, after) = mce_logs();
    let t = injectable(
        MCE,
        machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db"),
        machine(&after, 1, "rasdaemon-0.8.5-corrected.db").command(MCE, 0, "", ""),
    );
    let o = case("ras-mce-inject", &t, "inject = true\nwait_s = 0");
    assert!(t.fired.load(Ordering::SeqCst));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("status 0x940000000000009f"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("address 0x100000"), "{}", o.reason);
    assert!(
        o.reason
            .contains("[mce] [  209.024295] mce: [Hardware Error]: Machine check events logged"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("EDAC CE 0 → 1"), "{}", o.reason);
    assert!(
        o.reason.contains("rasdaemon: mc_event +5, mce_record +4"),
        "{}",
        o.reason
    );
}

#[test]
fn an_injection_accepted_without_an_edac_count_fails_with_the_chain() {
    let (before, after) = mce_logs();
    let t = injectable(
        MCE,
        machine(&before, 7, "rasdaemon-0.6.8-debian-empty.db"),
        machine(&after, 7, "rasdaemon-0.6.8-debian-empty.db").command(MCE, 0, "", ""),
    );
    let (o, ev) = common::check_with(
        "ras-mce-inject",
        &t,
        &HardwareProfile::default(),
        "inject = true\nwait_s = 0",
        Duration::from_secs(30),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("injected and accepted, but the chain broke"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("no EDAC CE counted (CE 7 → 7)"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("no new rasdaemon row"), "{}", o.reason);
    assert!(o.reason.contains("seen: kernel log: [mce]"), "{}", o.reason);
    // The injection command is part of the evidence.
    assert!(ev.iter().any(|e| matches!(
        e,
        certlab_reports::Evidence::Command { cmd, .. } if cmd.starts_with(MCE) && cmd.contains("echo 4 > bank")
    )));
}

#[test]
fn einj_refused_not_offered_or_absent() {
    let (before, _) = mce_logs();
    // Refused by the firmware: a product failure, with its error.
    let t = injectable(
        EINJ,
        machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db"),
        machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db").command(
            EINJ,
            1,
            "",
            "sh: 1: echo: echo: I/O error\n",
        ),
    );
    let o = case("ras-einj", &t, "inject = true");
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("refused the injection of EINJ 0x8 (Memory Correctable)"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("I/O error"), "{}", o.reason);

    // A type the platform does not list.
    let t = injectable(
        EINJ,
        machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db"),
        Scripted::new("x"),
    );
    let o = case("ras-einj", &t, "inject = true\nerror_type = 0x1");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("offers: 0x8 Memory Correctable, 0x10"),
        "{}",
        o.reason
    );
    // PCIe without a device named.
    let o = case("ras-einj", &t, "inject = true\nerror_type = 0x40");
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("pcie_device"), "{}", o.reason);
    assert!(!t.fired.load(Ordering::SeqCst));

    // No EINJ at all (this VM: no /sys/kernel/debug/apei).
    let o = common::check_with(
        "ras-einj",
        &Scripted::new("vm"),
        &HardwareProfile::default(),
        "inject = true",
        Duration::from_secs(30),
    )
    .0;
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("no ACPI EINJ here"), "{}", o.reason);
}

#[test]
fn einj_pcie_names_the_device_as_an_sbdf() {
    let (before, after) = mce_logs();
    // The AER link is missing from this log: the chain breaks at the
    // kernel log, and the command carries the device.
    let t = injectable(
        EINJ,
        machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db"),
        machine(&after, 0, "rasdaemon-0.6.8-debian-empty.db").command(EINJ, 0, "", ""),
    );
    let (o, ev) = common::check_with(
        "ras-einj",
        &t,
        &HardwareProfile::default(),
        "inject = true\nerror_type = 0x40\npcie_device = \"0000:3a:00.0\"\nwait_s = 0",
        Duration::from_secs(30),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("no new kernel-log report (aer_corrected"),
        "{}",
        o.reason
    );
    assert!(ev.iter().any(|e| matches!(
        e,
        certlab_reports::Evidence::Command { cmd, .. } if cmd.contains("echo 0x4 > flags && echo 0x3a0000 > param4")
    )));
}
