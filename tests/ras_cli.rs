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
