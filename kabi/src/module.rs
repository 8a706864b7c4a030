//! Kernel modules (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`): what the loader
//! reads from them — undefined symbols, `__versions` (basic and extended
//! modversions), `.modinfo`, exports, the signature marker and `.BTF`.
//! ELF32 and ELF64, little- and big-endian.

use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use object::elf;
use object::read::elf::{FileHeader, SectionHeader, Sym};
use object::read::ReadRef;
use object::Endianness;
use serde::{Deserialize, Serialize};

use crate::compress::{decompress, Bounded, Limits};
use crate::error::{Error, Result};
use crate::symvers::{Export, ExportType};

/// The marker `sign-file` appends after a module's signature.
pub const SIGNATURE_MARKER: &[u8] = b"~Module signature appended~\n";

/// The shape of a module's ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfKind {
    /// 32 or 64.
    pub bits: u8,
    pub big_endian: bool,
    /// `e_machine` (62 = x86-64, 183 = AArch64, …).
    pub machine: u16,
}

impl ElfKind {
    /// The Debian architecture name of the machine, when it is a common one.
    pub fn arch(&self) -> Option<&'static str> {
        Some(match (self.machine, self.bits, self.big_endian) {
            (elf::EM_X86_64, 64, _) => "amd64",
            (elf::EM_386, _, _) => "i386",
            (elf::EM_AARCH64, _, false) => "arm64",
            (elf::EM_ARM, _, false) => "armhf",
            (elf::EM_PPC64, _, false) => "ppc64el",
            (elf::EM_PPC64, _, true) => "ppc64",
            (elf::EM_S390, _, _) => "s390x",
            (elf::EM_RISCV, 64, _) => "riscv64",
            (elf::EM_LOONGARCH, 64, _) => "loong64",
            (elf::EM_MIPS, 64, false) => "mips64el",
            _ => return None,
        })
    }
}

/// A symbol the module needs from the kernel or other modules (a view
/// into the module's [`Names`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Import<'a> {
    pub name: &'a str,
    /// A weak reference: the loader accepts it unresolved.
    pub weak: bool,
}

/// One `__versions` (or extended modversions) record (a view into the
/// module's [`Names`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Version<'a> {
    pub name: &'a str,
    /// `unsigned long` in the file; the kernel's CRCs are 32-bit.
    pub crc: u64,
}

/// The symbol names that modules import and version, each stored once in
/// one text; a module refers to them by index ([`NameId`]). A module
/// parsed on its own has a table of its own; the modules read back from
/// the parsed-module cache share the table of their directory, so a
/// checker resolves each distinct name once for all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    text: String,
    /// End of each name in `text` (a name starts where the previous ends).
    ends: Vec<u32>,
}

/// The index of a name in a [`Names`] table.
pub type NameId = u32;

impl Names {
    /// The name of `id` ("" for an id out of range).
    pub fn get(&self, id: NameId) -> &str {
        let i = id as usize;
        let start = match i.checked_sub(1) {
            Some(p) => self.ends.get(p).copied().unwrap_or(0) as usize,
            None => 0,
        };
        let end = self.ends.get(i).copied().unwrap_or(0) as usize;
        self.text.get(start..end).unwrap_or_default()
    }

    /// The number of names.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Every name, in id order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        (0..self.ends.len() as NameId).map(|i| self.get(i))
    }

    /// Adds a name that is not in the table yet (the caller dedupes).
    pub(crate) fn push_new(&mut self, name: &str) -> NameId {
        self.text.push_str(name);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as NameId
    }

    /// A table from its text and the end of each name; `None` unless the
    /// ends are in order within the text and on character boundaries, and
    /// every name sorts strictly after the one before (so each is there
    /// once, as [`Module`]'s version lookup by id needs).
    pub(crate) fn from_sorted_parts(text: String, ends: Vec<u32>) -> Option<Names> {
        let names = Names { text, ends };
        if names.ends.last().map_or(0, |&e| e as usize) != names.text.len() {
            return None;
        }
        let mut start = 0usize;
        let mut prev: Option<&str> = None;
        for &end in &names.ends {
            let end = end as usize;
            let s = names.text.get(start..end)?;
            if prev.is_some_and(|p| p >= s) {
                return None;
            }
            prev = Some(s);
            start = end;
        }
        Some(names)
    }
}

/// A name table being filled: each distinct name once.
#[derive(Default)]
pub(crate) struct Interner<'s> {
    pub(crate) names: Names,
    ids: HashMap<Cow<'s, str>, NameId>,
}

impl<'s> Interner<'s> {
    pub(crate) fn id(&mut self, name: Cow<'s, str>) -> NameId {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.names.push_new(&name);
        self.ids.insert(name, id);
        id
    }

    /// The id of a name read from a file (not UTF-8: lossily).
    pub(crate) fn id_bytes(&mut self, name: &'s [u8]) -> NameId {
        self.id(String::from_utf8_lossy(name))
    }
}

/// An import as a module keeps it: the name's id, shifted left, and the
/// weak bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImportRef(u32);

impl ImportRef {
    pub(crate) fn new(id: NameId, weak: bool) -> Option<ImportRef> {
        (id < (1 << 31)).then_some(ImportRef(id << 1 | u32::from(weak)))
    }

    pub(crate) fn id(self) -> NameId {
        self.0 >> 1
    }

    pub(crate) fn weak(self) -> bool {
        self.0 & 1 != 0
    }

    pub(crate) fn raw(self) -> u32 {
        self.0
    }

    pub(crate) fn from_raw(raw: u32) -> ImportRef {
        ImportRef(raw)
    }
}

/// The `.modinfo` strings, in file order (keys may repeat, e.g. `import_ns`).
/// Held as one text (`key=value` after `key=value`) and the spans of each
/// entry: one allocation per module instead of two per entry. Serialized
/// as `{"entries": [[key, value], …]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modinfo {
    text: String,
    /// (start, position of `=`, end) of each entry in `text`.
    spans: Vec<(usize, usize, usize)>,
}

impl Modinfo {
    /// Parses the NUL-separated `key=value` strings of a `.modinfo` section.
    pub fn parse(data: &[u8]) -> Self {
        let mut m = Modinfo {
            text: String::with_capacity(data.len()),
            spans: Vec::new(),
        };
        for s in data.split(|&b| b == 0) {
            let Some(eq) = s.iter().position(|&b| b == b'=') else {
                continue;
            };
            match std::str::from_utf8(s) {
                Ok(s) => m.push(&s[..eq], &s[eq + 1..]),
                Err(_) => {
                    let s = String::from_utf8_lossy(s);
                    if let Some((k, v)) = s.split_once('=') {
                        m.push(k, v);
                    }
                }
            }
        }
        m
    }

    /// An empty table with room for `entries` entries of `bytes` bytes in all.
    pub fn with_capacity(entries: usize, bytes: usize) -> Self {
        Modinfo {
            text: String::with_capacity(bytes),
            spans: Vec::with_capacity(entries),
        }
    }

    /// Adds an entry at the end.
    pub fn push(&mut self, key: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(key);
        let eq = self.text.len();
        self.text.push('=');
        self.text.push_str(value);
        self.spans.push((start, eq, self.text.len()));
    }

    /// Every `(key, value)`, in file order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans.iter().map(|&(start, eq, end)| {
            (
                self.text.get(start..eq).unwrap_or_default(),
                self.text.get(eq + 1..end).unwrap_or_default(),
            )
        })
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every value of `key`, in order.
    pub fn get_all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries()
            .filter(move |(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    pub fn license(&self) -> Option<&str> {
        self.get("license")
    }

    pub fn vermagic(&self) -> Option<&str> {
        self.get("vermagic")
    }

    /// The namespaces the module imports (`MODULE_IMPORT_NS`).
    pub fn import_ns(&self) -> impl Iterator<Item = &str> {
        self.get_all("import_ns")
    }

    /// The modules it depends on (`depends=a,b`).
    pub fn depends(&self) -> Vec<&str> {
        self.get("depends")
            .map(|d| d.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    pub fn intree(&self) -> bool {
        self.get("intree") == Some("Y")
    }
}

impl Serialize for Modinfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Entries<'a>(&'a Modinfo);
        impl Serialize for Entries<'_> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(self.0.entries())
            }
        }
        let mut st = s.serialize_struct("Modinfo", 1)?;
        st.serialize_field("entries", &Entries(self))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Modinfo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            entries: Vec<(String, String)>,
        }
        let raw = Raw::deserialize(d)?;
        let mut m = Modinfo::default();
        for (k, v) in &raw.entries {
            m.push(k, v);
        }
        Ok(m)
    }
}

/// Whether the kernel treats a `MODULE_LICENSE` string as GPL-compatible
/// (`license_is_gpl_compatible` in include/linux/license.h).
pub fn license_is_gpl_compatible(license: &str) -> bool {
    matches!(
        license,
        "GPL"
            | "GPL v2"
            | "GPL and additional rights"
            | "Dual BSD/GPL"
            | "Dual MIT/GPL"
            | "Dual MPL/GPL"
    )
}

/// What the loader reads from one kernel module.
///
/// Serialized (JSON) as `{path, name, elf, imports: [{name, weak}],
/// versions: [{name, crc}] | null, modinfo, exports, signed, has_btf}`.
#[derive(Debug, Clone)]
pub struct Module {
    /// Where it was read from (a path, or `package.deb:member`).
    pub path: String,
    /// The loader's name: `.modinfo` `name=`, else the file name with `-` → `_`.
    pub name: String,
    pub elf: ElfKind,
    /// The names of `imports` and `versions` (shared with other modules
    /// read from the same parsed-module cache file).
    names: Arc<Names>,
    /// Undefined symbols of `.symtab`, in order.
    imports: Vec<ImportRef>,
    /// `__versions` plus extended modversions, in order; `None` when the
    /// module has no `__versions` section at all (built without
    /// modversions).
    versions: Option<Vec<(NameId, u64)>>,
    pub modinfo: Modinfo,
    /// Symbols the module exports (`__ksymtab*`), with their CRCs (`__kcrctab*`).
    pub exports: Vec<Export>,
    /// Whether the appended-signature marker is present.
    pub signed: bool,
    /// Whether the module carries split BTF (`.BTF`).
    pub has_btf: bool,
}

impl Module {
    /// A module without imports, versions (`None`), `.modinfo` or exports;
    /// add them with [`Module::push_import`], [`Module::push_version`] and
    /// the public fields.
    pub fn new(path: impl Into<String>, name: impl Into<String>, elf: ElfKind) -> Module {
        Module {
            path: path.into(),
            name: name.into(),
            elf,
            names: Arc::default(),
            imports: Vec::new(),
            versions: None,
            modinfo: Modinfo::default(),
            exports: Vec::new(),
            signed: false,
            has_btf: false,
        }
    }

    /// Assembles a module from its parts (the ids index `names`; the
    /// caller checked them).
    pub(crate) fn from_parts(
        head: (String, String, ElfKind),
        names: Arc<Names>,
        imports: Vec<ImportRef>,
        versions: Option<Vec<(NameId, u64)>>,
        modinfo: Modinfo,
        exports: Vec<Export>,
        flags: (bool, bool),
    ) -> Module {
        let (path, name, elf) = head;
        Module {
            path,
            name,
            elf,
            names,
            imports,
            versions,
            modinfo,
            exports,
            signed: flags.0,
            has_btf: flags.1,
        }
    }

    /// The id of `name` in this module's table, added when missing (a
    /// linear search: for building modules by hand, not for parsers).
    fn name_id(&mut self, name: &str) -> NameId {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return i as NameId;
        }
        Arc::make_mut(&mut self.names).push_new(name)
    }

    /// Adds an import at the end.
    pub fn push_import(&mut self, name: &str, weak: bool) {
        let id = self.name_id(name);
        if let Some(r) = ImportRef::new(id, weak) {
            self.imports.push(r);
        }
    }

    /// Adds a `__versions` record at the end (the module then has
    /// `__versions`).
    pub fn push_version(&mut self, name: &str, crc: u64) {
        let id = self.name_id(name);
        self.versions.get_or_insert_with(Vec::new).push((id, crc));
    }

    /// Drops the whole `__versions` (as a module built without
    /// modversions).
    pub fn clear_versions(&mut self) {
        self.versions = None;
    }

    /// Undefined symbols of `.symtab`, in order.
    pub fn imports(&self) -> impl ExactSizeIterator<Item = Import<'_>> + Clone + '_ {
        self.imports.iter().map(|&r| self.import_of(r))
    }

    /// Import `n`.
    pub fn import(&self, n: usize) -> Option<Import<'_>> {
        self.imports.get(n).map(|&r| self.import_of(r))
    }

    fn import_of(&self, r: ImportRef) -> Import<'_> {
        Import {
            name: self.names.get(r.id()),
            weak: r.weak(),
        }
    }

    /// `__versions` plus extended modversions, in order; `None` when the
    /// module has no `__versions` section at all.
    pub fn versions(&self) -> Option<impl ExactSizeIterator<Item = Version<'_>> + Clone + '_> {
        self.versions.as_ref().map(|v| {
            v.iter().map(|&(id, crc)| Version {
                name: self.names.get(id),
                crc,
            })
        })
    }

    /// The table the ids of [`Module::import_refs`] and
    /// [`Module::version_refs`] index.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The identity of the name table: modules that share one have the
    /// same.
    pub(crate) fn names_key(&self) -> usize {
        Arc::as_ptr(&self.names) as usize
    }

    pub(crate) fn import_refs(&self) -> &[ImportRef] {
        &self.imports
    }

    pub(crate) fn version_refs(&self) -> Option<&[(NameId, u64)]> {
        self.versions.as_deref()
    }

    /// Reads a module file (compressed or not).
    pub fn read(path: &Path) -> Result<Self> {
        read_file(path, None, &Limits::DEFAULT)
    }

    /// Parses module bytes (compressed or not); `path` names it in errors.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        Self::parse_with(bytes, path, &Limits::DEFAULT)
    }

    /// [`Module::parse`], decompressing to at most `limits.module` bytes.
    pub fn parse_with(bytes: &[u8], path: &str, limits: &Limits) -> Result<Self> {
        let data = decompress(bytes, path, Bounded::Module, limits.module)?;
        let bad = |msg: &str| Error::Elf {
            path: path.to_string(),
            msg: msg.to_string(),
        };
        match object::FileKind::parse(&*data) {
            Ok(object::FileKind::Elf32) => {
                parse_elf::<elf::FileHeader32<Endianness>, _>(&*data, path)
            }
            Ok(object::FileKind::Elf64) => {
                parse_elf::<elf::FileHeader64<Endianness>, _>(&*data, path)
            }
            Ok(_) => Err(bad("not an ELF file")),
            Err(e) => Err(bad(&e.to_string())),
        }
    }

    /// The `__versions` CRC recorded for `symbol` (the first record).
    pub fn version_of(&self, symbol: &str) -> Option<u64> {
        self.versions()?.find(|v| v.name == symbol).map(|v| v.crc)
    }

    /// Whether the module's license lets it use GPL-only symbols.
    pub fn gpl_compatible(&self) -> bool {
        self.modinfo
            .license()
            .is_some_and(license_is_gpl_compatible)
    }
}

impl Serialize for Module {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Seq<I>(I);
        impl<I: Iterator<Item = T> + Clone, T: Serialize> Serialize for Seq<I> {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.collect_seq(self.0.clone())
            }
        }
        let mut st = s.serialize_struct("Module", 9)?;
        st.serialize_field("path", &self.path)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("elf", &self.elf)?;
        st.serialize_field("imports", &Seq(self.imports()))?;
        st.serialize_field("versions", &self.versions().map(Seq))?;
        st.serialize_field("modinfo", &self.modinfo)?;
        st.serialize_field("exports", &self.exports)?;
        st.serialize_field("signed", &self.signed)?;
        st.serialize_field("has_btf", &self.has_btf)?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for Module {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct OwnedImport {
            name: String,
            weak: bool,
        }
        #[derive(Deserialize)]
        struct OwnedVersion {
            name: String,
            crc: u64,
        }
        #[derive(Deserialize)]
        struct Raw {
            path: String,
            name: String,
            elf: ElfKind,
            imports: Vec<OwnedImport>,
            versions: Option<Vec<OwnedVersion>>,
            modinfo: Modinfo,
            exports: Vec<Export>,
            signed: bool,
            has_btf: bool,
        }
        let raw = Raw::deserialize(d)?;
        let mut t = Interner::default();
        let mut imports = Vec::with_capacity(raw.imports.len());
        for i in &raw.imports {
            let id = t.id(Cow::Borrowed(&i.name));
            imports.push(
                ImportRef::new(id, i.weak)
                    .ok_or_else(|| serde::de::Error::custom("too many names"))?,
            );
        }
        let versions = raw.versions.as_ref().map(|v| {
            v.iter()
                .map(|v| (t.id(Cow::Borrowed(&v.name)), v.crc))
                .collect()
        });
        Ok(Module {
            names: Arc::new(t.names),
            imports,
            versions,
            path: raw.path,
            name: raw.name,
            elf: raw.elf,
            modinfo: raw.modinfo,
            exports: raw.exports,
            signed: raw.signed,
            has_btf: raw.has_btf,
        })
    }
}

/// A content-addressed cache of parsed compressed modules: a directory the
/// caller chooses (the CLI uses `~/.cache/certlab/kabi-cache`), one JSON
/// file per module keyed by the sha256 of the compressed file, so a second
/// run over unchanged `.ko.xz` files skips decompression. The modules of a
/// directory are also kept parsed, keyed by each file's identity
/// ([`crate::parsed`], `parsed/`), so a second run over an unchanged tree
/// reads no module at all. A cache entry that cannot be written is
/// skipped, never an error.
#[derive(Debug, Clone)]
pub struct ModuleCache {
    dir: std::path::PathBuf,
    /// With [`ModuleCache::one_pass`]: each input directory walked once,
    /// by whichever of the module reader and the digests needs it first
    /// (the clones share it).
    walks: Option<crate::walk::Walks>,
}

/// Bump when [`Module`]'s serialized form changes.
const CACHE_FORMAT: &str = "m1";

impl ModuleCache {
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        ModuleCache {
            dir: dir.into(),
            walks: None,
        }
    }

    /// This cache for one pass over its inputs (one command): while the
    /// returned value and its clones live, each input directory is walked
    /// once, and the module reader and the input digests share that walk.
    /// A file that changes during the pass is not seen again by the later
    /// of the two: a long-lived caller makes one per pass, not one for all.
    pub fn one_pass(&self) -> ModuleCache {
        ModuleCache {
            dir: self.dir.clone(),
            walks: Some(crate::walk::Walks::default()),
        }
    }

    /// The files under `dir`: this pass's walk of it, or a walk of its own.
    pub(crate) fn files(&self, dir: &Path) -> crate::error::Result<crate::walk::Files> {
        match &self.walks {
            Some(w) => w.files(dir),
            None => crate::walk::walk_sorted(dir).map(std::sync::Arc::new),
        }
    }

    /// The cache directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache of input digests kept beside the modules (`digests/`).
    pub fn digests(&self) -> crate::digest::DigestCache {
        crate::digest::DigestCache::new(self.dir.join("digests")).sharing(self.walks.clone())
    }

    fn entry(&self, bytes: &[u8]) -> std::path::PathBuf {
        use sha2::Digest;
        let h = hex::encode(sha2::Sha256::digest(bytes));
        self.dir
            .join(&h[..2])
            .join(format!("{CACHE_FORMAT}-{h}.json"))
    }

    /// Parses module bytes through the cache.
    pub fn parse(&self, bytes: &[u8], path: &str) -> Result<Module> {
        self.parse_with(bytes, path, &Limits::DEFAULT)
    }

    /// [`ModuleCache::parse`] within `limits` (a cached module was within
    /// them when it was parsed: a lower limit is not re-checked on a hit).
    pub fn parse_with(&self, bytes: &[u8], path: &str, limits: &Limits) -> Result<Module> {
        if crate::compress::Compression::sniff(bytes) == crate::compress::Compression::None {
            return Module::parse_with(bytes, path, limits);
        }
        let entry = self.entry(bytes);
        if let Ok(json) = std::fs::read(&entry) {
            if let Ok(mut m) = serde_json::from_slice::<Module>(&json) {
                if m.modinfo.get("name").is_none() {
                    m.name = crate::symvers::module_name_of(path);
                }
                m.path = path.to_string();
                return Ok(m);
            }
        }
        let m = Module::parse_with(bytes, path, limits)?;
        if let (Some(parent), Ok(json)) = (entry.parent(), serde_json::to_vec(&m)) {
            let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
            let _ = std::fs::create_dir_all(parent)
                .and_then(|()| std::fs::write(&tmp, json))
                .and_then(|()| std::fs::rename(&tmp, &entry));
        }
        Ok(m)
    }

    /// Reads a module file through the cache.
    pub fn read(&self, path: &Path) -> Result<Module> {
        read_file(path, Some(self), &Limits::DEFAULT)
    }
}

/// Reads a module file: an uncompressed ELF module by reading only the
/// parts the parser looks at ([`crate::sparse`]), anything else (compressed
/// modules, odd layouts, malformed files) through a map of the whole file.
pub(crate) fn read_file(
    path: &Path,
    cache: Option<&ModuleCache>,
    limits: &Limits,
) -> Result<Module> {
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| Error::io(&shown, e))?;
    let len = file.metadata().map_err(|e| Error::io(&shown, e))?.len();
    if len >= 64 {
        if let Some(m) = read_sparse(&file, len, &shown) {
            return Ok(m);
        }
    }
    let map = crate::mmap::map(&file).map_err(|e| Error::io(&shown, e))?;
    match cache {
        Some(c) => c.parse_with(&map, &shown, limits),
        None => Module::parse_with(&map, &shown, limits),
    }
}

/// Parses an uncompressed ELF module from the pieces of it that the parser
/// reads; `None` when it is not one, on any error (the caller then parses
/// the whole file and reports the error as usual), or when the pieces keep
/// missing something.
fn read_sparse(file: &std::fs::File, len: u64, path: &str) -> Option<Module> {
    let mut s = crate::sparse::Sparse::new(file, len);
    crate::sparse::prefetch(&mut s).ok()?;
    for _ in 0..4 {
        let parsed = match object::FileKind::parse(&s) {
            Ok(object::FileKind::Elf32) => parse_elf::<elf::FileHeader32<Endianness>, _>(&s, path),
            Ok(object::FileKind::Elf64) => parse_elf::<elf::FileHeader64<Endianness>, _>(&s, path),
            _ => return None,
        };
        let mut misses = s.take_misses();
        if misses.is_empty() {
            return parsed.ok();
        }
        drop(parsed);
        s.load(&mut misses).ok()?;
    }
    None
}

/// Whether a file name looks like a kernel module.
pub fn is_module_name(name: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// Undefined symbols the loader never resolves (`ignore_undef_symbol`).
fn ignored_undef(machine: u16, name: &str) -> bool {
    match machine {
        elf::EM_386 => name == "_GLOBAL_OFFSET_TABLE_",
        elf::EM_PPC64 => name == ".TOC." || name == "TOC.",
        _ => false,
    }
}

fn parse_elf<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
    data: R,
    path: &str,
) -> Result<Module> {
    let bad = |msg: String| Error::Elf {
        path: path.to_string(),
        msg,
    };
    let header = Elf::parse(data).map_err(|e| bad(e.to_string()))?;
    let endian = header.endian().map_err(|e| bad(e.to_string()))?;
    if header.e_type(endian) != elf::ET_REL {
        return Err(bad("not a relocatable object (ET_REL)".to_string()));
    }
    let kind = ElfKind {
        bits: if header.is_type_64() { 64 } else { 32 },
        big_endian: header.is_big_endian(),
        machine: header.e_machine(endian),
    };
    let sections = header
        .sections(endian, data)
        .map_err(|e| bad(format!("section table: {e}")))?;

    // One pass over the section headers: remember the sections we need,
    // and which `__ksymtab*` section each index is.
    let mut ksymtab_type: Vec<Option<ExportType>> = vec![None; sections.len()];
    let (mut versions_sec, mut ext_crcs, mut ext_names, mut modinfo_sec) = (None, None, None, None);
    let mut has_btf = false;
    for (i, s) in sections.enumerate() {
        let Ok(name) = sections.section_name(endian, s) else {
            continue;
        };
        match name {
            b"__versions" => versions_sec = Some(s),
            b"__version_ext_crcs" => ext_crcs = Some(s),
            b"__version_ext_names" => ext_names = Some(s),
            b".modinfo" => modinfo_sec = Some(s),
            b".BTF" => has_btf = true,
            n => {
                let t = match n {
                    b"__ksymtab" => ExportType::Plain,
                    b"__ksymtab_gpl" => ExportType::Gpl,
                    b"__ksymtab_gpl_future" => ExportType::GplFuture,
                    b"__ksymtab_unused" => ExportType::Unused,
                    b"__ksymtab_unused_gpl" => ExportType::UnusedGpl,
                    _ => continue, // __ksymtab_strings, __kcrctab*, the rest
                };
                if let Some(slot) = ksymtab_type.get_mut(i.0) {
                    *slot = Some(t);
                }
            }
        }
    }
    let section_data = |s: &Elf::SectionHeader, what: &str| {
        s.data(endian, data)
            .map_err(|e| bad(format!("section {what}: {e}")))
    };

    let modinfo = match modinfo_sec {
        Some(s) => Modinfo::parse(section_data(s, ".modinfo")?),
        None => Modinfo::default(),
    };

    // The names of imports and versions, each once.
    let mut names: Interner<'d> = Interner::default();
    // __versions: struct modversion_info { unsigned long crc; char name[64 - sizeof(long)]; }
    let versions = match versions_sec {
        None => None,
        Some(s) => {
            let raw = section_data(s, "__versions")?;
            if raw.len() % 64 != 0 {
                return Err(bad(format!(
                    "__versions is {} bytes, not a multiple of 64",
                    raw.len()
                )));
            }
            let word = usize::from(kind.bits / 8);
            let mut v: Vec<(NameId, u64)> = raw
                .chunks_exact(64)
                .map(|rec| {
                    let crc = read_word(&rec[..word], kind.big_endian);
                    (names.id_bytes(cstr(&rec[word..])), crc)
                })
                .collect();
            if let (Some(c), Some(n)) = (ext_crcs, ext_names) {
                let crcs = section_data(c, "__version_ext_crcs")?;
                let ext = section_data(n, "__version_ext_names")?;
                let ext: Vec<&[u8]> = ext.split(|&b| b == 0).filter(|s| !s.is_empty()).collect();
                if crcs.len() != ext.len() * 4 {
                    return Err(bad(format!(
                        "extended modversions: {} CRCs for {} names",
                        crcs.len() / 4,
                        ext.len()
                    )));
                }
                for (&name, crc) in ext.iter().zip(crcs.chunks_exact(4)) {
                    let id = names.id_bytes(name);
                    if !v.iter().any(|&(x, _)| x == id) {
                        v.push((id, read_word(crc, kind.big_endian)));
                    }
                }
            }
            Some(v)
        }
    };
    // Extended modversions without a basic __versions section (6.13+ with
    // BASIC_MODVERSIONS off).
    let versions = match (versions, ext_crcs, ext_names) {
        (None, Some(c), Some(n)) => {
            let crcs = section_data(c, "__version_ext_crcs")?;
            let ext = section_data(n, "__version_ext_names")?;
            let ext: Vec<&[u8]> = ext.split(|&b| b == 0).filter(|s| !s.is_empty()).collect();
            if crcs.len() != ext.len() * 4 {
                return Err(bad(format!(
                    "extended modversions: {} CRCs for {} names",
                    crcs.len() / 4,
                    ext.len()
                )));
            }
            Some(
                ext.iter()
                    .zip(crcs.chunks_exact(4))
                    .map(|(&n, c)| (names.id_bytes(n), read_word(c, kind.big_endian)))
                    .collect(),
            )
        }
        (v, _, _) => v,
    };

    // Symbols: undefined ones are imports; __ksymtab_/__crc_/__kstrtabns_ describe exports.
    let symbols = sections
        .symbols(endian, data, elf::SHT_SYMTAB)
        .map_err(|e| bad(format!("symbol table: {e}")))?;
    let strings = symbols.strings();
    let mut imports = Vec::new();
    let mut ksymtab: Vec<(&[u8], ExportType)> = Vec::new();
    let mut crcs: HashMap<&[u8], u32> = HashMap::default();
    let mut nss: HashMap<&[u8], String> = HashMap::default();
    for sym in symbols.iter() {
        let Ok(name) = sym.name(endian, strings) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let shndx = sym.st_shndx(endian);
        if shndx == elf::SHN_UNDEF {
            let bind = sym.st_bind();
            if bind != elf::STB_GLOBAL && bind != elf::STB_WEAK {
                continue;
            }
            let name = String::from_utf8_lossy(name);
            if ignored_undef(kind.machine, &name) {
                continue;
            }
            let id = names.id(name);
            let import = ImportRef::new(id, bind == elf::STB_WEAK)
                .ok_or_else(|| bad("more than 2^31 symbol names".to_string()))?;
            imports.push(import);
            continue;
        }
        if let Some(export) = name.strip_prefix(b"__ksymtab_") {
            let Some(&Some(t)) = ksymtab_type.get(usize::from(shndx)) else {
                continue;
            };
            ksymtab.push((export, t));
        } else if let Some(export) = name.strip_prefix(b"__crc_") {
            let value: u64 = sym.st_value(endian).into();
            let crc = if shndx == elf::SHN_ABS {
                Some(value as u32)
            } else {
                sections
                    .section(object::SectionIndex(usize::from(shndx)))
                    .ok()
                    .and_then(|s| s.data(endian, data).ok())
                    .and_then(|d| d.get(value as usize..(value as usize).checked_add(4)?))
                    .map(|b| read_word(b, kind.big_endian) as u32)
            };
            if let Some(crc) = crc {
                crcs.insert(export, crc);
            }
        } else if let Some(export) = name.strip_prefix(b"__kstrtabns_") {
            let value: u64 = sym.st_value(endian).into();
            let ns = sections
                .section(object::SectionIndex(usize::from(shndx)))
                .ok()
                .and_then(|s| s.data(endian, data).ok())
                .and_then(|d| d.get(value as usize..))
                .map(|d| owned(cstr(d)))
                .unwrap_or_default();
            nss.insert(export, ns);
        }
    }
    let name = modinfo
        .get("name")
        .map(str::to_string)
        .unwrap_or_else(|| crate::symvers::module_name_of(path));
    let exports = ksymtab
        .into_iter()
        .map(|(sym, export_type)| Export {
            name: owned(sym),
            crc: crcs.get(sym).copied(),
            module: name.clone(),
            export_type,
            namespace: nss.get(sym).filter(|s| !s.is_empty()).cloned(),
        })
        .collect();
    Ok(Module {
        path: path.to_string(),
        name,
        elf: kind,
        names: Arc::new(names.names),
        imports,
        versions,
        modinfo,
        exports,
        signed: ends_with(data, SIGNATURE_MARKER),
        has_btf,
    })
}

/// Whether the data ends with `tail`.
fn ends_with<'d, R: ReadRef<'d>>(data: R, tail: &[u8]) -> bool {
    let n = tail.len() as u64;
    data.len()
        .ok()
        .and_then(|len| len.checked_sub(n))
        .and_then(|at| data.read_bytes_at(at, n).ok())
        == Some(tail)
}

/// `String::from_utf8_lossy(b).into_owned()`, without the lossy scan for
/// the (usual) valid names.
fn owned(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_owned(),
        Err(_) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn cstr(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// Reads a 4- or 8-byte unsigned word.
fn read_word(b: &[u8], big_endian: bool) -> u64 {
    let mut v: u64 = 0;
    if big_endian {
        for &x in b {
            v = (v << 8) | u64::from(x);
        }
    } else {
        for &x in b.iter().rev() {
            v = (v << 8) | u64::from(x);
        }
    }
    v
}

/// The `.BTF` section (split BTF over vmlinux's) of a module's bytes
/// (compressed or not), when it has one.
pub fn btf_section<'a>(bytes: &'a [u8], path: &str) -> Result<Option<std::borrow::Cow<'a, [u8]>>> {
    let data = decompress(bytes, path, Bounded::Module, Limits::DEFAULT.module)?;
    let bad = |msg: String| Error::Elf {
        path: path.to_string(),
        msg,
    };
    fn find<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Option<(usize, usize)> {
        let h = Elf::parse(data).ok()?;
        let endian = h.endian().ok()?;
        let sections = h.sections(endian, data).ok()?;
        sections.iter().find_map(|s| {
            (sections.section_name(endian, s).ok()? == b".BTF").then(|| {
                let (off, size) = s.file_range(endian)?;
                Some((off as usize, size as usize))
            })?
        })
    }
    let range = match object::FileKind::parse(&*data) {
        Ok(object::FileKind::Elf32) => find::<elf::FileHeader32<Endianness>>(&data),
        Ok(object::FileKind::Elf64) => find::<elf::FileHeader64<Endianness>>(&data),
        _ => return Err(bad("not an ELF file".to_string())),
    };
    let Some((off, size)) = range else {
        return Ok(None);
    };
    let end = off
        .checked_add(size)
        .filter(|&e| e <= data.len())
        .ok_or_else(|| bad(".BTF is outside the file".to_string()))?;
    Ok(Some(match data {
        std::borrow::Cow::Borrowed(b) => std::borrow::Cow::Borrowed(&b[off..end]),
        std::borrow::Cow::Owned(v) => std::borrow::Cow::Owned(v[off..end].to_vec()),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn modinfo_keeps_order_repeats_and_its_json_shape() {
        let raw = b"license=GPL\0\0import_ns=A\0junk\0import_ns=B\0description=a=b\0bad=\xff\0";
        let m = Modinfo::parse(raw);
        let want = [
            ("license", "GPL"),
            ("import_ns", "A"),
            ("import_ns", "B"),
            ("description", "a=b"),
            ("bad", "\u{fffd}"),
        ];
        assert_eq!(m.entries().collect::<Vec<_>>(), want);
        assert_eq!(m.len(), 5);
        assert_eq!(m.license(), Some("GPL"));
        assert_eq!(m.get("description"), Some("a=b"));
        assert_eq!(m.import_ns().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(m.get("vermagic"), None);
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"entries":[["license","GPL"],["import_ns","A"],["import_ns","B"],["description","a=b"],["bad","�"]]}"#
        );
        assert_eq!(serde_json::from_str::<Modinfo>(&json).unwrap(), m);
        assert!(Modinfo::parse(b"").is_empty());
    }
}
