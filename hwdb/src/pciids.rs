//! The PCI ID database (`pci.ids` format, <https://pci-ids.ucw.cz/>).
//!
//! A copy of the upstream file is embedded (`data/pci.ids`, provenance in
//! `data/PROVENANCE.tsv`; GPL-2.0-or-later OR BSD-3-Clause) and parsed once
//! on first use. A system's own copy can be preferred when it is newer
//! ([`PciIds::newer_of`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::Error;

static EMBEDDED_TEXT: &str = include_str!("../data/pci.ids");
static EMBEDDED: OnceLock<PciIds> = OnceLock::new();

/// One device under a vendor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciIdsDevice {
    pub name: String,
    /// (subvendor, subdevice) → name.
    pub subsystems: HashMap<(u16, u16), String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciIdsVendor {
    pub name: String,
    pub devices: HashMap<u16, PciIdsDevice>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciIdsSubclass {
    pub name: String,
    pub prog_ifs: HashMap<u8, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciIdsClass {
    pub name: String,
    pub subclasses: HashMap<u8, PciIdsSubclass>,
}

/// A parsed `pci.ids`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciIds {
    /// Header `Version:` (`2026.08.22`).
    pub version: Option<String>,
    /// Header `Date:` (`2026-08-22 03:15:01`).
    pub date: Option<String>,
    pub vendors: HashMap<u16, PciIdsVendor>,
    pub classes: HashMap<u8, PciIdsClass>,
}

enum Ctx {
    None,
    Vendor(u16),
    Device(u16, u16),
    Class(u8),
    Subclass(u8, u8),
    Other,
}

fn hex16(s: &str) -> Option<u16> {
    (s.len() == 4)
        .then(|| u16::from_str_radix(s, 16).ok())
        .flatten()
}

fn hex8(s: &str) -> Option<u8> {
    (s.len() == 2)
        .then(|| u8::from_str_radix(s, 16).ok())
        .flatten()
}

/// `id  name` → (id, name).
fn id_name(s: &str) -> Option<(&str, &str)> {
    let (id, name) = s.split_once(' ')?;
    Some((id, name.trim()))
}

impl PciIds {
    /// The embedded copy, parsed on first use.
    pub fn embedded() -> &'static PciIds {
        EMBEDDED.get_or_init(|| PciIds::parse_lenient(EMBEDDED_TEXT))
    }

    /// Parse strictly: a line that is not comment, vendor, device,
    /// subsystem, class, subclass or prog-if is an error.
    pub fn parse(text: &str) -> Result<PciIds, Error> {
        Self::parse_inner(text, true)
    }

    /// Read and parse a `pci.ids` file (e.g. `/usr/share/misc/pci.ids` of a snapshot).
    pub fn from_path(path: &Path) -> Result<PciIds, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text)
    }

    fn parse_lenient(text: &str) -> PciIds {
        Self::parse_inner(text, false).unwrap_or_default()
    }

    fn parse_inner(text: &str, strict: bool) -> Result<PciIds, Error> {
        let mut ids = PciIds::default();
        let mut ctx = Ctx::None;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if let Some(c) = line.strip_prefix('#') {
                let c = c.trim();
                if let Some(v) = c.strip_prefix("Version:") {
                    ids.version.get_or_insert_with(|| v.trim().to_string());
                } else if let Some(v) = c.strip_prefix("Date:") {
                    ids.date.get_or_insert_with(|| v.trim().to_string());
                }
                continue;
            }
            let bad = |msg: &str| Error::parse("pci.ids", n + 1, msg);
            if let Some(rest) = line.strip_prefix("C ") {
                let (id, name) = id_name(rest).ok_or_else(|| bad("class line"))?;
                let c = hex8(id).ok_or_else(|| bad("class id"))?;
                ids.classes.insert(
                    c,
                    PciIdsClass {
                        name: name.to_string(),
                        ..PciIdsClass::default()
                    },
                );
                ctx = Ctx::Class(c);
            } else if let Some(rest) = line.strip_prefix("\t\t") {
                match ctx {
                    Ctx::Device(v, d) => {
                        let (sv, rest) =
                            rest.split_once(' ').ok_or_else(|| bad("subsystem line"))?;
                        let (sd, name) = id_name(rest).ok_or_else(|| bad("subsystem line"))?;
                        let key = (
                            hex16(sv).ok_or_else(|| bad("subvendor"))?,
                            hex16(sd).ok_or_else(|| bad("subdevice"))?,
                        );
                        if let Some(dev) = ids
                            .vendors
                            .get_mut(&v)
                            .and_then(|ven| ven.devices.get_mut(&d))
                        {
                            dev.subsystems.insert(key, name.to_string());
                        }
                    }
                    Ctx::Subclass(c, s) => {
                        let (p, name) = id_name(rest).ok_or_else(|| bad("prog-if line"))?;
                        let p = hex8(p).ok_or_else(|| bad("prog-if id"))?;
                        if let Some(sc) = ids
                            .classes
                            .get_mut(&c)
                            .and_then(|cl| cl.subclasses.get_mut(&s))
                        {
                            sc.prog_ifs.insert(p, name.to_string());
                        }
                    }
                    Ctx::Other => {}
                    _ if strict => return Err(bad("nested line out of context")),
                    _ => {}
                }
            } else if let Some(rest) = line.strip_prefix('\t') {
                match ctx {
                    Ctx::Vendor(v) | Ctx::Device(v, _) => {
                        let (id, name) = id_name(rest).ok_or_else(|| bad("device line"))?;
                        let d = hex16(id).ok_or_else(|| bad("device id"))?;
                        if let Some(ven) = ids.vendors.get_mut(&v) {
                            ven.devices.insert(
                                d,
                                PciIdsDevice {
                                    name: name.to_string(),
                                    ..PciIdsDevice::default()
                                },
                            );
                        }
                        ctx = Ctx::Device(v, d);
                    }
                    Ctx::Class(c) | Ctx::Subclass(c, _) => {
                        let (id, name) = id_name(rest).ok_or_else(|| bad("subclass line"))?;
                        let s = hex8(id).ok_or_else(|| bad("subclass id"))?;
                        if let Some(cl) = ids.classes.get_mut(&c) {
                            cl.subclasses.insert(
                                s,
                                PciIdsSubclass {
                                    name: name.to_string(),
                                    ..PciIdsSubclass::default()
                                },
                            );
                        }
                        ctx = Ctx::Subclass(c, s);
                    }
                    Ctx::Other => {}
                    Ctx::None if !strict => {}
                    Ctx::None => return Err(bad("indented line before any vendor")),
                }
            } else {
                let (id, name) = id_name(line).ok_or_else(|| bad("vendor line"))?;
                match hex16(id) {
                    Some(v) => {
                        ids.vendors.insert(
                            v,
                            PciIdsVendor {
                                name: name.to_string(),
                                ..PciIdsVendor::default()
                            },
                        );
                        ctx = Ctx::Vendor(v);
                    }
                    // Other top-level lists in some copies (e.g. `X` lines): skip them.
                    None if !strict || id.len() == 1 => ctx = Ctx::Other,
                    None => return Err(bad("vendor id")),
                }
            }
        }
        Ok(ids)
    }

    /// The newer of a system's `pci.ids` text and `embedded`, by the
    /// header's `Version:` (`YYYY.MM.DD`) or, failing that, `Date:`.
    /// The embedded copy wins ties and unreadable headers.
    pub fn newer_of<'a>(system_text: &str, embedded: &'a PciIds) -> Result<Cow<'a, PciIds>, Error> {
        let system = PciIds::parse(system_text)?;
        if system.freshness() > embedded.freshness() {
            Ok(Cow::Owned(system))
        } else {
            Ok(Cow::Borrowed(embedded))
        }
    }

    /// Sort key of the header: `YYYYMMDD` digits of Version, else of Date.
    fn freshness(&self) -> Option<String> {
        let digits = |s: &str| {
            s.chars()
                .filter(char::is_ascii_digit)
                .take(8)
                .collect::<String>()
        };
        self.version
            .as_deref()
            .map(digits)
            .filter(|d| d.len() == 8)
            .or_else(|| self.date.as_deref().map(digits).filter(|d| d.len() == 8))
    }

    pub fn vendor_name(&self, vendor: u16) -> Option<&str> {
        self.vendors.get(&vendor).map(|v| v.name.as_str())
    }

    pub fn device_name(&self, vendor: u16, device: u16) -> Option<&str> {
        self.vendors
            .get(&vendor)?
            .devices
            .get(&device)
            .map(|d| d.name.as_str())
    }

    pub fn subsystem_name(
        &self,
        vendor: u16,
        device: u16,
        subvendor: u16,
        subdevice: u16,
    ) -> Option<&str> {
        self.vendors
            .get(&vendor)?
            .devices
            .get(&device)?
            .subsystems
            .get(&(subvendor, subdevice))
            .map(String::as_str)
    }

    /// Name of a 24-bit class code as lspci prints it: the subclass name
    /// (`VGA compatible controller`), else the class name.
    pub fn class_name(&self, class: u32) -> Option<&str> {
        let c = self.classes.get(&((class >> 16) as u8))?;
        Some(
            c.subclasses
                .get(&((class >> 8) as u8))
                .map(|s| s.name.as_str())
                .unwrap_or(c.name.as_str()),
        )
    }

    /// Name of the programming interface of a 24-bit class code.
    pub fn prog_if_name(&self, class: u32) -> Option<&str> {
        self.classes
            .get(&((class >> 16) as u8))?
            .subclasses
            .get(&((class >> 8) as u8))?
            .prog_ifs
            .get(&(class as u8))
            .map(String::as_str)
    }

    /// Vendor id by exact name (for `lspci` output printed without `-n`).
    pub fn vendor_by_name(&self, name: &str) -> Option<u16> {
        let mut hits = self
            .vendors
            .iter()
            .filter(|(_, v)| v.name == name)
            .map(|(id, _)| *id);
        let first = hits.next()?;
        // Ambiguous names give no answer rather than a guess.
        hits.next().is_none().then_some(first)
    }

    /// Device id under `vendor` by exact name.
    pub fn device_by_name(&self, vendor: u16, name: &str) -> Option<u16> {
        let v = self.vendors.get(&vendor)?;
        let mut hits = v
            .devices
            .iter()
            .filter(|(_, d)| d.name == name)
            .map(|(id, _)| *id);
        let first = hits.next()?;
        hits.next().is_none().then_some(first)
    }

    /// Class code (base, subclass) by subclass name as lspci prints it.
    pub fn class_by_name(&self, name: &str) -> Option<u16> {
        let mut hits = Vec::new();
        for (c, cl) in &self.classes {
            for (s, sc) in &cl.subclasses {
                if sc.name == name {
                    hits.push((u16::from(*c) << 8) | u16::from(*s));
                }
            }
        }
        (hits.len() == 1).then(|| hits[0])
    }
}
