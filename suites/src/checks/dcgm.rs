//! `dcgmi diag -j`: the NVIDIA DCGM diagnostic's JSON, every layout seen,
//! read into one list of test results (a pure function of the text).
//!
//! The layouts, from DCGM's `dcgmi/Diag.cpp` and `nvvs/include/NvvsJsonStrings.h`
//! across its releases and from real outputs (`tests/fixtures/dcgm`):
//!
//! - 2.x: `{"DCGM GPU Diagnostic": {"test_categories": [{"category",
//!   "tests": [{"name", "results": [{"gpu_ids": "0", "status": "Pass",
//!   "warnings": "text", "info": "text"}]}]}]}}`; deployment checks carry
//!   no GPU id.
//! - 3.x: the same root; a result names `"gpu_id"` (a string, a number in
//!   the deployment checks), `warnings` is a list of objects (`warning` — or
//!   `warnings` in the deployment checks — `error_id`, `error_category`,
//!   `error_severity`); version and `Driver Version Detected` beside.
//! - 4.x: root `"DCGM Diagnostic"`, a result names its entity
//!   (`entity_group` `GPU`/`CPU`…, `entity_id`), `info` is a list, each test
//!   has a `test_summary` (its overall status and every error, also those of
//!   no entity); `metadata` holds `version` and `Driver Version Detected`,
//!   `entity_groups` the entities tested.
//!
//! A run DCGM could not start is `{"<root>": {"runtime_error": "…"}}`.
//! Statuses are matched without case (`Pass`, `PASS`): `Pass`, `Fail`,
//! `Warn`, `Skip`, `Not Run`; any other word is kept as it is and never
//! counts as a pass.

use serde_json::{Map, Value};

/// A test's verdict on one entity, as DCGM words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
    NotRun,
    Other(String),
}

impl Status {
    fn parse(s: &str) -> Status {
        match s.trim().to_ascii_lowercase().as_str() {
            "pass" | "passed" => Status::Pass,
            "fail" | "failed" => Status::Fail,
            "warn" | "warning" => Status::Warn,
            "skip" | "skipped" => Status::Skip,
            "not run" | "notrun" => Status::NotRun,
            _ => Status::Other(s.trim().to_string()),
        }
    }
}

/// One message DCGM attached to a result, with its error code and
/// severity where the layout has them (3.x and later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub text: String,
    pub error_id: Option<u64>,
    pub category: Option<u64>,
    pub severity: Option<u64>,
}

impl Message {
    /// The text with DCGM's error code and severity (`dcgmErrorSeverity_t`).
    pub fn describe(&self) -> String {
        let mut tags = Vec::new();
        if let Some(id) = self.error_id {
            tags.push(format!("DCGM error {id}"));
        }
        if let Some(s) = self.severity {
            tags.push(format!("severity {}", severity_name(s)));
        }
        if tags.is_empty() {
            self.text.clone()
        } else {
            format!("{} [{}]", self.text, tags.join(", "))
        }
    }
}

/// `dcgmErrorSeverity_t` (dcgmlib/dcgm_errors.h): what DCGM says to do.
pub fn severity_name(s: u64) -> String {
    match s {
        0 => "NONE".into(),
        1 => "MONITOR (can run workloads, to be watched)".into(),
        2 => "ISOLATE (cannot run workloads)".into(),
        3 => "UNKNOWN".into(),
        4 => "TRIAGE".into(),
        5 => "CONFIG (a setting to change)".into(),
        6 => "RESET (drain and reset the GPU)".into(),
        n => format!("{n}"),
    }
}

/// One test's result on one entity (or on the whole system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// `Deployment`, `Integration`, `Hardware`, `Stress`, `Custom`, ….
    pub category: String,
    /// As DCGM names it: `Denylist`, `GPU Memory` (2.x/3.x), `memory` (4.x).
    pub test: String,
    /// `GPU 0`, `GPUs 0,1,2,3`, `CPU 1`; `None`: the whole system (a
    /// deployment check of 2.x/3.x, a 4.x test summary).
    pub entity: Option<String>,
    pub status: Status,
    pub warnings: Vec<Message>,
    pub info: Vec<String>,
}

impl TestResult {
    /// `GPU 0: software (Deployment)`.
    pub fn label(&self) -> String {
        format!(
            "{}: {} ({})",
            self.entity.as_deref().unwrap_or("system"),
            self.test,
            self.category
        )
    }
}

/// A parsed `dcgmi diag -j` document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diag {
    /// DCGM's version (`metadata.version` from 4.x).
    pub version: Option<String>,
    pub driver_version: Option<String>,
    /// DCGM could not run the diagnostic, and said why.
    pub runtime_error: Option<String>,
    pub results: Vec<TestResult>,
}

const ROOTS: [&str; 2] = ["DCGM Diagnostic", "DCGM GPU Diagnostic"];

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn str_at(o: &Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(text_of)
}

fn entity(r: &Map<String, Value>) -> Option<String> {
    if let Some(id) = r.get("entity_id").and_then(text_of) {
        let group = str_at(r, "entity_group").unwrap_or_else(|| "entity".into());
        return Some(format!("{group} {id}"));
    }
    if let Some(id) = r.get("gpu_id").and_then(text_of) {
        return Some(format!("GPU {id}"));
    }
    r.get("gpu_ids").and_then(text_of).map(|ids| {
        if ids.contains(',') {
            format!("GPUs {ids}")
        } else {
            format!("GPU {ids}")
        }
    })
}

fn messages(v: Option<&Value>) -> Vec<Message> {
    let num = |o: &Map<String, Value>, k: &str| o.get(k).and_then(Value::as_u64);
    let one = |v: &Value| -> Option<Message> {
        match v {
            Value::Object(o) => {
                let text = str_at(o, "warning").or_else(|| str_at(o, "warnings"))?;
                Some(Message {
                    text,
                    error_id: num(o, "error_id"),
                    category: num(o, "error_category"),
                    severity: num(o, "error_severity"),
                })
            }
            other => text_of(other).map(|text| Message {
                text,
                error_id: None,
                category: None,
                severity: None,
            }),
        }
    };
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(v) => one(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn infos(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(text_of).collect(),
        Some(v) => text_of(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn result(category: &str, test: &str, r: &Map<String, Value>) -> TestResult {
    TestResult {
        category: category.to_string(),
        test: test.to_string(),
        entity: entity(r),
        status: Status::parse(&str_at(r, "status").unwrap_or_default()),
        warnings: messages(r.get("warnings")),
        info: infos(r.get("info")),
    }
}

/// Parses what `dcgmi diag -j` printed. Text before the document (a banner)
/// is passed over; text that holds no DCGM diagnostic document is an error
/// naming what is missing.
pub fn parse(text: &str) -> Result<Diag, String> {
    let start = text
        .find('{')
        .ok_or("no JSON object in the output of dcgmi diag -j")?;
    let root: Value = serde_json::Deserializer::from_str(&text[start..])
        .into_iter::<Value>()
        .next()
        .ok_or("no JSON object in the output of dcgmi diag -j")?
        .map_err(|e| format!("dcgmi diag -j: not JSON: {e}"))?;
    let root = root
        .as_object()
        .ok_or("dcgmi diag -j: the document is not a JSON object")?;
    let (name, diag) = ROOTS
        .iter()
        .find_map(|k| root.get(*k).map(|v| (*k, v)))
        .ok_or_else(|| format!("dcgmi diag -j: neither {ROOTS:?} in the document"))?;
    let diag = diag
        .as_object()
        .ok_or_else(|| format!("dcgmi diag -j: \"{name}\" is not an object"))?;
    let meta = root.get("metadata").and_then(Value::as_object);
    let from_anywhere = |k: &str| {
        meta.and_then(|m| str_at(m, k))
            .or_else(|| str_at(diag, k))
            .or_else(|| str_at(root, k))
    };
    let mut out = Diag {
        version: from_anywhere("version"),
        driver_version: from_anywhere("Driver Version Detected"),
        runtime_error: str_at(diag, "runtime_error"),
        results: Vec::new(),
    };
    let categories = match diag.get("test_categories") {
        Some(Value::Array(c)) => c,
        Some(_) => {
            return Err(format!(
                "dcgmi diag -j: \"{name}\".test_categories is not a list"
            ))
        }
        None if out.runtime_error.is_some() => return Ok(out),
        None => {
            return Err(format!(
                "dcgmi diag -j: \"{name}\" has neither test_categories nor runtime_error"
            ))
        }
    };
    for (ci, c) in categories.iter().enumerate() {
        // NVVS leaves `null` where a test it did not run would have been.
        let Some(c) = c.as_object() else { continue };
        let category = str_at(c, "category").unwrap_or_else(|| format!("category #{ci}"));
        let Some(tests) = c.get("tests").and_then(Value::as_array) else {
            continue;
        };
        for (ti, t) in tests.iter().enumerate() {
            let Some(t) = t.as_object() else { continue };
            let test = str_at(t, "name").unwrap_or_else(|| format!("test #{ti}"));
            let first = out.results.len();
            for r in t
                .get("results")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_object)
            {
                out.results.push(result(&category, &test, r));
            }
            // 4.x: the summary carries the test's overall status and the
            // errors of no entity; keep it where no entity result already
            // says Fail or Warn (else its errors would be told twice).
            if let Some(s) = t.get("test_summary").and_then(Value::as_object) {
                let summary = result(&category, &test, s);
                let told = out.results[first..]
                    .iter()
                    .any(|r| matches!(r.status, Status::Fail | Status::Warn));
                let judged = matches!(summary.status, Status::Fail | Status::Warn);
                if (judged && !told) || out.results.len() == first {
                    out.results.push(TestResult {
                        entity: None,
                        ..summary
                    });
                }
            }
        }
    }
    Ok(out)
}

/// The results sorted by what a certification makes of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    /// `GPU 0: software (Deployment): <DCGM's messages>`.
    pub failed: Vec<String>,
    pub warned: Vec<String>,
    /// `GPU 0: memory (Hardware)`.
    pub skipped: Vec<String>,
    /// Results whose status is none DCGM defines (never a pass).
    pub unknown: Vec<String>,
    /// How many results passed, and of which tests.
    pub passed: usize,
    pub passed_tests: Vec<String>,
}

fn with_messages(r: &TestResult) -> String {
    if r.warnings.is_empty() {
        format!("{} (DCGM gave no message)", r.label())
    } else {
        format!(
            "{}: {}",
            r.label(),
            r.warnings
                .iter()
                .map(Message::describe)
                .collect::<Vec<_>>()
                .join("; ")
        )
    }
}

/// Sorts every result: Fail and Warn with DCGM's messages, Skip and Not
/// Run by name, passes counted.
pub fn judge(d: &Diag) -> Judgement {
    let mut j = Judgement::default();
    for r in &d.results {
        match &r.status {
            Status::Fail => j.failed.push(with_messages(r)),
            Status::Warn => j.warned.push(with_messages(r)),
            Status::Skip | Status::NotRun => j.skipped.push(r.label()),
            Status::Pass => {
                j.passed += 1;
                if !j.passed_tests.contains(&r.test) {
                    j.passed_tests.push(r.test.clone());
                }
            }
            Status::Other(s) => j.unknown.push(format!("{}: status {s:?}", r.label())),
        }
    }
    j
}
