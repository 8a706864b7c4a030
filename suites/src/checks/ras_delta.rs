//! RAS counters against a stored baseline (plan `regression-nightly`).
//!
//! The RAS cases (`ras.edac`, `ras.aer`, `ras.rasdaemon`) record every
//! counter they read as a [`Metric`] in unit [`COUNTER_UNIT`] — EDAC per
//! controller and per DIMM, AER per function and severity, rasdaemon's
//! errors per table and class — plus the machine's uptime
//! ([`UPTIME_METRIC`]), the window the counters cover. When a run becomes
//! a baseline (`certlab perf baseline set --from-run RUN`) the store keeps
//! those metrics of every case that was judged ([`is_ras_counter`]).
//!
//! A case with `baseline = true` then compares its counters with the
//! baseline in force: a counter exceeds it when it counts errors the
//! baseline did not (a new error class: a new DIMM, function, table or
//! severity) or counts them at a higher rate (errors per hour of uptime;
//! raw counts when either side's uptime is unknown) than the baseline,
//! beyond `tolerance_pct` (default 0). Any counter above its baseline
//! fails the case (`regression = "warn"`: a warning); at or below, it
//! passes, whatever the absolute counts. Without a baseline the case
//! judges the counts since boot as without `baseline = true`, and says so.
//! The comparison is the result's `baseline` (one entry per counter that
//! is non-zero on either side, those above their baseline first).

use std::collections::BTreeMap;

use certlab_reports::{BaselineComparison, BaselineMetric, Better, Metric, PerfVerdict, Verdict};

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::perf::Baseline;

/// The unit of an error counter.
pub const COUNTER_UNIT: &str = "errors";
/// The machine's uptime when the counters were read (seconds).
pub const UPTIME_METRIC: &str = "ras.uptime";

/// A counter read by a RAS case.
pub fn counter(name: impl Into<String>, value: u64) -> Metric {
    Metric {
        name: name.into(),
        value: value as f64,
        unit: COUNTER_UNIT.to_string(),
        better: Better::Lower,
    }
}

/// Whether a baseline keeps `m` as a RAS counter (or the uptime the
/// counters cover).
pub fn is_ras_counter(m: &Metric) -> bool {
    (m.unit == COUNTER_UNIT && m.better == Better::Lower)
        || (m.name == UPTIME_METRIC && m.unit == "s")
}

/// The first field of /proc/uptime, in seconds.
pub fn parse_uptime(text: &str) -> Option<f64> {
    let v: f64 = text.split_whitespace().next()?.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// Reads /proc/uptime (recorded) and adds it to `outcome` as
/// [`UPTIME_METRIC`]; an unreadable uptime adds nothing (the comparison
/// then uses raw counts).
pub fn with_uptime(ctx: &CaseCtx<'_>, outcome: CaseOutcome) -> Result<CaseOutcome, CaseError> {
    Ok(
        match ctx.read("/proc/uptime")?.as_deref().and_then(parse_uptime) {
            Some(s) => outcome.metric(Metric {
                name: UPTIME_METRIC.to_string(),
                value: s,
                unit: "s".to_string(),
                better: Better::Higher,
            }),
            None => outcome,
        },
    )
}

/// The counters of a comparison, as judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub comparison: BaselineComparison,
    /// The counters above their baseline, one line each.
    pub exceeded: Vec<String>,
    /// Counters judged (non-zero on either side or not).
    pub judged: usize,
    /// Counters of the baseline this run did not read (gone devices).
    pub unread: Vec<String>,
}

fn per_hour(count: f64, uptime_s: f64) -> f64 {
    count / (uptime_s / 3600.0)
}

/// Compares the counters in `metrics` that `judges` selects with
/// `baseline`'s (pure). Rates per hour of uptime when both sides recorded
/// a positive [`UPTIME_METRIC`], else raw counts.
pub fn judge(
    baseline: &Baseline,
    metrics: &[Metric],
    judges: &dyn Fn(&str) -> bool,
    tolerance_pct: f64,
) -> Judged {
    let uptime = |v: Option<f64>| v.filter(|u| *u > 0.0);
    let cand_up = uptime(
        metrics
            .iter()
            .find(|m| m.name == UPTIME_METRIC)
            .map(|m| m.value),
    );
    let base_up = uptime(
        baseline
            .metrics
            .get(UPTIME_METRIC)
            .and_then(|s| s.samples.first().copied()),
    );
    let rates = cand_up.zip(base_up);
    let candidate: BTreeMap<&str, f64> = metrics
        .iter()
        .filter(|m| m.unit == COUNTER_UNIT && judges(&m.name))
        .map(|m| (m.name.as_str(), m.value))
        .collect();
    let mut unread = Vec::new();
    for (name, s) in &baseline.metrics {
        if s.unit == COUNTER_UNIT && judges(name) && !candidate.contains_key(name.as_str()) {
            unread.push(name.clone());
        }
    }
    let mut exceeded = Vec::new();
    let mut above = Vec::new();
    let mut rest = Vec::new();
    for (name, c) in &candidate {
        let b = baseline
            .metrics
            .get(*name)
            .filter(|s| s.unit == COUNTER_UNIT)
            .and_then(|s| s.samples.first().copied())
            .unwrap_or(0.0);
        if *c == 0.0 && b == 0.0 {
            continue;
        }
        let (rc, rb, how) = match rates {
            Some((uc, ub)) => (per_hour(*c, uc), per_hour(b, ub), "/h"),
            None => (*c, b, ""),
        };
        let show = |n: f64, r: f64| {
            if how.is_empty() {
                format!("{n}")
            } else {
                format!("{n} ({r:.3}{how})")
            }
        };
        let over = *c > 0.0 && (b == 0.0 || rc > rb * (1.0 + tolerance_pct / 100.0));
        let (verdict, reason) = if over && b == 0.0 {
            (
                PerfVerdict::Regression,
                format!(
                    "{name}: {} where the baseline counted none (a new error class)",
                    show(*c, rc)
                ),
            )
        } else if over {
            (
                PerfVerdict::Regression,
                format!(
                    "{name}: {} above the baseline's {}",
                    show(*c, rc),
                    show(b, rb)
                ),
            )
        } else if rc < rb {
            (
                PerfVerdict::Improvement,
                format!(
                    "{name}: {} below the baseline's {}",
                    show(*c, rc),
                    show(b, rb)
                ),
            )
        } else {
            (
                PerfVerdict::NoChange,
                format!("{name}: {} at the baseline's {}", show(*c, rc), show(b, rb)),
            )
        };
        let entry = BaselineMetric {
            name: name.to_string(),
            unit: COUNTER_UNIT.to_string(),
            better: Better::Lower,
            baseline: vec![b],
            verdict,
            change_pct: (rb > 0.0).then(|| (rc - rb) / rb * 100.0),
            ci_low_pct: None,
            ci_high_pct: None,
            p_value: None,
            baseline_outliers: Vec::new(),
            candidate_outliers: Vec::new(),
            reason: reason.clone(),
        };
        if over {
            exceeded.push(reason);
            above.push(entry);
        } else {
            rest.push(entry);
        }
    }
    above.extend(rest);
    Judged {
        comparison: BaselineComparison {
            scope: baseline.scope,
            key: baseline.key.clone(),
            source_run: baseline.source_run.clone(),
            created: baseline.created,
            kernel: baseline.kernel.clone(),
            plan_version: baseline.plan_version.clone(),
            threshold_pct: tolerance_pct,
            metrics: above,
        },
        exceeded,
        judged: candidate.len(),
        unread,
    }
}

/// The verdict of a RAS case whose counts since boot gave `today`, for a
/// plan that asks for the baseline (`baseline = true`; otherwise `today`
/// unchanged). `judges` picks the counters this case judges (by name).
/// Only a case that read its counters (pass or fail) is compared.
pub fn against_baseline(
    ctx: &CaseCtx<'_>,
    today: CaseOutcome,
    judges: &dyn Fn(&str) -> bool,
) -> Result<CaseOutcome, CaseError> {
    if !ctx.param_bool("baseline", false) || !matches!(today.verdict, Verdict::Pass | Verdict::Fail)
    {
        return Ok(today);
    }
    let warn = match ctx.param_str("regression", "fail").as_str() {
        "fail" => false,
        "warn" => true,
        other => {
            return Err(CaseError::Infra(format!(
                "the plan's `regression` is `{other}`: it must be `fail` or `warn`"
            )))
        }
    };
    let tolerance = ctx.param_f64("tolerance_pct", 0.0);
    let without = |why: String, today: CaseOutcome| CaseOutcome {
        reason: format!("{}; {why}: judged on the counts since boot", today.reason),
        ..today
    };
    let Some(baseline) = ctx.baseline() else {
        return Ok(without(
            "no RAS baseline for this machine or its platform (`certlab perf baseline set --from-run RUN` makes one)".to_string(),
            today,
        ));
    };
    if !baseline
        .metrics
        .iter()
        .any(|(n, s)| s.unit == COUNTER_UNIT && judges(n))
    {
        return Ok(without(
            format!(
                "the baseline (run {}) holds no counter this case judges",
                baseline.source_run
            ),
            today,
        ));
    }
    let j = judge(baseline, &today.metrics, judges, tolerance);
    let of = format!(
        "{} baseline {} (run {}, kernel {})",
        baseline.scope.as_str(),
        baseline.key,
        baseline.source_run,
        baseline.kernel
    );
    let window = if j.comparison.metrics.is_empty() {
        String::new()
    } else if today.metrics.iter().any(|m| m.name == UPTIME_METRIC)
        && baseline.metrics.contains_key(UPTIME_METRIC)
    {
        " (rates per hour of uptime)".to_string()
    } else {
        " (counts: an uptime is missing)".to_string()
    };
    let mut tail = format!("; since boot: {}", today.reason);
    if !j.unread.is_empty() {
        tail = format!("; not read this run: {}{tail}", j.unread.join(", "));
    }
    let mut out = if j.exceeded.is_empty() {
        let shown: Vec<&str> = j
            .comparison
            .metrics
            .iter()
            .map(|m| m.reason.as_str())
            .collect();
        CaseOutcome::pass(format!(
            "no counter above the {of}: {} of {} counters non-zero on either side{window}{}{tail}",
            shown.len(),
            j.judged,
            if shown.is_empty() {
                String::new()
            } else {
                format!(" — {}", shown.join("; "))
            }
        ))
    } else {
        let mut o = CaseOutcome::fail(format!(
            "{} counter(s) above the {of}{window}: {}{tail}",
            j.exceeded.len(),
            j.exceeded.join("; ")
        ));
        o.warning = warn;
        o
    };
    out.metrics = today.metrics;
    out.baseline = Some(j.comparison);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::perf::samples::Series;
    use certlab_reports::BaselineScope;

    fn base(counters: &[(&str, f64)], uptime: Option<f64>) -> Baseline {
        let mut metrics: BTreeMap<String, Series> = counters
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    Series {
                        unit: COUNTER_UNIT.into(),
                        direction: Better::Lower,
                        samples: vec![*v],
                    },
                )
            })
            .collect();
        if let Some(u) = uptime {
            metrics.insert(
                UPTIME_METRIC.into(),
                Series {
                    unit: "s".into(),
                    direction: Better::Higher,
                    samples: vec![u],
                },
            );
        }
        Baseline {
            scope: BaselineScope::Machine,
            key: "m".into(),
            source_run: "r0".into(),
            created: time::OffsetDateTime::UNIX_EPOCH,
            kernel: "6.1".into(),
            plan_version: "1".into(),
            metrics,
        }
    }

    fn cand(counters: &[(&str, u64)], uptime: Option<f64>) -> Vec<Metric> {
        let mut v: Vec<Metric> = counters.iter().map(|(n, c)| counter(*n, *c)).collect();
        if let Some(u) = uptime {
            v.push(Metric {
                name: UPTIME_METRIC.into(),
                value: u,
                unit: "s".into(),
                better: Better::Higher,
            });
        }
        v
    }

    #[test]
    fn rates_new_classes_and_counts() {
        let all = |_: &str| true;
        // 4 CEs in 2 h vs 10 in 10 h: 2/h above 1/h.
        let b = base(
            &[("edac.mc0.ce", 10.0), ("edac.mc0.ue", 0.0)],
            Some(36000.0),
        );
        let j = judge(
            &b,
            &cand(&[("edac.mc0.ce", 4), ("edac.mc0.ue", 0)], Some(7200.0)),
            &all,
            0.0,
        );
        assert_eq!(j.exceeded.len(), 1, "{j:?}");
        assert_eq!(j.comparison.metrics[0].verdict, PerfVerdict::Regression);
        assert_eq!(j.comparison.metrics[0].change_pct, Some(100.0));
        // Within a 150 % tolerance it is not above.
        let j = judge(&b, &cand(&[("edac.mc0.ce", 4)], Some(7200.0)), &all, 150.0);
        assert!(j.exceeded.is_empty(), "{j:?}");
        // 4 in 8 h: 0.5/h, below.
        let j = judge(&b, &cand(&[("edac.mc0.ce", 4)], Some(28800.0)), &all, 0.0);
        assert!(j.exceeded.is_empty());
        assert_eq!(j.comparison.metrics[0].verdict, PerfVerdict::Improvement);
        // A UE the baseline never counted: a new class, at any rate.
        let j = judge(&b, &cand(&[("edac.mc0.ue", 1)], Some(1e9)), &all, 1000.0);
        assert!(j.exceeded[0].contains("a new error class"), "{j:?}");
        // No uptime on one side: raw counts (4 < 10).
        let j = judge(&b, &cand(&[("edac.mc0.ce", 4)], None), &all, 0.0);
        assert!(j.exceeded.is_empty());
        // Counters the case does not judge are left out; gone ones listed.
        let only_ue = |n: &str| n.ends_with(".ue");
        let j = judge(
            &b,
            &cand(&[("edac.mc0.ce", 400)], Some(60.0)),
            &only_ue,
            0.0,
        );
        assert!(j.exceeded.is_empty() && j.judged == 0);
        assert_eq!(j.unread, vec!["edac.mc0.ue".to_string()]);
    }

    #[test]
    fn uptime_and_counter_metrics() {
        assert_eq!(parse_uptime("3600.25 7000.10\n"), Some(3600.25));
        assert_eq!(parse_uptime("soon"), None);
        assert!(is_ras_counter(&counter("aer.x.fatal", 1)));
        assert!(is_ras_counter(&cand(&[], Some(1.0))[0]));
        assert!(!is_ras_counter(&Metric {
            name: "fio.read_bw".into(),
            value: 1.0,
            unit: "B/s".into(),
            better: Better::Higher,
        }));
    }
}
