//! `iperf3 -J` (client side, any 3.x): the throughput the sender sent and
//! the receiver received (bits/s), TCP retransmits, and for UDP the jitter
//! (ms) and the datagrams lost (%). A report with a top-level `error` (the
//! server refused, the test aborted) fails the parse.

use serde_json::Value;

use super::{metric, Better, Metric, ParseError};

const TOOL: &str = "iperf3";

/// The metrics of an iperf3 JSON report: `sent.bits_per_second`,
/// `received.bits_per_second`, `sent.retransmits` (TCP), `jitter`,
/// `lost_percent` (UDP).
pub fn parse(text: &str) -> Result<Vec<Metric>, ParseError> {
    let v: Value = serde_json::from_str(text)?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(ParseError::ToolFailed {
            tool: TOOL,
            why: e.to_string(),
        });
    }
    let end = v.get("end").ok_or(ParseError::Format {
        tool: TOOL,
        why: "no `end` object".into(),
    })?;
    let num = |o: &str, k: &str| end.get(o).and_then(|s| s.get(k)).and_then(Value::as_f64);
    let mut out = Vec::new();
    if let Some(b) = num("sum_sent", "bits_per_second") {
        out.push(metric(
            "sent.bits_per_second".into(),
            b,
            "bit/s",
            Better::Higher,
        ));
    }
    if let Some(b) = num("sum_received", "bits_per_second") {
        out.push(metric(
            "received.bits_per_second".into(),
            b,
            "bit/s",
            Better::Higher,
        ));
    }
    if let Some(r) = num("sum_sent", "retransmits") {
        out.push(metric("sent.retransmits".into(), r, "count", Better::Lower));
    }
    // UDP: `end.sum` carries the receiver's view of loss and jitter.
    if let Some(j) = num("sum", "jitter_ms") {
        out.push(metric("jitter".into(), j, "ms", Better::Lower));
    }
    if let Some(l) = num("sum", "lost_percent") {
        out.push(metric("lost_percent".into(), l, "%", Better::Lower));
    }
    if out.is_empty() {
        return Err(ParseError::NoMetrics { tool: TOOL });
    }
    Ok(out)
}
