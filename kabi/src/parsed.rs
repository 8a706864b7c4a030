//! Parsed modules of a directory, kept between runs: one file per input
//! directory in the module cache (`parsed/`), holding every module's
//! [`Module`] in a compact binary form beside the identity of the file it
//! was parsed from (size, mtime and ctime in ns, inode — the identity
//! [`crate::digest`] trusts for digests). A second run over an unchanged
//! tree stats each module and decodes its record instead of opening,
//! reading and parsing the file; a module whose identity changed is parsed
//! again (and a compressed one goes through the content-addressed cache).
//!
//! The symbol names that the modules import and version are stored once
//! per file, sorted, in one table ([`Names`]); a record refers to them by
//! index, and every module read back shares that table, so no name is
//! allocated per module and a checker resolves each distinct name once.
//!
//! The file is written whole (temporary file, then rename) after a run that
//! parsed anything; one that cannot be read, or a record that does not
//! decode, is a miss, never an error.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use crate::compress::Limits;
use crate::digest::Identity;
use crate::error::{Error, Result};
use crate::module::{ElfKind, ImportRef, Modinfo, Module, ModuleCache, NameId, Names};
use crate::symvers::{Export, ExportType};

/// First bytes of a cache file; bump the number when the layout (or what
/// the parser reads from a module) changes.
const MAGIC: &[u8; 16] = b"certlab-parsed2\n";

/// Reads every module of `paths` (files under the directory `root`)
/// through `cache`, in parallel; results in the order of `paths`. `ids`
/// are the files' identities where the caller has them (from the walk
/// that found them); the others are statted here.
pub(crate) fn read_all(
    cache: &ModuleCache,
    root: &Path,
    paths: &[PathBuf],
    ids: &[Option<Identity>],
    limits: &Limits,
) -> Vec<Result<Module>> {
    let file = cache_file(cache, root);
    // Mapped, not read: the records are decoded in place.
    let blob = std::fs::File::open(&file)
        .and_then(|f| crate::mmap::map(&f))
        .unwrap_or(crate::mmap::Bytes::Owned(Vec::new()));
    let (names, known) = index(&blob);
    let read: Vec<(Result<Module>, Option<Identity>)> = paths
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let shown = p.display().to_string();
            // The identity before the read: a file rewritten after it
            // carries another ctime next time, so it is parsed again.
            let id = match ids.get(i).copied().flatten() {
                Some(id) => id,
                None => match std::fs::symlink_metadata(p) {
                    Ok(m) => Identity::of(&m),
                    Err(e) => return (Err(Error::io(&shown, e)), None),
                },
            };
            let rel = p.strip_prefix(root).unwrap_or(p);
            let hit = known
                .get(rel.as_os_str().as_encoded_bytes())
                .filter(|(kid, _)| *kid == id)
                .and_then(|(_, rec)| decode(rec, shown.clone(), &names));
            match hit {
                Some(m) => (Ok(m), None),
                None => (crate::module::read_file(p, Some(cache), limits), Some(id)),
            }
        })
        .collect();
    if read.iter().any(|(_, parsed)| parsed.is_some()) {
        store(&file, root, paths, &read, &known);
    }
    read.into_iter().map(|(m, _)| m).collect()
}

/// The cache file of a directory, named by the sha256 of its absolute path.
fn cache_file(cache: &ModuleCache, root: &Path) -> PathBuf {
    let abs = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    let h = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
    cache.dir().join("parsed").join(format!("{}.bin", &h[..32]))
}

/// Relative path → (identity, encoded module) of a cache file's records.
type Known<'a> = FxHashMap<&'a [u8], (Identity, &'a [u8])>;

/// The name table of a cache file and its records by relative path
/// (identity, encoded module); nothing for a file of another layout or a
/// damaged table, and the records cut short at a damaged one.
fn index(blob: &[u8]) -> (Arc<Names>, Known<'_>) {
    let mut out = FxHashMap::default();
    let Some(mut r) = blob.strip_prefix(&MAGIC[..]).map(Reader) else {
        return (Arc::default(), out);
    };
    let Some(names) = read_names(&mut r) else {
        return (Arc::default(), out);
    };
    while !r.0.is_empty() {
        let entry = (|| {
            let rel = r.bytes()?;
            let id = Identity {
                size: r.u64()?,
                mtime_ns: r.i128()?,
                ctime_ns: r.i128()?,
                ino: r.u64()?,
            };
            Some((rel, (id, r.bytes()?)))
        })();
        match entry {
            Some((rel, v)) => {
                out.insert(rel, v);
            }
            None => break,
        }
    }
    (Arc::new(names), out)
}

/// The file's name table: its text, the number of names, the end of each.
fn read_names(r: &mut Reader<'_>) -> Option<Names> {
    let text = std::str::from_utf8(r.bytes()?).ok()?.to_owned();
    let n = u32::from_le_bytes(r.array()?) as usize;
    let ends = r.take(n.checked_mul(4)?)?;
    let ends = ends
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Names::from_sorted_parts(text, ends)
}

/// Writes the records of every module read (all of them: the ones read
/// back from the old file are encoded again over the new name table).
/// Errors are ignored (the next run parses again).
fn store(
    file: &Path,
    root: &Path,
    paths: &[PathBuf],
    read: &[(Result<Module>, Option<Identity>)],
    known: &Known<'_>,
) {
    // One sorted table of every name, and each module table's ids in it
    // (computed once per table: read-back modules share one).
    let mut tables: FxHashMap<usize, &Names> = FxHashMap::default();
    for m in read.iter().filter_map(|(m, _)| m.as_ref().ok()) {
        tables.entry(m.names_key()).or_insert(m.names());
    }
    let mut all: Vec<&str> = tables.values().flat_map(|t| t.iter()).collect();
    all.sort_unstable();
    all.dedup();
    let global: FxHashMap<&str, NameId> = all
        .iter()
        .enumerate()
        .map(|(i, &n)| (n, i as NameId))
        .collect();
    let remap: FxHashMap<usize, Vec<NameId>> = tables
        .iter()
        .map(|(&k, t)| {
            let ids = t
                .iter()
                .map(|n| global.get(n).copied().unwrap_or(NameId::MAX))
                .collect();
            (k, ids)
        })
        .collect();

    let mut out: Vec<u8> = Vec::with_capacity(paths.len() * 2048);
    out.extend_from_slice(MAGIC);
    let text: String = all.concat();
    put_bytes(&mut out, text.as_bytes());
    out.extend_from_slice(&(all.len() as u32).to_le_bytes());
    let mut end = 0u32;
    for n in &all {
        end += n.len() as u32;
        out.extend_from_slice(&end.to_le_bytes());
    }
    let mut rec = Vec::with_capacity(1 << 16);
    for (p, (m, parsed)) in paths.iter().zip(read) {
        let Ok(m) = m else { continue };
        let rel = p
            .strip_prefix(root)
            .unwrap_or(p)
            .as_os_str()
            .as_encoded_bytes();
        let id = match parsed {
            Some(id) => *id,
            None => match known.get(rel) {
                Some(&(id, _)) => id,
                None => continue,
            },
        };
        let Some(ids) = remap.get(&m.names_key()) else {
            continue;
        };
        rec.clear();
        encode(m, ids, &mut rec);
        put_bytes(&mut out, rel);
        out.extend_from_slice(&id.size.to_le_bytes());
        out.extend_from_slice(&id.mtime_ns.to_le_bytes());
        out.extend_from_slice(&id.ctime_ns.to_le_bytes());
        out.extend_from_slice(&id.ino.to_le_bytes());
        put_bytes(&mut out, &rec);
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let written = file
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&tmp, &out))
        .and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

/// Builds a record: its strings go to one text, the rest (lengths,
/// numbers, flags) to the fields; the record is the text, then the fields,
/// so a reader checks the text is UTF-8 once per module instead of once per
/// name.
#[derive(Default)]
struct Writer {
    text: String,
    fields: Vec<u8>,
}

impl Writer {
    fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.text.push_str(s);
    }

    fn u8(&mut self, v: u8) {
        self.fields.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.fields.extend_from_slice(&v.to_le_bytes());
    }

    fn count(&mut self, n: usize) {
        self.u32(n as u32);
    }
}

/// A module's record: everything but its path (the reader's); `ids` maps
/// the module's name ids to the file's.
fn encode(m: &Module, ids: &[NameId], out: &mut Vec<u8>) {
    let id = |local: NameId| ids.get(local as usize).copied().unwrap_or(NameId::MAX);
    let mut w = Writer::default();
    w.str(&m.name);
    w.u8(m.elf.bits);
    w.u8(u8::from(m.elf.big_endian));
    w.fields.extend_from_slice(&m.elf.machine.to_le_bytes());
    w.u8(u8::from(m.signed) | u8::from(m.has_btf) << 1);
    w.count(m.import_refs().len());
    for &i in m.import_refs() {
        let r = ImportRef::new(id(i.id()), i.weak()).map_or(u32::MAX, ImportRef::raw);
        w.u32(r);
    }
    match m.version_refs() {
        None => w.u8(0),
        Some(v) => {
            w.u8(1);
            w.count(v.len());
            for &(n, crc) in v {
                w.u32(id(n));
                w.fields.extend_from_slice(&crc.to_le_bytes());
            }
        }
    }
    w.count(m.modinfo.len());
    for (k, v) in m.modinfo.entries() {
        w.str(k);
        w.str(v);
    }
    w.count(m.exports.len());
    for e in &m.exports {
        w.str(&e.name);
        match e.crc {
            Some(c) => {
                w.u8(1);
                w.u32(c);
            }
            None => w.u8(0),
        }
        w.str(&e.module);
        w.u8(export_type_code(e.export_type));
        match &e.namespace {
            Some(ns) => {
                w.u8(1);
                w.str(ns);
            }
            None => w.u8(0),
        }
    }
    put_bytes(out, w.text.as_bytes());
    out.extend_from_slice(&w.fields);
}

fn export_type_code(t: ExportType) -> u8 {
    match t {
        ExportType::Plain => 0,
        ExportType::Gpl => 1,
        ExportType::GplFuture => 2,
        ExportType::Unused => 3,
        ExportType::UnusedGpl => 4,
    }
}

fn export_type_of(c: u8) -> Option<ExportType> {
    Some(match c {
        0 => ExportType::Plain,
        1 => ExportType::Gpl,
        2 => ExportType::GplFuture,
        3 => ExportType::Unused,
        4 => ExportType::UnusedGpl,
        _ => return None,
    })
}

/// The module of a record, read from `path`, over the file's `names`;
/// `None` when the record is damaged.
fn decode(rec: &[u8], path: String, names: &Arc<Names>) -> Option<Module> {
    let len = names.len();
    let id = |raw: u32| ((raw as usize) < len).then_some(raw);
    let mut r = Reader(rec);
    let text = std::str::from_utf8(r.bytes()?).ok()?;
    let mut r = Fields { r, text, at: 0 };
    let name = r.string()?;
    let elf = ElfKind {
        bits: r.r.u8()?,
        big_endian: r.r.u8()? != 0,
        machine: u16::from_le_bytes(r.r.array()?),
    };
    let flags = r.r.u8()?;
    let n = r.r.count()?;
    let mut imports = Vec::with_capacity(n);
    for _ in 0..n {
        let i = ImportRef::from_raw(u32::from_le_bytes(r.r.array()?));
        id(i.id())?;
        imports.push(i);
    }
    let versions = match r.r.u8()? {
        0 => None,
        _ => {
            let n = r.r.count()?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let name = id(u32::from_le_bytes(r.r.array()?))?;
                v.push((name, r.r.u64()?));
            }
            Some(v)
        }
    };
    let n = r.r.count()?;
    // The entries' text is what is left of the record's (less the exports'
    // names): one allocation, not one per doubling.
    let mut modinfo = Modinfo::with_capacity(n, r.text.len().saturating_sub(r.at) + n);
    for _ in 0..n {
        let k = r.str()?;
        modinfo.push(k, r.str()?);
    }
    let n = r.r.count()?;
    let mut exports = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string()?;
        let crc = match r.r.u8()? {
            0 => None,
            _ => Some(u32::from_le_bytes(r.r.array()?)),
        };
        let module = r.string()?;
        let export_type = export_type_of(r.r.u8()?)?;
        let namespace = match r.r.u8()? {
            0 => None,
            _ => Some(r.string()?),
        };
        exports.push(Export {
            name,
            crc,
            module,
            export_type,
            namespace,
        });
    }
    if !r.r.0.is_empty() || r.at != r.text.len() {
        return None;
    }
    Some(Module::from_parts(
        (path, name, elf),
        Arc::clone(names),
        imports,
        versions,
        modinfo,
        exports,
        (flags & 1 != 0, flags & 2 != 0),
    ))
}

/// Reads bytes front to back; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.array()?))
    }

    fn i128(&mut self) -> Option<i128> {
        Some(i128::from_le_bytes(self.array()?))
    }

    /// A count of items that each take at least one byte: never more than
    /// the bytes left (no huge allocation from a damaged record).
    fn count(&mut self) -> Option<usize> {
        let n = u32::from_le_bytes(self.array()?) as usize;
        (n <= self.0.len()).then_some(n)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.array()?) as usize;
        self.take(n)
    }
}

/// A record's fields over its text: a string is its length in the fields
/// and its bytes next in the text.
struct Fields<'a> {
    r: Reader<'a>,
    text: &'a str,
    at: usize,
}

impl<'a> Fields<'a> {
    fn str(&mut self) -> Option<&'a str> {
        let n = u32::from_le_bytes(self.r.array()?) as usize;
        let end = self.at.checked_add(n)?;
        // `get` refuses a range that splits a character.
        let s = self.text.get(self.at..end)?;
        self.at = end;
        Some(s)
    }

    fn string(&mut self) -> Option<String> {
        self.str().map(str::to_owned)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn sample() -> Module {
        let mut m = Module::new(
            "/x/drivers/foo.ko",
            "foo",
            ElfKind {
                bits: 64,
                big_endian: true,
                machine: 22,
            },
        );
        m.push_import("printk", false);
        m.push_import("maybe", true);
        m.push_version("printk", 0xdead_beef_0000_0001);
        m.push_version("zz_only_versioned", 7);
        m.modinfo = Modinfo::parse(
            "license=GPL\0import_ns=A\0\0import_ns=B\0description=Gerät für \u{1F50C}\0".as_bytes(),
        );
        m.exports = vec![
            Export {
                name: "foo_op".to_string(),
                crc: Some(7),
                module: "foo".to_string(),
                export_type: ExportType::GplFuture,
                namespace: Some("NS".to_string()),
            },
            Export {
                name: "foo_other".to_string(),
                crc: None,
                module: "foo".to_string(),
                export_type: ExportType::Plain,
                namespace: None,
            },
        ];
        m.has_btf = true;
        m
    }

    fn json(m: &Module) -> String {
        serde_json::to_string(m).unwrap()
    }

    /// The module's own names as the file's table (sorted), and its ids in it.
    fn table(m: &Module) -> (Arc<Names>, Vec<NameId>) {
        let mut all: Vec<&str> = m.names().iter().collect();
        all.sort_unstable();
        let mut ends = Vec::new();
        let mut end = 0u32;
        for n in &all {
            end += n.len() as u32;
            ends.push(end);
        }
        let names = Names::from_sorted_parts(all.concat(), ends).unwrap();
        let ids = m
            .names()
            .iter()
            .map(|n| all.iter().position(|a| *a == n).unwrap() as NameId)
            .collect();
        (Arc::new(names), ids)
    }

    #[test]
    fn records_round_trip_and_damage_is_a_miss() {
        let m = sample();
        let (names, ids) = table(&m);
        let mut rec = Vec::new();
        encode(&m, &ids, &mut rec);
        let back = decode(&rec, m.path.clone(), &names).unwrap();
        assert_eq!(json(&back), json(&m));
        assert_eq!(back.version_of("printk"), Some(0xdead_beef_0000_0001));
        let mut none = sample();
        none.clear_versions();
        none.signed = true;
        rec.clear();
        encode(&none, &ids, &mut rec);
        assert_eq!(
            json(&decode(&rec, none.path.clone(), &names).unwrap()),
            json(&none)
        );
        // Every truncation, and a trailing byte, fail to decode.
        for n in 0..rec.len() {
            assert!(
                decode(&rec[..n], String::new(), &names).is_none(),
                "cut at {n}"
            );
        }
        rec.push(0);
        assert!(decode(&rec, String::new(), &names).is_none());
        // A name id outside the table is refused.
        rec.clear();
        encode(&m, &ids, &mut rec);
        let (small, _) = table(&Module::new("", "", m.elf));
        assert!(decode(&rec, String::new(), &small).is_none());
        // A count larger than what is left is refused before allocating.
        let mut huge = Vec::new();
        put_bytes(&mut huge, b"x");
        huge.extend_from_slice(&1u32.to_le_bytes());
        huge.extend_from_slice(&[64, 0, 0x3e, 0, 0]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge, String::new(), &names).is_none());
        // A name that would split a character is refused.
        let mut split = Vec::new();
        put_bytes(&mut split, "é".as_bytes());
        split.extend_from_slice(&1u32.to_le_bytes());
        assert!(decode(&split, String::new(), &names).is_none());
    }

    fn names_blob(names: &[&str]) -> Vec<u8> {
        let mut blob = MAGIC.to_vec();
        put_bytes(&mut blob, names.concat().as_bytes());
        blob.extend_from_slice(&(names.len() as u32).to_le_bytes());
        let mut end = 0u32;
        for n in names {
            end += n.len() as u32;
            blob.extend_from_slice(&end.to_le_bytes());
        }
        blob
    }

    #[test]
    fn an_index_of_another_layout_or_damaged_is_empty_or_cut() {
        assert!(index(b"certlab-parsed1\nxxxx").1.is_empty());
        assert!(index(b"").1.is_empty());
        let mut blob = names_blob(&["a_op", "b_op"]);
        put_bytes(&mut blob, b"a.ko");
        blob.extend([1; 8 + 16 + 16 + 8]);
        put_bytes(&mut blob, b"rec");
        let (names, whole) = index(&blob);
        assert_eq!(names.iter().collect::<Vec<_>>(), ["a_op", "b_op"]);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[&b"a.ko"[..]].1, b"rec");
        assert!(index(&blob[..blob.len() - 1]).1.is_empty());
        // A table out of order or with a name twice is damaged: nothing.
        for bad in [&["b_op", "a_op"][..], &["a_op", "a_op"]] {
            let mut blob = names_blob(bad);
            put_bytes(&mut blob, b"a.ko");
            blob.extend([1; 8 + 16 + 16 + 8]);
            put_bytes(&mut blob, b"rec");
            assert!(index(&blob).1.is_empty(), "{bad:?}");
        }
    }
}
