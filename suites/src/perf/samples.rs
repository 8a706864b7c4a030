//! What `perf compare` reads: a sample set, from its own JSON form or from a
//! run's `results.json`, and the comparison of two sets metric by metric.
//!
//! The JSON form: `{"metrics": {"NAME": {"unit": "…", "direction":
//! "higher"|"lower", "samples": [numbers]}}}` (other top-level keys are
//! ignored; unknown keys inside a metric are an error). From a run record,
//! a metric is named `CASE_ID/METRIC_NAME`, and its samples are the values
//! of the metrics of that name the case recorded, in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stats::{compare, Comparison, Verdict};
use super::Better;

/// The samples of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Series {
    pub unit: String,
    pub direction: Better,
    pub samples: Vec<f64>,
}

/// Metrics by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleSet {
    pub metrics: BTreeMap<String, Series>,
}

/// Why an input is not a sample set.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("not valid JSON: {0}")]
    Json(serde_json::Error),
    #[error("neither a sample set (an object with a `metrics` object) nor a run's results.json (with `schema_version` and `cases`)")]
    Unknown,
    #[error("not a valid sample set: {0}")]
    SampleSet(serde_json::Error),
    #[error("not a valid results.json: {0}")]
    Results(serde_json::Error),
    #[error("results.json schema version {0} is not one this certlab reads ({1}..={2})")]
    SchemaVersion(u32, u32, u32),
    #[error("metric `{name}`: {why}")]
    Metric { name: String, why: String },
}

/// Reads either form of a sample set.
pub fn parse(text: &str) -> Result<SampleSet, InputError> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(InputError::Json)?;
    let set = if v.get("schema_version").is_some() && v.get("cases").is_some() {
        let version = v
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let (lo, hi) = (
            certlab_reports::OLDEST_SCHEMA_VERSION,
            certlab_reports::SCHEMA_VERSION,
        );
        if version < u64::from(lo) || version > u64::from(hi) {
            return Err(InputError::SchemaVersion(
                u32::try_from(version).unwrap_or(u32::MAX),
                lo,
                hi,
            ));
        }
        let record: certlab_reports::RunRecord =
            serde_json::from_value(v).map_err(InputError::Results)?;
        from_run_record(&record)?
    } else if v.get("metrics").is_some_and(serde_json::Value::is_object) {
        serde_json::from_value(v).map_err(InputError::SampleSet)?
    } else {
        return Err(InputError::Unknown);
    };
    for (name, s) in &set.metrics {
        let why = if s.samples.is_empty() {
            Some("no samples".to_string())
        } else if s.unit.trim().is_empty() {
            Some("empty unit".to_string())
        } else {
            s.samples
                .iter()
                .position(|v| !v.is_finite())
                .map(|i| format!("sample {} is not a finite number", i + 1))
        };
        if let Some(why) = why {
            return Err(InputError::Metric {
                name: name.clone(),
                why,
            });
        }
    }
    Ok(set)
}

/// The metrics a run recorded, `CASE_ID/METRIC_NAME` → its values in order.
/// A name recorded with two units or directions is an error.
pub fn from_run_record(record: &certlab_reports::RunRecord) -> Result<SampleSet, InputError> {
    let mut set = SampleSet::default();
    for case in &record.cases {
        add_run(&mut set, &case.id, case.metrics.clone())?;
    }
    Ok(set)
}

/// Adds one run's metrics to `set` as samples, each named `PREFIX/NAME`; a
/// name seen before with another unit or direction is an error.
pub fn add_run(
    set: &mut SampleSet,
    prefix: &str,
    metrics: Vec<super::Metric>,
) -> Result<(), InputError> {
    for m in metrics {
        let name = format!("{prefix}/{}", m.name);
        match set.metrics.get_mut(&name) {
            Some(s) if s.unit != m.unit || s.direction != m.better => {
                return Err(InputError::Metric {
                    name,
                    why: format!(
                        "recorded both as {} ({:?}) and as {} ({:?})",
                        s.unit, s.direction, m.unit, m.better
                    ),
                });
            }
            Some(s) => s.samples.push(m.value),
            None => {
                set.metrics.insert(
                    name,
                    Series {
                        unit: m.unit,
                        direction: m.better,
                        samples: vec![m.value],
                    },
                );
            }
        }
    }
    Ok(())
}

/// One metric's comparison, as `perf compare` reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    pub name: String,
    #[serde(flatten)]
    pub comparison: Comparison,
    pub unit: String,
    pub direction: Better,
}

/// A metric whose two sides disagree on what it is.
#[derive(Debug, thiserror::Error)]
#[error("metric `{name}`: the baseline says {baseline}, the candidate {candidate}")]
pub struct Mismatch {
    pub name: String,
    pub baseline: String,
    pub candidate: String,
}

/// Compares every metric of either set, by name. A metric on one side only
/// is `inconclusive`, saying which side has it; one whose unit or direction
/// differs between the sides is an error.
pub fn compare_sets(
    baseline: &SampleSet,
    candidate: &SampleSet,
    threshold_pct: f64,
) -> Result<Vec<MetricComparison>, Mismatch> {
    let mut out = Vec::new();
    let names: std::collections::BTreeSet<&String> = baseline
        .metrics
        .keys()
        .chain(candidate.metrics.keys())
        .collect();
    for name in names {
        let (b, c) = (baseline.metrics.get(name), candidate.metrics.get(name));
        let (series, comparison) = match (b, c) {
            (Some(b), Some(c)) => {
                if b.unit != c.unit || b.direction != c.direction {
                    return Err(Mismatch {
                        name: name.clone(),
                        baseline: describe(b),
                        candidate: describe(c),
                    });
                }
                (
                    b,
                    compare(&b.samples, &c.samples, b.direction, threshold_pct),
                )
            }
            (Some(s), None) | (None, Some(s)) => {
                let side = if b.is_some() { "baseline" } else { "candidate" };
                let mut cmp = compare(&[], &[], s.direction, threshold_pct);
                cmp.verdict = Verdict::Inconclusive;
                cmp.baseline_n = b.map_or(0, |s| s.samples.len());
                cmp.candidate_n = c.map_or(0, |s| s.samples.len());
                cmp.reason = format!("only the {side} has this metric");
                (s, cmp)
            }
            (None, None) => continue,
        };
        out.push(MetricComparison {
            name: name.clone(),
            unit: series.unit.clone(),
            direction: series.direction,
            comparison,
        });
    }
    Ok(out)
}

fn describe(s: &Series) -> String {
    let d = match s.direction {
        Better::Higher => "higher",
        Better::Lower => "lower",
    };
    format!("unit `{}`, {d} is better", s.unit)
}
