//! The driver suite: its parsers on every real output in
//! `tests/fixtures/ethtool` (see its PROVENANCE.tsv), and its cases on
//! Scripted targets fed those outputs, every verdict with evidence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use certlab_hwdb::HardwareProfile;
use certlab_lab::{Scripted, Target};
use certlab_reports::{Evidence, Verdict};
use certlab_suites::checks::ethtool::{parse_driver_info, parse_settings};
use certlab_suites::{checks, CaseOutcome};

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn run(name: &str, target: &dyn Target) -> (CaseOutcome, Vec<Evidence>) {
    common::check(name, target)
}

use common::commands;

// ---- parsers, on every real output -------------------------------------

/// (file, iface, speed, duplex, link, advertised count, partner count, best common mode)
#[allow(clippy::type_complexity)]
const SETTINGS: &[(
    &str,
    &str,
    Option<u64>,
    &str,
    bool,
    usize,
    Option<usize>,
    Option<&str>,
)] = &[
    (
        "ethtool/jc/ethtool--default1.out",
        "enp0s3",
        Some(1000),
        "Full",
        true,
        5,
        None,
        Some("1000baseT/Full"),
    ),
    (
        "ethtool/jc/ethtool--default2.out",
        "enp1s0",
        Some(40000),
        "Full",
        true,
        6,
        None,
        Some("40000baseCR4/Full"),
    ),
    (
        "ethtool/jc/ethtool--link-partner-advertised-link-modes.out",
        "eth0",
        Some(100),
        "Full",
        true,
        6,
        Some(4),
        Some("100baseT/Full"),
    ),
    (
        "ethtool/node_exporter/eth0/settings",
        "eth0",
        Some(1000),
        "Full",
        true,
        5,
        None,
        Some("1000baseT/Full"),
    ),
    (
        "ethtool/hotsos/ethtool_ens3",
        "ens3",
        None,
        "Unknown! (255)",
        true,
        0,
        None,
        None,
    ),
];

#[test]
fn ethtool_settings_parse_on_every_real_output() {
    for &(file, iface, speed, duplex, link, adv, partner, best) in SETTINGS {
        let s = parse_settings(&fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(s.iface.as_deref(), Some(iface), "{file}");
        assert_eq!(s.speed_mbps, speed, "{file}");
        assert_eq!(s.duplex.as_deref(), Some(duplex), "{file}");
        assert_eq!(s.link_detected, Some(link), "{file}");
        assert_eq!(s.advertised.len(), adv, "{file}: {:?}", s.advertised);
        assert_eq!(
            s.partner_advertised.as_ref().map(Vec::len),
            partner,
            "{file}"
        );
        assert_eq!(
            s.best_common_mode().map(|m| m.name.as_str()),
            best,
            "{file}"
        );
    }
    // Supported modes the NIC does not advertise are kept apart.
    let s = parse_settings(&fixture("ethtool/jc/ethtool--default2.out")).unwrap();
    assert_eq!(s.supported.len(), 8);
    assert!(s.supported.iter().any(|m| m.name == "56000baseCR4/Full"));
    assert!(!s.advertised.iter().any(|m| m.name == "56000baseCR4/Full"));
    assert_eq!(s.auto_negotiation, Some(false));
    // The node_exporter fixture's supported list wraps onto a line with 10G.
    let s = parse_settings(&fixture("ethtool/node_exporter/eth0/settings")).unwrap();
    assert_eq!(s.supported.last().unwrap().name, "10000baseT/Full");
}

#[test]
fn ethtool_driver_info_parses_on_every_real_output() {
    let i = parse_driver_info(&fixture("ethtool/node_exporter/eth0/driver")).unwrap();
    assert_eq!(i.driver, "e1000e");
    assert_eq!(i.version.as_deref(), Some("5.11.0-22-generic"));
    assert_eq!(i.firmware_version.as_deref(), Some("0.5-4"));
    assert_eq!(i.bus_info.as_deref(), Some("0000:00:1f.6"));
    let i = parse_driver_info(&fixture("ethtool/hotsos/ethtool_-i_ens3")).unwrap();
    assert_eq!(i.driver, "virtio_net");
    assert_eq!(i.version.as_deref(), Some("1.0.0"));
    assert_eq!(
        i.firmware_version, None,
        "an empty firmware-version is none"
    );
    assert_eq!(i.bus_info.as_deref(), Some("0000:00:03.0"));
}

// ---- driver.nic-link ----------------------------------------------------

const WALK: &str = ": certlab net-walk";

fn walk_one(iface: &str) -> String {
    format!("@ lo\noperstate=unknown\nvirtual=1\n@ {iface}\noperstate=up\ncarrier=1\nhas_device=1\ndevice=0000:00:1f.6\ndriver=e1000e\n")
}

fn nic(iface: &str, settings: &str) -> Scripted {
    Scripted::new("sut")
        .command(WALK, 0, &walk_one(iface), "")
        .command("command -v ethtool", 0, "/usr/sbin/ethtool\n", "")
        .command(&format!("ethtool {iface}"), 0, settings, "")
}

#[test]
fn nic_link_fails_below_the_best_common_mode() {
    // The real node_exporter sample advertises 1000baseT/Full; the same
    // output with the speed edited to 100 Mb/s is a link that trained low.
    let real = fixture("ethtool/node_exporter/eth0/settings");
    let low = real.replace("Speed: 1000Mb/s", "Speed: 100Mb/s");
    assert_ne!(low, real);
    let (o, ev) = run("driver-nic-link", &nic("eth0", &low));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("eth0: 100 Mb/s Full duplex"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("1000baseT/Full"), "{}", o.reason);
    assert!(commands(&ev).contains(&"ethtool eth0".to_string()));

    // Half duplex where both ends advertise the speed at full duplex.
    let real = fixture("ethtool/jc/ethtool--link-partner-advertised-link-modes.out");
    let half = real.replace("Duplex: Full", "Duplex: Half");
    let (o, _) = run("driver-nic-link", &nic("eth0", &half));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);

    // No link at all.
    let real = fixture("ethtool/jc/ethtool--default1.out");
    let down = real.replace("Link detected: yes", "Link detected: no");
    let (o, _) = run("driver-nic-link", &nic("enp0s3", &down));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("enp0s3: no link detected"),
        "{}",
        o.reason
    );
}

#[test]
fn nic_link_passes_at_the_speed_the_partner_allows() {
    // The NIC advertises 1000baseT but the partner only 10/100: 100 Mb/s
    // full duplex is the best both ends can do.
    let out = fixture("ethtool/jc/ethtool--link-partner-advertised-link-modes.out");
    let (o, _) = run("driver-nic-link", &nic("eth0", &out));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason
            .contains("best mode both ends advertise: 100baseT/Full"),
        "{}",
        o.reason
    );
    for file in [
        "ethtool/jc/ethtool--default1.out",
        "ethtool/jc/ethtool--default2.out",
        "ethtool/node_exporter/eth0/settings",
    ] {
        let (o, _) = run("driver-nic-link", &nic("eth0", &fixture(file)));
        assert_eq!(o.verdict, Verdict::Pass, "{file}: {}", o.reason);
        assert!(
            o.reason.contains("partner's modes not reported"),
            "{}",
            o.reason
        );
    }
}

#[test]
fn nic_link_skips_virtio_and_machines_without_ethtool_or_nics() {
    let (o, _) = run(
        "driver-nic-link",
        &nic("ens3", &fixture("ethtool/hotsos/ethtool_ens3")),
    );
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("ens3: the driver reports no speed"),
        "{}",
        o.reason
    );

    let no_tool = Scripted::new("sut")
        .command(WALK, 0, &walk_one("eth0"), "")
        .command("command -v ethtool", 1, "", "");
    let (o, _) = run("driver-nic-link", &no_tool);
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("ethtool is not installed"),
        "{}",
        o.reason
    );

    let virt_only = Scripted::new("sut").command(WALK, 0, "@ lo\nvirtual=1\n", "");
    let (o, _) = run("driver-nic-link", &virt_only);
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("no physical network interfaces"),
        "{}",
        o.reason
    );
}

// ---- driver.versions ------------------------------------------------------

#[test]
fn versions_records_nic_and_nvme_firmware() {
    let m = Scripted::new("sut")
        .command(WALK, 0, &walk_one("eth0"), "")
        .command("command -v ethtool", 0, "/usr/sbin/ethtool\n", "")
        .command(
            "ethtool -i eth0",
            0,
            &fixture("ethtool/node_exporter/eth0/driver"),
            "",
        )
        .file(
            "/sys/class/nvme/nvme0/model",
            "WDC PC SN730 SDBQNTY-512G-1001\n",
        )
        .file("/sys/class/nvme/nvme0/firmware_rev", "11170101\n");
    let (o, ev) = run("driver-versions", &m);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason
            .contains("eth0: driver e1000e 5.11.0-22-generic, firmware 0.5-4, bus 0000:00:1f.6"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("nvme0: WDC PC SN730 SDBQNTY-512G-1001 firmware 11170101"),
        "{}",
        o.reason
    );
    assert!(ev.iter().any(
        |e| matches!(e, Evidence::File { path, .. } if path == "/sys/class/nvme/nvme0/firmware_rev")
    ));

    // A virtio NIC reports no firmware: recorded as such, still a record.
    let m = Scripted::new("sut")
        .command(WALK, 0, &walk_one("ens3"), "")
        .command("command -v ethtool", 0, "/usr/sbin/ethtool\n", "")
        .command(
            "ethtool -i ens3",
            0,
            &fixture("ethtool/hotsos/ethtool_-i_ens3"),
            "",
        );
    let (o, _) = run("driver-versions", &m);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("firmware (none reported)"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("no NVMe controllers"), "{}", o.reason);

    // Nothing readable: skip with the reasons.
    let bare = Scripted::new("sut").command(WALK, 0, "@ lo\nvirtual=1\n", "");
    let (o, _) = run("driver-versions", &bare);
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("no physical network interfaces"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("no NVMe controllers"), "{}", o.reason);
}

/// On this machine (whatever it has) each case passes or skips with a
/// reason, never fails for want of a tool, always with evidence.
#[test]
fn driver_cases_pass_or_skip_with_a_reason_here() {
    let local = certlab_lab::Local::new(None);
    for name in [
        "driver-nic-link",
        "driver-versions",
        "driver-storage-health",
    ] {
        let (o, _) = run(name, &local);
        assert!(
            matches!(o.verdict, Verdict::Pass | Verdict::Skip),
            "{name}: {} {}",
            o.verdict,
            o.reason
        );
        assert!(!o.reason.is_empty(), "{name}: no reason");
        eprintln!("{name} here: {} — {}", o.verdict, o.reason);
    }
}

// ---- smartctl --json, on every real output --------------------------------

/// `KEY=VALUE` from a PROVENANCE note (`exit_status=64;`), `None` for `None`.
fn note_field<'a>(note: &'a str, key: &str) -> Option<Option<&'a str>> {
    let start = note.find(&format!("{key}="))? + key.len() + 1;
    let v = note[start..].split(';').next()?.trim();
    Some((v != "None").then_some(v))
}

#[test]
fn smartctl_parses_every_real_output_as_its_provenance_describes() {
    let prov = fixture("smartctl/PROVENANCE.tsv");
    let (mut reports, mut scans) = (0, 0);
    for line in prov.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (path, note) = (cols[0], cols[5]);
        if !path.ends_with(".json") {
            continue;
        }
        let text = fixture(&format!("smartctl/{path}"));
        if note.contains("--scan") {
            let devs =
                checks::smartctl::parse_scan(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(!devs.is_empty(), "{path}: no devices");
            assert!(devs.iter().all(|d| d.name.starts_with("/dev/")), "{path}");
            scans += 1;
            continue;
        }
        let r = checks::smartctl::parse_report(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        let exit = note_field(note, "exit_status").unwrap_or_else(|| panic!("{path}: note"));
        assert_eq!(
            r.exit_status.map(|s| s.to_string()).as_deref(),
            exit,
            "{path}"
        );
        if let Some(t) = note_field(note, "device.type") {
            assert_eq!(r.device_type.as_deref(), t, "{path}");
        }
        // Only the samples the provenance calls FAILING fail.
        assert_eq!(
            r.failure().is_some(),
            note.contains("FAILING"),
            "{path}: {:?}",
            r.failure()
        );
        // A healthy sample shows no degraded counter.
        if note.contains("; healthy") {
            assert!(r.degraded().is_empty(), "{path}: {:?}", r.degraded());
        }
        reports += 1;
    }
    assert_eq!((reports, scans), (192, 5));
}

#[test]
fn smartctl_exact_values_of_the_failing_and_degraded_samples() {
    let r = |p: &str| checks::smartctl::parse_report(&fixture(&format!("smartctl/{p}"))).unwrap();
    let nvme = r("smartctl_exporter/nvme-null-SAMSUNG_MZWLL3T2HAJQ-00005-nvme0.json");
    assert_eq!(nvme.passed, Some(false));
    assert_eq!(nvme.nvme_critical_warning, Some(16));
    assert_eq!(nvme.exit_status, Some(8));
    assert_eq!(nvme.exit_bits(), vec!["SMART status: disk failing"]);

    let usb = r("scrutiny/smart-fail2.json");
    assert_eq!((usb.passed, usb.exit_status), (Some(false), Some(216)));
    assert_eq!(
        (usb.ata_reallocated, usb.ata_pending),
        (Some(1975), Some(8))
    );
    assert_eq!(usb.device_type.as_deref(), Some("usbjmicron"));

    let media = r("scrutiny/smart-nvme-failed.json");
    assert_eq!(
        (media.passed, media.nvme_media_errors),
        (Some(true), Some(7))
    );
    assert_eq!(media.nvme_critical_warning, Some(0));
    assert_eq!(media.degraded(), vec!["NVMe media errors 7"]);

    assert_eq!(
        r("scrutiny/smart-megaraid1.json").ata_reallocated,
        Some(387)
    );
    assert_eq!(r("scrutiny/smart-scsi.json").scsi_grown_defects, Some(56));
    assert_eq!(
        r("smartctl_exporter/SEAGATE_ST373453LC_26.json").scsi_grown_defects,
        Some(260)
    );
    assert_eq!(
        r("smartctl_exporter/ST3500418AS_12.json").ata_reallocated,
        Some(304)
    );
    let raid = r("scrutiny/smart-raid.json");
    assert_eq!((raid.passed, raid.exit_status), (None, Some(4)));
    let open = r("scrutiny/smart-fail.json");
    assert_eq!(open.exit_bits(), vec!["device open failed"]);
    assert!(
        open.messages[0].contains("Open failed"),
        "{:?}",
        open.messages
    );
    // A -A only output has no health status: none, not "passed".
    assert_eq!(r("scrutiny/smart-sat.json").passed, None);
}

// ---- driver.storage-health --------------------------------------------------

fn smart_machine(scan: &str, devices: &[(&str, &str)]) -> Scripted {
    let mut m = Scripted::new("sut")
        .command("command -v smartctl", 0, "/usr/sbin/smartctl\n", "")
        .command(
            "smartctl --scan-open --json",
            0,
            &fixture(&format!("smartctl/{scan}")),
            "",
        );
    for (cmd, file) in devices {
        m = m.command(cmd, 0, &fixture(&format!("smartctl/{file}")), "");
    }
    m
}

#[test]
fn storage_health_fails_on_a_failing_nvme_and_notes_degraded_disks() {
    let m = smart_machine(
        "telegraf/testcases_scan/all/response.json",
        &[
            (
                "smartctl --json -i -H -A -d sat /dev/sda",
                "smartctl_exporter/ST3500418AS_12.json",
            ),
            (
                "smartctl --json -i -H -A -d nvme /dev/nvme0",
                "smartctl_exporter/nvme-null-SAMSUNG_MZWLL3T2HAJQ-00005-nvme0.json",
            ),
            (
                "smartctl --json -i -H -A -d nvme /dev/nvme1",
                "smartctl_exporter/nvme-null-INTEL_SSDPE2KE016T8-nvme0.json",
            ),
        ],
    );
    let (o, ev) = run("driver-storage-health", &m);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains(
            "/dev/nvme0 (SAMSUNG MZWLL3T2HAJQ-00005): SMART overall-health self-assessment FAILED, NVMe critical_warning=0x10"
        ),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("reallocated sectors 304"), "{}", o.reason);
    assert!(
        o.reason
            .contains("/dev/nvme1 (INTEL SSDPE2KE016T8): PASSED"),
        "{}",
        o.reason
    );
    assert!(commands(&ev).contains(&"smartctl --json -i -H -A -d nvme /dev/nvme0".to_string()));

    // A USB-bridged disk whose self-assessment failed.
    let m = smart_machine(
        "scrutiny/smartctl_scan_simple.json",
        &[("smartctl --json", "scrutiny/smart-fail2.json")],
    );
    let (o, _) = run("driver-storage-health", &m);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("FAILED"), "{}", o.reason);
}

#[test]
fn storage_health_passes_healthy_and_degraded_disks_with_notes() {
    let m = smart_machine(
        "scrutiny/smartctl_scan_nvme.json",
        &[(
            "smartctl --json -i -H -A -d nvme /dev/nvme0",
            "scrutiny/smart-nvme-failed.json",
        )],
    );
    let (o, _) = run("driver-storage-health", &m);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("degraded (warning): /dev/nvme0 (Samsung SSD 970 EVO 500GB): PASSED but NVMe media errors 7"),
        "{}",
        o.reason
    );
}

#[test]
fn storage_health_skips_without_smartctl_or_devices() {
    let none = Scripted::new("sut").command("command -v smartctl", 1, "", "");
    let (o, _) = run("driver-storage-health", &none);
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason
            .contains("smartctl (smartmontools) is not installed"),
        "{}",
        o.reason
    );

    let empty = Scripted::new("sut")
        .command("command -v smartctl", 0, "/usr/sbin/smartctl\n", "")
        .command("smartctl --scan-open --json", 0, "{\"devices\": []}", "");
    let (o, _) = run("driver-storage-health", &empty);
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("found no SMART devices"), "{}", o.reason);

    // The device could not be opened: not judged, the message quoted.
    let m = smart_machine(
        "scrutiny/smartctl_scan_simple.json",
        &[("smartctl --json", "scrutiny/smart-fail.json")],
    );
    let (o, _) = run("driver-storage-health", &m);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(o.reason.contains("Open failed"), "{}", o.reason);
}

// ---- driver.reload (Scripted targets only: it unloads drivers) -----------

const PROC_MODULES: &str = "ixgbe 380928 0 - Live 0x0000000000000000\nnvme 57344 3 - Live 0x0000000000000000\nvirtio_net 73728 0 - Live 0x0000000000000000\n";

/// The protected-drivers walk as this VM printed it (root on virtio-blk,
/// default route through a virtio NIC), with an NVMe boot disk instead.
const PROTECTED: &str = "boot=nvme\nmgmt=virtio_net\nmgmt=virtio-pci\n";

fn run_with(name: &str, target: &dyn Target, params: &str) -> (CaseOutcome, Vec<Evidence>) {
    let profile = HardwareProfile::default();
    common::check_with(name, target, &profile, params, Duration::from_secs(30))
}

/// `driver.reload` of ixgbe, allowed by the plan.
fn reload_ixgbe(m: &Scripted) -> (CaseOutcome, Vec<Evidence>) {
    run_with(
        "driver-reload",
        m,
        "allow_reload = true\nmodules = [\"ixgbe\"]",
    )
}

fn reload_machine(dmesg_after: &str, reload_exit: i32) -> Scripted {
    Scripted::new("sut")
        .command("id -u", 0, "0\n", "")
        .file("/proc/modules", PROC_MODULES)
        .command(": certlab protected-drivers", 0, PROTECTED, "")
        .command("dmesg >/dev/null && dmesg | wc -l", 0, "1200\n", "")
        .command("modprobe -r ixgbe && modprobe ixgbe", reload_exit, "", "")
        .command(
            "dmesg >/dev/null && dmesg | tail -n +1201",
            0,
            dmesg_after,
            "",
        )
}

#[test]
fn reload_is_skipped_unless_the_plan_allows_it() {
    let (o, ev) = run_with(
        "driver-reload",
        &reload_machine("", 0),
        "modules = [\"ixgbe\"]",
    );
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("allow_reload = true"), "{}", o.reason);
    assert!(!commands(&ev).iter().any(|c| c.contains("modprobe")));
}

#[test]
fn reload_needs_root_and_says_so_with_the_probe_as_evidence() {
    let m = Scripted::new("sut")
        .command("id -u", 0, "1000\n", "")
        .file("/proc/modules", PROC_MODULES)
        .command("modprobe -r ixgbe && modprobe ixgbe", 0, "", "");
    let (o, ev) = reload_ixgbe(&m);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("needs root; the case runs as uid 1000"),
        "{}",
        o.reason
    );
    assert_eq!(commands(&ev), ["id -u"]);
}

#[test]
fn reload_never_touches_the_boot_disk_or_management_nic_driver() {
    let (o, ev) = run_with(
        "driver-reload",
        &reload_machine("", 0),
        "allow_reload = true\nmodules = [\"nvme\", \"virtio_net\"]",
    );
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason
            .contains("nvme: not reloaded, it drives the boot disk"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("virtio_net: not reloaded, it drives the management NIC"),
        "{}",
        o.reason
    );
    assert!(!commands(&ev).iter().any(|c| c.contains("modprobe")));
}

#[test]
fn reload_fails_on_kernel_log_errors_and_failed_reloads() {
    // A real kernel log with a machine check, as if printed during the reload.
    let log = fixture("kernlog/abrt-oops_full_hostname.txt");
    let (o, ev) = run_with(
        "driver-reload",
        &reload_machine(&log, 0),
        "allow_reload = true\nmodules = [\"ixgbe\", \"nvme\"]",
    );
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("ixgbe: kernel log after the reload"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("nvme: not reloaded"), "{}", o.reason);
    assert!(commands(&ev).contains(&"modprobe -r ixgbe && modprobe ixgbe".to_string()));

    let (o, _) = reload_ixgbe(&reload_machine("", 1));
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("ixgbe: reload failed"), "{}", o.reason);

    let clean = "[ 1300.1] ixgbe 0000:3b:00.0: Multiqueue Enabled: Rx Queue count = 64\n";
    let (o, _) = reload_ixgbe(&reload_machine(clean, 0));
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("ixgbe: reloaded, kernel log clean"),
        "{}",
        o.reason
    );
}

#[test]
fn protected_drivers_walk_names_this_machines_boot_and_route_drivers() {
    // Runs the walk here (read-only): whatever this machine boots from, the
    // walk names at least one driver for it when / is on a block device.
    let local = certlab_lab::Local::new(None);
    let out = local
        .exec(checks::driver::PROTECTED_WALK, Duration::from_secs(30))
        .unwrap();
    assert!(out.success(), "{}", out.stderr_str());
    let p = checks::driver::protected_drivers(&out.stdout_str());
    eprintln!("protected here: {p:?}");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let root_on_dev = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/") && l.starts_with("/dev/"));
    if root_on_dev {
        assert!(p.iter().any(|(_, why)| why.contains("boot disk")), "{p:?}");
    }
}

#[test]
fn reload_does_not_unload_a_driver_when_the_kernel_log_is_unreadable() {
    let m = Scripted::new("sut")
        .command("id -u", 0, "0\n", "")
        .file("/proc/modules", PROC_MODULES)
        .command(": certlab protected-drivers", 0, PROTECTED, "")
        .command(
            "dmesg >/dev/null && dmesg | wc -l",
            1,
            "",
            "dmesg: read kernel buffer failed: Operation not permitted\n",
        );
    let (o, ev) = reload_ixgbe(&m);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("kernel log is unreadable"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("Operation not permitted"), "{}", o.reason);
    assert!(!commands(&ev).iter().any(|c| c.contains("modprobe")));
}
