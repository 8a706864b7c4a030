//! Error injection and the chain it must set off (`ras.einj`,
//! `ras.mce-inject`).
//!
//! Off unless the plan says `inject = true`; an uncorrectable error type
//! needs `inject_uncorrectable = true` as well, and runs only inside a
//! crash window: the case declares `may_crash = true`, `reboots = true`
//! and `reboot = "crash"`, and the orchestrator holds the machine's BMC
//! ([`CaseCtx::crash_window`]); otherwise it is skipped with the reason (a
//! local run has no BMC). Then `before` notes this boot's reports and
//! rasdaemon's rows, `trigger` injects (the machine may go down), and
//! `after` judges the chain from the next boot: the crashed boot's kernel
//! log (`journalctl -k -b -1`, else pstore), rasdaemon's new rows, and the
//! BMC's entries over the window (noted).
//!
//! - ACPI EINJ (Documentation/firmware-guide/acpi/apei/einj.rst): the
//!   platform lists the types it offers in
//!   `/sys/kernel/debug/apei/einj/available_error_type`; writing the type to
//!   `error_type` and 1 to `error_inject` injects. Memory correctable is
//!   `0x8`, PCI Express correctable `0x40` (its device in `param4` as an
//!   SBDF, `flags` bit 2).
//! - mce-inject (arch/x86/kernel/cpu/mce/inject.c): `flags` = `sw` makes a
//!   software machine check that only goes through the kernel's decoding
//!   chain; writing `bank` injects what `status`, `addr`, `misc` and `cpu`
//!   hold.
//!
//! The chain, compared before and after (polled until `wait_s`): a new
//! kernel-log report of the expected kind ([`crate::kernlog`]), the EDAC
//! counter (`ce_count`/`ue_count` summed over the memory controllers) up for
//! a memory error, and a new rasdaemon row where rasdaemon records. The SEL
//! entry a vendor may log is judged by `ras.sel` at the end of the run.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::checks::kernel::read_kernel_log;
use crate::checks::rasdaemon::read_target_db;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::kernlog::{self, EventKind};
use crate::plan::{Before, Check, Rebooted};
use crate::rasdb::DEFAULT_DB;
use crate::requires::Requires;

pub const EINJ_DIR: &str = "/sys/kernel/debug/apei/einj";
pub const MCE_INJECT_DIR: &str = "/sys/kernel/debug/mce-inject";
const EDAC_MC: &str = "/sys/devices/system/edac/mc";
const PSTORE: &str = "/sys/fs/pstore";

/// EINJ error types (ACPI 6.5, table 18.30).
pub fn einj_type_name(t: u64) -> &'static str {
    match t {
        0x1 => "Processor Correctable",
        0x2 => "Processor Uncorrectable non-fatal",
        0x4 => "Processor Uncorrectable fatal",
        0x8 => "Memory Correctable",
        0x10 => "Memory Uncorrectable non-fatal",
        0x20 => "Memory Uncorrectable fatal",
        0x40 => "PCI Express Correctable",
        0x80 => "PCI Express Uncorrectable non-fatal",
        0x100 => "PCI Express Uncorrectable fatal",
        0x200 => "Platform Correctable",
        0x400 => "Platform Uncorrectable non-fatal",
        0x800 => "Platform Uncorrectable fatal",
        _ => "unknown type",
    }
}

/// The types `available_error_type` lists (`0x00000008\tMemory Correctable`).
pub fn parse_available(text: &str) -> Vec<u64> {
    text.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok())
        .collect()
}

/// A PCI address `dddd:bb:dd.f` as EINJ's SBDF (ACPI: segment in bits
/// 31:24, bus 23:16, device 15:11, function 10:8).
pub fn sbdf(bdf: &str) -> Option<u64> {
    let (seg, rest) = bdf.trim().split_once(':')?;
    let (bus, rest) = rest.split_once(':')?;
    let (dev, func) = rest.split_once('.')?;
    let seg = u64::from_str_radix(seg, 16).ok().filter(|s| *s < 0x100)?;
    let bus = u64::from_str_radix(bus, 16).ok().filter(|b| *b < 0x100)?;
    let dev = u64::from_str_radix(dev, 16).ok().filter(|d| *d < 0x20)?;
    let func = u64::from_str_radix(func, 16).ok().filter(|f| *f < 8)?;
    Some(seg << 24 | bus << 16 | dev << 11 | func << 8)
}

/// What the injection touches, so which links the chain has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Area {
    Memory,
    Pcie,
    Processor,
}

impl Area {
    fn of_einj(t: u64) -> Area {
        match t {
            0x8 | 0x10 | 0x20 => Area::Memory,
            0x40 | 0x80 | 0x100 => Area::Pcie,
            _ => Area::Processor,
        }
    }
    /// The kernel-log reports that show the error arrived.
    fn log_kinds(self) -> &'static [EventKind] {
        match self {
            Area::Memory => &[
                EventKind::EdacCe,
                EventKind::EdacUe,
                EventKind::Mce,
                EventKind::Ghes,
            ],
            Area::Pcie => &[
                EventKind::AerCorrected,
                EventKind::AerUncorrectedNonfatal,
                EventKind::AerFatal,
                EventKind::Ghes,
            ],
            Area::Processor => &[EventKind::Mce, EventKind::Ghes],
        }
    }
    /// The rasdaemon tables a row may land in.
    fn tables(self) -> &'static [&'static str] {
        match self {
            Area::Memory => &[
                "mc_event",
                "mce_record",
                "extlog_event",
                "non_standard_event",
            ],
            Area::Pcie => &["aer_event", "non_standard_event"],
            Area::Processor => &["mce_record", "arm_event", "non_standard_event"],
        }
    }
}

/// The state the chain is read from.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    /// Kernel-log reports per kind, and the reports themselves.
    events: HashMap<EventKind, Vec<String>>,
    /// EDAC (corrected, uncorrected) summed over the controllers; `None`
    /// without EDAC.
    edac: Option<(u64, u64)>,
    /// rasdaemon rows per table; `None` when it keeps no database.
    rows: Option<BTreeMap<String, u64>>,
}

fn snapshot(ctx: &CaseCtx<'_>) -> Result<Result<Snapshot, String>, CaseError> {
    let mut s = Snapshot::default();
    let (log, _) = match read_kernel_log(ctx)? {
        Ok(l) => l,
        Err(why) => return Ok(Err(why)),
    };
    for e in kernlog::scan(&log) {
        s.events.entry(e.kind).or_default().push(e.text);
    }
    if let Some(entries) = ctx.list_dir(EDAC_MC)? {
        let mut ce = 0;
        let mut ue = 0;
        let mut any = false;
        for mc in entries.iter().filter(|e| {
            e.name.starts_with("mc")
                && e.name.len() > 2
                && e.name[2..].chars().all(|c| c.is_ascii_digit())
        }) {
            for (file, corrected) in [
                ("ce_count", true),
                ("ce_noinfo_count", true),
                ("ue_count", false),
                ("ue_noinfo_count", false),
            ] {
                let path = format!("{EDAC_MC}/{}/{file}", mc.name);
                if let Some(v) = ctx.read(&path)? {
                    let n = v.trim().parse::<u64>().map_err(|_| {
                        CaseError::Infra(format!("{path}: not a counter: `{}`", v.trim()))
                    })?;
                    if corrected {
                        ce += n;
                    } else {
                        ue += n;
                    }
                    any = true;
                }
            }
        }
        s.edac = any.then_some((ce, ue));
    }
    s.rows = match read_target_db(ctx, DEFAULT_DB, 64 << 20)? {
        Ok(db) => Some(db.tables.iter().map(|t| (t.name.clone(), t.rows)).collect()),
        Err(_) => None,
    };
    Ok(Ok(s))
}

/// One link of the chain: what was seen, and whether it holds.
struct Link {
    ok: bool,
    /// `false`: not checked (rasdaemon not recording, no EDAC for a
    /// software MCE), noted only.
    required: bool,
    text: String,
}

fn links(
    area: Area,
    uncorrected: bool,
    edac_required: bool,
    before: &Snapshot,
    after: &Snapshot,
) -> Vec<Link> {
    let mut out = Vec::new();
    // The kernel log.
    let mut new = Vec::new();
    for k in area.log_kinds() {
        let b = before.events.get(k).map_or(0, Vec::len);
        if let Some(a) = after.events.get(k) {
            for t in a.iter().skip(b) {
                new.push(format!("[{}] {t}", k.as_str()));
            }
        }
    }
    out.push(Link {
        ok: !new.is_empty(),
        required: true,
        text: if new.is_empty() {
            format!(
                "no new kernel-log report ({})",
                area.log_kinds()
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            format!("kernel log: {}", new.join(" | "))
        },
    });
    // EDAC, for memory.
    if area == Area::Memory {
        match (before.edac, after.edac) {
            (Some((bce, bue)), Some((ace, aue))) => {
                let (what, b, a) = if uncorrected {
                    ("UE", bue, aue)
                } else {
                    ("CE", bce, ace)
                };
                out.push(Link {
                    ok: a > b,
                    required: true,
                    text: if a > b {
                        format!("EDAC {what} {b} → {a}")
                    } else {
                        format!("no EDAC {what} counted ({what} {b} → {a})")
                    },
                });
            }
            _ => out.push(Link {
                ok: false,
                required: edac_required,
                text: "no EDAC memory controller: the EDAC count was not checked".into(),
            }),
        }
    }
    // rasdaemon.
    match (&before.rows, &after.rows) {
        (Some(b), Some(a)) => {
            let grown: Vec<String> = area
                .tables()
                .iter()
                .filter_map(|t| {
                    let (x, y) = (
                        b.get(*t).copied().unwrap_or(0),
                        a.get(*t).copied().unwrap_or(0),
                    );
                    (y > x).then(|| format!("{t} +{}", y - x))
                })
                .collect();
            out.push(Link {
                ok: !grown.is_empty(),
                required: true,
                text: if grown.is_empty() {
                    format!("no new rasdaemon row ({})", area.tables().join(", "))
                } else {
                    format!("rasdaemon: {}", grown.join(", "))
                },
            });
        }
        _ => out.push(Link {
            ok: false,
            required: false,
            text: format!("rasdaemon keeps no database at {DEFAULT_DB}: its row was not checked"),
        }),
    }
    out
}

/// Common to both injections: capability known, the plan's flags checked.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Injection {
    what: String,
    command: String,
    area: Area,
    uncorrected: bool,
    /// Without EDAC the chain cannot be verified (EINJ memory); a software
    /// MCE checks EDAC only where there is one.
    edac_required: bool,
}

fn run_chain(ctx: &CaseCtx<'_>, inj: Injection) -> Result<CaseOutcome, CaseError> {
    let before = match snapshot(ctx)? {
        Ok(s) => s,
        Err(why) => {
            return Ok(CaseOutcome::skip(format!(
                "not injected: the chain cannot be verified without the kernel log ({why})"
            )))
        }
    };
    if inj.area == Area::Memory && inj.edac_required && before.edac.is_none() {
        return Ok(CaseOutcome::skip(
            "not injected: no EDAC memory controller is registered, so the EDAC link of the chain cannot be verified",
        ));
    }
    let o = ctx.run(&inj.command)?;
    if !o.success() {
        return Ok(CaseOutcome::fail(format!(
            "the platform refused the injection of {} (exit {:?}): {}",
            inj.what,
            o.exit,
            o.stderr_str().trim()
        )));
    }
    let wait = Duration::from_secs(ctx.param_u64("wait_s", 20));
    let start = Instant::now();
    let chain = loop {
        let after = match snapshot(ctx)? {
            Ok(s) => s,
            Err(why) => return Err(CaseError::Infra(format!("after the injection: {why}"))),
        };
        let chain = links(
            inj.area,
            inj.uncorrected,
            inj.edac_required,
            &before,
            &after,
        );
        if chain.iter().all(|l| l.ok || !l.required) || start.elapsed() >= wait {
            break chain;
        }
        std::thread::sleep(Duration::from_secs(2).min(wait));
    };
    let broken: Vec<&str> = chain
        .iter()
        .filter(|l| l.required && !l.ok)
        .map(|l| l.text.as_str())
        .collect();
    let seen: Vec<&str> = chain
        .iter()
        .filter(|l| l.ok || !l.required)
        .map(|l| l.text.as_str())
        .collect();
    if broken.is_empty() {
        Ok(CaseOutcome::pass(format!(
            "{} injected; the chain holds: {}",
            inj.what,
            seen.join("; ")
        )))
    } else {
        Ok(CaseOutcome::fail(format!(
            "{} injected and accepted, but the chain broke within {} s: {}{}",
            inj.what,
            wait.as_secs(),
            broken.join("; "),
            if seen.is_empty() {
                String::new()
            } else {
                format!("; seen: {}", seen.join("; "))
            }
        )))
    }
}

/// What an uncorrectable injection needs besides the plan's flags.
const CRASH_WINDOW: &str = "an uncorrectable error may crash the machine, so it is injected only inside a crash window: the case declares `may_crash = true`, `reboots = true` and `reboot = \"crash\"`, and the orchestrator holds the machine's BMC to bring it back (`certlab lab daemon`; a local run has no BMC)";

/// Injects now and follows the chain on this boot: a correctable error
/// (an uncorrectable one only inside a crash window, through
/// [`before_crash_window`]).
fn inject_now(ctx: &CaseCtx<'_>, inj: Injection) -> Result<CaseOutcome, CaseError> {
    if inj.uncorrected {
        return Ok(CaseOutcome::skip(format!(
            "not injected: {} is uncorrectable; {CRASH_WINDOW}",
            inj.what
        )));
    }
    run_chain(ctx, inj)
}

/// What an uncorrectable injection notes before the crash window opens.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CrashBefore {
    injection: Injection,
    /// Kernel-log reports of the area's kinds on this boot, per kind.
    reports: BTreeMap<String, usize>,
    /// rasdaemon rows per table (`None`: no database).
    rows: Option<BTreeMap<String, u64>>,
    /// The journal is kept on disk (`/var/log/journal`): the next boot
    /// can read this boot's kernel log (`journalctl -k -b -1`).
    journal: bool,
    /// pstore is mounted (`/sys/fs/pstore`): a panic's log survives there.
    pstore: bool,
}

/// `before` of an injection case: a correctable error is injected and
/// judged at once (no reboot); an uncorrectable one, inside a crash window
/// only, gets its snapshot — this boot's reports and rasdaemon's rows, and
/// where the next boot will find this one's log (a persistent journal,
/// pstore) — and the crash window opens.
fn before_crash_window(ctx: &CaseCtx<'_>, inj: Injection) -> Result<Before, CaseError> {
    if !inj.uncorrected {
        return Ok(Before::Stop(run_chain(ctx, inj)?));
    }
    if !ctx.crash_window() {
        return Ok(Before::Stop(CaseOutcome::skip(format!(
            "not injected: {} is uncorrectable; {CRASH_WINDOW}",
            inj.what
        ))));
    }
    let now = match snapshot(ctx)? {
        Ok(s) => s,
        Err(why) => {
            return Ok(Before::Stop(CaseOutcome::skip(format!(
                "not injected: the chain cannot be verified without the kernel log ({why})"
            ))))
        }
    };
    let journal = ctx.list_dir("/var/log/journal")?.is_some();
    let pstore = ctx.list_dir(PSTORE)?.is_some();
    if !journal && !pstore && now.rows.is_none() {
        return Ok(Before::Stop(CaseOutcome::skip(format!(
            "not injected: after the crash nothing would show the error — no persistent journal (/var/log/journal), no pstore ({PSTORE}), no rasdaemon database ({DEFAULT_DB})"
        ))));
    }
    let reports = inj
        .area
        .log_kinds()
        .iter()
        .map(|k| {
            (
                k.as_str().to_string(),
                now.events.get(k).map_or(0, Vec::len),
            )
        })
        .collect();
    let snap = CrashBefore {
        injection: inj,
        reports,
        rows: now.rows,
        journal,
        pstore,
    };
    serde_json::to_value(&snap)
        .map(Before::Go)
        .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))
}

fn crash_before(before: &serde_json::Value) -> Result<CrashBefore, CaseError> {
    serde_json::from_value(before.clone()).map_err(|e| CaseError::Infra(format!("snapshot: {e}")))
}

/// Injects inside the crash window: a session lost or silent is the
/// machine going down; a refusal is the platform's answer.
fn trigger_crash_window(ctx: &CaseCtx<'_>, before: &serde_json::Value) -> Result<(), CaseError> {
    let b = crash_before(before)?;
    match ctx.run_with_timeout(&b.injection.command, Duration::from_secs(30)) {
        Err(CaseError::Timeout { .. }) => Ok(()),
        Err(e) if e.is_infrastructure() => Ok(()),
        Err(e) => Err(e),
        Ok(o) if !o.success() => Err(CaseError::Infra(format!(
            "the platform refused the injection of {} (exit {:?}): {}",
            b.injection.what,
            o.exit,
            o.stderr_str().trim()
        ))),
        Ok(_) => Ok(()),
    }
}

/// The crashed (or survived, then power-cycled) boot's kernel log from
/// the new boot: `journalctl -k -b -1`, else pstore's `dmesg-*` records.
/// `(text, source, whole)`: `whole` when it is the boot's whole log (so
/// the snapshot's reports can be subtracted), not pstore's tail.
fn previous_boot_log(
    ctx: &CaseCtx<'_>,
    b: &CrashBefore,
) -> Result<Result<(String, String, bool), String>, CaseError> {
    let mut why = Vec::new();
    if b.journal {
        let o = ctx.run("journalctl -k -b -1 --no-pager")?;
        let text = o.stdout_str();
        if o.success() && !text.trim().is_empty() && !text.contains("-- No entries --") {
            return Ok(Ok((text, "journalctl -k -b -1".to_string(), true)));
        }
        why.push(format!(
            "`journalctl -k -b -1` exit {:?}: {}",
            o.exit,
            o.stderr_str().trim()
        ));
    }
    if b.pstore {
        let mut text = String::new();
        let mut files = Vec::new();
        for e in ctx.list_dir(PSTORE)?.unwrap_or_default() {
            if e.name.starts_with("dmesg-") {
                if let Some(t) = ctx.read(&format!("{PSTORE}/{}", e.name))? {
                    text.push_str(&t);
                    text.push('\n');
                    files.push(e.name);
                }
            }
        }
        if !files.is_empty() {
            return Ok(Ok((text, format!("pstore {}", files.join(", ")), false)));
        }
        why.push(format!("no dmesg record in {PSTORE}"));
    }
    if why.is_empty() {
        why.push("no persistent journal, no pstore".to_string());
    }
    Ok(Err(why.join("; ")))
}

/// `after` of an uncorrectable injection: the chain from the new boot —
/// the crashed boot's kernel log (journal or pstore), rasdaemon's rows
/// (kept across boots), and what the BMC logged over the window (noted:
/// vendors differ). EDAC's counters start again at zero with the boot, so
/// the count is noted, not judged.
fn after_crash_window(
    ctx: &CaseCtx<'_>,
    before: &serde_json::Value,
    reboot: &Rebooted,
) -> Result<CaseOutcome, CaseError> {
    let b = crash_before(before)?;
    let area = b.injection.area;
    let mut broken = Vec::new();
    let mut seen = Vec::new();
    match previous_boot_log(ctx, &b)? {
        Ok((text, source, whole)) => {
            let mut counts: BTreeMap<&str, Vec<String>> = BTreeMap::new();
            for e in kernlog::scan(&text) {
                if area.log_kinds().contains(&e.kind) {
                    counts.entry(e.kind.as_str()).or_default().push(e.text);
                }
            }
            let mut new = Vec::new();
            for (kind, texts) in &counts {
                let skip = if whole {
                    b.reports.get(*kind).copied().unwrap_or(0)
                } else {
                    0
                };
                for t in texts.iter().skip(skip) {
                    new.push(format!("[{kind}] {t}"));
                }
            }
            if new.is_empty() {
                broken.push(format!(
                    "no new report in the crashed boot's kernel log ({source})"
                ));
            } else {
                seen.push(format!(
                    "crashed boot's kernel log ({source}): {}",
                    new.join(" | ")
                ));
            }
        }
        Err(why) => broken.push(format!(
            "the crashed boot's kernel log cannot be read from the new boot: {why}"
        )),
    }
    match &b.rows {
        Some(before_rows) => match read_target_db(ctx, DEFAULT_DB, 64 << 20)? {
            Ok(db) => {
                let grown: Vec<String> = area
                    .tables()
                    .iter()
                    .filter_map(|t| {
                        let x = before_rows.get(*t).copied().unwrap_or(0);
                        let y = db
                            .tables
                            .iter()
                            .find(|d| d.name == *t)
                            .map_or(0, |d| d.rows);
                        (y > x).then(|| format!("{t} +{}", y - x))
                    })
                    .collect();
                if grown.is_empty() {
                    broken.push(format!(
                        "no new rasdaemon row ({})",
                        area.tables().join(", ")
                    ));
                } else {
                    seen.push(format!("rasdaemon: {}", grown.join(", ")));
                }
            }
            Err(why) => broken.push(format!(
                "rasdaemon's database is gone after the crash: {}",
                why.error
            )),
        },
        None => seen.push(format!(
            "rasdaemon keeps no database at {DEFAULT_DB}: its row was not checked"
        )),
    }
    if area == Area::Memory {
        seen.push(
            "EDAC counters start again at zero with the new boot: the count was not checked"
                .to_string(),
        );
    }
    let wanted = match area {
        Area::Memory => "memory",
        Area::Pcie => "PCIe/bus (critical interrupt)",
        Area::Processor => "processor",
    };
    seen.push(match &reboot.sel {
        Some(Ok(entries)) => {
            let hits: Vec<String> = entries
                .iter()
                .filter(|e| crate::checks::sel::area(e.sensor_type.as_deref()) == wanted)
                .map(|e| format!("record {} {:?} {}", e.id, e.severity, e.message))
                .collect();
            if hits.is_empty() {
                format!(
                    "the BMC logged no {wanted} entry over the window (not every vendor logs one)"
                )
            } else {
                format!("SEL: {}", hits.join("; "))
            }
        }
        Some(Err(e)) => format!("the BMC's event log could not be read: {e}"),
        None => "the machine has no BMC event log".to_string(),
    });
    let how = match &reboot.recovered {
        Some(why) => format!(
            "the machine did not come back by itself and was power-cycled through its BMC ({why})"
        ),
        None => format!("the machine came back by itself (boot {})", reboot.new_boot),
    };
    if broken.is_empty() {
        Ok(CaseOutcome::pass(format!(
            "{} injected; {how}; the chain holds: {}",
            b.injection.what,
            seen.join("; ")
        )))
    } else {
        Ok(CaseOutcome::fail(format!(
            "{} injected; {how}; the chain broke: {}; seen: {}",
            b.injection.what,
            broken.join("; "),
            seen.join("; ")
        )))
    }
}

const OFF: &str = "error injection is off: the plan enables it with `inject = true` (it writes errors into the hardware)";

/// An ACPI EINJ injection (plan params `inject`, `error_type` (default
/// 0x8), `inject_uncorrectable`, `pcie_device` for PCIe types, `wait_s`).
pub const EINJ: Inject = Inject {
    pick: einj_injection,
    // ACPI APEI is not one architecture's (x86, arm64 and others with
    // ACPI): the interface itself decides, found or not at run time.
    arch: &[],
};

/// An error injection check: what to inject (or the skip that says why
/// not) comes from its function; the injection is judged at once, or
/// across a declared crash window for an uncorrectable error.
pub struct Inject {
    pick: fn(&CaseCtx<'_>) -> Result<Result<Injection, CaseOutcome>, CaseError>,
    /// The architectures the injection interface exists on.
    arch: &'static [&'static str],
}

impl Check for Inject {
    /// Injection writes debugfs and sysfs files only root may write.
    fn requires(&self) -> Requires {
        Requires {
            arch: self.arch.iter().map(|a| a.to_string()).collect(),
            ..Requires::root()
        }
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        match (self.pick)(ctx)? {
            Err(skip) => Ok(skip),
            Ok(inj) => inject_now(ctx, inj),
        }
    }
    fn before(&self, ctx: &CaseCtx<'_>) -> Result<Before, CaseError> {
        match (self.pick)(ctx)? {
            Err(skip) => Ok(Before::Stop(skip)),
            Ok(inj) => before_crash_window(ctx, inj),
        }
    }
    fn trigger(&self, ctx: &CaseCtx<'_>, before: &serde_json::Value) -> Result<(), CaseError> {
        trigger_crash_window(ctx, before)
    }
    fn after(
        &self,
        ctx: &CaseCtx<'_>,
        before: &serde_json::Value,
        reboot: &Rebooted,
    ) -> Result<CaseOutcome, CaseError> {
        after_crash_window(ctx, before, reboot)
    }
}

/// The EINJ injection the plan asks for, or the skip that says why not.
fn einj_injection(ctx: &CaseCtx<'_>) -> Result<Result<Injection, CaseOutcome>, CaseError> {
    // What the platform offers is read first (read-only): the skip
    // when injection is off says it.
    let t = ctx.param_u64("error_type", 0x8);
    let name = einj_type_name(t);
    let uncorrected = !matches!(t, 0x1 | 0x8 | 0x40 | 0x200);
    let path = format!("{EINJ_DIR}/available_error_type");
    let offered = match ctx.read_or_why(&path)? {
            Ok(text) => parse_available(&text),
            Err(why) => {
                return Ok(Err(CaseOutcome::skip(format!(
                    "no ACPI EINJ here ({}: {}): firmware without an EINJ table or with it disabled in setup, the einj module not loaded, or debugfs not mounted",
                    path, why.error
                ))))
            }
        };
    let list: Vec<String> = offered
        .iter()
        .map(|o| format!("{o:#x} {}", einj_type_name(*o)))
        .collect();
    let list = if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    };
    if !ctx.param_bool("inject", false) {
        return Ok(Err(CaseOutcome::skip(format!(
            "{OFF}; the platform offers: {list}"
        ))));
    }
    if uncorrected && !ctx.param_bool("inject_uncorrectable", false) {
        return Ok(Err(CaseOutcome::skip(format!(
                "error type {t:#x} ({name}) is uncorrectable: the plan must also set `inject_uncorrectable = true` ({CRASH_WINDOW})"
            ))));
    }
    if !offered.contains(&t) {
        return Ok(Err(CaseOutcome::skip(format!(
            "the platform does not offer error type {t:#x} ({name}); it offers: {list}"
        ))));
    }
    let area = Area::of_einj(t);
    let mut command = format!("cd {EINJ_DIR} && echo {t:#x} > error_type");
    let mut what = format!("EINJ {t:#x} ({name})");
    if area == Area::Pcie {
        let dev = ctx.param_str("pcie_device", "");
        let Some(s) = sbdf(&dev) else {
            return Ok(Err(CaseOutcome::skip(format!(
                    "error type {t:#x} needs the device to inject into: plan parameter `pcie_device` (dddd:bb:dd.f), not `{dev}`"
                ))));
        };
        command.push_str(&format!(" && echo 0x4 > flags && echo {s:#x} > param4"));
        what.push_str(&format!(" into {dev}"));
    } else {
        command.push_str(" && echo 0 > flags");
    }
    command.push_str(" && echo 1 > error_inject");
    Ok(Ok(Injection {
        what,
        command,
        area,
        uncorrected,
        edac_required: true,
    }))
}

/// MCi_STATUS bits (Intel SDM vol. 3B 16.3.2.2).
const VAL: u64 = 1 << 63;
const UC: u64 = 1 << 61;
const EN: u64 = 1 << 60;
const ADDRV: u64 = 1 << 58;
const PCC: u64 = 1 << 57;
/// A corrected memory read error, channel unspecified (MCACOD
/// 0000_0000_1001_1111: memory controller, read, channel F).
pub const DEFAULT_MCE_STATUS: u64 = VAL | EN | ADDRV | 0x009f;

/// The first "System RAM" range of /proc/iomem at or above 1 MiB (root sees
/// the addresses; others see zeros).
pub fn first_ram(iomem: &str) -> Option<u64> {
    iomem
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(": System RAM"))
        .filter_map(|l| l.split('-').next())
        .filter_map(|a| u64::from_str_radix(a.trim(), 16).ok())
        .find(|a| *a >= 0x10_0000)
}

/// A software machine check through mce-inject (plan params `inject`,
/// `status` (default [`DEFAULT_MCE_STATUS`]), `bank` (4), `cpu` (0),
/// `address` (default: the first System RAM range above 1 MiB),
/// `inject_uncorrectable`, `wait_s`).
pub const MCE_INJECT: Inject = Inject {
    pick: mce_injection,
    // arch/x86/kernel/cpu/mce/inject.c: x86 only.
    arch: &["x86_64", "i686"],
};

/// The software machine check the plan asks for, or the skip that says why not.
fn mce_injection(ctx: &CaseCtx<'_>) -> Result<Result<Injection, CaseOutcome>, CaseError> {
    if ctx.list_dir(MCE_INJECT_DIR)?.is_none() {
        return Ok(Err(CaseOutcome::skip(format!(
                "no {MCE_INJECT_DIR}: x86 only, with the mce-inject module loaded (modprobe mce-inject) and debugfs mounted"
            ))));
    }
    if !ctx.param_bool("inject", false) {
        return Ok(Err(CaseOutcome::skip(format!(
            "{OFF}; {MCE_INJECT_DIR} is there"
        ))));
    }
    let status = match ctx.param_str("status", "") {
        s if s.is_empty() => DEFAULT_MCE_STATUS,
        s => u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|_| {
            CaseError::Infra(format!(
                "plan parameter `status`: `{s}` is not a hex MCi_STATUS"
            ))
        })?,
    };
    let uncorrected = status & (UC | PCC) != 0;
    if uncorrected && !ctx.param_bool("inject_uncorrectable", false) {
        return Ok(Err(CaseOutcome::skip(format!(
                "status {status:#018x} is uncorrected (UC/PCC): the plan must also set `inject_uncorrectable = true` ({CRASH_WINDOW})"
            ))));
    }
    let address = match ctx.param_u64("address", 0) {
        0 => ctx
            .read("/proc/iomem")?
            .as_deref()
            .and_then(first_ram)
            .unwrap_or(0x10_0000),
        a => a,
    };
    let bank = ctx.param_u64("bank", 4);
    let cpu = ctx.param_u64("cpu", 0);
    let command = format!(
            "cd {MCE_INJECT_DIR} && echo sw > flags && echo {status:#x} > status && echo {address:#x} > addr && echo 0 > misc && echo {cpu} > cpu && echo {bank} > bank"
        );
    Ok(Ok(Injection {
            what: format!("a software machine check (status {status:#018x}, bank {bank}, CPU {cpu}, address {address:#x})"),
            command,
            area: Area::Memory,
            uncorrected,
            edac_required: false,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_types_and_sbdf() {
        let t = parse_available("0x00000002\tProcessor Uncorrectable non-fatal\n0x00000008\tMemory Correctable\n0x00000040\tPCI Express Correctable\n");
        assert_eq!(t, vec![0x2, 0x8, 0x40]);
        assert_eq!(sbdf("0000:3a:00.0"), Some(0x3a << 16));
        assert_eq!(sbdf("0001:00:1f.6"), Some(1 << 24 | 0x1f << 11 | 6 << 8));
        assert_eq!(sbdf("3a:00.0"), None);
        assert_eq!(sbdf("0000:00:20.0"), None);
    }

    #[test]
    fn first_ram_range() {
        let iomem = "00000000-00000fff : Reserved\n00001000-0009ffff : System RAM\n00100000-bffdffff : System RAM\n  01000000-01e03fff : Kernel code\n";
        assert_eq!(first_ram(iomem), Some(0x100000));
        assert_eq!(first_ram("00000000-00000000 : System RAM\n"), None);
    }
}
