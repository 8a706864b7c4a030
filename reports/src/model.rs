//! The result model: a run of a plan on one machine, its cases, verdicts and evidence.
//!
//! This is the content of `results.json` (see `reports/schema/results.schema.json`).
//! Every change to a serialized field bumps [`SCHEMA_VERSION`] and adds a fixture
//! of the new version under `reports/tests/fixtures/`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The version of the `results.json` format written by this build.
///
/// - 1: the first release.
/// - 2: a failed case that is not a blocker is a warning: `summary.warning`
///   counts those cases and `summary.fail` only the blocking failures, so the
///   outcome is `fail` only when a blocker failed. Version 1 records are read
///   as they were written (no warnings; `warning` reads as 0).
/// - 3: a performance case compared with a stored baseline carries the
///   comparison (`baseline`: the baseline's samples, where it came from, and
///   the verdict of each judged metric). Absent on every other case, so a
///   version 2 record reads unchanged.
pub const SCHEMA_VERSION: u32 = 3;

/// The oldest `results.json` version this build still reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// A whole run: what was run, where, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    pub schema_version: u32,
    /// The run's id in the lab store (a UUID).
    pub run_id: String,
    pub tool: Tool,
    pub plan: PlanRef,
    pub host: Host,
    pub profile: HardwareSummary,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub finished: OffsetDateTime,
    /// Raw facts collected during discovery, each kept as evidence; under
    /// the orchestrator also the BMC's event log over the run (`Bmc`,
    /// source `sel`: the sweep).
    pub inventory: Vec<Evidence>,
    pub cases: Vec<CaseResult>,
    pub summary: Summary,
}

/// The program that produced a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// Which plan ran: its id, version and the sha256 digest of its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRef {
    pub id: String,
    pub version: String,
    pub digest: String,
}

/// The identity of the machine under test and of its OS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Host {
    pub hostname: String,
    /// `/etc/machine-id` when readable.
    pub machine_id: Option<String>,
    /// `uname -m`.
    pub arch: String,
    /// `uname -r`.
    pub kernel: String,
    /// `PRETTY_NAME` of `/etc/os-release`.
    pub os_name: String,
    /// `ID` of `/etc/os-release`.
    pub os_id: String,
    /// `VERSION_ID` of `/etc/os-release`.
    pub os_version: String,
}

/// The hardware profile as published with a result: enough to say what was certified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HardwareSummary {
    /// CPU platform family from hwdb's fixed vocabulary (`intel`, `kunpeng`, …).
    pub cpu_family: String,
    pub cpu_vendor: String,
    pub cpu_model: String,
    /// Microarchitecture / core name when known (`TSV110`, `Zen 4`, …).
    pub cpu_core: Option<String>,
    pub sockets: Option<u32>,
    pub cores: Option<u32>,
    pub threads: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub system_vendor: Option<String>,
    pub system_product: Option<String>,
    pub bios_version: Option<String>,
    pub pci_devices: Vec<PciSummary>,
    pub accelerators: Vec<String>,
}

/// One PCI function as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PciSummary {
    pub address: String,
    /// `vvvv:dddd`, lowercase hex.
    pub id: String,
    /// Class code, `cc:ss` or `ccssii`, lowercase hex.
    pub class: String,
    pub name: Option<String>,
    pub driver: Option<String>,
}

/// What a case concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The product meets the requirement.
    Pass,
    /// The product does not meet the requirement.
    Fail,
    /// The case does not apply to this machine, with a stated reason.
    Skip,
    /// The infrastructure failed (command could not run, timeout, lost
    /// connection): says nothing about the product.
    Error,
    /// The system under test died unexpectedly while the case ran.
    Crash,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Skip => "skip",
            Verdict::Error => "error",
            Verdict::Crash => "crash",
        }
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a bigger value of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    Higher,
    Lower,
}

/// A measured figure. A case that measures a figure several times (a
/// benchmark repeated until its spread is small) records one `Metric` of
/// that name per sample, in order; `certlab perf compare` reads them back as
/// the samples of `CASE_ID/NAME`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub better: Better,
}

/// A stored blob, named by the sha256 of its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactRef {
    /// Lowercase hex sha256 of the content; the file is `evidence/<sha256>`.
    pub sha256: String,
    pub size: u64,
}

/// What a verdict rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Evidence {
    /// A command run on the target.
    Command {
        cmd: String,
        /// Exit status; `null` when killed or timed out.
        exit: Option<i32>,
        timed_out: bool,
        duration_ms: u64,
        stdout: ArtifactRef,
        stderr: ArtifactRef,
    },
    /// A file read from the target.
    File { path: String, content: ArtifactRef },
    /// A file that could not be read, and why: absence is evidence too.
    Missing { path: String, error: String },
    /// What the machine's BMC recorded (`source`: `console` — the serial
    /// console's text — or `sel`, the system event log), as kept when the
    /// machine crashed, or swept at the run's end.
    Bmc {
        source: String,
        content: ArtifactRef,
    },
}

/// The result of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseResult {
    pub id: String,
    pub title: String,
    /// A failure of this case blocks certification.
    pub blocker: bool,
    pub verdict: Verdict,
    /// Why: one or more human sentences; for skips, why the case does not apply.
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub started: OffsetDateTime,
    pub duration_ms: u64,
    pub metrics: Vec<Metric>,
    pub evidence: Vec<Evidence>,
    /// The stored performance baseline this case's samples were compared
    /// with, and the comparison (since version 3; only on performance cases
    /// that had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineComparison>,
}

/// Whose figures a performance baseline holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineScope {
    /// One machine's (its name in the lab).
    Machine,
    /// Every machine of one hardware platform's.
    Platform,
}

impl BaselineScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineScope::Machine => "machine",
            BaselineScope::Platform => "platform",
        }
    }
}

impl std::fmt::Display for BaselineScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for BaselineScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "machine" => Ok(BaselineScope::Machine),
            "platform" => Ok(BaselineScope::Platform),
            _ => Err(format!(
                "`{s}` is not a baseline scope (machine or platform)"
            )),
        }
    }
}

/// What the comparison of a metric's samples with its baseline concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PerfVerdict {
    /// Significantly worse in the metric's direction.
    Regression,
    /// Significantly better.
    Improvement,
    /// Not significant, and any change is within the threshold.
    NoChange,
    /// The data cannot tell: too few samples, or too much spread.
    Inconclusive,
}

impl PerfVerdict {
    pub fn as_str(self) -> &'static str {
        match self {
            PerfVerdict::Regression => "regression",
            PerfVerdict::Improvement => "improvement",
            PerfVerdict::NoChange => "no_change",
            PerfVerdict::Inconclusive => "inconclusive",
        }
    }
}

impl std::fmt::Display for PerfVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A performance case's comparison with its stored baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineComparison {
    pub scope: BaselineScope,
    /// The machine's name, or the platform's key.
    pub key: String,
    /// The run whose samples became the baseline.
    pub source_run: String,
    /// When the baseline was set.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The kernel (`uname -r`) the baseline was measured on.
    pub kernel: String,
    /// The version of the plan the baseline was measured with.
    pub plan_version: String,
    /// A change smaller than this (per cent) was of no consequence.
    pub threshold_pct: f64,
    /// The metrics judged; the case's verdict follows the first.
    pub metrics: Vec<BaselineMetric>,
}

/// One metric of a case against its baseline. The candidate's samples are
/// the case's metrics of this name, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineMetric {
    pub name: String,
    pub unit: String,
    pub better: Better,
    /// The baseline's samples.
    pub baseline: Vec<f64>,
    pub verdict: PerfVerdict,
    /// (candidate − baseline) / |baseline| × 100, outliers set aside.
    pub change_pct: Option<f64>,
    /// The 95 % confidence interval of the change, in per cent.
    pub ci_low_pct: Option<f64>,
    pub ci_high_pct: Option<f64>,
    /// Two-sided p-value of the t-test.
    pub p_value: Option<f64>,
    /// Samples set aside as outliers, by side.
    pub baseline_outliers: Vec<f64>,
    pub candidate_outliers: Vec<f64>,
    /// Why, in a sentence.
    pub reason: String,
}

impl CaseResult {
    /// The case failed but is not a blocker: a warning, which does not fail
    /// the run (schema version 2 on).
    pub fn is_warning(&self) -> bool {
        self.verdict == Verdict::Fail && !self.blocker
    }

    /// The verdict as reports show it: `warning` for a non-blocking failure.
    pub fn shown_verdict(&self) -> &'static str {
        if self.is_warning() {
            "warning"
        } else {
            self.verdict.as_str()
        }
    }
}

/// Counts of cases by verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub total: u32,
    pub pass: u32,
    /// Failed blocker cases (version 1: every failed case).
    pub fail: u32,
    /// Failed cases that are not blockers (since version 2; 0 in version 1).
    #[serde(default)]
    pub warning: u32,
    pub skip: u32,
    pub error: u32,
    pub crash: u32,
    pub outcome: Outcome,
}

/// The run's overall outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every selected blocker case passed (skips and warnings allowed).
    #[default]
    Pass,
    /// At least one blocker case failed, or a case crashed the machine.
    Fail,
    /// No failure, but at least one case could not be judged.
    Error,
}

impl Summary {
    /// Counts `cases` and derives the outcome as this build writes it: a
    /// blocker's failure or a crash wins over an error; a failed non-blocker
    /// is a warning and leaves the outcome alone.
    pub fn of(cases: &[CaseResult]) -> Summary {
        Summary::of_version(cases, SCHEMA_VERSION)
    }

    /// [`Summary::of`] by the rules of `schema_version` (1: every failure fails).
    pub fn of_version(cases: &[CaseResult], schema_version: u32) -> Summary {
        let mut s = Summary::default();
        for c in cases {
            s.total += 1;
            match c.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail if schema_version >= 2 && c.is_warning() => s.warning += 1,
                Verdict::Fail => s.fail += 1,
                Verdict::Skip => s.skip += 1,
                Verdict::Error => s.error += 1,
                Verdict::Crash => s.crash += 1,
            }
        }
        s.outcome = if s.fail + s.crash > 0 {
            Outcome::Fail
        } else if s.error > 0 {
            Outcome::Error
        } else {
            Outcome::Pass
        };
        s
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Error => "error",
        }
    }
}
