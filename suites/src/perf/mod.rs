//! The performance suite's pure part: parsers of benchmark output, the
//! sample sets a comparison reads, and the statistics that judge them.
//!
//! Every figure a parser returns is a [`Metric`] with a unit and a
//! direction ([`Better`]: is a bigger value better?), units normalised per
//! kind (bandwidth in bytes/s, latency in ns, network throughput in bits/s).
//! Nothing here reads files, runs tools or looks at a clock.
//!
//! A metric measured several times in one case is recorded as several
//! [`Metric`]s of one name in the case's `metrics`: each is one sample
//! ([`samples::from_run_record`] groups them back).

pub mod baseline;
pub mod dist;
pub mod fio;
pub mod iperf3;
pub mod samples;
pub mod stats;
pub mod stressng;

pub use baseline::{judge, platform_key, Baseline};
pub use certlab_reports::{Better, Metric};
pub use samples::{compare_sets, MetricComparison, SampleSet, Series};
pub use stats::{compare, Comparison, Verdict};

/// The direction of a metric (an alias: the result model's [`Better`]).
pub type Direction = Better;

/// Why a tool's output gave no figures.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not {tool} output: {why}")]
    Format { tool: &'static str, why: String },
    #[error("{tool} reported a failure: {why}")]
    ToolFailed { tool: &'static str, why: String },
    #[error("no {tool} metrics found")]
    NoMetrics { tool: &'static str },
}

pub(crate) fn metric(name: String, value: f64, unit: &str, better: Better) -> Metric {
    Metric {
        name,
        value,
        unit: unit.to_string(),
        better,
    }
}
