//! Time checks: a sane clock source and synchronised time.

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

/// Clock sources that mean the hardware clocks were found unusable.
const FALLBACK_CLOCKSOURCES: &[&str] = &["jiffies", "refined-jiffies"];

/// The offset from `chronyc tracking` (`System time : 0.000012 seconds fast of NTP time`).
pub fn chrony_offset_seconds(text: &str) -> Option<f64> {
    let v = tracking_field(text, "System time")?;
    let mut it = v.split_whitespace();
    let secs: f64 = it.next()?.parse().ok()?;
    let _unit = it.next()?;
    Some(if it.next() == Some("slow") {
        -secs
    } else {
        secs
    })
}

/// The value of a `Name : value` line of `chronyc tracking`.
fn tracking_field<'t>(text: &'t str, name: &str) -> Option<&'t str> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// What `chronyc tracking` says about the system clock.
#[derive(Debug, Clone, PartialEq)]
pub struct ChronyTracking {
    /// `Reference ID` as printed (`7F000001 (127.0.0.1)`; `00000000 ()` when none).
    pub reference: String,
    pub stratum: Option<u32>,
    /// `System time`: positive when the clock is fast of NTP time.
    pub offset_s: Option<f64>,
    /// `Leap status`: `Normal`, `Insert second`, `Delete second` or `Not synchronised`.
    pub leap: String,
}

impl ChronyTracking {
    /// Parses `chronyc tracking`; `None` when the text has no leap status
    /// (chronyc could not talk to chronyd, or printed something else).
    pub fn parse(text: &str) -> Option<ChronyTracking> {
        Some(ChronyTracking {
            leap: tracking_field(text, "Leap status")?.to_string(),
            reference: tracking_field(text, "Reference ID")
                .unwrap_or_default()
                .to_string(),
            stratum: tracking_field(text, "Stratum").and_then(|s| s.parse().ok()),
            offset_s: chrony_offset_seconds(text),
        })
    }

    /// chronyd considers the clock synchronised: any leap status but
    /// `Not synchronised` (chrony's `LEAP_Unsynchronised`).
    pub fn leap_synchronised(&self) -> bool {
        !self.leap.eq_ignore_ascii_case("Not synchronised")
            && !self.leap.eq_ignore_ascii_case("Not synchronized")
    }
}

/// One line of `chronyc sources`: mode (`^` server, `=` peer, `#` refclock),
/// state (`*` selected, `+` combined, `-` not combined, `?` unreachable,
/// `x` falseticker, `~` too variable) and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChronySource {
    pub mode: char,
    pub state: char,
    pub name: String,
}

/// Parses the source lines of `chronyc sources` (header lines are skipped).
pub fn chrony_sources(text: &str) -> Vec<ChronySource> {
    text.lines()
        .filter_map(|l| {
            let mut chars = l.chars();
            let (mode, state) = (chars.next()?, chars.next()?);
            if !"^=#".contains(mode) || !"*+-?x~".contains(state) {
                return None;
            }
            let name = l.get(2..)?.split_whitespace().next()?.to_string();
            Some(ChronySource { mode, state, name })
        })
        .collect()
}

/// What one tool said about time synchronisation.
enum SyncState {
    Yes(String),
    No(String),
    /// The tool did not answer, and why.
    Unknown(String),
}

fn timedatectl_sync(ctx: &CaseCtx<'_>) -> Result<SyncState, CaseError> {
    let o = ctx.run("timedatectl show -p NTPSynchronized --value")?;
    let said = o.stdout_str();
    Ok(match (o.exit, said.trim()) {
        (Some(0), "yes") => SyncState::Yes("timedatectl reports NTPSynchronized=yes".to_string()),
        (Some(0), "no") => SyncState::No("timedatectl reports NTPSynchronized=no".to_string()),
        (Some(127), _) => SyncState::Unknown("timedatectl is not installed".to_string()),
        (exit, _) => SyncState::Unknown(format!(
            "timedatectl did not answer ({}): {}",
            exit_status(exit),
            first_line(&o.stderr_str(), &said)
        )),
    })
}

fn chrony_sync(ctx: &CaseCtx<'_>) -> Result<(SyncState, Option<f64>), CaseError> {
    let o = ctx.run("chronyc -n tracking")?;
    if o.exit == Some(127) {
        return Ok((
            SyncState::Unknown("chronyc is not installed".to_string()),
            None,
        ));
    }
    let text = o.stdout_str();
    let tracking = ChronyTracking::parse(&text).filter(|_| o.success());
    let Some(t) = tracking else {
        return Ok((
            SyncState::Unknown(format!(
                "chronyc did not answer ({}): {}",
                exit_status(o.exit),
                first_line(&o.stderr_str(), &text)
            )),
            None,
        ));
    };
    let s = ctx.run("chronyc -n sources")?;
    let sources = if s.success() {
        Some(chrony_sources(&s.stdout_str()))
    } else {
        None
    };
    let selected = sources
        .as_ref()
        .and_then(|v| v.iter().find(|src| src.state == '*'))
        .map(|src| src.name.clone());
    let described = format!(
        "chrony: leap status {}, reference {}, stratum {}",
        t.leap,
        if t.reference.is_empty() {
            "none"
        } else {
            &t.reference
        },
        t.stratum.map_or("?".to_string(), |s| s.to_string())
    );
    if !t.leap_synchronised() {
        return Ok((SyncState::No(described), None));
    }
    Ok(match (selected, sources) {
        (Some(name), _) => (
            SyncState::Yes(format!("{described}, selected source {name}")),
            t.offset_s,
        ),
        (None, Some(v)) => (
            SyncState::No(format!(
                "{described}, but no source is selected ({} sources: {})",
                v.len(),
                v.iter()
                    .map(|s| format!("{}{} {}", s.mode, s.state, s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None,
        ),
        (None, None) => (
            SyncState::Unknown(format!(
                "{described}, but `chronyc sources` did not answer ({}): {}",
                exit_status(s.exit),
                first_line(&s.stderr_str(), &s.stdout_str())
            )),
            None,
        ),
    })
}

/// `exit 1`, or `killed` when the command had no exit status.
fn exit_status(exit: Option<i32>) -> String {
    exit.map_or("killed".to_string(), |c| format!("exit {c}"))
}

/// The first non-empty line of `a`, else of `b`.
fn first_line(a: &str, b: &str) -> String {
    a.lines()
        .chain(b.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output")
        .to_string()
}

/// The clock source is a hardware counter and time is synchronised.
///
/// Synchronisation is judged from what chrony says (its leap status and a
/// selected source) and from systemd-timedated (the kernel's
/// unsynchronised flag): any tool that answers "not synchronised" fails the
/// case, a clean clock passes only when a tool answered "synchronised", and
/// when neither could tell the case is skipped with both reasons.
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
        let timedated = timedatectl_sync(ctx)?;
        let (chrony, offset) = chrony_sync(ctx)?;
        let mut synced = false;
        let mut unknown = Vec::new();
        for said in [timedated, chrony] {
            match said {
                SyncState::Yes(f) => {
                    synced = true;
                    facts.push(f);
                }
                SyncState::No(f) => problems.push(format!("time is not synchronised: {f}")),
                SyncState::Unknown(why) => unknown.push(why),
            }
        }
        let mut metrics = Vec::new();
        // The offset means something only while chrony steers the clock: an
        // unsynchronised chronyd prints 0.000000000 seconds.
        if let Some(off) = offset {
            facts.push(format!("chrony offset {off:.6} s"));
            metrics.push(certlab_reports::Metric {
                name: "clock_offset".to_string(),
                value: off.abs(),
                unit: "s".to_string(),
                better: certlab_reports::Better::Lower,
            });
            let max_offset = ctx.param_f64("max_offset_s", 0.5);
            if off.abs() > max_offset {
                problems.push(format!(
                    "clock is {off:.3} s off NTP time (limit {max_offset} s)"
                ));
            }
        }
        if !unknown.is_empty() {
            facts.push(unknown.join("; "));
        }
        let mut outcome = if !problems.is_empty() {
            CaseOutcome::fail(format!("{}; {}", problems.join("; "), facts.join("; ")))
        } else if !synced {
            CaseOutcome::skip(format!(
                "synchronisation state not determinable: {}",
                facts.join("; ")
            ))
        } else {
            CaseOutcome::pass(facts.join("; "))
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

    #[test]
    fn chrony_leap_status_and_sources() {
        let t = ChronyTracking::parse(
            "Reference ID    : 00000000 ()\nStratum         : 0\nSystem time     : 0.000000000 seconds fast of NTP time\nLeap status     : Not synchronised\n",
        )
        .unwrap();
        assert!(!t.leap_synchronised());
        assert_eq!(t.stratum, Some(0));
        assert_eq!(ChronyTracking::parse("506 Cannot talk to daemon\n"), None);
        let s = chrony_sources(
            "MS Name/IP address         Stratum Poll Reach LastRx Last sample\n===\n^* 10.0.0.1   2   6   377    12   -1us[  -2us] +/-  10ms\n^? 10.0.0.2   0   6     0     -     +0ns[   +0ns] +/-    0ns\n",
        );
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].state, s[0].name.as_str()), ('*', "10.0.0.1"));
        assert_eq!(s[1].state, '?');
    }
}
