//! Property tests: the parsers never panic, on arbitrary bytes and on real
//! inputs truncated, bit-flipped or with random lines spliced in, and every
//! error they return names the input it is about. Real inputs come from
//! scripts/fetch-kabi-data (a .ko, a .ko.xz, Module.symvers, vmlinux BTF, a
//! kernel .rpm); allowlists are generated in each format; .deb packages are
//! built here from real members.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;

use certlab_kabi::btf::Btf;
use certlab_kabi::{load_modules, rpm, vmlinuz, Allowlist, Kernel, ListFormat, Module, Symvers};
use proptest::prelude::*;

const NAME: &str = "fuzz-input";

/// An error must say which input it is about, and must not be empty.
fn clear(e: &certlab_kabi::Error, name: &str) {
    let s = e.to_string();
    assert!(s.contains(name), "error does not name {name}: {s}");
    assert!(s.len() > name.len() + 2, "error says nothing: {s}");
    assert!(e.is_bad_input(), "content error reported as I/O: {s}");
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-kabi-data)", p.display()))
}

fn ko() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| read(common::modules("6.1.0-56-amd64").join("kernel/drivers/net/mii.ko")))
}

fn ko_xz() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        read(common::modules("6.12.117+deb13-amd64").join("kernel/drivers/net/mii.ko.xz"))
    })
}

/// The first 300 lines of the real 6.1.0-56 Module.symvers.
fn symvers_lines() -> &'static [String] {
    static L: OnceLock<Vec<String>> = OnceLock::new();
    L.get_or_init(|| {
        String::from_utf8(read(common::symvers("6.1.0-56-amd64")))
            .unwrap()
            .lines()
            .take(300)
            .map(str::to_string)
            .collect()
    })
}

/// vmlinux BTF of 6.1.0-56 (parsed) and mii.ko's split BTF (raw).
fn btf() -> &'static (Btf, Vec<u8>) {
    static B: OnceLock<(Btf, Vec<u8>)> = OnceLock::new();
    B.get_or_init(|| {
        let img = read(common::data_dir().join("6.1.0-56-amd64/vmlinuz"));
        let base = vmlinuz::vmlinux_btf(&img, "vmlinuz").unwrap();
        let split = certlab_kabi::module::btf_section(ko(), "mii.ko")
            .unwrap()
            .expect("mii.ko has .BTF")
            .into_owned();
        (base, split)
    })
}

/// The kernel-devel .rpm (xz payload) from the cache.
fn rpm_bytes() -> &'static [u8] {
    static B: OnceLock<Vec<u8>> = OnceLock::new();
    B.get_or_init(|| {
        let base = common::data_dir().join("rpm");
        let dir = base.join("built");
        assert!(
            dir.join(".complete").is_file(),
            "RPM test data missing at {}: run scripts/fetch-kabi-data",
            dir.display()
        );
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains("kernel-devel-"))
            .collect();
        v.sort();
        read(v[0].clone())
    })
}

/// A small .deb: debian-binary, control.tar.gz and a data.tar.{gz,xz}
/// holding the real mii.ko and 300 real Module.symvers lines in Debian's
/// layout.
fn deb_bytes(xz: bool) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, path, data).unwrap();
    };
    add(
        "./lib/modules/6.1.0-56-amd64/kernel/drivers/net/mii.ko",
        ko(),
    );
    let mut sv = symvers_lines().join("\n");
    sv.push('\n');
    add(
        "./usr/src/linux-headers-6.1.0-56-amd64/Module.symvers",
        sv.as_bytes(),
    );
    let data = tar.into_inner().unwrap();
    let (name, data) = if xz {
        let mut enc = xz2::write::XzEncoder::new(Vec::new(), 1);
        enc.write_all(&data).unwrap();
        ("data.tar.xz", enc.finish().unwrap())
    } else {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        ("data.tar.gz", enc.finish().unwrap())
    };
    let mut ar = ar::Builder::new(Vec::new());
    for (id, body) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.gz", Vec::new()),
        (name, data),
    ] {
        let h = ar::Header::new(id.as_bytes().to_vec(), body.len() as u64);
        ar.append(&h, &body[..]).unwrap();
    }
    ar.into_inner().unwrap()
}

fn debs() -> &'static [Vec<u8>; 2] {
    static D: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    D.get_or_init(|| [deb_bytes(false), deb_bytes(true)])
}

/// A damage done to a real input.
#[derive(Debug, Clone)]
enum Damage {
    /// Keep this fraction (per mille) of the bytes.
    Truncate(u16),
    /// Flip these bits (position per million of the length, bit).
    Flip(Vec<(u32, u8)>),
    /// Overwrite a run at this position (per million) with these bytes.
    Splice(u32, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (0u16..1000).prop_map(Damage::Truncate),
        prop::collection::vec((0u32..1_000_000, 0u8..8), 1..16).prop_map(Damage::Flip),
        (0u32..1_000_000, prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, b)| Damage::Splice(at, b)),
    ]
}

fn apply(bytes: &[u8], d: &Damage) -> Vec<u8> {
    let at = |ppm: u32| (bytes.len() as u64 * u64::from(ppm) / 1_000_000) as usize;
    match d {
        Damage::Truncate(pm) => bytes[..bytes.len() * usize::from(*pm) / 1000].to_vec(),
        Damage::Flip(bits) => {
            let mut b = bytes.to_vec();
            for (p, bit) in bits {
                let i = at(*p).min(b.len().saturating_sub(1));
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << bit;
                }
            }
            b
        }
        Damage::Splice(p, run) => {
            let mut b = bytes.to_vec();
            let i = at(*p);
            for (j, x) in run.iter().enumerate() {
                if let Some(y) = b.get_mut(i + j) {
                    *y = *x;
                }
            }
            b
        }
    }
}

/// Damage concentrated where the structure is (the first 4 KiB: ELF, RPM
/// and ar headers) as well as anywhere.
fn damage_head() -> impl Strategy<Value = Damage> {
    prop_oneof![
        damage(),
        prop::collection::vec((0u32..4096, 0u8..8), 1..8)
            .prop_map(|v| Damage::Flip(v.into_iter().map(|(p, b)| (p | 0x8000_0000, b)).collect())),
    ]
}

/// [`apply`], reading a position with the top bit set as a byte offset.
fn apply_head(bytes: &[u8], d: &Damage) -> Vec<u8> {
    match d {
        Damage::Flip(bits) if bits.iter().all(|(p, _)| p & 0x8000_0000 != 0) => {
            let mut b = bytes.to_vec();
            for (p, bit) in bits {
                let i = (p & 0x7fff_ffff) as usize;
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << bit;
                }
            }
            b
        }
        d => apply(bytes, d),
    }
}

/// A Module.symvers-like line: real rows, rows with random fields, and
/// random text.
fn symvers_line() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        "0x[0-9a-f]{8}",
        "0x[0-9a-fA-FxX]{0,12}",
        "[a-z_][a-z0-9_]{0,20}",
        "EXPORT_SYMBOL(_GPL|_GPL_FUTURE|_NS|_NS_GPL)?",
        "module:[a-z_,-]{0,20}",
        "[^\n]{0,12}",
        Just(String::new()),
    ];
    prop_oneof![
        (0usize..300).prop_map(|i| symvers_lines()[i].clone()),
        prop::collection::vec(field, 0..7).prop_map(|f| f.join("\t")),
        (
            prop::collection::vec("[a-z0-9_x]{0,10}", 0..6),
            "[ \t,]{1,2}"
        )
            .prop_map(|(f, sep)| f.join(&sep)),
        "[^\n]{0,80}",
    ]
}

fn formats() -> [ListFormat; 6] {
    [
        ListFormat::Rhel,
        ListFormat::OpenEuler,
        ListFormat::Android,
        ListFormat::Symvers,
        ListFormat::Json,
        ListFormat::Toml,
    ]
}

/// A valid allowlist in each format, exported from real symvers rows.
fn allowlist_texts() -> &'static [(ListFormat, String)] {
    static T: OnceLock<Vec<(ListFormat, String)>> = OnceLock::new();
    T.get_or_init(|| {
        let text = symvers_lines()[..40].join("\n");
        let base = Allowlist::import(&text, ListFormat::Symvers, "base").unwrap();
        formats().iter().map(|f| (*f, base.export(*f))).collect()
    })
}

/// An allowlist text line: one of the valid exports' lines, or noise in
/// the shape of each format.
fn list_line() -> impl Strategy<Value = String> {
    prop_oneof![
        (0usize..6, any::<prop::sample::Index>()).prop_map(|(f, i)| {
            let t = &allowlist_texts()[f].1;
            let lines: Vec<&str> = t.lines().collect();
            if lines.is_empty() {
                String::new()
            } else {
                lines[i.index(lines.len())].to_string()
            }
        }),
        "\\[[a-z0-9_ ]{0,30}\\]?",
        "[ \t]{0,2}[a-z_][a-z0-9_]{0,30}",
        "#[^\n]{0,20}",
        "[a-z_]{1,10} ?= ?(\"[^\"\n]{0,10}\"?|[0-9]{0,5}|\\[|\\{)",
        "[\\{\\}\\[\\],:\"a-z0-9 ]{0,30}",
        "[^\n]{0,60}",
    ]
}

/// Writes `bytes` to a temporary `name` and gives its path (and the dir).
fn temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096),
                                   magic in 0usize..8) {
        // Arbitrary bytes, also behind each format's magic so that the
        // parsers get past their first check.
        let magics: [&[u8]; 8] = [
            b"", b"\x7fELF\x02\x01\x01\0", &[0xed, 0xab, 0xee, 0xdb], b"!<arch>\n",
            &[0x1f, 0x8b, 8, 0], &[0xfd, b'7', b'z', b'X', b'Z', 0], &[0x28, 0xb5, 0x2f, 0xfd],
            &[0x9f, 0xeb, 1, 0, 24, 0, 0, 0],
        ];
        let mut b = magics[magic].to_vec();
        b.extend_from_slice(&bytes);
        if let Err(e) = Module::parse(&b, NAME) { clear(&e, NAME) }
        if let Err(e) = Symvers::parse_bytes(&b, NAME) { clear(&e, NAME) }
        if let Err(e) = rpm::members(&b, NAME, &|_| true) { clear(&e, NAME) }
        if let Err(e) = Btf::parse(&b, NAME) { clear(&e, NAME) }
        if let Err(e) = vmlinuz::symvers_from_image(&b, NAME) { clear(&e, NAME) }
        if let Err(e) = certlab_kabi::compress::decompress(&b, NAME, certlab_kabi::compress::Bounded::Module, 64 << 20) { clear(&e, NAME) }
        let text = String::from_utf8_lossy(&b);
        for f in formats() {
            if let Err(e) = Allowlist::import(&text, f, NAME) { clear(&e, NAME) }
        }
    }

    #[test]
    fn damaged_ko_never_panics(d in damage_head(), xz in any::<bool>()) {
        let real = if xz { ko_xz() } else { ko() };
        let b = apply_head(real, &d);
        if let Err(e) = Module::parse(&b, NAME) { clear(&e, NAME) }
        if let Ok(Some(split)) = certlab_kabi::module::btf_section(&b, NAME) {
            let _ = Btf::parse_split(&split, &btf().0, NAME);
        }
    }

    #[test]
    fn symvers_with_random_lines_never_panics(
        lines in prop::collection::vec(symvers_line(), 0..40),
        gz in any::<bool>(),
    ) {
        let mut text = lines.join("\n");
        text.push('\n');
        let mut b = text.into_bytes();
        if gz {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&b).unwrap();
            b = enc.finish().unwrap();
        }
        match Symvers::parse_bytes(&b, NAME) {
            Ok(s) => prop_assert!(s.len() <= lines.len()),
            Err(e) => {
                clear(&e, NAME);
                prop_assert!(e.to_string().contains("line"), "{}", e);
            }
        }
        if let Err(e) = Allowlist::import(&String::from_utf8_lossy(&b), ListFormat::Symvers, NAME) {
            clear(&e, NAME)
        }
    }

    #[test]
    fn allowlists_of_each_format_never_panic(
        f in 0usize..6,
        lines in prop::collection::vec(list_line(), 0..30),
        keep in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        // A real export with random lines spliced in after a random point,
        // then cut at a random character.
        let (_, text) = &allowlist_texts()[f];
        let real: Vec<&str> = text.lines().collect();
        let k = keep.index(real.len() + 1);
        let mut t = real[..k].join("\n");
        for l in &lines {
            t.push('\n');
            t.push_str(l);
        }
        for l in &real[k..] {
            t.push('\n');
            t.push_str(l);
        }
        let chars: Vec<char> = t.chars().collect();
        let t: String = chars[..cut.index(chars.len() + 1)].iter().collect();
        for g in formats() {
            if let Err(e) = Allowlist::import(&t, g, NAME) { clear(&e, NAME) }
        }
    }

    #[test]
    fn damaged_split_btf_never_panics(d in damage_head()) {
        let (base, split) = btf();
        let b = apply_head(split, &d);
        if let Err(e) = Btf::parse_split(&b, base, NAME) { clear(&e, NAME) }
        if let Err(e) = Btf::parse(&b, NAME) { clear(&e, NAME) }
    }

    #[test]
    fn damaged_rpm_never_panics(d in damage_head()) {
        let b = apply_head(rpm_bytes(), &d);
        if let Err(e) = rpm::members(&b, NAME, &rpm::is_kernel_member) { clear(&e, NAME) }
        if let Ok(mut r) = rpm::tar_stream(&b, NAME) {
            let mut sink = Vec::new();
            let _ = r.read_to_end(&mut sink);
        };
    }
}

proptest! {
    // Each case writes a file and reads it as a kernel: fewer cases.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn damaged_packages_never_panic(d in damage_head(), which in 0usize..3) {
        let (name, real): (&str, &[u8]) = match which {
            0 => ("k.deb", &debs()[0]),
            1 => ("k.deb", &debs()[1]),
            _ => ("k.rpm", rpm_bytes()),
        };
        let (_dir, p) = temp(name, &apply_head(real, &d));
        if let Err(e) = Kernel::load(&[&p]) { clear(&e, name) }
        if let Err(e) = load_modules(&p) { clear(&e, name) }
    }
}

#[test]
fn the_undamaged_inputs_parse() {
    Module::parse(ko(), "mii.ko").unwrap();
    Module::parse(ko_xz(), "mii.ko.xz").unwrap();
    let (base, split) = btf();
    Btf::parse_split(split, base, "mii.ko").unwrap();
    assert_eq!(
        rpm::members(rpm_bytes(), "devel.rpm", &rpm::is_kernel_member)
            .unwrap()
            .len(),
        1
    );
    for d in debs() {
        let (_dir, p) = temp("k.deb", d);
        let k = Kernel::load(&[&p]).unwrap();
        assert_eq!(k.modules.len(), 1);
        assert_eq!(k.symvers.len(), 300);
        assert_eq!(k.release.as_deref(), Some("6.1.0-56-amd64"));
    }
    for (f, text) in allowlist_texts() {
        Allowlist::import(text, *f, "x").unwrap();
    }
}
