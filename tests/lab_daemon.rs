//! `certlab lab daemon` end to end: a lab.toml of two machines reached
//! over a real OpenSSH server on loopback, jobs queued with `certlab job
//! submit`, a daemon SIGKILLed while it runs them and a second daemon that
//! takes its jobs over once their leases expire. Every job must finish
//! exactly once, each run with exactly one result per plan case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../lab/tests/common/sshd.rs"]
mod sshd;

mod common;

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

/// Starts a daemon whose stderr goes to `log` (read when a test fails).
fn daemon_logged(args: &[&str], data: &Path, log: &Path) -> Child {
    let err = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open the daemon's log");
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .env("CERTLAB_DATA_DIR", data)
        .env_remove("CERTLAB_DB")
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .expect("start the daemon")
}

fn daemon(args: &[&str], data: &Path) -> Child {
    daemon_logged(args, data, &data.with_extension("daemon.log"))
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
    let stderr = std::fs::read_to_string(data.with_extension("daemon.log")).unwrap_or_default();
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

    // A job's log: its run's events in order, every case among them.
    let id = all[0]["id"].as_str().unwrap();
    let o = certlab(&["job", "logs", id, "--db", &db, "--format", "json"], &data);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let events: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let finished: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "case_finished")
        .map(|e| e["event"]["result"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(finished.len(), 3, "{events:?}");
    assert!(events.iter().any(|e| e["kind"] == "run_finished"));
    let o = certlab(&["job", "logs", id, "--follow", "--db", &db], &data);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && text.contains("case_finished") && text.contains("cpu.online"),
        "{text}"
    );

    // A health check on demand: sut1 answers; a machine whose SSH port is
    // closed is `bad`, exit 2, with the reason.
    let o = certlab(
        &[
            "machine", "health", "sut1", "--lab", lab, "--db", &db, "--format", "json",
        ],
        &data,
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["health"], "good", "{m}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let text = std::fs::read_to_string(lab).unwrap().replace(
        &format!("port = {}", server.port),
        &format!("port = {port}"),
    );
    std::fs::write(lab, text).unwrap();
    let o = certlab(
        &[
            "machine", "health", "sut2", "--lab", lab, "--db", &db, "--format", "json",
        ],
        &data,
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let m: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(m["health"], "bad", "{m}");
    assert!(!m["health_reason"].as_str().unwrap_or("").is_empty(), "{m}");
}

fn lab_toml(dir: &Path, server: &sshd::Sshd, machines: usize) -> std::path::PathBuf {
    let mut toml = String::new();
    for i in 1..=machines {
        toml.push_str(&format!(
            "[[machine]]\nname = \"m{i:02}\"\narch = \"{}\"\npool = \"loop\"\n\n[machine.ssh]\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\nkey_file = \"{}\"\n\n",
            std::env::consts::ARCH,
            server.port,
            sshd::whoami(),
            server.client_key.display()
        ));
    }
    let lab = dir.join("lab.toml");
    std::fs::write(&lab, toml).unwrap();
    lab
}

/// Scale-out on PostgreSQL: three daemons share one lab of 10 machines and
/// 60 jobs; one is SIGKILLed mid-way. Every job runs to its end exactly
/// once: 60 finished jobs, 60 runs in the store (none started twice), each
/// with exactly one result per plan case.
#[test]
fn three_daemons_on_postgres_run_every_job_exactly_once() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(common::pg::TempDb::create());
    let server = sshd::Sshd::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let lab = lab_toml(dir.path(), &server, 10);
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let out = dir.path().join("runs");
    let (lab, plan, out, url) = (
        lab.to_str().unwrap(),
        plan.to_str().unwrap(),
        out.to_str().unwrap(),
        db.url.as_str(),
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
            "60",
            "--db",
            url,
            "--format",
            "json",
        ],
        &data,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let args = [
        "lab",
        "daemon",
        "--lab",
        lab,
        "--db",
        url,
        "--lease-ttl",
        "4",
        "--max-runs",
        "3",
        "--out",
        out,
    ];
    let logs: Vec<_> = (0..3)
        .map(|i| dir.path().join(format!("daemon{i}.log")))
        .collect();
    let mut daemons: Vec<Reap> = logs
        .iter()
        .map(|log| Reap(Some(daemon_logged(&args, &data, log))))
        .collect();

    // SIGKILL the first daemon once a quarter of the jobs have finished.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = jobs(url, &data)
            .iter()
            .filter(|j| j["state"] == "finished")
            .count();
        if done >= 15 {
            break;
        }
        assert!(Instant::now() < deadline, "only {done} jobs finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut victim = daemons[0].0.take().unwrap();
    victim.kill().unwrap();
    victim.wait().unwrap();

    let wait = certlab(
        &[
            "job",
            "wait",
            "--all",
            "--timeout",
            "400",
            "--db",
            url,
            "--format",
            "json",
        ],
        &data,
    );
    for (d, log) in daemons.iter_mut().zip(&logs) {
        if let Some(c) = d.0.as_mut() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            assert_eq!(
                c.wait().unwrap().code(),
                Some(0),
                "a daemon did not stop cleanly:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        d.0 = None;
    }
    assert!(
        matches!(wait.status.code(), Some(0) | Some(1)),
        "job wait: {:?}\n{}",
        wait.status.code(),
        String::from_utf8_lossy(&wait.stderr)
    );

    let all = jobs(url, &data);
    assert_eq!(all.len(), 60);
    let mut runs = BTreeSet::new();
    for j in &all {
        assert_eq!(j["state"], "finished", "{j}");
        assert!(
            runs.insert(j["run_id"].as_str().unwrap().to_string()),
            "{j}"
        );
    }
    let o = certlab(
        &[
            "runs", "list", "--limit", "1000", "--db", url, "--format", "json",
        ],
        &data,
    );
    let listed: Value = serde_json::from_slice(&o.stdout).unwrap();
    let listed = listed.as_array().unwrap();
    if listed.len() != 60 {
        // What the daemons said (their warnings name lost leases and
        // infrastructure faults) and which runs are extra.
        let said: String = logs
            .iter()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .flat_map(|t| {
                t.lines()
                    .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
            .join("\n");
        let extra: Vec<_> = listed
            .iter()
            .filter(|r| !runs.contains(r["id"].as_str().unwrap_or_default()))
            .collect();
        panic!(
            "{} runs, not 60 (a run was started twice): extra {extra:?}\ndaemons:\n{said}",
            listed.len()
        );
    }
    for r in listed {
        assert_eq!(r["state"], "finished", "{r}");
        let n = ["pass", "fail", "skip", "error", "crash"]
            .iter()
            .map(|k| r[k].as_u64().unwrap_or(0))
            .sum::<u64>();
        assert_eq!(n, 3, "one result per case: {r}");
    }
    rt.block_on(db.drop_db());
}
