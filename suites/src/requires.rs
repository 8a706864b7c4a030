//! What a case needs of the machine, declared: by its check (what the
//! check cannot work without, [`crate::Check::requires`]) and by the plan
//! (`[case.requires]`, what a lab narrows a case to).
//!
//! Two kinds of need, judged at two moments:
//! - the hardware — architecture (`uname -m`), CPU family, a PCI device of
//!   a class — is judged at selection, from discovery's inventory and the
//!   identified profile, before the machine is touched: an unmet need is a
//!   selection skip whose reason names the need and what the machine has;
//! - the software — programs on `PATH`, root — is judged on the machine
//!   when the case starts, by recorded probes (`command -v`, `id -u`): an
//!   unmet need is a skip whose evidence is the probe. A probe that cannot
//!   reach the machine is the case's infrastructure error, never a skip.
//!
//! Every need of one [`Requires`] must hold; a case holds one per
//! declarer, and all of them must hold.

use certlab_hwdb::{Family, HardwareProfile, Inventory};
use serde::Deserialize;

use crate::context::{CaseCtx, CaseError};

/// One declarer's needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requires {
    /// Architectures as `uname -m` names them (`x86_64`, `aarch64`,
    /// `loongarch64`, `riscv64`, …); empty: any.
    #[serde(default)]
    pub arch: Vec<String>,
    /// CPU families as hwdb identifies them (`hygon`, `kunpeng`, `intel`,
    /// `amd`, `phytium`, `loongson`, `riscv`, …); empty: any.
    #[serde(default)]
    pub cpu_family: Vec<Family>,
    /// PCI class codes in hex: a base class (`"02"`, network), a base and
    /// sub-class (`"0108"`, NVMe) or a whole code with its programming
    /// interface (`"010802"`). The machine needs a device of one of them;
    /// empty: any.
    #[serde(default)]
    pub device_class: Vec<String>,
    /// Programs the machine must have on `PATH`, all of them.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The case must run as root.
    #[serde(default)]
    pub root: bool,
}

/// The base class names of the PCI Code and ID Assignment Specification,
/// for reasons a reader can follow.
fn base_class_name(base: u8) -> &'static str {
    match base {
        0x00 => "unclassified device",
        0x01 => "mass storage controller",
        0x02 => "network controller",
        0x03 => "display controller",
        0x04 => "multimedia controller",
        0x05 => "memory controller",
        0x06 => "bridge",
        0x07 => "communication controller",
        0x08 => "system peripheral",
        0x09 => "input device controller",
        0x0a => "docking station",
        0x0b => "processor",
        0x0c => "serial bus controller",
        0x0d => "wireless controller",
        0x0e => "intelligent controller",
        0x0f => "satellite communication controller",
        0x10 => "encryption controller",
        0x11 => "signal processing controller",
        0x12 => "processing accelerator",
        0x13 => "non-essential instrumentation",
        0x40 => "co-processor",
        _ => "device",
    }
}

/// A class code prefix: its value and how many hex digits (2, 4 or 6).
fn class_prefix(s: &str) -> Option<(u32, usize)> {
    let ok = matches!(s.len(), 2 | 4 | 6) && s.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u32::from_str_radix(s, 16).ok().map(|v| (v, s.len())))
        .flatten()
}

fn class_matches(prefix: &str, class: u32) -> bool {
    match class_prefix(prefix) {
        Some((v, digits)) => (class & 0x00ff_ffff) >> (4 * (6 - digits)) == v,
        None => false,
    }
}

fn describe_class(prefix: &str) -> String {
    let name = class_prefix(prefix)
        .map(|(v, digits)| base_class_name((v >> (4 * (digits - 2))) as u8))
        .unwrap_or("device");
    format!("{prefix} ({name})")
}

/// A program name a plan may ask for: no path, no shell syntax.
fn valid_tool(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 64
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'))
        && !t.starts_with('-')
}

/// A machine architecture name as `uname -m` writes it.
fn valid_arch(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 32
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
}

impl Requires {
    /// Root, nothing else.
    pub fn root() -> Requires {
        Requires {
            root: true,
            ..Requires::default()
        }
    }

    /// One program on `PATH`, nothing else.
    pub fn tool(name: &str) -> Requires {
        Requires {
            tools: vec![name.to_string()],
            ..Requires::default()
        }
    }

    /// Whether nothing is declared.
    pub fn is_empty(&self) -> bool {
        *self == Requires::default()
    }

    /// Whether the declaration is well formed; the error says which need.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(a) = self.arch.iter().find(|a| !valid_arch(a)) {
            return Err(format!("requires.arch: {a:?} is not an architecture name"));
        }
        if let Some(c) = self.device_class.iter().find(|c| class_prefix(c).is_none()) {
            return Err(format!(
                "requires.device_class: {c:?} is not a PCI class code (2, 4 or 6 hex digits)"
            ));
        }
        if let Some(t) = self.tools.iter().find(|t| !valid_tool(t)) {
            return Err(format!("requires.tools: {t:?} is not a program name"));
        }
        Ok(())
    }

    /// The needs, one phrase each (`arch x86_64`, `tool fio`, `root`).
    pub fn phrases(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.arch.is_empty() {
            out.push(format!("arch {}", self.arch.join(" or ")));
        }
        if !self.cpu_family.is_empty() {
            let f: Vec<&str> = self.cpu_family.iter().map(|f| f.as_str()).collect();
            out.push(format!("CPU family {}", f.join(" or ")));
        }
        if !self.device_class.is_empty() {
            let c: Vec<String> = self
                .device_class
                .iter()
                .map(|c| describe_class(c))
                .collect();
            out.push(format!("a PCI device of class {}", c.join(" or ")));
        }
        for t in &self.tools {
            out.push(format!("tool {t}"));
        }
        if self.root {
            out.push("root".to_string());
        }
        out
    }

    /// The hardware needs the machine does not meet, each with what the
    /// machine has instead; empty when all are met.
    pub fn unmet_hardware(&self, profile: &HardwareProfile, inventory: &Inventory) -> Vec<String> {
        let mut unmet = Vec::new();
        if !self.arch.is_empty() {
            match inventory.machine.as_deref().map(str::trim) {
                Some(m) if self.arch.iter().any(|a| a == m) => {}
                Some(m) if !m.is_empty() => unmet.push(format!(
                    "needs arch {}; this machine is {m}",
                    self.arch.join(" or ")
                )),
                _ => unmet.push(format!(
                    "needs arch {}; this machine's architecture is unknown (no `uname -m` in its inventory)",
                    self.arch.join(" or ")
                )),
            }
        }
        if !self.cpu_family.is_empty() && !self.cpu_family.contains(&profile.cpu.family) {
            let f: Vec<&str> = self.cpu_family.iter().map(|f| f.as_str()).collect();
            unmet.push(format!(
                "needs CPU family {}; this machine's is {}",
                f.join(" or "),
                profile.cpu.family.as_str()
            ));
        }
        if !self.device_class.is_empty() {
            // The identified profile's PCI devices (hwdb reads their class
            // from sysfs or lspci).
            let found = profile
                .pci_devices
                .iter()
                .any(|d| self.device_class.iter().any(|p| class_matches(p, d.class)));
            if !found {
                let c: Vec<String> = self
                    .device_class
                    .iter()
                    .map(|c| describe_class(c))
                    .collect();
                unmet.push(format!(
                    "needs a PCI device of class {}; this machine has none",
                    c.join(" or ")
                ));
            }
        }
        unmet
    }

    /// Whether the software needs hold on the machine, by recorded probes:
    /// `Ok(Some(why))` names the first that does not.
    pub fn unmet_software(&self, ctx: &CaseCtx<'_>) -> Result<Option<String>, CaseError> {
        for t in &self.tools {
            if !ctx.has_command(t)? {
                return Ok(Some(format!(
                    "needs tool {t}: {t} is not installed on the target"
                )));
            }
        }
        if self.root {
            let out = ctx.run("id -u")?;
            let uid = out.stdout_str().trim().to_string();
            if !out.success() || uid != "0" {
                return Ok(Some(format!(
                    "needs root; the case runs as uid {}",
                    if uid.is_empty() { "unknown" } else { &uid }
                )));
            }
        }
        Ok(None)
    }
}

/// [`Requires::unmet_hardware`] over every declaration of a case, joined.
pub fn unmet_hardware_of(
    all: &[Requires],
    profile: &HardwareProfile,
    inventory: &Inventory,
) -> Option<String> {
    let unmet: Vec<String> = all
        .iter()
        .flat_map(|r| r.unmet_hardware(profile, inventory))
        .collect();
    (!unmet.is_empty()).then(|| unmet.join("; "))
}

/// [`Requires::unmet_software`] over every declaration of a case.
pub fn unmet_software_of(all: &[Requires], ctx: &CaseCtx<'_>) -> Result<Option<String>, CaseError> {
    for r in all {
        if let Some(why) = r.unmet_software(ctx)? {
            return Ok(Some(why));
        }
    }
    Ok(None)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use certlab_hwdb::PciDevice;

    #[test]
    fn class_prefixes_match_by_digits() {
        // 01 08 02: mass storage, non-volatile memory, NVM Express.
        assert!(class_matches("01", 0x010802));
        assert!(class_matches("0108", 0x010802));
        assert!(class_matches("010802", 0x010802));
        assert!(!class_matches("0106", 0x010802));
        assert!(!class_matches("02", 0x010802));
        assert!(!class_matches("1", 0x010802));
        assert_eq!(describe_class("0302"), "0302 (display controller)");
        assert_eq!(describe_class("12"), "12 (processing accelerator)");
    }

    #[test]
    fn hardware_needs_name_what_the_machine_has() {
        let r: Requires = toml::from_str(
            "arch = ['x86_64']\ncpu_family = ['intel', 'hygon']\ndevice_class = ['12', '0302']",
        )
        .unwrap();
        let mut inv = Inventory {
            machine: Some("aarch64".into()),
            ..Inventory::default()
        };
        let mut p = HardwareProfile::default();
        p.cpu.family = Family::Kunpeng;
        let unmet = r.unmet_hardware(&p, &inv);
        assert_eq!(unmet.len(), 3, "{unmet:?}");
        assert!(unmet[0].contains("needs arch x86_64; this machine is aarch64"));
        assert!(unmet[1].contains("needs CPU family intel or hygon; this machine's is kunpeng"));
        assert!(unmet[2].contains("class 12 (processing accelerator) or 0302"));

        inv.machine = Some("x86_64".into());
        p.cpu.family = Family::Hygon;
        p.pci_devices.push(PciDevice {
            class: 0x120000,
            ..PciDevice::default()
        });
        assert!(r.unmet_hardware(&p, &inv).is_empty());

        inv.machine = None;
        assert!(r.unmet_hardware(&p, &inv)[0].contains("architecture is unknown"));
    }

    #[test]
    fn malformed_needs_are_refused() {
        let bad = |t: &str| {
            toml::from_str::<Requires>(t)
                .map_err(|e| e.to_string())
                .and_then(|r| r.validate())
        };
        assert!(bad("device_class = ['0x02']")
            .unwrap_err()
            .contains("not a PCI class code"));
        assert!(bad("tools = ['fio; reboot']")
            .unwrap_err()
            .contains("not a program name"));
        assert!(bad("tools = ['/usr/bin/fio']").is_err());
        assert!(bad("arch = ['x86 64']").is_err());
        assert!(bad("cpu_family = ['pentium']").is_err());
        assert!(bad("gpu = true").is_err());
        assert!(bad("arch = ['riscv64']\ntools = ['stress-ng', 'gpu_burn']\nroot = true").is_ok());
    }
}
