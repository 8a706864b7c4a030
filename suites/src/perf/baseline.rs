//! A performance case against its stored baseline: what the runner hands a
//! case (the lab store is not the suites' to read) and the comparison of
//! the case's samples with it, recorded in the case's result.

use std::collections::BTreeMap;

use certlab_reports::{BaselineComparison, BaselineMetric, BaselineScope, HardwareSummary, Metric};
use time::OffsetDateTime;

use super::samples::Series;
use super::stats::{compare, Verdict};

/// A stored baseline, as a case receives it through its spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub scope: BaselineScope,
    /// The machine's name, or the platform's key ([`platform_key`]).
    pub key: String,
    /// The run whose samples became the baseline.
    pub source_run: String,
    pub created: OffsetDateTime,
    /// The kernel the baseline was measured on.
    pub kernel: String,
    pub plan_version: String,
    /// The case's metrics by name (as the case records them, without its
    /// id), each with its samples.
    pub metrics: BTreeMap<String, Series>,
}

/// The platform a machine belongs to, for baselines shared by every machine
/// of it: the system's SMBIOS vendor and product and the CPU as hwdb
/// identified it (family and model name), so two machines share a platform
/// baseline only when both their system and their processor are alike.
/// Parts the machine does not report read `unknown`.
pub fn platform_key(profile: &HardwareSummary) -> String {
    let part = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .unwrap_or("unknown")
            .to_string()
    };
    format!(
        "{} {} / {} {}",
        part(profile.system_vendor.as_deref()),
        part(profile.system_product.as_deref()),
        part(Some(&profile.cpu_family)),
        part(Some(&profile.cpu_model)),
    )
}

/// Compares the samples in `metrics` (a case's, one [`Metric`] per sample)
/// of each of `names` with `baseline`'s, calling a change within ±
/// `threshold_pct` of no consequence. A name the baseline lacks, or records
/// with another unit or direction, is `inconclusive` with the reason.
pub fn judge(
    baseline: &Baseline,
    names: &[&str],
    metrics: &[Metric],
    threshold_pct: f64,
) -> BaselineComparison {
    let judged = names
        .iter()
        .map(|name| {
            let samples: Vec<&Metric> = metrics.iter().filter(|m| m.name == *name).collect();
            let values: Vec<f64> = samples.iter().map(|m| m.value).collect();
            let (unit, better) = samples
                .first()
                .map(|m| (m.unit.clone(), m.better))
                .or_else(|| {
                    baseline
                        .metrics
                        .get(*name)
                        .map(|s| (s.unit.clone(), s.direction))
                })
                .unwrap_or((String::new(), certlab_reports::Better::Higher));
            let inconclusive = |base: Vec<f64>, reason: String| BaselineMetric {
                name: name.to_string(),
                unit: unit.clone(),
                better,
                baseline: base,
                verdict: Verdict::Inconclusive,
                change_pct: None,
                ci_low_pct: None,
                ci_high_pct: None,
                p_value: None,
                baseline_outliers: Vec::new(),
                candidate_outliers: Vec::new(),
                reason,
            };
            let Some(series) = baseline.metrics.get(*name) else {
                return inconclusive(
                    Vec::new(),
                    format!("the baseline has no samples of `{name}`"),
                );
            };
            if series.unit != unit || series.direction != better {
                return inconclusive(
                    series.samples.clone(),
                    format!(
                        "the baseline records `{name}` in {} ({:?} is better), this run in {unit} ({better:?} is better)",
                        series.unit, series.direction
                    ),
                );
            }
            let c = compare(&series.samples, &values, better, threshold_pct);
            BaselineMetric {
                name: name.to_string(),
                unit: unit.clone(),
                better,
                baseline: series.samples.clone(),
                verdict: c.verdict,
                change_pct: c.change_pct,
                ci_low_pct: c.ci_low_pct,
                ci_high_pct: c.ci_high_pct,
                p_value: c.p_value,
                baseline_outliers: c.baseline_outliers,
                candidate_outliers: c.candidate_outliers,
                reason: c.reason,
            }
        })
        .collect();
    BaselineComparison {
        scope: baseline.scope,
        key: baseline.key.clone(),
        source_run: baseline.source_run.clone(),
        created: baseline.created,
        kernel: baseline.kernel.clone(),
        plan_version: baseline.plan_version.clone(),
        threshold_pct,
        metrics: judged,
    }
}

/// One judged metric in a sentence: `regression: −12.0 % (95 % interval
/// −14.1 % to −9.9 %, p = 0.000) against the machine baseline of run R (5
/// samples, kernel K)`.
pub fn describe(cmp: &BaselineComparison, m: &BaselineMetric) -> String {
    let pct = |v: Option<f64>| v.map_or_else(|| "—".to_string(), |v| format!("{v:+.1} %"));
    let run: String = cmp.source_run.chars().take(8).collect();
    let stats = match (m.ci_low_pct, m.ci_high_pct, m.p_value) {
        (Some(_), Some(_), Some(p)) => format!(
            "{} (95 % interval {} to {}, p = {p:.3})",
            pct(m.change_pct),
            pct(m.ci_low_pct),
            pct(m.ci_high_pct)
        ),
        _ => m.reason.clone(),
    };
    format!(
        "{}: {stats} against the {} baseline of run {run} ({} samples, kernel {})",
        m.verdict,
        cmp.scope,
        m.baseline.len(),
        cmp.kernel
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use certlab_reports::Better;

    fn baseline(samples: &[f64]) -> Baseline {
        let mut metrics = BTreeMap::new();
        metrics.insert(
            "read.bw".to_string(),
            Series {
                unit: "B/s".into(),
                direction: Better::Higher,
                samples: samples.to_vec(),
            },
        );
        Baseline {
            scope: BaselineScope::Machine,
            key: "m1".into(),
            source_run: "run-1".into(),
            created: OffsetDateTime::UNIX_EPOCH,
            kernel: "6.1.0".into(),
            plan_version: "1".into(),
            metrics,
        }
    }

    fn samples(name: &str, unit: &str, values: &[f64]) -> Vec<Metric> {
        values
            .iter()
            .map(|v| Metric {
                name: name.into(),
                value: *v,
                unit: unit.into(),
                better: Better::Higher,
            })
            .collect()
    }

    #[test]
    fn missing_or_different_metrics_are_inconclusive_with_the_reason() {
        let b = baseline(&[100.0, 101.0, 99.0]);
        let c = judge(
            &b,
            &["write.bw"],
            &samples("write.bw", "B/s", &[1.0; 3]),
            5.0,
        );
        assert_eq!(c.metrics[0].verdict, Verdict::Inconclusive);
        assert!(c.metrics[0].reason.contains("no samples of `write.bw`"));
        let c = judge(
            &b,
            &["read.bw"],
            &samples("read.bw", "MiB/s", &[1.0; 3]),
            5.0,
        );
        assert_eq!(c.metrics[0].verdict, Verdict::Inconclusive);
        assert!(
            c.metrics[0].reason.contains("MiB/s"),
            "{}",
            c.metrics[0].reason
        );
        let c = judge(
            &b,
            &["read.bw"],
            &samples("read.bw", "B/s", &[80.0, 81.0, 79.5]),
            5.0,
        );
        assert_eq!(c.metrics[0].verdict, Verdict::Regression);
        assert_eq!(c.metrics[0].baseline, vec![100.0, 101.0, 99.0]);
        assert!(describe(&c, &c.metrics[0]).starts_with("regression: -19."));
    }

    #[test]
    fn platform_keys_name_system_and_cpu() {
        let mut p = HardwareSummary {
            cpu_family: "kunpeng".into(),
            cpu_model: "Kunpeng-920".into(),
            system_vendor: Some("Huawei".into()),
            system_product: Some("TaiShan 200 (Model 2280)".into()),
            ..Default::default()
        };
        assert_eq!(
            platform_key(&p),
            "Huawei TaiShan 200 (Model 2280) / kunpeng Kunpeng-920"
        );
        p.system_vendor = None;
        p.system_product = Some(" ".into());
        assert_eq!(platform_key(&p), "unknown unknown / kunpeng Kunpeng-920");
    }
}
