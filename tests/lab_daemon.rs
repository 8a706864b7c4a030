//! `certlab lab daemon` end to end: a lab.toml of two machines reached
//! over a real OpenSSH server on loopback, jobs queued with `certlab job
//! submit`, a daemon SIGKILLed while it runs them and a second daemon that
//! takes its jobs over once their leases expire. Every job must finish
//! exactly once, each run with exactly one result per plan case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../lab/tests/common/sshd.rs"]
mod sshd;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const PLAN: &str = r#"
[plan]
id = "daemon-e2e"
version = "1"
title = "cheap cases"
description = "for the daemon test"

[[case]]
id = "cpu.online"
check = "cpu-online"
title = "All present CPUs are online"
blocker = true
timeout_s = 30

[[case]]
id = "kernel.taint"
check = "kernel-taint"
title = "Kernel not tainted"
blocker = true
timeout_s = 30

[[case]]
id = "cpu.identity"
check = "cpu-identity"
title = "CPU identity"
blocker = true
timeout_s = 60
"#;

fn certlab(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .env("CERTLAB_DATA_DIR", data)
        .env_remove("CERTLAB_DB")
        .output()
        .expect("run certlab")
}

fn daemon(args: &[&str], data: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .env("CERTLAB_DATA_DIR", data)
        .env_remove("CERTLAB_DB")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon")
}

fn jobs(db: &str, data: &Path) -> Vec<Value> {
    let o = certlab(&["job", "list", "--db", db, "--format", "json"], data);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice::<Value>(&o.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Stops a child for good, whatever happened.
struct Reap(Option<Child>);
impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_daemon_killed_mid_run_loses_nothing_and_runs_nothing_twice() {
    let server = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lab = dir.path().join("lab.toml");
    let mut toml = String::new();
    for name in ["sut1", "sut2"] {
        toml.push_str(&format!(
            "[[machine]]\nname = \"{name}\"\narch = \"{}\"\npool = \"loop\"\n\n[machine.ssh]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{}\"\n\n",
            std::env::consts::ARCH,
            server.port,
            sshd::whoami(),
            server.client_key.display()
        ));
    }
    std::fs::write(&lab, toml).unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let out = dir.path().join("runs");
    let (lab, plan, out) = (
        lab.to_str().unwrap(),
        plan.to_str().unwrap(),
        out.to_str().unwrap(),
    );

    let o = certlab(
        &[
            "job",
            "submit",
            "--plan",
            plan,
            "--require",
            "pool=loop",
            "--count",
            "6",
            "--db",
            &db,
            "--format",
            "json",
        ],
        &data,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let args = |ttl: &'static str| {
        vec![
            "lab",
            "daemon",
            "--lab",
            lab,
            "--db",
            db.as_str(),
            "--lease-ttl",
            ttl,
            "--max-runs",
            "2",
            "--out",
            out,
        ]
    };

    // The first daemon: killed (SIGKILL) as soon as a job runs.
    let mut first = Reap(Some(daemon(&args("3"), &data)));
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let states: Vec<String> = jobs(&db, &data)
            .iter()
            .map(|j| j["state"].as_str().unwrap().to_string())
            .collect();
        if states.iter().any(|s| s == "running") {
            break;
        }
        assert!(Instant::now() < deadline, "no job started: {states:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut child = first.0.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    // The second daemon takes over once the first one's leases expire.
    let mut second = Reap(Some(daemon(&args("6"), &data)));
    let wait = certlab(
        &[
            "job",
            "wait",
            "--all",
            "--timeout",
            "240",
            "--db",
            &db,
            "--format",
            "json",
        ],
        &data,
    );
    let mut child = second.0.take().unwrap();
    // SIGTERM: it stops taking jobs and exits cleanly.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(
        wait.status.code() == Some(0) || wait.status.code() == Some(1),
        "job wait: {:?}\n{}\n{}\ndaemon: {stderr}",
        wait.status.code(),
        String::from_utf8_lossy(&wait.stdout),
        String::from_utf8_lossy(&wait.stderr)
    );
    assert_eq!(status.code(), Some(0), "daemon: {stderr}");

    let all = jobs(&db, &data);
    assert_eq!(all.len(), 6);
    let mut runs = BTreeSet::new();
    for j in &all {
        assert_eq!(j["state"], "finished", "{j}");
        let run = j["run_id"].as_str().unwrap();
        assert!(runs.insert(run.to_string()), "run {run} used twice");
        let o = certlab(
            &["runs", "show", run, "--db", &db, "--format", "json"],
            &data,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let ids: Vec<&str> = v["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            ["cpu.online", "kernel.taint", "cpu.identity"],
            "run {run}: one result per plan case"
        );
        assert_eq!(v["run"]["state"], "finished", "{}", v["run"]);
    }
    // Both machines were used, are healthy and idle again; their host keys
    // were trusted on first use and recorded.
    let o = certlab(&["machine", "list", "--db", &db, "--format", "json"], &data);
    let machines: Value = serde_json::from_slice(&o.stdout).unwrap();
    for m in machines.as_array().unwrap() {
        assert_eq!(m["state"], "idle", "{m}");
        assert_eq!(m["health"], "good", "{m}");
    }
}
