//! Reboots: the machine comes back from a warm reboot or a cold power
//! cycle as it went down.
//!
//! The case declares `reboots = true` (and `reboot = "power-cycle"` for the
//! cold one); the orchestrator calls [`Check::before`], reboots the
//! machine, then [`Check::after`]. Before, the check notes the boot id,
//! every PCI function with its bound driver, every physical NIC's link and
//! the kernel log's trouble per category; after, it wants a new boot id,
//! every function back with the same driver, every link that was up up
//! again at the same speed, no category of kernel-log trouble grown, and no
//! critical entry in what the BMC logged meanwhile.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::checks::kernel::{read_kernel_log, scan_log};
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::{Before, Check, RebootKind, Rebooted};
use crate::walk;

/// A physical NIC's link as the net walk shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub operstate: String,
    /// Mb/s; `None` when the driver reports none (down, or `-1`).
    pub speed: Option<u64>,
    pub driver: Option<String>,
}

/// What one boot looked like.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootView {
    pub boot_id: String,
    /// PCI address → bound driver.
    pub pci: BTreeMap<String, Option<String>>,
    /// Interface name → link.
    pub nics: BTreeMap<String, Link>,
    /// Kernel-log trouble per category (`None`: the log was not readable).
    pub log: Option<BTreeMap<String, usize>>,
    /// Where the log came from (`dmesg`, `journalctl -k -b`).
    pub log_source: String,
}

/// The physical NICs of a [`walk::NET_WALK`] output.
pub fn nic_links(text: &str) -> BTreeMap<String, Link> {
    walk::parse_records(text)
        .into_iter()
        .filter(|(_, a)| a.contains_key("has_device") && !a.contains_key("virtual"))
        .map(|(name, a)| {
            let link = Link {
                operstate: a.get("operstate").cloned().unwrap_or_default(),
                speed: a
                    .get("speed")
                    .and_then(|s| s.parse::<i64>().ok())
                    .filter(|s| *s > 0)
                    .map(|s| s as u64),
                driver: a.get("driver").cloned(),
            };
            (name, link)
        })
        .collect()
}

/// Kernel-log trouble per category ([`scan_log`]).
pub fn log_counts(log: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for (cat, _) in scan_log(log, &[]) {
        *out.entry(cat.to_string()).or_insert(0) += 1;
    }
    out
}

fn read_boot_id(ctx: &CaseCtx<'_>) -> Result<String, CaseError> {
    match ctx.read("/proc/sys/kernel/random/boot_id")? {
        Some(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(CaseError::Infra(
            "/proc/sys/kernel/random/boot_id is not readable".to_string(),
        )),
    }
}

/// Looks at the machine now: boot id, PCI bindings, NIC links, kernel log.
pub fn look(ctx: &CaseCtx<'_>) -> Result<BootView, CaseError> {
    let boot_id = read_boot_id(ctx)?;
    let pci = walk::pci_devices(&ctx.run(walk::PCI_WALK)?.stdout_str())
        .into_iter()
        .map(|d| (d.address, d.driver))
        .collect();
    let nics = nic_links(&ctx.run(walk::NET_WALK)?.stdout_str());
    let (log, log_source) = match read_kernel_log(ctx)? {
        Ok((text, source)) => (Some(log_counts(&text)), source.to_string()),
        Err(why) => (None, why),
    };
    Ok(BootView {
        boot_id,
        pci,
        nics,
        log,
        log_source,
    })
}

/// What changed from `before` to `after` that should not have: one line
/// per problem, and one line of what held.
pub fn compare(before: &BootView, after: &BootView) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut held = Vec::new();
    if before.boot_id == after.boot_id {
        problems.push(format!(
            "the boot id is still {}: the machine did not reboot",
            after.boot_id
        ));
    } else {
        held.push(format!("boot id {} → {}", before.boot_id, after.boot_id));
    }
    let mut same = 0;
    for (addr, drv) in &before.pci {
        match after.pci.get(addr) {
            None => problems.push(format!(
                "PCI {addr} ({}) is gone",
                drv.as_deref().unwrap_or("no driver")
            )),
            Some(now) if now != drv => problems.push(format!(
                "PCI {addr} came back bound to {} (was {})",
                now.as_deref().unwrap_or("no driver"),
                drv.as_deref().unwrap_or("no driver")
            )),
            Some(_) => same += 1,
        }
    }
    let new: Vec<&str> = after
        .pci
        .keys()
        .filter(|a| !before.pci.contains_key(*a))
        .map(String::as_str)
        .collect();
    held.push(format!(
        "{same} of {} PCI functions back with the same driver{}",
        before.pci.len(),
        if new.is_empty() {
            String::new()
        } else {
            format!(" ({} new: {})", new.len(), new.join(", "))
        }
    ));
    let mut links = Vec::new();
    for (name, was) in &before.nics {
        let Some(now) = after.nics.get(name) else {
            problems.push(format!("NIC {name} is gone"));
            continue;
        };
        if now.driver != was.driver {
            problems.push(format!(
                "NIC {name} came back with driver {} (was {})",
                now.driver.as_deref().unwrap_or("none"),
                was.driver.as_deref().unwrap_or("none")
            ));
        }
        if was.operstate == "up" {
            if now.operstate != "up" {
                problems.push(format!(
                    "NIC {name} was up and is {} after the reboot",
                    now.operstate
                ));
            } else if was.speed.is_some() && now.speed != was.speed {
                problems.push(format!(
                    "NIC {name} came back at {} Mb/s (was {} Mb/s)",
                    now.speed.map_or("no".to_string(), |s| s.to_string()),
                    was.speed.unwrap_or_default()
                ));
            } else {
                links.push(format!(
                    "{name} up{}",
                    now.speed.map(|s| format!(" {s} Mb/s")).unwrap_or_default()
                ));
            }
        }
    }
    if !links.is_empty() {
        held.push(format!("links back: {}", links.join(", ")));
    }
    match (&before.log, &after.log) {
        (Some(b), Some(a)) => {
            let grown: Vec<String> = a
                .iter()
                .filter(|(cat, n)| **n > b.get(*cat).copied().unwrap_or(0))
                .map(|(cat, n)| format!("{cat} {} → {n}", b.get(cat).copied().unwrap_or(0)))
                .collect();
            if grown.is_empty() {
                held.push(format!("no new kernel-log trouble ({})", after.log_source));
            } else {
                problems.push(format!(
                    "kernel-log trouble grew over the reboot ({}): {}",
                    after.log_source,
                    grown.join(", ")
                ));
            }
        }
        (None, _) => held.push(format!("kernel log not judged: {}", before.log_source)),
        (_, None) => held.push(format!("kernel log not judged: {}", after.log_source)),
    }
    (problems, held)
}

/// Judges what the BMC logged over the reboot: critical entries are
/// problems. Returns (problems, a note).
pub fn judge_sel(reboot: &Rebooted) -> (Vec<String>, String) {
    match &reboot.sel {
        None => (Vec::new(), "the machine's BMC keeps no event log".into()),
        Some(Err(e)) => (Vec::new(), format!("the SEL could not be read: {e}")),
        Some(Ok(entries)) => {
            let critical: Vec<String> = entries
                .iter()
                .filter(|e| e.severity == certlab_lab::bmc::Health::Critical)
                .map(|e| {
                    format!(
                        "SEL {} {}: {}",
                        e.id,
                        e.sensor_type.as_deref().unwrap_or(""),
                        e.message
                    )
                })
                .collect();
            let note = format!(
                "SEL: {} new entries, {} critical",
                entries.len(),
                critical.len()
            );
            (critical, note)
        }
    }
}

/// `reboot.warm` / `reboot.cold`: the machine comes back from a declared
/// reboot as it went down. How it reboots is the case's `reboot`.
pub struct Survives;

/// How long links get to come up after the OS answers (`link_wait_s`).
const LINK_WAIT_S: u64 = 60;

impl Check for Survives {
    fn run(&self, _ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        Ok(CaseOutcome::skip(
            "the case reboots the machine: it runs only as a declared reboot under the orchestrator",
        ))
    }

    fn before(&self, ctx: &CaseCtx<'_>) -> Result<Before, CaseError> {
        let view = look(ctx)?;
        serde_json::to_value(&view)
            .map(Before::Go)
            .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))
    }

    fn after(
        &self,
        ctx: &CaseCtx<'_>,
        before: &serde_json::Value,
        reboot: &Rebooted,
    ) -> Result<CaseOutcome, CaseError> {
        let before: BootView = serde_json::from_value(before.clone())
            .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))?;
        // Links may come up a little after SSH answers: look again until
        // every link that was up is up, for at most `link_wait_s`.
        let wait = Duration::from_secs(ctx.param_u64("link_wait_s", LINK_WAIT_S));
        let t0 = Instant::now();
        let mut after = look(ctx)?;
        let links_up = |v: &BootView| {
            before
                .nics
                .iter()
                .filter(|(_, l)| l.operstate == "up")
                .all(|(n, _)| v.nics.get(n).is_some_and(|l| l.operstate == "up"))
        };
        while !links_up(&after) && t0.elapsed() < wait {
            std::thread::sleep(Duration::from_secs(2));
            after.nics = nic_links(&ctx.run(walk::NET_WALK)?.stdout_str());
        }
        let (mut problems, mut held) = compare(&before, &after);
        let (sel_problems, sel_note) = judge_sel(reboot);
        problems.extend(sel_problems);
        held.push(sel_note);
        if let Some(why) = &reboot.recovered {
            problems.push(format!(
                "the machine did not come back by itself and was power-cycled through its BMC: {why}"
            ));
        }
        let how = match reboot.kind {
            RebootKind::Os => "warm reboot",
            RebootKind::PowerCycle => "power cycle through the BMC",
            RebootKind::Crash => "crash",
        };
        if problems.is_empty() {
            Ok(CaseOutcome::pass(format!("{how}: {}", held.join("; "))))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{how}: {}; {}",
                problems.join("; "),
                held.join("; ")
            )))
        }
    }
}
