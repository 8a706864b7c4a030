//! Transparent decompression of the formats kernels ship files in:
//! gzip, xz and zstd, recognised by their magic bytes. Every decompression
//! of an input is bounded ([`Limits`]): a compression bomb ends in
//! [`Error::TooLarge`] naming the file and the limit, never in exhausted
//! memory.

use std::borrow::Cow;
use std::io::{self, Read};

use crate::error::{Error, Result};

/// The most bytes that decompressing one input may produce.
///
/// Real inputs stay far below these (a Debian amd64 6.1 kernel: the largest
/// module ~10 MB, vmlinux ~66 MB, Module.symvers ~1.6 MB, a
/// `data.tar` ~400 MB); tests lower them to exercise the limits with small
/// bombs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// One kernel module (`.ko.gz`/`.ko.xz`/`.ko.zst`, or a package member).
    pub module: u64,
    /// One kernel image (vmlinuz payload, or the image member of a package).
    pub image: u64,
    /// One Module.symvers (gzip'ed, or a package member).
    pub symvers: u64,
    /// A package's whole payload (`.deb` `data.tar.*`, `.rpm` cpio), streamed.
    pub payload: u64,
    /// Any other single package member read into memory.
    pub member: u64,
}

const MIB: u64 = 1 << 20;

impl Limits {
    /// module 512 MiB, image 2 GiB, symvers 256 MiB, payload 16 GiB, member 2 GiB.
    pub const DEFAULT: Limits = Limits {
        module: 512 * MIB,
        image: 2048 * MIB,
        symvers: 256 * MIB,
        payload: 16384 * MIB,
        member: 2048 * MIB,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// What a bounded input is, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bounded {
    Module,
    Image,
    Symvers,
    Payload,
    Member,
}

impl Bounded {
    pub fn name(self) -> &'static str {
        match self {
            Bounded::Module => "kernel module",
            Bounded::Image => "kernel image",
            Bounded::Symvers => "Module.symvers",
            Bounded::Payload => "package payload",
            Bounded::Member => "package member",
        }
    }

    /// The limit for this kind of input.
    pub fn limit(self, limits: &Limits) -> u64 {
        match self {
            Bounded::Module => limits.module,
            Bounded::Image => limits.image,
            Bounded::Symvers => limits.symvers,
            Bounded::Payload => limits.payload,
            Bounded::Member => limits.member,
        }
    }
}

/// `limit` bytes as people read them: `512 MiB`, `4 KiB`, `1000 bytes`.
pub fn show_size(limit: u64) -> String {
    for (unit, name) in [(1u64 << 30, "GiB"), (MIB, "MiB"), (1 << 10, "KiB")] {
        if limit >= unit && limit % unit == 0 {
            return format!("{} {name}", limit / unit);
        }
    }
    format!("{limit} bytes")
}

/// The error of an input that decompresses past its limit.
pub fn too_large(path: &str, what: Bounded, limit: u64) -> Error {
    Error::TooLarge {
        path: path.to_string(),
        what: what.name(),
        limit: show_size(limit),
    }
}

/// A reader that fails with [`io::ErrorKind::InvalidData`] (message naming
/// `what` and the limit) once its inner reader produces more than `limit`
/// bytes: a streamed payload is bounded without holding it.
pub struct LimitedReader<R> {
    inner: R,
    left: u64,
    what: Bounded,
    limit: u64,
}

impl<R> LimitedReader<R> {
    pub fn new(inner: R, what: Bounded, limit: u64) -> Self {
        LimitedReader {
            inner,
            left: limit,
            what,
            limit,
        }
    }
}

/// The message of a streamed input over its limit (inside an archive error).
pub fn over_limit_message(what: Bounded, limit: u64) -> String {
    format!(
        "{} larger than the limit of {} when decompressed",
        what.name(),
        show_size(limit)
    )
}

impl<R: Read> Read for LimitedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // Ask for one byte past the limit, so that reaching it exactly is fine.
        let want = buf.len().min(
            usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let n = self.inner.read(&mut buf[..want])?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                over_limit_message(self.what, self.limit),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A compression format recognised by its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Xz,
    Zstd,
}

impl Compression {
    /// Recognises the format from the first bytes of the data.
    pub fn sniff(data: &[u8]) -> Self {
        if data.starts_with(&[0x1f, 0x8b]) {
            Compression::Gzip
        } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Compression::Xz
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
        }
    }
}

/// Returns the data decompressed, or borrowed as-is when it is not
/// compressed; more than `limit` decompressed bytes is [`Error::TooLarge`]
/// (`what` names the input in it).
pub fn decompress<'a>(
    data: &'a [u8],
    path: &str,
    what: Bounded,
    limit: u64,
) -> Result<Cow<'a, [u8]>> {
    let kind = Compression::sniff(data);
    if kind == Compression::None {
        return Ok(Cow::Borrowed(data));
    }
    let guess = (data.len() as u64).saturating_mul(4).min(limit);
    let mut out = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
    decoder(kind, data, path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::Decompress {
            path: path.to_string(),
            format: kind.name(),
            msg: e.to_string(),
        })?;
    if out.len() as u64 > limit {
        return Err(too_large(path, what, limit));
    }
    Ok(Cow::Owned(out))
}

/// A streaming decoder of `kind` over `reader`.
pub fn decoder<'r, R: Read + Send + 'r>(
    kind: Compression,
    reader: R,
    path: &str,
) -> Result<Box<dyn Read + Send + 'r>> {
    Ok(match kind {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(reader)),
        Compression::Zstd => Box::new(ruzstd::decoding::StreamingDecoder::new(reader).map_err(
            |e| Error::Decompress {
                path: path.to_string(),
                format: kind.name(),
                msg: e.to_string(),
            },
        )?),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_round_trip_and_garbage() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"hello").unwrap();
        let gz = enc.finish().unwrap();
        let d = |b: &[u8], p: &str| decompress(b, p, Bounded::Module, 1 << 20).map(|c| c.to_vec());
        assert_eq!(d(&gz, "x").unwrap(), b"hello");
        assert_eq!(d(b"plain", "x").unwrap(), b"plain");
        let e = d(&gz[..6], "x.gz").unwrap_err().to_string();
        assert!(e.contains("x.gz"), "{e}");
        assert!(d(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2], "x.xz").is_err());
        assert!(d(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0], "x.zst").is_err());
        // Exactly at the limit is fine, one byte more is not.
        assert_eq!(decompress(&gz, "x", Bounded::Module, 5).unwrap().len(), 5);
        let e = decompress(&gz, "x.gz", Bounded::Module, 4).unwrap_err();
        assert!(matches!(e, Error::TooLarge { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "x.gz: kernel module larger than the limit of 4 bytes when decompressed"
        );
    }

    #[test]
    fn limited_reader_and_sizes() {
        let mut out = Vec::new();
        LimitedReader::new(&b"hello"[..], Bounded::Payload, 5)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let e = LimitedReader::new(&b"hello"[..], Bounded::Payload, 4)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            e.to_string(),
            "package payload larger than the limit of 4 bytes when decompressed"
        );
        assert_eq!(show_size(512 << 20), "512 MiB");
        assert_eq!(show_size(16 << 30), "16 GiB");
        assert_eq!(show_size(3 << 10), "3 KiB");
        assert_eq!(show_size(1000), "1000 bytes");
    }
}
