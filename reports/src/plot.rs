//! Inline SVG plots for the HTML report: no script, no stylesheet, no
//! network — numbers and escaped text in one `<svg>` element.
//!
//! [`baseline_strip`] draws one metric of a performance case: a strip (dot)
//! plot with a row for the baseline's samples and a row for this run's, one
//! circle per sample (a hollow one for a sample the comparison set aside as
//! an outlier), each row's mean as a vertical bar and the 95 % confidence
//! interval of that mean (Student's t) as a horizontal bar with end ticks.
//! The `<svg>` has no `xmlns`: inside HTML the parser gives it the SVG
//! namespace itself, and the page keeps no URL at all.

use std::fmt::Write;

use crate::model::{BaselineMetric, Better};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 150.0;
/// Room for the row labels on the left and a margin on the right.
const LEFT: f64 = 120.0;
const RIGHT: f64 = 20.0;
const ROW_Y: [f64; 2] = [40.0, 90.0];
const AXIS_Y: f64 = 120.0;

const BASELINE_COLOUR: &str = "#6e7781";
const REGRESSION_COLOUR: &str = "#cf222e";
const IMPROVEMENT_COLOUR: &str = "#1a7f37";
const NEUTRAL_COLOUR: &str = "#0969da";

/// One row of the plot: its label, samples, the samples set aside, its
/// colour and the `class` of its circles.
struct Row<'a> {
    label: &'a str,
    samples: &'a [f64],
    outliers: &'a [f64],
    colour: &'a str,
    class: &'a str,
}

/// Two-sided 95 % quantiles of Student's t for 1 to 30 degrees of freedom.
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 0.975 quantile of Student's t with `df` degrees of freedom (the table
/// to 30, then the normal quantile with its first correction, within 0.2 %).
fn t_975(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T_975[df - 1],
        _ => 1.96 + 2.4 / df as f64,
    }
}

/// Mean and the half-width of its 95 % interval (`None` under two samples).
pub fn mean_ci(samples: &[f64]) -> Option<(f64, Option<f64>)> {
    let n = samples.len();
    if n == 0 {
        return None;
    }
    let mean = samples.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some((mean, None));
    }
    let var = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    Some((mean, Some(t_975(n - 1) * (var / n as f64).sqrt())))
}

/// XML text escaping (for element content and attribute values).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A value as the axis and tooltips show it: four significant digits.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "—".to_string();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-3..1e6).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = if a >= 1000.0 {
        0
    } else if a >= 100.0 {
        1
    } else if a >= 10.0 {
        2
    } else {
        3
    };
    format!("{v:.decimals$}")
}

/// The SVG strip plot of `metric`'s baseline samples against `candidate`
/// (this run's samples of the metric, in order). Non-finite samples are
/// left out of the plot.
pub fn baseline_strip(metric: &BaselineMetric, candidate: &[f64]) -> String {
    let base: Vec<f64> = metric
        .baseline
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let cand: Vec<f64> = candidate
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    let all = || base.iter().chain(&cand).copied();
    let (lo, hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let (lo, hi) = if !lo.is_finite() {
        (0.0, 1.0)
    } else if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        // One value everywhere: a band of ±1 % (or ±1) around it.
        let pad = (lo.abs() * 0.01).max(1e-9);
        (lo - pad, hi + pad)
    } else {
        let pad = (hi - lo) * 0.08;
        (lo - pad, hi + pad)
    };
    let x = |v: f64| LEFT + (v - lo) / (hi - lo) * (WIDTH - LEFT - RIGHT);

    let run_colour = match metric.verdict {
        crate::model::PerfVerdict::Regression => REGRESSION_COLOUR,
        crate::model::PerfVerdict::Improvement => IMPROVEMENT_COLOUR,
        _ => NEUTRAL_COLOUR,
    };
    let arrow = match metric.better {
        Better::Higher => "higher is better",
        Better::Lower => "lower is better",
    };
    let title = format!(
        "{} ({}, {arrow}): this run against the baseline — {}",
        metric.name, metric.unit, metric.verdict
    );

    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{t}" font-family="sans-serif" font-size="11"><title>{t}</title>"#,
        t = esc(&title)
    );
    // Axis with its two end values.
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" y1="{AXIS_Y}" x2="{:.1}" y2="{AXIS_Y}" stroke="#8c959f"/>"##,
        WIDTH - RIGHT
    );
    let _ = write!(
        s,
        r##"<text x="{LEFT}" y="{:.1}" fill="#5c6670">{}</text><text x="{:.1}" y="{:.1}" fill="#5c6670" text-anchor="end">{} {}</text>"##,
        AXIS_Y + 15.0,
        esc(&num(lo)),
        WIDTH - RIGHT,
        AXIS_Y + 15.0,
        esc(&num(hi)),
        esc(&metric.unit)
    );
    let rows = [
        Row {
            label: "baseline",
            samples: &base,
            outliers: &metric.baseline_outliers,
            colour: BASELINE_COLOUR,
            class: "baseline",
        },
        Row {
            label: "this run",
            samples: &cand,
            outliers: &metric.candidate_outliers,
            colour: run_colour,
            class: "candidate",
        },
    ];
    for (row, y) in rows.into_iter().zip(ROW_Y) {
        let Row {
            label,
            samples,
            outliers,
            colour,
            class,
        } = row;
        let _ = write!(
            s,
            r##"<text x="8" y="{:.1}" fill="#1d2125">{label} (n={})</text>"##,
            y + 4.0,
            samples.len()
        );
        // The mean and its interval, over the samples the comparison kept.
        let mut outliers_left: Vec<f64> = outliers.to_vec();
        let kept: Vec<f64> = samples
            .iter()
            .copied()
            .filter(|v| match outliers_left.iter().position(|o| o == v) {
                Some(i) => {
                    outliers_left.remove(i);
                    false
                }
                None => true,
            })
            .collect();
        if let Some((mean, half)) = mean_ci(&kept) {
            if let Some(h) = half.filter(|h| h.is_finite()) {
                let (a, b) = (x((mean - h).max(lo)), x((mean + h).min(hi)));
                let _ = write!(
                    s,
                    r#"<g class="ci" stroke="{colour}" stroke-width="2"><line x1="{a:.1}" y1="{y:.1}" x2="{b:.1}" y2="{y:.1}"/><line x1="{a:.1}" y1="{:.1}" x2="{a:.1}" y2="{:.1}"/><line x1="{b:.1}" y1="{:.1}" x2="{b:.1}" y2="{:.1}"/><title>95 % interval of the mean: {} to {}</title></g>"#,
                    y - 5.0,
                    y + 5.0,
                    y - 5.0,
                    y + 5.0,
                    esc(&num(mean - h)),
                    esc(&num(mean + h)),
                );
            }
            let _ = write!(
                s,
                r#"<line class="mean" x1="{m:.1}" y1="{:.1}" x2="{m:.1}" y2="{:.1}" stroke="{colour}" stroke-width="3"><title>mean {}</title></line>"#,
                y - 14.0,
                y + 14.0,
                esc(&num(mean)),
                m = x(mean),
            );
        }
        // One circle per sample, jittered over three lanes so equal values stay visible.
        let mut outliers_left: Vec<f64> = outliers.to_vec();
        for (i, v) in samples.iter().enumerate() {
            let outlier = match outliers_left.iter().position(|o| o == v) {
                Some(k) => {
                    outliers_left.remove(k);
                    true
                }
                None => false,
            };
            let dy = (i % 3) as f64 * 6.0 - 6.0;
            let fill = if outlier { "none" } else { colour };
            let note = if outlier {
                " (set aside as an outlier)"
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<circle class="{class}" cx="{:.1}" cy="{:.1}" r="4" fill="{fill}" fill-opacity="0.75" stroke="{colour}"><title>sample {}: {}{note}</title></circle>"#,
                x(*v),
                y + dy,
                i + 1,
                esc(&num(*v)),
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_and_intervals() {
        assert_eq!(t_975(4), 2.776);
        // Beyond the table, within 0.2 % of the true quantiles (60: 2.000, 120: 1.980).
        assert!((t_975(60) - 2.000).abs() < 0.004);
        assert!((t_975(120) - 1.980).abs() < 0.004);
        let (m, h) = mean_ci(&[9.0, 10.0, 11.0]).unwrap();
        assert_eq!(m, 10.0);
        // s = 1, n = 3: 4.303 / √3.
        assert!((h.unwrap() - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(mean_ci(&[5.0]), Some((5.0, None)));
        assert_eq!(mean_ci(&[]), None);
    }

    #[test]
    fn text_is_escaped_and_numbers_read_well() {
        assert_eq!(esc("a<b & \"c\"\n"), "a&lt;b &amp; &quot;c&quot; ");
        assert_eq!(num(1_677_002_501.0), "1.677e9");
        assert_eq!(num(712_034.7), "712035");
        assert_eq!(num(0.181), "0.181");
        assert_eq!(num(f64::NAN), "—");
    }
}
