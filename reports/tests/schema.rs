//! results.json: the checked-in fixture of every released version, the model and the JSON Schema agree.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::collections::BTreeSet;

use certlab_reports::{
    results_schema, Evidence, Outcome, PerfVerdict, RunRecord, Summary, Verdict, RESULTS_SCHEMA,
    RESULTS_SCHEMA_ID, RESULTS_SCHEMA_V1, RESULTS_SCHEMA_V1_ID, RESULTS_SCHEMA_V2,
    RESULTS_SCHEMA_V2_ID, SCHEMA_VERSION,
};
use serde_json::{json, Value};

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(RESULTS_SCHEMA).unwrap();
    assert_eq!(schema["$id"], RESULTS_SCHEMA_ID);
    jsonschema::validator_for(&schema).unwrap()
}

fn errors(v: &Value) -> Vec<String> {
    validator()
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

fn fixture_value() -> Value {
    serde_json::from_str(common::FIXTURE_V3).unwrap()
}

fn validator_v1() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(RESULTS_SCHEMA_V1).unwrap();
    assert_eq!(schema["$id"], RESULTS_SCHEMA_V1_ID);
    jsonschema::validator_for(&schema).unwrap()
}

#[test]
fn version_1_fixture_is_still_read_and_validates_against_its_schema() {
    let v1: Value = serde_json::from_str(common::FIXTURE_V1).unwrap();
    let errors: Vec<String> = validator_v1()
        .iter_errors(&v1)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
    // Not against the current schema: it lacks `summary.warning`.
    assert!(!validator().is_valid(&v1));
    let record = common::fixture_v1();
    assert_eq!(record.schema_version, 1);
    assert_eq!(record.summary.warning, 0);
    assert_eq!(
        record.summary,
        Summary::of_version(&record.cases, record.schema_version)
    );
    // The schema of a record is found by its version.
    assert_eq!(results_schema(1), Some(RESULTS_SCHEMA_V1));
    assert_eq!(results_schema(2), Some(RESULTS_SCHEMA_V2));
    assert_eq!(results_schema(3), Some(RESULTS_SCHEMA));
    assert_eq!(results_schema(4), None);
}

#[test]
fn version_2_fixture_is_still_read_and_validates_against_its_schema() {
    let v2: Value = serde_json::from_str(common::FIXTURE_V2).unwrap();
    let schema: Value = serde_json::from_str(RESULTS_SCHEMA_V2).unwrap();
    assert_eq!(schema["$id"], RESULTS_SCHEMA_V2_ID);
    let errors: Vec<String> = jsonschema::validator_for(&schema)
        .unwrap()
        .iter_errors(&v2)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert_eq!(errors, Vec::<String>::new());
    // Not against the current schema: its version is 2.
    assert!(!validator().is_valid(&v2));
    // Read by this build, with no baseline on any case, and written back
    // as it was (a case without a baseline has no `baseline` key).
    let record: RunRecord = serde_json::from_value(v2.clone()).unwrap();
    assert_eq!(record.schema_version, 2);
    assert!(record.cases.iter().all(|c| c.baseline.is_none()));
    assert_eq!(serde_json::to_value(&record).unwrap(), v2);
}

#[test]
fn version_3_fixture_carries_a_baseline_comparison() {
    let record = common::fixture();
    let case = record
        .cases
        .iter()
        .find(|c| c.id == "perf.fio-randread")
        .unwrap();
    let b = case.baseline.as_ref().unwrap();
    assert_eq!(b.metrics[0].verdict, PerfVerdict::NoChange);
    assert_eq!(b.metrics[0].baseline.len(), 3);
    let samples = case.metrics.iter().filter(|m| m.name == b.metrics[0].name);
    assert_eq!(samples.count(), 3);
}

#[test]
fn a_failed_non_blocker_is_a_warning_and_does_not_fail_the_run() {
    let record = common::fixture();
    let warning = record.cases.iter().find(|c| c.id == "time.clock").unwrap();
    assert!(warning.is_warning() && warning.shown_verdict() == "warning");
    assert_eq!((record.summary.fail, record.summary.warning), (1, 1));
    // Only the warning and passes left: the run passes.
    let cases: Vec<_> = record
        .cases
        .iter()
        .filter(|c| c.verdict == Verdict::Pass || c.is_warning())
        .cloned()
        .collect();
    let s = Summary::of(&cases);
    assert_eq!((s.fail, s.warning, s.outcome), (0, 1, Outcome::Pass));
    // The same failure in a blocker fails it.
    let mut blocking = cases.clone();
    for c in &mut blocking {
        c.blocker = true;
    }
    let s = Summary::of(&blocking);
    assert_eq!((s.fail, s.warning, s.outcome), (1, 0, Outcome::Fail));
    // By version 1's rules every failure failed the run.
    let s = Summary::of_version(&cases, 1);
    assert_eq!((s.fail, s.warning, s.outcome), (1, 0, Outcome::Fail));
    // A crash fails the run whether or not the case is a blocker.
    let mut crash = cases.clone();
    crash[0].verdict = Verdict::Crash;
    crash[0].blocker = false;
    assert_eq!(Summary::of(&crash).outcome, Outcome::Fail);
}

#[test]
fn fixture_deserializes_and_reserializes_identically() {
    let record = common::fixture();
    assert_eq!(record.schema_version, SCHEMA_VERSION);
    let again = serde_json::to_value(&record).unwrap();
    assert_eq!(again, fixture_value());
    let back: RunRecord = serde_json::from_value(again).unwrap();
    assert_eq!(back, record);
}

#[test]
fn fixture_covers_every_verdict_and_evidence_kind() {
    let record = common::fixture();
    let verdicts: BTreeSet<Verdict> = record.cases.iter().map(|c| c.verdict).collect();
    assert_eq!(verdicts.len(), 5, "{verdicts:?}");
    let kinds: BTreeSet<&str> = record
        .cases
        .iter()
        .flat_map(|c| &c.evidence)
        .chain(&record.inventory)
        .map(|e| match e {
            Evidence::Command { .. } => "command",
            Evidence::File { .. } => "file",
            Evidence::Missing { .. } => "missing",
            Evidence::Bmc { .. } => "bmc",
        })
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert_eq!(record.summary, Summary::of(&record.cases));
}

#[test]
fn fixture_validates_against_schema() {
    assert_eq!(errors(&fixture_value()), Vec::<String>::new());
}

#[test]
fn serialized_records_validate_against_schema() {
    let mut record = common::fixture();
    record.host.machine_id = None;
    record.profile = Default::default();
    record.cases.truncate(1);
    record.summary = Summary::of(&record.cases);
    let v = serde_json::to_value(&record).unwrap();
    assert_eq!(errors(&v), Vec::<String>::new());
}

/// Each mutation must be rejected by the schema, and by serde as well.
#[test]
fn mutated_fixtures_fail_validation() {
    type Mutation = (&'static str, fn(&mut Value));
    let mutations: &[Mutation] = &[
        ("unknown verdict", |v| {
            v["cases"][0]["verdict"] = json!("flaky")
        }),
        ("missing case field", |v| {
            v["cases"][0].as_object_mut().unwrap().remove("reason");
        }),
        ("missing top-level field", |v| {
            v.as_object_mut().unwrap().remove("summary");
        }),
        ("unknown top-level field", |v| v["extra"] = json!(1)),
        ("unknown evidence kind", |v| {
            v["inventory"][0]["kind"] = json!("socket")
        }),
        ("unknown field in evidence", |v| {
            v["inventory"][0]["mode"] = json!("0644")
        }),
        ("missing stdout", |v| {
            v["inventory"][1].as_object_mut().unwrap().remove("stdout");
        }),
        ("time not rfc3339", |v| {
            v["started"] = json!("14/03/2025 09:26")
        }),
        ("uppercase verdict", |v| {
            v["cases"][0]["verdict"] = json!("PASS")
        }),
        ("unknown outcome", |v| {
            v["summary"]["outcome"] = json!("maybe")
        }),
        ("negative count", |v| v["summary"]["pass"] = json!(-1)),
        ("verdict warning (a warning is a failed non-blocker)", |v| {
            v["cases"][0]["verdict"] = json!("warning")
        }),
        ("wrong better", |v| {
            v["cases"][3]["metrics"][0]["better"] = json!("more")
        }),
        ("unknown pci field", |v| {
            v["profile"]["pci_devices"][0]["vendor"] = json!("x")
        }),
        ("unknown baseline scope", |v| {
            v["cases"][4]["baseline"]["scope"] = json!("rack")
        }),
        ("unknown comparison verdict", |v| {
            v["cases"][4]["baseline"]["metrics"][0]["verdict"] = json!("slower")
        }),
        ("baseline without samples field", |v| {
            v["cases"][4]["baseline"]["metrics"][0]
                .as_object_mut()
                .unwrap()
                .remove("baseline");
        }),
    ];
    for (what, mutate) in mutations {
        let mut v = fixture_value();
        mutate(&mut v);
        assert!(!validator().is_valid(&v), "schema accepted: {what}");
        assert!(
            serde_json::from_value::<RunRecord>(v).is_err(),
            "serde accepted: {what}"
        );
    }
    // Schema-only rules (serde accepts these values but certlab never writes them).
    let schema_only: &[Mutation] = &[
        ("schema version 1", |v| v["schema_version"] = json!(1)),
        ("schema version 2", |v| v["schema_version"] = json!(2)),
        ("schema version 4", |v| v["schema_version"] = json!(4)),
        ("uppercase digest", |v| {
            v["inventory"][0]["content"]["sha256"] =
                json!("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855")
        }),
    ];
    for (what, mutate) in schema_only {
        let mut v = fixture_value();
        mutate(&mut v);
        assert!(!validator().is_valid(&v), "schema accepted: {what}");
    }
}
