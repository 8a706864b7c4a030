//! `lab.toml`: the documented shape, every problem with its line, secrets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use certlab_lab::inventory::*;

#[test]
fn the_version_1_fixture_loads() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lab-v1.toml");
    let lab = Lab::load(&p).unwrap();
    let names: Vec<_> = lab.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["node1", "rf1", "rf2", "rv1"]);
    let n1 = lab.machine("node1").unwrap();
    assert_eq!(n1.bmc().unwrap().protocol, BmcProtocol::Ipmi);
    assert_eq!(n1.bmc().unwrap().port, DEFAULT_IPMI_PORT);
    assert_eq!(
        n1.ssh().unwrap().host_key.as_ref().unwrap().algorithm(),
        "ssh-ed25519"
    );
    // The redfish keys under an ipmi BMC are accepted with a warning.
    assert!(lab
        .warnings
        .iter()
        .any(|w| w.line == 18 && w.message.contains("`scheme` applies to redfish only")));
    let rf1 = lab.machine("rf1").unwrap().bmc().unwrap();
    assert_eq!(rf1.port, DEFAULT_REDFISH_PORT);
    assert_eq!(
        rf1.password,
        SecretSource::File(p.parent().unwrap().join("secrets/rf1"))
    );
    let rf2 = lab.machine("rf2").unwrap().bmc().unwrap();
    assert_eq!(rf2.port, 80);
    assert!(matches!(&rf2.protocol, BmcProtocol::Redfish(o) if o.scheme == Scheme::Http));
    let rv1 = lab.machine("rv1").unwrap().bmc().unwrap();
    assert!(
        matches!(&rv1.protocol, BmcProtocol::Redfish(RedfishOptions { tls: TlsMode::CaFile(f), .. }) if f.ends_with("ca.pem"))
    );
    // Nothing in a printed inventory is a secret, but say so explicitly.
    assert!(!format!("{lab:?}").contains("hunter2"));
}

const EXAMPLE: &str = r#"
[[machine]]
name = "node1"
arch = "x86_64"                    # x86_64 | aarch64 | loongarch64 | riscv64
tags = ["gpu", "nic:mlx5"]
pool = "nightly"

[machine.bmc]
protocol = "ipmi"                  # ipmi | redfish
address = "127.0.0.1"
port = 623
username = "admin"
password_env = "NODE1_BMC_PASSWORD"

[machine.ssh]
address = "10.0.0.11"
port = 22
user = "root"
key_file = "/root/.ssh/id_ed25519"
host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"

[[machine]]
name = "rf1"
arch = "aarch64"

[machine.bmc]
protocol = "redfish"
address = "bmc-rf1.lab"
username = "admin"
password_file = "secrets/rf1"
scheme = "https"
tls = { pin_sha256 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF" }
system_id = "1"
"#;

#[test]
fn the_documented_shape_is_accepted() {
    let lab = Lab::parse(EXAMPLE, "lab.toml").unwrap();
    assert_eq!(lab.machines.len(), 2);
    let n1 = lab.machine("node1").unwrap();
    assert_eq!(n1.arch, Arch::X86_64);
    assert_eq!(n1.tags, vec!["gpu", "nic:mlx5"]);
    assert_eq!(n1.pool.as_deref(), Some("nightly"));
    assert_eq!(n1.line, 2);
    let bmc = n1.bmc().unwrap();
    assert_eq!(bmc.protocol, BmcProtocol::Ipmi);
    assert_eq!(bmc.port, 623);
    assert_eq!(bmc.password, SecretSource::Env("NODE1_BMC_PASSWORD".into()));
    let ssh = n1.ssh().unwrap();
    assert_eq!(ssh.port, 22);
    assert_eq!(ssh.host_key.as_ref().unwrap().algorithm(), "ssh-ed25519");
    let rf = lab.machine("rf1").unwrap();
    let bmc = rf.bmc().unwrap();
    assert_eq!(bmc.port, 443);
    match &bmc.protocol {
        BmcProtocol::Redfish(o) => {
            assert_eq!(o.scheme, Scheme::Https);
            assert!(matches!(o.tls, TlsMode::PinSha256(d) if d[0] == 0 && d[31] == 0xff));
            assert_eq!(o.system_id.as_deref(), Some("1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(rf.ssh().is_err());
    // The unset variable and missing file are warnings, not errors.
    assert!(lab.warnings.iter().all(|w| w.severity == Severity::Warning));
}

#[test]
fn defaults_for_ports_and_tls() {
    let lab = Lab::parse(
        r#"
[[machine]]
name = "a"
arch = "riscv64"
bmc = { protocol = "redfish", address = "h", username = "u", password_env = "X" }
ssh = { address = "h" }
"#,
        "t",
    )
    .unwrap();
    let m = &lab.machines[0];
    let bmc = m.bmc().unwrap();
    assert_eq!(bmc.port, 443);
    assert!(matches!(&bmc.protocol, BmcProtocol::Redfish(o) if o.tls == TlsMode::Verify));
    let ssh = m.ssh().unwrap();
    assert_eq!((ssh.port, ssh.user.as_str()), (22, "root"));
    assert!(ssh.key_file.ends_with(".ssh/id_ed25519"));
}

#[test]
fn every_problem_is_reported_with_its_line() {
    let text = r#"[[machine]]
name = "n1"
arch = "sparc"
colour = "red"

[machine.bmc]
protocol = "redfish"
address = "10.0.0.1"
username = "admin"
password = "hunter2"
tls = "sometimes"

[machine.ssh]
address = "10.0.0.2"
port = 70000
host_key = "ssh-ed25519 notbase64!"

[[machine]]
name = "n1"
arch = "aarch64"

[[machine]]
arch = "x86_64"
bmc = { protocol = "ipmi", address = "x", username = "u", password_env = "A", tls = "insecure" }
"#;
    let err = Lab::parse(text, "lab.toml").unwrap_err();
    let problems = err.problems();
    let lines: Vec<(usize, &str)> = problems
        .iter()
        .map(|p| (p.line, p.message.as_str()))
        .collect();
    let has = |line: usize, needle: &str| {
        assert!(
            lines.iter().any(|(l, m)| *l == line && m.contains(needle)),
            "no problem on line {line} containing {needle:?} in {lines:#?}"
        )
    };
    has(3, "unknown arch `sparc`");
    has(4, "unknown key `colour`");
    has(10, "passwords are never written");
    has(6, "missing `password_env` or `password_file`");
    has(11, "unknown tls mode");
    has(15, "70000 is not a port");
    has(16, "host_key");
    has(18, "defined twice (first on line 1)");
    has(22, "missing required key `name`");
    has(24, "applies to redfish only");
    // The secret never appears in any message.
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(
        err.to_string()
            .contains("lab.toml:3:8: error: machine n1: unknown arch"),
        "{err}"
    );
}

#[test]
fn syntax_errors_have_a_line() {
    let err = Lab::parse("[[machine]]\nname = \"a\"\narch = \n", "bad.toml").unwrap_err();
    let p = &err.problems()[0];
    assert_eq!((p.file.as_str(), p.line), ("bad.toml", 3), "{p}");
}

#[test]
fn machine_must_be_an_array_and_version_is_checked() {
    let err = Lab::parse("version = 2\n[machine]\nname = \"a\"\n", "t").unwrap_err();
    let msgs: Vec<_> = err.problems().iter().map(|p| p.message.clone()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("unsupported lab.toml version 2")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("[[machine]]")), "{msgs:?}");
    assert!(Lab::parse("version = 1\n", "t")
        .unwrap()
        .machines
        .is_empty());
}

#[test]
fn secrets_resolve_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    std::fs::write(&f, "s3cret\n").unwrap();
    let s = SecretSource::File(f).resolve("n1").unwrap();
    assert_eq!(s.expose(), "s3cret");
    assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
    let e = SecretSource::Env("CERTLAB_TEST_SURELY_UNSET_VAR".into())
        .resolve("n1")
        .unwrap_err();
    assert!(e.to_string().contains("machine n1"), "{e}");
    assert!(
        e.to_string().contains("CERTLAB_TEST_SURELY_UNSET_VAR"),
        "{e}"
    );
}

#[test]
fn relative_paths_follow_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("lab.toml");
    std::fs::write(
        &p,
        "[[machine]]\nname = \"a\"\narch = \"x86_64\"\n[machine.ssh]\naddress = \"h\"\nkey_file = \"keys/id\"\n",
    )
    .unwrap();
    let lab = Lab::load(&p).unwrap();
    assert_eq!(
        lab.machines[0].ssh().unwrap().key_file,
        dir.path().join("keys/id")
    );
    assert_eq!(lab.warnings.len(), 1, "{:?}", lab.warnings);
    assert_eq!(lab.warnings[0].line, 6);
}

#[test]
fn pins_accept_colons() {
    let colon = "00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff";
    assert!(parse_pin(colon).is_some());
    assert!(parse_pin("abcd").is_none());
}

#[test]
fn an_oversized_inventory_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("lab.toml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    let mut text = String::from("version = 1\n");
    while (text.len() as u64) <= MAX_INVENTORY_BYTES {
        text.push_str(line);
    }
    std::fs::write(&big, &text).unwrap();
    let e = Lab::load(&big).unwrap_err();
    assert!(matches!(e, InventoryError::TooLarge { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("lab.toml") && msg.contains(&MAX_INVENTORY_BYTES.to_string()),
        "{msg}"
    );
    // At the limit it is read (and judged on its content).
    text.truncate(MAX_INVENTORY_BYTES as usize);
    let cut = text.rfind('\n').unwrap() + 1;
    text.truncate(cut);
    std::fs::write(&big, &text).unwrap();
    assert!(!matches!(
        Lab::load(&big),
        Err(InventoryError::TooLarge { .. })
    ));
    // A file whose size says nothing (a device) is cut off while reading.
    let e = Lab::load(Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(e, InventoryError::TooLarge { .. }), "{e}");
}

#[test]
fn exposure_warnings_name_http_insecure_tls_and_unprotected_password_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("bmc.pw");
    std::fs::write(&pw, "Sup3r-secret\n").unwrap();
    let lab = |bmc: &str| {
        let text = format!(
            "[[machine]]\nname = \"a\"\narch = \"x86_64\"\n[machine.bmc]\n{bmc}address = \"10.0.0.9\"\nusername = \"admin\"\npassword_file = \"{}\"\n",
            pw.display()
        );
        let lab = Lab::parse(&text, "t").unwrap();
        lab.machines[0].bmc.clone().unwrap().exposure_warnings()
    };
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(lab("protocol = \"redfish\"\n").is_empty());
    assert!(lab("protocol = \"ipmi\"\n").is_empty());
    let w = lab("protocol = \"redfish\"\nscheme = \"http\"\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("plain http"), "{w:?}");
    let w = lab("protocol = \"redfish\"\ntls = \"insecure\"\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("insecure"), "{w:?}");
    for mode in [0o640, 0o604, 0o644] {
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(mode)).unwrap();
        let w = lab("protocol = \"ipmi\"\n");
        assert_eq!(w.len(), 1, "{mode:o}: {w:?}");
        assert!(w[0].contains("readable by group or others"), "{w:?}");
        assert!(w[0].contains(&pw.display().to_string()), "{w:?}");
        assert!(!w[0].contains("Sup3r-secret"), "{w:?}");
    }
}

#[test]
fn power_policy_and_provision_are_read_and_checked() {
    let text = r#"[[machine]]
name = "n1"
arch = "aarch64"
power_policy = "off-when-idle"
[machine.provision]
command = "maas-deploy $CERTLAB_MACHINE"
boot = "pxe"
timeout_s = 600

[[machine]]
name = "n2"
arch = "x86_64"
"#;
    let lab = Lab::parse(text, "lab.toml").unwrap();
    let n1 = lab.machine("n1").unwrap();
    assert_eq!(n1.power_policy, PowerPolicy::OffWhenIdle);
    let p = n1.provision.as_ref().unwrap();
    assert_eq!(p.command, "maas-deploy $CERTLAB_MACHINE");
    assert_eq!(p.boot, Some(certlab_lab::bmc::BootDevice::Pxe));
    assert_eq!(p.timeout, std::time::Duration::from_secs(600));
    let n2 = lab.machine("n2").unwrap();
    assert_eq!((n2.power_policy, &n2.provision), (PowerPolicy::Keep, &None));

    let bad = r#"[[machine]]
name = "n1"
arch = "aarch64"
power_policy = "sleep"
[machine.provision]
boot = "usb"
timeout_s = 0
password = "x"
"#;
    let err = Lab::parse(bad, "lab.toml").unwrap_err();
    let lines: Vec<(usize, String)> = err
        .problems()
        .iter()
        .map(|p| (p.line, p.message.clone()))
        .collect();
    let has = |line: usize, needle: &str| {
        assert!(
            lines.iter().any(|(l, m)| *l == line && m.contains(needle)),
            "no problem on line {line} containing {needle:?} in {lines:#?}"
        )
    };
    has(
        4,
        "unknown power_policy `sleep` (expected one of: keep, off, off-when-idle)",
    );
    has(5, "missing required key `command`");
    has(6, "unknown boot device `usb`");
    has(
        7,
        "`timeout_s` must be an integer of seconds from 1 to 86400, not 0",
    );
    has(8, "passwords are never written");
}
