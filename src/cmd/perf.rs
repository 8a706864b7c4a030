//! `certlab perf …`: the performance suite's command-line tools.
//!
//! `perf compare BASELINE CANDIDATE` judges every metric of two sample sets
//! (each a sample-set JSON file or a run's results.json) with
//! [`certlab_suites::perf::compare_sets`]. Exit codes: 0 when no metric
//! regressed, 1 when one did, 3 when an input cannot be read or is not a
//! sample set (the message names the file and what is wrong).
//!
//! `perf samples` turns benchmark outputs (fio, iperf3, stress-ng) into a
//! sample set, so runs made outside certlab can be compared too.

use std::path::{Path, PathBuf};

use certlab_suites::perf;
use certlab_suites::perf::samples::{self, SampleSet};
use certlab_suites::perf::stats::DEFAULT_THRESHOLD_PCT;
use certlab_suites::perf::{compare_sets, Better, MetricComparison, Verdict};

use crate::error::{CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

/// The JSON output (a struct, so the fields keep their order).
#[derive(serde::Serialize)]
struct Report<'a> {
    metrics: &'a [MetricComparison],
}

#[derive(Debug, clap::Subcommand)]
pub enum PerfCmd {
    /// Compare a candidate's performance samples with a baseline's, metric by
    /// metric: regression, improvement, no_change or inconclusive, with the
    /// change, its p-value and its 95 % confidence interval. Exits 1 when a
    /// metric regressed.
    ///
    /// Each side is a sample-set file, {"metrics": {"NAME": {"unit": "…",
    /// "direction": "higher"|"lower", "samples": [numbers]}}}, or a run's
    /// results.json (metrics named CASE_ID/METRIC, a case's repeated metric
    /// being its samples). At most one outlier a side is set aside by a rule
    /// fixed in advance; then Student's t-test (see ARCHITECTURE.md).
    Compare {
        /// The reference: a sample-set JSON file or a results.json.
        baseline: PathBuf,
        /// What is judged against it.
        candidate: PathBuf,
        /// A change smaller than this (per cent) is of no consequence: with
        /// the 95 % interval inside ±PCT and no significant change, the
        /// verdict is no_change.
        #[arg(long, value_name = "PCT", default_value_t = DEFAULT_THRESHOLD_PCT, value_parser = threshold)]
        threshold: f64,
        /// Output format.
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Make a sample set (the JSON `perf compare` reads) from benchmark
    /// outputs, each file one sample of every figure in it: metrics named
    /// fio/JOB.DIRECTION.FIGURE, iperf3/…, stress-ng/STRESSOR.…, in the
    /// order given.
    Samples {
        /// `fio --output-format=json` reports.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        fio: Vec<PathBuf>,
        /// `iperf3 -J` reports.
        #[arg(long, value_name = "FILE", num_args = 1..)]
        iperf3: Vec<PathBuf>,
        /// stress-ng `--metrics[-brief]` console logs or `--yaml` files.
        #[arg(long = "stress-ng", value_name = "FILE", num_args = 1..)]
        stress_ng: Vec<PathBuf>,
    },
    /// Performance baselines in the lab store: set one from a finished run,
    /// list them, show one. A performance case compares its samples with the
    /// baseline of its machine, else of its platform.
    Baseline {
        #[command(subcommand)]
        cmd: super::perf_baseline::BaselineCmd,
    },
}

fn threshold(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}` is not a positive percentage")),
    }
}

/// Runs a `perf` subcommand.
pub fn run(cmd: PerfCmd) -> Result<i32> {
    match cmd {
        PerfCmd::Baseline { cmd } => super::perf_baseline::run(cmd),
        PerfCmd::Samples {
            fio,
            iperf3,
            stress_ng,
        } => {
            if fio.is_empty() && iperf3.is_empty() && stress_ng.is_empty() {
                return Err(CliError::infra(anyhow::anyhow!(
                    "name at least one --fio, --iperf3 or --stress-ng file"
                )));
            }
            let mut set = SampleSet::default();
            let tools: [(&str, &[PathBuf]); 3] = [
                ("fio", &fio),
                ("iperf3", &iperf3),
                ("stress-ng", &stress_ng),
            ];
            for (tool, files) in tools {
                for path in files {
                    let text = std::fs::read_to_string(path).map_err(|e| {
                        CliError::bad_input(anyhow::anyhow!(
                            "cannot read the {tool} output {}: {e}",
                            path.display()
                        ))
                    })?;
                    let parsed = match tool {
                        "fio" => perf::fio::parse(&text),
                        "iperf3" => perf::iperf3::parse(&text),
                        _ if is_stress_ng_yaml(&text) => perf::stressng::parse_yaml(&text),
                        _ => perf::stressng::parse_text(&text),
                    }
                    .map_err(|e| CliError::bad_input(anyhow::anyhow!("{}: {e}", path.display())))?;
                    samples::add_run(&mut set, tool, parsed).map_err(|e| {
                        CliError::bad_input(anyhow::anyhow!("{}: {e}", path.display()))
                    })?;
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&set).map_err(CliError::infra)?
            );
            Ok(exit::OK)
        }
        PerfCmd::Compare {
            baseline,
            candidate,
            threshold,
            format,
        } => {
            let b = read_set(&baseline, "baseline")?;
            let c = read_set(&candidate, "candidate")?;
            let rows = compare_sets(&b, &c, threshold).map_err(|e| {
                CliError::bad_input(anyhow::anyhow!(
                    "{} and {} disagree: {e}",
                    baseline.display(),
                    candidate.display()
                ))
            })?;
            if rows.is_empty() {
                return Err(CliError::bad_input(anyhow::anyhow!(
                    "no metrics to compare: neither {} nor {} has any",
                    baseline.display(),
                    candidate.display()
                )));
            }
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&Report { metrics: &rows })
                        .map_err(CliError::infra)?
                ),
                Format::Human | Format::Junit => print!("{}", human(&rows, threshold)),
            }
            let regressed = rows
                .iter()
                .any(|r| r.comparison.verdict == Verdict::Regression);
            Ok(if regressed {
                exit::TEST_FAILURE
            } else {
                exit::OK
            })
        }
    }
}

/// A stress-ng `--yaml` file (a YAML document with a `metrics:` list), as
/// opposed to its console log.
fn is_stress_ng_yaml(text: &str) -> bool {
    text.lines().any(|l| l.trim_end() == "metrics:")
}

fn read_set(path: &Path, side: &str) -> Result<SampleSet> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::bad_input(anyhow::anyhow!(
            "cannot read the {side} {}: {e}",
            path.display()
        ))
    })?;
    samples::parse(&text)
        .map_err(|e| CliError::bad_input(anyhow::anyhow!("the {side} {}: {e}", path.display())))
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("{v:+.digits$}"))
}

fn human(rows: &[MetricComparison], threshold: f64) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(6).max(6);
    let mut s = format!(
        "{:<width$}  {:<12}  {:>8}  {:>9}  {:>19}  {:>5}  UNIT\n",
        "METRIC", "VERDICT", "CHANGE%", "P", "95% CI (%)", "N"
    );
    for r in rows {
        let c = &r.comparison;
        let p = match c.p_value {
            None => "-".to_string(),
            Some(p) if p >= 1e-3 => format!("{p:.3}"),
            Some(p) => format!("{p:.1e}"),
        };
        let ci = match (c.ci_low_pct, c.ci_high_pct) {
            (Some(lo), Some(hi)) => format!("[{lo:+.2}, {hi:+.2}]"),
            _ => "-".to_string(),
        };
        let better = match r.direction {
            Better::Higher => "higher is better",
            Better::Lower => "lower is better",
        };
        s.push_str(&format!(
            "{:<width$}  {:<12}  {:>8}  {:>9}  {:>19}  {:>5}  {} ({better})\n",
            r.name,
            c.verdict.as_str(),
            opt(c.change_pct, 2),
            p,
            ci,
            format!("{}/{}", c.baseline_n, c.candidate_n),
            r.unit,
        ));
    }
    let noted: Vec<String> = rows
        .iter()
        .filter(|r| {
            matches!(r.comparison.verdict, Verdict::Inconclusive)
                || !r.comparison.baseline_outliers.is_empty()
                || !r.comparison.candidate_outliers.is_empty()
        })
        .map(|r| format!("  {}: {}", r.name, r.comparison.reason))
        .collect();
    if !noted.is_empty() {
        s.push_str("\nnotes:\n");
        s.push_str(&noted.join("\n"));
        s.push('\n');
    }
    let count = |v: Verdict| rows.iter().filter(|r| r.comparison.verdict == v).count();
    s.push_str(&format!(
        "\n{} metrics: {} regression, {} improvement, {} no_change (within ±{threshold} %), {} inconclusive\n",
        rows.len(),
        count(Verdict::Regression),
        count(Verdict::Improvement),
        count(Verdict::NoChange),
        count(Verdict::Inconclusive)
    ));
    s
}
