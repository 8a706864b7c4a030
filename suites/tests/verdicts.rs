//! Checks reach `fail` on machines that have the fault, `pass` on ones that
//! do not, and `skip` with a reason where they do not apply — shown on
//! scripted targets whose inputs are real kernel formats.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::{DirEntry, ExecOutput, Scripted, Target, TargetError};
use certlab_reports::{Evidence, Verdict};
use certlab_suites::{checks, CaseError, CaseOutcome};

/// Runs a check; `Err` is the infrastructure error it returned.
pub fn try_check(
    name: &str,
    target: &dyn Target,
    inv: &Inventory,
    profile: &HardwareProfile,
) -> Result<(CaseOutcome, Vec<Evidence>), CaseError> {
    common::try_check_in(name, target, inv, profile, "", Duration::from_secs(30))
}

/// Runs a check that must reach a verdict.
pub fn run_check(
    name: &str,
    target: &dyn Target,
    inv: &Inventory,
    profile: &HardwareProfile,
) -> (CaseOutcome, Vec<Evidence>) {
    try_check(name, target, inv, profile)
        .unwrap_or_else(|e| panic!("{name}: infrastructure error {e}"))
}

fn check(name: &str, target: &dyn Target) -> CaseOutcome {
    run_check(
        name,
        target,
        &Inventory::default(),
        &HardwareProfile::default(),
    )
    .0
}

const PROC_MODULES_TAINTED: &str = "nvidia_uvm 1363968 0 - Live 0x0000000000000000 (POE)\nnvidia 56512512 1 nvidia_uvm, Live 0x0000000000000000 (POE)\next4 1007616 1 - Live 0x0000000000000000\n";

#[test]
fn taint_fails_and_names_the_modules() {
    // 4097 + 8192 = P (bit 0) | O (bit 12) | E (bit 13)
    let m = Scripted::new("sut")
        .file("/proc/sys/kernel/tainted", "12289\n")
        .file("/proc/modules", PROC_MODULES_TAINTED);
    let o = check("kernel-taint", &m);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("P (bit 0)") && o.reason.contains("nvidia"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("E (bit 13)"), "{}", o.reason);

    let clean = Scripted::new("sut")
        .file("/proc/sys/kernel/tainted", "0\n")
        .file("/proc/modules", "");
    assert_eq!(check("kernel-taint", &clean).verdict, Verdict::Pass);
    // Live patching alone (K, bit 15) does not void certification.
    let lp = Scripted::new("sut")
        .file("/proc/sys/kernel/tainted", "32768\n")
        .file("/proc/modules", "");
    assert_eq!(check("kernel-taint", &lp).verdict, Verdict::Pass);
}

#[test]
fn kernel_log_quotes_machine_checks() {
    let log = "[    0.000000] Linux version 6.1.0-27-amd64\n[ 1234.5] mce: [Hardware Error]: Machine check events logged\n[ 1234.6] mce: [Hardware Error]: CPU 3: Machine Check: 0 Bank 7: cc00008000010090\n";
    let m = Scripted::new("sut").command("dmesg", 0, log, "");
    let o = check("kernel-log", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("Bank 7"), "{}", o.reason);

    let clean =
        Scripted::new("sut").command("dmesg", 0, "[    0.000000] Linux version 6.1.0\n", "");
    assert_eq!(check("kernel-log", &clean).verdict, Verdict::Pass);

    let restricted = Scripted::new("sut").command(
        "dmesg",
        1,
        "",
        "dmesg: read kernel buffer failed: Operation not permitted\n",
    );
    let o = check("kernel-log", &restricted);
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("not permitted"), "{}", o.reason);
}

/// `kernel.log` uses the RAS classifier: a real log with Xid 119 fails,
/// naming the kind; a real healthy /dev/kmsg dump passes.
#[test]
fn kernel_log_fails_on_real_xids_and_passes_a_real_healthy_log() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernlog");
    let xid = std::fs::read_to_string(dir.join("gpud-dmesg-with-xid-119.log")).unwrap();
    let m = Scripted::new("sut").command("dmesg", 0, &xid, "");
    let o = check("kernel-log", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("[xid]"), "{}", o.reason);
    let ok = std::fs::read_to_string(dir.join("gpud-kmsg.1.log")).unwrap();
    let m = Scripted::new("sut").command("dmesg", 0, &ok, "");
    assert_eq!(check("kernel-log", &m).verdict, Verdict::Pass);
}

#[test]
fn offline_cpus_fail() {
    let m = Scripted::new("sut")
        .file("/sys/devices/system/cpu/present", "0-7\n")
        .file("/sys/devices/system/cpu/online", "0-5\n");
    let o = check("cpu-online", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("6-7"), "{}", o.reason);
}

#[test]
fn mixed_microcode_fails() {
    let cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmicrocode\t: 0x2b000590\n\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nmicrocode\t: 0x2b000571\n";
    let m = Scripted::new("sut").file("/proc/cpuinfo", cpuinfo);
    let o = check("cpu-microcode", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("cpu1=0x2b000571"), "{}", o.reason);
    let arm =
        Scripted::new("sut").file("/proc/cpuinfo", "processor\t: 0\nCPU implementer\t: 0x48\n");
    assert_eq!(check("cpu-microcode", &arm).verdict, Verdict::Skip);
}

#[test]
fn edac_errors_fail_and_absence_skips() {
    let base = "/sys/devices/system/edac/mc/mc0";
    let m = Scripted::new("sut")
        .file(&format!("{base}/ce_count"), "3\n")
        .file(&format!("{base}/ue_count"), "0\n")
        .file(&format!("{base}/ce_noinfo_count"), "0\n")
        .file(&format!("{base}/ue_noinfo_count"), "0\n")
        .file(&format!("{base}/mc_name"), "Skylake Socket#0 IMC#0\n");
    let o = check("ras-edac", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("3 corrected"), "{}", o.reason);
    let vm = Scripted::new("vm");
    let o = check("ras-edac", &vm);
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("EDAC"), "{}", o.reason);
}

#[test]
fn smbios_placeholders_fail() {
    let d = "/sys/class/dmi/id";
    let m = Scripted::new("sut")
        .file(&format!("{d}/sys_vendor"), "To Be Filled By O.E.M.\n")
        .file(&format!("{d}/product_name"), "To Be Filled By O.E.M.\n")
        .file(&format!("{d}/bios_version"), "P2.10\n");
    let o = check("firmware-versions", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("placeholder"), "{}", o.reason);
}

#[test]
fn degraded_pcie_link_fails() {
    let walk = "@ 0000:3b:00.0\nvendor=0x10de\ndevice=0x2330\nclass=0x030200\ncurrent_link_speed=16.0 GT/s PCIe\nmax_link_speed=32.0 GT/s PCIe\ncurrent_link_width=8\nmax_link_width=16\n@ 0000:00:01.0\nclass=0x060400\ncurrent_link_width=4\nmax_link_width=16\n";
    let m = Scripted::new("sut").command(": certlab pci-walk", 0, walk, "");
    let o = check("pcie-link-width", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("0000:3b:00.0: x8 of x16"), "{}", o.reason);
    assert!(
        !o.reason.contains("0000:00:01.0"),
        "bridges are not judged: {}",
        o.reason
    );
}

#[test]
fn nic_without_driver_fails() {
    let walk = "@ lo\noperstate=unknown\nvirtual=1\n@ eno1\noperstate=up\ncarrier=1\nspeed=25000\nhas_device=1\ndriver=mlx5_core\n@ eno2\noperstate=down\nhas_device=1\n";
    let m = Scripted::new("sut").command(": certlab net-walk", 0, walk, "");
    let o = check("net-nics", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("eno2 has no driver"), "{}", o.reason);
    assert!(
        o.reason
            .contains("eno1 (mlx5_core): up, carrier, 25000 Mb/s"),
        "{}",
        o.reason
    );
}

#[test]
fn memory_shortfall_fails() {
    let mut profile = HardwareProfile::default();
    profile.memory.installed_bytes = Some(64 << 30);
    // 48 GiB seen of 64 GiB installed: a DIMM is not mapped.
    let m = Scripted::new("sut").file(
        "/proc/meminfo",
        "MemTotal:       50331648 kB\nMemAvailable:   40000000 kB\n",
    );
    let (o, _) = run_check("mem-size", &m, &Inventory::default(), &profile);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("short of 64.00 GiB"), "{}", o.reason);
    let m = Scripted::new("sut").file("/proc/meminfo", "MemTotal:       65000000 kB\n");
    let (o, _) = run_check("mem-size", &m, &Inventory::default(), &profile);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}

#[test]
fn unstable_tsc_fails() {
    let c = "/sys/devices/system/clocksource/clocksource0";
    let m = Scripted::new("sut")
        .file(&format!("{c}/current_clocksource"), "hpet\n")
        .file(&format!("{c}/available_clocksource"), "tsc hpet acpi_pm \n");
    let o = check("time-clock", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(o.reason.contains("TSC was marked unstable"), "{}", o.reason);
}

#[test]
fn vulnerable_cpu_fails() {
    let v = "/sys/devices/system/cpu/vulnerabilities";
    let m = Scripted::new("sut")
        .file(&format!("{v}/meltdown"), "Not affected\n")
        .file(
            &format!("{v}/spectre_v2"),
            "Vulnerable: Retpoline without IBPB\n",
        )
        .file(
            &format!("{v}/mds"),
            "Mitigation: Clear CPU buffers; SMT vulnerable\n",
        );
    let o = check("cpu-vulnerabilities", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(
        o.reason.contains("spectre_v2") && !o.reason.contains("mds"),
        "{}",
        o.reason
    );
}

#[test]
fn disk_read_error_fails() {
    let walk = "@ sda\nsize=1953525168\nhas_device=1\n@ loop0\nsize=0\nvirtual=1\n";
    let m = Scripted::new("sut")
        .command(": certlab block-walk", 0, walk, "")
        .command(
            "dd if=/dev/sda",
            1,
            "",
            "dd: error reading '/dev/sda': Input/output error\n",
        );
    let o = check("storage-read", &m);
    assert_eq!(o.verdict, Verdict::Fail);
    assert!(
        o.reason.contains("sda") && o.reason.contains("Input/output error"),
        "{}",
        o.reason
    );
}

/// The modules.alias of a real Debian kernel, fetched by scripts/fetch-kernel.
fn real_modules_alias() -> (String, String) {
    let dir = std::env::var("CERTLAB_TEST_KERNEL_DIR").ok().or_else(|| {
        let cache = std::env::var("HOME").ok()? + "/.cache/certlab/debian";
        let mut dirs: Vec<_> = std::fs::read_dir(cache)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("modules.alias").is_file())
            .collect();
        dirs.sort();
        dirs.pop().map(|p| p.display().to_string())
    });
    let dir = dir.unwrap_or_else(|| {
        panic!("no real kernel modules.alias: run scripts/fetch-kernel (scripts/test does) or set CERTLAB_TEST_KERNEL_DIR")
    });
    let path = format!("{dir}/modules.alias");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (path, text)
}

#[test]
fn pci_device_with_an_unbound_in_kernel_driver_fails() {
    let (alias_path, alias) = real_modules_alias();
    // An Intel I350 port (igb) left unbound next to an AHCI controller bound to ahci.
    let walk = "@ 0000:3b:00.0\nvendor=0x8086\ndevice=0x1521\nsubsystem_vendor=0x8086\nsubsystem_device=0x0001\nclass=0x020000\nrevision=0x01\n@ 0000:00:17.0\nvendor=0x8086\ndevice=0xa352\nsubsystem_vendor=0x1028\nsubsystem_device=0x0a59\nclass=0x010601\nrevision=0x10\ndriver=ahci\n";
    let target = Scripted::new("sut")
        .command(": certlab pci-walk", 0, walk, "")
        .file(&alias_path, alias.clone());
    let inv = Inventory {
        sysfs_pci: certlab_suites::walk::pci_devices(walk),
        modules_alias: Some(certlab_hwdb::Fact::new(alias_path.clone(), alias)),
        ..Inventory::default()
    };
    let profile = certlab_hwdb::identify(&inv, certlab_hwdb::PciIds::embedded());
    let (o, evidence) = run_check("pci-drivers", &target, &inv, &profile);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("0000:3b:00.0") && o.reason.contains("igb"),
        "{}",
        o.reason
    );
    assert!(
        !o.reason.contains("0000:00:17.0 ["),
        "ahci is bound as expected: {}",
        o.reason
    );
    assert!(evidence
        .iter()
        .any(|e| matches!(e, Evidence::File { path, .. } if *path == alias_path)));

    // Bound, it passes.
    let bound = walk.replace("revision=0x01\n", "revision=0x01\ndriver=igb\n");
    let inv2 = Inventory {
        sysfs_pci: certlab_suites::walk::pci_devices(&bound),
        ..inv
    };
    let profile = certlab_hwdb::identify(&inv2, certlab_hwdb::PciIds::embedded());
    let (o, _) = run_check("pci-drivers", &target, &inv2, &profile);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
}

/// Real `chronyc`/`timedatectl` outputs (fixtures/chrony/PROVENANCE.tsv).
mod chrony {
    pub const TRACKING_SYNCED: &str = include_str!("fixtures/chrony/tracking-synchronised.txt");
    pub const SOURCES_SYNCED: &str = include_str!("fixtures/chrony/sources-synchronised.txt");
    pub const TRACKING_UNSYNCED: &str =
        include_str!("fixtures/chrony/tracking-not-synchronised.txt");
    pub const SOURCES_UNSYNCED: &str = include_str!("fixtures/chrony/sources-not-synchronised.txt");
    pub const NO_DAEMON: &str = include_str!("fixtures/chrony/tracking-no-daemon.stdout");
    pub const NO_SYSTEMD: &str = include_str!("fixtures/chrony/timedatectl-no-systemd.stderr");
}

/// A machine on a TSC with both time tools installed (the `command -v`
/// probes answer, whatever a check asks them).
fn clock_machine() -> Scripted {
    let c = "/sys/devices/system/clocksource/clocksource0";
    Scripted::new("sut")
        .file(&format!("{c}/current_clocksource"), "tsc\n")
        .file(&format!("{c}/available_clocksource"), "tsc hpet acpi_pm \n")
        .command("command -v timedatectl", 0, "/usr/bin/timedatectl\n", "")
        .command("command -v chronyc", 0, "/usr/bin/chronyc\n", "")
}

#[test]
fn time_clock_fails_when_chrony_is_not_synchronised() {
    // timedated says no; chronyc answers, with an offset of 0.000000000 s
    // because nothing steers the clock: that is no synchronisation.
    let m = clock_machine()
        .command("timedatectl show -p NTPSynchronized", 0, "no\n", "")
        .command("chronyc -n tracking", 0, chrony::TRACKING_UNSYNCED, "")
        .command("chronyc -n sources", 0, chrony::SOURCES_UNSYNCED, "");
    let o = check("time-clock", &m);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("leap status Not synchronised"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("NTPSynchronized=no"), "{}", o.reason);
    assert!(o.metrics.is_empty(), "no offset is judged: {:?}", o.metrics);

    // chrony alone says not synchronised, timedated cannot answer.
    let m = clock_machine()
        .command("timedatectl show", 1, "", chrony::NO_SYSTEMD)
        .command("chronyc -n tracking", 0, chrony::TRACKING_UNSYNCED, "")
        .command("chronyc -n sources", 0, chrony::SOURCES_UNSYNCED, "");
    let o = check("time-clock", &m);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
}

#[test]
fn time_clock_skips_when_no_tool_can_tell() {
    let m = clock_machine()
        .command("timedatectl show", 1, "", chrony::NO_SYSTEMD)
        .command("chronyc -n tracking", 1, chrony::NO_DAEMON, "");
    let o = check("time-clock", &m);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(o.reason.contains("not determinable"), "{}", o.reason);
    assert!(
        o.reason.contains("506 Cannot talk to daemon"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("System has not been booted with systemd"),
        "{}",
        o.reason
    );
    // Neither installed.
    let c = "/sys/devices/system/clocksource/clocksource0";
    let bare = Scripted::new("sut")
        .file(&format!("{c}/current_clocksource"), "tsc\n")
        .file(&format!("{c}/available_clocksource"), "tsc hpet\n");
    let o = check("time-clock", &bare);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("chronyc is not installed"),
        "{}",
        o.reason
    );
}

#[test]
fn time_clock_passes_with_a_selected_chrony_source() {
    let m = clock_machine()
        .command("timedatectl show -p NTPSynchronized", 0, "yes\n", "")
        .command("chronyc -n tracking", 0, chrony::TRACKING_SYNCED, "")
        .command("chronyc -n sources", 0, chrony::SOURCES_SYNCED, "");
    let o = check("time-clock", &m);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("selected source 127.0.0.1"),
        "{}",
        o.reason
    );
    assert_eq!(o.metrics.len(), 1);
    assert!((o.metrics[0].value - 0.000001467).abs() < 1e-12);

    // chronyd synchronised but not steering the clock (`chronyd -x`): the
    // kernel still reports it unsynchronised, and that fails.
    let m = clock_machine()
        .command("timedatectl show -p NTPSynchronized", 0, "no\n", "")
        .command("chronyc -n tracking", 0, chrony::TRACKING_SYNCED, "")
        .command("chronyc -n sources", 0, chrony::SOURCES_SYNCED, "");
    let o = check("time-clock", &m);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("NTPSynchronized=no"), "{}", o.reason);

    // Leap status Normal but the source lost: not synchronised any more.
    let m = clock_machine()
        .command("timedatectl show", 1, "", chrony::NO_SYSTEMD)
        .command("chronyc -n tracking", 0, chrony::TRACKING_SYNCED, "")
        .command("chronyc -n sources", 0, chrony::SOURCES_UNSYNCED, "");
    let o = check("time-clock", &m);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("no source is selected"), "{}", o.reason);
}

fn edac_mc0(ce: &str) -> Scripted {
    let base = "/sys/devices/system/edac/mc/mc0";
    Scripted::new("sut")
        .file(&format!("{base}/ce_count"), ce)
        .file(&format!("{base}/ue_count"), "0\n")
        .file(&format!("{base}/ce_noinfo_count"), "0\n")
        .file(&format!("{base}/ue_noinfo_count"), "0\n")
        .file(&format!("{base}/mc_name"), "Skylake Socket#0 IMC#0\n")
}

#[test]
fn edac_unreadable_counter_is_not_zero() {
    let base = "/sys/devices/system/edac/mc/mc0";
    let m = edac_mc0("0\n").deny(&format!("{base}/ce_count"));
    let (o, evidence) = run_check(
        "ras-edac",
        &m,
        &Inventory::default(),
        &HardwareProfile::default(),
    );
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("mc0/ce_count") && o.reason.contains("permission denied"),
        "{}",
        o.reason
    );
    assert!(evidence
        .iter()
        .any(|e| matches!(e, Evidence::Missing { path, .. } if path.ends_with("mc0/ce_count"))));
    // Something that is not a number is an error, not 0 either.
    let m = edac_mc0("\n");
    let e = try_check(
        "ras-edac",
        &m,
        &Inventory::default(),
        &HardwareProfile::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("mc0/ce_count"), "{e}");
    // Readable and zero passes.
    assert_eq!(check("ras-edac", &edac_mc0("0\n")).verdict, Verdict::Pass);
}

/// Real outputs of the seqread script (fixtures/seqread/PROVENANCE.tsv).
const SEQREAD_DF: &str = include_str!("fixtures/seqread/df-ext4.stdout");
const SEQREAD_DF_TMPFS: &str = include_str!("fixtures/seqread/df-stat-tmpfs.stdout");
const SEQREAD_CACHED_OUT: &str = include_str!("fixtures/seqread/ramfs-unprivileged.stdout");
const SEQREAD_CACHED_ERR: &str = include_str!("fixtures/seqread/ramfs-unprivileged.stderr");

#[test]
fn seqread_does_not_judge_a_page_cache_figure() {
    let m = Scripted::new("sut")
        .command("df -Pk", 0, SEQREAD_DF, "")
        .command(
            "set -e; d=$(mktemp",
            0,
            SEQREAD_CACHED_OUT,
            SEQREAD_CACHED_ERR,
        );
    let o = check("storage-seqread", &m);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("O_DIRECT") && o.reason.contains("could not be dropped"),
        "{}",
        o.reason
    );
    assert!(o.metrics.is_empty(), "{:?}", o.metrics);
    // The same run read with O_DIRECT is judged.
    let direct_err = SEQREAD_CACHED_ERR
        .lines()
        .filter(|l| !l.contains("drop_caches"))
        .collect::<Vec<_>>()
        .join("\n");
    let m = Scripted::new("sut")
        .command("df -Pk", 0, SEQREAD_DF, "")
        .command("set -e; d=$(mktemp", 0, "mode=direct\n", &direct_err);
    let o = check("storage-seqread", &m);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert_eq!(o.metrics.len(), 1);
}

#[test]
fn seqread_does_not_measure_a_file_system_in_memory() {
    // tmpfs accepts O_DIRECT since Linux 6.6: the read "succeeds" at memory
    // speed. The df/stat answer is real (fixtures/seqread/PROVENANCE.tsv).
    let m = Scripted::new("sut")
        .command("df -Pk", 0, SEQREAD_DF_TMPFS, "")
        .command("set -e; d=$(mktemp", 0, "mode=direct\n", SEQREAD_CACHED_ERR);
    let o = check("storage-seqread", &m);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(o.reason.contains("on tmpfs"), "{}", o.reason);
    assert!(o.metrics.is_empty());
}

#[test]
fn seqread_measures_the_directory_the_plan_names() {
    // The plans write `dir = "/srv/bench"`: a string, once read as a list
    // and so silently replaced by /var/tmp. The scripted machine answers
    // only commands about /srv/bench.
    let direct_err = SEQREAD_CACHED_ERR
        .lines()
        .filter(|l| !l.contains("drop_caches"))
        .collect::<Vec<_>>()
        .join("\n");
    let m = Scripted::new("sut")
        .command("df -Pk /srv/bench", 0, SEQREAD_DF, "")
        .command(
            "set -e; d=$(mktemp -d /srv/bench/",
            0,
            "mode=direct\n",
            &direct_err,
        );
    let (o, _) = common::try_check_with(
        "storage-seqread",
        &m,
        &HardwareProfile::default(),
        "dir = \"/srv/bench\"",
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert_eq!(o.metrics.len(), 1);
}

#[test]
fn a_mistyped_plan_parameter_is_an_error_not_its_default() {
    let m = Scripted::new("sut")
        .command("df -Pk", 0, SEQREAD_DF, "")
        .command("set -e; d=$(mktemp", 0, "mode=direct\n", "");
    for (params, name, found) in [
        ("dir = [\"/srv\"]", "`dir`", "an array"),
        ("mib = \"256\"", "`mib`", "a string"),
        ("min_mib_s = true", "`min_mib_s`", "a boolean"),
        ("mib = -1", "`mib`", "an integer"),
    ] {
        let e = common::try_check_with(
            "storage-seqread",
            &m,
            &HardwareProfile::default(),
            params,
            Duration::from_secs(30),
        )
        .map(|(o, _)| o.reason)
        .expect_err(params);
        assert!(matches!(e, CaseError::Plan(_)), "{params}: {e:?}");
        assert!(!e.is_infrastructure(), "{params}");
        let text = e.to_string();
        assert!(
            text.contains(name) && text.contains(found),
            "{params}: {text}"
        );
    }
}

/// A scripted machine whose SSH session drops after `alive` operations.
struct Dropping {
    inner: Scripted,
    alive: usize,
    done: std::sync::atomic::AtomicUsize,
}

impl Dropping {
    fn new(inner: Scripted, alive: usize) -> Dropping {
        Dropping {
            inner,
            alive,
            done: Default::default(),
        }
    }
    fn step(&self) -> Result<(), TargetError> {
        let n = self.done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n >= self.alive {
            return Err(TargetError::Disconnected {
                target: "sut".into(),
                reason: "SSH session closed by peer".into(),
            });
        }
        Ok(())
    }
}

impl Target for Dropping {
    fn name(&self) -> &str {
        "sut"
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        self.step()?;
        self.inner.exec(command, timeout)
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        self.step()?;
        self.inner.read_file(path)
    }
    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        self.step()?;
        self.inner.list_dir(path)
    }
    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        self.step()?;
        self.inner.read_link(path)
    }
    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError> {
        self.step()?;
        self.inner.put_file(path, data, mode)
    }
}

#[test]
fn a_dropped_session_is_an_error_never_a_skip() {
    // firmware-versions: the SMBIOS fields read, then the session drops
    // while looking for the BMC.
    let d = "/sys/class/dmi/id";
    let m = Scripted::new("sut")
        .file(&format!("{d}/sys_vendor"), "Dell Inc.\n")
        .file(&format!("{d}/product_name"), "PowerEdge R750\n")
        .file(&format!("{d}/bios_version"), "1.6.5\n");
    // One listing plus six reads succeed.
    let t = Dropping::new(m.clone(), 7);
    let e = try_check(
        "firmware-versions",
        &t,
        &Inventory::default(),
        &HardwareProfile::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, CaseError::Target(TargetError::Disconnected { .. })),
        "{e}"
    );
    // With the session up, no BMC is a recorded fact, and the case passes.
    let (o, evidence) = run_check(
        "firmware-versions",
        &m,
        &Inventory::default(),
        &HardwareProfile::default(),
    );
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(evidence
        .iter()
        .any(|e| matches!(e, Evidence::Missing { path, .. } if path == "/dev")));

    // time-clock: the session drops after the clocksource reads.
    let t = Dropping::new(clock_machine(), 2);
    let e = try_check(
        "time-clock",
        &t,
        &Inventory::default(),
        &HardwareProfile::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, CaseError::Target(TargetError::Disconnected { .. })),
        "{e}"
    );

    // kernel-log: dmesg refused, then the session drops at the journalctl probe.
    let m = Scripted::new("sut").command(
        "dmesg",
        1,
        "",
        "dmesg: read kernel buffer failed: Operation not permitted\n",
    );
    let e = try_check(
        "kernel-log",
        &Dropping::new(m, 1),
        &Inventory::default(),
        &HardwareProfile::default(),
    )
    .unwrap_err();
    assert!(
        matches!(e, CaseError::Target(TargetError::Disconnected { .. })),
        "{e}"
    );
}

#[test]
fn pci_drivers_without_modules_alias_is_not_selected_and_never_judged_blind() {
    let walk = "@ 0000:3b:00.0\nvendor=0x8086\ndevice=0x1521\nsubsystem_vendor=0x8086\nsubsystem_device=0x0001\nclass=0x020000\nrevision=0x01\n";
    let inv = Inventory {
        sysfs_pci: certlab_suites::walk::pci_devices(walk),
        ..Inventory::default()
    };
    let profile = certlab_hwdb::identify(&inv, certlab_hwdb::PciIds::embedded());
    assert_eq!(profile.pci_devices.len(), 1);
    let check = checks::lookup("pci-drivers").unwrap();
    match check.applies(&profile, &inv) {
        certlab_suites::Applies::No(reason) => {
            assert!(reason.contains("modules.alias"), "{reason}")
        }
        certlab_suites::Applies::Yes => panic!("selected without modules.alias"),
    }
    // Run anyway, the skip rests on the recorded PCI walk.
    let m = Scripted::new("sut").command(": certlab pci-walk", 0, walk, "");
    let (o, _) = run_check("pci-drivers", &m, &inv, &profile);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
}
