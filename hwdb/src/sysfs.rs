//! Helpers that read sysfs snapshots from a path (a live `/sys` or an
//! unpacked dump). These are the only functions of the crate that touch
//! files besides [`crate::PciIds::from_path`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::inventory::SysfsPciDevice;

/// PCI attribute files identification uses.
pub const PCI_ATTRS: &[&str] = &[
    "vendor",
    "device",
    "subsystem_vendor",
    "subsystem_device",
    "class",
    "revision",
    "current_link_speed",
    "max_link_speed",
    "current_link_width",
    "max_link_width",
    "numa_node",
    "modalias",
];

/// Walk `<dir>` (normally `/sys/bus/pci/devices`): one entry per function.
/// Missing attribute files are skipped; an unreadable directory is an error.
pub fn read_sysfs_pci(dir: &Path) -> Result<Vec<SysfsPciDevice>, Error> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let address = entry.file_name().to_string_lossy().to_string();
        let mut attrs = BTreeMap::new();
        for a in PCI_ATTRS {
            if let Ok(v) = std::fs::read_to_string(path.join(a)) {
                attrs.insert((*a).to_string(), v.trim().to_string());
            }
        }
        let driver = std::fs::read_link(path.join("driver"))
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().to_string()));
        out.push(SysfsPciDevice {
            address,
            attrs,
            driver,
        });
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

/// Read the regular files of `<dir>` (normally `/sys/class/dmi/id`) into a
/// map; files that cannot be read (root-only serials) are skipped.
pub fn read_dmi_sysfs(dir: &Path) -> Result<BTreeMap<String, String>, Error> {
    let mut map = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        if name == "uevent" || name == "modalias" {
            continue;
        }
        if let Ok(v) = std::fs::read_to_string(&path) {
            map.insert(name, v.trim().to_string());
        }
    }
    Ok(map)
}
