//! `certlab hwdb …`: hardware identification from evidence files or the
//! local machine, and `pci.ids` look-ups.
//!
//! Exit codes: 0 success (a look-up that finds nothing is still a success);
//! 2 usage or infrastructure error (a malformed `VENDOR[:DEVICE]`, local
//! discovery that cannot run commands); 3 an evidence file or directory
//! that cannot be read or holds nothing of what it should (the message
//! names it).
//!
//! JSON ids: `vendor_id`, `device_id`, `subvendor_id`, `subdevice_id` are
//! four lower-case hex digits without `0x` (`"10de"`), as `lspci -n` and
//! `pci.ids` print them; `class` is six (`"030200"`: base class, subclass,
//! prog-if).

use std::path::{Path, PathBuf};

use certlab_hwdb::{
    accel_ids, identify, lspci, sysfs, CpuInfo, Dmi, Fact, HardwareProfile, Inventory, Lscpu,
    ModulesAlias, PciIds,
};
use serde_json::{json, Value};

use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Subcommand)]
pub enum HwdbCmd {
    /// Identify CPU platform, system, PCI devices, drivers and accelerators.
    /// With no evidence options, collects from this machine.
    Identify {
        /// A /proc/cpuinfo copy.
        #[arg(long, value_name = "FILE")]
        cpuinfo: Option<PathBuf>,
        /// `lscpu` output.
        #[arg(long, value_name = "FILE")]
        lscpu: Option<PathBuf>,
        /// `dmidecode` output.
        #[arg(long, value_name = "FILE")]
        dmidecode: Option<PathBuf>,
        /// `lspci -nn [-k]`, `lspci -vv[v]`, `lspci -vmm -nn` output or /proc/bus/pci/devices.
        #[arg(long, value_name = "FILE")]
        lspci: Option<PathBuf>,
        /// A sysfs snapshot: a directory holding bus/pci/devices and/or class/dmi/id.
        #[arg(long, value_name = "DIR")]
        sysfs: Option<PathBuf>,
        /// The kernel's modules.alias (for the expected driver of each PCI device).
        #[arg(long, value_name = "FILE")]
        modules_alias: Option<PathBuf>,
        /// The kernel's modules.builtin (drivers built into the kernel image).
        #[arg(long, value_name = "FILE")]
        modules_builtin: Option<PathBuf>,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Accelerators as their vendors' tools report them: ECC, retired
    /// pages, remapped rows, PCIe link, temperature, power. With no file,
    /// runs the tools installed here and says which are absent.
    Accel(super::accel::AccelArgs),
    /// Look up a PCI vendor or device id in pci.ids (and the accelerator table).
    Pci {
        /// VENDOR[:DEVICE] in hex, e.g. 10de:2330.
        id: String,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

/// Run one hwdb command; returns the exit code.
pub fn run(cmd: HwdbCmd) -> Result<i32> {
    match cmd {
        HwdbCmd::Identify {
            cpuinfo,
            lscpu,
            dmidecode,
            lspci,
            sysfs,
            modules_alias,
            modules_builtin,
            format,
        } => {
            let files = EvidenceFiles {
                cpuinfo,
                lscpu,
                dmidecode,
                lspci,
                sysfs,
                modules_alias,
                modules_builtin,
            };
            let inv = if files.is_empty() {
                local_inventory()?
            } else {
                files.inventory()?
            };
            let ids = pci_ids();
            let profile = identify(&inv, &ids);
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&profile_json(&profile, &ids))?
                ),
                Format::Human | Format::Junit => print!("{}", human(&profile)),
            }
            Ok(exit::OK)
        }
        HwdbCmd::Accel(a) => super::accel::run(a),
        HwdbCmd::Pci { id, format } => {
            let (vendor, device) = parse_pci_id(&id)?;
            let ids = pci_ids();
            let v = lookup_json(&ids, vendor, device);
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
                Format::Human | Format::Junit => print!("{}", lookup_human(&v)),
            }
            Ok(exit::OK)
        }
    }
}

fn bad_input(message: String) -> CliError {
    failure(exit::BAD_INPUT, message)
}

fn usage(message: String) -> CliError {
    failure(exit::INFRA, message)
}

struct EvidenceFiles {
    cpuinfo: Option<PathBuf>,
    lscpu: Option<PathBuf>,
    dmidecode: Option<PathBuf>,
    lspci: Option<PathBuf>,
    sysfs: Option<PathBuf>,
    modules_alias: Option<PathBuf>,
    modules_builtin: Option<PathBuf>,
}

/// Read a text file; dumps may hold invalid UTF-8 in firmware strings.
fn read_text(path: &Path, what: &str) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| bad_input(format!("cannot read {what} file {}: {e}", path.display())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn malformed(path: &Path, what: &str, expect: &str) -> CliError {
    bad_input(format!("{} is not {what} output: {expect}", path.display()))
}

impl EvidenceFiles {
    fn is_empty(&self) -> bool {
        self.cpuinfo.is_none()
            && self.lscpu.is_none()
            && self.dmidecode.is_none()
            && self.lspci.is_none()
            && self.sysfs.is_none()
            && self.modules_alias.is_none()
            && self.modules_builtin.is_none()
    }

    /// Read every file given; one that cannot be read, or holds nothing of
    /// what it should, is a bad input naming the file.
    fn inventory(&self) -> Result<Inventory> {
        let mut inv = Inventory::default();
        let src = |p: &Path| p.display().to_string();
        if let Some(p) = &self.cpuinfo {
            let t = read_text(p, "cpuinfo")?;
            if CpuInfo::parse(&t).blocks.is_empty() {
                return Err(malformed(p, "/proc/cpuinfo", "no `key : value` lines"));
            }
            inv.cpuinfo = Some(Fact::new(src(p), t));
        }
        if let Some(p) = &self.lscpu {
            let t = read_text(p, "lscpu")?;
            if Lscpu::parse(&t).fields.is_empty() {
                return Err(malformed(p, "lscpu", "no `Key: value` lines"));
            }
            inv.lscpu = Some(Fact::new(src(p), t));
        }
        if let Some(p) = &self.dmidecode {
            let t = read_text(p, "dmidecode")?;
            if Dmi::parse(&t).records.is_empty() {
                return Err(malformed(
                    p,
                    "dmidecode",
                    "no `Handle 0x…, DMI type …` records",
                ));
            }
            inv.dmidecode = Some(Fact::new(src(p), t));
        }
        if let Some(p) = &self.lspci {
            let t = read_text(p, "lspci")?;
            // An empty listing is a machine without PCI; text without a
            // single function is not an lspci output.
            if !t.trim().is_empty()
                && lspci::parse_lspci(&t).is_empty()
                && lspci::parse_proc_bus_pci_devices(&t).is_empty()
            {
                return Err(malformed(
                    p,
                    "lspci or /proc/bus/pci/devices",
                    "no PCI function found",
                ));
            }
            inv.lspci = Some(Fact::new(src(p), t));
        }
        if let Some(p) = &self.modules_alias {
            let t = read_text(p, "modules.alias")?;
            if !t.lines().any(|l| l.starts_with("alias ")) {
                return Err(malformed(
                    p,
                    "modules.alias",
                    "no `alias PATTERN MODULE` lines",
                ));
            }
            // A kernel built without PCI (s390) has aliases but none of them pci:.
            if ModulesAlias::parse(&t).is_empty() {
                tracing::warn!("{} has no pci: aliases", p.display());
            }
            inv.modules_alias = Some(Fact::new(src(p), t));
        }
        if let Some(p) = &self.modules_builtin {
            let t = read_text(p, "modules.builtin")?;
            if !t.lines().any(|l| l.trim_end().ends_with(".ko")) {
                return Err(malformed(
                    p,
                    "modules.builtin",
                    "no `kernel/…/MODULE.ko` lines",
                ));
            }
            inv.modules_builtin = Some(Fact::new(src(p), t));
        }
        if let Some(dir) = &self.sysfs {
            if !dir.is_dir() {
                return Err(bad_input(format!(
                    "cannot read sysfs snapshot {}: not a directory",
                    dir.display()
                )));
            }
            let pci = dir.join("bus/pci/devices");
            let dmi = dir.join("class/dmi/id");
            if !pci.is_dir() && !dmi.is_dir() {
                return Err(bad_input(format!(
                    "{} is not a sysfs snapshot: it has neither bus/pci/devices nor class/dmi/id",
                    dir.display()
                )));
            }
            if pci.is_dir() {
                inv.sysfs_pci = sysfs::read_sysfs_pci(&pci)
                    .map_err(|e| bad_input(format!("{}: {e}", pci.display())))?;
            }
            if dmi.is_dir() {
                inv.dmi_sysfs = sysfs::read_dmi_sysfs(&dmi)
                    .map_err(|e| bad_input(format!("{}: {e}", dmi.display())))?;
            }
        }
        Ok(inv)
    }
}

/// Discovery of this machine, through the same code `certify --local` uses.
fn local_inventory() -> Result<Inventory> {
    let target = certlab_lab::Local::default();
    let sink = certlab_suites::MemorySink::default();
    let d = certlab_suites::discover(&target, &sink)
        .map_err(|e| usage(format!("cannot collect evidence on this machine: {e}")))?;
    for n in &d.notes {
        tracing::info!("discovery: {n}");
    }
    Ok(d.inventory)
}

/// The embedded pci.ids, or the system's copy when it is newer.
fn pci_ids() -> std::borrow::Cow<'static, PciIds> {
    let embedded = PciIds::embedded();
    for p in ["/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids"] {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        match PciIds::newer_of(&text, embedded) {
            Ok(ids) => return ids,
            Err(e) => tracing::warn!("ignoring {p}: {e}"),
        }
    }
    std::borrow::Cow::Borrowed(embedded)
}

fn hex4(v: u16) -> String {
    format!("{v:04x}")
}

/// The profile as JSON, ids as hex strings (see the module docs).
fn profile_json(p: &HardwareProfile, ids: &PciIds) -> Value {
    let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
    if let Some(devs) = v.get_mut("pci_devices").and_then(Value::as_array_mut) {
        for (d, src) in devs.iter_mut().zip(&p.pci_devices) {
            d["vendor_id"] = json!(hex4(src.vendor_id));
            d["device_id"] = json!(hex4(src.device_id));
            d["subvendor_id"] = json!(src.subvendor_id.map(hex4));
            d["subdevice_id"] = json!(src.subdevice_id.map(hex4));
            d["class"] = json!(format!("{:06x}", src.class));
        }
    }
    if let Some(accs) = v.get_mut("accelerators").and_then(Value::as_array_mut) {
        for (a, src) in accs.iter_mut().zip(&p.accelerators) {
            a["vendor_id"] = json!(hex4(src.vendor_id));
            a["device_id"] = json!(hex4(src.device_id));
        }
    }
    v["pci_ids"] = json!({ "version": ids.version, "date": ids.date });
    v
}

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("?")
}

fn human(p: &HardwareProfile) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let c = &p.cpu;
    let mut cpu = format!("{} — {} {}", c.family.as_str(), c.vendor, c.model_name);
    if let Some(core) = &c.core {
        let _ = write!(cpu, " ({core})");
    }
    let counts: Vec<String> = [
        c.sockets.map(|n| format!("{n} sockets")),
        c.cores.map(|n| format!("{n} cores")),
        c.threads.map(|n| format!("{n} threads")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !counts.is_empty() {
        let _ = write!(cpu, ", {}", counts.join(", "));
    }
    let _ = writeln!(o, "CPU:      {cpu}");
    let s = &p.system;
    if s.vendor.is_some() || s.product.is_some() {
        let _ = writeln!(o, "System:   {} {}", opt(&s.vendor), opt(&s.product));
    }
    if s.board_vendor.is_some() || s.board_name.is_some() {
        let _ = writeln!(
            o,
            "Board:    {} {}",
            opt(&s.board_vendor),
            opt(&s.board_name)
        );
    }
    if s.bios_vendor.is_some() || s.bios_version.is_some() {
        let _ = writeln!(
            o,
            "BIOS:     {} {} ({})",
            opt(&s.bios_vendor),
            opt(&s.bios_version),
            opt(&s.bios_date)
        );
    }
    if let Some(h) = &s.hypervisor {
        let _ = writeln!(o, "Hypervisor: {h}");
    }
    if let Some(b) = s.bmc_present {
        let _ = writeln!(o, "BMC:      {}", if b { "present" } else { "not seen" });
    }
    let m = &p.memory;
    if let Some(t) = m.installed_bytes.or(m.mem_total_bytes) {
        let gib = t as f64 / f64::from(1u32 << 30);
        if m.devices.is_empty() {
            let _ = writeln!(o, "Memory:   {gib:.1} GiB");
        } else {
            let _ = writeln!(o, "Memory:   {gib:.1} GiB in {} DIMMs", m.devices.len());
        }
    }
    if !p.accelerators.is_empty() {
        let _ = writeln!(o, "Accelerators ({}):", p.accelerators.len());
        for a in &p.accelerators {
            let link = match (&a.link_speed, &a.link_width) {
                (None, None) => String::new(),
                (sp, w) => format!(
                    "  link {} {} (max {} {})",
                    opt(sp),
                    opt(w),
                    opt(&a.max_link_speed),
                    opt(&a.max_link_width)
                ),
            };
            let _ = writeln!(o, "  {} {} {}{link}", a.address, a.vendor, a.model);
        }
    }
    if !p.pci_devices.is_empty() {
        let _ = writeln!(o, "PCI devices ({}):", p.pci_devices.len());
        for d in &p.pci_devices {
            let name = format!(
                "{} {}",
                d.vendor_name.as_deref().unwrap_or(""),
                d.device_name.as_deref().unwrap_or("")
            );
            let mut drv = String::new();
            if let Some(b) = &d.driver_bound {
                let _ = write!(drv, "  driver {b}");
            }
            if !d.driver_expected.is_empty() {
                let _ = write!(drv, "  expected {}", d.driver_expected.join(","));
            }
            if let Some(m) = &d.driver_match {
                let tag = serde_json::to_value(m)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                if tag != "unknown" {
                    let _ = write!(drv, "  [{tag}]");
                }
            }
            let _ = writeln!(
                o,
                "  {} [{:04x}:{:04x}] {}{drv}",
                d.address,
                d.vendor_id,
                d.device_id,
                name.trim()
            );
        }
    }
    if !p.evidence.is_empty() {
        let _ = writeln!(o, "Evidence:");
        for (k, v) in &p.evidence {
            let _ = writeln!(o, "  {k:<32} {v}");
        }
    }
    o
}

/// `VENDOR[:DEVICE]`, hex, `0x` allowed.
fn parse_pci_id(id: &str) -> Result<(u16, Option<u16>)> {
    let one = |s: &str| {
        let s = s.trim();
        let h = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if h.is_empty() || h.len() > 4 {
            return None;
        }
        u16::from_str_radix(h, 16).ok()
    };
    let bad = || {
        usage(format!(
            "`{id}` is not VENDOR[:DEVICE] in hex (e.g. 10de:2330)"
        ))
    };
    match id.split_once(':') {
        Some((v, d)) => Ok((one(v).ok_or_else(bad)?, Some(one(d).ok_or_else(bad)?))),
        None => Ok((one(id).ok_or_else(bad)?, None)),
    }
}

fn lookup_json(ids: &PciIds, vendor: u16, device: Option<u16>) -> Value {
    let accel = accel_ids::ACCEL_IDS
        .iter()
        .find(|e| e.vendor_id == vendor && (e.device_id.is_none() || e.device_id == device));
    json!({
        "vendor_id": hex4(vendor),
        "vendor_name": ids.vendor_name(vendor),
        "device_id": device.map(hex4),
        "device_name": device.and_then(|d| ids.device_name(vendor, d)),
        "accelerator": accel.map(|e| json!({
            "vendor": e.vendor,
            "model": e.model,
            "kind": e.kind,
            "source": e.source,
            "confidence": e.confidence,
        })),
        "pci_ids": { "version": ids.version, "date": ids.date },
    })
}

fn lookup_human(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str);
    let mut o = format!(
        "{}  {}\n",
        s("vendor_id").unwrap_or("?"),
        s("vendor_name").unwrap_or("(not in pci.ids)")
    );
    if let Some(d) = s("device_id") {
        o.push_str(&format!(
            "{}:{d}  {}\n",
            s("vendor_id").unwrap_or("?"),
            s("device_name").unwrap_or("(not in pci.ids)")
        ));
    }
    if let Some(a) = v.get("accelerator").filter(|a| !a.is_null()) {
        let f = |k: &str| a.get(k).and_then(Value::as_str).unwrap_or("?");
        o.push_str(&format!(
            "accelerator: {} {} ({}; {}, confidence {})\n",
            f("vendor"),
            f("model"),
            f("kind"),
            f("source"),
            f("confidence")
        ));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_are_parsed_strictly() {
        assert_eq!(parse_pci_id("10de:2330").ok(), Some((0x10de, Some(0x2330))));
        assert_eq!(parse_pci_id("0x19E5").ok(), Some((0x19e5, None)));
        assert!(parse_pci_id("10de:").is_err());
        assert!(parse_pci_id("nvidia").is_err());
        assert!(parse_pci_id("110de").is_err());
    }
}
