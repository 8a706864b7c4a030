//! RAS checks beyond EDAC: PCIe Advanced Error Reporting counters.
//!
//! The kernel (drivers/pci/pcie/aer.c, Documentation/ABI/testing/
//! sysfs-bus-pci-devices-aer_stats) keeps per-device counters in
//! `aer_dev_correctable`, `aer_dev_nonfatal` and `aer_dev_fatal`: one
//! `NAME COUNT` line per error bit and a closing `TOTAL_ERR_COR`,
//! `TOTAL_ERR_NONFATAL` or `TOTAL_ERR_FATAL` line. Root ports also count the
//! error messages they received from below in `aer_rootport_total_err_cor`,
//! `…_fatal` and `…_nonfatal` (one number each).

use std::collections::BTreeMap;

use crate::checks::ras_delta;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;
use crate::walk;

/// The per-device counter files, with the severity each counts.
pub const AER_DEV_FILES: &[(&str, Severity)] = &[
    ("aer_dev_correctable", Severity::Corrected),
    ("aer_dev_nonfatal", Severity::NonFatal),
    ("aer_dev_fatal", Severity::Fatal),
];

/// The root-port totals, with the severity each counts.
pub const AER_ROOTPORT_FILES: &[(&str, Severity)] = &[
    ("aer_rootport_total_err_cor", Severity::Corrected),
    ("aer_rootport_total_err_nonfatal", Severity::NonFatal),
    ("aer_rootport_total_err_fatal", Severity::Fatal),
];

/// The severity of a PCIe error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Corrected,
    NonFatal,
    Fatal,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Corrected => "corrected",
            Severity::NonFatal => "uncorrected non-fatal",
            Severity::Fatal => "uncorrected fatal",
        }
    }
}

/// The AER walk over the PCI functions under `devices` (the real one is
/// `/sys/bus/pci/devices`). Each function with AER counters is a record
/// `@ BDF`; a counter line `NAME N` of file `F` becomes `F.NAME=N`, a
/// one-number file `F=N`, and a file that exists but cannot be read
/// `unreadable.F=1`.
pub fn aer_walk_at(devices: &str) -> String {
    let files: Vec<&str> = AER_DEV_FILES
        .iter()
        .chain(AER_ROOTPORT_FILES)
        .map(|(f, _)| *f)
        .collect();
    format!(
        r#": certlab aer-walk; for d in {devices}/*; do [ -e "$d/aer_dev_correctable" ] || [ -e "$d/aer_rootport_total_err_cor" ] || continue; echo "@ ${{d##*/}}"; for a in {files}; do [ -e "$d/$a" ] || continue; if [ -r "$d/$a" ] && c=$(cat "$d/$a" 2>/dev/null); then printf '%s\n' "$c" | while read -r k v; do [ -n "$k" ] || continue; if [ -z "$v" ]; then printf '%s=%s\n' "$a" "$k"; else printf '%s.%s=%s\n' "$a" "$k" "$v"; fi; done; else printf 'unreadable.%s=1\n' "$a"; fi; done; done; true"#,
        files = files.join(" ")
    )
}

/// The walk the check runs.
pub fn aer_walk() -> String {
    aer_walk_at("/sys/bus/pci/devices")
}

/// One counter that is not zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AerCount {
    /// The file it was read from (`aer_dev_fatal`, `aer_rootport_total_err_cor`, …).
    pub file: String,
    /// The error bit's name (`RxErr`, `MalfTLP`, …), empty for a root-port total.
    pub counter: String,
    pub severity: Severity,
    pub count: u64,
}

/// The AER counters of one PCI function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AerDevice {
    /// `dddd:bb:dd.f`
    pub address: String,
    /// Totals of the device's own counters per severity (the file's
    /// `TOTAL_ERR_*` line, else the sum of its bits).
    pub totals: BTreeMap<Severity, u64>,
    /// Root-port totals per severity (errors reported to it from below).
    pub rootport: BTreeMap<Severity, u64>,
    /// Every non-zero error bit.
    pub nonzero: Vec<AerCount>,
    /// Files present but unreadable.
    pub unreadable: Vec<String>,
}

/// Parses the output of [`aer_walk_at`]. A value that is not a counter is
/// an error naming the device, the file and the value.
pub fn parse_aer(text: &str) -> Result<Vec<AerDevice>, String> {
    let mut out = Vec::new();
    for (address, attrs) in walk::parse_records(text) {
        if address.is_empty() {
            continue;
        }
        let mut dev = AerDevice {
            address: address.clone(),
            ..AerDevice::default()
        };
        let mut sums: BTreeMap<Severity, u64> = BTreeMap::new();
        for (key, value) in &attrs {
            if let Some(f) = key.strip_prefix("unreadable.") {
                dev.unreadable.push(f.to_string());
                continue;
            }
            let (file, counter) = key.split_once('.').unwrap_or((key.as_str(), ""));
            let severity = if let Some((_, s)) = AER_DEV_FILES.iter().find(|(f, _)| *f == file) {
                *s
            } else if let Some((_, s)) = AER_ROOTPORT_FILES.iter().find(|(f, _)| *f == file) {
                *s
            } else {
                continue;
            };
            let count: u64 = value.parse().map_err(|_| {
                format!("{address}: {file}: `{counter}` is not a counter: `{value}`")
            })?;
            if AER_ROOTPORT_FILES.iter().any(|(f, _)| *f == file) {
                dev.rootport.insert(severity, count);
                if count > 0 {
                    dev.nonzero.push(AerCount {
                        file: file.to_string(),
                        counter: String::new(),
                        severity,
                        count,
                    });
                }
                continue;
            }
            if counter.starts_with("TOTAL_ERR_") {
                dev.totals.insert(severity, count);
                continue;
            }
            *sums.entry(severity).or_default() += count;
            if count > 0 {
                dev.nonzero.push(AerCount {
                    file: file.to_string(),
                    counter: counter.to_string(),
                    severity,
                    count,
                });
            }
        }
        for (s, n) in sums {
            dev.totals.entry(s).or_insert(n);
        }
        out.push(dev);
    }
    Ok(out)
}

fn device_name(ctx: &CaseCtx<'_>, address: &str) -> String {
    let Some(d) = ctx
        .profile
        .pci_devices
        .iter()
        .find(|d| d.address == address)
    else {
        return address.to_string();
    };
    match (&d.vendor_name, &d.device_name) {
        (Some(v), Some(n)) => format!("{address} ({v} {n})"),
        (None, Some(n)) => format!("{address} ({n})"),
        _ => format!("{address} [{:04x}:{:04x}]", d.vendor_id, d.device_id),
    }
}

/// PCIe AER counters of every PCI function.
///
/// Parameter `errors`: `"uncorrected"` (default) fails on any non-fatal or
/// fatal error and notes corrected ones; `"corrected"` fails when a
/// function's corrected errors exceed `max_corrected` (default 0) — a plan
/// makes that case a non-blocker, so it reads as a warning.
pub struct Aer;

impl Check for Aer {
    fn compares_with_baseline(&self) -> bool {
        true
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let corrected_only = ctx.param_str("errors", "uncorrected") == "corrected";
        let today = aer_since_boot(ctx)?;
        let today = ras_delta::with_uptime(ctx, today)?;
        ras_delta::against_baseline(ctx, today, &|n: &str| {
            n.starts_with("aer.")
                && if corrected_only {
                    n.ends_with(".corrected")
                } else {
                    n.ends_with(".nonfatal") || n.ends_with(".fatal")
                }
        })
    }
}

impl Severity {
    /// The last part of the severity's counter names (`aer.BDF.nonfatal`).
    pub fn key(self) -> &'static str {
        match self {
            Severity::Corrected => "corrected",
            Severity::NonFatal => "nonfatal",
            Severity::Fatal => "fatal",
        }
    }
}

/// Every function's totals per severity as metrics: `aer.BDF.SEVERITY`
/// for its own counters, `aer.BDF.rootport.SEVERITY` for a root port's.
pub fn aer_counters(devices: &[AerDevice]) -> Vec<certlab_reports::Metric> {
    let mut out = Vec::new();
    for d in devices {
        for (s, n) in &d.totals {
            out.push(ras_delta::counter(
                format!("aer.{}.{}", d.address, s.key()),
                *n,
            ));
        }
        for (s, n) in &d.rootport {
            out.push(ras_delta::counter(
                format!("aer.{}.rootport.{}", d.address, s.key()),
                *n,
            ));
        }
    }
    out
}

/// The AER counts since boot, judged by the plan's `errors`, with every
/// total read as a metric.
fn aer_since_boot(ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
    let judge = ctx.param_str("errors", "uncorrected");
    let corrected_only = match judge.as_str() {
        "uncorrected" => false,
        "corrected" => true,
        other => {
            return Err(CaseError::Infra(format!(
                "plan parameter `errors`: `{other}` is neither `uncorrected` nor `corrected`"
            )))
        }
    };
    let max_corrected = ctx.param_u64("max_corrected", 0);
    let script = aer_walk();
    let o = ctx.run(&script)?;
    if !o.success() {
        return Err(CaseError::Infra(format!(
            "the AER walk failed (exit {:?}): {}",
            o.exit,
            o.stderr_str().trim()
        )));
    }
    let devices = parse_aer(&o.stdout_str()).map_err(CaseError::Infra)?;
    if devices.is_empty() {
        return Ok(CaseOutcome::skip(
                "no PCI function exposes AER counters (no aer_dev_* in /sys/bus/pci/devices: a VM without PCIe AER, or a kernel without CONFIG_PCIEAER)",
            ));
    }
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut unreadable = Vec::new();
    let mut corrected_total = 0u64;
    for d in &devices {
        let name = device_name(ctx, &d.address);
        for f in &d.unreadable {
            unreadable.push(format!("{}/{f}", d.address));
        }
        let bits = |s: Severity| -> String {
            let v: Vec<String> = d
                .nonzero
                .iter()
                .filter(|c| c.severity == s)
                .map(|c| {
                    if c.counter.is_empty() {
                        format!("{} {}", c.file, c.count)
                    } else {
                        format!("{}.{} {}", c.file, c.counter, c.count)
                    }
                })
                .collect();
            v.join(", ")
        };
        let own = |s: Severity| d.totals.get(&s).copied().unwrap_or(0);
        let port = |s: Severity| d.rootport.get(&s).copied().unwrap_or(0);
        let corrected = own(Severity::Corrected).max(port(Severity::Corrected));
        corrected_total += own(Severity::Corrected);
        for s in [Severity::NonFatal, Severity::Fatal] {
            let n = own(s).max(port(s));
            if n > 0 {
                let line = format!("{name}: {n} {} errors ({})", s.as_str(), bits(s));
                if corrected_only {
                    notes.push(line);
                } else {
                    problems.push(line);
                }
            }
        }
        if corrected > 0 {
            let line = format!(
                "{name}: {corrected} corrected errors ({})",
                bits(Severity::Corrected)
            );
            if corrected_only && corrected > max_corrected {
                problems.push(format!("{line}, above the plan's limit {max_corrected}"));
            } else {
                notes.push(line);
            }
        }
    }
    let scope = format!(
        "{} PCI functions with AER counters, {corrected_total} corrected errors in all",
        devices.len()
    );
    if problems.is_empty() && !unreadable.is_empty() {
        return Ok(CaseOutcome::skip(format!(
            "AER counters could not be read, so the errors cannot be counted: {} ({scope})",
            unreadable.join(", ")
        )));
    }
    let mut tail = String::new();
    if !notes.is_empty() {
        tail.push_str(&format!("; noted: {}", notes.join("; ")));
    }
    if !unreadable.is_empty() {
        tail.push_str(&format!("; not readable: {}", unreadable.join(", ")));
    }
    let mut outcome = if problems.is_empty() {
        let what = if corrected_only {
            format!("no function has more than {max_corrected} corrected errors")
        } else {
            "no uncorrected (non-fatal or fatal) PCIe error".to_string()
        };
        CaseOutcome::pass(format!("{what}: {scope}{tail}"))
    } else {
        CaseOutcome::fail(format!("{}; {scope}{tail}", problems.join("; ")))
    };
    outcome.metrics = aer_counters(&devices);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counter_lines_totals_and_rootport_numbers() {
        let text = "@ 0000:00:03.0\naer_dev_correctable.RxErr=2\naer_dev_correctable.BadTLP=1\naer_dev_correctable.TOTAL_ERR_COR=3\naer_dev_fatal.DLP=0\naer_rootport_total_err_cor=5\n@ 0000:01:00.0\naer_dev_nonfatal.MalfTLP=4\nunreadable.aer_dev_fatal=1\n";
        let d = parse_aer(text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].totals[&Severity::Corrected], 3);
        assert_eq!(d[0].totals[&Severity::Fatal], 0);
        assert_eq!(d[0].rootport[&Severity::Corrected], 5);
        assert_eq!(d[0].nonzero.len(), 3);
        // No TOTAL line: the bits are summed.
        assert_eq!(d[1].totals[&Severity::NonFatal], 4);
        assert_eq!(d[1].unreadable, vec!["aer_dev_fatal".to_string()]);
        let err = parse_aer("@ 0000:01:00.0\naer_dev_fatal.DLP=lots\n").unwrap_err();
        assert!(err.contains("0000:01:00.0") && err.contains("DLP") && err.contains("lots"));
    }
}
