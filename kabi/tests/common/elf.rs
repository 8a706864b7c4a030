//! Builds small kernel-module ELF files for the loader-semantics tests:
//! any class and endianness, with imports, `__versions`, extended
//! modversions, `.modinfo`, exports and the signature marker.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use object::write::{Object, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, SectionKind, SymbolFlags, SymbolKind, SymbolScope,
};

#[derive(Clone)]
pub struct Spec {
    pub arch: Architecture,
    pub endian: Endianness,
    pub imports: Vec<(String, bool)>,
    /// `None`: no `__versions` section at all.
    pub versions: Option<Vec<(String, u32)>>,
    /// Extended modversions records.
    pub ext: Vec<(String, u32)>,
    pub modinfo: Vec<String>,
    /// (name, gpl, crc, namespace)
    pub exports: Vec<(String, bool, u32, String)>,
    pub signed: bool,
}

impl Spec {
    /// An x86-64 module named `name` with a GPL license and this vermagic.
    pub fn new(name: &str, vermagic: &str) -> Self {
        Spec {
            arch: Architecture::X86_64,
            endian: Endianness::Little,
            imports: Vec::new(),
            versions: Some(Vec::new()),
            ext: Vec::new(),
            modinfo: vec![
                "license=GPL".into(),
                format!("name={name}"),
                format!("vermagic={vermagic}"),
            ],
            exports: Vec::new(),
            signed: false,
        }
    }

    /// Imports `sym` and records `crc` for it in `__versions`.
    pub fn import(mut self, sym: &str, crc: u32) -> Self {
        self.imports.push((sym.into(), false));
        if let Some(v) = self.versions.as_mut() {
            v.push((sym.into(), crc));
        }
        self
    }

    pub fn modinfo(mut self, kv: &str) -> Self {
        self.modinfo.retain(|e| {
            let k = kv.split('=').next().unwrap();
            k == "import_ns" || e.split('=').next() != Some(k)
        });
        self.modinfo.push(kv.into());
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut obj = Object::new(BinaryFormat::Elf, self.arch, self.endian);
        let bits64 = self
            .arch
            .address_size()
            .map(|a| a.bytes() == 8)
            .unwrap_or(true);
        let word = if bits64 { 8 } else { 4 };
        let big = self.endian == Endianness::Big;
        let put = |v: u64, n: usize| -> Vec<u8> {
            let b = v.to_le_bytes();
            let mut b = b[..n].to_vec();
            if big {
                b.reverse();
            }
            b
        };
        if let Some(versions) = &self.versions {
            let mut data = Vec::new();
            for (name, crc) in versions {
                data.extend(put(u64::from(*crc), word));
                let mut n = name.as_bytes().to_vec();
                n.resize(64 - word, 0);
                data.extend(n);
            }
            let s = obj.add_section(vec![], b"__versions".to_vec(), SectionKind::ReadOnlyData);
            obj.append_section_data(s, &data, 8);
        }
        if !self.ext.is_empty() {
            let (mut crcs, mut names) = (Vec::new(), Vec::new());
            for (name, crc) in &self.ext {
                crcs.extend(put(u64::from(*crc), 4));
                names.extend(name.as_bytes());
                names.push(0);
            }
            let s = obj.add_section(
                vec![],
                b"__version_ext_crcs".to_vec(),
                SectionKind::ReadOnlyData,
            );
            obj.append_section_data(s, &crcs, 4);
            let s = obj.add_section(
                vec![],
                b"__version_ext_names".to_vec(),
                SectionKind::ReadOnlyData,
            );
            obj.append_section_data(s, &names, 1);
        }
        let mut info = Vec::new();
        for kv in &self.modinfo {
            info.extend(kv.as_bytes());
            info.push(0);
        }
        let s = obj.add_section(vec![], b".modinfo".to_vec(), SectionKind::ReadOnlyData);
        obj.append_section_data(s, &info, 1);

        for (name, weak) in &self.imports {
            obj.add_symbol(Symbol {
                name: name.as_bytes().to_vec(),
                value: 0,
                size: 0,
                kind: SymbolKind::Text,
                scope: SymbolScope::Dynamic,
                weak: *weak,
                section: SymbolSection::Undefined,
                flags: SymbolFlags::None,
            });
        }
        if !self.exports.is_empty() {
            let plain = obj.add_section(vec![], b"__ksymtab".to_vec(), SectionKind::ReadOnlyData);
            let gpl = obj.add_section(vec![], b"__ksymtab_gpl".to_vec(), SectionKind::ReadOnlyData);
            let kcrc = obj.add_section(vec![], b"__kcrctab".to_vec(), SectionKind::ReadOnlyData);
            let strs = obj.add_section(
                vec![],
                b"__ksymtab_strings".to_vec(),
                SectionKind::ReadOnlyString,
            );
            for (name, is_gpl, crc, ns) in &self.exports {
                let sec = if *is_gpl { gpl } else { plain };
                let off = obj.append_section_data(sec, &[0u8; 12], 4);
                let coff = obj.append_section_data(kcrc, &put(u64::from(*crc), 4), 4);
                let mut nsb = ns.as_bytes().to_vec();
                nsb.push(0);
                let soff = obj.append_section_data(strs, &nsb, 1);
                for (prefix, section, value) in [
                    ("__ksymtab_", sec, off),
                    ("__crc_", kcrc, coff),
                    ("__kstrtabns_", strs, soff),
                ] {
                    obj.add_symbol(Symbol {
                        name: format!("{prefix}{name}").into_bytes(),
                        value,
                        size: 0,
                        kind: SymbolKind::Data,
                        scope: SymbolScope::Compilation,
                        weak: false,
                        section: SymbolSection::Section(section),
                        flags: SymbolFlags::None,
                    });
                }
            }
        }
        let mut out = obj.write().unwrap();
        if self.signed {
            out.extend_from_slice(b"\0\0\0\0~Module signature appended~\n");
        }
        out
    }
}
