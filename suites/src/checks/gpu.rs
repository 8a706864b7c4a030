//! The GPU/accelerator suite: ECC, memory retirement, PCIe link and Xid
//! checks of NVIDIA, AMD, Hygon DCU and Huawei Ascend accelerators, read
//! through each vendor's management tool and parsed by [`certlab_hwdb::accel`].
//!
//! A case is selected only when the hardware profile lists an accelerator
//! of one of these vendors. On the machine, the vendor's tool is probed
//! (`command -v`, recorded) and run; a tool that is absent or fails leaves
//! the case a skip naming why, and a value the tool does not report is
//! never taken for 0: a case with nothing reported to judge is a skip.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use certlab_hwdb::accel::{self, AccelDevice, Tool};
use certlab_hwdb::{HardwareProfile, Inventory};
use regex::Regex;

use super::gpu_xid;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::kernlog::{self, EventKind};
use crate::plan::{Applies, Check};

/// PCI vendor ids of the accelerators this suite reads, with the tool that
/// reports on them. NVIDIA GPUs are read with `nvidia-smi -q`: the text
/// carries every field the cases judge, it is what vendors and support
/// exchange, and the one real output with a memory fault at hand (an A10
/// with a row remapping pending) is in that form; `certlab hwdb accel`
/// reads the XML.
const VENDORS: &[(u16, &str, Tool)] = &[
    (0x10de, "NVIDIA", Tool::NvidiaSmiQ),
    (0x1002, "AMD", Tool::RocmSmiJson),
    (0x1d94, "Hygon", Tool::HySmi),
    (0x19e5, "Huawei", Tool::NpuSmi),
];

const NO_ACCEL: &str = "no NVIDIA, AMD, Hygon or Huawei accelerator in the hardware profile (PCI scan): the GPU suite has nothing to check";

/// The suite's vendors present in the profile's accelerators.
fn vendors(profile: &HardwareProfile) -> Vec<&'static (u16, &'static str, Tool)> {
    VENDORS
        .iter()
        .filter(|(id, _, _)| profile.accelerators.iter().any(|a| a.vendor_id == *id))
        .collect()
}

fn applies_any(profile: &HardwareProfile) -> Applies {
    if vendors(profile).is_empty() {
        Applies::No(NO_ACCEL.to_string())
    } else {
        Applies::Yes
    }
}

/// What the vendors' tools said.
pub struct Readings {
    /// (tool, devices it listed)
    pub devices: Vec<(Tool, AccelDevice)>,
    /// Why a tool gave nothing: not installed, or failed.
    pub absent: Vec<String>,
}

/// Runs the tool of each vendor present, recording each probe and run.
/// A tool's output that is not what that tool prints is an error (the
/// target answered, but not usably).
pub fn read_devices(ctx: &CaseCtx<'_>) -> Result<Readings, CaseError> {
    let mut r = Readings {
        devices: Vec::new(),
        absent: Vec::new(),
    };
    for (_, vendor, tool) in vendors(ctx.profile) {
        let program = tool.program();
        if !ctx.has_command(program)? {
            r.absent.push(format!(
                "{program} (for the {vendor} accelerators) is not installed"
            ));
            continue;
        }
        let cmd = tool.command();
        let o = ctx.run(cmd)?;
        if !o.success() {
            let msg = if o.stderr.is_empty() {
                o.stdout_str()
            } else {
                o.stderr_str()
            };
            let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            r.absent.push(format!(
                "`{cmd}` exited {}: {}",
                o.exit.map_or("without a status".into(), |c| c.to_string()),
                first.trim()
            ));
            continue;
        }
        let devs = accel::parse(*tool, &o.stdout_str())
            .map_err(|e| CaseError::Infra(format!("`{cmd}` printed what it should not: {e}")))?;
        if devs.is_empty() {
            r.absent.push(format!("`{cmd}` lists no device"));
        }
        r.devices.extend(devs.into_iter().map(|d| (*tool, d)));
    }
    Ok(r)
}

fn label(d: &AccelDevice, i: usize) -> String {
    let at = d.bus_id.clone().unwrap_or_else(|| format!("#{i}"));
    match &d.model {
        Some(m) => format!("{at} ({m})"),
        None => format!("{at} ({})", d.vendor),
    }
}

/// The devices, or the skip that says why there are none.
fn devices_or_skip(ctx: &CaseCtx<'_>) -> Result<Result<Readings, CaseOutcome>, CaseError> {
    if vendors(ctx.profile).is_empty() {
        // Not selected on such a machine; run anyway, the PCI listing is
        // the evidence that there is nothing to read.
        ctx.list_dir("/sys/bus/pci/devices")?;
        return Ok(Err(CaseOutcome::skip(NO_ACCEL)));
    }
    let r = read_devices(ctx)?;
    if r.devices.is_empty() {
        let why = if r.absent.is_empty() {
            NO_ACCEL.to_string()
        } else {
            format!("no accelerator tool answered: {}", r.absent.join("; "))
        };
        return Ok(Err(CaseOutcome::skip(why)));
    }
    Ok(Ok(r))
}

/// No accelerator has uncorrected ECC errors since the driver loaded.
/// Corrected and lifetime (aggregate) counts are reported, not judged.
pub struct Ecc;

impl Check for Ecc {
    fn applies(&self, profile: &HardwareProfile, _: &Inventory) -> Applies {
        applies_any(profile)
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let r = match devices_or_skip(ctx)? {
            Ok(r) => r,
            Err(skip) => return Ok(skip),
        };
        let (mut bad, mut clean, mut unjudged) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (tool, d)) in r.devices.iter().enumerate() {
            let l = label(d, i);
            let lifetime = match (d.ecc.aggregate.corrected, d.ecc.aggregate.uncorrected) {
                (None, None) => String::new(),
                (c, u) => format!(
                    "; lifetime {} corrected, {} uncorrected",
                    c.map_or("?".into(), |v| v.to_string()),
                    u.map_or("?".into(), |v| v.to_string())
                ),
            };
            let corrected = d
                .ecc
                .volatile
                .corrected
                .map_or("? corrected".into(), |c| format!("{c} corrected"));
            match d.ecc.volatile.uncorrected {
                Some(n) if n > 0 => bad.push(format!(
                    "{l}: {n} uncorrected volatile ECC errors ({corrected}{lifetime})"
                )),
                Some(_) => clean.push(format!("{l}: 0 uncorrected, {corrected}{lifetime}")),
                None => unjudged.push(format!(
                    "{l}: {} ({})",
                    match d.ecc_mode.as_deref() {
                        Some("disabled") => "ECC disabled",
                        _ => "ECC counters not reported",
                    },
                    tool.command()
                )),
            }
        }
        let mut tail = String::new();
        if !unjudged.is_empty() {
            tail.push_str(&format!("; not judged: {}", unjudged.join("; ")));
        }
        if !r.absent.is_empty() {
            tail.push_str(&format!("; {}", r.absent.join("; ")));
        }
        if !bad.is_empty() {
            return Ok(CaseOutcome::fail(format!("{}{tail}", bad.join("; "))));
        }
        if clean.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "no accelerator reports volatile ECC counters{tail}"
            )));
        }
        Ok(CaseOutcome::pass(format!("{}{tail}", clean.join("; "))))
    }
}

/// No page retirement or row remapping is pending, and no remapping has
/// failed (NVIDIA: retirement on Kepler–Turing, remapping from Ampere).
pub struct MemoryRetirement;

impl Check for MemoryRetirement {
    fn applies(&self, profile: &HardwareProfile, _: &Inventory) -> Applies {
        applies_any(profile)
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let r = match devices_or_skip(ctx)? {
            Ok(r) => r,
            Err(skip) => return Ok(skip),
        };
        let (mut bad, mut clean) = (Vec::new(), Vec::new());
        for (i, (_, d)) in r.devices.iter().enumerate() {
            let l = label(d, i);
            let (p, m) = (&d.retired_pages, &d.remapped_rows);
            if p.pending.is_none() && m.pending.is_none() && m.failure.is_none() {
                continue;
            }
            let mut problems = Vec::new();
            if p.pending == Some(true) {
                problems
                    .push("a page retirement is pending (it takes effect when the driver reloads)");
            }
            if m.pending == Some(true) {
                problems.push("a row remapping is pending (it takes effect at the next GPU reset)");
            }
            if m.failure == Some(true) {
                problems.push("a row remapping failed (the memory can no longer be repaired)");
            }
            let mut counts = Vec::new();
            if p.single_bit.is_some() || p.double_bit.is_some() {
                counts.push(format!(
                    "retired pages: {} single-bit, {} double-bit",
                    p.single_bit.map_or("?".into(), |v| v.to_string()),
                    p.double_bit.map_or("?".into(), |v| v.to_string())
                ));
            }
            if m.correctable.is_some() || m.uncorrectable.is_some() {
                counts.push(format!(
                    "remapped rows: {} correctable, {} uncorrectable",
                    m.correctable.map_or("?".into(), |v| v.to_string()),
                    m.uncorrectable.map_or("?".into(), |v| v.to_string())
                ));
            }
            let counts = counts.join(", ");
            if problems.is_empty() {
                clean.push(format!("{l}: nothing pending ({counts})"));
            } else {
                bad.push(format!("{l}: {} ({counts})", problems.join("; ")));
            }
        }
        if !bad.is_empty() {
            return Ok(CaseOutcome::fail(bad.join("; ")));
        }
        if clean.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "no accelerator reports page retirement or row remapping state ({} devices read{})",
                r.devices.len(),
                if r.absent.is_empty() {
                    String::new()
                } else {
                    format!("; {}", r.absent.join("; "))
                }
            )));
        }
        Ok(CaseOutcome::pass(clean.join("; ")))
    }
}

/// Each accelerator's PCIe link is as wide as the device allows, and its
/// host side can reach the device's generation.
///
/// Width is judged, the current generation is not: an idle GPU lowers its link rate
/// (to Gen1 on the real outputs of RTX 3060/4090, A10G, Quadro P400) and
/// raises it under load, so a lower generation at rest says nothing, and
/// this case does not load the GPU. Width is not lowered at rest by the
/// tools' reports here, so a narrower link is a seating, riser or slot
/// fault, or a slot wired narrower than the card. The plan makes the case
/// a non-blocker: a failure is a warning to look at the slot. The one
/// judgement of generation that holds at idle is of the maxima: where the
/// tool reports the host side's maximum below the device's (`nvidia-smi`
/// v12+: `Host Max`, `Device Max`), the link can never run at the device's
/// rate, loaded or not.
pub struct PcieLink;

impl Check for PcieLink {
    fn applies(&self, profile: &HardwareProfile, _: &Inventory) -> Applies {
        applies_any(profile)
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let r = match devices_or_skip(ctx)? {
            Ok(r) => r,
            Err(skip) => return Ok(skip),
        };
        let (mut narrow, mut full, mut notes) = (Vec::new(), Vec::new(), Vec::new());
        for (i, (_, d)) in r.devices.iter().enumerate() {
            let l = label(d, i);
            let p = &d.pcie;
            if let (Some(c), Some(m)) = (p.gen_current, p.gen_max) {
                if c < m {
                    notes.push(format!("{l} at Gen{c} of Gen{m}"));
                }
            }
            if let (Some(d), Some(h)) = (p.gen_max_device, p.gen_max_host) {
                if h < d {
                    narrow.push(format!(
                        "{l}: the host side allows Gen{h}, the device Gen{d} (the link can never reach the device's rate)"
                    ));
                }
            }
            match (p.width_current, p.width_max) {
                (Some(c), Some(m)) if c < m => narrow.push(format!("{l}: x{c} of x{m}")),
                (Some(c), Some(_)) => full.push(format!("{l}: x{c}")),
                _ => {}
            }
        }
        let mut tail = String::new();
        if !notes.is_empty() {
            tail = format!(
                "; link rate below the maximum, not judged (idle GPUs lower it): {}",
                notes.join(", ")
            );
        }
        if !narrow.is_empty() {
            return Ok(CaseOutcome::fail(format!(
                "{} accelerator links below what the device allows (width: seating, riser or slot wiring; generation: the host port): {}{tail}",
                narrow.len(),
                narrow.join("; ")
            )));
        }
        if full.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "no accelerator tool reports PCIe link widths ({} devices read){tail}",
                r.devices.len()
            )));
        }
        Ok(CaseOutcome::pass(format!(
            "links at full width: {}{tail}",
            full.join("; ")
        )))
    }
}

fn xid_device() -> Option<&'static Regex> {
    static CELL: OnceLock<Option<Regex>> = OnceLock::new();
    CELL.get_or_init(|| Regex::new(r"Xid \(PCI:([0-9A-Fa-f:.]+)\)").ok())
        .as_ref()
}

/// No NVIDIA Xid that points at the GPU, its memory, its link or its
/// firmware is in the kernel log since boot ([`gpu_xid::XIDS`]; an Xid not
/// in the table fails too, for it is unknown). Xids usually caused by the
/// application are reported, not failed.
pub struct XidEvents;

impl Check for XidEvents {
    fn applies(&self, profile: &HardwareProfile, _: &Inventory) -> Applies {
        if profile.accelerators.iter().any(|a| a.vendor_id == 0x10de) {
            Applies::Yes
        } else {
            Applies::No(
                "no NVIDIA GPU in the hardware profile: Xid events are the NVIDIA driver's".into(),
            )
        }
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let (log, source) = match super::kernel::read_kernel_log(ctx)? {
            Ok(l) => l,
            Err(why) => return Ok(CaseOutcome::skip(why)),
        };
        // (device, code) → occurrences
        let mut seen: BTreeMap<(String, u32), usize> = BTreeMap::new();
        for e in kernlog::scan(&log) {
            if e.kind != EventKind::Xid {
                continue;
            }
            let Some(code) = e.detail.as_deref().and_then(|d| d.parse::<u32>().ok()) else {
                continue;
            };
            let dev = xid_device()
                .and_then(|r| r.captures(&e.text))
                .and_then(|c| c.get(1))
                .map_or_else(|| "?".to_string(), |m| m.as_str().to_ascii_lowercase());
            *seen.entry((dev, code)).or_default() += 1;
        }
        let lines = log.lines().count();
        if seen.is_empty() {
            return Ok(CaseOutcome::pass(format!(
                "no Xid in {lines} lines of {source}"
            )));
        }
        let (mut failing, mut noted) = (Vec::new(), Vec::new());
        for ((dev, code), n) in &seen {
            let (what, fails) = match gpu_xid::lookup(*code) {
                Some(x) => (x.name, x.fails()),
                None => ("not in certlab's table: see NVIDIA's Xid catalogue", true),
            };
            let s = format!("{dev}: Xid {code} ×{n} ({what})");
            if fails {
                failing.push(s);
            } else {
                noted.push(s);
            }
        }
        let tail = if noted.is_empty() {
            String::new()
        } else {
            format!(
                "; usually the application's, not failed: {}",
                noted.join("; ")
            )
        };
        if failing.is_empty() {
            return Ok(CaseOutcome::pass(format!(
                "no hardware, driver or firmware Xid in {lines} lines of {source}{tail}"
            )));
        }
        Ok(CaseOutcome::fail(format!(
            "Xid events in {source}: {}{tail}",
            failing.join("; ")
        )))
    }
}
