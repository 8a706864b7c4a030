//! End-to-end tests of `certlab ras scan`: the real binary on real kernel
//! logs (suites/tests/fixtures/kernlog, provenance in its PROVENANCE.tsv).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "suites/tests/fixtures/kernlog",
        name,
    ]
    .iter()
    .collect();
    p.to_str().expect("utf-8 path").to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .output()
        .expect("run certlab")
}

#[test]
fn json_lists_one_event_per_report() {
    let f = fixture("constructed-aer.dmesg");
    let out = run(&["ras", "scan", "--dmesg", &f, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let ev = v["events"].as_array().expect("events array");
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0]["kind"], "aer_corrected");
    assert_eq!(ev[0]["line"], 2);
    assert_eq!(ev[0]["detail"], "0000:02:00.0 Corrected");
    assert!(ev[0]["text"]
        .as_str()
        .unwrap()
        .contains("AER: Corrected error received"));
    assert_eq!(ev[2]["kind"], "aer_fatal");
}

#[test]
fn json_xid_code_from_a_real_log() {
    let f = fixture("gpud-dmesg-with-xid-119.log");
    let out = run(&["ras", "scan", "--dmesg", &f, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    let ev = v["events"].as_array().expect("events array");
    assert_eq!(ev.len(), 5);
    assert!(ev
        .iter()
        .all(|e| e["kind"] == "xid" && e["detail"] == "119"));
}

#[test]
fn human_table_from_a_journal() {
    let f = fixture("constructed-journal.txt");
    let out = run(&["ras", "scan", "--journal", &f]);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.starts_with("2 events in "), "{s}");
    assert!(s.contains("aer_corrected"), "{s}");
    let xid = s.lines().find(|l| l.contains(" xid ")).expect("an xid row");
    assert!(
        xid.trim_start().starts_with('7') && xid.contains("48"),
        "{xid}"
    );
}

#[test]
fn a_clean_log_scans_to_zero_events_and_exit_0() {
    let f = fixture("constructed-benign.dmesg");
    let out = run(&["ras", "scan", "--dmesg", &f, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["events"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_missing_file_is_bad_input_naming_it() {
    let out = run(&["ras", "scan", "--dmesg", "/nonexistent/kern.log"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/kern.log"), "{err}");
}

/// No file: this machine's log. Either it is readable (exit 0, the source
/// named on stderr) or not (exit 2, saying why) — never anything else.
#[test]
fn this_machines_log_names_its_source() {
    let out = run(&["ras", "scan", "--format", "json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => {
            assert!(err.contains("dmesg") || err.contains("/dev/kmsg"), "{err}");
            let v: Value = serde_json::from_slice(&out.stdout).expect("json");
            assert!(v["events"].is_array());
        }
        Some(2) => assert!(
            err.contains("cannot read this machine's kernel log"),
            "{err}"
        ),
        c => panic!("exit {c:?}: {err}"),
    }
}

fn rasdb_fixture(name: &str) -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "suites/tests/fixtures/rasdaemon",
        name,
    ]
    .iter()
    .collect();
    p.to_str().expect("utf-8 path").to_string()
}

#[test]
fn ras_db_prints_the_events_per_table_as_json() {
    let f = rasdb_fixture("rasdaemon-0.8.5-aer-injected.db");
    let out = run(&["ras", "db", "--db", &f, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["db"], f.as_str());
    assert!(v["since"].is_null());
    let tables = v["tables"].as_array().expect("tables");
    assert_eq!(tables.len(), 23);
    let aer = tables
        .iter()
        .find(|t| t["name"] == "aer_event")
        .expect("aer_event");
    assert_eq!(aer["rows"], 20);
    assert_eq!(aer["errors"]["uncorrected"], 10);
    assert_eq!(aer["errors"]["corrected"], 10);
    let list = aer["list"].as_array().expect("list");
    assert_eq!(list.len(), 20);
    assert_eq!(list[10]["class"], "uncorrected");
    assert_eq!(list[10]["columns"]["err_type"], "Uncorrected (Fatal)");
    assert_eq!(v["missing_tables"], serde_json::json!([]));

    // The database the real rasdaemon 0.6.8 made: 4 tables, the rest missing.
    let f = rasdb_fixture("rasdaemon-0.6.8-debian-empty.db");
    let out = run(&["ras", "db", "--db", &f]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": 4 tables, 0 events"), "{text}");
    assert!(
        text.contains("not in this file: arm_event, non_standard_event"),
        "{text}"
    );
}

#[test]
fn ras_db_on_a_file_that_is_not_a_database_is_bad_input() {
    let f = fixture("constructed-aer.dmesg");
    let out = run(&["ras", "db", "--db", &f]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an SQLite database"));
}
