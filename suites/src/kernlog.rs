//! The kernel-log classifier behind `certlab ras scan`: hardware-error and
//! kernel-failure reports in a kernel log, one [`KernelEvent`] per report.
//!
//! Input is any of `dmesg` (with or without `[ 12.345678]` timestamps, `-T`,
//! `--decode`, `--time-format iso`), `/dev/kmsg` records, pstore/ERST dumps
//! (`<4>[ … ]`) and `journalctl -k` short format (`Mon DD HH:MM:SS host
//! kernel: …`; lines of other programs in a syslog-style file are ignored).
//!
//! The message formats are the kernel's own: `drivers/pci/pcie/aer.c`
//! ("AER: Corrected error received", "PCIe Bus Error: severity=…"),
//! `drivers/firmware/efi/cper.c` + `drivers/acpi/apei/ghes.c`
//! ("{N}[Hardware Error]: …"), `arch/x86/kernel/cpu/mce/`, `drivers/edac/edac_mc.c`
//! ("EDAC MCn: N CE|UE …"), `kernel/watchdog.c`, `kernel/hung_task.c`,
//! `kernel/panic.c`, `drivers/gpu/drm/amd/amdgpu/amdgpu_ras.c` and NVIDIA's
//! "NVRM: Xid (PCI:…): CODE, …". A multi-line report (AER, GHES, MCE, oops)
//! is one event on its first line; its continuation lines are absorbed.

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

/// What a kernel-log event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// x86 machine check (`mce: [Hardware Error]`, "Machine Check Exception").
    Mce,
    /// EDAC corrected memory error.
    EdacCe,
    /// EDAC uncorrected memory error.
    EdacUe,
    /// PCIe AER, corrected.
    AerCorrected,
    /// PCIe AER, uncorrected non-fatal.
    AerUncorrectedNonfatal,
    /// PCIe AER, uncorrected fatal.
    AerFatal,
    /// APEI GHES (firmware-first) hardware error record.
    Ghes,
    /// NVIDIA Xid.
    Xid,
    /// AMD GPU RAS (ECC / poison) error.
    AmdgpuRas,
    /// Kernel oops / BUG / general protection fault.
    Oops,
    /// Kernel panic.
    Panic,
    /// Soft lockup (kernel/watchdog.c).
    SoftLockup,
    /// Hard lockup (NMI watchdog).
    HardLockup,
    /// Hung task (kernel/hung_task.c).
    HungTask,
}

impl EventKind {
    /// The snake_case name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Mce => "mce",
            EventKind::EdacCe => "edac_ce",
            EventKind::EdacUe => "edac_ue",
            EventKind::AerCorrected => "aer_corrected",
            EventKind::AerUncorrectedNonfatal => "aer_uncorrected_nonfatal",
            EventKind::AerFatal => "aer_fatal",
            EventKind::Ghes => "ghes",
            EventKind::Xid => "xid",
            EventKind::AmdgpuRas => "amdgpu_ras",
            EventKind::Oops => "oops",
            EventKind::Panic => "panic",
            EventKind::SoftLockup => "soft_lockup",
            EventKind::HardLockup => "hard_lockup",
            EventKind::HungTask => "hung_task",
        }
    }
}

/// One report found in a kernel log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelEvent {
    /// The kind of report.
    pub kind: EventKind,
    /// 1-based line number of the report's first line in the input.
    pub line: usize,
    /// That line, as it was (trailing whitespace trimmed).
    pub text: String,
    /// Kind-specific detail: the Xid code; AER device and severity; the
    /// EDAC controller and count; the locked-up CPU or hung task.
    pub detail: Option<String>,
}

/// Which multi-line report is open (its continuation lines are absorbed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    None,
    /// An AER report; `true` once its "PCIe Bus Error" line was seen.
    Aer(bool),
    Ghes,
    Mce,
    /// An oops: lines absorbed until "end trace" or the limit.
    Oops(usize),
}

/// Lines an oops report may span without its `---[ end trace` line.
const OOPS_SPAN: usize = 200;

struct Rx {
    prefix: Vec<Regex>,
    journal: Regex,
    xid: Regex,
    aer_received: Regex,
    aer_bus: Regex,
    ghes_cont: Regex,
    ghes_start: Regex,
    mce_strong: Regex,
    mce_weak: Regex,
    edac: Regex,
    amdgpu: Regex,
    soft: Regex,
    hard: Regex,
    hung: Regex,
    panic: Regex,
    oops: Regex,
    oops_end: Regex,
}

fn rx() -> Option<&'static Rx> {
    static CELL: OnceLock<Option<Rx>> = OnceLock::new();
    CELL.get_or_init(|| build().ok()).as_ref()
}

fn build() -> Result<Rx, regex::Error> {
    let r = Regex::new;
    Ok(Rx {
        prefix: vec![
            // /dev/kmsg record: "PRI,SEQ,USEC,FLAGS;"
            r(r"^\d+,\d+,\d+,[^;]*;")?,
            // syslog priority of pstore/ERST and `dmesg -r`: "<4>"
            r(r"^<\d+>")?,
            // dmesg --decode: "kern  :warn  : "
            r(r"^[a-z]+\s*:[a-z]+\s*: ")?,
            // dmesg --time-format iso: "2025-01-21T04:41:44,283302+00:00 "
            r(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[,.]\d+[+-]\d\d:?\d\d ")?,
            // dmesg: "[   12.345678] "
            r(r"^\[\s*\d+\.\d+\]\s?")?,
            // dmesg -T: "[Sun Feb 23 16:24:18 2025] "
            r(r"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}\]\s?")?,
        ],
        // journalctl -k short / short-iso / short-precise, and syslog files.
        journal: r(
            r"^(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)?|\d{4}-\d\d-\d\dT\S+) \S+ ([^\s:\[]+)(?:\[\d+\])?: ",
        )?,
        xid: r(r"NVRM: Xid \(([^)]*)\): (\d+)")?,
        aer_received: r(
            r"AER: (Multiple )?(Corrected|Uncorrected \(Non-Fatal\)|Uncorrected \(Fatal\)) error (?:message )?received:? (?:from |id=)?([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])?",
        )?,
        aer_bus: r(
            r"PCIe Bus Error: severity=(Corrected|Uncorrected \(Non-Fatal\)|Uncorrected \(Fatal\)|Uncorrectable \(Non-Fatal\)|Uncorrectable \(Fatal\))",
        )?,
        ghes_cont: r(r"^\{\d+\}\[Hardware Error\]")?,
        ghes_start: r(
            r"Hardware error from APEI Generic Hardware Error Source|GHES: .*(?:[Ff]atal|[Ee]rror (?:from|record|status))|^\{\d+\}\[Hardware Error\]",
        )?,
        mce_strong: r(r"CPU \d+: Machine Check(?: Exception)?: |Machine Check Exception: ")?,
        mce_weak: r(r"^(?:mce: )?\[Hardware Error\]: |Machine check events logged")?,
        edac: r(r"^EDAC (\S+(?: \S+)?): (?:(\d+) )?(CE|UE)\b")?,
        amdgpu: r(
            r"amdgpu.*?(?:(\d+) (correctable|uncorrectable) hardware errors? detected in (\S+)|[Pp]oison (?:consumption|creation)|RAS controller interrupt|uncorrectable (?:ECC|hardware) error|ECC errors? detected)",
        )?,
        soft: r(r"BUG: soft lockup - (CPU#\d+) stuck for (\d+s)")?,
        hard: r(r"Watchdog detected hard LOCKUP on cpu (\d+)")?,
        hung: r(r"INFO: task (.+:\d+) blocked for more than (\d+) seconds")?,
        panic: r(r"Kernel panic - not syncing: ?(.*)")?,
        oops: r(
            r"^Oops(?:: | - )|^BUG: (?:unable to handle|kernel NULL pointer|scheduling while atomic|Bad page)|kernel BUG at |general protection fault|^Unable to handle kernel |^Internal error: Oops",
        )?,
        oops_end: r(r"---\[ end (?:trace|Kernel panic)")?,
    })
}

/// The message of a log line without its timestamp/priority/journal prefix,
/// or `None` when the line is a non-kernel program's line of a syslog file.
fn message<'a>(rx: &Rx, line: &'a str) -> Option<&'a str> {
    let mut m = line.trim_end();
    if let Some(c) = rx.journal.captures(m) {
        if c.get(1).map(|p| p.as_str()) != Some("kernel") {
            return None;
        }
        let end = c.get(0).map_or(0, |x| x.end());
        m = &m[end..];
    }
    loop {
        let before = m.len();
        for p in &rx.prefix {
            if let Some(x) = p.find(m) {
                m = &m[x.end()..];
            }
        }
        if m.len() == before {
            break;
        }
    }
    Some(m.trim_start())
}

/// The severity as the current kernel words it ("Uncorrectable" in older ones).
fn aer_severity(kind: EventKind) -> &'static str {
    match kind {
        EventKind::AerFatal => "Uncorrected (Fatal)",
        EventKind::AerUncorrectedNonfatal => "Uncorrected (Non-Fatal)",
        _ => "Corrected",
    }
}

fn aer_kind(sev: &str) -> EventKind {
    if sev.contains("Fatal") && !sev.contains("Non-Fatal") {
        EventKind::AerFatal
    } else if sev.starts_with("Uncorrect") {
        EventKind::AerUncorrectedNonfatal
    } else {
        EventKind::AerCorrected
    }
}

/// The PCI address a device-prefixed kernel message names first
/// ("pcieport 0000:00:1c.0: …" or "0000:50:00.0: …").
fn leading_bdf(msg: &str) -> Option<&str> {
    msg.split_whitespace()
        .take(2)
        .map(|w| w.trim_end_matches(':'))
        .find(|w| {
            let b = w.as_bytes();
            b.len() == 12 && b[4] == b':' && b[7] == b':' && b[10] == b'.'
        })
}

/// Every hardware-error or kernel-failure report in `text`, in order.
pub fn scan(text: &str) -> Vec<KernelEvent> {
    let Some(rx) = rx() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut open = Open::None;
    for (i, raw) in text.lines().enumerate() {
        let Some(msg) = message(rx, raw) else {
            continue;
        };
        let mut emit = |kind, detail: Option<String>| {
            out.push(KernelEvent {
                kind,
                line: i + 1,
                text: raw.trim_end().to_string(),
                detail,
            });
        };
        // Oops continuation: everything up to its end marker.
        if let Open::Oops(n) = open {
            if rx.oops_end.is_match(msg) {
                open = Open::None;
                continue;
            }
            if n < OOPS_SPAN && !starts_other_report(rx, msg) {
                open = Open::Oops(n + 1);
                continue;
            }
            open = Open::None;
        }
        if let Some(c) = rx.xid.captures(msg) {
            let code = c.get(2).map(|x| x.as_str().to_string());
            emit(EventKind::Xid, code);
            open = Open::None;
        } else if let Some(c) = rx.aer_received.captures(msg) {
            let sev = c.get(2).map_or("", |x| x.as_str());
            let dev = c.get(3).map(|x| x.as_str()).or_else(|| leading_bdf(msg));
            let multiple = if c.get(1).is_some() { "multiple " } else { "" };
            let kind = aer_kind(sev);
            let detail = format!("{} {multiple}{}", dev.unwrap_or("?"), aer_severity(kind));
            emit(kind, Some(detail));
            open = Open::Aer(false);
        } else if let Some(c) = rx.aer_bus.captures(msg) {
            if open == Open::Aer(false) {
                open = Open::Aer(true);
                continue;
            }
            let sev = c.get(1).map_or("", |x| x.as_str());
            let kind = aer_kind(sev);
            let detail = format!("{} {}", leading_bdf(msg).unwrap_or("?"), aer_severity(kind));
            emit(kind, Some(detail));
            open = Open::Aer(true);
        } else if rx.ghes_cont.is_match(msg) && open == Open::Ghes {
            continue;
        } else if rx.ghes_start.is_match(msg) {
            emit(EventKind::Ghes, None);
            open = Open::Ghes;
        } else if rx.mce_strong.is_match(msg) {
            emit(EventKind::Mce, None);
            open = Open::Mce;
        } else if rx.mce_weak.is_match(msg) {
            if open != Open::Mce {
                emit(EventKind::Mce, None);
                open = Open::Mce;
            }
        } else if let Some(c) = rx.edac.captures(msg) {
            let kind = if c.get(3).map(|x| x.as_str()) == Some("UE") {
                EventKind::EdacUe
            } else {
                EventKind::EdacCe
            };
            let mc = c.get(1).map_or("", |x| x.as_str());
            let n = c.get(2).map_or("1", |x| x.as_str());
            emit(kind, Some(format!("{mc}: {n}")));
            open = Open::None;
        } else if let Some(c) = rx.soft.captures(msg) {
            let d = format!(
                "{} {}",
                c.get(1).map_or("", |x| x.as_str()),
                c.get(2).map_or("", |x| x.as_str())
            );
            emit(EventKind::SoftLockup, Some(d));
            open = Open::None;
        } else if let Some(c) = rx.hard.captures(msg) {
            emit(
                EventKind::HardLockup,
                c.get(1).map(|x| format!("cpu {}", x.as_str())),
            );
            open = Open::None;
        } else if let Some(c) = rx.hung.captures(msg) {
            emit(
                EventKind::HungTask,
                c.get(1).map(|x| x.as_str().to_string()),
            );
            open = Open::None;
        } else if let Some(c) = rx.panic.captures(msg) {
            let why = c.get(1).map(|x| x.as_str().trim().to_string());
            emit(EventKind::Panic, why.filter(|s| !s.is_empty()));
            open = Open::None;
        } else if rx.oops.is_match(msg) {
            emit(EventKind::Oops, None);
            open = Open::Oops(0);
        } else if let Some(c) = rx.amdgpu.captures(msg) {
            let d = match (c.get(1), c.get(2), c.get(3)) {
                (Some(n), Some(k), Some(b)) => {
                    Some(format!("{} {} in {}", n.as_str(), k.as_str(), b.as_str()))
                }
                _ => None,
            };
            emit(EventKind::AmdgpuRas, d);
            open = Open::None;
        } else if !(matches!(open, Open::Aer(_)) && is_aer_continuation(msg)
            || open == Open::Mce && msg.starts_with("Bank "))
        {
            // Not a continuation of the open report: it ends here.
            open = Open::None;
        }
    }
    out
}

/// Whether `msg` begins a report of another kind than an oops (which ends an
/// oops whose `---[ end trace` line never came).
fn starts_other_report(rx: &Rx, msg: &str) -> bool {
    [
        &rx.panic,
        &rx.xid,
        &rx.aer_received,
        &rx.aer_bus,
        &rx.ghes_start,
        &rx.mce_strong,
        &rx.mce_weak,
        &rx.edac,
        &rx.soft,
        &rx.hard,
        &rx.hung,
        &rx.amdgpu,
    ]
    .iter()
    .any(|r| r.is_match(msg))
}

fn is_aer_continuation(msg: &str) -> bool {
    [
        "device [",
        "error status/mask",
        "TLP Header",
        "AER:",
        "aer_",
        "Error of this Agent",
        "] ",
    ]
    .iter()
    .any(|p| msg.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_compile() {
        assert!(build().is_ok());
    }

    /// An oops whose end marker never came ends at the next report of
    /// another kind; its own lines (a second "Oops:", "Call Trace:") do not.
    #[test]
    fn an_unterminated_oops_ends_at_the_next_report() {
        let log = "\
[  500.000000] BUG: unable to handle page fault for address: ffffa1b2c3d4e000
[  500.000001] Oops: 0000 [#1] PREEMPT SMP NOPTI
[  500.000002] Call Trace:
[  600.000000] watchdog: BUG: soft lockup - CPU#3 stuck for 22s! [a:1]
[  600.000001] Call Trace:
";
        let kinds: Vec<(EventKind, usize)> = scan(log).iter().map(|e| (e.kind, e.line)).collect();
        assert_eq!(
            kinds,
            vec![(EventKind::Oops, 1), (EventKind::SoftLockup, 4)]
        );
    }

    #[test]
    fn prefixes_are_stripped() {
        let Some(rx) = rx() else { panic!("patterns") };
        assert_eq!(
            message(rx, "[   12.345678] EDAC MC0: x"),
            Some("EDAC MC0: x")
        );
        assert_eq!(
            message(rx, "Oct 12 23:25:16 box kernel: mce: y"),
            Some("mce: y")
        );
        assert_eq!(message(rx, "Oct 25 13:39:31 box mcelog[9946]: MCE 0"), None);
        assert_eq!(message(rx, "6,3964,206764307,-;nv: open"), Some("nv: open"));
        assert_eq!(
            message(rx, "<4>[  201.670809] Oops: 0002"),
            Some("Oops: 0002")
        );
    }
}
