//! PCI checks: every device the kernel can drive is bound; links trained
//! at full width.

use certlab_hwdb::{DriverMatch, HardwareProfile, Inventory, PciDevice};

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::{Applies, Check};
use crate::walk;

fn describe(d: &PciDevice) -> String {
    let name = match (&d.vendor_name, &d.device_name) {
        (Some(v), Some(n)) => format!(" {v} {n}"),
        (Some(v), None) => format!(" {v}"),
        _ => String::new(),
    };
    format!(
        "{} [{:04x}:{:04x}]{name}",
        d.address, d.vendor_id, d.device_id
    )
}

/// Every PCI device that the running kernel's `modules.alias` can serve is
/// bound to a driver.
pub struct Drivers;

const NO_PCI: &str = "the machine exposes no PCI devices";
const NO_ALIAS: &str = "the running kernel's modules.alias is not installed, so which driver should claim each device is unknown";

impl Check for Drivers {
    /// Both facts come from discovery (whose inventory is their evidence),
    /// so the case is not selected rather than run without evidence.
    fn applies(&self, profile: &HardwareProfile, inventory: &Inventory) -> Applies {
        if profile.pci_devices.is_empty() {
            Applies::No(NO_PCI.to_string())
        } else if inventory.modules_alias.is_none() {
            Applies::No(NO_ALIAS.to_string())
        } else {
            Applies::Yes
        }
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        // The evidence this verdict rests on: the bindings and the alias table.
        ctx.run(walk::PCI_WALK)?;
        if ctx.profile.pci_devices.is_empty() {
            return Ok(CaseOutcome::skip(NO_PCI));
        }
        let Some(alias) = &ctx.inventory.modules_alias else {
            return Ok(CaseOutcome::skip(NO_ALIAS));
        };
        ctx.read(&alias.source)?;
        let mut unbound = Vec::new();
        let mut other = Vec::new();
        let mut bound = 0;
        let mut no_driver = 0;
        for d in &ctx.profile.pci_devices {
            match d.driver_match {
                // A built-in driver is the kernel's own: bound as expected.
                Some(DriverMatch::Expected | DriverMatch::BuiltIn) => bound += 1,
                Some(DriverMatch::UnboundDriverExists) => unbound.push(format!(
                    "{} (would be claimed by {})",
                    describe(d),
                    d.driver_expected.join(", ")
                )),
                Some(DriverMatch::Other) => other.push(format!(
                    "{} bound to {} (modules.alias names {})",
                    describe(d),
                    d.driver_bound.as_deref().unwrap_or("?"),
                    d.driver_expected.join(", ")
                )),
                Some(DriverMatch::NoDriver) => no_driver += 1,
                Some(DriverMatch::Unknown) | None => {}
            }
        }
        let mut facts = format!(
            "{} devices: {bound} bound to the expected driver, {} to another driver, {no_driver} with no in-kernel driver",
            ctx.profile.pci_devices.len(),
            other.len()
        );
        if !other.is_empty() {
            facts.push_str(&format!(" ({})", other.join("; ")));
        }
        if unbound.is_empty() {
            Ok(CaseOutcome::pass(facts))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{} devices have an in-kernel driver but none is bound: {}; {facts}",
                unbound.len(),
                unbound.join("; ")
            )))
        }
    }
}

/// The negotiated PCIe width of each endpoint equals the maximum both ends
/// support. Speed is reported, not judged: devices lower it at idle.
pub struct LinkWidth;

impl Check for LinkWidth {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let out = ctx.run(walk::PCI_WALK)?;
        let recs = walk::parse_records(&out.stdout_str());
        let mut checked = 0;
        let mut degraded = Vec::new();
        for (addr, a) in &recs {
            let class = a
                .get("class")
                .and_then(|c| u32::from_str_radix(c.trim_start_matches("0x"), 16).ok())
                .unwrap_or(0);
            if class >> 8 == 0x0604 {
                continue; // bridges and ports: their maximum is the slot's, not the link's
            }
            let width = |k: &str| -> Option<u32> { a.get(k)?.trim().parse().ok() };
            let (Some(cur), Some(max)) = (width("current_link_width"), width("max_link_width"))
            else {
                continue;
            };
            if cur == 0 || max == 0 {
                continue; // link down or not reported
            }
            checked += 1;
            if cur < max {
                degraded.push(format!(
                    "{addr}: x{cur} of x{max} (speed {} of {})",
                    a.get("current_link_speed").map_or("?", String::as_str),
                    a.get("max_link_speed").map_or("?", String::as_str)
                ));
            }
        }
        if checked == 0 {
            return Ok(CaseOutcome::skip(
                "no PCIe endpoint reports its link width (conventional PCI or a virtual bus)",
            ));
        }
        if degraded.is_empty() {
            Ok(CaseOutcome::pass(format!(
                "{checked} PCIe endpoints trained at their maximum width"
            )))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{} of {checked} PCIe links trained narrower than possible (a seating, riser or slot fault): {}",
                degraded.len(),
                degraded.join("; ")
            )))
        }
    }
}
