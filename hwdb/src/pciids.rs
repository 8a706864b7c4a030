//! The PCI ID database (`pci.ids` format, <https://pci-ids.ucw.cz/>).
//!
//! A copy of the upstream file is embedded (`data/pci.ids`, provenance in
//! `data/PROVENANCE.tsv`; GPL-2.0-or-later OR BSD-3-Clause) and parsed once
//! on first use. A system's own copy can be preferred when it is newer
//! ([`PciIds::newer_of`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use crate::error::Error;

static EMBEDDED_TEXT: &str = include_str!("../data/pci.ids");
static EMBEDDED: OnceLock<PciIds> = OnceLock::new();

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

/// A vendor or device line: where its name is, and where the lines nested
/// under it (devices of a vendor, subsystems of a device) are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    name: Range<usize>,
    block: Range<usize>,
}

/// A parsed `pci.ids`.
///
/// Loading is one pass over the text that indexes vendor and device lines
/// by id (byte ranges into the kept text, no string copies); subsystem
/// names are found on demand in their device's block. This keeps loading
/// the ~1.6 MB file to a few milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciIds {
    /// Header `Version:` (`2026.08.22`).
    pub version: Option<String>,
    /// Header `Date:` (`2026-08-22 03:15:01`).
    pub date: Option<String>,
    pub classes: HashMap<u8, PciIdsClass>,
    text: Cow<'static, str>,
    vendors: HashMap<u16, Entry>,
    devices: HashMap<(u16, u16), Entry>,
    /// Vendor name → id (`None` when two vendors share the name), built on
    /// first use by [`PciIds::vendor_by_name`] / [`PciIds::vendor_prefix_of`].
    vendor_names: OnceLock<HashMap<String, Option<u16>>>,
}

#[derive(Clone, Copy)]
enum Ctx {
    None,
    Vendor(u16),
    Device(u16),
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

/// Byte range of `sub` (a slice of `text`) inside `text`.
fn span(text: &str, sub: &str) -> Range<usize> {
    let start = (sub.as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
    start..start + sub.len()
}

impl PciIds {
    /// The embedded copy, parsed on first use.
    pub fn embedded() -> &'static PciIds {
        EMBEDDED.get_or_init(|| {
            Self::parse_inner(Cow::Borrowed(EMBEDDED_TEXT), false).unwrap_or_default()
        })
    }

    /// Parse strictly: a line that is not comment, vendor, device,
    /// subsystem, class, subclass or prog-if is an error.
    pub fn parse(text: &str) -> Result<PciIds, Error> {
        Self::parse_inner(Cow::Owned(text.to_string()), true)
    }

    /// Read and parse a `pci.ids` file (e.g. `/usr/share/misc/pci.ids` of a snapshot).
    pub fn from_path(path: &Path) -> Result<PciIds, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse_inner(Cow::Owned(text), true)
    }

    fn parse_inner(text: Cow<'static, str>, strict: bool) -> Result<PciIds, Error> {
        let mut ids = PciIds::default();
        let mut ctx = Ctx::None;
        // The entry whose nested block is open, and where it started.
        let mut open_vendor: Option<(u16, usize)> = None;
        let mut open_device: Option<((u16, u16), usize)> = None;
        {
            let t: &str = &text;
            let close_device =
                |ids: &mut PciIds, open: &mut Option<((u16, u16), usize)>, at: usize| {
                    if let Some((k, start)) = open.take() {
                        if let Some(e) = ids.devices.get_mut(&k) {
                            e.block = start..at;
                        }
                    }
                };
            let close_vendor = |ids: &mut PciIds, open: &mut Option<(u16, usize)>, at: usize| {
                if let Some((v, start)) = open.take() {
                    if let Some(e) = ids.vendors.get_mut(&v) {
                        e.block = start..at;
                    }
                }
            };
            let mut pos = 0usize;
            for (n, raw) in t.split_inclusive('\n').enumerate() {
                let line_start = pos;
                pos += raw.len();
                let line = raw.trim_end_matches(['\n', '\r']);
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
                    close_device(&mut ids, &mut open_device, line_start);
                    close_vendor(&mut ids, &mut open_vendor, line_start);
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
                        Ctx::Device(_) => {
                            let (sv, rest) =
                                rest.split_once(' ').ok_or_else(|| bad("subsystem line"))?;
                            let (sd, _) = id_name(rest).ok_or_else(|| bad("subsystem line"))?;
                            hex16(sv).ok_or_else(|| bad("subvendor"))?;
                            hex16(sd).ok_or_else(|| bad("subdevice"))?;
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
                        Ctx::Vendor(v) | Ctx::Device(v) => {
                            close_device(&mut ids, &mut open_device, line_start);
                            let (id, name) = id_name(rest).ok_or_else(|| bad("device line"))?;
                            let d = hex16(id).ok_or_else(|| bad("device id"))?;
                            ids.devices.insert(
                                (v, d),
                                Entry {
                                    name: span(t, name),
                                    block: 0..0,
                                },
                            );
                            open_device = Some(((v, d), pos));
                            ctx = Ctx::Device(v);
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
                    close_device(&mut ids, &mut open_device, line_start);
                    close_vendor(&mut ids, &mut open_vendor, line_start);
                    let (id, name) = id_name(line).ok_or_else(|| bad("vendor line"))?;
                    match hex16(id) {
                        Some(v) => {
                            ids.vendors.insert(
                                v,
                                Entry {
                                    name: span(t, name),
                                    block: 0..0,
                                },
                            );
                            open_vendor = Some((v, pos));
                            ctx = Ctx::Vendor(v);
                        }
                        // Other top-level lists in some copies (e.g. `X` lines): skip them.
                        None if !strict || id.len() == 1 => ctx = Ctx::Other,
                        None => return Err(bad("vendor id")),
                    }
                }
            }
            close_device(&mut ids, &mut open_device, pos);
            close_vendor(&mut ids, &mut open_vendor, pos);
        }
        ids.text = text;
        Ok(ids)
    }

    fn slice(&self, r: &Range<usize>) -> &str {
        self.text.get(r.clone()).unwrap_or("")
    }

    /// Every vendor: id and name, in no particular order.
    pub fn vendors(&self) -> impl Iterator<Item = (u16, &str)> + '_ {
        self.vendors
            .iter()
            .map(|(id, e)| (*id, self.slice(&e.name)))
    }

    /// Every device of `vendor`: id and name, in file order.
    pub fn devices_of(&self, vendor: u16) -> impl Iterator<Item = (u16, &str)> + '_ {
        let block = self
            .vendors
            .get(&vendor)
            .map(|e| self.slice(&e.block))
            .unwrap_or("");
        block.lines().filter_map(|l| {
            let rest = l.strip_prefix('\t')?;
            if rest.starts_with('\t') {
                return None;
            }
            let (id, name) = id_name(rest)?;
            Some((hex16(id)?, name))
        })
    }

    /// Number of vendors.
    pub fn vendor_count(&self) -> usize {
        self.vendors.len()
    }

    /// Number of devices (all vendors).
    pub fn device_count(&self) -> usize {
        self.devices.len()
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
        self.vendors.get(&vendor).map(|e| self.slice(&e.name))
    }

    pub fn device_name(&self, vendor: u16, device: u16) -> Option<&str> {
        self.devices
            .get(&(vendor, device))
            .map(|e| self.slice(&e.name))
    }

    pub fn subsystem_name(
        &self,
        vendor: u16,
        device: u16,
        subvendor: u16,
        subdevice: u16,
    ) -> Option<&str> {
        let e = self.devices.get(&(vendor, device))?;
        self.slice(&e.block).lines().find_map(|l| {
            let rest = l.strip_prefix("\t\t")?;
            let (sv, rest) = rest.split_once(' ')?;
            let (sd, name) = id_name(rest)?;
            (hex16(sv)? == subvendor && hex16(sd)? == subdevice).then_some(name)
        })
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

    fn vendor_names(&self) -> &HashMap<String, Option<u16>> {
        self.vendor_names.get_or_init(|| {
            let mut m: HashMap<String, Option<u16>> = HashMap::with_capacity(self.vendors.len());
            for (id, name) in self.vendors() {
                m.entry(name.to_string())
                    .and_modify(|v| *v = None)
                    .or_insert(Some(id));
            }
            m
        })
    }

    /// Vendor id by exact name (for `lspci` output printed without `-n`).
    /// Ambiguous names give no answer rather than a guess.
    pub fn vendor_by_name(&self, name: &str) -> Option<u16> {
        self.vendor_names().get(name).copied().flatten()
    }

    /// The longest vendor name that starts `desc` and is followed by a
    /// space (`NVIDIA Corporation GH100 [H100 SXM5 80GB]` → NVIDIA's id and
    /// the name's length).
    pub fn vendor_prefix_of(&self, desc: &str) -> Option<(u16, usize)> {
        let names = self.vendor_names();
        desc.char_indices()
            .filter(|(_, c)| *c == ' ')
            .map(|(i, _)| i)
            .rev()
            .find_map(|i| names.get(&desc[..i]).copied().flatten().map(|id| (id, i)))
    }

    /// Device id under `vendor` by exact name.
    pub fn device_by_name(&self, vendor: u16, name: &str) -> Option<u16> {
        let mut hits = self
            .devices_of(vendor)
            .filter(|(_, n)| *n == name)
            .map(|(id, _)| id);
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# Version: 2026.08.22\n10de  NVIDIA Corporation\n\t2330  GH100 [H100 SXM5 80GB]\n\t\t10de 16c1  H100 SXM5 80GB\n\t2331  GH100 [H100 PCIe]\n15b3  Mellanox Technologies\n\t1021  MT2910 Family [ConnectX-7]\nC 03  Display controller\n\t02  3D controller\n\t\t00  none\n";

    #[test]
    fn index_and_lookups() {
        let ids = PciIds::parse(TEXT).expect("parses");
        assert_eq!(ids.version.as_deref(), Some("2026.08.22"));
        assert_eq!(ids.vendor_name(0x10de), Some("NVIDIA Corporation"));
        assert_eq!(ids.device_name(0x10de, 0x2331), Some("GH100 [H100 PCIe]"));
        assert_eq!(
            ids.device_name(0x15b3, 0x1021),
            Some("MT2910 Family [ConnectX-7]")
        );
        assert_eq!(
            ids.subsystem_name(0x10de, 0x2330, 0x10de, 0x16c1),
            Some("H100 SXM5 80GB")
        );
        assert_eq!(ids.subsystem_name(0x10de, 0x2331, 0x10de, 0x16c1), None);
        assert_eq!(ids.devices_of(0x10de).count(), 2);
        assert_eq!(
            ids.device_by_name(0x10de, "GH100 [H100 PCIe]"),
            Some(0x2331)
        );
        assert_eq!(ids.vendor_by_name("Mellanox Technologies"), Some(0x15b3));
        assert_eq!(
            ids.vendor_prefix_of("NVIDIA Corporation GH100 [H100 SXM5 80GB]"),
            Some((0x10de, 18))
        );
        assert_eq!(ids.class_name(0x030200), Some("3D controller"));
        assert!(PciIds::parse("zz  bad\n").is_err());
    }
}
