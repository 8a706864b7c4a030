//! End-to-end tests of `certlab perf compare`: the real binary on sample
//! sets and on run records (the results.json fixtures of every released
//! schema version, `reports/tests/fixtures`, given repeated metrics).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .output()
        .expect("run certlab")
}

fn write(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn compare_json(b: &Path, c: &Path) -> (i32, Value) {
    let out = run(&["perf", "compare", s(b), s(c), "--format", "json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {} / {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap(), v)
}

fn metric<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {v}"))
}

fn series(unit: &str, direction: &str, samples: &[f64]) -> Value {
    json!({ "unit": unit, "direction": direction, "samples": samples })
}

#[test]
fn a_regression_exits_1_with_every_field() {
    let d = tempfile::tempdir().unwrap();
    let b = write(
        d.path(),
        "base.json",
        &json!({ "metrics": {
            "seqread.read.bw": series("B/s", "higher", &[100.0, 101.0, 99.0, 100.5, 99.5]),
            "seqread.read.clat_p99": series("ns", "lower", &[500.0, 505.0, 495.0, 502.0, 498.0]),
        }}),
    );
    let c = write(
        d.path(),
        "cand.json",
        &json!({ "metrics": {
            "seqread.read.bw": series("B/s", "higher", &[90.0, 91.0, 89.0, 90.5, 89.5]),
            "seqread.read.clat_p99": series("ns", "lower", &[450.0, 455.0, 445.0, 452.0, 448.0]),
        }}),
    );
    let (code, v) = compare_json(&b, &c);
    assert_eq!(code, 1, "{v}");
    let bw = metric(&v, "seqread.read.bw");
    assert_eq!(bw["verdict"], "regression");
    assert!((bw["change_pct"].as_f64().unwrap() + 10.0).abs() < 1e-9);
    assert!(bw["p_value"].as_f64().unwrap() < 1e-4);
    let (lo, hi) = (
        bw["ci_low_pct"].as_f64().unwrap(),
        bw["ci_high_pct"].as_f64().unwrap(),
    );
    assert!(lo < -10.0 && -10.0 < hi && hi < 0.0, "{lo} {hi}");
    assert_eq!(bw["unit"], "B/s");
    assert_eq!(bw["direction"], "higher");
    // A latency 10 % lower is an improvement.
    assert_eq!(
        metric(&v, "seqread.read.clat_p99")["verdict"],
        "improvement"
    );
}

#[test]
fn no_regression_exits_0_and_says_what_it_cannot_tell() {
    let d = tempfile::tempdir().unwrap();
    let b = write(
        d.path(),
        "base.json",
        &json!({ "machine": "ignored", "metrics": {
            "steady": series("IO/s", "higher", &[1000.0, 1002.0, 998.0, 1001.0, 999.0]),
            "noisy": series("IO/s", "higher", &[800.0, 1200.0, 950.0, 1100.0, 900.0]),
            "gone": series("IO/s", "higher", &[1.0, 2.0, 3.0]),
            "single": series("bit/s", "higher", &[9.4e8]),
        }}),
    );
    let c = write(
        d.path(),
        "cand.json",
        &json!({ "metrics": {
            "steady": series("IO/s", "higher", &[1001.0, 999.0, 1000.0, 1002.0, 998.0]),
            "noisy": series("IO/s", "higher", &[850.0, 1180.0, 920.0, 1040.0, 990.0]),
            "single": series("bit/s", "higher", &[9.3e8]),
        }}),
    );
    let (code, v) = compare_json(&b, &c);
    assert_eq!(code, 0, "{v}");
    assert_eq!(metric(&v, "steady")["verdict"], "no_change");
    let noisy = metric(&v, "noisy");
    assert_eq!(noisy["verdict"], "inconclusive");
    assert!(noisy["reason"].as_str().unwrap().contains("reaches past"));
    let gone = metric(&v, "gone");
    assert_eq!(gone["verdict"], "inconclusive");
    assert_eq!(gone["reason"], "only the baseline has this metric");
    let single = metric(&v, "single");
    assert_eq!(single["verdict"], "inconclusive");
    assert!(single["p_value"].is_null());
    assert!((single["change_pct"].as_f64().unwrap() + 100.0 / 94.0).abs() < 1e-9);
}

#[test]
fn an_outlier_is_set_aside_and_shown() {
    let d = tempfile::tempdir().unwrap();
    let b = write(
        d.path(),
        "b.json",
        &json!({ "metrics": { "ops": series("bogo-ops/s", "higher", &[100.0, 101.0, 99.0, 100.5, 99.5]) }}),
    );
    let c = write(
        d.path(),
        "c.json",
        &json!({ "metrics": { "ops": series("bogo-ops/s", "higher", &[95.0, 94.0, 96.0, 114.0, 95.5]) }}),
    );
    let (code, v) = compare_json(&b, &c);
    assert_eq!(code, 1);
    let m = metric(&v, "ops");
    assert_eq!(m["verdict"], "regression");
    assert_eq!(m["candidate_outliers"], json!([114.0]));

    let out = run(&["perf", "compare", s(&b), s(&c)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("METRIC"), "{text}");
    assert!(text.contains("ops     regression"), "{text}");
    assert!(text.contains("1 set aside as outlier"), "{text}");
    assert!(
        text.contains("1 metrics: 1 regression, 0 improvement"),
        "{text}"
    );
}

/// A released results.json fixture, its first case given `samples` of
/// metric `name` (a case records one metric per sample).
fn record_with_samples(fixture: &str, name: &str, samples: &[f64]) -> (Value, String) {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "reports/tests/fixtures",
        fixture,
    ]
    .iter()
    .collect();
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    let case = &mut v["cases"][0];
    let id = case["id"].as_str().unwrap().to_string();
    case["metrics"] = samples
        .iter()
        .map(|x| json!({ "name": name, "value": x, "unit": "B/s", "better": "higher" }))
        .collect();
    (v, format!("{id}/{name}"))
}

#[test]
fn run_records_of_both_schema_versions_are_sample_sets() {
    let d = tempfile::tempdir().unwrap();
    let (v1, key) = record_with_samples(
        "results-v1.json",
        "read.bw",
        &[200.0, 202.0, 198.0, 201.0, 199.0],
    );
    let (v2, key2) = record_with_samples(
        "results-v2.json",
        "read.bw",
        &[180.0, 181.0, 179.0, 180.5, 179.5],
    );
    assert_eq!(key, key2, "the fixtures' first cases differ; pick another");
    let b = write(d.path(), "results-v1.json", &v1);
    let c = write(d.path(), "results-v2.json", &v2);
    let (code, v) = compare_json(&b, &c);
    assert_eq!(code, 1, "{v}");
    let m = metric(&v, &key);
    assert_eq!(m["verdict"], "regression");
    assert_eq!(m["baseline_n"], 5);
    // The fixtures' own metrics are there too: one sample a side tells nothing.
    let triad = metric(&v, "perf.stream/triad");
    assert_eq!(triad["verdict"], "inconclusive");
    assert_eq!(triad["baseline_n"], 1);
    assert_eq!(triad["unit"], "MB/s");
    // A record against itself.
    let (code, v) = compare_json(&c, &c);
    assert_eq!(code, 0);
    assert_eq!(metric(&v, &key)["verdict"], "no_change");
}

fn bad(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stdout {} stderr {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_input_exits_3_naming_the_file_and_the_fault() {
    let d = tempfile::tempdir().unwrap();
    let good = write(
        d.path(),
        "good.json",
        &json!({ "metrics": { "x": series("ms", "lower", &[1.0, 2.0, 3.0]) }}),
    );
    let missing = d.path().join("missing.json");
    let e = bad(&["perf", "compare", s(&missing), s(&good)]);
    assert!(
        e.contains("cannot read the baseline") && e.contains("missing.json"),
        "{e}"
    );

    let torn = d.path().join("torn.json");
    std::fs::write(&torn, "{\"metrics\": {").unwrap();
    let e = bad(&["perf", "compare", s(&good), s(&torn)]);
    assert!(
        e.contains("the candidate") && e.contains("torn.json") && e.contains("not valid JSON"),
        "{e}"
    );

    let empty = write(
        d.path(),
        "empty.json",
        &json!({ "metrics": { "x": series("ms", "lower", &[]) }}),
    );
    let e = bad(&["perf", "compare", s(&good), s(&empty)]);
    assert!(
        e.contains("empty.json") && e.contains("metric `x`: no samples"),
        "{e}"
    );

    let words = write(
        d.path(),
        "words.json",
        &json!({ "metrics": { "x": { "unit": "ms", "direction": "lower", "samples": [1, "two"] } }}),
    );
    let e = bad(&["perf", "compare", s(&good), s(&words)]);
    assert!(
        e.contains("words.json") && e.contains("not a valid sample set"),
        "{e}"
    );

    let sideways = write(
        d.path(),
        "sideways.json",
        &json!({ "metrics": { "x": { "unit": "ms", "direction": "sideways", "samples": [1] } }}),
    );
    let e = bad(&["perf", "compare", s(&sideways), s(&good)]);
    assert!(
        e.contains("sideways.json") && e.contains("unknown variant `sideways`"),
        "{e}"
    );

    let other_unit = write(
        d.path(),
        "us.json",
        &json!({ "metrics": { "x": series("us", "lower", &[1.0, 2.0, 3.0]) }}),
    );
    let e = bad(&["perf", "compare", s(&good), s(&other_unit)]);
    assert!(
        e.contains("metric `x`") && e.contains("unit `ms`") && e.contains("unit `us`"),
        "{e}"
    );

    let neither = write(d.path(), "neither.json", &json!({ "events": [] }));
    let e = bad(&["perf", "compare", s(&neither), s(&good)]);
    assert!(
        e.contains("neither.json") && e.contains("neither a sample set"),
        "{e}"
    );

    let (mut future, _) = record_with_samples("results-v2.json", "m", &[1.0]);
    future["schema_version"] = json!(99);
    let future = write(d.path(), "future.json", &future);
    let e = bad(&["perf", "compare", s(&future), s(&good)]);
    assert!(
        e.contains("future.json") && e.contains("schema version 99"),
        "{e}"
    );

    let nothing = write(d.path(), "nothing.json", &json!({ "metrics": {} }));
    let e = bad(&["perf", "compare", s(&nothing), s(&nothing)]);
    assert!(e.contains("no metrics to compare"), "{e}");
}

#[test]
fn threshold_must_be_a_positive_percentage() {
    let d = tempfile::tempdir().unwrap();
    let good = write(
        d.path(),
        "good.json",
        &json!({ "metrics": { "x": series("ms", "lower", &[1.0, 2.0, 3.0]) }}),
    );
    let out = run(&["perf", "compare", s(&good), s(&good), "--threshold", "-1"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

/// Two real `certify --local` runs of a plan with the `perf-stress-ng` case
/// on this machine; their results.json compared. The first run is made the
/// machine's baseline (`perf baseline set`, `list`, `show`), so the second
/// compares itself with it.
#[test]
fn two_certified_runs_compare_by_their_recorded_samples() {
    let has = Command::new("sh")
        .args(["-c", "command -v stress-ng"])
        .output()
        .unwrap()
        .status
        .success();
    assert!(
        has,
        "stress-ng is not installed on this machine: `scripts/bootstrap --test` installs it"
    );
    let d = tempfile::tempdir().unwrap();
    let plan = d.path().join("perf-smoke.toml");
    std::fs::write(
        &plan,
        r#"[plan]
id = "perf-smoke"
version = "1.0.0"
title = "Performance smoke"

[[case]]
id = "perf.stress-ng-cpu"
check = "perf-stress-ng"
title = "CPU bogo ops/s, repeated until steady"
blocker = false
timeout_s = 120
[case.params]
timeout_s = 1
min_runs = 3
max_runs = 5
max_cv_pct = 50.0
"#,
    )
    .unwrap();
    let db = format!("sqlite://{}", d.path().join("lab.db").display());
    let mut results = Vec::new();
    for i in 1..=2 {
        let out = d.path().join(format!("out{i}"));
        let o = Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args([
                "certify",
                "--local",
                "--plan",
                s(&plan),
                "--out",
                s(&out),
                "--db",
                &db,
            ])
            .env("CERTLAB_DATA_DIR", d.path().join("data"))
            .env_remove("CERTLAB_DB")
            .env_remove("CERTLAB_KEY")
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        results.push(out.join("results.json"));
        if i == 1 {
            let first: Value =
                serde_json::from_slice(&std::fs::read(&results[0]).unwrap()).unwrap();
            let run_id = first["run_id"].as_str().unwrap().to_string();
            let host = first["host"]["hostname"].as_str().unwrap().to_string();
            let cli = |args: &[&str]| {
                let o = Command::new(env!("CARGO_BIN_EXE_certlab"))
                    .args(args)
                    .args(["--db", &db, "--format", "json"])
                    .env("CERTLAB_DATA_DIR", d.path().join("data"))
                    .env_remove("CERTLAB_DB")
                    .output()
                    .unwrap();
                assert_eq!(
                    o.status.code(),
                    Some(0),
                    "{args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                serde_json::from_slice::<Value>(&o.stdout).unwrap()
            };
            let set = cli(&["perf", "baseline", "set", "--from-run", &run_id[..8]]);
            let rows = set["baselines"].as_array().unwrap();
            let bogo = rows
                .iter()
                .find(|r| r["metric"] == "cpu.bogo_ops_per_sec_real")
                .unwrap_or_else(|| panic!("{set}"));
            assert_eq!(bogo["scope"], "machine");
            assert_eq!(bogo["key"], format!("local:{host}"));
            assert_eq!(bogo["case_id"], "perf.stress-ng-cpu");
            assert_eq!(bogo["source_run"], run_id.as_str());
            assert_eq!(bogo["plan_version"], "1.0.0");
            let listed = cli(&["perf", "baseline", "list"]);
            assert_eq!(listed["baselines"].as_array().unwrap().len(), rows.len());
            let shown = cli(&["perf", "baseline", "show", bogo["id"].as_str().unwrap()]);
            assert_eq!(&shown, bogo);
        }
    }
    // The second run compared itself with the first's samples.
    let second: Value = serde_json::from_slice(&std::fs::read(&results[1]).unwrap()).unwrap();
    let first: Value = serde_json::from_slice(&std::fs::read(&results[0]).unwrap()).unwrap();
    let cmp = &second["cases"][0]["baseline"];
    assert_eq!(cmp["scope"], "machine", "{second}");
    assert_eq!(cmp["source_run"], first["run_id"]);
    let judged = &cmp["metrics"][0];
    assert_eq!(judged["name"], "cpu.bogo_ops_per_sec_real");
    let first_samples: Vec<Value> = first["cases"][0]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == "cpu.bogo_ops_per_sec_real")
        .map(|m| m["value"].clone())
        .collect();
    assert_eq!(judged["baseline"].as_array().unwrap(), &first_samples);
    let (code, v) = compare_json(&results[0], &results[1]);
    let m = metric(&v, "perf.stress-ng-cpu/cpu.bogo_ops_per_sec_real");
    let regressed = v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["verdict"] == "regression");
    assert_eq!(code, i32::from(regressed), "{v}");
    for side in ["baseline_n", "candidate_n"] {
        let n = m[side].as_u64().unwrap();
        assert!((3..=5).contains(&n), "{side} {n}: {v}");
    }
    assert_eq!(m["unit"], "bogo-ops/s");
    assert_eq!(m["direction"], "higher");
    assert!(m["p_value"].as_f64().is_some(), "{m}");
    assert!(
        ["regression", "improvement", "no_change", "inconclusive"]
            .contains(&m["verdict"].as_str().unwrap()),
        "{m}"
    );
}

fn perf_fixture(rel: &str) -> String {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "suites/tests/fixtures/perf",
        rel,
    ]
    .iter()
    .collect();
    s(&p).to_string()
}

#[test]
fn samples_from_real_tool_outputs_feed_compare() {
    let d = tempfile::tempdir().unwrap();
    let out = run(&[
        "perf",
        "samples",
        "--fio",
        &perf_fixture("fio/fio-3.33-seqread.json"),
        &perf_fixture("fio/fio-3.33-seqread-4k.json"),
        "--stress-ng",
        &perf_fixture("stress-ng/stress-ng-cpu-metrics.yaml"),
        &perf_fixture("stress-ng/stress-ng-cpu-brief-2s.stdout"),
        "--iperf3",
        &perf_fixture("iperf3/iperf3-3.12-tcp-loopback.json"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let set: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bw = &set["metrics"]["fio/seqread.read.bw"];
    assert_eq!(bw["unit"], "B/s");
    assert_eq!(bw["direction"], "higher");
    assert_eq!(bw["samples"], json!([1_677_002_501.0, 1_417_007_520.0]));
    // The YAML file and the console log of two runs give one metric.
    assert_eq!(
        set["metrics"]["stress-ng/cpu.bogo_ops_per_sec_real"]["samples"],
        json!([1671.895182, 1624.94])
    );
    assert_eq!(
        set["metrics"]["iperf3/sent.retransmits"]["direction"],
        "lower"
    );
    // What it wrote is a sample set perf compare reads.
    let p = write(d.path(), "set.json", &set);
    let (code, v) = compare_json(&p, &p);
    assert_eq!(code, 0, "{v}");
    assert_eq!(metric(&v, "fio/seqread.read.bw")["verdict"], "inconclusive");
}

#[test]
fn samples_refuses_a_failed_run_naming_the_file() {
    let e = bad(&[
        "perf",
        "samples",
        "--fio",
        &perf_fixture("fio/fio-3.33-seqread.json"),
        &perf_fixture("fio/fio-3.33-write-error.json"),
    ]);
    assert!(
        e.contains("fio-3.33-write-error.json") && e.contains("job `badwrite` ended with error 1"),
        "{e}"
    );
    let e = bad(&[
        "perf",
        "samples",
        "--iperf3",
        &perf_fixture("iperf3/iperf3-3.12-refused.json"),
    ]);
    assert!(e.contains("Connection refused"), "{e}");
    let out = run(&["perf", "samples"]);
    assert_eq!(out.status.code(), Some(2));
}
