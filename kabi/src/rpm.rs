//! `.rpm` packages read directly, never installed: the 96-byte lead, the
//! signature header (padded to 8 bytes), the main header (payload format
//! and compressor), then the payload — a gzip, xz or zstd compressed cpio
//! archive in the "newc" layout (`070701`/`070702`).
//!
//! [`members`] gives the files a filter selects; [`tar_stream`] gives the
//! kernel's files ([`is_kernel_member`]) as a tar stream, so that
//! [`crate::kernel`] reads an `.rpm` exactly as it reads a `.deb`'s
//! `data.tar`. Stripped cpio (`07070X`, written by rpm for packages with
//! files over 4 GiB) and bzip2/lzma payloads are refused with a clear error.

use std::collections::HashMap;
use std::io::{self, BufReader, Read};

use crate::compress::{decoder, over_limit_message, Bounded, Compression, LimitedReader, Limits};
use crate::error::{Error, Result};

/// The lead: 96 bytes, of which only the magic still matters.
pub const LEAD_LEN: usize = 96;
const LEAD_MAGIC: [u8; 4] = [0xed, 0xab, 0xee, 0xdb];
const HEADER_MAGIC: [u8; 4] = [0x8e, 0xad, 0xe8, 0x01];

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_ARCH: u32 = 1022;
const TAG_PAYLOADFORMAT: u32 = 1124;
const TAG_PAYLOADCOMPRESSOR: u32 = 1125;

const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// More index entries than any real header has (kernel-devel: ~60).
const MAX_INDEX: u64 = 1 << 16;
/// Longer member names than any real package has.
const MAX_NAME: usize = 1 << 16;

/// Whether `bytes` start like an RPM package (lead magic).
pub fn is_rpm(bytes: &[u8]) -> bool {
    bytes.starts_with(&LEAD_MAGIC)
}

/// An RPM package's identity and where its payload lies.
#[derive(Debug, Clone)]
pub struct Package<'a> {
    pub name: Option<String>,
    pub version: Option<String>,
    pub release: Option<String>,
    pub arch: Option<String>,
    /// `PAYLOADCOMPRESSOR`: `gzip` (the default when absent), `xz`, `zstd`, …
    pub compressor: String,
    /// The compressed payload.
    pub payload: &'a [u8],
}

/// One header (signature or main): its index and data store.
struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

impl<'a> Header<'a> {
    /// Reads the header at `at`; returns it and the offset just past it.
    fn parse(bytes: &'a [u8], at: usize, path: &str, what: &str) -> Result<(Self, usize)> {
        let err = |msg: String| archive_err(path, what, msg);
        let head = bytes
            .get(at..at.saturating_add(16))
            .ok_or_else(|| err(format!("truncated at offset {at}")))?;
        if head[..4] != HEADER_MAGIC {
            return Err(err(format!("bad header magic at offset {at}")));
        }
        let nindex = u64::from(be32(&head[8..12]));
        let hsize = u64::from(be32(&head[12..16]));
        if nindex > MAX_INDEX {
            return Err(err(format!("{nindex} index entries is implausible")));
        }
        let start = at as u64 + 16;
        let data_at = start + nindex * 16;
        let end = data_at + hsize;
        if end > bytes.len() as u64 {
            return Err(err(format!(
                "header of {nindex} entries and {hsize} data bytes runs past the end of the file ({} bytes)",
                bytes.len()
            )));
        }
        // In range: `end` <= bytes.len(), which fits in usize.
        let (start, data_at, end) = (start as usize, data_at as usize, end as usize);
        Ok((
            Header {
                index: &bytes[start..data_at],
                data: &bytes[data_at..end],
            },
            end,
        ))
    }

    /// The first string of tag `tag` (STRING, STRING_ARRAY or I18NSTRING).
    fn string(&self, tag: u32) -> Option<String> {
        let e = self.index.chunks_exact(16).find(|e| be32(&e[..4]) == tag)?;
        let ty = be32(&e[4..8]);
        if ![TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING].contains(&ty) {
            return None;
        }
        let off = usize::try_from(be32(&e[8..12])).ok()?;
        let rest = self.data.get(off..)?;
        let s = &rest[..rest.iter().position(|&b| b == 0)?];
        Some(String::from_utf8_lossy(s).into_owned())
    }
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn archive_err(path: &str, member: &str, msg: String) -> Error {
    Error::Archive {
        path: path.to_string(),
        member: member.to_string(),
        msg,
    }
}

/// Reads an RPM package's headers; `path` names it in errors.
pub fn parse<'a>(bytes: &'a [u8], path: &str) -> Result<Package<'a>> {
    if bytes.len() < LEAD_LEN || !is_rpm(bytes) {
        return Err(archive_err(
            path,
            "lead",
            "not an RPM package (no lead magic ed ab ee db)".to_string(),
        ));
    }
    let (_, sig_end) = Header::parse(bytes, LEAD_LEN, path, "signature header")?;
    // The main header starts at the next multiple of 8.
    let main_at = sig_end.div_ceil(8) * 8;
    let (main, payload_at) = Header::parse(bytes, main_at, path, "header")?;
    if let Some(f) = main.string(TAG_PAYLOADFORMAT) {
        if f != "cpio" {
            return Err(archive_err(
                path,
                "header",
                format!("payload format {f:?} is not supported (only cpio)"),
            ));
        }
    }
    Ok(Package {
        name: main.string(TAG_NAME),
        version: main.string(TAG_VERSION),
        release: main.string(TAG_RELEASE),
        arch: main.string(TAG_ARCH),
        compressor: main
            .string(TAG_PAYLOADCOMPRESSOR)
            .unwrap_or_else(|| "gzip".to_string()),
        payload: bytes.get(payload_at..).unwrap_or_default(),
    })
}

impl<'a> Package<'a> {
    /// The payload as a cpio reader, failing past `limit` decompressed bytes.
    fn cpio(&self, path: &str, limit: u64) -> Result<Cpio<Box<dyn Read + Send + 'a>>> {
        let kind = Compression::sniff(self.payload);
        let raw = kind == Compression::None && self.payload.starts_with(b"0707");
        if kind == Compression::None && !raw {
            return Err(archive_err(
                path,
                "payload",
                format!(
                    "payload compressor {:?} is not supported (gzip, xz, zstd or none)",
                    self.compressor
                ),
            ));
        }
        let r = LimitedReader::new(decoder(kind, self.payload, path)?, Bounded::Payload, limit);
        Ok(Cpio {
            r: Box::new(BufReader::with_capacity(1 << 16, r)),
            left: 0,
            pad: 0,
        })
    }
}

/// One cpio member's header.
#[derive(Debug, Clone)]
struct Entry {
    /// Without a leading `./` or `/`.
    path: String,
    mode: u32,
    ino: u32,
    nlink: u32,
    size: u64,
}

impl Entry {
    fn is_file(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }
}

/// A newc cpio reader; reading it reads the current member's data.
struct Cpio<R> {
    r: R,
    /// Unread data bytes of the current member.
    left: u64,
    /// Padding after them.
    pad: u64,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<R: Read> Cpio<R> {
    /// The next member, skipping what is left of the current one; `None`
    /// at the trailer.
    fn next_entry(&mut self) -> io::Result<Option<Entry>> {
        let skip = self.left + self.pad;
        let skipped = io::copy(&mut (&mut self.r).take(skip), &mut io::sink())?;
        if skipped != skip {
            return Err(eof("member data"));
        }
        self.left = 0;
        self.pad = 0;
        let mut h = [0u8; 110];
        self.r
            .read_exact(&mut h)
            .map_err(|e| reword(e, "cpio header"))?;
        match &h[..6] {
            b"070701" | b"070702" => {}
            b"07070X" => {
                return Err(bad(
                    "stripped cpio (07070X, rpm's large-file payload) is not supported",
                ))
            }
            m => {
                return Err(bad(format!(
                    "bad cpio magic {:?} (expected newc 070701)",
                    String::from_utf8_lossy(m)
                )))
            }
        }
        let field = |i: usize| -> io::Result<u32> {
            let f = &h[6 + 8 * i..14 + 8 * i];
            std::str::from_utf8(f)
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "bad cpio header field {:?}",
                        String::from_utf8_lossy(f)
                    ))
                })
        };
        let (ino, mode, nlink, size, namesize) =
            (field(0)?, field(1)?, field(4)?, field(6)?, field(11)?);
        let namesize = namesize as usize;
        if namesize == 0 || namesize > MAX_NAME {
            return Err(bad(format!("bad cpio name size {namesize}")));
        }
        // Name, NUL-terminated, padded so that header + name is a multiple of 4.
        let mut name = vec![0u8; (110 + namesize).div_ceil(4) * 4 - 110];
        self.r
            .read_exact(&mut name)
            .map_err(|e| reword(e, "cpio member name"))?;
        name.truncate(namesize - 1);
        let name = String::from_utf8(name).map_err(|_| bad("cpio member name is not UTF-8"))?;
        if name == "TRAILER!!!" {
            return Ok(None);
        }
        let size = u64::from(size);
        self.left = size;
        self.pad = (4 - size % 4) % 4;
        let path = name
            .trim_start_matches("./")
            .trim_start_matches('/')
            .to_string();
        Ok(Some(Entry {
            path,
            mode,
            ino,
            nlink,
            size,
        }))
    }
}

impl<R: Read> Read for Cpio<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(eof("member data"));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

fn eof(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("payload ends inside {what}"),
    )
}

fn reword(e: io::Error, what: &str) -> io::Error {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        eof(what)
    } else {
        e
    }
}

/// The regular files of the package whose path (without leading `./`)
/// `filter` accepts, with their contents, in archive order. Hard links
/// (whose data cpio stores once, with the last link) each get the data.
pub fn members(
    bytes: &[u8],
    path: &str,
    filter: &dyn Fn(&str) -> bool,
) -> Result<Vec<(String, Vec<u8>)>> {
    members_with(bytes, path, filter, &Limits::DEFAULT)
}

/// [`members`] within `limits`: the payload streams within
/// `limits.payload`, each member read is at most `limits.member` bytes.
pub fn members_with(
    bytes: &[u8],
    path: &str,
    filter: &dyn Fn(&str) -> bool,
    limits: &Limits,
) -> Result<Vec<(String, Vec<u8>)>> {
    let pkg = parse(bytes, path)?;
    let mut cpio = pkg.cpio(path, limits.payload)?;
    let mut out = Vec::new();
    let mut pending: HashMap<u32, Vec<String>> = HashMap::new();
    loop {
        let e = match cpio.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => return Err(archive_err(path, "payload", e.to_string())),
        };
        if !e.is_file() || !filter(&e.path) {
            continue;
        }
        if e.nlink > 1 && e.size == 0 {
            pending.entry(e.ino).or_default().push(e.path);
            continue;
        }
        if e.size > limits.member {
            return Err(archive_err(
                path,
                &e.path,
                over_limit_message(Bounded::Member, limits.member),
            ));
        }
        // Grown as read: a corrupt size must not allocate up front.
        let mut data = Vec::with_capacity(usize::try_from(e.size.min(1 << 24)).unwrap_or(0));
        cpio.read_to_end(&mut data)
            .map_err(|err| archive_err(path, &e.path, err.to_string()))?;
        if e.nlink > 1 {
            for p in pending.remove(&e.ino).unwrap_or_default() {
                out.push((p, data.clone()));
            }
        }
        out.push((e.path, data));
    }
    Ok(out)
}

/// Whether a package path belongs to a kernel as [`crate::kernel`] reads
/// it: anything under `lib/modules/VER/` (or `usr/lib/modules/VER/`),
/// `usr/src/kernels/VER/Module.symvers` (kernel-devel), and
/// `boot/symvers-*.gz`, `boot/vmlinuz-*`.
pub fn is_kernel_member(path: &str) -> bool {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    let lib = p.strip_prefix("usr/").unwrap_or(p);
    if let Some(rest) = lib.strip_prefix("lib/modules/") {
        return rest
            .split_once('/')
            .is_some_and(|(v, f)| !v.is_empty() && !f.is_empty());
    }
    if let Some(rest) = p.strip_prefix("usr/src/kernels/") {
        return rest
            .split_once('/')
            .is_some_and(|(v, f)| !v.is_empty() && f == "Module.symvers");
    }
    if let Some(name) = p.strip_prefix("boot/") {
        return !name.contains('/')
            && ((name.starts_with("symvers-") && name.ends_with(".gz"))
                || crate::vmlinuz::is_image_name(name));
    }
    false
}

/// The package's kernel files ([`is_kernel_member`]) as an uncompressed
/// tar stream (GNU long names), decoded lazily as it is read: what
/// [`crate::kernel`] reads from a `.deb`'s `data.tar`. Errors in the
/// payload surface as I/O errors of the stream that name the member.
/// Hard-link names without data are left out.
pub fn tar_stream<'a>(bytes: &'a [u8], path: &str) -> Result<Box<dyn Read + Send + 'a>> {
    tar_stream_with(bytes, path, &Limits::DEFAULT)
}

/// [`tar_stream`], the payload decompressed within `limits.payload`
/// (the kernel reader bounds each member it keeps).
pub fn tar_stream_with<'a>(
    bytes: &'a [u8],
    path: &str,
    limits: &Limits,
) -> Result<Box<dyn Read + Send + 'a>> {
    let pkg = parse(bytes, path)?;
    Ok(Box::new(TarStream {
        cpio: pkg.cpio(path, limits.payload)?,
        out: Vec::new(),
        pos: 0,
        in_data: None,
        done: false,
    }))
}

struct TarStream<'a> {
    cpio: Cpio<Box<dyn Read + Send + 'a>>,
    /// Bytes to hand out before anything else (headers, padding).
    out: Vec<u8>,
    pos: usize,
    /// While copying a member's data: its path and size.
    in_data: Option<(String, u64)>,
    done: bool,
}

impl TarStream<'_> {
    /// Queues the tar header(s) of a regular file.
    fn queue_header(&mut self, path: &str, size: u64, mode: u32) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        let name = path.as_bytes();
        if name.len() > 100 {
            let mut long = tar::Header::new_gnu();
            long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            long.set_entry_type(tar::EntryType::GNULongName);
            long.set_size(name.len() as u64 + 1);
            long.set_mode(0o644);
            long.set_cksum();
            self.out.extend_from_slice(long.as_bytes());
            self.out.extend_from_slice(name);
            self.out.push(0);
            pad512(&mut self.out, name.len() as u64 + 1);
        }
        let mut h = tar::Header::new_gnu();
        let n = name.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(size);
        h.set_mode(mode & 0o7777);
        h.set_mtime(0);
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        Ok(())
    }
}

fn pad512(v: &mut Vec<u8>, len: u64) {
    let pad = (512 - len % 512) % 512;
    v.resize(v.len() + pad as usize, 0);
}

impl Read for TarStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.pos < self.out.len() {
                let n = buf.len().min(self.out.len() - self.pos);
                buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let Some((member, size)) = &self.in_data {
                let n = self
                    .cpio
                    .read(buf)
                    .map_err(|e| io::Error::new(e.kind(), format!("{member}: {e}")))?;
                if n > 0 {
                    return Ok(n);
                }
                self.out.clear();
                self.pos = 0;
                pad512(&mut self.out, *size);
                self.in_data = None;
                continue;
            }
            if self.done {
                return Ok(0);
            }
            match self.cpio.next_entry()? {
                None => {
                    self.out = vec![0u8; 1024];
                    self.pos = 0;
                    self.done = true;
                }
                Some(e) => {
                    if !e.is_file() || !is_kernel_member(&e.path) || (e.nlink > 1 && e.size == 0) {
                        continue;
                    }
                    self.queue_header(&e.path, e.size, e.mode)?;
                    self.in_data = Some((e.path, e.size));
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn kernel_members() {
        for p in [
            "./lib/modules/5.14.0-427.el9.x86_64/kernel/fs/xfs/xfs.ko.xz",
            "./usr/lib/modules/6.8.5-301.fc40.x86_64/modules.dep",
            "./usr/src/kernels/5.14.0-427.el9.x86_64/Module.symvers",
            "./boot/symvers-5.14.0-427.el9.x86_64.gz",
            "./boot/vmlinuz-5.14.0-427.el9.x86_64",
        ] {
            assert!(is_kernel_member(p), "{p}");
        }
        for p in [
            "./lib/modules/",
            "./usr/src/kernels/5.14.0/include/linux/fs.h",
            "./usr/share/doc/x",
            "./boot/config-5.14.0",
        ] {
            assert!(!is_kernel_member(p), "{p}");
        }
    }

    #[test]
    fn not_rpm() {
        let e = parse(b"!<arch>\n", "x.rpm").unwrap_err().to_string();
        assert!(e.contains("x.rpm") && e.contains("not an RPM"), "{e}");
        let mut lead = vec![0u8; 96];
        lead[..4].copy_from_slice(&LEAD_MAGIC);
        let e = parse(&lead, "x.rpm").unwrap_err().to_string();
        assert!(e.contains("signature header"), "{e}");
    }
}
