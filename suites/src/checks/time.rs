//! Time checks: a sane clock source and synchronised time.

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

/// Clock sources that mean the hardware clocks were found unusable.
const FALLBACK_CLOCKSOURCES: &[&str] = &["jiffies", "refined-jiffies"];

/// The offset from `chronyc tracking` (`System time : 0.000012 seconds fast of NTP time`).
pub fn chrony_offset_seconds(text: &str) -> Option<f64> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("System time"))?;
    let v = line.split(':').nth(1)?;
    let mut it = v.split_whitespace();
    let secs: f64 = it.next()?.parse().ok()?;
    let _unit = it.next()?;
    Some(if it.next() == Some("slow") {
        -secs
    } else {
        secs
    })
}

/// The clock source is a hardware counter and time is synchronised (or its state reported).
pub struct Clock;

impl Check for Clock {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let base = "/sys/devices/system/clocksource/clocksource0";
        let (Some(current), Some(available)) = (
            ctx.read(&format!("{base}/current_clocksource"))?,
            ctx.read(&format!("{base}/available_clocksource"))?,
        ) else {
            return Ok(CaseOutcome::skip(
                "the kernel exposes no clocksource in sysfs",
            ));
        };
        let current = current.trim().to_string();
        let available: Vec<&str> = available.split_whitespace().collect();
        let mut problems = Vec::new();
        let mut facts = vec![format!(
            "clocksource {current} (available: {})",
            available.join(" ")
        )];
        if FALLBACK_CLOCKSOURCES.contains(&current.as_str()) {
            problems.push(format!(
                "the kernel fell back to the {current} clocksource: no usable hardware counter"
            ));
        }
        // On x86 a working TSC is always preferred; running on hpet or acpi_pm
        // while tsc is listed means the kernel found the TSC unstable.
        if available.contains(&"tsc") && (current == "hpet" || current == "acpi_pm") {
            problems.push(format!(
                "running on {current} although tsc is available: the TSC was marked unstable"
            ));
        }
        let mut metrics = Vec::new();
        let sync = if ctx.target.has_command("timedatectl") {
            let o = ctx.run("timedatectl show -p NTPSynchronized --value")?;
            match o.stdout_str().trim() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            }
        } else {
            None
        };
        let chrony = if ctx.target.has_command("chronyc") {
            let o = ctx.run("chronyc -n tracking")?;
            if o.success() {
                chrony_offset_seconds(&o.stdout_str())
            } else {
                None
            }
        } else {
            None
        };
        if let Some(off) = chrony {
            facts.push(format!("chrony offset {:.6} s", off));
            metrics.push(certlab_reports::Metric {
                name: "clock_offset".to_string(),
                value: off.abs(),
                unit: "s".to_string(),
                better: certlab_reports::Better::Lower,
            });
        }
        match (sync, chrony) {
            (Some(true), _) => facts.push("time synchronised (systemd-timedated)".to_string()),
            (Some(false), None) => problems.push(
                "time is not synchronised: timedatectl reports NTPSynchronized=no".to_string(),
            ),
            (Some(false), Some(_)) | (None, Some(_)) => {
                facts.push("time synchronised by chrony".to_string())
            }
            (None, None) => facts.push(
                "synchronisation state not determinable (no timedatectl or chronyc answered)"
                    .to_string(),
            ),
        }
        let max_offset = ctx.param_f64("max_offset_s", 0.5);
        if let Some(off) = chrony {
            if off.abs() > max_offset {
                problems.push(format!(
                    "clock is {off:.3} s off NTP time (limit {max_offset} s)"
                ));
            }
        }
        let mut outcome = if problems.is_empty() {
            CaseOutcome::pass(facts.join("; "))
        } else {
            CaseOutcome::fail(format!("{}; {}", problems.join("; "), facts.join("; ")))
        };
        outcome.metrics = metrics;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chrony_offsets() {
        let t = "Reference ID    : C0A80001 (router)\nSystem time     : 0.000012345 seconds slow of NTP time\n";
        assert_eq!(chrony_offset_seconds(t), Some(-0.000012345));
        let t = "System time     : 1.5 seconds fast of NTP time\n";
        assert_eq!(chrony_offset_seconds(t), Some(1.5));
        assert_eq!(chrony_offset_seconds(""), None);
    }
}
