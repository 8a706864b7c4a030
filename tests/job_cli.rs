//! `certlab job …` and `certlab machine …` against a real lab store: what a
//! user sees of the queue before any daemon runs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn certlab(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .env("CERTLAB_DATA_DIR", data_dir)
        .env_remove("CERTLAB_DB")
        .output()
        .expect("run certlab")
}

fn json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "status {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("json")
}

#[test]
fn jobs_are_queued_listed_shown_cancelled_and_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let db = format!("sqlite://{}", data.join("lab.db").display());
    let d = |args: &[&str]| {
        let mut v = args.to_vec();
        v.extend(["--db", db.as_str(), "--format", "json"]);
        certlab(&v, data)
    };

    let out = json(&d(&[
        "job",
        "submit",
        "--plan",
        "server-basic",
        "--require",
        "arch=aarch64,family=kunpeng,tag=gpu",
        "--priority",
        "70",
        "--count",
        "2",
        "--submitter",
        "alice",
    ]));
    let jobs = out["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j["state"] == "queued"));
    let id = jobs[0]["id"].as_str().unwrap().to_string();

    let list = json(&d(&["job", "list"]));
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    for key in [
        "id",
        "state",
        "plan",
        "machine",
        "run_id",
        "priority",
        "attempt",
        "submitted",
        "started",
        "finished",
        "waiting_reason",
        "error",
    ] {
        assert!(
            list[0].get(key).is_some(),
            "job list lacks {key}: {}",
            list[0]
        );
    }
    assert_eq!(list[0]["plan"], "server-basic");
    assert_eq!(list[0]["priority"], 70);
    // RFC 3339 times.
    let submitted = list[0]["submitted"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(submitted, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{submitted}"
    );

    let show = json(&d(&["job", "show", &id]));
    assert_eq!(show["requirements"], "arch=aarch64,family=kunpeng,tag=gpu");
    assert_eq!(show["submitter"], "alice");

    let cancelled = json(&d(&["job", "cancel", &id, "--reason", "wrong kernel"]));
    assert_eq!(cancelled["state"], "cancelled");
    assert_eq!(cancelled["error"], "wrong kernel");
    // Cancelling again is refused, saying why.
    let again = d(&["job", "cancel", &id]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("final state"));

    assert_eq!(
        json(&d(&["job", "list", "--state", "queued"]))
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // The queued one never ends here: wait gives up (2); the cancelled one
    // could not run (2).
    let wait = d(&["job", "wait", "--all", "--timeout", "1"]);
    assert_eq!(
        wait.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&wait.stderr)
    );
    assert!(String::from_utf8_lossy(&wait.stderr).contains("timed out: 1 job(s)"));
    let wait = d(&["job", "wait", &id]);
    assert_eq!(wait.status.code(), Some(2));

    // Usage errors: a bad requirement key, no target at all.
    let bad = d(&[
        "job",
        "submit",
        "--plan",
        "server-basic",
        "--require",
        "cpu=arm",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown requirement key `cpu`"));
    let none = d(&["job", "submit", "--plan", "server-basic"]);
    assert_eq!(none.status.code(), Some(2));
    // An unknown plan name is a usage error; a broken plan file is bad input.
    let plan = d(&["job", "submit", "--plan", "no-such-plan", "--machine", "m1"]);
    assert_eq!(plan.status.code(), Some(2));
    let broken = data.join("broken.toml");
    std::fs::write(&broken, "[plan\n").unwrap();
    let plan = d(&[
        "job",
        "submit",
        "--plan",
        broken.to_str().unwrap(),
        "--machine",
        "m1",
    ]);
    assert_eq!(plan.status.code(), Some(3));

    // No daemon has run: the store has no machines yet.
    assert_eq!(json(&d(&["machine", "list"])), Value::Array(vec![]));
    let m = d(&["machine", "maintenance", "m1", "on"]);
    assert_eq!(m.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&m.stderr).contains("no machine m1"));
}
