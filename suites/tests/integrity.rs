//! System integrity checks: package verification judged on the real `dpkg
//! --verify` of a real installed package, module signing and Secure Boot on
//! the kernel's own encodings.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::Scripted;
use certlab_reports::Verdict;
use certlab_suites::{checks, CaseCtx, CaseOutcome, MemorySink};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/integrity");

fn run(name: &str, target: &Scripted, params: &str) -> CaseOutcome {
    let profile = HardwareProfile::default();
    common::check_with(name, target, &profile, params, Duration::from_secs(30)).0
}

/// A Debian machine whose running kernel no package owns (dpkg's real
/// answer), with `dpkg --verify PACKAGE` answering `verify`.
fn debian(package: &str, verify: &str) -> Scripted {
    Scripted::new("sut")
        .command("command -v dpkg", 0, "/usr/bin/dpkg\n", "")
        .command("uname -r", 0, "6.1.0-18-amd64\n", "")
        .command(
            "dpkg -S ",
            1,
            "",
            "dpkg-query: no path found matching pattern /boot/vmlinuz-6.1.0-18-amd64\n",
        )
        .command(&format!("dpkg --verify {package}"), 0, verify, "")
}

/// Copies an installed package into a dpkg root of its own (status entry,
/// md5sums, file list and files), so that the real `dpkg --verify` can be
/// run on a copy that the test then tampers with.
fn dpkg_root(package: &str, root: &Path) {
    let admin = root.join("var/lib/dpkg");
    std::fs::create_dir_all(admin.join("info")).unwrap();
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    let status = Command::new("dpkg-query")
        .args(["-s", package])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "dpkg-query -s {package}: is dpkg installed? (scripts/bootstrap)"
    );
    std::fs::write(admin.join("status"), &status.stdout).unwrap();
    std::fs::write(admin.join("available"), "").unwrap();
    for ext in ["md5sums", "list"] {
        let from = format!("/var/lib/dpkg/info/{package}.{ext}");
        std::fs::copy(&from, admin.join(format!("info/{package}.{ext}"))).unwrap();
    }
    let list = std::fs::read_to_string(format!("/var/lib/dpkg/info/{package}.list")).unwrap();
    for path in list.lines() {
        let src = Path::new(path);
        let meta = std::fs::symlink_metadata(src).unwrap();
        if src.is_dir() {
            continue;
        }
        let dst = root.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(src, &dst).unwrap();
        }
    }
}

fn dpkg_verify(root: &Path, package: &str) -> String {
    let out = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--verify", package])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_tampered_package_fails_on_the_real_dpkg_verify() {
    let dir = tempfile::tempdir().unwrap();
    dpkg_root("hostname", dir.path());
    let clean = dpkg_verify(dir.path(), "hostname");
    assert_eq!(clean, "", "an untouched copy verifies clean");
    let out = run(
        "integrity-packages",
        &debian("hostname", &clean),
        "packages = [\"hostname\"]",
    );
    assert_eq!(out.verdict, Verdict::Pass, "{}", out.reason);

    let binary = dir.path().join("bin/hostname");
    let mut bytes = std::fs::read(&binary).unwrap();
    bytes.push(0);
    std::fs::write(&binary, bytes).unwrap();
    std::fs::remove_file(dir.path().join("usr/share/man/man1/hostname.1.gz")).unwrap();
    let tampered = dpkg_verify(dir.path(), "hostname");
    let out = run(
        "integrity-packages",
        &debian("hostname", &tampered),
        "packages = [\"hostname\"]",
    );
    assert_eq!(out.verdict, Verdict::Fail, "{}", out.reason);
    assert!(
        out.reason
            .contains("hostname: /bin/hostname (content changed)"),
        "{}",
        out.reason
    );
    assert!(
        out.reason.contains("hostname.1.gz (missing)"),
        "{}",
        out.reason
    );
}

#[test]
fn the_recorded_tampered_output_fails_and_names_both_files() {
    let text = std::fs::read_to_string(format!("{FIXTURES}/dpkg-verify-tampered.txt")).unwrap();
    let out = run(
        "integrity-packages",
        &debian("hostname", &text),
        "packages = [\"hostname\"]",
    );
    assert_eq!(out.verdict, Verdict::Fail);
    assert!(out.reason.starts_with("2 file(s)"), "{}", out.reason);
}

#[test]
fn a_changed_configuration_file_is_allowed_and_a_kernel_not_from_a_package_skips() {
    let out = run(
        "integrity-packages",
        &debian(
            "linux-image-6.1.0-18-amd64",
            "??5?????? c /etc/kernel/postinst.d/zz-update-grub\n",
        ),
        "packages = [\"linux-image-6.1.0-18-amd64\"]",
    );
    assert_eq!(out.verdict, Verdict::Pass, "{}", out.reason);
    assert!(out.reason.contains("zz-update-grub"), "{}", out.reason);

    let out = run("integrity-packages", &debian("x", ""), "");
    assert_eq!(out.verdict, Verdict::Skip);
    assert!(
        out.reason
            .contains("no package owns the running kernel 6.1.0-18-amd64"),
        "{}",
        out.reason
    );
}

#[test]
fn the_kernel_package_is_found_by_its_image() {
    let rpm = "S.5....T.    /lib/modules/5.14.0-362.8.1.el9_3.x86_64/vmlinuz\n";
    let m = Scripted::new("sut")
        .command("command -v dpkg", 1, "", "")
        .command("command -v rpm", 0, "/usr/bin/rpm\n", "")
        .command("uname -r", 0, "5.14.0-362.8.1.el9_3.x86_64\n", "")
        .command(
            "rpm -qf --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\\n' /boot/",
            1,
            "file /boot/vmlinuz-5.14.0-362.8.1.el9_3.x86_64 is not owned by any package\n",
            "",
        )
        .command(
            "rpm -qf",
            0,
            "kernel-core-5.14.0-362.8.1.el9_3.x86_64\n",
            "",
        )
        .command("rpm -V kernel-core-5.14.0-362.8.1.el9_3.x86_64", 1, rpm, "");
    let out = run("integrity-packages", &m, "");
    assert_eq!(out.verdict, Verdict::Fail, "{}", out.reason);
    assert!(out.reason.contains("kernel-core-5.14.0-362.8.1.el9_3.x86_64: /lib/modules/5.14.0-362.8.1.el9_3.x86_64/vmlinuz (content changed)"), "{}", out.reason);
}

#[test]
fn an_unsigned_module_fails_module_signing() {
    let modules =
        "hello 16384 0 - Live 0xffffffffc0a1d000 (OE)\next4 1007616 1 - Live 0x0000000000000000\n";
    let m = Scripted::new("sut")
        .file("/sys/module/module/parameters/sig_enforce", "N\n")
        .file(
            "/sys/kernel/security/lockdown",
            "[none] integrity confidentiality\n",
        )
        .file("/proc/sys/kernel/tainted", "12288\n")
        .file("/proc/modules", modules);
    let out = run("integrity-module-signing", &m, "");
    assert_eq!(out.verdict, Verdict::Fail);
    assert!(out.reason.contains("hello"), "{}", out.reason);

    let signed = Scripted::new("sut")
        .file("/sys/module/module/parameters/sig_enforce", "Y\n")
        .file(
            "/sys/kernel/security/lockdown",
            "none [integrity] confidentiality\n",
        )
        .file("/proc/sys/kernel/tainted", "0\n");
    let out = run("integrity-module-signing", &signed, "");
    assert_eq!(out.verdict, Verdict::Pass);
    assert!(
        out.reason.contains("enforcement on, lockdown integrity"),
        "{}",
        out.reason
    );

    let unsupported = Scripted::new("sut").file("/proc/sys/kernel/tainted", "0\n");
    assert_eq!(
        run("integrity-module-signing", &unsupported, "").verdict,
        Verdict::Skip
    );
}

const SB: &str = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c";
const SETUP: &str = "/sys/firmware/efi/efivars/SetupMode-8be4df61-93ca-11d2-aa0d-00e098032b8c";

#[test]
fn secure_boot_from_efivars_and_mokutil() {
    let on = Scripted::new("sut")
        .file(SB, vec![6, 0, 0, 0, 1])
        .file(SETUP, vec![6, 0, 0, 0, 0]);
    assert_eq!(run("integrity-secure-boot", &on, "").verdict, Verdict::Pass);
    let off = Scripted::new("sut").file(SB, vec![6, 0, 0, 0, 0]);
    assert_eq!(
        run("integrity-secure-boot", &off, "").verdict,
        Verdict::Fail
    );
    let setup = Scripted::new("sut")
        .file(SB, vec![6, 0, 0, 0, 0])
        .file(SETUP, vec![6, 0, 0, 0, 1]);
    let out = run("integrity-secure-boot", &setup, "");
    assert_eq!(out.verdict, Verdict::Fail);
    assert!(out.reason.contains("Setup Mode"));

    let legacy = Scripted::new("sut").file("/sys/firmware/dmi/tables/DMI", "x");
    assert_eq!(
        run("integrity-secure-boot", &legacy, "").verdict,
        Verdict::Skip
    );

    // UEFI without efivarfs mounted: mokutil's real answer cannot tell.
    let real =
        std::fs::read_to_string(format!("{FIXTURES}/mokutil-sb-state-not-supported.txt")).unwrap();
    let unknown = Scripted::new("sut")
        .file("/sys/firmware/efi/systab", "ACPI20=0x7ff7e014\n")
        .command("command -v mokutil", 0, "/usr/bin/mokutil\n", "")
        .command("mokutil --sb-state", 255, "", &real);
    assert_eq!(
        run("integrity-secure-boot", &unknown, "").verdict,
        Verdict::Skip
    );
    let enabled = Scripted::new("sut")
        .file("/sys/firmware/efi/systab", "ACPI20=0x7ff7e014\n")
        .command("command -v mokutil", 0, "/usr/bin/mokutil\n", "")
        .command("mokutil --sb-state", 0, "SecureBoot enabled\n", "");
    assert_eq!(
        run("integrity-secure-boot", &enabled, "").verdict,
        Verdict::Pass
    );
}

#[test]
fn on_this_machine_each_check_passes_or_skips_with_a_reason() {
    let local = certlab_lab::Local::new(None);
    for name in [
        "integrity-packages",
        "integrity-module-signing",
        "integrity-secure-boot",
    ] {
        let check = checks::lookup(name).unwrap();
        let sink = MemorySink::default();
        let params = toml::Table::new();
        let (inv, profile) = (Inventory::default(), HardwareProfile::default());
        let ctx = CaseCtx::new(
            &local,
            &profile,
            &inv,
            &params,
            &sink,
            Duration::from_secs(60),
        );
        let out = check.run(&ctx).unwrap();
        assert!(!ctx.take_evidence().is_empty());
        assert!(
            matches!(out.verdict, Verdict::Pass | Verdict::Skip | Verdict::Fail),
            "{name}"
        );
        assert!(!out.reason.is_empty(), "{name}");
    }
}
