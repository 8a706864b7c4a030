//! `Module.symvers`: the table of every symbol a kernel build exports, in
//! its three historical layouts, plain or gzip'ed (`/boot/symvers-*.gz`).

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

/// One exported symbol as the table holds it: borrowed from the table's
/// text (no allocation per row or per lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportRef<'a> {
    pub name: &'a str,
    pub crc: Option<u32>,
    pub module: &'a str,
    pub export_type: ExportType,
    pub namespace: Option<&'a str>,
}

impl<'a> ExportRef<'a> {
    /// Whether the symbol is exported by the kernel image itself.
    pub fn is_vmlinux(&self) -> bool {
        self.module == "vmlinux"
    }

    /// The exporting module's name as the loader knows it (`mii`), or `vmlinux`.
    pub fn module_name(&self) -> String {
        module_name_of(self.module)
    }

    /// An owned copy.
    pub fn to_export(&self) -> Export {
        Export {
            name: self.name.to_string(),
            crc: self.crc,
            module: self.module.to_string(),
            export_type: self.export_type,
            namespace: self.namespace.map(str::to_string),
        }
    }
}

impl Export {
    /// The export as a table row would lend it.
    pub fn borrowed(&self) -> ExportRef<'_> {
        ExportRef {
            name: &self.name,
            crc: self.crc,
            module: &self.module,
            export_type: self.export_type,
            namespace: self.namespace.as_deref(),
        }
    }
}

impl PartialEq<Export> for ExportRef<'_> {
    fn eq(&self, other: &Export) -> bool {
        *self == other.borrowed()
    }
}

/// Bytes `at..at + len` of the table's text.
#[derive(Debug, Clone, Copy, Default)]
struct Span {
    at: u32,
    len: u32,
}

/// A row: spans into the text (a namespace of length 0 is none).
#[derive(Debug, Clone, Copy)]
struct Row {
    name: Span,
    module: Span,
    namespace: Span,
    crc: u32,
    has_crc: bool,
    vmlinux: bool,
    export_type: ExportType,
}

/// A parsed Module.symvers: the exports in file order, held as spans of
/// one text (the file's own, or the names pushed), plus an index by name.
///
/// A kernel's table is some 25,000 rows, read on every check: one String
/// per name and module and a keyed hash map made it 75,000 allocations
/// and ~8 MB of fresh heap per command; as spans it is three buffers.
#[derive(Debug, Clone, Default)]
pub struct Symvers {
    text: String,
    rows: Vec<Row>,
    /// Open addressing by name: `(hash, row + 1)`, `row + 1 == 0` empty;
    /// a power of two at most half full.
    slots: Vec<(u32, u32)>,
    /// The layout the file was written in (`None` for an empty file).
    pub layout: Option<SymversLayout>,
}

/// The exports of a table, in table order ([`Symvers::exports`]).
#[derive(Clone, Copy)]
pub struct Exports<'a>(&'a Symvers);

impl<'a> Exports<'a> {
    pub fn iter(&self) -> ExportsIter<'a> {
        ExportsIter {
            table: self.0,
            rows: self.0.rows.iter(),
        }
    }

    pub fn len(&self) -> usize {
        self.0.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.rows.is_empty()
    }
}

impl<'a> IntoIterator for Exports<'a> {
    type Item = ExportRef<'a>;
    type IntoIter = ExportsIter<'a>;
    fn into_iter(self) -> ExportsIter<'a> {
        self.iter()
    }
}

/// The rows of a table as [`ExportRef`]s.
#[derive(Clone)]
pub struct ExportsIter<'a> {
    table: &'a Symvers,
    rows: std::slice::Iter<'a, Row>,
}

impl<'a> Iterator for ExportsIter<'a> {
    type Item = ExportRef<'a>;
    fn next(&mut self) -> Option<ExportRef<'a>> {
        self.rows.next().map(|r| self.table.row(r))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.rows.size_hint()
    }
}

impl ExactSizeIterator for ExportsIter<'_> {}

fn hash_name(name: &str) -> u32 {
    use std::hash::BuildHasher;
    let h = rustc_hash::FxBuildHasher.hash_one(name.as_bytes());
    // Fx's high bits are its best mixed.
    (h >> 32) as u32
}

/// The largest table text spans can address.
const MAX_TEXT: usize = u32::MAX as usize;

impl Symvers {
    /// Builds a table from exports; a later duplicate of a name is ignored.
    pub fn from_exports(exports: impl IntoIterator<Item = Export>) -> Self {
        let mut s = Symvers::default();
        for e in exports {
            s.push(e);
        }
        s
    }

    fn span(&self, sp: Span) -> &str {
        self.text
            .get(sp.at as usize..(sp.at + sp.len) as usize)
            .unwrap_or_default()
    }

    fn row(&self, r: &Row) -> ExportRef<'_> {
        ExportRef {
            name: self.span(r.name),
            crc: r.has_crc.then_some(r.crc),
            module: self.span(r.module),
            export_type: r.export_type,
            namespace: (r.namespace.len > 0).then(|| self.span(r.namespace)),
        }
    }

    /// The slot of `name`: where it is (`Ok`) or where it would go (`Err`).
    fn find(&self, name: &str, hash: u32) -> std::result::Result<usize, usize> {
        let mask = self.slots.len().wrapping_sub(1);
        let mut i = hash as usize & mask;
        loop {
            match self.slots.get(i) {
                None => return Err(usize::MAX),
                Some(&(_, 0)) => return Err(i),
                Some(&(h, r)) => {
                    if h == hash {
                        if let Some(row) = self.rows.get(r as usize - 1) {
                            if self.span(row.name) == name {
                                return Ok(r as usize - 1);
                            }
                        }
                    }
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Room for `rows` rows in the index (at most half full).
    fn reserve_index(&mut self, rows: usize) {
        let want = (rows.max(8) * 2).next_power_of_two();
        if want <= self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); want]);
        let mask = want - 1;
        for (h, r) in old.into_iter().filter(|&(_, r)| r != 0) {
            let mut i = h as usize & mask;
            while self.slots.get(i).is_some_and(|s| s.1 != 0) {
                i = (i + 1) & mask;
            }
            if let Some(slot) = self.slots.get_mut(i) {
                *slot = (h, r);
            }
        }
    }

    /// Adds a row whose spans are in the text already, unless its name is
    /// there; false when it was.
    fn insert(&mut self, row: Row) -> bool {
        self.reserve_index(self.rows.len() + 1);
        let name = self.span(row.name);
        let hash = hash_name(name);
        match self.find(name, hash) {
            Ok(_) => false,
            Err(i) => {
                let Ok(r) = u32::try_from(self.rows.len() + 1) else {
                    return false;
                };
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = (hash, r);
                }
                self.rows.push(row);
                true
            }
        }
    }

    fn push_text(&mut self, s: &str) -> Span {
        let at = self.text.len() as u32;
        self.text.push_str(s);
        Span {
            at,
            len: s.len() as u32,
        }
    }

    /// Adds an export unless one of the same name is already there.
    pub fn push(&mut self, export: Export) -> bool {
        let added = export.name.len()
            + export.module.len()
            + export.namespace.as_ref().map_or(0, String::len);
        if self.get(&export.name).is_some() || self.text.len() + added > MAX_TEXT {
            return false;
        }
        let name = self.push_text(&export.name);
        let module = self.push_text(&export.module);
        let namespace = match &export.namespace {
            Some(ns) => self.push_text(ns),
            None => Span::default(),
        };
        self.insert(Row {
            name,
            module,
            namespace,
            crc: export.crc.unwrap_or(0),
            has_crc: export.crc.is_some(),
            vmlinux: export.is_vmlinux(),
            export_type: export.export_type,
        })
    }

    /// Parses Module.symvers text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        Self::parse_owned(text.to_string(), path)
    }

    /// [`Symvers::parse`] of text the table then keeps (no copy).
    pub fn parse_owned(text: String, path: &str) -> Result<Self> {
        if text.len() > MAX_TEXT {
            return Err(Error::Symvers {
                path: path.to_string(),
                line: 0,
                msg: format!("{} bytes: larger than a table can hold", text.len()),
            });
        }
        let mut s = Symvers {
            text,
            ..Symvers::default()
        };
        // A row per line: reserve once instead of growing.
        let rows = memchr::memchr_iter(b'\n', s.text.as_bytes()).count() + 1;
        s.rows.reserve(rows);
        s.reserve_index(rows);
        let mut at = 0usize;
        let mut line_no = 0usize;
        while at < s.text.len() {
            line_no += 1;
            let rest = s.text.get(at..).unwrap_or_default();
            let len = memchr::memchr(b'\n', rest.as_bytes()).unwrap_or(rest.len());
            let line = rest.get(..len).unwrap_or_default();
            let line = line.strip_suffix('\r').unwrap_or(line);
            let base = at;
            at += len + 1;
            if line.trim().is_empty() {
                continue;
            }
            let (row, layout) = parse_line(line, base).map_err(|msg| Error::Symvers {
                path: path.to_string(),
                line: line_no,
                msg,
            })?;
            s.layout.get_or_insert(layout);
            s.insert(row);
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
        let text = match data {
            std::borrow::Cow::Owned(v) => String::from_utf8(v).map_err(|e| e.utf8_error()),
            std::borrow::Cow::Borrowed(b) => std::str::from_utf8(b).map(str::to_string),
        }
        .map_err(|e| Error::Symvers {
            path: path.to_string(),
            line: 0,
            msg: format!("not UTF-8 text: {e}"),
        })?;
        Self::parse_owned(text, path)
    }

    /// Reads and parses a Module.symvers file (gzip'ed or not).
    pub fn read(path: &std::path::Path) -> Result<Self> {
        Self::read_with(path, &crate::compress::Limits::DEFAULT)
    }

    /// [`Symvers::read`] within `limits`.
    pub fn read_with(path: &std::path::Path, limits: &crate::compress::Limits) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display(), e))?;
        let shown = path.display().to_string();
        match String::from_utf8(bytes) {
            // Plain text (a compressed file is never valid UTF-8: its
            // magic bytes are not): kept as read.
            Ok(text) if bytes_are_plain(text.as_bytes()) => Self::parse_owned(text, &shown),
            Ok(text) => Self::parse_bytes_with(text.as_bytes(), &shown, limits),
            Err(e) => Self::parse_bytes_with(e.as_bytes(), &shown, limits),
        }
    }

    /// Writes the table in today's layout, in table order.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.rows.len() * 64);
        for e in self.exports().iter() {
            let _ = writeln!(
                out,
                "0x{:08x}\t{}\t{}\t{}\t{}",
                e.crc.unwrap_or(0),
                e.name,
                e.module,
                e.export_type,
                e.namespace.unwrap_or("")
            );
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<ExportRef<'_>> {
        self.get_with_origin(name).map(|(e, _)| e)
    }

    /// [`Symvers::get`], and whether vmlinux exports the symbol.
    pub fn get_with_origin(&self, name: &str) -> Option<(ExportRef<'_>, bool)> {
        if self.rows.is_empty() {
            return None;
        }
        let r = self.find(name, hash_name(name)).ok()?;
        let row = self.rows.get(r)?;
        Some((self.row(row), row.vmlinux))
    }

    pub fn exports(&self) -> Exports<'_> {
        Exports(self)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Whether the kernel was built with modversions: false when every CRC
    /// is 0 (or missing), and the loader then only checks presence.
    pub fn has_crcs(&self) -> bool {
        self.rows.iter().any(|r| r.has_crc && r.crc != 0)
    }
}

/// Whether `data` is not in any compressed format the reader knows.
fn bytes_are_plain(data: &[u8]) -> bool {
    crate::compress::Compression::sniff(data) == crate::compress::Compression::None
}

/// A row of a line that starts at byte `base` of the text.
fn parse_line(line: &str, base: usize) -> std::result::Result<(Row, SymversLayout), String> {
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
    // Each field is a subslice of `line`: its span is its offset in it.
    let span = |field: &str| Span {
        at: (base + (field.as_ptr() as usize - line.as_ptr() as usize)) as u32,
        len: field.len() as u32,
    };
    Ok((
        Row {
            name: span(name),
            module: span(module),
            namespace: if namespace.is_empty() {
                Span::default()
            } else {
                span(namespace)
            },
            crc,
            has_crc: true,
            vmlinux: module == "vmlinux",
            export_type,
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
        assert_eq!(s.get("bar").unwrap().namespace, Some("NS_A"));
        assert_eq!(s.get("bar").unwrap().module_name(), "mii");
        assert_eq!(s.to_text(), cur);

        let early = "0x12345678\tfoo\t\tvmlinux\tEXPORT_SYMBOL\n0x1\tbar\tNS_A\tdrivers/x\tEXPORT_SYMBOL_GPL\n";
        let s = Symvers::parse(early, "t").unwrap();
        assert_eq!(s.layout, Some(SymversLayout::NamespaceThird));
        assert_eq!(s.get("bar").unwrap().namespace, Some("NS_A"));
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
    fn the_index_finds_every_row_and_keeps_the_first_of_a_name() {
        // CRLF lines and a last line without a newline, as some vendors ship them.
        let text = "0x1\tfoo\tvmlinux\tEXPORT_SYMBOL\t\r\n0x2\tfoo\tdrivers/x\tEXPORT_SYMBOL_GPL\t\r\n\n0x3\tbar\tdrivers/y\tEXPORT_SYMBOL_GPL\tNS";
        let s = Symvers::parse(text, "t").unwrap();
        assert_eq!(s.len(), 2);
        let foo = s.get("foo").unwrap();
        assert_eq!(
            (foo.crc, foo.module, foo.is_vmlinux()),
            (Some(1), "vmlinux", true)
        );
        assert_eq!(
            s.get_with_origin("bar").map(|(e, v)| (e.namespace, v)),
            Some((Some("NS"), false))
        );
        assert!(s.get("ba").is_none() && s.get("").is_none() && s.get("foo ").is_none());

        // Pushed rows: the index grows past its first size and still finds all.
        let mut t = Symvers::default();
        assert!(t.get("x").is_none());
        for i in 0..5000u32 {
            assert!(t.push(Export {
                name: format!("sym_{i}"),
                crc: Some(i),
                module: if i % 2 == 0 {
                    "vmlinux".into()
                } else {
                    format!("drivers/m{i}")
                },
                export_type: ExportType::Plain,
                namespace: (i % 7 == 0).then(|| "NS".to_string()),
            }));
        }
        assert!(!t.push(Export {
            name: "sym_42".into(),
            crc: Some(0),
            module: "vmlinux".into(),
            export_type: ExportType::Gpl,
            namespace: None,
        }));
        assert_eq!(t.len(), 5000);
        for i in 0..5000u32 {
            let (e, vmlinux) = t.get_with_origin(&format!("sym_{i}")).unwrap();
            assert_eq!(
                (e.crc, vmlinux, e.namespace.is_some()),
                (Some(i), i % 2 == 0, i % 7 == 0)
            );
        }
        // The table's text round-trips.
        assert_eq!(
            Symvers::parse(&t.to_text(), "t").unwrap().to_text(),
            t.to_text()
        );
    }

    #[test]
    fn module_names() {
        assert_eq!(module_name_of("drivers/net/mii-foo.ko.xz"), "mii_foo");
        assert_eq!(module_name_of("vmlinux"), "vmlinux");
    }
}
