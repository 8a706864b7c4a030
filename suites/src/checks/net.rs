//! Network checks: every physical NIC has a driver and reports its link.

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;
use crate::walk;

/// Every physical network interface is driven and reports link state.
pub struct Nics;

impl Check for Nics {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let out = ctx.run(walk::NET_WALK)?;
        let recs = walk::parse_records(&out.stdout_str());
        let physical: Vec<_> = recs
            .iter()
            .filter(|(_, a)| a.contains_key("has_device") && !a.contains_key("virtual"))
            .collect();
        if physical.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "no physical network interfaces ({} virtual ones: {})",
                recs.len(),
                recs.iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let mut problems = Vec::new();
        let mut states = Vec::new();
        for (name, a) in &physical {
            let driver = a.get("driver");
            let oper = a.get("operstate").map(String::as_str).unwrap_or("");
            // carrier reads fail (EINVAL) while the interface is down: that is "unknown", not an error.
            let carrier = match a.get("carrier").map(String::as_str) {
                Some("1") => "carrier",
                Some("0") => "no carrier",
                _ => "carrier unknown",
            };
            let speed = a
                .get("speed")
                .filter(|s| s.parse::<i64>().is_ok_and(|v| v > 0))
                .map(|s| format!(", {s} Mb/s"))
                .unwrap_or_default();
            states.push(format!(
                "{name} ({}): {oper}, {carrier}{speed}",
                driver.map_or("no driver", String::as_str)
            ));
            if driver.is_none() {
                problems.push(format!("{name} has no driver bound"));
            }
            if oper.is_empty() {
                problems.push(format!("{name} reports no operstate"));
            }
        }
        if problems.is_empty() {
            Ok(CaseOutcome::pass(states.join("; ")))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{}; {}",
                problems.join("; "),
                states.join("; ")
            )))
        }
    }
}
