//! Every decompression of an input is bounded (`Limits`): compression
//! bombs made here — a few KiB that expand past the limit — end in a clear
//! error naming the file, what it is and the limit, never in exhausted
//! memory. The limits are lowered to 1 MiB so that no test writes GiBs;
//! `tests/kabi_cli.rs` checks the default module limit through the binary.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::io::Write;
use std::path::Path;

use certlab_kabi::compress::Limits;
use certlab_kabi::{load_modules_with, rpm, vmlinuz, Error, Kernel, Module, ModuleCache, Symvers};

const LIMIT: u64 = 1 << 20;

/// A compressor of bytes.
type Compressor = fn(&[u8]) -> Vec<u8>;

fn small() -> Limits {
    Limits {
        module: LIMIT,
        image: LIMIT,
        symvers: LIMIT,
        payload: 4 * LIMIT,
        member: LIMIT,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn xz(data: &[u8]) -> Vec<u8> {
    let mut e = xz2::write::XzEncoder::new(Vec::new(), 6);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zstd(data: &[u8]) -> Vec<u8> {
    ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
}

/// The kernel's lz4 legacy framing (magic, then `u32 size` + block).
fn lz4_legacy(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x02, 0x21, 0x4c, 0x18];
    for chunk in data.chunks(8 << 20) {
        let block = lz4_flex::block::compress(chunk);
        out.extend_from_slice(&(block.len() as u32).to_le_bytes());
        out.extend_from_slice(&block);
    }
    out
}

/// `n` zero bytes: what a bomb expands to.
fn zeros(n: u64) -> Vec<u8> {
    vec![0u8; n as usize]
}

/// Asserts a limit error: bad input (exit 3 through the CLI), naming the
/// file, what it is and the limit.
fn assert_over(e: &Error, path: &str, what: &str) {
    let s = e.to_string();
    assert!(e.is_bad_input(), "{s}");
    assert!(s.starts_with(path), "{s}");
    assert!(
        s.contains(&format!("{what} larger than the limit of 1 MiB")),
        "{s}"
    );
}

#[test]
fn module_bombs_of_each_compressor() {
    let compressors: [(&str, Compressor); 3] = [("gz", gzip), ("xz", xz), ("zst", zstd)];
    for (ext, compress) in compressors {
        let bomb = compress(&zeros(LIMIT + 1));
        assert!(bomb.len() < 64 << 10, "{ext}: {} bytes", bomb.len());
        let name = format!("bomb.ko.{ext}");
        let e = Module::parse_with(&bomb, &name, &small()).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{ext}: {e}");
        assert_over(&e, &name, "kernel module");
        // Exactly at the limit decompresses, and is then no ELF file.
        let at = compress(&zeros(LIMIT));
        let e = Module::parse_with(&at, &name, &small()).unwrap_err();
        assert!(matches!(e, Error::Elf { .. }), "{ext}: {e}");

        // From a directory, with and without the module cache.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(&name);
        std::fs::write(&file, &bomb).unwrap();
        let shown = file.display().to_string();
        let e = load_modules_with(dir.path(), None, &small()).unwrap_err();
        assert_over(&e, &shown, "kernel module");
        let cache = ModuleCache::new(dir.path().join("cache"));
        let e = load_modules_with(dir.path(), Some(&cache), &small()).unwrap_err();
        assert_over(&e, &shown, "kernel module");
        let e = cache.parse_with(&bomb, &name, &small()).unwrap_err();
        assert_over(&e, &name, "kernel module");
    }
}

#[test]
fn a_gzipped_symvers_bomb() {
    let bomb = gzip(&zeros(LIMIT + 1));
    let e = Symvers::parse_bytes_with(&bomb, "symvers-6.1.gz", &small()).unwrap_err();
    assert_over(&e, "symvers-6.1.gz", "Module.symvers");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Module.symvers");
    std::fs::write(&file, &bomb).unwrap();
    let e = Kernel::load_with(&[&file], None, &small()).unwrap_err();
    assert_over(&e, &file.display().to_string(), "Module.symvers");
    let e = Kernel::load_with(&[dir.path()], None, &small()).unwrap_err();
    assert_over(&e, &file.display().to_string(), "Module.symvers");
}

/// An x86 bzImage (boot protocol 2.15) around `payload`.
fn bzimage(payload: &[u8]) -> Vec<u8> {
    let setup_sects = 1u8;
    let mut b = vec![0u8; (usize::from(setup_sects) + 1) * 512];
    b[0x1f1] = setup_sects;
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    b[0x248..0x24c].copy_from_slice(&0u32.to_le_bytes());
    b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    // The kernel appends the uncompressed size; the reader ignores it.
    b.extend_from_slice(&(LIMIT as u32 + 1).to_le_bytes());
    b
}

#[test]
fn kernel_image_bombs_of_each_compressor() {
    let compressors: [(&str, Compressor); 4] = [
        ("gzip", gzip),
        ("xz", xz),
        ("zstd", zstd),
        ("lz4", lz4_legacy),
    ];
    for (name, compress) in compressors {
        let payload = compress(&zeros(LIMIT + 1));
        for (container, bytes) in [("bzImage", bzimage(&payload)), ("plain", payload.clone())] {
            if container == "plain" && name == "lz4" {
                continue; // a bare lz4 file is not an image format the reader guesses
            }
            let e = vmlinuz::unpack_with(&bytes, "vmlinuz-bomb", LIMIT).unwrap_err();
            assert!(
                matches!(e, Error::TooLarge { .. }),
                "{name} {container}: {e}"
            );
            assert_over(&e, "vmlinuz-bomb", "kernel image");
        }
        // At the limit: decompressed, then not an ELF vmlinux.
        let image = bzimage(&compress(&zeros(LIMIT)));
        let at = vmlinuz::unpack_with(&image, "v", LIMIT).unwrap();
        assert_eq!(at.data.len() as u64, LIMIT, "{name}");
    }
    // Through a kernel without Module.symvers: the image is unpacked to rebuild it.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("vmlinuz-6.1.0-1-amd64");
    std::fs::write(&file, bzimage(&xz(&zeros(LIMIT + 1)))).unwrap();
    let e = Kernel::load_with(&[&file], None, &small()).unwrap_err();
    assert_over(&e, &file.display().to_string(), "kernel image");
}

/// A tar header of a regular file `path` of `size` bytes.
fn tar_header(path: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

/// A .deb whose data.tar.xz is `tar`.
fn deb(tar: &[u8]) -> Vec<u8> {
    let mut ar = ar::Builder::new(Vec::new());
    for (id, body) in [
        ("debian-binary", b"2.0\n".to_vec()),
        (
            "control.tar.xz",
            xz(&tar::Builder::new(Vec::new()).into_inner().unwrap()),
        ),
        ("data.tar.xz", xz(tar)),
    ] {
        let h = ar::Header::new(id.as_bytes().to_vec(), body.len() as u64);
        ar.append(&h, &body[..]).unwrap();
    }
    ar.into_inner().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.display().to_string()
}

#[test]
fn deb_payload_and_member_bombs() {
    let dir = tempfile::tempdir().unwrap();
    // A payload that expands past its limit: one big file nobody reads.
    let mut t = tar::Builder::new(Vec::new());
    let big = zeros(4 * LIMIT + 1);
    t.append(
        &tar_header("./usr/share/doc/big", big.len() as u64),
        &big[..],
    )
    .unwrap();
    let deb_path = write(dir.path(), "payload.deb", &deb(&t.into_inner().unwrap()));
    let e = load_modules_with(Path::new(&deb_path), None, &small()).unwrap_err();
    let s = e.to_string();
    assert!(e.is_bad_input(), "{s}");
    assert!(s.starts_with(&format!("{deb_path}: ")), "{s}");
    assert!(
        s.contains("package payload larger than the limit of 4 MiB when decompressed"),
        "{s}"
    );

    // A module member larger than the module limit, refused by its header
    // before a byte of it is read; the same for Module.symvers and the image.
    for (member, what) in [
        (
            "./lib/modules/6.1.0-1-amd64/kernel/drivers/x.ko",
            "kernel module",
        ),
        (
            "./usr/src/linux-headers-6.1.0-1-amd64/Module.symvers",
            "Module.symvers",
        ),
        ("./boot/vmlinuz-6.1.0-1-amd64", "kernel image"),
    ] {
        let mut t = tar::Builder::new(Vec::new());
        let data = zeros(LIMIT + 1);
        t.append(&tar_header(member, data.len() as u64), &data[..])
            .unwrap();
        let p = write(dir.path(), "member.deb", &deb(&t.into_inner().unwrap()));
        let e = Kernel::load_with(&[&p], None, &small()).unwrap_err();
        let s = e.to_string();
        assert!(e.is_bad_input(), "{s}");
        let member = member.trim_start_matches("./");
        assert!(s.starts_with(&format!("{p}: {member}: ")), "{s}");
        assert!(
            s.contains(&format!("{what} larger than the limit of 1 MiB")),
            "{s}"
        );
    }
}

/// A newc cpio member.
fn cpio_member(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        0,
        0,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// An RPM: lead, empty signature and main headers (payload gzip'ed cpio,
/// the defaults), then `payload` compressed with `compress`.
fn rpm_bytes(files: &[(&str, Vec<u8>)], compress: Compressor) -> Vec<u8> {
    let mut cpio = Vec::new();
    for (i, (name, data)) in files.iter().enumerate() {
        cpio_member(&mut cpio, i as u32 + 1, 0o100644, name, data);
    }
    cpio_member(&mut cpio, 0, 0, "TRAILER!!!", &[]);
    let mut b = vec![0u8; 96];
    b[..4].copy_from_slice(&[0xed, 0xab, 0xee, 0xdb]);
    for _ in 0..2 {
        // magic, reserved, 0 index entries, 0 data bytes (16 bytes: 8-aligned)
        b.extend_from_slice(&[0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0]);
        b.extend_from_slice(&[0u8; 8]);
    }
    b.extend_from_slice(&compress(&cpio));
    b
}

#[test]
fn rpm_payload_and_member_bombs() {
    let module = "./lib/modules/6.1.0-1-amd64/kernel/drivers/x.ko";
    let dir = tempfile::tempdir().unwrap();
    let compressors: [(&str, Compressor); 3] = [("gzip", gzip), ("xz", xz), ("zstd", zstd)];
    for (name, compress) in compressors {
        // The payload over its limit (members each within theirs).
        let files: Vec<(&str, Vec<u8>)> = (0..5)
            .map(|_| ("./usr/share/doc/part", zeros(LIMIT)))
            .collect();
        let bytes = rpm_bytes(&files, compress);
        assert!(bytes.len() < 256 << 10, "{name}: {}", bytes.len());
        let e = rpm::members_with(&bytes, "p.rpm", &|_| true, &small()).unwrap_err();
        let s = e.to_string();
        assert!(e.is_bad_input(), "{s}");
        assert!(s.starts_with("p.rpm: "), "{s}");
        assert!(
            s.contains("package payload larger than the limit of 4 MiB"),
            "{name}: {s}"
        );
        let p = write(dir.path(), "p.rpm", &bytes);
        let e = load_modules_with(Path::new(&p), None, &small()).unwrap_err();
        assert!(
            e.to_string()
                .contains("package payload larger than the limit of 4 MiB"),
            "{name}: {e}"
        );

        // One member over the member limit; a module over the module limit.
        let bytes = rpm_bytes(&[(module, zeros(LIMIT + 1))], compress);
        let e = rpm::members_with(&bytes, "m.rpm", &|_| true, &small()).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with(&format!("m.rpm: {}: ", module.trim_start_matches("./"))),
            "{s}"
        );
        assert!(
            s.contains("package member larger than the limit of 1 MiB"),
            "{s}"
        );
        let p = write(dir.path(), "m.rpm", &bytes);
        let e = load_modules_with(Path::new(&p), None, &small()).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("kernel module larger than the limit of 1 MiB"),
            "{name}: {s}"
        );
        assert!(s.starts_with(&p), "{s}");
        // Within the default limits the same package reads (the member is no ELF file).
        let e = load_modules_with(Path::new(&p), None, &Limits::default()).unwrap_err();
        assert!(matches!(e, Error::Elf { .. }), "{name}: {e}");
    }
}

#[test]
fn the_default_limits() {
    let l = Limits::default();
    assert_eq!(l.module, 512 << 20);
    assert_eq!(l.image, 2 << 30);
    assert_eq!(l.symvers, 256 << 20);
    assert_eq!(l.payload, 16 << 30);
}
