//! An interrupted certification keeps the cases it finished, is marked
//! interrupted in the store, and leaves no helper process behind.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SLOW_PLAN: &str = r#"
[plan]
id = "interrupt-test"
version = "1"
title = "one fast case, then a long memory test"

[[case]]
id = "cpu.online"
check = "cpu-online"
title = "All present CPUs are online"
timeout_s = 30

[[case]]
id = "mem.pattern"
check = "mem-pattern"
title = "A memory test long enough to be interrupted"
timeout_s = 600
[case.params]
mib = 8192
max_available_pct = 40
"#;

fn runs_json(db: &str, data: &std::path::Path, args: &[&str]) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .args(["--db", db, "--format", "json"])
        .env("CERTLAB_DATA_DIR", data)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn sigint_keeps_finished_cases_and_marks_the_run_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("slow.toml");
    std::fs::write(&plan, SLOW_PLAN).unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    // Marks this run's processes (the agent inherits the environment), so
    // agents of tests running beside this one are not counted.
    let tag = format!("interrupt-{}-{}", std::process::id(), dir.path().display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(["certify", "--local", "--plan", plan.to_str().unwrap()])
        .args([
            "--out",
            dir.path().join("out").to_str().unwrap(),
            "--db",
            &db,
        ])
        .env("CERTLAB_DATA_DIR", dir.path())
        .env("CERTLAB_TEST_TAG", &tag)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // Wait until the first case is in the store.
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        assert!(
            Instant::now() < deadline,
            "the first case was never recorded"
        );
        if dir.path().join("lab.db").exists() {
            let rows = runs_json(&db, dir.path(), &["runs", "list"]);
            if let Some(r) = rows.as_array().unwrap().first() {
                let finished = ["pass", "fail", "warning", "skip", "error"]
                    .iter()
                    .map(|k| r[*k].as_u64().unwrap())
                    .sum::<u64>();
                if finished >= 1 {
                    break r["id"].as_str().unwrap().to_string();
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Give the memory test a moment to start, then interrupt.
    std::thread::sleep(Duration::from_millis(300));
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");

    let detail = runs_json(&db, dir.path(), &["runs", "show", &run_id]);
    assert_eq!(detail["run"]["state"], "interrupted");
    let cases = detail["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "{detail}");
    assert_eq!(cases[0]["id"], "cpu.online");
    // The finished case's evidence is on disk.
    for ev in cases[0]["evidence"].as_array().unwrap() {
        if let Some(sha) = ev["content"]["sha256"].as_str() {
            assert!(dir.path().join("out/evidence").join(sha).is_file());
        }
    }
    // The agent running the memory test was stopped with the run.
    let left = Command::new("pgrep")
        .args(["-f", "agent memtest --mib"])
        .output()
        .unwrap();
    let mine: Vec<_> = String::from_utf8_lossy(&left.stdout)
        .lines()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/cmdline"))
                .map(|c| c.contains(env!("CARGO_BIN_EXE_certlab")))
                .unwrap_or(false)
        })
        .map(str::to_string)
        .collect();
    assert!(mine.is_empty(), "memtest agents left running: {mine:?}");
}
