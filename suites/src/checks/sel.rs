//! The BMC's system event log over the run (`ras.sel`).
//!
//! Only the orchestrator talks to BMCs (`lab`), and it notes where the SEL
//! stood when the run began (`harness::sut::BmcSut`). For this check
//! ([`Check::needs_bmc_sel`]) it reads the entries added since then just
//! before the case runs and hands them over ([`CaseCtx::with_bmc_sel`]). A
//! run without a BMC connection (`certlab certify --local`, a machine
//! without `[machine.bmc]`) skips the case and says so.
//!
//! The entries come decoded by `lab`: an IPMI record's sensor type (IPMI 2.0
//! table 42-3) and its event offset give its severity
//! (`lab::bmc::ipmi::codec`: e.g. Memory "Uncorrectable ECC" and Critical
//! Interrupt "Bus Uncorrectable error" are critical, "Correctable ECC" a
//! warning, a deasserted event ok); a Redfish entry carries its own
//! `Severity`. This check groups them by what they are about.

use certlab_lab::bmc::{Health, SelEntry};
use certlab_reports::{Better, Metric};

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

/// How many entries a reason names before it says "and N more".
const NAMED: usize = 8;

/// What an entry is about, from its sensor type (IPMI names, Redfish
/// `SensorType` with or without spaces).
pub fn area(sensor_type: Option<&str>) -> &'static str {
    let t: String = sensor_type
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    match t.as_str() {
        "memory" | "postmemoryresize" => "memory",
        "criticalinterrupt" => "PCIe/bus (critical interrupt)",
        "processor" | "chipset" => "processor",
        "oscriticalstop" => "OS critical stop",
        "watchdog1" | "watchdog2" | "watchdog" => "watchdog",
        "powersupply" | "powerunit" | "battery" => "power",
        "temperature" | "fan" | "voltage" | "current" | "coolingdevice" => "environment",
        "driveslotbay" | "drive" => "drives",
        "systemfirmwares" | "systemfirmwareprogress" | "booterror" => "firmware/boot",
        "" => "unknown sensor",
        _ => "other",
    }
}

fn line(e: &SelEntry) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\n",
        e.id,
        e.timestamp
            .and_then(|t| t
                .format(&time::format_description::well_known::Rfc3339)
                .ok())
            .unwrap_or_else(|| "-".into()),
        e.severity,
        e.sensor_type.as_deref().unwrap_or(""),
        e.message
    )
}

/// Judges the entries of a run's SEL: pure, so tests can drive it.
pub fn judge(entries: &[SelEntry], fail_on_warning: bool) -> CaseOutcome {
    let of = |h: Health| -> Vec<&SelEntry> { entries.iter().filter(|e| e.severity == h).collect() };
    let critical = of(Health::Critical);
    let warning = of(Health::Warning);
    let unknown = of(Health::Unknown);
    let name = |v: &[&SelEntry]| -> String {
        let mut out: Vec<String> = v
            .iter()
            .take(NAMED)
            .map(|e| {
                format!(
                    "record {} [{}] {}",
                    e.id,
                    area(e.sensor_type.as_deref()),
                    e.message
                )
            })
            .collect();
        if v.len() > NAMED {
            out.push(format!("and {} more", v.len() - NAMED));
        }
        out.join("; ")
    };
    let mut areas: Vec<(&str, usize)> = Vec::new();
    for e in entries
        .iter()
        .filter(|e| matches!(e.severity, Health::Critical | Health::Warning))
    {
        let a = area(e.sensor_type.as_deref());
        match areas.iter_mut().find(|(x, _)| *x == a) {
            Some((_, n)) => *n += 1,
            None => areas.push((a, 1)),
        }
    }
    let scope = format!(
        "{} SEL entries since the run began: {} critical, {} warning, {} not classified{}",
        entries.len(),
        critical.len(),
        warning.len(),
        unknown.len(),
        if areas.is_empty() {
            String::new()
        } else {
            format!(
                " (by area: {})",
                areas
                    .iter()
                    .map(|(a, n)| format!("{a} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let mut notes = Vec::new();
    if !warning.is_empty() && !fail_on_warning {
        notes.push(format!("warnings: {}", name(&warning)));
    }
    if !unknown.is_empty() {
        notes.push(format!(
            "not classified (OEM records, event types without a severity): {}",
            name(&unknown)
        ));
    }
    let tail = if notes.is_empty() {
        String::new()
    } else {
        format!("; noted: {}", notes.join("; "))
    };
    let outcome = if !critical.is_empty() {
        CaseOutcome::fail(format!(
            "critical SEL entries: {}; {scope}{tail}",
            name(&critical)
        ))
    } else if fail_on_warning && !warning.is_empty() {
        CaseOutcome::fail(format!(
            "SEL warnings (the plan fails on them): {}; {scope}{tail}",
            name(&warning)
        ))
    } else {
        CaseOutcome::pass(format!("no critical SEL entry; {scope}{tail}"))
    };
    outcome
        .metric(Metric {
            name: "sel.critical".into(),
            value: critical.len() as f64,
            unit: "entries".into(),
            better: Better::Lower,
        })
        .metric(Metric {
            name: "sel.warning".into(),
            value: warning.len() as f64,
            unit: "entries".into(),
            better: Better::Lower,
        })
}

/// The BMC's system event log entries added during the run.
///
/// Fails on a critical entry (memory uncorrectable ECC, PCIe/bus
/// uncorrectable or fatal errors, processor IERR/uncorrectable machine
/// check/thermal trip, OS critical stop, power supply failure, critical
/// thresholds…). Parameter `fail_on` = `"critical"` (default) or
/// `"warning"` (warnings fail too: correctable ECC, non-critical
/// thresholds, predictive failures).
pub struct SelDelta;

impl Check for SelDelta {
    fn needs_bmc_sel(&self) -> bool {
        true
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let fail_on_warning = match ctx.param_str("fail_on", "critical").as_str() {
            "critical" => false,
            "warning" => true,
            other => {
                return Err(CaseError::Infra(format!(
                    "plan parameter `fail_on`: `{other}` is neither `critical` nor `warning`"
                )))
            }
        };
        let entries = match ctx.bmc_sel() {
            None => {
                // Recorded, so the skip rests on something: what the case
                // was given.
                ctx.record_bmc("sel", b"no BMC connection in this run\n")?;
                return Ok(CaseOutcome::skip(
                    "the SEL delta is read by the orchestrator through the machine's BMC, and this run has no BMC connection (a local run, or a machine without [machine.bmc] in lab.toml); the lab runs it (certlab daemon)",
                ));
            }
            // The BMC did not answer: the lab's trouble, not the product's.
            Some(Err(e)) => {
                ctx.record_bmc("sel", format!("{e}\n").as_bytes())?;
                return Err(CaseError::Infra(format!(
                    "the BMC's event log could not be read: {e}"
                )));
            }
            Some(Ok(entries)) => entries,
        };
        let text: String = entries.iter().map(line).collect();
        ctx.record_bmc("sel", text.as_bytes())?;
        Ok(judge(entries, fail_on_warning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_by_sensor_type() {
        assert_eq!(area(Some("Memory")), "memory");
        assert_eq!(
            area(Some("Critical Interrupt")),
            "PCIe/bus (critical interrupt)"
        );
        assert_eq!(
            area(Some("CriticalInterrupt")),
            "PCIe/bus (critical interrupt)"
        );
        assert_eq!(area(Some("OS Critical Stop")), "OS critical stop");
        assert_eq!(area(Some("Drive Slot / Bay")), "drives");
        assert_eq!(area(None), "unknown sensor");
    }
}
