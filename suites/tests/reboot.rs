//! The reboot, kdump and watchdog checks on Scripted machines: each phase
//! (`before`, `after`) run as the orchestrator runs it, on a machine as it
//! was and as it came back, fed real outputs where they exist
//! (`fixtures/kdump`, `fixtures/kernlog`, PROVENANCE.tsv) and the walks'
//! own record format where the machine's state is ours to describe.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::bmc::{Health, SelEntry};
use certlab_lab::{Scripted, Target};
use certlab_reports::{Evidence, Verdict};
use certlab_suites::checks::{self, kdump, reboot, watchdog};
use certlab_suites::walk;
use certlab_suites::{Before, CaseCtx, CaseOutcome, MemorySink, RebootKind, Rebooted};

const FIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(path: &str) -> String {
    std::fs::read_to_string(format!("{FIX}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Runs `phase` of check `name` on `target` with `params`; returns its
/// value and insists on evidence.
fn phase<T>(
    name: &str,
    target: &dyn Target,
    params: &str,
    f: impl FnOnce(&dyn certlab_suites::Check, &CaseCtx<'_>) -> T,
) -> (T, Vec<Evidence>) {
    let check = checks::lookup(name).unwrap();
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
    );
    let v = f(check, &ctx);
    let evidence = ctx.take_evidence();
    (v, evidence)
}

fn before(name: &str, target: &dyn Target, params: &str) -> Before {
    let (b, ev) = phase(name, target, params, |c, ctx| c.before(ctx).unwrap());
    assert!(!ev.is_empty(), "{name}: before without evidence");
    b
}

fn after(
    name: &str,
    target: &dyn Target,
    params: &str,
    snap: &serde_json::Value,
    r: &Rebooted,
) -> CaseOutcome {
    let (o, ev) = phase(name, target, params, |c, ctx| {
        c.after(ctx, snap, r).unwrap()
    });
    assert!(!ev.is_empty(), "{name}: {} without evidence", o.verdict);
    o
}

fn go(b: Before) -> serde_json::Value {
    match b {
        Before::Go(v) => v,
        Before::Stop(o) => panic!("stopped before the reboot: {} {}", o.verdict, o.reason),
    }
}

fn rebooted(kind: RebootKind, sel: Vec<SelEntry>) -> Rebooted {
    Rebooted {
        kind,
        old_boot: "old".into(),
        new_boot: "new".into(),
        recovered: None,
        sel: Some(Ok(sel)),
    }
}

// ---------------------------------------------------------------- reboot

const PCI: &str = "@ 0000:00:00.0\nvendor=0x8086\nclass=0x060000\n@ 0000:3b:00.0\nvendor=0x15b3\ndevice=0x1017\nclass=0x020000\ndriver=mlx5_core\n@ 0000:5e:00.0\nvendor=0x144d\nclass=0x010802\ndriver=nvme\n";
const NET: &str = "@ enp59s0f0\noperstate=up\ncarrier=1\nspeed=25000\nduplex=full\ntype=1\nhas_device=1\ndevice=0000:3b:00.0\ndriver=mlx5_core\n@ lo\noperstate=unknown\ncarrier=1\ntype=772\nvirtual=1\n";

/// A machine whose boot id, walks and kernel log are given.
fn machine(boot: &str, pci: &str, net: &str, dmesg: &str) -> Scripted {
    Scripted::new("m")
        .file("/proc/sys/kernel/random/boot_id", format!("{boot}\n"))
        .command(": certlab pci-walk", 0, pci, "")
        .command(": certlab net-walk", 0, net, "")
        .command("dmesg", 0, dmesg, "")
}

#[test]
fn the_walk_scripts_are_what_the_reboot_check_runs() {
    // The Scripted machines answer by prefix: the check must run the walks.
    assert!(walk::PCI_WALK.starts_with(": certlab pci-walk"));
    assert!(walk::NET_WALK.starts_with(": certlab net-walk"));
}

#[test]
fn a_machine_that_comes_back_as_it_went_passes() {
    let benign = fixture("kernlog/constructed-benign.dmesg");
    let was = machine("b-1", PCI, NET, &benign);
    let snap = go(before("reboot", &was, ""));
    let back = machine("b-2", PCI, NET, &benign);
    let sel = vec![SelEntry {
        id: "7".into(),
        timestamp: None,
        sensor_type: Some("System Event".into()),
        severity: Health::Ok,
        message: "System Boot Initiated".into(),
    }];
    let o = after(
        "reboot",
        &back,
        "link_wait_s = 0",
        &snap,
        &rebooted(RebootKind::PowerCycle, sel),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    for part in [
        "power cycle",
        "b-1 → b-2",
        "3 of 3 PCI functions",
        "enp59s0f0 up 25000 Mb/s",
        "SEL: 1 new entries, 0 critical",
    ] {
        assert!(o.reason.contains(part), "{part}: {}", o.reason);
    }
}

#[test]
fn a_nic_that_came_back_without_its_driver_fails() {
    let benign = fixture("kernlog/constructed-benign.dmesg");
    let was = machine("b-1", PCI, NET, &benign);
    let snap = go(before("reboot", &was, ""));
    // mlx5_core did not bind after the reboot: no driver link, no link.
    let pci = PCI.replace("driver=mlx5_core\n", "");
    let net = "@ enp59s0f0\noperstate=down\ntype=1\nhas_device=1\ndevice=0000:3b:00.0\n@ lo\noperstate=unknown\ntype=772\nvirtual=1\n";
    let back = machine("b-2", &pci, net, &benign);
    let o = after(
        "reboot",
        &back,
        "link_wait_s = 0",
        &snap,
        &rebooted(RebootKind::Os, vec![]),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    for part in [
        "PCI 0000:3b:00.0 came back bound to no driver (was mlx5_core)",
        "NIC enp59s0f0 came back with driver none (was mlx5_core)",
        "NIC enp59s0f0 was up and is down",
    ] {
        assert!(o.reason.contains(part), "{part}: {}", o.reason);
    }
}

#[test]
fn new_kernel_log_trouble_a_critical_sel_entry_or_the_same_boot_fail() {
    let benign = fixture("kernlog/constructed-benign.dmesg");
    let was = machine("b-1", PCI, NET, &benign);
    let snap = go(before("reboot", &was, ""));
    // The new boot logs machine checks (a real log).
    let back = machine("b-2", PCI, NET, &fixture("kernlog/abrt-mce1.txt"));
    let o = after(
        "reboot",
        &back,
        "link_wait_s = 0",
        &snap,
        &rebooted(RebootKind::Os, vec![]),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("kernel-log trouble grew over the reboot (dmesg): mce 0 →"),
        "{}",
        o.reason
    );
    // A critical SEL entry logged over the reboot.
    let back = machine("b-2", PCI, NET, &benign);
    let sel = vec![SelEntry {
        id: "12".into(),
        timestamp: None,
        sensor_type: Some("Memory".into()),
        severity: Health::Critical,
        message: "Uncorrectable ECC".into(),
    }];
    let o = after(
        "reboot",
        &back,
        "link_wait_s = 0",
        &snap,
        &rebooted(RebootKind::Os, sel),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("SEL 12 Memory: Uncorrectable ECC"),
        "{}",
        o.reason
    );
    // The boot id did not change.
    let same = machine("b-1", PCI, NET, &benign);
    let o = after(
        "reboot",
        &same,
        "link_wait_s = 0",
        &snap,
        &rebooted(RebootKind::Os, vec![]),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("did not reboot"), "{}", o.reason);
}

#[test]
fn the_reboot_check_alone_skips_with_its_reason() {
    let m = machine("b-1", PCI, NET, "");
    let (o, _) = phase("reboot", &m, "", |c, ctx| c.run(ctx).unwrap());
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("declared reboot"), "{}", o.reason);
}

#[test]
fn nic_links_keep_physical_nics_only() {
    let l = reboot::nic_links(NET);
    assert_eq!(l.len(), 1);
    assert_eq!(l["enp59s0f0"].speed, Some(25000));
    assert_eq!(l["enp59s0f0"].driver.as_deref(), Some("mlx5_core"));
}

// ----------------------------------------------------------------- kdump

#[test]
fn kdump_config_show_real_outputs_parse() {
    let ready = kdump::parse_kdump_config_show(&fixture("kdump/kdump-config-show.ready.txt"));
    assert!(ready.ready());
    assert_eq!(ready.crashkernel_addr.as_deref(), Some("0x60000000"));
    assert_eq!(ready.coredir.as_deref(), Some("/var/crash"));
    assert!(ready.kexec_recorded);
    let not = kdump::parse_kdump_config_show(&fixture("kdump/kdump-config-show.not-ready.txt"));
    assert!(!not.ready());
    assert_eq!(not.state.as_deref(), Some("Not ready to kdump"));
    assert_eq!(not.crashkernel_addr, None);
    assert!(!not.kexec_recorded);
}

#[test]
fn crashkernel_and_kdumpctl_and_kdump_conf() {
    assert_eq!(
        kdump::crashkernel_param(&fixture("kdump/proc-cmdline-no-crashkernel.txt")),
        None
    );
    // Constructed: the form RHEL 9's documentation gives.
    assert_eq!(
        kdump::crashkernel_param("BOOT_IMAGE=/vmlinuz ro crashkernel=1G-4G:192M,4G-:256M quiet"),
        Some("1G-4G:192M,4G-:256M")
    );
    // Constructed: kexec-tools' kdumpctl prints these (with `kdump: ` since 2.0.23).
    assert_eq!(
        kdump::parse_kdumpctl_status("kdump: Kdump is operational\n"),
        Some(true)
    );
    assert_eq!(
        kdump::parse_kdumpctl_status("Kdump is not operational\n"),
        Some(false)
    );
    assert_eq!(kdump::parse_kdumpctl_status("Usage: kdumpctl …\n"), None);
    assert_eq!(
        kdump::kdump_conf_path("#path /var/crash\npath /srv/dumps\ncore_collector makedumpfile\n"),
        Some("/srv/dumps")
    );
}

const CMDLINE_ARMED: &str =
    "BOOT_IMAGE=/vmlinuz-6.18.0-8-generic root=UUID=0a86 ro crashkernel=2G-4G:320M,4G-32G:512M\n";

/// A Debian machine with kdump-tools: armed, or as the real failing
/// outputs show a machine without reserved memory.
fn kdump_machine(armed: bool) -> Scripted {
    let m =
        Scripted::new("m").command("command -v kdump-config", 0, "/usr/sbin/kdump-config\n", "");
    if armed {
        m.file("/proc/cmdline", CMDLINE_ARMED)
            .file("/sys/kernel/kexec_crash_size", "536870912\n")
            .file("/sys/kernel/kexec_crash_loaded", "1\n")
            .command(
                "kdump-config show",
                0,
                &fixture("kdump/kdump-config-show.ready.txt"),
                "",
            )
            .file("/var/crash/kexec_cmd", "/sbin/kexec -p …\n")
    } else {
        m.file(
            "/proc/cmdline",
            fixture("kdump/proc-cmdline-no-crashkernel.txt"),
        )
        .file("/sys/kernel/kexec_crash_size", "0\n")
        .file("/sys/kernel/kexec_crash_loaded", "0\n")
        .command(
            "kdump-config show",
            0,
            &fixture("kdump/kdump-config-show.not-ready.txt"),
            "",
        )
    }
}

#[test]
fn kdump_config_passes_armed_and_fails_unarmed() {
    let (o, _) = common::check("kdump-config", &kdump_machine(true));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("512 MiB reserved") && o.reason.contains("kdump-config show: ready"),
        "{}",
        o.reason
    );
    let (o, ev) = common::check("kdump-config", &kdump_machine(false));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    for part in [
        "no memory is reserved",
        "no crashkernel= on the kernel command line",
        "kdump service is not armed",
        "kdump-config show says kdump is not ready",
    ] {
        assert!(o.reason.contains(part), "{part}: {}", o.reason);
    }
    assert!(common::commands(&ev).contains(&"kdump-config show".to_string()));
}

#[test]
fn kdump_crash_does_not_crash_an_unarmed_machine() {
    match before("kdump-crash", &kdump_machine(false), "enabled = true") {
        Before::Stop(o) => {
            assert_eq!(o.verdict, Verdict::Fail);
            assert!(o.reason.contains("was not crashed"), "{}", o.reason);
        }
        Before::Go(_) => panic!("an unarmed machine would be crashed"),
    }
}

#[test]
fn kdump_crash_wants_a_new_complete_dump_showing_the_sysrq_crash() {
    let snap = go(before(
        "kdump-crash",
        &kdump_machine(true),
        "enabled = true",
    ));
    assert_eq!(snap["coredir"], "/var/crash");
    let r = rebooted(RebootKind::Crash, vec![]);
    // Debian's layout, with a real crash kernel's log of a sysrq crash.
    let sysrq = fixture("kernlog/gpud-pstore-dmesg-erst.txt");
    let back = kdump_machine(true)
        .file("/var/crash/202612062240/dmesg.202612062240", sysrq.clone())
        .file("/var/crash/202612062240/dump.202612062240", "KDUMP   ");
    let o = after("kdump-crash", &back, "", &snap, &r);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains(
            "/var/crash/202612062240/dump.202612062240 (dmesg.202612062240 shows the sysrq crash)"
        ),
        "{}",
        o.reason
    );
    // RHEL's layout.
    let back = kdump_machine(true)
        .file(
            "/var/crash/127.0.0.1-2026-12-06-22:40:01/vmcore",
            "KDUMP   ",
        )
        .file(
            "/var/crash/127.0.0.1-2026-12-06-22:40:01/vmcore-dmesg.txt",
            sysrq,
        );
    let o = after("kdump-crash", &back, "", &snap, &r);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);

    // No dump at all.
    let o = after("kdump-crash", &kdump_machine(true), "", &snap, &r);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("no new dump in /var/crash"),
        "{}",
        o.reason
    );
    // A dump whose log is of another panic (a real one: a test module's).
    let back = kdump_machine(true)
        .file(
            "/var/crash/202612062240/dmesg.202612062240",
            fixture("kernlog/gpud-pstore-panic-dmesg.txt"),
        )
        .file("/var/crash/202612062240/dump.202612062240", "KDUMP   ");
    let o = after("kdump-crash", &back, "", &snap, &r);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("does not show the sysrq crash"),
        "{}",
        o.reason
    );
    // A dump cut off.
    let back = kdump_machine(true).file("/var/crash/202612062240/dump-incomplete", "");
    let o = after("kdump-crash", &back, "", &snap, &r);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("incomplete"), "{}", o.reason);
    // The machine had to be power-cycled: the crash kernel never rebooted it.
    let back = kdump_machine(true)
        .file(
            "/var/crash/202612062240/dmesg.202612062240",
            fixture("kernlog/gpud-pstore-dmesg-erst.txt"),
        )
        .file("/var/crash/202612062240/dump.202612062240", "KDUMP   ");
    let mut r2 = rebooted(RebootKind::Crash, vec![]);
    r2.recovered = Some("no new boot within 600 s".into());
    let o = after("kdump-crash", &back, "", &snap, &r2);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("did not come back by itself"),
        "{}",
        o.reason
    );
}

#[test]
fn the_kdump_trigger_is_the_sysrq_crash_and_a_refusal_is_an_error() {
    // The write is refused (not root): an error, not a crash to wait for.
    let m = kdump_machine(true).command(
        "echo c > /proc/sysrq-trigger",
        1,
        "",
        "sh: 1: cannot create /proc/sysrq-trigger: Permission denied\n",
    );
    let (r, ev) = phase("kdump-crash", &m, "", |c, ctx| {
        c.trigger(ctx, &serde_json::Value::Null)
    });
    let e = r.unwrap_err();
    assert!(e.to_string().contains("Permission denied"), "{e}");
    assert_eq!(common::commands(&ev), ["echo c > /proc/sysrq-trigger"]);
}

// -------------------------------------------------------------- watchdog

fn watchdog_machine(identity: &str, state: &str) -> Scripted {
    Scripted::new("m")
        .file("/dev/watchdog", "")
        .file("/dev/watchdog0", "")
        .file(
            "/sys/class/watchdog/watchdog0/identity",
            format!("{identity}\n"),
        )
        .file("/sys/class/watchdog/watchdog0/timeout", "30\n")
        .file("/sys/class/watchdog/watchdog0/state", format!("{state}\n"))
}

#[test]
fn watchdog_present_wants_a_hardware_watchdog() {
    let (o, _) = common::check(
        "watchdog-present",
        &watchdog_machine("iTCO_wdt", "inactive"),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason
            .contains("watchdog0 (iTCO_wdt, timeout 30 s, inactive)"),
        "{}",
        o.reason
    );
    let (o, _) = common::check(
        "watchdog-present",
        &watchdog_machine("Software Watchdog", "active"),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    let (o, _) = common::check(
        "watchdog-present",
        &Scripted::new("m").file("/dev/null", ""),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("no watchdog is registered"),
        "{}",
        o.reason
    );
}

#[test]
fn watchdog_reset_is_opt_in_and_needs_an_idle_watchdog() {
    let (b, _) = phase(
        "watchdog-reset",
        &watchdog_machine("iTCO_wdt", "inactive"),
        "",
        |c, ctx| c.before(ctx).unwrap(),
    );
    assert!(
        matches!(&b, Before::Stop(o) if o.verdict == Verdict::Skip && o.reason.contains("opt-in")),
        "{b:?}"
    );
    let b = before(
        "watchdog-reset",
        &watchdog_machine("iTCO_wdt", "active"),
        "enabled = true",
    );
    assert!(
        matches!(&b, Before::Stop(o) if o.reason.contains("already active")),
        "{b:?}"
    );
    let snap = go(before(
        "watchdog-reset",
        &watchdog_machine("iTCO_wdt", "inactive"),
        "enabled = true",
    ));
    assert_eq!(snap["watchdog"]["name"], "watchdog0");
    assert_eq!(
        watchdog::starve_command("watchdog0"),
        ": certlab watchdog-starve; exec 3>/dev/watchdog0 && printf 1 >&3 && exec 3>&-"
    );
    // Not reset by the watchdog: the orchestrator had to power-cycle it.
    let mut r = rebooted(RebootKind::Crash, vec![]);
    r.recovered = Some("no new boot within 120 s".into());
    let (o, _) = phase(
        "watchdog-reset",
        &watchdog_machine("iTCO_wdt", "inactive"),
        "",
        |c, ctx| c.after(ctx, &snap, &r).unwrap(),
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("did not reset the machine"),
        "{}",
        o.reason
    );
}
