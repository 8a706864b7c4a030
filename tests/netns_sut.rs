//! The lab controls a machine: the SUT is a network namespace on a private
//! subnet (veth pair, host side in the root namespace) running its own
//! OpenSSH `sshd`, and its BMC is an OpenIPMI `ipmi_sim` whose chassis
//! control starts that sshd on power on and kills everything in the
//! namespace on power off. Power off through the BMC makes SSH unreachable,
//! power on brings it back; then `certlab certify --machine` certifies the
//! namespace over SSH.
//!
//! Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2 for
//! `ip netns`; the test fails, naming what is missing, rather than skip.
//! Every process, the namespace and the veth pair are removed on drop.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "../lab/tests/common/ipmi_sim.rs"]
mod ipmi_sim;
#[path = "../lab/tests/common/sshd.rs"]
mod sshd;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::netns::Netns;

use certlab_lab::bmc::{Bmc, PowerAction, PowerState};
use certlab_lab::{HostKeyCheck, Ssh, SshConfig, Target, TargetError};
use serde_json::Value;

const PW_VAR: &str = "CERTLAB_TEST_BMC_PW";

/// The SUT's sshd config (port 22 on the namespace's address) and keys.
struct SutSsh {
    dir: tempfile::TempDir,
    config: PathBuf,
    client_key: PathBuf,
    host_key: certlab_lab::HostKey,
}

impl SutSsh {
    fn new(addr: Ipv4Addr) -> SutSsh {
        assert!(
            Path::new(sshd::SSHD).exists(),
            "{} is missing: run `apt-get install openssh-server openssh-client`",
            sshd::SSHD
        );
        std::fs::create_dir_all("/run/sshd").ok();
        let dir = tempfile::tempdir().unwrap();
        let host = sshd::new_key(dir.path(), "host_key");
        let client_key = sshd::new_key(dir.path(), "id_ed25519");
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let d = dir.path().display();
        let config = dir.path().join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port 22\nListenAddress {addr}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n\
                 AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nPermitRootLogin yes\nAllowUsers {}\n\
                 MaxStartups 100\nLogLevel VERBOSE\nSetEnv HOME={d}\nSubsystem sftp internal-sftp\n",
                sshd::whoami()
            ),
        )
        .unwrap();
        SutSsh {
            host_key: sshd::read_pub(&host),
            dir,
            config,
            client_key,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.pid"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The chassis-control hook: power 1 starts sshd in the namespace,
    /// power 0 kills every process in it (the machine goes down).
    fn power_hook(&self, ns: &Netns) -> String {
        format!(
            "#!/bin/sh\n\
             case \"$1\" in\n\
             1) rm -f {d}/sshd.pid; ip netns exec {ns} {sshd} -f {cfg} -E {d}/sshd.log </dev/null >/dev/null 2>&1 ;;\n\
             0) for p in $(ip netns pids {ns}); do kill -9 \"$p\"; done ;;\n\
             esac\n\
             exit 0\n",
            d = self.dir.path().display(),
            ns = ns.name,
            sshd = sshd::SSHD,
            cfg = self.config.display(),
        )
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn bmc_power_controls_the_namespace_sut_and_certify_runs_over_ssh() {
    let ns = Netns::create();
    let sut = SutSsh::new(ns.sut_addr);
    let sim = ipmi_sim::Sim::start_with_hook(Some(&sut.power_hook(&ns)));
    let bmc = sim.bmc();
    let rt = rt();

    let mut cfg = SshConfig::new(
        &ns.sut_addr.to_string(),
        22,
        &sshd::whoami(),
        &sut.client_key,
        HostKeyCheck::Pinned(sut.host_key.clone()),
    );
    cfg.connect_timeout = Duration::from_secs(3);
    let ssh = Ssh::new("sut1", cfg);

    // Powered off: nothing answers on the namespace's address, and saying
    // so is fast.
    assert_eq!(rt.block_on(bmc.power_status()).unwrap(), PowerState::Off);
    let e = ssh.connect().expect_err("SSH answers while powered off");
    assert_answered_not_timed_out(&e);

    // Power on through the BMC: SSH comes up, and commands run inside the
    // namespace (its address is the only non-loopback one there).
    let t = Instant::now();
    rt.block_on(bmc.power(PowerAction::On)).unwrap();
    rt.block_on(bmc.wait_for(PowerState::On, Instant::now() + Duration::from_secs(10)))
        .unwrap();
    ssh.wait_ready(Duration::from_secs(15)).unwrap_or_else(|e| {
        panic!(
            "SSH not ready after power on: {e}\nsshd log:\n{}",
            sut.log()
        )
    });
    eprintln!(
        "MEASURE netns SUT: power on -> SSH ready: {:?}",
        t.elapsed()
    );
    let o = ssh
        .exec("ip -4 -o addr show", Duration::from_secs(10))
        .unwrap();
    let addrs = o.stdout_str();
    assert!(addrs.contains(&ns.sut_addr.to_string()), "{addrs}");
    assert!(
        !addrs.contains("192.0.2."),
        "not inside the namespace: {addrs}"
    );
    let first_pid = sut.pid();
    assert!(!first_pid.is_empty());

    // Power off (graceful, ACPI soft off): the machine goes down, the open
    // session dies and new connections fail fast.
    let t = Instant::now();
    rt.block_on(bmc.power(PowerAction::Off)).unwrap();
    rt.block_on(bmc.wait_for(PowerState::Off, Instant::now() + Duration::from_secs(10)))
        .unwrap();
    assert!(ns.pids().is_empty(), "processes left in the namespace");
    let e = ssh
        .exec("true", Duration::from_secs(5))
        .expect_err("a command ran on a powered-off machine");
    let e2 = ssh
        .connect()
        .expect_err("SSH connects to a powered-off machine");
    assert_answered_not_timed_out(&e2);
    eprintln!(
        "MEASURE netns SUT: power off -> SSH refused: {:?} ({e}; {e2})",
        t.elapsed()
    );

    // Power on again: back, same host key, a new sshd.
    rt.block_on(bmc.power(PowerAction::On)).unwrap();
    ssh.wait_ready(Duration::from_secs(15))
        .unwrap_or_else(|e| panic!("SSH not back after power on: {e}\nsshd log:\n{}", sut.log()));
    assert_eq!(
        ssh.exec("echo back", Duration::from_secs(10))
            .unwrap()
            .stdout_str()
            .trim(),
        "back"
    );
    let second_pid = sut.pid();
    assert_ne!(first_pid, second_pid, "sshd was not restarted");

    // A power cycle restarts the machine: a new sshd again, and SSH back.
    let t = Instant::now();
    rt.block_on(bmc.power(PowerAction::Cycle)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sut.pid() == second_pid || sut.pid().is_empty() {
        assert!(Instant::now() < deadline, "the cycle did not restart sshd");
        std::thread::sleep(Duration::from_millis(50));
    }
    ssh.wait_ready(Duration::from_secs(15)).unwrap();
    ssh.exec("true", Duration::from_secs(10)).unwrap();
    eprintln!(
        "MEASURE netns SUT: power cycle -> SSH ready again: {:?}",
        t.elapsed()
    );
    ssh.disconnect();

    // The same machine through the CLI, from a lab.toml.
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.toml");
    std::fs::write(
        &lab,
        format!(
            "[[machine]]\nname = \"sut1\"\narch = \"{arch}\"\n\n[machine.bmc]\nprotocol = \"ipmi\"\n\
             address = \"127.0.0.1\"\nport = {port}\nusername = \"{user}\"\npassword_env = \"{PW_VAR}\"\n\n\
             [machine.ssh]\naddress = \"{addr}\"\nport = 22\nuser = \"{me}\"\nkey_file = \"{key}\"\n\
             host_key = \"{hk}\"\n",
            arch = std::env::consts::ARCH,
            port = sim.port,
            user = ipmi_sim::USER,
            addr = ns.sut_addr,
            me = sshd::whoami(),
            key = sut.client_key.display(),
            hk = sut.host_key,
        ),
    )
    .unwrap();
    let certlab = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args(args)
            .env("CERTLAB_LAB", &lab)
            .env(PW_VAR, ipmi_sim::PASSWORD)
            .env("CERTLAB_DATA_DIR", dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = certlab(&[
        "lab", "exec", "sut1", "--", "ip", "-4", "-o", "addr", "show",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&ns.sut_addr.to_string()));
    // Healthy once the emulator's initial critical events are cleared:
    // BMC answers, power on, SSH reachable.
    let o = certlab(&["lab", "sel", "sut1", "--clear"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = certlab(&["lab", "health", "sut1", "--format", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{v}\n{}", text(&o.stderr));
    assert_eq!(
        (&v[0]["power"], &v[0]["ssh"]),
        (&Value::from("on"), &Value::from(true)),
        "{v}"
    );

    // certify --machine: the suites run over SSH inside the namespace.
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let t = Instant::now();
    let o = certlab(&[
        "certify",
        "--machine",
        "sut1",
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--db",
        &db,
        "--format",
        "json",
    ]);
    let stderr = text(&o.stderr);
    let code = o.status.code().unwrap();
    assert!(code == 0 || code == 1, "certify exited {code}: {stderr}");
    eprintln!("MEASURE netns SUT: certify --machine: {:?}", t.elapsed());
    let record: Value = serde_json::from_slice(&o.stdout).unwrap();
    let cases = record["cases"].as_array().unwrap();
    assert!(cases.len() >= 12, "{record}");
    assert!(
        cases.iter().all(|c| c["verdict"] != "error"),
        "an infrastructure error over SSH: {}",
        serde_json::to_string_pretty(cases).unwrap()
    );
    let mem = cases.iter().find(|c| c["id"] == "mem.pattern").unwrap();
    assert_eq!(mem["verdict"], "pass", "the agent ran on the SUT: {mem}");

    // Powered off through the CLI: exec could not run the command, exit 255
    // as ssh, quickly.
    let o = certlab(&[
        "lab", "power", "sut1", "off", "--force", "--wait", "10", "--format", "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["power"], "off", "{v}");
    let o = certlab(&["lab", "exec", "sut1", "--", "true"]);
    assert_eq!(o.status.code(), Some(255), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("sut1"), "{}", text(&o.stderr));
    assert!(
        !text(&o.stderr).contains("timed out"),
        "the powered-off machine's address should refuse, not time out: {}",
        text(&o.stderr)
    );
    assert!(ns.pids().is_empty());
}

/// A powered-off SUT's address answers a connection with a refusal (its
/// namespace is there, nothing listens), so certlab says so at once: the
/// error is a connection error, not a timeout. (Speed itself is measured,
/// not asserted: MEASURE lines above.)
fn assert_answered_not_timed_out(e: &TargetError) {
    match e {
        TargetError::Connect { reason, .. } => assert!(
            !reason.contains("timed out"),
            "connection timed out instead of being refused: {e}"
        ),
        other => panic!("not a connection error: {other}"),
    }
}
