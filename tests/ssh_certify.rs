//! The same suite code runs unchanged over SSH: discovery of this machine
//! through a real OpenSSH server on loopback finds what it finds locally.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../lab/tests/common/sshd.rs"]
mod sshd;

use certlab_lab::{Local, Ssh, Target};
use certlab_reports::Evidence;
use certlab_suites::{discover, MemorySink};

fn commands(ev: &[Evidence]) -> Vec<(String, Option<i32>)> {
    ev.iter()
        .filter_map(|e| match e {
            Evidence::Command { cmd, exit, .. } => Some((cmd.clone(), *exit)),
            _ => None,
        })
        .collect()
}

fn files(ev: &[Evidence]) -> Vec<String> {
    ev.iter()
        .filter_map(|e| match e {
            Evidence::File { path, .. } => Some(format!("file {path}")),
            Evidence::Missing { path, .. } => Some(format!("missing {path}")),
            _ => None,
        })
        .collect()
}

#[test]
fn discovery_over_ssh_matches_local_discovery() {
    let server = sshd::Sshd::start();
    let ssh = Ssh::new("sut-loopback", server.config());
    let local = Local::default();

    let remote_sink = MemorySink::default();
    let start = std::time::Instant::now();
    let r = discover(&ssh, &remote_sink).unwrap();
    let over_ssh = start.elapsed();
    let start = std::time::Instant::now();
    let l = discover(&local, &MemorySink::default()).unwrap();
    eprintln!(
        "discovery: {over_ssh:?} over ssh, {:?} locally",
        start.elapsed()
    );

    assert_eq!(r.host, l.host);
    assert_eq!(r.notes, l.notes);
    assert_eq!(commands(&r.evidence), commands(&l.evidence));
    assert_eq!(files(&r.evidence), files(&l.evidence));

    let (ri, li) = (&r.inventory, &l.inventory);
    assert_eq!(ri.kernel_release, li.kernel_release);
    assert_eq!(ri.machine, li.machine);
    assert_eq!(ri.dmi_sysfs, li.dmi_sysfs);
    assert_eq!(ri.sysfs_pci, li.sysfs_pci);
    assert_eq!(ri.os_release, li.os_release);
    assert_eq!(ri.modules_alias, li.modules_alias);
    assert_eq!(
        ri.lspci.as_ref().map(|f| &f.text),
        li.lspci.as_ref().map(|f| &f.text)
    );
    // cpuinfo's MHz lines move between two reads; the rest must not.
    let stable = |f: &Option<certlab_hwdb::Fact>| -> Vec<String> {
        f.as_ref()
            .map(|f| {
                f.text
                    .lines()
                    .filter(|l| !l.starts_with("cpu MHz"))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(stable(&ri.cpuinfo), stable(&li.cpuinfo));
    assert!(ri.cpuinfo.is_some() && ri.meminfo.is_some());

    // The evidence was stored through the sink, as for any target.
    for e in &r.evidence {
        if let Evidence::Command { stdout, .. } = e {
            assert!(remote_sink.get(stdout).is_some());
        }
    }
    assert_eq!(ssh.name(), "sut-loopback");
}

/// `certify --machine NAME` certifies a lab machine over SSH: the host key
/// is trusted on first use and recorded, the agent binary is copied for the
/// memory test and removed afterwards, and a changed host key is refused.
#[test]
fn certify_machine_over_ssh() {
    let mut server = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.toml");
    std::fs::write(
        &lab,
        format!(
            "[[machine]]\nname = \"sut1\"\narch = \"{}\"\n\n[machine.ssh]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{}\"\n",
            std::env::consts::ARCH,
            server.port,
            sshd::whoami(),
            server.client_key.display()
        ),
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let certify = |out: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args([
                "certify",
                "--machine",
                "sut1",
                "--lab",
                lab.to_str().unwrap(),
            ])
            .args([
                "--out",
                dir.path().join(out).to_str().unwrap(),
                "--db",
                &db,
                "--format",
                "json",
            ])
            .env("CERTLAB_DATA_DIR", dir.path())
            .output()
            .unwrap()
    };
    let o = certify("out1");
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let code = o.status.code().unwrap();
    assert!(code == 0 || code == 1, "{stderr}");
    assert!(stderr.contains("on first use"), "{stderr}");
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(record["cases"].as_array().unwrap().len() >= 12);
    let mem = record["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "mem.pattern")
        .unwrap();
    assert_eq!(mem["verdict"], "pass", "the agent ran on the SUT: {mem}");
    let run_id = record["run_id"].as_str().unwrap();
    assert!(
        !std::path::Path::new(&format!("/var/tmp/certlab-agent-{run_id}")).exists(),
        "the agent copy is removed"
    );

    // Second run: the recorded key is pinned, nothing is trusted anew.
    let o = certify("out2");
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{stderr}"
    );
    assert!(!stderr.contains("on first use"), "{stderr}");

    // The machine comes back with another host key: refused, infrastructure error.
    server.kill();
    let new_key = sshd::new_key(server.dir.path(), "host_key_new");
    std::fs::rename(&new_key, server.dir.path().join("host_key")).unwrap();
    std::fs::rename(
        server.dir.path().join("host_key_new.pub"),
        server.dir.path().join("host_key.pub"),
    )
    .unwrap();
    server.start_again();
    let o = certify("out3");
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.to_lowercase().contains("host key"), "{stderr}");
}

/// An SSH session dropped in the middle of a run is an infrastructure
/// error: the cases it cut are `error`, never `fail`, the run ends with the
/// infrastructure exit status, and the cases finished before are kept.
#[test]
fn dropped_ssh_session_is_an_error_not_a_failure() {
    let mut server = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.toml");
    std::fs::write(
        &lab,
        format!(
            "[[machine]]\nname = \"sut2\"\narch = \"{}\"\n\n[machine.ssh]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{}\"\nhost_key = \"{}\"\n",
            std::env::consts::ARCH,
            server.port,
            sshd::whoami(),
            server.client_key.display(),
            server.host_key
        ),
    )
    .unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(
        &plan,
        "[plan]\nid = \"drop-test\"\nversion = \"1\"\ntitle = \"t\"\n\n\
         [[case]]\nid = \"cpu.online\"\ncheck = \"cpu-online\"\ntitle = \"t\"\ntimeout_s = 30\n\n\
         [[case]]\nid = \"mem.pattern\"\ncheck = \"mem-pattern\"\ntitle = \"t\"\ntimeout_s = 300\n[case.params]\nmib = 6144\nmax_available_pct = 40\n\n\
         [[case]]\nid = \"kernel.taint\"\ncheck = \"kernel-taint\"\ntitle = \"t\"\ntimeout_s = 30\n",
    )
    .unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args([
            "certify",
            "--machine",
            "sut2",
            "--lab",
            lab.to_str().unwrap(),
        ])
        .args([
            "--plan",
            plan.to_str().unwrap(),
            "--db",
            &db,
            "--format",
            "json",
        ])
        .args(["--out", dir.path().join("out").to_str().unwrap()])
        .env("CERTLAB_DATA_DIR", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the first case is in the store the memory test is running on
    // the SUT (it is the only case left before kernel.taint): drop the session.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the first case was never recorded"
        );
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("certify ended before the session was dropped ({status}): {err}");
        }
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args(["runs", "list", "--db", &db, "--format", "json"])
            .env("CERTLAB_DATA_DIR", dir.path())
            .output()
            .unwrap();
        let rows: serde_json::Value =
            serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        let finished = ["pass", "fail", "warning"]
            .iter()
            .map(|k| rows[0][*k].as_u64().unwrap_or(0))
            .sum::<u64>();
        if finished >= 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.kill();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "outcome error is exit 2: {stderr}"
    );
    let record: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let verdicts: Vec<(&str, &str)> = record["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap(), c["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(verdicts[0], ("cpu.online", "pass"), "{verdicts:?}");
    assert_eq!(verdicts[1], ("mem.pattern", "error"), "{verdicts:?}");
    assert_eq!(verdicts[2], ("kernel.taint", "error"), "{verdicts:?}");
    assert!(verdicts.iter().all(|(_, v)| *v != "fail"), "{verdicts:?}");
    assert_eq!(record["summary"]["outcome"], "error");
    let reason = record["cases"][1]["reason"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(
        reason.contains("connect") || reason.contains("lost"),
        "{reason}"
    );
}

/// `lab exec` and `lab health` connect under the same host-key policy as
/// `certify --machine`: trusted on first use and recorded in the lab store,
/// then only the recorded key (or a key pinned in lab.toml) is accepted.
/// `lab exec` exits with the remote command's status, 255 when it cannot
/// run it.
#[test]
fn lab_exec_and_health_use_the_one_host_key_policy() {
    let mut server = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.toml");
    let port = server.port;
    let client_key = server.client_key.clone();
    let write_lab = |pinned: Option<&certlab_lab::HostKey>| {
        let mut toml = format!(
            "[[machine]]\nname = \"sut1\"\narch = \"{}\"\n\n[machine.ssh]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{}\"\n",
            std::env::consts::ARCH,
            port,
            sshd::whoami(),
            client_key.display()
        );
        if let Some(k) = pinned {
            toml.push_str(&format!("host_key = \"{k}\"\n"));
        }
        std::fs::write(&lab, toml).unwrap();
    };
    write_lab(None);
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let certlab = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args(["lab", args[0], "--lab", lab.to_str().unwrap(), "--db", &db])
            .args(&args[1..])
            .env("CERTLAB_DATA_DIR", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).to_string(),
            stderr,
        )
    };
    let address = format!("127.0.0.1:{}", server.port);

    // First use: trusted, said so, recorded.
    let (code, out, err) = certlab(&["exec", "sut1", "--", "echo", "hello"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "hello\n");
    assert!(err.contains("on first use"), "{err}");
    // The remote status is the exit status.
    let (code, _, err) = certlab(&["exec", "sut1", "--", "exit 7"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(
        !err.contains("on first use"),
        "recorded, not trusted anew: {err}"
    );
    // health checks the same record.
    let (code, out, err) = certlab(&["health", "sut1", "--format", "json"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(!err.contains("on first use"), "{err}");

    // The machine comes back with another host key.
    let old = server.host_key.clone();
    server.kill();
    let new_key = sshd::new_key(server.dir.path(), "host_key_new");
    std::fs::rename(&new_key, server.dir.path().join("host_key")).unwrap();
    std::fs::rename(
        server.dir.path().join("host_key_new.pub"),
        server.dir.path().join("host_key.pub"),
    )
    .unwrap();
    let new = sshd::read_pub(&server.dir.path().join("host_key"));
    server.start_again();

    let (code, out, err) = certlab(&["exec", "sut1", "--", "touch", "/tmp/certlab-must-not-run"]);
    assert_eq!(code, Some(255), "{out}{err}");
    for part in [
        "sut1",
        address.as_str(),
        &old.fingerprint(),
        &new.fingerprint(),
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
    let (code, out, err) = certlab(&["health", "sut1", "--format", "json"]);
    assert_eq!(code, Some(1), "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let problems = v[0]["problems"].to_string();
    assert_eq!(v[0]["ssh"], false, "{v}");
    assert!(problems.contains("host key"), "{problems}");
    assert!(problems.contains(&new.fingerprint()), "{problems}");

    // A key pinned in lab.toml wins over the recorded one.
    write_lab(Some(&new));
    let (code, out, err) = certlab(&["exec", "sut1", "--", "echo", "pinned"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "pinned\n");
    let (code, _, err) = certlab(&["health", "sut1"]);
    assert_eq!(code, Some(0), "{err}");
    write_lab(Some(&old));
    let (code, _, err) = certlab(&["exec", "sut1", "--", "true"]);
    assert_eq!(code, Some(255), "{err}");
    assert!(err.contains("pinned in lab.toml"), "{err}");

    // Nothing to connect to: 255 as well.
    server.kill();
    write_lab(None);
    let (code, _, err) = certlab(&["exec", "sut1", "--", "true"]);
    assert_eq!(code, Some(255), "{err}");
}
