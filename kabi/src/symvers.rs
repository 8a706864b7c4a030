//! `Module.symvers`: the table of every symbol a kernel build exports, in
//! its three historical layouts, plain or gzip'ed (`/boot/symvers-*.gz`).

use rustc_hash::FxHashMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a symbol is exported: which `EXPORT_SYMBOL*` macro.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ExportType {
    #[serde(rename = "EXPORT_SYMBOL")]
    Plain,
    #[serde(rename = "EXPORT_SYMBOL_GPL")]
    Gpl,
    #[serde(rename = "EXPORT_SYMBOL_GPL_FUTURE")]
    GplFuture,
    #[serde(rename = "EXPORT_UNUSED_SYMBOL")]
    Unused,
    #[serde(rename = "EXPORT_UNUSED_SYMBOL_GPL")]
    UnusedGpl,
}

impl ExportType {
    /// The macro name as Module.symvers writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportType::Plain => "EXPORT_SYMBOL",
            ExportType::Gpl => "EXPORT_SYMBOL_GPL",
            ExportType::GplFuture => "EXPORT_SYMBOL_GPL_FUTURE",
            ExportType::Unused => "EXPORT_UNUSED_SYMBOL",
            ExportType::UnusedGpl => "EXPORT_UNUSED_SYMBOL_GPL",
        }
    }

    /// Parses a macro name; `None` when it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EXPORT_SYMBOL" => ExportType::Plain,
            "EXPORT_SYMBOL_GPL" => ExportType::Gpl,
            "EXPORT_SYMBOL_GPL_FUTURE" => ExportType::GplFuture,
            "EXPORT_UNUSED_SYMBOL" => ExportType::Unused,
            "EXPORT_UNUSED_SYMBOL_GPL" => ExportType::UnusedGpl,
            _ => return None,
        })
    }

    /// Whether only GPL-compatible modules may use the symbol.
    pub fn gpl_only(self) -> bool {
        matches!(self, ExportType::Gpl | ExportType::UnusedGpl)
    }
}

impl std::fmt::Display for ExportType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One exported symbol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Export {
    pub name: String,
    /// The symbol's version CRC; `None` when the exporter has none
    /// (a kernel or module built without modversions).
    pub crc: Option<u32>,
    /// `vmlinux`, or the exporting module as Module.symvers names it
    /// (`drivers/net/mii`), or a module's name when read from a `.ko`.
    pub module: String,
    pub export_type: ExportType,
    /// The symbol namespace; `None` when the symbol has none.
    pub namespace: Option<String>,
}

impl Export {
    /// Whether the symbol is exported by the kernel image itself.
    pub fn is_vmlinux(&self) -> bool {
        self.module == "vmlinux"
    }

    /// The exporting module's name as the loader knows it (`mii`), or `vmlinux`.
    pub fn module_name(&self) -> String {
        module_name_of(&self.module)
    }
}

/// The loader's name of a module given as a path (`drivers/net/mii-foo.ko.xz` → `mii_foo`).
pub fn module_name_of(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// Which of the historical Module.symvers layouts a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SymversLayout {
    /// `crc symbol module type` (before 5.4).
    Legacy4,
    /// `crc symbol namespace module type` (early 5.4).
    NamespaceThird,
    /// `crc symbol module type namespace` (5.5 and later; namespace may be empty).
    Current,
}

/// Where an export is in the table, and whether vmlinux exports it (kept
/// in the index so the check's lookup need not read the export's module).
#[derive(Debug, Clone, Copy)]
struct Slot {
    at: usize,
    vmlinux: bool,
}

/// A parsed Module.symvers: the exports in file order plus an index by name.
#[derive(Debug, Clone, Default)]
pub struct Symvers {
    exports: Vec<Export>,
    index: FxHashMap<String, Slot>,
    /// The layout the file was written in (`None` for an empty file).
    pub layout: Option<SymversLayout>,
}

impl Symvers {
    /// Builds a table from exports; a later duplicate of a name is ignored.
    pub fn from_exports(exports: impl IntoIterator<Item = Export>) -> Self {
        let mut s = Symvers::default();
        for e in exports {
            s.push(e);
        }
        s
    }

    /// Adds an export unless one of the same name is already there.
    pub fn push(&mut self, export: Export) -> bool {
        if self.index.contains_key(&export.name) {
            return false;
        }
        let slot = Slot {
            at: self.exports.len(),
            vmlinux: export.is_vmlinux(),
        };
        self.index.insert(export.name.clone(), slot);
        self.exports.push(export);
        true
    }

    /// Parses Module.symvers text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let mut s = Symvers::default();
        // Rows are ~60 bytes: reserve once instead of growing.
        let rows = text.len() / 48;
        s.exports.reserve(rows);
        s.index.reserve(rows);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (export, layout) = parse_line(line).map_err(|msg| Error::Symvers {
                path: path.to_string(),
                line: i + 1,
                msg,
            })?;
            s.layout.get_or_insert(layout);
            s.push(export);
        }
        Ok(s)
    }

    /// Parses Module.symvers bytes, gzip'ed or not.
    pub fn parse_bytes(bytes: &[u8], path: &str) -> Result<Self> {
        Self::parse_bytes_with(bytes, path, &crate::compress::Limits::DEFAULT)
    }

    /// [`Symvers::parse_bytes`], decompressing to at most `limits.symvers` bytes.
    pub fn parse_bytes_with(
        bytes: &[u8],
        path: &str,
        limits: &crate::compress::Limits,
    ) -> Result<Self> {
        let data = crate::compress::decompress(
            bytes,
            path,
            crate::compress::Bounded::Symvers,
            limits.symvers,
        )?;
        let text = std::str::from_utf8(&data).map_err(|e| Error::Symvers {
            path: path.to_string(),
            line: 0,
            msg: format!("not UTF-8 text: {e}"),
        })?;
        Self::parse(text, path)
    }

    /// Reads and parses a Module.symvers file (gzip'ed or not).
    pub fn read(path: &std::path::Path) -> Result<Self> {
        Self::read_with(path, &crate::compress::Limits::DEFAULT)
    }

    /// [`Symvers::read`] within `limits`.
    pub fn read_with(path: &std::path::Path, limits: &crate::compress::Limits) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
        Self::parse_bytes_with(&bytes, &path.display().to_string(), limits)
    }

    /// Writes the table in today's layout, in table order.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.exports.len() * 64);
        for e in &self.exports {
            let _ = writeln!(
                out,
                "0x{:08x}\t{}\t{}\t{}\t{}",
                e.crc.unwrap_or(0),
                e.name,
                e.module,
                e.export_type,
                e.namespace.as_deref().unwrap_or("")
            );
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<&Export> {
        self.index.get(name).and_then(|s| self.exports.get(s.at))
    }

    /// [`Symvers::get`], and whether vmlinux exports the symbol.
    pub fn get_with_origin(&self, name: &str) -> Option<(&Export, bool)> {
        let s = self.index.get(name)?;
        Some((self.exports.get(s.at)?, s.vmlinux))
    }

    pub fn exports(&self) -> &[Export] {
        &self.exports
    }

    pub fn len(&self) -> usize {
        self.exports.len()
    }

    pub fn is_empty(&self) -> bool {
        self.exports.is_empty()
    }

    /// Whether the kernel was built with modversions: false when every CRC
    /// is 0 (or missing), and the loader then only checks presence.
    pub fn has_crcs(&self) -> bool {
        self.exports.iter().any(|e| e.crc.is_some_and(|c| c != 0))
    }
}

fn parse_line(line: &str) -> std::result::Result<(Export, SymversLayout), String> {
    // Up to six fields, without a Vec per line (a sixth means "too many").
    let mut fields = [""; 6];
    let mut n = 0;
    for (slot, field) in fields.iter_mut().zip(line.split('\t')) {
        *slot = field;
        n += 1;
    }
    let f = &fields[..n];
    let crc = f.first().copied().unwrap_or_default();
    let crc = parse_crc(crc).ok_or_else(|| format!("bad CRC {crc:?}"))?;
    let is_type = |i: usize| f.get(i).and_then(|s| ExportType::parse(s));
    let (name, module, export_type, namespace, layout) = match f.len() {
        4 => {
            let t = is_type(3).ok_or_else(|| format!("bad export type {:?}", f[3]))?;
            (f[1], f[2], t, "", SymversLayout::Legacy4)
        }
        5 => {
            if let Some(t) = is_type(3) {
                (f[1], f[2], t, f[4], SymversLayout::Current)
            } else if let Some(t) = is_type(4) {
                (f[1], f[3], t, f[2], SymversLayout::NamespaceThird)
            } else {
                return Err("no EXPORT_SYMBOL* field".to_string());
            }
        }
        _ => {
            let n = line.split('\t').count();
            return Err(format!("{n} tab-separated fields, expected 4 or 5"));
        }
    };
    if name.is_empty() {
        return Err("empty symbol name".to_string());
    }
    Ok((
        Export {
            name: name.to_string(),
            crc: Some(crc),
            module: module.to_string(),
            export_type,
            namespace: (!namespace.is_empty()).then(|| namespace.to_string()),
        },
        layout,
    ))
}

/// Parses `0x1234abcd` (or bare hex) as a CRC.
pub fn parse_crc(s: &str) -> Option<u32> {
    let hex = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if hex.is_empty() || hex.len() > 8 {
        return None;
    }
    u32::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn three_layouts() {
        let cur = "0x12345678\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n0x00000001\tbar\tdrivers/net/mii\tEXPORT_SYMBOL_GPL\tNS_A\n";
        let s = Symvers::parse(cur, "t").unwrap();
        assert_eq!(s.layout, Some(SymversLayout::Current));
        assert_eq!(s.get("foo").unwrap().namespace, None);
        assert_eq!(s.get("bar").unwrap().namespace.as_deref(), Some("NS_A"));
        assert_eq!(s.get("bar").unwrap().module_name(), "mii");
        assert_eq!(s.to_text(), cur);

        let early = "0x12345678\tfoo\t\tvmlinux\tEXPORT_SYMBOL\n0x1\tbar\tNS_A\tdrivers/x\tEXPORT_SYMBOL_GPL\n";
        let s = Symvers::parse(early, "t").unwrap();
        assert_eq!(s.layout, Some(SymversLayout::NamespaceThird));
        assert_eq!(s.get("bar").unwrap().namespace.as_deref(), Some("NS_A"));
        assert_eq!(s.get("bar").unwrap().module, "drivers/x");

        let old = "0x12345678\tfoo\tvmlinux\tEXPORT_SYMBOL\n";
        let s = Symvers::parse(old, "t").unwrap();
        assert_eq!(s.layout, Some(SymversLayout::Legacy4));
        assert!(s.has_crcs());
    }

    #[test]
    fn zero_crcs_mean_no_modversions() {
        let s = Symvers::parse("0x00000000\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n", "t").unwrap();
        assert!(!s.has_crcs());
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = Symvers::parse(
            "0x1\tfoo\tvmlinux\tEXPORT_SYMBOL\t\nzz\tbar\n",
            "Module.symvers",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Module.symvers: line 2"), "{e}");
        assert!(Symvers::parse("0x1\tfoo\tvmlinux\tEXPORT_THING\n", "t").is_err());
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name_of("drivers/net/mii-foo.ko.xz"), "mii_foo");
        assert_eq!(module_name_of("vmlinux"), "vmlinux");
    }
}
