//! The KABI allowlist: the symbols an OS release promises to keep stable.
//! certlab's own format (versioned JSON or TOML) records per symbol its
//! CRC per arch and kernel, export type, namespace, provenance and an
//! optional justification; RHEL, openEuler, Android GKI and symvers-style
//! lists are imported and exported too.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kernel::Kernel;
use crate::module::Module;
use crate::symvers::{parse_crc, ExportType, Symvers};

/// The `format` field of certlab's own allowlist files.
pub const FORMAT_NAME: &str = "certlab-kabi-allowlist";
/// The version of certlab's allowlist format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The list formats allowlists are imported from and exported to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListFormat {
    /// RHEL `kabi_stablelist_<arch>` / `kabi_whitelist_<arch>`: `[section]`, tab-indented symbols.
    Rhel,
    /// openEuler `kabi_whitelist_<arch>`: like RHEL, or a plain list with `#` comments.
    OpenEuler,
    /// Android GKI `[abi_symbol_list]` files.
    Android,
    /// Module.symvers lines (RHEL `Module.kabi_<arch>`).
    Symvers,
    /// certlab's own format as JSON.
    Json,
    /// certlab's own format as TOML.
    Toml,
}

impl ListFormat {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rhel" => ListFormat::Rhel,
            "openeuler" => ListFormat::OpenEuler,
            "android" | "gki" => ListFormat::Android,
            "symvers" => ListFormat::Symvers,
            "json" => ListFormat::Json,
            "toml" => ListFormat::Toml,
            _ => return None,
        })
    }

    /// Guesses the format of a file from its name and first bytes.
    pub fn sniff(name: &str, text: &str) -> Self {
        let first = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .unwrap_or("");
        if name.ends_with(".json") || first.starts_with('{') {
            ListFormat::Json
        } else if name.ends_with(".toml") || first.starts_with("format") {
            ListFormat::Toml
        } else if first == "[abi_symbol_list]" {
            ListFormat::Android
        } else if first.starts_with("0x") && first.contains('\t') {
            ListFormat::Symvers
        } else if first.starts_with('[') {
            ListFormat::Rhel
        } else {
            ListFormat::OpenEuler
        }
    }
}

/// A symbol's CRC on some arch for some kernels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CrcRecord {
    /// `0x1234abcd`.
    pub crc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Kernel releases that have this CRC.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernels: Vec<String>,
}

/// One allowlisted symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedSymbol {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_type: Option<ExportType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The exporter: `vmlinux` or a module path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crcs: Vec<CrcRecord>,
    /// Provenance: the certified drivers that use the symbol.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub used_by: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
}

impl AllowedSymbol {
    pub fn named(name: impl Into<String>) -> Self {
        AllowedSymbol {
            name: name.into(),
            export_type: None,
            namespace: None,
            module: None,
            crcs: Vec::new(),
            used_by: Vec::new(),
            justification: None,
        }
    }
}

/// An allowlist: symbols sorted by name, each once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowlist {
    pub format: String,
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// The `[section]` header of the list it was imported from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    #[serde(default, rename = "symbol")]
    pub symbols: Vec<AllowedSymbol>,
}

impl Default for Allowlist {
    fn default() -> Self {
        Allowlist {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            release: None,
            arch: None,
            section: None,
            symbols: Vec::new(),
        }
    }
}

/// Names added and removed between two allowlists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AllowlistDiff {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Symbols on both lists whose recorded CRCs differ.
    pub crc_changed: Vec<String>,
}

impl Allowlist {
    /// Whether `symbol` is on the list.
    pub fn contains(&self, symbol: &str) -> bool {
        self.get(symbol).is_some()
    }

    pub fn get(&self, symbol: &str) -> Option<&AllowedSymbol> {
        self.symbols
            .binary_search_by(|s| s.name.as_str().cmp(symbol))
            .ok()
            .and_then(|i| self.symbols.get(i))
    }

    /// Inserts or merges a symbol, keeping the list sorted.
    pub fn insert(&mut self, sym: AllowedSymbol) {
        match self
            .symbols
            .binary_search_by(|s| s.name.as_str().cmp(&sym.name))
        {
            Ok(i) => {
                if let Some(have) = self.symbols.get_mut(i) {
                    merge_symbol(have, sym);
                }
            }
            Err(i) => self.symbols.insert(i, sym),
        }
    }

    /// Builds a list from symbols in any order.
    fn from_symbols(mut symbols: Vec<AllowedSymbol>) -> Self {
        symbols.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out = Allowlist::default();
        for s in symbols {
            if out.symbols.last().is_some_and(|l| l.name == s.name) {
                if let Some(l) = out.symbols.last_mut() {
                    merge_symbol(l, s);
                }
            } else {
                out.symbols.push(s);
            }
        }
        out
    }

    /// The union of the kernel symbols that `drivers` use, with the
    /// kernel's CRC, export type and namespace, and which drivers use each.
    pub fn generate(kernel: &Kernel, drivers: &[Module]) -> Self {
        let own: BTreeSet<&str> = drivers
            .iter()
            .flat_map(|m| m.exports.iter().map(|e| e.name.as_str()))
            .collect();
        let mut symbols = Vec::new();
        for m in drivers {
            for i in m.imports() {
                if own.contains(i.name) {
                    continue;
                }
                let Some(e) = kernel.export(i.name) else {
                    continue;
                };
                symbols.push(AllowedSymbol {
                    name: e.name.to_string(),
                    export_type: Some(e.export_type),
                    namespace: e.namespace.map(str::to_string),
                    module: Some(e.module.to_string()),
                    crcs: e
                        .crc
                        .filter(|&c| c != 0)
                        .map(|c| CrcRecord {
                            crc: format!("0x{c:08x}"),
                            arch: kernel.arch.clone(),
                            kernels: vec![kernel.name.clone()],
                        })
                        .into_iter()
                        .collect(),
                    used_by: vec![m.name.clone()],
                    justification: None,
                });
            }
        }
        let mut out = Self::from_symbols(symbols);
        out.release = kernel.release.clone();
        out.arch = kernel.arch.clone();
        out
    }

    /// The union of two lists (symbols, CRC records, provenance).
    pub fn merge(&mut self, other: Allowlist) {
        for s in other.symbols {
            self.insert(s);
        }
        if self.arch != other.arch {
            self.arch = self.arch.take().or(other.arch);
        }
        self.release = self.release.take().or(other.release);
        self.section = self.section.take().or(other.section);
    }

    /// What changed from `self` (older) to `new`.
    pub fn diff(&self, new: &Allowlist) -> AllowlistDiff {
        let mut d = AllowlistDiff::default();
        for s in &new.symbols {
            match self.get(&s.name) {
                None => d.added.push(s.name.clone()),
                Some(o) => {
                    let crcs = |x: &AllowedSymbol| -> BTreeSet<(Option<String>, String)> {
                        x.crcs
                            .iter()
                            .map(|c| (c.arch.clone(), c.crc.clone()))
                            .collect()
                    };
                    let (a, b) = (crcs(o), crcs(s));
                    let archs: BTreeSet<_> = a.iter().map(|x| &x.0).collect();
                    if b.iter().any(|x| archs.contains(&x.0) && !a.contains(x)) {
                        d.crc_changed.push(s.name.clone());
                    }
                }
            }
        }
        for s in &self.symbols {
            if !new.contains(&s.name) {
                d.removed.push(s.name.clone());
            }
        }
        d
    }

    /// Reads a list in `format`; `path` names it in errors.
    pub fn import(text: &str, format: ListFormat, path: &str) -> Result<Self> {
        let err = |line: usize, msg: String| Error::Allowlist {
            path: path.to_string(),
            line,
            msg,
        };
        match format {
            ListFormat::Json => {
                let a: Allowlist =
                    serde_json::from_str(text).map_err(|e| err(e.line(), e.to_string()))?;
                a.validated(path)
            }
            ListFormat::Toml => {
                let a: Allowlist = toml::from_str(text).map_err(|e| {
                    let line = e
                        .span()
                        .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                        .unwrap_or(0);
                    err(line, e.message().to_string())
                })?;
                a.validated(path)
            }
            ListFormat::Symvers => {
                let s = Symvers::parse(text, path)?;
                Ok(Self::from_symbols(
                    s.exports()
                        .iter()
                        .map(|e| AllowedSymbol {
                            name: e.name.to_string(),
                            export_type: Some(e.export_type),
                            namespace: e.namespace.map(str::to_string),
                            module: Some(e.module.to_string()),
                            crcs: e
                                .crc
                                .map(|c| CrcRecord {
                                    crc: format!("0x{c:08x}"),
                                    arch: None,
                                    kernels: Vec::new(),
                                })
                                .into_iter()
                                .collect(),
                            used_by: Vec::new(),
                            justification: None,
                        })
                        .collect(),
                ))
            }
            ListFormat::Rhel | ListFormat::OpenEuler | ListFormat::Android => {
                let mut section = None;
                let mut symbols = Vec::new();
                for (i, raw) in text.lines().enumerate() {
                    let line = raw.trim();
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    if let Some(h) = line.strip_prefix('[') {
                        let h = h
                            .strip_suffix(']')
                            .ok_or_else(|| err(i + 1, format!("unterminated section {line:?}")))?;
                        if section.is_none() {
                            section = Some(h.to_string());
                        }
                        continue;
                    }
                    if line.split_whitespace().count() != 1 {
                        return Err(err(i + 1, format!("expected one symbol, found {line:?}")));
                    }
                    symbols.push(AllowedSymbol::named(line));
                }
                if format == ListFormat::Android && section.as_deref() != Some("abi_symbol_list") {
                    return Err(err(1, "missing [abi_symbol_list] header".to_string()));
                }
                let mut a = Self::from_symbols(symbols);
                a.section = section;
                Ok(a)
            }
        }
    }

    /// Reads a list from a file, guessing its format when `format` is `None`.
    pub fn read(path: &std::path::Path, format: Option<ListFormat>) -> Result<Self> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::io(&shown, e))?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Allowlist {
            path: shown.clone(),
            line: 0,
            msg: format!("not UTF-8 text: {e}"),
        })?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let format = format.unwrap_or_else(|| ListFormat::sniff(name, &text));
        Self::import(&text, format, &shown)
    }

    fn validated(self, path: &str) -> Result<Self> {
        let err = |msg: String| Error::Allowlist {
            path: path.to_string(),
            line: 0,
            msg,
        };
        if self.format != FORMAT_NAME {
            return Err(err(format!(
                "format is {:?}, expected {FORMAT_NAME:?}",
                self.format
            )));
        }
        if self.version != FORMAT_VERSION {
            return Err(err(format!(
                "format version {} is not supported (this certlab reads version {FORMAT_VERSION})",
                self.version
            )));
        }
        for s in &self.symbols {
            for c in &s.crcs {
                if parse_crc(&c.crc).is_none() {
                    return Err(err(format!("symbol {}: bad CRC {:?}", s.name, c.crc)));
                }
            }
        }
        let (release, arch, section) = (self.release, self.arch, self.section);
        let mut a = Self::from_symbols(self.symbols);
        a.release = release;
        a.arch = arch;
        a.section = section;
        Ok(a)
    }

    /// Writes the list in `format`.
    pub fn export(&self, format: ListFormat) -> String {
        let mut out = String::new();
        match format {
            ListFormat::Json => {
                out = serde_json::to_string_pretty(self).unwrap_or_default();
                out.push('\n');
            }
            ListFormat::Toml => out = toml::to_string(self).unwrap_or_default(),
            ListFormat::Symvers => {
                for s in &self.symbols {
                    let crc = s
                        .crcs
                        .iter()
                        .find(|c| c.arch == self.arch || self.arch.is_none())
                        .or(s.crcs.first())
                        .and_then(|c| parse_crc(&c.crc))
                        .unwrap_or(0);
                    let _ = writeln!(
                        out,
                        "0x{crc:08x}\t{}\t{}\t{}\t{}",
                        s.name,
                        s.module.as_deref().unwrap_or("vmlinux"),
                        s.export_type.unwrap_or(ExportType::Plain),
                        s.namespace.as_deref().unwrap_or("")
                    );
                }
            }
            ListFormat::Rhel | ListFormat::OpenEuler => {
                let arch = self.arch.as_deref().unwrap_or("x86_64");
                let section = match (&self.section, format) {
                    (Some(s), _) => Some(s.clone()),
                    (None, ListFormat::Rhel) => Some(format!("rhel_kabi_stablelist_{arch}")),
                    _ => None,
                };
                if let Some(s) = section {
                    let _ = writeln!(out, "[{s}]");
                    for s in &self.symbols {
                        let _ = writeln!(out, "\t{}", s.name);
                    }
                } else {
                    for s in &self.symbols {
                        let _ = writeln!(out, "{}", s.name);
                    }
                }
            }
            ListFormat::Android => {
                out.push_str("[abi_symbol_list]\n");
                for s in &self.symbols {
                    let _ = writeln!(out, "  {}", s.name);
                }
            }
        }
        out
    }
}

fn merge_symbol(have: &mut AllowedSymbol, new: AllowedSymbol) {
    have.export_type = have.export_type.or(new.export_type);
    have.namespace = have.namespace.take().or(new.namespace);
    have.module = have.module.take().or(new.module);
    have.justification = have.justification.take().or(new.justification);
    for c in new.crcs {
        if let Some(h) = have
            .crcs
            .iter_mut()
            .find(|h| h.crc == c.crc && h.arch == c.arch)
        {
            for k in c.kernels {
                if !h.kernels.contains(&k) {
                    h.kernels.push(k);
                }
            }
            h.kernels.sort();
        } else {
            have.crcs.push(c);
        }
    }
    have.crcs.sort();
    for u in new.used_by {
        if !have.used_by.contains(&u) {
            have.used_by.push(u);
        }
    }
    have.used_by.sort();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn sample() -> Allowlist {
        let mut a = Allowlist {
            release: Some("6.1.0-56-amd64".into()),
            arch: Some("amd64".into()),
            ..Allowlist::default()
        };
        let mut s = AllowedSymbol::named("kmalloc_trace");
        s.export_type = Some(ExportType::Plain);
        s.module = Some("vmlinux".into());
        s.crcs.push(CrcRecord {
            crc: "0x1234abcd".into(),
            arch: Some("amd64".into()),
            kernels: vec!["6.1.0-56-amd64".into()],
        });
        s.used_by = vec!["nvidia".into()];
        s.justification = Some("allocations".into());
        a.insert(s);
        let mut s = AllowedSymbol::named("dma_buf_get");
        s.export_type = Some(ExportType::Gpl);
        s.namespace = Some("DMA_BUF".into());
        s.module = Some("vmlinux".into());
        s.crcs.push(CrcRecord {
            crc: "0x00000001".into(),
            arch: Some("amd64".into()),
            kernels: vec![],
        });
        a.insert(s);
        a
    }

    #[test]
    fn own_format_round_trips_through_json_and_toml() {
        let a = sample();
        for f in [ListFormat::Json, ListFormat::Toml] {
            let text = a.export(f);
            let b = Allowlist::import(&text, f, "x").unwrap();
            assert_eq!(a, b, "{text}");
        }
    }

    #[test]
    fn symvers_round_trip_keeps_crc_type_namespace() {
        let a = sample();
        let text = a.export(ListFormat::Symvers);
        let b = Allowlist::import(&text, ListFormat::Symvers, "x").unwrap();
        assert_eq!(b.export(ListFormat::Symvers), text);
        assert_eq!(
            b.get("dma_buf_get").unwrap().namespace.as_deref(),
            Some("DMA_BUF")
        );
    }

    #[test]
    fn name_lists_round_trip() {
        let rhel = "[rhel9_kabi_stablelist_x86_64]\n\tadd_timer\n\tkmalloc\n";
        let a = Allowlist::import(rhel, ListFormat::Rhel, "x").unwrap();
        assert_eq!(a.export(ListFormat::Rhel), rhel);
        let gki = "[abi_symbol_list]\n  add_timer\n  kfree\n";
        let a = Allowlist::import(gki, ListFormat::Android, "x").unwrap();
        assert_eq!(a.export(ListFormat::Android), gki);
        let oe = "# openEuler\nkfree\n__kmalloc\n";
        let a = Allowlist::import(oe, ListFormat::OpenEuler, "x").unwrap();
        assert!(a.contains("__kmalloc") && !a.contains("kmalloc"));
        assert_eq!(a.export(ListFormat::OpenEuler), "__kmalloc\nkfree\n");
        assert_eq!(
            ListFormat::sniff("kabi_stablelist_x86_64", rhel),
            ListFormat::Rhel
        );
        assert_eq!(
            ListFormat::sniff("abi_gki_aarch64", gki),
            ListFormat::Android
        );
    }

    #[test]
    fn bad_lists_are_errors_naming_the_line() {
        let e = Allowlist::import("[s]\n\ta b\n", ListFormat::Rhel, "list")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("list: line 2"), "{e}");
        let e = Allowlist::import(
            "{\"format\":\"certlab-kabi-allowlist\",\"version\":99}",
            ListFormat::Json,
            "l.json",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("version 99"), "{e}");
        assert!(Allowlist::import("kfree\n", ListFormat::Android, "x").is_err());
    }

    #[test]
    fn merge_and_diff() {
        let mut a = sample();
        let mut b = Allowlist::default();
        let mut s = AllowedSymbol::named("kmalloc_trace");
        s.crcs.push(CrcRecord {
            crc: "0x99999999".into(),
            arch: Some("amd64".into()),
            kernels: vec![],
        });
        s.used_by = vec!["mlx5".into()];
        b.insert(s);
        b.insert(AllowedSymbol::named("kfree"));
        let d = a.diff(&b);
        assert_eq!(d.added, vec!["kfree"]);
        assert_eq!(d.removed, vec!["dma_buf_get"]);
        assert_eq!(d.crc_changed, vec!["kmalloc_trace"]);
        a.merge(b);
        let k = a.get("kmalloc_trace").unwrap();
        assert_eq!(k.used_by, vec!["mlx5", "nvidia"]);
        assert_eq!(k.crcs.len(), 2);
        assert_eq!(a.symbols.len(), 3);
    }
}
