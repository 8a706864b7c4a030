//! The kernel image as distributions ship it (`/boot/vmlinuz-*`): unwrap
//! the container (x86 bzImage, arm64 EFI zboot, or a plain compressed
//! file), decompress the payload (gzip, xz, zstd, lz4), and read from the
//! resulting `vmlinux` what Module.symvers would have said about it — the
//! exports of `__ksymtab`/`__ksymtab_gpl` with the CRCs of the parallel
//! `__kcrctab*` arrays — and its `.BTF`.
//!
//! On x86 the bzImage payload is the (symbol-stripped) ELF `vmlinux`, so
//! its section headers locate every table. A raw arm64 `Image` has no
//! section headers: its exports are not located (see [`VmlinuxError`]).

use std::borrow::Cow;
use std::io::Read;
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, SectionHeader};
use object::Endianness;

use crate::compress::{too_large, Bounded, Compression, Limits};
use crate::error::{Error, Result};
use crate::symvers::{Export, ExportType, Symvers};

/// The container a kernel image came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// An ELF `vmlinux`, as is.
    Elf,
    /// x86 bzImage: setup code, then a compressed ELF `vmlinux`.
    BzImage,
    /// arm64 / RISC-V EFI zboot: a PE stub around a compressed `Image`.
    EfiZboot,
    /// A whole-file compressed image (Debian arm64's gzip'ed `Image`).
    Compressed,
    /// A raw arm64 `Image` (no section headers).
    RawImage,
}

/// A decompressed kernel: the bytes of `vmlinux` (ELF) or of a raw `Image`.
#[derive(Debug)]
pub struct Vmlinux<'a> {
    pub kind: ImageKind,
    /// The compression of the payload, when there was one.
    pub compression: Option<&'static str>,
    pub data: Cow<'a, [u8]>,
}

/// Why an image's exports could not be rebuilt (wrapped in [`Error::Unrecognised`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmlinuxError {
    NotElf,
    NoKsymtab,
}

/// Unwraps and decompresses a kernel image (`vmlinuz`, `Image.gz`, EFI
/// zboot, bzImage, or an ELF `vmlinux` given as is), to at most
/// [`Limits::DEFAULT`]`.image` bytes.
pub fn unpack<'a>(bytes: &'a [u8], path: &str) -> Result<Vmlinux<'a>> {
    unpack_with(bytes, path, Limits::DEFAULT.image)
}

/// [`unpack`], decompressing to at most `limit` bytes ([`Error::TooLarge`]).
pub fn unpack_with<'a>(bytes: &'a [u8], path: &str, limit: u64) -> Result<Vmlinux<'a>> {
    let bad = |msg: String| Error::Unrecognised {
        path: path.to_string(),
        msg,
    };
    if bytes.starts_with(b"\x7fELF") {
        return Ok(Vmlinux {
            kind: ImageKind::Elf,
            compression: None,
            data: Cow::Borrowed(bytes),
        });
    }
    // x86 boot protocol: "HdrS" at 0x202, payload_offset/length at 0x248.
    if bytes.get(0x202..0x206) == Some(b"HdrS") {
        let setup_sects = match bytes.get(0x1f1).copied() {
            Some(0) => 4,
            Some(n) => usize::from(n),
            None => return Err(bad("truncated bzImage header".into())),
        };
        let version = u16_le(bytes, 0x206).unwrap_or(0);
        if version < 0x0208 {
            return Err(bad(format!(
                "bzImage boot protocol {}.{} has no payload fields (needs 2.08+)",
                version >> 8,
                version & 0xff
            )));
        }
        let (Some(off), Some(len)) = (u32_le(bytes, 0x248), u32_le(bytes, 0x24c)) else {
            return Err(bad("truncated bzImage header".into()));
        };
        let start = (setup_sects + 1) * 512 + off as usize;
        let payload = start
            .checked_add(len as usize)
            .and_then(|end| bytes.get(start..end))
            .ok_or_else(|| bad(format!("bzImage payload {start}+{len} is outside the file")))?;
        let (data, c) = decompress_payload(payload, path, limit)?;
        return Ok(Vmlinux {
            kind: ImageKind::BzImage,
            compression: Some(c),
            data: Cow::Owned(data),
        });
    }
    // EFI zboot: "MZ", then "zimg", payload offset and size, compression name.
    if bytes.starts_with(b"MZ") && bytes.get(4..8) == Some(b"zimg") {
        let (Some(off), Some(len)) = (u32_le(bytes, 8), u32_le(bytes, 12)) else {
            return Err(bad("truncated EFI zboot header".into()));
        };
        let payload = (off as usize)
            .checked_add(len as usize)
            .and_then(|end| bytes.get(off as usize..end))
            .ok_or_else(|| bad("EFI zboot payload is outside the file".into()))?;
        let (data, c) = decompress_payload(payload, path, limit)?;
        return Ok(Vmlinux {
            kind: ImageKind::EfiZboot,
            compression: Some(c),
            data: Cow::Owned(data),
        });
    }
    if is_arm64_image(bytes) {
        return Ok(Vmlinux {
            kind: ImageKind::RawImage,
            compression: None,
            data: Cow::Borrowed(bytes),
        });
    }
    let (data, c) = decompress_payload(bytes, path, limit).map_err(|e| match e {
        Error::TooLarge { .. } => e,
        _ => bad("not a kernel image (bzImage, EFI zboot, Image, vmlinux)".into()),
    })?;
    let inner = unpack_with(&data, path, limit)?;
    Ok(Vmlinux {
        kind: if inner.kind == ImageKind::Elf {
            ImageKind::Compressed
        } else {
            inner.kind
        },
        compression: Some(inner.compression.unwrap_or(c)),
        data: Cow::Owned(inner.data.into_owned()),
    })
}

fn is_arm64_image(b: &[u8]) -> bool {
    b.get(0x38..0x3c) == Some(b"ARM\x64") || b.get(0x38..0x3c) == Some(b"RSC\x05")
}

/// Decompresses a kernel payload by its magic, to at most `limit` bytes;
/// trailing bytes after the stream (the kernel appends the uncompressed
/// size) are ignored.
fn decompress_payload(p: &[u8], path: &str, limit: u64) -> Result<(Vec<u8>, &'static str)> {
    let err = |format: &'static str, msg: String| Error::Decompress {
        path: path.to_string(),
        format,
        msg,
    };
    let guess = (p.len() as u64).saturating_mul(4).min(limit);
    let mut out = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
    // One byte past the limit tells "at the limit" from "over it".
    let cap = limit.saturating_add(1);
    let name = match Compression::sniff(p) {
        Compression::Gzip => {
            flate2::read::GzDecoder::new(p)
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| err("gzip", e.to_string()))?;
            "gzip"
        }
        Compression::Xz => {
            xz_one_stream(p, &mut out, cap).map_err(|m| err("xz", m))?;
            "xz"
        }
        Compression::Zstd => {
            ruzstd::decoding::StreamingDecoder::new(p)
                .map_err(|e| err("zstd", e.to_string()))?
                .take(cap)
                .read_to_end(&mut out)
                .map_err(|e| err("zstd", e.to_string()))?;
            "zstd"
        }
        Compression::None if p.starts_with(&[0x02, 0x21, 0x4c, 0x18]) => {
            lz4_legacy(&p[4..], &mut out, cap).map_err(|m| err("lz4", m))?;
            "lz4"
        }
        Compression::None => {
            let what = if p.starts_with(b"BZh") {
                "bzip2"
            } else if p.starts_with(&[0x5d, 0, 0]) {
                "lzma"
            } else if p.starts_with(b"\x89LZO") {
                "lzo"
            } else {
                "unknown"
            };
            return Err(err(what, "unsupported kernel payload compression".into()));
        }
    };
    if out.len() as u64 > limit {
        return Err(too_large(path, Bounded::Image, limit));
    }
    Ok((out, name))
}

/// Decodes the first xz stream of `p`, ignoring what follows it; stops
/// once `out` holds `cap` bytes.
fn xz_one_stream(mut p: &[u8], out: &mut Vec<u8>, cap: u64) -> std::result::Result<(), String> {
    use xz2::stream::{Action, Status, Stream};
    let mut s = Stream::new_stream_decoder(u64::MAX, 0).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let room = usize::try_from(cap.saturating_sub(out.len() as u64)).unwrap_or(usize::MAX);
        if room == 0 {
            return Ok(());
        }
        let chunk = buf.len().min(room);
        let (in_before, out_before) = (s.total_in(), s.total_out());
        let status = s
            .process(p, &mut buf[..chunk], Action::Run)
            .map_err(|e| e.to_string())?;
        let used = (s.total_in() - in_before) as usize;
        let made = (s.total_out() - out_before) as usize;
        out.extend_from_slice(&buf[..made]);
        p = &p[used..];
        match status {
            Status::StreamEnd => return Ok(()),
            _ if used == 0 && made == 0 => return Err("truncated xz stream".into()),
            _ => {}
        }
    }
}

/// The kernel's lz4 "legacy" framing: blocks of `u32 size` + lz4 block,
/// each decompressing to at most 8 MiB; a block of size 0, the end of the
/// data, or the next magic number ends it. Stops once `out` holds `cap`
/// bytes.
fn lz4_legacy(mut p: &[u8], out: &mut Vec<u8>, cap: u64) -> std::result::Result<(), String> {
    const BLOCK: usize = 8 << 20;
    let mut buf = vec![0u8; BLOCK];
    while let Some(size) = u32_le(p, 0) {
        if size == 0 || size == 0x184c_2102 {
            break;
        }
        let Some(block) = p.get(4..4 + size as usize) else {
            // The appended uncompressed size looks like a short block.
            break;
        };
        let n = lz4_flex::block::decompress_into(block, &mut buf).map_err(|e| e.to_string())?;
        let room = usize::try_from(cap.saturating_sub(out.len() as u64)).unwrap_or(usize::MAX);
        out.extend_from_slice(&buf[..n.min(room)]);
        if n >= room {
            return Ok(());
        }
        p = &p[4 + size as usize..];
    }
    Ok(())
}

fn u16_le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// An ELF `vmlinux`'s allocated sections, to read memory by virtual address.
struct Image<'d> {
    big_endian: bool,
    bits: u8,
    /// (address, bytes, name), sorted by address.
    sections: Vec<(u64, &'d [u8], &'d [u8])>,
}

impl<'d> Image<'d> {
    fn parse(data: &'d [u8], path: &str) -> Result<Self> {
        match object::FileKind::parse(data) {
            Ok(object::FileKind::Elf64) => {
                Self::parse_elf::<elf::FileHeader64<Endianness>>(data, path)
            }
            Ok(object::FileKind::Elf32) => {
                Self::parse_elf::<elf::FileHeader32<Endianness>>(data, path)
            }
            _ => Err(Error::Elf {
                path: path.to_string(),
                msg: "vmlinux is not an ELF file".into(),
            }),
        }
    }

    fn parse_elf<E: FileHeader<Endian = Endianness>>(data: &'d [u8], path: &str) -> Result<Self> {
        let bad = |msg: String| Error::Elf {
            path: path.to_string(),
            msg,
        };
        let h = E::parse(data).map_err(|e| bad(e.to_string()))?;
        let endian = h.endian().map_err(|e| bad(e.to_string()))?;
        let table = h
            .sections(endian, data)
            .map_err(|e| bad(format!("section table: {e}")))?;
        let mut sections = Vec::new();
        for s in table.iter() {
            if s.sh_type(endian) == elf::SHT_NOBITS {
                continue;
            }
            let Ok(name) = table.section_name(endian, s) else {
                continue;
            };
            let Ok(bytes) = s.data(endian, data) else {
                continue;
            };
            sections.push((s.sh_addr(endian).into(), bytes, name));
        }
        sections.sort_by_key(|s| s.0);
        Ok(Image {
            big_endian: h.is_big_endian(),
            bits: if h.is_type_64() { 64 } else { 32 },
            sections,
        })
    }

    fn section(&self, name: &str) -> Option<(u64, &'d [u8])> {
        self.sections
            .iter()
            .find(|s| s.2 == name.as_bytes())
            .map(|s| (s.0, s.1))
    }

    /// The bytes from virtual address `addr` to the end of its section.
    fn at(&self, addr: u64) -> Option<&'d [u8]> {
        let i = self
            .sections
            .partition_point(|s| s.0 <= addr)
            .checked_sub(1)?;
        let (start, bytes, _) = self.sections[i];
        bytes.get(usize::try_from(addr - start).ok()?..)
    }

    fn cstr_at(&self, addr: u64) -> Option<&'d [u8]> {
        let b = self.at(addr)?;
        let end = b.iter().position(|&c| c == 0)?;
        Some(&b[..end])
    }

    fn word(&self, b: &[u8]) -> u64 {
        let mut v = 0u64;
        if self.big_endian {
            b.iter().for_each(|&x| v = (v << 8) | u64::from(x));
        } else {
            b.iter().rev().for_each(|&x| v = (v << 8) | u64::from(x));
        }
        v
    }
}

fn valid_symbol(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'$')
}

/// The exports of an ELF `vmlinux` (`__ksymtab` and `__ksymtab_gpl` with
/// the CRCs of `__kcrctab` / `__kcrctab_gpl`), in table order, as
/// Module.symvers rows of module `vmlinux`. Without `__kcrctab` (no
/// modversions) every CRC is 0, as Module.symvers writes it.
pub fn exports(vmlinux: &[u8], path: &str) -> Result<Vec<Export>> {
    let img = Image::parse(vmlinux, path)?;
    let bad = |msg: String| Error::Elf {
        path: path.to_string(),
        msg,
    };
    let mut out = Vec::new();
    let mut found = false;
    for (tab, crctab, export_type) in [
        ("__ksymtab", "__kcrctab", ExportType::Plain),
        ("__ksymtab_gpl", "__kcrctab_gpl", ExportType::Gpl),
    ] {
        let Some((addr, bytes)) = img.section(tab) else {
            continue;
        };
        found = true;
        let entries = read_ksymtab(&img, addr, bytes).ok_or_else(|| {
            bad(format!(
                "{tab}: entries fit neither the PREL32 nor the absolute layout"
            ))
        })?;
        let crcs = img.section(crctab).map(|(_, b)| b);
        if let Some(c) = crcs {
            if c.len() != entries.len() * 4 {
                return Err(bad(format!(
                    "{crctab} has {} CRCs for {} entries of {tab}",
                    c.len() / 4,
                    entries.len()
                )));
            }
        }
        for (i, (name, ns)) in entries.into_iter().enumerate() {
            let crc = crcs
                .and_then(|c| c.get(i * 4..i * 4 + 4))
                .map(|b| img.word(b) as u32)
                .unwrap_or(0);
            out.push(Export {
                name: String::from_utf8_lossy(name).into_owned(),
                crc: Some(crc),
                module: "vmlinux".to_string(),
                export_type,
                namespace: ns
                    .filter(|n| !n.is_empty())
                    .map(|n| String::from_utf8_lossy(n).into_owned()),
            });
        }
    }
    if !found {
        return Err(bad(
            "no __ksymtab section: cannot rebuild the exports".into()
        ));
    }
    Ok(out)
}

type Entry<'d> = (&'d [u8], Option<&'d [u8]>);

/// Decodes `struct kernel_symbol` entries: `{s32 value, s32 name, s32 ns}`
/// relative to each field (PREL32, 64-bit kernels with
/// HAVE_ARCH_PREL32_RELOCATIONS), else `{ulong value; char *name; char *ns}`.
fn read_ksymtab<'d>(img: &Image<'d>, addr: u64, bytes: &[u8]) -> Option<Vec<Entry<'d>>> {
    let prel = |i: usize, field: usize| -> Option<u64> {
        let at = i * 12 + field * 4;
        let off = img.word(bytes.get(at..at + 4)?) as u32 as i32;
        if off == 0 && field == 2 {
            return Some(0);
        }
        addr.checked_add(at as u64)?
            .checked_add_signed(i64::from(off))
    };
    if bytes.len() % 12 == 0 {
        let n = bytes.len() / 12;
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let Some(name) = prel(i, 1).and_then(|a| img.cstr_at(a)) else {
                break;
            };
            if !valid_symbol(name) {
                break;
            }
            let ns = match prel(i, 2) {
                Some(0) | None => None,
                Some(a) => img.cstr_at(a),
            };
            v.push((name, ns));
        }
        if v.len() == n {
            return Some(v);
        }
    }
    let w = usize::from(img.bits / 8);
    if bytes.len() % (3 * w) != 0 {
        return None;
    }
    let mut v = Vec::new();
    for e in bytes.chunks_exact(3 * w) {
        let name = img.cstr_at(img.word(&e[w..2 * w]))?;
        if !valid_symbol(name) {
            return None;
        }
        let ns_ptr = img.word(&e[2 * w..]);
        let ns = if ns_ptr == 0 {
            None
        } else {
            img.cstr_at(ns_ptr)
        };
        v.push((name, ns));
    }
    Some(v)
}

/// The `.BTF` section of an ELF `vmlinux`.
pub fn btf_section<'d>(vmlinux: &'d [u8], path: &str) -> Result<Option<&'d [u8]>> {
    let img = Image::parse(vmlinux, path)?;
    Ok(img.section(".BTF").map(|(_, b)| b))
}

/// Rebuilds the vmlinux rows of Module.symvers from a kernel image.
pub fn symvers_from_image(bytes: &[u8], path: &str) -> Result<Symvers> {
    symvers_from_image_with(bytes, path, &Limits::DEFAULT)
}

/// [`symvers_from_image`], unpacking the image within `limits.image`.
pub fn symvers_from_image_with(bytes: &[u8], path: &str, limits: &Limits) -> Result<Symvers> {
    let v = unpack_with(bytes, path, limits.image)?;
    if v.kind == ImageKind::RawImage {
        return Err(Error::Unrecognised {
            path: path.to_string(),
            msg: "a raw Image has no section headers: its __ksymtab cannot be located (give Module.symvers)".into(),
        });
    }
    Ok(Symvers::from_exports(exports(&v.data, path)?))
}

/// Whether bytes look like a kernel image container (bzImage, EFI zboot,
/// raw arm64/RISC-V `Image`) — not a compressed or ELF file, which may be
/// anything.
pub fn looks_like_image(b: &[u8]) -> bool {
    b.get(0x202..0x206) == Some(b"HdrS")
        || (b.starts_with(b"MZ") && b.get(4..8) == Some(b"zimg"))
        || is_arm64_image(b)
}

/// Whether a file name is a kernel image a package ships (`boot/vmlinuz-*`,
/// `boot/vmlinux-*`, `Image`, `Image.gz`).
pub fn is_image_name(name: &str) -> bool {
    let versioned = |stem: &str| {
        name == stem
            || name
                .strip_prefix(stem)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|r| !r.ends_with(".sig") && !r.ends_with(".signed"))
    };
    versioned("vmlinuz") || versioned("vmlinux") || name == "Image" || name == "Image.gz"
}

/// Finds the kernel image among the paths that make up a kernel: an image
/// file itself, a directory holding one (`vmlinuz`, `boot/vmlinuz-*`,
/// `vmlinux`), or a `.deb` with `boot/vmlinuz-*`. Returns where it was
/// found and its bytes.
pub fn find_image<P: AsRef<Path>>(paths: &[P]) -> Result<Option<(String, Vec<u8>)>> {
    for p in paths {
        let p = p.as_ref();
        let shown = p.display().to_string();
        let meta = std::fs::metadata(p).map_err(|e| Error::io(&shown, e))?;
        if meta.is_dir() {
            let mut stack = vec![p.to_path_buf()];
            while let Some(d) = stack.pop() {
                let rd = std::fs::read_dir(&d).map_err(|e| Error::io(d.display(), e))?;
                let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).collect();
                entries.sort_by_key(|e| e.file_name());
                for e in entries {
                    let path = e.path();
                    let ft = e
                        .file_type()
                        .map_err(|err| Error::io(path.display(), err))?;
                    let name = e.file_name().to_string_lossy().into_owned();
                    if ft.is_dir() && name != "kernel" {
                        stack.push(path);
                    } else if ft.is_file() && is_image_name(&name) {
                        let b =
                            std::fs::read(&path).map_err(|err| Error::io(path.display(), err))?;
                        return Ok(Some((path.display().to_string(), b)));
                    }
                }
            }
            continue;
        }
        let bytes = std::fs::read(p).map_err(|e| Error::io(&shown, e))?;
        if bytes.starts_with(b"!<arch>\n") {
            if let Some(found) = image_in_deb(&bytes, &shown)? {
                return Ok(Some(found));
            }
            continue;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if is_image_name(name) || looks_like_image(&bytes) || bytes.starts_with(b"\x7fELF") {
            return Ok(Some((shown, bytes)));
        }
    }
    Ok(None)
}

/// `boot/vmlinuz-*` of a `.deb`, streamed out of its `data.tar.*`.
fn image_in_deb(bytes: &[u8], shown: &str) -> Result<Option<(String, Vec<u8>)>> {
    let err = |member: &str, msg: String| Error::Archive {
        path: shown.to_string(),
        member: member.to_string(),
        msg,
    };
    let mut ar = ar::Archive::new(bytes);
    while let Some(entry) = ar.next_entry() {
        let entry = entry.map_err(|e| err("ar", e.to_string()))?;
        let id = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        if !id.starts_with("data.tar") {
            continue;
        }
        let mut buf = std::io::BufReader::with_capacity(1 << 16, entry);
        let head = std::io::BufRead::fill_buf(&mut buf).map_err(|e| err(&id, e.to_string()))?;
        let kind = Compression::sniff(head);
        let limit = Limits::DEFAULT.payload;
        let reader = crate::compress::LimitedReader::new(
            crate::compress::decoder(kind, buf, shown)?,
            Bounded::Payload,
            limit,
        );
        let mut tar = tar::Archive::new(reader);
        for e in tar.entries().map_err(|e| err(&id, e.to_string()))? {
            let mut e = e.map_err(|e| err(&id, e.to_string()))?;
            let member = e
                .path()
                .map_err(|x| err(&id, x.to_string()))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let name = member.rsplit('/').next().unwrap_or("");
            if member.starts_with("boot/")
                && is_image_name(name)
                && e.header().entry_type().is_file()
            {
                let limit = Limits::DEFAULT.image;
                if e.size() > limit {
                    return Err(err(
                        &member,
                        crate::compress::over_limit_message(Bounded::Image, limit),
                    ));
                }
                let mut data = Vec::new();
                e.read_to_end(&mut data)
                    .map_err(|x| err(&member, x.to_string()))?;
                return Ok(Some((format!("{shown}:{member}"), data)));
            }
        }
    }
    Ok(None)
}

/// vmlinux's BTF from a kernel image, an ELF `vmlinux`, or a raw BTF blob
/// (`/sys/kernel/btf/vmlinux`).
pub fn vmlinux_btf(bytes: &[u8], path: &str) -> Result<crate::btf::Btf> {
    if bytes.starts_with(&[0x9f, 0xeb]) || bytes.starts_with(&[0xeb, 0x9f]) {
        return crate::btf::Btf::parse(bytes, path);
    }
    let v = unpack(bytes, path)?;
    if v.kind == ImageKind::RawImage {
        return Err(Error::Unrecognised {
            path: path.to_string(),
            msg: "a raw Image has no section headers: its .BTF cannot be located (give /sys/kernel/btf/vmlinux)".into(),
        });
    }
    let raw = btf_section(&v.data, path)?.ok_or_else(|| Error::Unrecognised {
        path: path.to_string(),
        msg: "vmlinux has no .BTF section (built without CONFIG_DEBUG_INFO_BTF)".into(),
    })?;
    crate::btf::Btf::parse(raw, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(unpack(b"hello world", "x").is_err());
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        bz[0x206] = 0x0f;
        bz[0x207] = 0x02;
        bz[0x248..0x24c].copy_from_slice(&1000u32.to_le_bytes());
        bz[0x24c..0x250].copy_from_slice(&1000u32.to_le_bytes());
        let e = unpack(&bz, "vmlinuz").unwrap_err().to_string();
        assert!(e.contains("outside the file"), "{e}");
        let mut z = b"MZ\0\0zimg".to_vec();
        z.extend(8u32.to_le_bytes());
        z.extend(99u32.to_le_bytes());
        assert!(unpack(&z, "z").is_err());
        assert!(exports(b"\x7fELF", "v").is_err());
    }

    #[test]
    fn lz4_legacy_blocks() {
        let raw = b"abcabcabcabcabcabcabc hello hello hello".repeat(10);
        let block = lz4_flex::block::compress(&raw);
        let mut p = vec![0x02, 0x21, 0x4c, 0x18];
        p.extend((block.len() as u32).to_le_bytes());
        p.extend(&block);
        p.extend((raw.len() as u32).to_le_bytes());
        let (out, c) = decompress_payload(&p, "x", 1 << 30).unwrap();
        assert_eq!(c, "lz4");
        assert_eq!(out, raw);
    }
}
