//! The machines the simulator can be: each built from a real machine's
//! evidence, the dumps of `hwdb/tests/fixtures/` (their sources and
//! licences are in `hwdb/tests/fixtures/PROVENANCE.tsv`).
//!
//! A [`ProfileDef`] names the dumps a profile is made of and the few facts
//! no dump holds (memory size where no SMBIOS table lists DIMMs, the disks,
//! the kernel the sim runs). [`Profile::get`] builds it once per process
//! and hands out an `Arc`, so a thousand simulated machines share one copy
//! of every dump.
//!
//! Where a dump has one `/proc/cpuinfo` stanza (archspec's targets), it is
//! repeated for each simulated CPU with its `processor` number; where a
//! machine is known only by a CPUID dump (hwloc), the stanza is written from
//! its vendor, signature and brand leaves.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use certlab_hwdb::lspci::{parse_lspci, parse_proc_bus_pci_devices};
#[cfg(test)]
use certlab_hwdb::CpuInfo;
use certlab_hwdb::{CpuidDump, Dmi, PciIds};

use crate::inventory::Arch;

const FIX: &str = "hwdb/tests/fixtures/";

macro_rules! fixture {
    ($p:literal) => {
        (
            $p,
            include_str!(concat!("../../../hwdb/tests/fixtures/", $p)),
        )
    };
}

/// A dump: its path under `hwdb/tests/fixtures/` and its text.
pub type Dump = (&'static str, &'static str);

/// Where a profile's CPUs come from.
#[derive(Debug, Clone, Copy)]
pub enum CpuSource {
    /// A `/proc/cpuinfo`; a single stanza is repeated `cpus` times.
    Cpuinfo { dump: Dump, cpus: usize },
    /// An x86 CPUID dump of one logical CPU, for `cpus` CPUs.
    Cpuid { dump: Dump, cpus: usize },
}

/// Where a profile's SMBIOS identity comes from.
#[derive(Debug, Clone, Copy)]
pub enum DmiSource {
    None,
    /// `dmidecode` output: also served as `dmidecode`, and the DIMMs it
    /// lists set the memory size.
    Dmidecode(Dump),
    /// Files of `/sys/class/dmi/id` (name, dump).
    Sysfs(&'static [(&'static str, Dump)]),
}

/// One PCI function no dump lists (profiles whose dumps have no PCI
/// listing get a small, typical set, marked as such in [`ProfileDef::note`]).
#[derive(Debug, Clone, Copy)]
pub struct SynthPci {
    pub address: &'static str,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    pub driver: Option<&'static str>,
}

/// Where a profile's PCI functions come from.
#[derive(Debug, Clone, Copy)]
pub enum PciSource {
    /// `lspci -nn`, `lspci -vvv` (bindings and link widths when it has them).
    Lspci(Dump),
    /// `/proc/bus/pci/devices` (bindings, no classes): `classes` gives the
    /// class of each vendor:device the table holds.
    ProcBus {
        dump: Dump,
        classes: &'static [(u16, u16, u32)],
    },
    Synthetic(&'static [SynthPci]),
}

/// A profile as written down: which dumps, and what no dump says.
#[derive(Debug, Clone, Copy)]
pub struct ProfileDef {
    pub name: &'static str,
    pub arch: Arch,
    /// What the machine is, in a few words.
    pub title: &'static str,
    pub cpu: CpuSource,
    /// `lscpu` output generated from the same snapshot, when there is one.
    pub lscpu: Option<Dump>,
    pub dmi: DmiSource,
    pub pci: PciSource,
    /// Memory when the DMI source lists no DIMMs.
    pub mem_gib: u64,
    pub kernel: &'static str,
    pub os_release: &'static str,
    /// (current, available) clocksources.
    pub clocksource: (&'static str, &'static str),
    /// What was assumed beyond the dumps.
    pub note: &'static str,
}

const DEBIAN12: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
const OPENEULER: &str = "NAME=\"openEuler\"\nVERSION=\"22.03 (LTS-SP3)\"\nID=\"openEuler\"\nVERSION_ID=\"22.03\"\nPRETTY_NAME=\"openEuler 22.03 (LTS-SP3)\"\nANSI_COLOR=\"0;31\"\n";
const KYLIN: &str = "NAME=\"Kylin Linux Advanced Server\"\nVERSION=\"V10 (Lance)\"\nID=\"kylin\"\nVERSION_ID=\"V10\"\nPRETTY_NAME=\"Kylin Linux Advanced Server V10 (Lance)\"\n";
const ANOLIS: &str = "NAME=\"Anolis OS\"\nVERSION=\"8.9\"\nID=\"anolis\"\nVERSION_ID=\"8.9\"\nPRETTY_NAME=\"Anolis OS 8.9\"\n";

/// NVMe, NIC and USB functions for profiles with no PCI listing: a Samsung
/// PM9A3 NVMe SSD, an Intel I350 NIC, a Renesas uPD720202 xHCI controller.
const TYPICAL_PCI: &[SynthPci] = &[
    SynthPci {
        address: "0000:01:00.0",
        vendor: 0x144d,
        device: 0xa80a,
        class: 0x010802,
        driver: Some("nvme"),
    },
    SynthPci {
        address: "0000:02:00.0",
        vendor: 0x8086,
        device: 0x1521,
        class: 0x020000,
        driver: Some("igb"),
    },
    SynthPci {
        address: "0000:03:00.0",
        vendor: 0x1912,
        device: 0x0015,
        class: 0x0c0330,
        driver: Some("xhci_hcd"),
    },
];

const KUNPENG_DMI: &[(&str, Dump)] = &[
    (
        "sys_vendor",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/sys_vendor"),
    ),
    (
        "product_name",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/product_name"),
    ),
    (
        "bios_vendor",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/bios_vendor"),
    ),
    (
        "bios_version",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/bios_version"),
    ),
    (
        "bios_date",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/bios_date"),
    ),
    (
        "board_vendor",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/board_vendor"),
    ),
    (
        "board_name",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/board_name"),
    ),
    (
        "chassis_type",
        fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/sys-class-dmi-id/chassis_type"),
    ),
];

/// Classes of the Milk-V Pioneer's functions (its `/proc/bus/pci/devices`
/// has none): the bridges of its PCIe switch and ports, and the
/// controllers its bound drivers serve.
const PIONEER_CLASSES: &[(u16, u16, u32)] = &[
    (0x1e30, 0x2042, 0x060400),
    (0x1b21, 0x2824, 0x060400),
    (0x1b21, 0x2142, 0x0c0330),
    (0x10ec, 0x8125, 0x020000),
    (0x1106, 0x3483, 0x0c0330),
    (0x144d, 0xa80c, 0x010802),
    (0x197b, 0x0585, 0x010601),
];

/// Every profile, by name.
pub static PROFILES: &[ProfileDef] = &[
    ProfileDef {
        name: "kunpeng-920",
        arch: Arch::Aarch64,
        title: "Huawei XA320 V2 (Kunpeng 920, 128 cores)",
        cpu: CpuSource::Cpuinfo {
            dump: fixture!("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/cpuinfo"),
            cpus: 128,
        },
        lscpu: None,
        dmi: DmiSource::Sysfs(KUNPENG_DMI),
        pci: PciSource::Lspci(fixture!(
            "machines/kunpeng--linuxhw-HUAWEI-PGU-WBY0-1C58824AF241/lspci-nn.derived-from-lspci-vvnn.txt"
        )),
        mem_gib: 256,
        kernel: "5.10.0-182.0.0.95.oe2203sp3.aarch64",
        os_release: OPENEULER,
        clocksource: ("arch_sys_counter", "arch_sys_counter"),
        note: "CPUs and SMBIOS of hwloc's 128arm node; PCI functions of a Kunpeng 920 desktop (linuxhw PGU-WBY0), the same SoC's on-die devices; 256 GiB assumed",
    },
    ProfileDef {
        name: "phytium-d2000",
        arch: Arch::Aarch64,
        title: "Phytium D2000/8 server board",
        cpu: CpuSource::Cpuinfo {
            dump: fixture!("machines/phytium--armsocs-phytium-d2000-8/cpuinfo"),
            cpus: 8,
        },
        lscpu: None,
        dmi: DmiSource::Dmidecode(fixture!(
            "machines/phytium--linuxhw-D2000-17EC7603AC2B/dmidecode.txt"
        )),
        pci: PciSource::Synthetic(TYPICAL_PCI),
        mem_gib: 16,
        kernel: "4.19.90-52.22.v2207.ky10.aarch64",
        os_release: KYLIN,
        clocksource: ("arch_sys_counter", "arch_sys_counter"),
        note: "CPUs of arm-socs-table's D2000/8, SMBIOS and DIMMs of a linuxhw D2000 server; typical PCI functions assumed (no listing)",
    },
    ProfileDef {
        name: "hygon-dhyana",
        arch: Arch::X86_64,
        title: "Hygon Dhyana (C86), 32 cores",
        cpu: CpuSource::Cpuid {
            dump: fixture!("machines/hygon--hwloc-x86cpuid-Hygon-Dhyana-32cores/cpuid-pu0.txt"),
            cpus: 32,
        },
        lscpu: None,
        dmi: DmiSource::None,
        pci: PciSource::Synthetic(TYPICAL_PCI),
        mem_gib: 128,
        kernel: "5.10.134-16.an8.x86_64",
        os_release: ANOLIS,
        clocksource: ("tsc", "tsc hpet acpi_pm"),
        note: "CPUs from hwloc's CPUID dump of a 32-core Dhyana; no SMBIOS; typical PCI functions and 128 GiB assumed",
    },
    ProfileDef {
        name: "loongson-3a5000",
        arch: Arch::Loongarch64,
        title: "Loongson 3A5000-HV with the 7A2000 bridge",
        cpu: CpuSource::Cpuinfo {
            dump: fixture!("machines/loongson--ul-loongarch-loongson_3a5000_hv/cpuinfo"),
            cpus: 4,
        },
        lscpu: Some(fixture!(
            "machines/loongson--ul-loongarch-loongson_3a5000_hv/lscpu.expected-by-util-linux-tests.txt"
        )),
        dmi: DmiSource::Dmidecode(fixture!(
            "machines/loongson--linuxhw-Loongson-3A5000-HV-7A2000-1w-V0-1-EVB-AD783F2A0698/dmidecode.txt"
        )),
        pci: PciSource::Lspci(fixture!(
            "machines/loongson--linuxhw-Loongson-3A6000-HV-7A2000-NUC-878A24D41071/lspci-nn.derived-from-lspci-vvnn.txt"
        )),
        mem_gib: 16,
        kernel: "6.1.0-27-loong64",
        os_release: DEBIAN12,
        clocksource: ("Constant", "Constant"),
        note: "CPUs of util-linux's 3A5000-HV dump, SMBIOS of a linuxhw 3A5000-HV-7A2000 board, PCI functions of a 7A2000 machine (linuxhw 3A6000 NUC); 16 GiB assumed",
    },
    ProfileDef {
        name: "riscv-sg2042",
        arch: Arch::Riscv64,
        title: "Milk-V Pioneer (Sophgo SG2042, 64 cores)",
        cpu: CpuSource::Cpuinfo {
            dump: fixture!("machines/riscv--ul-rv64-milkvpioneer/cpuinfo"),
            cpus: 64,
        },
        lscpu: Some(fixture!(
            "machines/riscv--ul-rv64-milkvpioneer/lscpu.expected-by-util-linux-tests.txt"
        )),
        dmi: DmiSource::None,
        pci: PciSource::ProcBus {
            dump: fixture!("machines/riscv--ul-rv64-milkvpioneer/proc-bus-pci-devices.txt"),
            classes: PIONEER_CLASSES,
        },
        mem_gib: 128,
        kernel: "6.1.0-27-riscv64",
        os_release: DEBIAN12,
        clocksource: ("riscv_clocksource", "riscv_clocksource"),
        note: "CPUs, lscpu and PCI bindings of util-linux's Milk-V Pioneer dump; classes from the bound drivers; 128 GiB assumed",
    },
    ProfileDef {
        name: "intel-spr-h100",
        arch: Arch::X86_64,
        title: "Intel Xeon Platinum 8480+ with 8 NVIDIA H100",
        cpu: CpuSource::Cpuinfo {
            dump: fixture!("machines/intel--archspec-linux-unknown-sapphirerapids/cpuinfo"),
            cpus: 16,
        },
        lscpu: None,
        dmi: DmiSource::None,
        pci: PciSource::Lspci(fixture!("lspci/lspci-vvv.txt")),
        mem_gib: 2048,
        kernel: "6.1.0-27-amd64",
        os_release: DEBIAN12,
        clocksource: ("tsc", "tsc hpet acpi_pm"),
        note: "a 16-CPU slice of archspec's 8480+ stanza; PCI functions, bindings and link widths of gpud's lspci -vvv of an H100 server; the GPUs bound to the in-tree nouveau (the vendor's driver taints the kernel); 2 TiB assumed",
    },
    ProfileDef {
        name: "amd-epyc-a100",
        arch: Arch::X86_64,
        title: "AMD EPYC 9654 with 8 NVIDIA A100 SXM4",
        cpu: CpuSource::Cpuinfo {
            dump: fixture!("machines/amd--archspec-linux-rocky8.5-zen4/cpuinfo"),
            cpus: 16,
        },
        lscpu: None,
        dmi: DmiSource::None,
        pci: PciSource::Lspci(fixture!("lspci/lspci.nn.a100.txt")),
        mem_gib: 1024,
        kernel: "6.1.0-27-amd64",
        os_release: DEBIAN12,
        clocksource: ("tsc", "tsc hpet acpi_pm"),
        note: "a 16-CPU slice of archspec's EPYC 9654 stanza; PCI functions of gpud's lspci -nn of an A100 machine, the GPUs bound to nouveau; 1 TiB assumed",
    },
];

/// The names of every profile.
pub fn names() -> Vec<&'static str> {
    PROFILES.iter().map(|p| p.name).collect()
}

/// One PCI function of a built profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PciFn {
    /// `dddd:bb:dd.f`
    pub address: String,
    pub vendor: u16,
    pub device: u16,
    pub class: u32,
    pub revision: u8,
    pub driver: Option<String>,
    /// (current, max) link width and speed, when the source lists them.
    pub width: Option<(u32, u32)>,
    pub speed: Option<(String, String)>,
}

impl PciFn {
    /// A storage controller or a network function: what a disk or NIC hangs off.
    pub fn is_storage(&self) -> bool {
        self.class >> 16 == 0x01
    }
    pub fn is_network(&self) -> bool {
        self.class >> 16 == 0x02
    }
}

/// A profile built from its dumps, shared by every machine that is it.
#[derive(Debug)]
pub struct Profile {
    pub def: &'static ProfileDef,
    /// `/proc/cpuinfo`, one stanza per CPU.
    pub cpuinfo: String,
    /// Each CPU's stanza, for a machine with a CPU offline.
    pub stanzas: Vec<String>,
    pub cpus: usize,
    pub dmi: BTreeMap<String, String>,
    pub dmidecode: Option<&'static str>,
    pub mem_bytes: u64,
    pub pci: Vec<PciFn>,
    /// The CPU platform family `hwdb` identifies from the CPUs (`kunpeng`,
    /// `hygon`, …): what a job's `--require family=…` matches.
    pub family: String,
    /// The dumps it was made of (paths under `hwdb/tests/fixtures/`).
    pub sources: Vec<String>,
}

impl Profile {
    /// The profile called `name`, built on first use.
    pub fn get(name: &str) -> Option<Arc<Profile>> {
        static BUILT: OnceLock<Vec<Arc<Profile>>> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                PROFILES
                    .iter()
                    .map(|d| Arc::new(Profile::build(d)))
                    .collect()
            })
            .iter()
            .find(|p| p.def.name == name)
            .cloned()
    }

    fn build(def: &'static ProfileDef) -> Profile {
        let mut sources = Vec::new();
        let (stanzas, cpus) = match def.cpu {
            CpuSource::Cpuinfo { dump, cpus } => {
                sources.push(format!("{FIX}{}", dump.0));
                (cpuinfo_stanzas(dump.1, cpus), cpus)
            }
            CpuSource::Cpuid { dump, cpus } => {
                sources.push(format!("{FIX}{}", dump.0));
                (cpuid_stanzas(dump.1, cpus), cpus)
            }
        };
        let cpuinfo = stanzas.concat();
        if let Some(l) = def.lscpu {
            sources.push(format!("{FIX}{}", l.0));
        }
        let mut dmi = BTreeMap::new();
        let mut dmidecode = None;
        let mut dimm_bytes = 0u64;
        match def.dmi {
            DmiSource::None => {}
            DmiSource::Dmidecode(d) => {
                sources.push(format!("{FIX}{}", d.0));
                dmidecode = Some(d.1);
                let parsed = Dmi::parse(d.1);
                for (t, key, field) in [
                    (0u8, "Vendor", "bios_vendor"),
                    (0, "Version", "bios_version"),
                    (0, "Release Date", "bios_date"),
                    (1, "Manufacturer", "sys_vendor"),
                    (1, "Product Name", "product_name"),
                    (1, "Version", "product_version"),
                    (2, "Manufacturer", "board_vendor"),
                    (2, "Product Name", "board_name"),
                ] {
                    if let Some(v) = parsed.of_type(t).next().and_then(|r| r.get(key)) {
                        dmi.insert(field.to_string(), v);
                    }
                }
                dimm_bytes = parsed.memory_devices().iter().map(|m| m.size_bytes).sum();
            }
            DmiSource::Sysfs(files) => {
                for (name, d) in files {
                    sources.push(format!("{FIX}{}", d.0));
                    dmi.insert(name.to_string(), d.1.trim().to_string());
                }
            }
        }
        let mem_bytes = if dimm_bytes > 0 {
            dimm_bytes
        } else {
            def.mem_gib << 30
        };
        let pci = match def.pci {
            PciSource::Lspci(d) => {
                sources.push(format!("{FIX}{}", d.0));
                from_lspci(d.1)
            }
            PciSource::ProcBus { dump, classes } => {
                sources.push(format!("{FIX}{}", dump.0));
                from_proc_bus(dump.1, classes)
            }
            PciSource::Synthetic(list) => list
                .iter()
                .map(|s| PciFn {
                    address: s.address.to_string(),
                    vendor: s.vendor,
                    device: s.device,
                    class: s.class,
                    revision: 1,
                    driver: s.driver.map(str::to_string),
                    width: None,
                    speed: None,
                })
                .collect(),
        };
        let inventory = certlab_hwdb::Inventory {
            cpuinfo: Some(certlab_hwdb::Fact::new("/proc/cpuinfo", cpuinfo.clone())),
            machine: Some(def.arch.as_str().to_string()),
            ..Default::default()
        };
        let family = certlab_hwdb::identify(&inventory, PciIds::embedded())
            .cpu
            .family
            .as_str()
            .to_string();
        Profile {
            def,
            family,
            cpuinfo,
            stanzas,
            cpus,
            dmi,
            dmidecode,
            mem_bytes,
            pci,
            sources,
        }
    }

    /// The first NVMe or SATA/SAS controller: where the system disk hangs.
    pub fn disk_controller(&self) -> Option<&PciFn> {
        self.pci
            .iter()
            .find(|f| f.class >> 8 == 0x0108 && f.driver.is_some())
            .or_else(|| {
                self.pci
                    .iter()
                    .find(|f| f.is_storage() && f.driver.is_some())
            })
    }

    /// The first Ethernet function with a driver: where the NIC hangs.
    pub fn nic_function(&self) -> Option<&PciFn> {
        self.pci
            .iter()
            .find(|f| f.class >> 8 == 0x0200 && f.driver.is_some())
    }

    /// The function the `unbound-device` defect leaves without its driver:
    /// the last bound function that is neither storage, network nor a
    /// bridge, so no other check depends on it.
    pub fn unbindable(&self) -> Option<&PciFn> {
        self.pci.iter().rev().find(|f| {
            f.driver.as_deref().is_some_and(is_module) && !f.is_storage() && !f.is_network()
        })
    }
}

/// A driver that is a loadable module with `modules.alias` entries (not
/// the PCIe port service driver, which is built in).
pub fn is_module(driver: &str) -> bool {
    !matches!(driver, "pcieport" | "shpchp")
}

fn cpuinfo_stanzas(text: &str, cpus: usize) -> Vec<String> {
    let blocks: Vec<&str> = text
        .split("\n\n")
        .map(|b| b.trim_matches('\n'))
        .filter(|b| b.lines().any(|l| l.starts_with("processor")))
        .collect();
    // A header before the first stanza (LoongArch's `system type`) stays
    // with the first one.
    let header: String = text
        .split("\n\n")
        .take_while(|b| !b.lines().any(|l| l.starts_with("processor")))
        .map(|b| format!("{}\n\n", b.trim_matches('\n')))
        .collect();
    if blocks.len() >= cpus {
        let mut out: Vec<String> = blocks[..cpus].iter().map(|b| format!("{b}\n\n")).collect();
        if let Some(first) = out.first_mut() {
            first.insert_str(0, &header);
        }
        return out;
    }
    let Some(model) = blocks.first() else {
        return Vec::new();
    };
    (0..cpus)
        .map(|i| {
            let body: Vec<String> = model
                .lines()
                .map(|l| match l.split_once(':') {
                    Some((k, _)) if k.trim() == "processor" => format!("{k}: {i}"),
                    _ => l.to_string(),
                })
                .collect();
            let mut s = String::new();
            if i == 0 {
                s.push_str(&header);
            }
            s.push_str(&body.join("\n"));
            s.push_str("\n\n");
            s
        })
        .collect()
}

fn cpuid_stanzas(text: &str, cpus: usize) -> Vec<String> {
    let d = CpuidDump::parse(text);
    let vendor = d.vendor().unwrap_or_default();
    let (family, model, stepping) = d.signature().unwrap_or((0, 0, 0));
    let brand = d.brand().unwrap_or_default();
    (0..cpus)
        .map(|i| {
            format!(
                "processor\t: {i}\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: {brand}\nstepping\t: {stepping}\nphysical id\t: 0\nsiblings\t: {cpus}\ncore id\t\t: {i}\ncpu cores\t: {cpus}\napicid\t\t: {i}\n\n"
            )
        })
        .collect()
}

fn width_of(w: &Option<String>) -> Option<u32> {
    w.as_deref()?.trim_start_matches('x').parse().ok()
}

fn from_lspci(text: &str) -> Vec<PciFn> {
    parse_lspci(text)
        .into_iter()
        .filter_map(|mut d| {
            certlab_hwdb::identify::resolve_names(&mut d, PciIds::embedded());
            let (vendor, device) = (d.vendor_id?, d.device_id?);
            let class = d.class.unwrap_or(0);
            // The vendor's GPU driver taints the kernel (P, O): the sim
            // drives its GPUs with the in-tree one.
            let driver = d.driver.clone().map(|drv| {
                if drv == "nvidia" {
                    "nouveau".to_string()
                } else {
                    drv
                }
            });
            let driver = driver
                .filter(|d| d != "nvidia-nvswitch")
                .or_else(|| default_driver(vendor, class).map(str::to_string));
            let width = match (&d.link_sta, &d.link_cap) {
                (Some(s), Some(c)) => width_of(&s.width).zip(width_of(&c.width)),
                _ => None,
            };
            let speed = match (&d.link_sta, &d.link_cap) {
                (Some(s), Some(c)) => s.speed.clone().zip(c.speed.clone()),
                _ => None,
            };
            Some(PciFn {
                address: d.address.clone(),
                vendor,
                device,
                class,
                revision: d.revision.unwrap_or(0),
                driver,
                // A link trained narrower in the dump is the dump machine's
                // own fault, not this profile's: the sim trains it fully.
                width: width.map(|(_, max)| (max, max)),
                speed,
            })
        })
        .collect()
}

fn from_proc_bus(text: &str, classes: &[(u16, u16, u32)]) -> Vec<PciFn> {
    parse_proc_bus_pci_devices(text)
        .into_iter()
        .filter_map(|d| {
            let (vendor, device) = (d.vendor_id?, d.device_id?);
            let class = classes
                .iter()
                .find(|(v, dv, _)| *v == vendor && *dv == device)
                .map(|(_, _, c)| *c)
                .unwrap_or(0);
            let driver = d
                .driver
                .clone()
                .or_else(|| (class >> 8 == 0x0604).then(|| "pcieport".to_string()));
            Some(PciFn {
                address: d.address,
                vendor,
                device,
                class,
                revision: 1,
                driver,
                width: None,
                speed: None,
            })
        })
        .collect()
}

/// The in-tree driver a Linux kernel binds to a function of this class when
/// the source shows no binding (listings without `-k`).
fn default_driver(vendor: u16, class: u32) -> Option<&'static str> {
    Some(match class >> 8 {
        0x0604 => "pcieport",
        0x0108 => "nvme",
        0x0106 => "ahci",
        0x0107 => "hisi_sas_v3_hw",
        0x0c03 => match class & 0xff {
            0x30 => "xhci_hcd",
            0x20 => "ehci-pci",
            0x10 => "ohci-pci",
            _ => return None,
        },
        0x0302 | 0x0300 if vendor == 0x10de => "nouveau",
        0x0300 if vendor == 0x1002 => "radeon",
        0x0200 | 0x0207 if vendor == 0x15b3 => "mlx5_core",
        0x0200 if vendor == 0x19e5 => "hns3",
        0x0200 if vendor == 0x0014 => "stmmaceth",
        0x0280 if vendor == 0x10ec => "rtw88_8822ce",
        0x0403 => "snd_hda_intel",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_builds_with_cpus_memory_and_a_disk_and_nic_path() {
        for def in PROFILES {
            let p = Profile::get(def.name).unwrap();
            assert_eq!(p.stanzas.len(), def_cpus(def), "{}", def.name);
            assert_eq!(
                CpuInfo::parse(&p.cpuinfo).processors().count(),
                p.cpus,
                "{}",
                def.name
            );
            assert!(p.mem_bytes >= 4 << 30, "{}", def.name);
            assert!(!p.pci.is_empty(), "{}: no PCI functions", def.name);
            assert!(p.unbindable().is_some(), "{}: nothing to unbind", def.name);
            assert!(!p.sources.is_empty());
        }
    }

    fn def_cpus(d: &ProfileDef) -> usize {
        match d.cpu {
            CpuSource::Cpuinfo { cpus, .. } | CpuSource::Cpuid { cpus, .. } => cpus,
        }
    }

    #[test]
    fn every_dump_a_profile_uses_has_its_provenance_line() {
        let provenance = include_str!("../../../hwdb/tests/fixtures/PROVENANCE.tsv");
        let paths: Vec<&str> = provenance
            .lines()
            .skip(1)
            .filter_map(|l| l.split('\t').next())
            .collect();
        for def in PROFILES {
            let p = Profile::get(def.name).unwrap();
            for src in &p.sources {
                let local = src.strip_prefix(FIX).unwrap();
                // A directory's line (`…/sys-class-dmi-id/`) covers its files.
                assert!(
                    paths
                        .iter()
                        .any(|q| *q == local || (q.ends_with('/') && local.starts_with(q))),
                    "{}: {local} has no line in PROVENANCE.tsv",
                    def.name
                );
            }
        }
    }

    #[test]
    fn profiles_are_shared_not_copied() {
        let a = Profile::get("kunpeng-920").unwrap();
        let b = Profile::get("kunpeng-920").unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(Profile::get("no-such").is_none());
    }

    #[test]
    fn cpuid_dump_becomes_hygon_stanzas() {
        let p = Profile::get("hygon-dhyana").unwrap();
        let c = CpuInfo::parse(&p.cpuinfo);
        assert_eq!(c.get("vendor_id"), Some("HygonGenuine"));
        assert_eq!(c.get("cpu family"), Some("24"));
    }

    #[test]
    fn hwdb_identifies_each_profile_as_its_family() {
        for (name, family) in [
            ("kunpeng-920", "kunpeng"),
            ("phytium-d2000", "phytium"),
            ("hygon-dhyana", "hygon"),
            ("loongson-3a5000", "loongson"),
            ("riscv-sg2042", "riscv"),
            ("intel-spr-h100", "intel"),
            ("amd-epyc-a100", "amd"),
        ] {
            assert_eq!(Profile::get(name).unwrap().family, family, "{name}");
        }
    }
}
