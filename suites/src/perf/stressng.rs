//! stress-ng's metrics, in both forms it writes them: the `--metrics` /
//! `--metrics-brief` table on its console, and the `metrics:` list of a
//! `--yaml FILE`. Both give, per stressor, the bogo operations per second of
//! real time and of user+system time, and the stressor-specific rates of
//! its "miscellaneous metrics" (`… per sec`); the two forms give the same
//! names.

use super::{metric, Better, Metric, ParseError};

const TOOL: &str = "stress-ng";

/// The metrics of a stress-ng console log (`--metrics` or `--metrics-brief`):
/// `STRESSOR.bogo_ops_per_sec_real`, `STRESSOR.bogo_ops_per_sec_usr_sys` and
/// `STRESSOR.<rate>-per-sec` from the miscellaneous metrics.
///
/// Each line is `stress-ng: LEVEL: [PID] TEXT`; the table starts at the
/// heading whose text begins with `stressor` and names `bogo ops`, and its
/// rows are a stressor's name followed by at least six numbers (bogo ops,
/// real, user and system seconds, the two rates; newer releases add CPU use
/// and RSS).
pub fn parse_text(text: &str) -> Result<Vec<Metric>, ParseError> {
    #[derive(PartialEq)]
    enum At {
        Outside,
        Table,
        Misc,
    }
    let mut at = At::Outside;
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line
            .strip_prefix("stress-ng:")
            .and_then(|r| r.split_once("] "))
            .map(|(_, r)| r.trim())
        else {
            continue;
        };
        if rest.starts_with("stressor") && rest.contains("bogo ops") {
            at = At::Table;
            continue;
        }
        if rest == "miscellaneous metrics:" {
            at = At::Misc;
            continue;
        }
        match at {
            At::Outside => {}
            At::Table => {
                if rest.starts_with('(') {
                    continue; // the heading's second line: units
                }
                let words: Vec<&str> = rest.split_whitespace().collect();
                let nums: Option<Vec<f64>> = words.iter().skip(1).map(|w| w.parse().ok()).collect();
                match nums {
                    Some(n) if n.len() >= 6 && n.iter().all(|v| v.is_finite()) => {
                        bogo(words[0], n[4], n[5], &mut out);
                    }
                    _ => at = At::Outside,
                }
            }
            At::Misc => {
                let mut words = rest.split_whitespace();
                let (Some(stressor), Some(value)) = (words.next(), words.next()) else {
                    at = At::Outside;
                    continue;
                };
                let Ok(value) = value.parse::<f64>() else {
                    at = At::Outside;
                    continue;
                };
                // The description, without its "(geometic mean of N instances)".
                let desc: Vec<&str> = words.take_while(|w| !w.starts_with('(')).collect();
                if let Some(m) = misc(stressor, &desc.join("-"), value) {
                    out.push(m);
                }
            }
        }
    }
    if out.is_empty() {
        return Err(ParseError::NoMetrics { tool: TOOL });
    }
    Ok(out)
}

/// The metrics of a stress-ng `--yaml` file's `metrics:` list (one entry
/// per stressor, `- stressor: NAME` then `key: value` lines), named as
/// [`parse_text`] names them.
pub fn parse_yaml(text: &str) -> Result<Vec<Metric>, ParseError> {
    let mut in_metrics = false;
    let mut stressor: Option<String> = None;
    let mut real = None;
    let mut usr_sys = None;
    let mut out = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            flush(&mut stressor, &mut real, &mut usr_sys, &mut out);
            in_metrics = line.trim_end() == "metrics:";
            continue;
        }
        if !in_metrics {
            continue;
        }
        let t = line.trim();
        let (t, new_item) = match t.strip_prefix("- ") {
            Some(r) => (r, true),
            None => (t, false),
        };
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim().trim_matches('\''));
        if new_item {
            flush(&mut stressor, &mut real, &mut usr_sys, &mut out);
        }
        if key == "stressor" {
            stressor = Some(value.to_string());
            continue;
        }
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        match key {
            "bogo-ops-per-second-real-time" => real = Some(v),
            "bogo-ops-per-second-usr-sys-time" => usr_sys = Some(v),
            k => {
                if let Some(m) = stressor.as_deref().and_then(|s| misc(s, k, v)) {
                    out.push(m);
                }
            }
        }
    }
    flush(&mut stressor, &mut real, &mut usr_sys, &mut out);
    if out.is_empty() {
        return Err(ParseError::NoMetrics { tool: TOOL });
    }
    Ok(out)
}

/// Emits the pending stressor's bogo-op rates, once both were read.
fn flush(
    stressor: &mut Option<String>,
    real: &mut Option<f64>,
    usr_sys: &mut Option<f64>,
    out: &mut Vec<Metric>,
) {
    if let (Some(name), Some(r), Some(u)) = (stressor.take(), real.take(), usr_sys.take()) {
        bogo(&name, r, u, out);
    }
}

fn bogo(stressor: &str, real: f64, usr_sys: f64, out: &mut Vec<Metric>) {
    for (what, v) in [("real", real), ("usr_sys", usr_sys)] {
        if v.is_finite() {
            out.push(metric(
                format!("{stressor}.bogo_ops_per_sec_{what}"),
                v,
                "bogo-ops/s",
                Better::Higher,
            ));
        }
    }
}

/// A stressor-specific rate (`add-matrix-ops-per-sec`): higher is better,
/// its unit the word before `per-sec` over seconds. Other miscellaneous
/// metrics have no direction stress-ng states, and are left out.
fn misc(stressor: &str, key: &str, value: f64) -> Option<Metric> {
    let head = key.strip_suffix("-per-sec")?;
    let what = head.rsplit('-').next().filter(|w| !w.is_empty())?;
    value.is_finite().then(|| {
        metric(
            format!("{stressor}.{key}"),
            value,
            &format!("{what}/s"),
            Better::Higher,
        )
    })
}
