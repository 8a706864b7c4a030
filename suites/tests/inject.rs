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
use certlab_lab::bmc::{Health, SelEntry};
use certlab_lab::{DirEntry, ExecOutput, Scripted, Target, TargetError};
use certlab_reports::Verdict;
use certlab_suites::{Before, RebootKind, Rebooted};

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
        .command("id -u", 0, "0\n", "")
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
        &Scripted::new("vm").command("id -u", 0, "0\n", ""),
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

/// Runs phase `f` of check `name` on `t` with `params`, inside a crash
/// window or not; the phase's value and evidence.
fn phase<T>(
    name: &str,
    t: &dyn Target,
    params: &str,
    crash_window: bool,
    f: impl FnOnce(&dyn certlab_suites::Check, &certlab_suites::CaseCtx<'_>) -> T,
) -> (T, Vec<certlab_reports::Evidence>) {
    let check = certlab_suites::checks::lookup(name).unwrap();
    let params: toml::Table = toml::from_str(params).unwrap();
    let sink = certlab_suites::MemorySink::default();
    let (profile, inv) = (
        HardwareProfile::default(),
        certlab_hwdb::Inventory::default(),
    );
    let ctx =
        certlab_suites::CaseCtx::new(t, &profile, &inv, &params, &sink, Duration::from_secs(30))
            .with_crash_window(crash_window);
    let v = f(check, &ctx);
    (v, ctx.take_evidence())
}

/// An uncorrected memory read error (UC, PCC) for mce-inject.
const UNCORRECTED: &str =
    "inject = true\ninject_uncorrectable = true\nstatus = \"0xb60000000000009f\"\n";

/// The machine before, with a persistent journal.
fn with_journal(s: Scripted) -> Scripted {
    s.file("/var/log/journal/0123456789abcdef/system.journal", "")
}

#[test]
fn an_uncorrectable_injection_runs_only_in_a_crash_window() {
    let (before, _) = mce_logs();
    let t = injectable(
        MCE,
        with_journal(machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db")),
        Scripted::new("x"),
    );
    // As a plain case (no crash window: a local run, or not declared).
    let o = case("ras-mce-inject", &t, UNCORRECTED);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("only inside a crash window")
            && o.reason.contains("may_crash = true")
            && o.reason.contains("a local run has no BMC"),
        "{}",
        o.reason
    );
    let (b, ev) = phase("ras-mce-inject", &t, UNCORRECTED, false, |c, ctx| {
        c.before(ctx)
    });
    let Before::Stop(o) = b.unwrap() else {
        panic!("went on without a crash window")
    };
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(!ev.is_empty());
    // EINJ too, and the plan's second flag is still needed first.
    let o = case(
        "ras-einj",
        &t,
        "inject = true\ninject_uncorrectable = true\nerror_type = 0x10",
    );
    assert!(
        o.reason.contains("only inside a crash window"),
        "{}",
        o.reason
    );
    assert!(!t.fired.load(Ordering::SeqCst));
    // A correctable injection in a crash-window case: judged at once, no reboot.
    let t = injectable(
        MCE,
        machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db"),
        machine(&mce_logs().1, 1, "rasdaemon-0.8.5-corrected.db").command(MCE, 0, "", ""),
    );
    let (b, _) = phase(
        "ras-mce-inject",
        &t,
        "inject = true\nwait_s = 0",
        true,
        |c, ctx| c.before(ctx),
    );
    let Before::Stop(o) = b.unwrap() else {
        panic!("a correctable error needs no reboot")
    };
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}

/// `before` on `t` in a crash window, then `trigger`: the snapshot.
fn before_and_trigger(t: &Injectable) -> serde_json::Value {
    let (b, _) = phase("ras-mce-inject", t, UNCORRECTED, true, |c, ctx| {
        c.before(ctx)
    });
    let Before::Go(snap) = b.unwrap() else {
        panic!("not injected")
    };
    assert_eq!(snap["journal"], true, "{snap}");
    assert!(!t.fired.load(Ordering::SeqCst));
    let (r, ev) = phase("ras-mce-inject", t, UNCORRECTED, true, |c, ctx| {
        c.trigger(ctx, &snap)
    });
    r.unwrap();
    assert!(t.fired.load(Ordering::SeqCst));
    assert!(ev.iter().any(|e| matches!(
        e,
        certlab_reports::Evidence::Command { cmd, .. } if cmd.contains("echo 0xb60000000000009f > status")
    )));
    snap
}

fn rebooted(recovered: Option<&str>, sel: Vec<SelEntry>) -> Rebooted {
    Rebooted {
        kind: RebootKind::Crash,
        old_boot: "boot-a".into(),
        new_boot: "boot-b".into(),
        recovered: recovered.map(str::to_string),
        sel: Some(Ok(sel)),
    }
}

#[test]
fn after_the_crash_the_chain_is_judged_from_the_next_boot() {
    let (before, after) = mce_logs();
    // The next boot: the crashed boot's log in the journal (the real dmesg
    // of the mce-inject run), rasdaemon's database with new rows, and EDAC
    // counting from zero again.
    let next = machine("", 0, "rasdaemon-0.8.5-corrected.db")
        .command(MCE, 0, "", "")
        .command("journalctl -k -b -1", 0, &after, "");
    let t = injectable(
        MCE,
        with_journal(machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db")),
        next,
    );
    let snap = before_and_trigger(&t);
    let sel = vec![SelEntry {
        id: "17".into(),
        timestamp: None,
        sensor_type: Some("Memory".into()),
        severity: Health::Critical,
        message: "Uncorrectable ECC | Asserted".into(),
    }];
    let (o, ev) = phase("ras-mce-inject", &t, UNCORRECTED, true, |c, ctx| {
        c.after(ctx, &snap, &rebooted(Some("no new boot within 600 s"), sel))
    });
    let o = o.unwrap();
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    for part in [
        "power-cycled through its BMC (no new boot within 600 s)",
        "crashed boot's kernel log (journalctl -k -b -1): [mce]",
        "rasdaemon: mc_event +5, mce_record +4",
        "EDAC counters start again at zero",
        "SEL: record 17 Critical Uncorrectable ECC",
    ] {
        assert!(o.reason.contains(part), "{part}: {}", o.reason);
    }
    assert!(ev.iter().any(|e| matches!(
        e,
        certlab_reports::Evidence::Command { cmd, .. } if cmd.starts_with("journalctl -k -b -1")
    )));
}

#[test]
fn a_crash_that_left_no_report_fails() {
    let (before, _) = mce_logs();
    // The journal kept no previous boot (systemd's answer), pstore holds a
    // real panic record without a hardware error, and rasdaemon no new row.
    let panic = String::from_utf8(read("kernlog/gpud-pstore-panic-dmesg.txt")).unwrap();
    let next = machine("", 0, "rasdaemon-0.6.8-debian-empty.db")
        .command(MCE, 0, "", "")
        .command(
            "journalctl -k -b -1",
            1,
            "",
            "Data from the specified boot (-1) is not available: No such boot ID in journal\n",
        )
        .file("/sys/fs/pstore/dmesg-erst-7530486857247752194", panic);
    let t = injectable(
        MCE,
        with_journal(machine(&before, 0, "rasdaemon-0.6.8-debian-empty.db"))
            .file("/sys/fs/pstore/.keep", ""),
        next,
    );
    let snap = before_and_trigger(&t);
    assert_eq!(snap["pstore"], true, "{snap}");
    let (o, _) = phase("ras-mce-inject", &t, UNCORRECTED, true, |c, ctx| {
        c.after(ctx, &snap, &rebooted(None, Vec::new()))
    });
    let o = o.unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    for part in [
        "the machine came back by itself (boot boot-b)",
        "no new report in the crashed boot's kernel log (pstore dmesg-erst-7530486857247752194)",
        "no new rasdaemon row",
        "the BMC logged no memory entry over the window",
    ] {
        assert!(o.reason.contains(part), "{part}: {}", o.reason);
    }
}
