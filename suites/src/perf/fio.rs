//! `fio --output-format=json`, every layout since fio 2.1: per job and per
//! data direction (read, write, trim) with I/O, the bandwidth (bytes/s), IOPS
//! and completion latency (mean and the 50th, 95th, 99th and 99.9th
//! percentiles, in ns).
//!
//! The layouts differ by version, and each says which it is by its keys:
//! fio 3.0 replaced `clat` (µs) with `clat_ns` (ns); `bw` has always been
//! KiB/s, and fio 3.x adds `bw_bytes` (bytes/s). A direction is skipped when
//! it moved no data (`iops` and `bw` zero: fio prints every direction of
//! every job). A job whose `error` is not 0 fails the parse: its figures are
//! not a measurement. Notes fio prints on stdout before the report are
//! skipped.

use serde_json::Value;

use super::{metric, Better, Metric, ParseError};

const TOOL: &str = "fio";
/// The completion-latency percentiles reported, as fio names them.
const PERCENTILES: [(&str, f64); 4] =
    [("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9)];

/// The metrics of a fio JSON report, named `JOB.DIRECTION.FIGURE` (`bw`,
/// `iops`, `clat_mean`, `clat_p50`, …). Jobs sharing a name (`numjobs`
/// without `group_reporting`) are told apart as `JOB#1`, `JOB#2`, ….
pub fn parse(text: &str) -> Result<Vec<Metric>, ParseError> {
    let v: Value = serde_json::from_str(json_part(text))?;
    let format = |why: &str| ParseError::Format {
        tool: TOOL,
        why: why.to_string(),
    };
    let jobs = v
        .get("jobs")
        .and_then(Value::as_array)
        .ok_or_else(|| format("no `jobs` array"))?;
    let names: Vec<&str> = jobs
        .iter()
        .map(|j| j.get("jobname").and_then(Value::as_str).unwrap_or(""))
        .collect();
    let mut out = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        let name = names[i];
        if name.is_empty() {
            return Err(format(&format!("job {} has no `jobname`", i + 1)));
        }
        let error = job.get("error").and_then(Value::as_i64).unwrap_or(0);
        if error != 0 {
            return Err(ParseError::ToolFailed {
                tool: TOOL,
                why: format!("job `{name}` ended with error {error}"),
            });
        }
        let same = names.iter().filter(|n| **n == name).count();
        let label = if same > 1 {
            let nth = names[..=i].iter().filter(|n| **n == name).count();
            format!("{name}#{nth}")
        } else {
            name.to_string()
        };
        for dir in ["read", "write", "trim"] {
            if let Some(d) = job.get(dir) {
                direction(&label, dir, d, &mut out)
                    .map_err(|why| format(&format!("job `{name}` {dir}: {why}")))?;
            }
        }
    }
    if out.is_empty() {
        return Err(ParseError::NoMetrics { tool: TOOL });
    }
    Ok(out)
}

/// The report without what fio may print before it on stdout (notes such
/// as "note: both iodepth >= 1 and synchronous I/O engine are selected, queue
/// depth will be capped at 1"): from the first line that opens an object.
fn json_part(text: &str) -> &str {
    if text.trim_start().starts_with('{') {
        return text;
    }
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "{" {
            return &text[at..];
        }
        at += line.len();
    }
    text
}

fn direction(job: &str, dir: &str, d: &Value, out: &mut Vec<Metric>) -> Result<(), String> {
    let num = |k: &str| d.get(k).and_then(Value::as_f64);
    let iops = num("iops").ok_or("no `iops`")?;
    let bw = match num("bw_bytes") {
        Some(b) => b,
        None => num("bw").ok_or("no `bw`")? * 1024.0,
    };
    if iops == 0.0 && bw == 0.0 {
        return Ok(());
    }
    let name = |figure: &str| format!("{job}.{dir}.{figure}");
    out.push(metric(name("bw"), bw, "B/s", Better::Higher));
    out.push(metric(name("iops"), iops, "IO/s", Better::Higher));
    let (clat, scale) = match (d.get("clat_ns"), d.get("clat")) {
        (Some(c), _) => (c, 1.0),
        (None, Some(c)) => (c, 1000.0),
        (None, None) => return Err("no `clat_ns` or `clat`".into()),
    };
    if let Some(mean) = clat.get("mean").and_then(Value::as_f64) {
        out.push(metric(name("clat_mean"), mean * scale, "ns", Better::Lower));
    }
    if let Some(pcts) = clat.get("percentile").and_then(Value::as_object) {
        for (label, want) in PERCENTILES {
            let found = pcts
                .iter()
                .find(|(k, _)| k.parse::<f64>().is_ok_and(|p| (p - want).abs() < 1e-9));
            if let Some(v) = found.and_then(|(_, v)| v.as_f64()) {
                out.push(metric(
                    name(&format!("clat_{label}")),
                    v * scale,
                    "ns",
                    Better::Lower,
                ));
            }
        }
    }
    Ok(())
}
