//! [`identify`]: an [`Inventory`] in, a [`HardwareProfile`] out, with the
//! source of every conclusion in `evidence` (field path → fact source).

use std::collections::BTreeMap;

use crate::accel_ids;
use crate::cpu::{identify_cpu, CpuEvidence, CpuSource};
use crate::cpuid::CpuidDump;
use crate::cpuinfo::CpuInfo;
use crate::dmidecode::{system_from_sysfs, Dmi};
use crate::inventory::{Inventory, SysfsPciDevice};
use crate::lscpu::Lscpu;
use crate::lspci::{
    normalize_address, normalize_link_speed, parse_lspci, parse_proc_bus_pci_devices, LspciDevice,
    PciLink,
};
use crate::meminfo::MemInfo;
use crate::modalias::{driver_match, ModulesAlias, PciMatchKey};
use crate::pciids::PciIds;
use crate::profile::{
    Accelerator, DriverMatch, HardwareProfile, MemoryProfile, PciDevice, SystemProfile,
};
use crate::text::parse_hex_u64;

const DMI_SYSFS: &str = "/sys/class/dmi/id";
const SYSFS_PCI: &str = "/sys/bus/pci/devices";

/// Identify everything the inventory allows. Never fails: missing or
/// unparsable facts leave fields empty.
pub fn identify(inv: &Inventory, ids: &PciIds) -> HardwareProfile {
    let mut prof = HardwareProfile::default();
    let ev = &mut prof.evidence;

    let cpuinfo = inv.cpuinfo.as_ref().map(|f| CpuInfo::parse(&f.text));
    let lscpu = inv.lscpu.as_ref().map(|f| Lscpu::parse(&f.text));
    let cpuid = inv.cpuid.as_ref().map(|f| CpuidDump::parse(&f.text));
    let dmi = inv.dmidecode.as_ref().map(|f| Dmi::parse(&f.text));

    // System: dmidecode first, /sys/class/dmi/id fills the gaps.
    let (system, sys_src) = system(inv, dmi.as_ref(), ev);
    prof.system = system;

    // CPU.
    let dmi_procs = dmi.as_ref().map(Dmi::processors).unwrap_or_default();
    let cpu_ev = CpuEvidence {
        cpuinfo: cpuinfo.as_ref(),
        lscpu: lscpu.as_ref(),
        cpuid: cpuid.as_ref(),
        dmi_processors: &dmi_procs,
        system: Some(&prof.system),
        machine: inv.machine.as_deref(),
    };
    let cpu = identify_cpu(&cpu_ev);
    for (field, src) in &cpu.sources {
        let s = match src {
            CpuSource::Cpuinfo => inv.cpuinfo.as_ref().map(|f| f.source.clone()),
            CpuSource::Lscpu => inv.lscpu.as_ref().map(|f| f.source.clone()),
            CpuSource::Cpuid => inv.cpuid.as_ref().map(|f| f.source.clone()),
            CpuSource::DmiProcessor => inv.dmidecode.as_ref().map(|f| f.source.clone()),
            CpuSource::DmiSystem => sys_src.clone(),
            CpuSource::Machine => Some("uname -m".to_string()),
        };
        if let Some(s) = s {
            ev.insert(format!("cpu.{field}"), s);
        }
    }
    prof.cpu = cpu.profile;

    // Hypervisor.
    if let Some((h, s)) = hypervisor(
        inv,
        lscpu.as_ref(),
        cpuinfo.as_ref(),
        &prof.system,
        &sys_src,
    ) {
        prof.system.hypervisor = Some(h);
        ev.insert("system.hypervisor".into(), s);
    }

    // Memory.
    prof.memory = memory(inv, dmi.as_ref(), ev);

    // PCI.
    let alias = inv
        .modules_alias
        .as_ref()
        .map(|f| ModulesAlias::parse(&f.text));
    let (devices, links) = pci_devices(inv, ids, alias.as_ref(), ev);
    prof.accelerators = accelerators(&devices, &links, ids);
    if !prof.accelerators.is_empty() {
        if let Some(s) = ev.get("pci_devices").cloned() {
            ev.insert("accelerators".into(), s);
        }
    }
    prof.pci_devices = devices;
    prof
}

fn system(
    inv: &Inventory,
    dmi: Option<&Dmi>,
    ev: &mut BTreeMap<String, String>,
) -> (SystemProfile, Option<String>) {
    let from_dmi = dmi.map(Dmi::system_profile).unwrap_or_default();
    let from_sysfs = system_from_sysfs(&inv.dmi_sysfs);
    let dmi_src = inv.dmidecode.as_ref().map(|f| f.source.clone());
    let mut out = SystemProfile::default();
    let mut any_src: Option<String> = None;
    macro_rules! merge {
        ($($f:ident),*) => {$(
            if let Some(v) = from_dmi.$f.clone() {
                out.$f = Some(v);
                if let Some(s) = &dmi_src {
                    ev.insert(concat!("system.", stringify!($f)).into(), s.clone());
                    any_src.get_or_insert_with(|| s.clone());
                }
            } else if let Some(v) = from_sysfs.$f.clone() {
                out.$f = Some(v);
                ev.insert(concat!("system.", stringify!($f)).into(), DMI_SYSFS.into());
                any_src.get_or_insert_with(|| DMI_SYSFS.to_string());
            }
        )*};
    }
    merge!(
        vendor,
        product,
        sku,
        family,
        serial,
        board_vendor,
        board_name,
        bios_vendor,
        bios_version,
        bios_date,
        chassis_type
    );
    if let Some(b) = from_dmi.bmc_present {
        out.bmc_present = Some(b);
        if let Some(s) = &dmi_src {
            ev.insert("system.bmc_present".into(), s.clone());
        }
    }
    (out, any_src)
}

fn hypervisor(
    inv: &Inventory,
    lscpu: Option<&Lscpu>,
    cpuinfo: Option<&CpuInfo>,
    sys: &SystemProfile,
    sys_src: &Option<String>,
) -> Option<(String, String)> {
    if let Some(h) = lscpu.and_then(|l| l.get("Hypervisor vendor")) {
        let src = inv
            .lscpu
            .as_ref()
            .map(|f| f.source.clone())
            .unwrap_or_default();
        return Some((h.to_string(), src));
    }
    // DMI product names hypervisors set (SMBIOS type 1 of the guest).
    const PRODUCTS: &[(&str, &str)] = &[
        ("VirtualBox", "Oracle"),
        ("KVM", "KVM"),
        ("VMware", "VMware"),
        ("Virtual Machine", "Microsoft"),
        ("HVM domU", "Xen"),
        ("Standard PC", "KVM"),
    ];
    if let Some(p) = &sys.product {
        if let Some((_, h)) = PRODUCTS.iter().find(|(k, _)| p.contains(k)) {
            return Some((h.to_string(), sys_src.clone().unwrap_or_default()));
        }
    }
    let flags = cpuinfo.and_then(|c| c.get("flags"))?;
    flags
        .split_whitespace()
        .any(|f| f == "hypervisor")
        .then(|| {
            let src = inv
                .cpuinfo
                .as_ref()
                .map(|f| f.source.clone())
                .unwrap_or_default();
            ("unknown".to_string(), src)
        })
}

fn memory(inv: &Inventory, dmi: Option<&Dmi>, ev: &mut BTreeMap<String, String>) -> MemoryProfile {
    let mut m = MemoryProfile::default();
    if let Some(f) = &inv.meminfo {
        m.mem_total_bytes = MemInfo::parse(&f.text).mem_total_bytes();
        if m.mem_total_bytes.is_some() {
            ev.insert("memory.mem_total_bytes".into(), f.source.clone());
        }
    }
    if let (Some(d), Some(f)) = (dmi, &inv.dmidecode) {
        m.devices = d.memory_devices();
        if !m.devices.is_empty() {
            m.installed_bytes = Some(m.devices.iter().map(|d| d.size_bytes).sum());
            ev.insert("memory.installed_bytes".into(), f.source.clone());
            ev.insert("memory.devices".into(), f.source.clone());
        }
    }
    m
}

/// Whether a text is the kernel's `/proc/bus/pci/devices` table.
fn looks_like_proc_pci(text: &str) -> bool {
    text.lines().next().is_some_and(|l| {
        let cols: Vec<&str> = l.split('\t').collect();
        cols.len() >= 17 && cols[0].len() == 4 && cols[1].len() == 8
    })
}

fn from_sysfs(s: &SysfsPciDevice) -> (LspciDevice, Option<PciLink>, Option<PciLink>) {
    let hex = |k: &str| s.attrs.get(k).and_then(|v| parse_hex_u64(v));
    let d = LspciDevice {
        address: normalize_address(&s.address),
        class: hex("class").and_then(|c| u32::try_from(c).ok()),
        vendor_id: hex("vendor").and_then(|v| u16::try_from(v).ok()),
        device_id: hex("device").and_then(|v| u16::try_from(v).ok()),
        subvendor_id: hex("subsystem_vendor").and_then(|v| u16::try_from(v).ok()),
        subdevice_id: hex("subsystem_device").and_then(|v| u16::try_from(v).ok()),
        revision: hex("revision").and_then(|v| u8::try_from(v).ok()),
        driver: s.driver.clone(),
        binding_known: true,
        prog_if_known: true,
        subsystem_known: true,
        ..LspciDevice::default()
    };
    let link = |sp: &str, w: &str| {
        let speed = s.attrs.get(sp).and_then(|v| normalize_link_speed(v));
        let width = s.attrs.get(w).map(|v| format!("x{}", v.trim()));
        (speed.is_some() || width.is_some()).then_some(PciLink { speed, width })
    };
    let cur = link("current_link_speed", "current_link_width");
    let max = link("max_link_speed", "max_link_width");
    (d, cur, max)
}

/// Resolve vendor/device/class ids of name-only `lspci` lines through `pci.ids`.
pub fn resolve_names(d: &mut LspciDevice, ids: &PciIds) {
    if d.class.is_none() {
        if let Some(c) = d.class_name.as_deref().and_then(|n| ids.class_by_name(n)) {
            d.class = Some((u32::from(c) << 8) | u32::from(d.prog_if.unwrap_or(0)));
        }
    }
    if d.vendor_id.is_some() {
        return;
    }
    let Some(desc) = d.description.clone() else {
        return;
    };
    // Longest vendor name that prefixes the description.
    let Some((vid, len)) = ids.vendor_prefix_of(&desc) else {
        return;
    };
    d.vendor_id = Some(vid);
    let rest = desc[len..].trim();
    d.device_id = rest
        .strip_prefix("Device ")
        .and_then(|x| {
            (x.len() == 4)
                .then(|| u16::from_str_radix(x, 16).ok())
                .flatten()
        })
        .or_else(|| ids.device_by_name(vid, rest));
}

/// The modalias fields this function's evidence shows (see [`crate::modalias`]).
fn match_key(d: &LspciDevice, vendor: u16, device: u16) -> PciMatchKey {
    let sub = |x: Option<u16>| {
        if d.subsystem_known {
            Some(x.unwrap_or(0))
        } else {
            x
        }
    };
    PciMatchKey {
        vendor,
        device,
        subvendor: sub(d.subvendor_id),
        subdevice: sub(d.subdevice_id),
        base_class: d.class.map(|c| (c >> 16) as u8),
        sub_class: d.class.map(|c| (c >> 8) as u8),
        prog_if: d.class.filter(|_| d.prog_if_known).map(|c| c as u8),
    }
}

type Links = BTreeMap<String, (Option<PciLink>, Option<PciLink>)>;

fn pci_devices(
    inv: &Inventory,
    ids: &PciIds,
    alias: Option<&ModulesAlias>,
    ev: &mut BTreeMap<String, String>,
) -> (Vec<PciDevice>, Links) {
    let mut merged: BTreeMap<String, LspciDevice> = BTreeMap::new();
    let mut links: Links = BTreeMap::new();
    let mut sources: Vec<String> = Vec::new();
    if let Some(f) = &inv.lspci {
        let devs = if looks_like_proc_pci(&f.text) {
            parse_proc_bus_pci_devices(&f.text)
        } else {
            parse_lspci(&f.text)
        };
        if !devs.is_empty() {
            sources.push(f.source.clone());
        }
        for mut d in devs {
            resolve_names(&mut d, ids);
            links.insert(d.address.clone(), (d.link_sta.clone(), d.link_cap.clone()));
            merged.insert(d.address.clone(), d);
        }
    }
    if !inv.sysfs_pci.is_empty() {
        sources.push(SYSFS_PCI.to_string());
    }
    for s in &inv.sysfs_pci {
        let (d, cur, max) = from_sysfs(s);
        let e = links.entry(d.address.clone()).or_default();
        if cur.is_some() {
            e.0 = cur;
        }
        if max.is_some() {
            e.1 = max;
        }
        match merged.get_mut(&d.address) {
            Some(m) => {
                // sysfs wins for numbers; lspci -k for the driver when sysfs lacks it.
                m.vendor_id = d.vendor_id.or(m.vendor_id);
                m.device_id = d.device_id.or(m.device_id);
                m.subvendor_id = d.subvendor_id.or(m.subvendor_id);
                m.subdevice_id = d.subdevice_id.or(m.subdevice_id);
                m.class = d.class.or(m.class);
                m.revision = d.revision.or(m.revision);
                if d.driver.is_some() {
                    m.driver = d.driver;
                }
                m.binding_known = true;
                m.prog_if_known = true;
                m.subsystem_known = true;
            }
            None => {
                merged.insert(d.address.clone(), d);
            }
        }
    }
    if !sources.is_empty() {
        ev.insert("pci_devices".into(), sources.join(" + "));
    }
    if let Some(f) = &inv.modules_alias {
        ev.insert("pci_devices.driver_expected".into(), f.source.clone());
    }
    let builtin = inv
        .modules_builtin
        .as_ref()
        .map(|f| crate::modalias::builtin_modules(&f.text))
        .unwrap_or_default();
    if let Some(f) = &inv.modules_builtin {
        ev.insert("pci_devices.driver_builtin".into(), f.source.clone());
    }
    let out = merged
        .into_values()
        .filter_map(|d| {
            let (vendor_id, device_id) = (d.vendor_id?, d.device_id?);
            let class = d.class.unwrap_or(0);
            let mut p = PciDevice {
                address: d.address.clone(),
                vendor_id,
                device_id,
                subvendor_id: d.subvendor_id,
                subdevice_id: d.subdevice_id,
                class,
                revision: d.revision,
                vendor_name: ids
                    .vendor_name(vendor_id)
                    .map(str::to_string)
                    .or(d.vendor_name.clone()),
                device_name: ids
                    .device_name(vendor_id, device_id)
                    .map(str::to_string)
                    .or_else(|| {
                        accel_ids::lookup(vendor_id, device_id, class)
                            .filter(|e| e.device_id.is_some())
                            .map(|e| e.model.to_string())
                    })
                    .or(d.device_name.clone()),
                class_name: d
                    .class
                    .and_then(|c| ids.class_name(c).map(str::to_string))
                    .or(d.class_name.clone()),
                driver_bound: d.driver.clone(),
                ..PciDevice::default()
            };
            let key = match_key(&d, vendor_id, device_id);
            if let Some(a) = alias {
                p.driver_expected = a.modules_for_key(&key);
            }
            p.driver_match = Some(driver_match(
                &p.driver_expected,
                p.driver_bound.as_deref(),
                alias.is_some(),
                d.binding_known,
            ));
            // Without the class, class-matched drivers (xhci, ahci, nvme, …)
            // cannot be named: an empty list proves nothing.
            if key.base_class.is_none() && p.driver_expected.is_empty() {
                p.driver_match = Some(DriverMatch::Unknown);
            }
            // modules.alias cannot name a built-in driver: bound to one is
            // the kernel's own driver.
            if matches!(
                p.driver_match,
                Some(DriverMatch::Other | DriverMatch::Unknown)
            ) {
                if let Some(bound) = p.driver_bound.as_deref() {
                    if builtin
                        .iter()
                        .any(|m| crate::modalias::driver_is_module(bound, m))
                    {
                        p.driver_match = Some(DriverMatch::BuiltIn);
                    }
                }
            }
            Some(p)
        })
        .collect();
    (out, links)
}

fn accelerators(devices: &[PciDevice], links: &Links, _ids: &PciIds) -> Vec<Accelerator> {
    devices
        .iter()
        .filter(|d| accel_ids::is_accelerator(d.vendor_id, d.device_id, d.class))
        .map(|d| {
            let entry = accel_ids::lookup(d.vendor_id, d.device_id, d.class);
            let (cur, max) = links.get(&d.address).cloned().unwrap_or_default();
            Accelerator {
                address: d.address.clone(),
                vendor_id: d.vendor_id,
                device_id: d.device_id,
                vendor: d
                    .vendor_name
                    .clone()
                    .or_else(|| entry.map(|e| e.vendor.to_string()))
                    .unwrap_or_else(|| format!("{:04x}", d.vendor_id)),
                model: d
                    .device_name
                    .clone()
                    .or_else(|| entry.map(|e| e.model.to_string()))
                    .unwrap_or_else(|| format!("Device {:04x}", d.device_id)),
                link_speed: cur.as_ref().and_then(|l| l.speed.clone()),
                link_width: cur.as_ref().and_then(|l| l.width.clone()),
                max_link_speed: max.as_ref().and_then(|l| l.speed.clone()),
                max_link_width: max.as_ref().and_then(|l| l.width.clone()),
            }
        })
        .collect()
}
