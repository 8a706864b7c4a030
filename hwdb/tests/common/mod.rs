//! Loading fixture folders (copies of real machine dumps) into inventories.

use std::path::{Path, PathBuf};

use certlab_hwdb::{sysfs, Fact, Inventory};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Every machine folder, sorted.
pub fn machine_dirs() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(fixtures().join("machines"))
        .expect("fixtures/machines")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

fn read(p: &Path) -> String {
    // Some dumps are not valid UTF-8 in places (firmware strings).
    String::from_utf8_lossy(&std::fs::read(p).expect("read fixture")).into_owned()
}

/// Build an inventory from the files a folder holds.
pub fn load_inventory(dir: &Path) -> Inventory {
    let mut inv = Inventory::default();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("machine dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        let p = dir.join(&n);
        match n.as_str() {
            "cpuinfo" => inv.cpuinfo = Some(Fact::new("/proc/cpuinfo", read(&p))),
            "dmidecode.txt" => inv.dmidecode = Some(Fact::new("dmidecode", read(&p))),
            "cpuid-pu0.txt" => inv.cpuid = Some(Fact::new("hwloc-gather-cpuid pu0", read(&p))),
            "proc-bus-pci-devices.txt" if inv.lspci.is_none() => {
                inv.lspci = Some(Fact::new("/proc/bus/pci/devices", read(&p)))
            }
            "sys-class-dmi-id" => {
                inv.dmi_sysfs = sysfs::read_dmi_sysfs(&p).expect("dmi sysfs snapshot")
            }
            _ if n.starts_with("lscpu") => inv.lscpu = Some(Fact::new("lscpu", read(&p))),
            _ if n.starts_with("lspci") => inv.lspci = Some(Fact::new("lspci -nn", read(&p))),
            _ => {}
        }
    }
    inv
}
