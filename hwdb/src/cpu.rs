//! CPU identification: family, vendor, model and core, decided from the
//! numbers the hardware reports (ARM MIDR implementer/part, x86 vendor
//! string + family/model, RISC-V `mvendorid`/`marchid`, POWER PVR, s390
//! machine type), with marketing names used only for display or where an
//! architecture gives nothing else (LoongArch model name, ARM licensee
//! SoCs whose vendor appears only in DMI/BIOS strings).
//!
//! Decision rules (each documented where it is applied):
//! - x86: the CPUID vendor string decides the vendor; `HygonGenuine` →
//!   hygon; `  Shanghai  ` → zhaoxin; `CentaurHauls` → zhaoxin only for
//!   family 7 or family 6 model ≥ 0x19 (earlier CentaurHauls parts are VIA).
//! - ARM: implementer 0x70 → phytium; 0xc0 → ampere; 0x48 with a TaiShan
//!   server part on every CPU → kunpeng (HiSilicon also builds phone SoCs:
//!   Kirin parts 0xd40/0xd41 and HIP09 mixed with Cortex cores in Kirin
//!   9000S — those are arm-other); an Arm-designed core (0x41) is licensed
//!   by many SoC vendors, so its platform comes only from DMI/BIOS evidence:
//!   NVIDIA system/board vendor with a Neoverse-V2/V3 or Cortex-X925/A725
//!   core → nvidia-grace (Grace, GB10); `Ampere` processor manufacturer or
//!   BIOS model name → ampere (Altra is Neoverse-N1). Without such evidence
//!   an Arm core is arm-other: a Neoverse-V2 `/proc/cpuinfo` alone cannot
//!   tell Grace from Graviton4 or Axion.

use std::collections::BTreeMap;

use crate::cpu_tables::*;
use crate::cpuid::CpuidDump;
use crate::cpuinfo::CpuInfo;
use crate::dmidecode::DmiProcessor;
use crate::lscpu::Lscpu;
use crate::profile::{CpuProfile, Family, SystemProfile};
use crate::text::{parse_hex_u64, parse_int_u64};

/// The inputs CPU identification may use; any may be absent.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuEvidence<'a> {
    pub cpuinfo: Option<&'a CpuInfo>,
    pub lscpu: Option<&'a Lscpu>,
    pub cpuid: Option<&'a CpuidDump>,
    /// SMBIOS type 4 records.
    pub dmi_processors: &'a [DmiProcessor],
    /// DMI system/board/BIOS strings (dmidecode or `/sys/class/dmi/id`).
    pub system: Option<&'a SystemProfile>,
    /// `uname -m`.
    pub machine: Option<&'a str>,
}

/// Which input decided a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CpuSource {
    Cpuinfo,
    Lscpu,
    Cpuid,
    DmiProcessor,
    DmiSystem,
    Machine,
}

/// The identified CPU and, per field, the input it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuIdentification {
    pub profile: CpuProfile,
    /// `family`, `vendor`, `model_name`, `core`, `sockets`, `cores`,
    /// `threads`, `isa`, `microcode` → source.
    pub sources: BTreeMap<&'static str, CpuSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arch {
    X86,
    Arm,
    Riscv,
    Loong,
    Power,
    S390,
    Sparc,
    Unknown,
}

/// Identify the CPU from whatever evidence is present.
pub fn identify_cpu(ev: &CpuEvidence<'_>) -> CpuIdentification {
    let (arch, arch_src) = detect_arch(ev);
    let mut id = CpuIdentification::default();
    match arch {
        Arch::X86 => x86(ev, &mut id),
        Arch::Arm => arm(ev, &mut id),
        Arch::Riscv => riscv(ev, &mut id),
        Arch::Loong => loongarch(ev, &mut id),
        Arch::Power => power(ev, &mut id),
        Arch::S390 => s390(ev, &mut id),
        Arch::Sparc | Arch::Unknown => {
            if let Some(c) = ev.cpuinfo.and_then(|c| c.get("cpu")) {
                set_str(&mut id, "model_name", c, CpuSource::Cpuinfo);
            }
        }
    }
    if id.profile.family != Family::Unknown {
        id.sources.entry("family").or_insert(arch_src);
    }
    counts(ev, arch, &mut id);
    isa_and_microcode(ev, arch, &mut id);
    id
}

fn set_str(id: &mut CpuIdentification, field: &'static str, v: &str, src: CpuSource) {
    let v = v.trim().to_string();
    match field {
        "vendor" => id.profile.vendor = v,
        "model_name" => id.profile.model_name = v,
        "core" => id.profile.core = Some(v),
        _ => return,
    }
    id.sources.insert(field, src);
}

fn set_family(id: &mut CpuIdentification, f: Family, src: CpuSource) {
    id.profile.family = f;
    id.sources.insert("family", src);
}

fn detect_arch(ev: &CpuEvidence<'_>) -> (Arch, CpuSource) {
    if let Some(c) = ev.cpuinfo {
        let a = arch_from_cpuinfo(c);
        if a != Arch::Unknown {
            return (a, CpuSource::Cpuinfo);
        }
    }
    if let Some(l) = ev.lscpu {
        let a = l
            .get("Architecture")
            .map(arch_from_machine)
            .filter(|a| *a != Arch::Unknown)
            .or_else(|| l.get("Vendor ID").map(arch_from_vendor_string));
        if let Some(a) = a.filter(|a| *a != Arch::Unknown) {
            return (a, CpuSource::Lscpu);
        }
    }
    if ev.cpuid.is_some_and(|c| c.vendor().is_some()) {
        return (Arch::X86, CpuSource::Cpuid);
    }
    if let Some(m) = ev.machine {
        let a = arch_from_machine(m);
        if a != Arch::Unknown {
            return (a, CpuSource::Machine);
        }
    }
    for p in ev.dmi_processors {
        let manuf = p.manufacturer.as_deref().unwrap_or("").to_ascii_lowercase();
        let fam = p.family.as_deref().unwrap_or("").to_ascii_lowercase();
        if manuf.contains("loongson") || fam.contains("loongson") {
            return (Arch::Loong, CpuSource::DmiProcessor);
        }
        if fam.starts_with("arm") {
            return (Arch::Arm, CpuSource::DmiProcessor);
        }
        if let Some((imp, _)) = p.arm_midr() {
            if arm_implementer_name(imp).is_some() {
                return (Arch::Arm, CpuSource::DmiProcessor);
            }
        }
        if DMI_ARM_ONLY_MANUFACTURERS.iter().any(|m| manuf.contains(m)) {
            return (Arch::Arm, CpuSource::DmiProcessor);
        }
        if x86_vendor_from_manufacturer(&manuf).is_some() {
            return (Arch::X86, CpuSource::DmiProcessor);
        }
    }
    (Arch::Unknown, CpuSource::Cpuinfo)
}

fn arch_from_cpuinfo(c: &CpuInfo) -> Arch {
    if let Some(v) = c.get("vendor_id") {
        return arch_from_vendor_string(v);
    }
    if c.get("CPU implementer").is_some() {
        return Arch::Arm;
    }
    if c.get("mvendorid").is_some() || c.get("hart").is_some() || c.get("isa").is_some() {
        return Arch::Riscv;
    }
    let lf = |k: &str| c.get(k).unwrap_or("").to_ascii_lowercase();
    if lf("CPU Family").contains("loongson")
        || lf("Model Name").contains("loongson")
        || lf("system type").contains("loongson")
    {
        return Arch::Loong;
    }
    let cpu = lf("cpu");
    if lf("revision").contains("pvr") || cpu.contains("power") || c.get("timebase").is_some() {
        return Arch::Power;
    }
    if cpu.contains("sparc") || lf("type").starts_with("sun4") {
        return Arch::Sparc;
    }
    Arch::Unknown
}

fn arch_from_vendor_string(v: &str) -> Arch {
    let t = v.trim();
    match t {
        "GenuineIntel" | "AuthenticAMD" | "HygonGenuine" | "CentaurHauls" | "Shanghai" => Arch::X86,
        "IBM/S390" => Arch::S390,
        _ if arm_implementer_by_name(t).is_some() => Arch::Arm,
        _ => Arch::Unknown,
    }
}

fn arch_from_machine(m: &str) -> Arch {
    let m = m.trim();
    match m {
        "x86_64" | "i386" | "i486" | "i586" | "i686" | "amd64" => Arch::X86,
        "aarch64" | "arm64" => Arch::Arm,
        "riscv64" | "riscv32" => Arch::Riscv,
        "loongarch64" | "loongarch32" => Arch::Loong,
        "s390x" | "s390" => Arch::S390,
        _ if m.starts_with("armv") => Arch::Arm,
        _ if m.starts_with("ppc") || m.starts_with("powerpc") => Arch::Power,
        _ if m.starts_with("sparc") => Arch::Sparc,
        _ => Arch::Unknown,
    }
}

/// DMI type 4 `Manufacturer` → CPUID vendor string (x86 only).
fn x86_vendor_from_manufacturer(manuf_lower: &str) -> Option<&'static str> {
    if manuf_lower.contains("intel") {
        Some("GenuineIntel")
    } else if manuf_lower.contains("hygon") {
        Some("HygonGenuine")
    } else if manuf_lower.contains("advanced micro") || manuf_lower.starts_with("amd") {
        Some("AuthenticAMD")
    } else if manuf_lower.contains("zhaoxin") {
        Some("Shanghai")
    } else if manuf_lower.contains("centaur") {
        Some("CentaurHauls")
    } else {
        None
    }
}

// ---------------------------------------------------------------- x86 ----

fn x86(ev: &CpuEvidence<'_>, id: &mut CpuIdentification) {
    let ci = ev.cpuinfo;
    let num = |s: &str| parse_int_u64(s).and_then(|n| u32::try_from(n).ok());
    // Vendor string and signature, best source first.
    let mut vendor: Option<(String, CpuSource)> = None;
    let mut sig: Option<((u32, u32, u32), CpuSource)> = None;
    let mut name: Option<(String, CpuSource)> = None;
    // Firmware names the maker, not the CPUID string; keep the mapping apart.
    let mut dmi_vendor: Option<&'static str> = None;
    if let Some(c) = ci {
        if let Some(v) = c.get("vendor_id") {
            vendor = Some((v.trim().to_string(), CpuSource::Cpuinfo));
        }
        if let (Some(f), Some(m)) = (
            c.get("cpu family").and_then(num),
            c.get("model").and_then(num),
        ) {
            let s = c.get("stepping").and_then(num).unwrap_or(0);
            sig = Some(((f, m, s), CpuSource::Cpuinfo));
        }
        if let Some(n) = c.get("model name") {
            name = Some((n.to_string(), CpuSource::Cpuinfo));
        }
    }
    if let Some(l) = ev.lscpu {
        if vendor.is_none() {
            vendor = l
                .get("Vendor ID")
                .map(|v| (v.trim().to_string(), CpuSource::Lscpu));
        }
        if sig.is_none() {
            if let (Some(f), Some(m)) = (l.get_u32("CPU family"), l.get_u32("Model")) {
                sig = Some(((f, m, l.get_u32("Stepping").unwrap_or(0)), CpuSource::Lscpu));
            }
        }
        if name.is_none() {
            name = l
                .get("Model name")
                .map(|n| (n.to_string(), CpuSource::Lscpu));
        }
    }
    if let Some(c) = ev.cpuid {
        if vendor.is_none() {
            vendor = c.vendor().map(|v| (v.trim().to_string(), CpuSource::Cpuid));
        }
        if sig.is_none() {
            sig = c.signature().map(|s| (s, CpuSource::Cpuid));
        }
        if name.is_none() {
            name = c.brand().map(|b| (b, CpuSource::Cpuid));
        }
    }
    if let Some(p) = ev.dmi_processors.iter().find(|p| p.populated) {
        if vendor.is_none() {
            let m = p.manufacturer.as_deref().unwrap_or("").to_ascii_lowercase();
            dmi_vendor = x86_vendor_from_manufacturer(&m);
            vendor = p
                .manufacturer
                .clone()
                .filter(|_| dmi_vendor.is_some())
                .map(|v| (v, CpuSource::DmiProcessor));
        }
        if sig.is_none() {
            sig = p.x86_signature().map(|s| (s, CpuSource::DmiProcessor));
        }
        if name.is_none() {
            name = p.version.clone().map(|n| (n, CpuSource::DmiProcessor));
        }
    }
    if let Some((n, src)) = &name {
        set_str(id, "model_name", &collapse_spaces(n), *src);
    }
    let Some((vendor, vsrc)) = vendor else { return };
    set_str(id, "vendor", &vendor, vsrc);
    let (f, m, s) = sig.map(|x| x.0).unwrap_or((0, 0, 0));
    let sig_src = sig.map(|x| x.1).unwrap_or(vsrc);
    let name_l = name
        .as_ref()
        .map(|n| n.0.to_ascii_lowercase())
        .unwrap_or_default();
    match dmi_vendor.unwrap_or(vendor.as_str()) {
        "GenuineIntel" => {
            set_family(id, Family::Intel, vsrc);
            if let Some(u) = intel_uarch(f, m, s) {
                set_str(id, "core", u, sig_src);
            }
        }
        "AuthenticAMD" => {
            set_family(id, Family::Amd, vsrc);
            if let Some(u) = amd_uarch(f, m) {
                set_str(id, "core", u, sig_src);
            }
        }
        "HygonGenuine" => {
            set_family(id, Family::Hygon, vsrc);
            // Linux arch/x86/kernel/cpu/hygon.c: family 0x18 "Dhyana".
            if f == 0x18 {
                set_str(id, "core", "Dhyana", sig_src);
            }
        }
        "Shanghai" => {
            set_family(id, Family::Zhaoxin, vsrc);
            if let Some(c) = zhaoxin_core(f, m) {
                set_str(id, "core", c, sig_src);
            }
        }
        "CentaurHauls" if f == 7 || (f == 6 && m >= 0x19) || name_l.contains("zhaoxin") => {
            set_family(id, Family::Zhaoxin, sig_src);
            if let Some(c) = zhaoxin_core(f, m) {
                set_str(id, "core", c, sig_src);
            }
        }
        _ => {}
    }
}

fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------- ARM ----

fn arm(ev: &CpuEvidence<'_>, id: &mut CpuIdentification) {
    // (implementer, part) of every CPU, in order, and where they came from.
    let mut parts: Vec<(u8, u16)> = Vec::new();
    let mut src = CpuSource::Cpuinfo;
    if let Some(c) = ev.cpuinfo {
        let global_imp = c.get("CPU implementer").and_then(parse_hex_u64);
        let global_part = c.get("CPU part").and_then(parse_hex_u64);
        for b in c.processors() {
            let g = |k: &str| b.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
            let imp = g("CPU implementer").and_then(parse_hex_u64).or(global_imp);
            let part = g("CPU part").and_then(parse_hex_u64).or(global_part);
            if let (Some(i), Some(p)) = (imp, part) {
                parts.push((i as u8, p as u16));
            }
        }
        if parts.is_empty() {
            if let (Some(i), Some(p)) = (global_imp, global_part) {
                parts.push((i as u8, p as u16));
            }
        }
    }
    if parts.is_empty() {
        if let Some(l) = ev.lscpu {
            // lscpu prints decoded names; one Vendor ID/Model name pair per core type.
            let vendors = l.all("Vendor ID");
            let models = l.all("Model name");
            for (v, m) in vendors.iter().zip(models.iter()) {
                let imp = arm_implementer_by_name(v)
                    .or_else(|| parse_hex_u64(v).and_then(|n| u8::try_from(n).ok()));
                if let Some(imp) = imp {
                    let part = arm_part_by_lscpu_name(imp, m)
                        .or_else(|| parse_hex_u64(m).and_then(|n| u16::try_from(n).ok()));
                    if let Some(p) = part {
                        parts.push((imp, p));
                    } else if !models.is_empty() {
                        // Implementer known, part name not in our table.
                        parts.push((imp, u16::MAX));
                    }
                }
            }
            src = CpuSource::Lscpu;
        }
    }
    if parts.is_empty() {
        parts.extend(
            ev.dmi_processors
                .iter()
                .filter(|p| p.populated)
                .filter_map(DmiProcessor::arm_midr),
        );
        src = CpuSource::DmiProcessor;
    }
    let mut distinct: Vec<(u8, u16)> = Vec::new();
    for p in &parts {
        if !distinct.contains(p) {
            distinct.push(*p);
        }
    }
    let homogeneous = distinct.len() == 1;

    // Platform strings (DMI, BIOS model name from lscpu, vendor-kernel model name).
    let dmi_proc = ev.dmi_processors.iter().find(|p| p.populated);
    let dmi_manuf = dmi_proc.and_then(|p| p.manufacturer.clone());
    let dmi_version = dmi_proc.and_then(|p| p.version.clone());
    let lscpu_bios_vendor = ev
        .lscpu
        .and_then(|l| l.get("BIOS Vendor ID"))
        .map(str::to_string);
    let lscpu_bios_model = ev
        .lscpu
        .and_then(|l| l.get("BIOS Model name"))
        .map(str::to_string);
    let sys_vendor = ev.system.and_then(|s| s.vendor.clone());
    let board_vendor = ev.system.and_then(|s| s.board_vendor.clone());
    let cpuinfo_model = ev
        .cpuinfo
        .and_then(|c| c.get("model name"))
        .map(str::to_string);
    let lower = |o: &Option<String>| o.as_deref().unwrap_or("").to_ascii_lowercase();
    let proc_strings = format!(
        "{} {} {} {}",
        lower(&dmi_manuf),
        lower(&dmi_version),
        lower(&lscpu_bios_vendor),
        lower(&lscpu_bios_model)
    );
    let platform_vendor = format!("{} {}", lower(&sys_vendor), lower(&board_vendor));
    let proc_src = if dmi_manuf.is_some() || dmi_version.is_some() {
        CpuSource::DmiProcessor
    } else {
        CpuSource::Lscpu
    };

    let core = distinct
        .iter()
        .filter_map(|(i, p)| arm_part_name(*i, *p))
        .fold(Vec::<&str>::new(), |mut v, n| {
            if !v.contains(&n) {
                v.push(n);
            }
            v
        })
        .join("+");
    if !core.is_empty() {
        set_str(id, "core", &core, src);
    }
    // A HiSilicon server chip named in SMBIOS type 4 (manufacturer HiSilicon
    // and a server chip name in the version): the parts it may have.
    let hisi_soc = dmi_manuf
        .as_deref()
        .filter(|m| m.to_ascii_lowercase().contains("hisilicon"))
        .and(dmi_version.as_deref())
        .and_then(hisi_server_soc);
    let Some(&(imp, part)) = distinct.first() else {
        // No numbers at all: vendor by DMI manufacturer only.
        if proc_strings.contains("phytium") {
            set_family(id, Family::Phytium, proc_src);
            set_str(id, "vendor", "Phytium", proc_src);
        } else if hisi_soc.is_some() {
            set_family(id, Family::Kunpeng, proc_src);
            set_str(id, "vendor", "HiSilicon", proc_src);
        } else if proc_strings.contains("ampere") {
            set_family(id, Family::Ampere, proc_src);
            set_str(id, "vendor", "Ampere", proc_src);
        } else {
            set_family(id, Family::ArmOther, proc_src);
            if let Some(m) = &dmi_manuf {
                set_str(id, "vendor", m, proc_src);
            }
        }
        if let Some(v) = dmi_version.as_ref().or(lscpu_bios_model.as_ref()) {
            set_str(id, "model_name", v, proc_src);
        }
        return;
    };
    let imp_name = arm_implementer_name(imp).unwrap_or("unknown");
    set_str(id, "vendor", imp_name, src);

    // Display name: firmware's processor version, vendor kernel's model name,
    // lscpu's BIOS model name, else the core.
    let display = dmi_version
        .clone()
        .map(|v| (v, CpuSource::DmiProcessor))
        .or_else(|| lscpu_bios_model.clone().map(|v| (v, CpuSource::Lscpu)))
        .or_else(|| cpuinfo_model.clone().map(|v| (v, CpuSource::Cpuinfo)));
    let lscpu_model = ev
        .lscpu
        .and_then(|l| l.get("Model name"))
        .filter(|m| arm_part_name(imp, part).is_none_or(|c| !c.eq_ignore_ascii_case(m)))
        .map(str::to_string);

    let all_arm_ltd = distinct.iter().all(|(i, _)| *i == 0x41);
    match imp {
        0x70 => set_family(id, Family::Phytium, src),
        0xc0 => set_family(id, Family::Ampere, src),
        0x48 if homogeneous && HISI_SERVER_PARTS.contains(&part) => {
            set_family(id, Family::Kunpeng, src);
            if display.is_none() && lscpu_model.is_none() && part == 0xd01 {
                // TSV110 is the Kunpeng 920 core (cputype.h, lscpu-arm.c).
                set_str(id, "model_name", "Kunpeng 920", src);
            }
        }
        0x41 if homogeneous && hisi_soc.is_some_and(|parts| parts.contains(&part)) => {
            // Hi1610/Hi1612/Hi1616: Cortex-A57/A72 cores, HiSilicon in
            // SMBIOS type 4 (cpu_tables::HISI_EARLY_SERVER_SOCS).
            set_family(id, Family::Kunpeng, proc_src);
            set_str(id, "vendor", "HiSilicon", proc_src);
        }
        0x4e if part == 0x010 => {
            // Olympus: the core of NVIDIA's datacenter CPU after Grace (Vera).
            set_family(id, Family::NvidiaGrace, src);
        }
        _ if all_arm_ltd
            && platform_vendor.contains("nvidia")
            && distinct
                .iter()
                .all(|(_, p)| matches!(p, 0xd4f | 0xd84 | 0xd85 | 0xd87)) =>
        {
            // Grace = Neoverse-V2; GB10 = Cortex-X925 + Cortex-A725; Jetson
            // (Cortex-A78AE, Carmel) also has NVIDIA DMI and stays arm-other.
            set_family(id, Family::NvidiaGrace, CpuSource::DmiSystem);
            set_str(id, "vendor", "NVIDIA", CpuSource::DmiSystem);
        }
        _ if all_arm_ltd && proc_strings.contains("ampere") => {
            // Ampere Altra / Altra Max: Neoverse-N1 cores, Ampere in SMBIOS type 4.
            set_family(id, Family::Ampere, proc_src);
            set_str(id, "vendor", "Ampere", proc_src);
        }
        _ => {
            set_family(id, Family::ArmOther, src);
            if proc_strings.contains("yitian") || proc_strings.contains("alibaba") {
                set_str(id, "vendor", "Alibaba", proc_src);
            } else if all_arm_ltd && platform_vendor.contains("amazon") {
                set_str(id, "vendor", "Amazon", CpuSource::DmiSystem);
                // AWS documents Graviton generations by core.
                let g = match part {
                    0xd08 => Some("Graviton"),
                    0xd0c => Some("Graviton2"),
                    0xd40 => Some("Graviton3"),
                    0xd4f => Some("Graviton4"),
                    _ => None,
                };
                if let (Some(g), None) = (g, &display) {
                    set_str(id, "model_name", g, CpuSource::DmiSystem);
                }
            } else if let Some(m) = dmi_manuf
                .as_ref()
                .filter(|m| m.to_ascii_lowercase().contains("hisilicon"))
            {
                set_str(id, "vendor", m, CpuSource::DmiProcessor);
            }
        }
    }
    if id.profile.model_name.is_empty() {
        if let Some((d, s)) = display {
            set_str(id, "model_name", &d, s);
        } else if let Some(m) = lscpu_model {
            set_str(id, "model_name", &m, CpuSource::Lscpu);
        } else if !core.is_empty() {
            set_str(id, "model_name", &core, src);
        }
    }
}

// ------------------------------------------------------------ RISC-V ----

fn riscv(ev: &CpuEvidence<'_>, id: &mut CpuIdentification) {
    set_family(id, Family::Riscv, CpuSource::Cpuinfo);
    let c = ev.cpuinfo;
    let l = ev.lscpu;
    let (mvendorid, vsrc) = match c.and_then(|c| c.get("mvendorid")) {
        Some(v) => (parse_hex_u64(v), CpuSource::Cpuinfo),
        None => (
            l.and_then(|l| l.get("Vendor ID")).and_then(parse_hex_u64),
            CpuSource::Lscpu,
        ),
    };
    let marchid = c
        .and_then(|c| c.get("marchid"))
        .or_else(|| l.and_then(|l| l.get("CPU family")))
        .and_then(parse_hex_u64);
    let uarch = c.and_then(|c| c.get("uarch")).or_else(|| {
        l.and_then(|l| l.get("Model name"))
            .filter(|m| m.contains(','))
    });
    if let Some(v) = mvendorid {
        let name = RISCV_VENDORS
            .iter()
            .find(|(id, _)| *id == v)
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| format!("{v:#x}"));
        set_str(id, "vendor", &name, vsrc);
    }
    let core = uarch
        .and_then(|u| RISCV_UARCH.iter().find(|(k, _)| *k == u).map(|(_, c)| *c))
        .map(|c| (c, CpuSource::Cpuinfo))
        .or_else(|| {
            let (v, a) = (mvendorid?, marchid?);
            RISCV_MARCHIDS
                .iter()
                .find(|(vv, aa, _)| *vv == v && *aa == a)
                .map(|(_, _, c)| (*c, vsrc))
        });
    if let Some((core, s)) = core {
        set_str(id, "core", core, s);
    }
    let name = c
        .and_then(|c| c.get("model name"))
        .map(|n| (n, CpuSource::Cpuinfo))
        .or_else(|| uarch.map(|u| (u, CpuSource::Cpuinfo)));
    if let Some((n, s)) = name {
        set_str(id, "model_name", n, s);
    }
}

// --------------------------------------------------------- LoongArch ----

fn loongarch(ev: &CpuEvidence<'_>, id: &mut CpuIdentification) {
    let from_cpuinfo = ev
        .cpuinfo
        .and_then(|c| c.get_any(&["Model Name", "model name"]))
        .map(|m| (m.to_string(), CpuSource::Cpuinfo));
    let from_lscpu = ev
        .lscpu
        .and_then(|l| l.get("Model name"))
        .map(|m| (m.to_string(), CpuSource::Lscpu));
    let from_dmi = ev
        .dmi_processors
        .iter()
        .find_map(|p| p.version.clone())
        .map(|m| (m, CpuSource::DmiProcessor));
    let src = if ev.cpuinfo.is_some() {
        CpuSource::Cpuinfo
    } else if ev.lscpu.is_some() {
        CpuSource::Lscpu
    } else {
        CpuSource::DmiProcessor
    };
    set_family(id, Family::Loongson, src);
    set_str(id, "vendor", "Loongson", src);
    if let Some((m, s)) = from_cpuinfo.or(from_lscpu).or(from_dmi) {
        set_str(id, "model_name", &m, s);
        if let Some(core) = loongson_core(&m) {
            set_str(id, "core", core, s);
        }
    }
}

// ------------------------------------------------------------- POWER ----

fn power(ev: &CpuEvidence<'_>, id: &mut CpuIdentification) {
    set_family(id, Family::Power, CpuSource::Cpuinfo);
    set_str(id, "vendor", "IBM", CpuSource::Cpuinfo);
    let Some(c) = ev.cpuinfo else {
        if let Some(m) = ev.lscpu.and_then(|l| l.get("Model name")) {
            set_str(id, "model_name", m, CpuSource::Lscpu);
        }
        return;
    };
    let cpu = c.get("cpu").unwrap_or("");
    if !cpu.is_empty() {
        set_str(id, "model_name", cpu, CpuSource::Cpuinfo);
    }
    // `revision : 2.1 (pvr 003f 0201)`: PVR version is the first half.
    let pvr = c.get("revision").and_then(|r| {
        let i = r.find("pvr ")?;
        let v = r[i + 4..].split_whitespace().next()?;
        u16::from_str_radix(v, 16).ok()
    });
    let core = pvr
        .and_then(|p| POWER_PVRS.iter().find(|(v, _)| *v == p).map(|(_, n)| *n))
        .map(str::to_string)
        .or_else(|| {
            let w = cpu.split([',', ' ']).next()?;
            (!w.is_empty()).then(|| w.to_string())
        });
    if let Some(core) = core {
        set_str(id, "core", &core, CpuSource::Cpuinfo);
    }
}

// -------------------------------------------------------------- s390 ----

fn s390(ev: &CpuEvidence<'_>, id: &mut CpuIdentification) {
    set_family(id, Family::S390, CpuSource::Cpuinfo);
    set_str(id, "vendor", "IBM", CpuSource::Cpuinfo);
    let from_cpuinfo = ev.cpuinfo.and_then(|c| {
        c.blocks.iter().flatten().find_map(|(k, v)| {
            if !k.starts_with("processor ") {
                return None;
            }
            let i = v.find("machine = ")?;
            v[i + 10..]
                .split([',', ' '])
                .next()?
                .trim()
                .parse::<u32>()
                .ok()
        })
    });
    let machine = from_cpuinfo.map(|m| (m, CpuSource::Cpuinfo)).or_else(|| {
        ev.lscpu
            .and_then(|l| l.get_u32("Machine type"))
            .map(|m| (m, CpuSource::Lscpu))
    });
    if let Some((m, s)) = machine {
        match S390_MACHINES.iter().find(|(t, _)| *t == m) {
            Some((_, name)) => {
                set_str(id, "core", name, s);
                set_str(id, "model_name", &format!("IBM {name} ({m})"), s);
            }
            None => set_str(id, "model_name", &format!("IBM machine type {m}"), s),
        }
    }
}

// ------------------------------------------------------- counts, ISA ----

fn counts(ev: &CpuEvidence<'_>, arch: Arch, id: &mut CpuIdentification) {
    let p = &mut id.profile;
    if let Some(l) = ev.lscpu {
        if let Some(n) = l.cpus() {
            p.threads = Some(n);
            id.sources.insert("threads", CpuSource::Lscpu);
        }
        if let Some(s) = l.sockets() {
            p.sockets = Some(s);
            id.sources.insert("sockets", CpuSource::Lscpu);
        }
        if let Some(c) = l.cores() {
            p.cores = Some(c);
            id.sources.insert("cores", CpuSource::Lscpu);
        }
    }
    if let Some(c) = ev.cpuinfo {
        let complete = c.complete_processor_count();
        // x86: a file with fewer processors than `siblings` says was cut.
        let siblings = c.get("siblings").and_then(parse_int_u64);
        let complete = complete.filter(|n| siblings.is_none_or(|s| u64::from(*n) >= s));
        if let Some(n) = complete {
            if p.threads.is_none() {
                p.threads = Some(n);
                id.sources.insert("threads", CpuSource::Cpuinfo);
            }
            let (pkg_key, core_key) = match arch {
                Arch::X86 => ("physical id", "core id"),
                Arch::Loong => ("package", "core"),
                _ => ("", ""),
            };
            if !pkg_key.is_empty() {
                let mut pairs: Vec<(&str, &str)> = c
                    .processors()
                    .filter_map(|b| {
                        let g = |k: &str| b.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
                        Some((g(pkg_key)?, g(core_key)?))
                    })
                    .collect();
                if pairs.len() == n as usize {
                    let mut pkgs: Vec<&str> = pairs.iter().map(|p| p.0).collect();
                    pkgs.sort_unstable();
                    pkgs.dedup();
                    pairs.sort_unstable();
                    pairs.dedup();
                    if p.sockets.is_none() {
                        p.sockets = u32::try_from(pkgs.len()).ok();
                        id.sources.insert("sockets", CpuSource::Cpuinfo);
                    }
                    if p.cores.is_none() {
                        p.cores = u32::try_from(pairs.len()).ok();
                        id.sources.insert("cores", CpuSource::Cpuinfo);
                    }
                }
            }
        }
    }
    let procs: Vec<&DmiProcessor> = ev.dmi_processors.iter().filter(|p| p.populated).collect();
    if !procs.is_empty() {
        if p.sockets.is_none() {
            p.sockets = u32::try_from(procs.len()).ok();
            id.sources.insert("sockets", CpuSource::DmiProcessor);
        }
        let sum = |f: fn(&DmiProcessor) -> Option<u32>| -> Option<u32> {
            procs
                .iter()
                .map(|p| f(p))
                .sum::<Option<u32>>()
                .filter(|n| *n > 0)
        };
        if p.cores.is_none() {
            if let Some(c) = sum(|p| p.core_count) {
                p.cores = Some(c);
                id.sources.insert("cores", CpuSource::DmiProcessor);
            }
        }
        if p.threads.is_none() {
            if let Some(t) = sum(|p| p.thread_count) {
                p.threads = Some(t);
                id.sources.insert("threads", CpuSource::DmiProcessor);
            }
        }
    }
}

fn isa_and_microcode(ev: &CpuEvidence<'_>, arch: Arch, id: &mut CpuIdentification) {
    let mut isa: Option<(Vec<String>, CpuSource)> = None;
    if let Some(c) = ev.cpuinfo {
        let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        isa = match arch {
            Arch::Riscv => c.get("isa").map(|s| {
                // rv64imafdc_zicsr_zifencei → base + multi-letter extensions.
                (
                    s.split('_').map(str::to_string).collect(),
                    CpuSource::Cpuinfo,
                )
            }),
            Arch::Power => c.get("cpu").map(|s| {
                let v = if s.contains("altivec") {
                    vec!["altivec".to_string()]
                } else {
                    Vec::new()
                };
                (v, CpuSource::Cpuinfo)
            }),
            _ => c
                .get_any(&["flags", "Features", "features"])
                .map(|s| (words(s), CpuSource::Cpuinfo)),
        };
        let mc: Vec<String> = c
            .per_processor("microcode")
            .into_iter()
            .map(str::to_string)
            .collect();
        if !mc.is_empty() {
            id.profile.microcode = mc;
            id.sources.insert("microcode", CpuSource::Cpuinfo);
        }
    }
    if isa.as_ref().is_none_or(|(v, _)| v.is_empty()) {
        if let Some(l) = ev.lscpu {
            if let Some(f) = l.get("Flags").or_else(|| l.get("ISA")) {
                isa = Some((
                    f.split_whitespace().map(str::to_string).collect(),
                    CpuSource::Lscpu,
                ));
            }
        }
    }
    if let Some((v, s)) = isa.filter(|(v, _)| !v.is_empty()) {
        id.profile.isa = v;
        id.sources.insert("isa", s);
    }
}
