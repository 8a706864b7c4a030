//! The published hardware summary of an identified machine.

use certlab_hwdb::HardwareProfile;
use certlab_reports::{HardwareSummary, PciSummary};

/// Condenses a [`HardwareProfile`] into what a result publishes.
pub fn hardware_summary(p: &HardwareProfile) -> HardwareSummary {
    HardwareSummary {
        cpu_family: p.cpu.family.as_str().to_string(),
        cpu_vendor: p.cpu.vendor.clone(),
        cpu_model: p.cpu.model_name.clone(),
        cpu_core: p.cpu.core.clone(),
        sockets: p.cpu.sockets,
        cores: p.cpu.cores,
        threads: p.cpu.threads,
        memory_bytes: p.memory.installed_bytes.or(p.memory.mem_total_bytes),
        system_vendor: p.system.vendor.clone(),
        system_product: p.system.product.clone(),
        bios_version: p.system.bios_version.clone(),
        pci_devices: p
            .pci_devices
            .iter()
            .map(|d| PciSummary {
                address: d.address.clone(),
                id: format!("{:04x}:{:04x}", d.vendor_id, d.device_id),
                class: format!("{:06x}", d.class),
                name: match (&d.vendor_name, &d.device_name) {
                    (Some(v), Some(n)) => Some(format!("{v} {n}")),
                    (Some(v), None) => Some(v.clone()),
                    _ => None,
                },
                driver: d.driver_bound.clone(),
            })
            .collect(),
        accelerators: p
            .accelerators
            .iter()
            .map(|a| format!("{} {} at {}", a.vendor, a.model, a.address))
            .collect(),
    }
}
