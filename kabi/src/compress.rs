//! Transparent decompression of the formats kernels ship files in:
//! gzip, xz and zstd, recognised by their magic bytes.

use std::borrow::Cow;
use std::io::Read;

use crate::error::{Error, Result};

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

/// Returns the data decompressed, or borrowed as-is when it is not compressed.
pub fn decompress<'a>(data: &'a [u8], path: &str) -> Result<Cow<'a, [u8]>> {
    let kind = Compression::sniff(data);
    if kind == Compression::None {
        return Ok(Cow::Borrowed(data));
    }
    let mut out = Vec::with_capacity(data.len() * 4);
    decoder(kind, data, path)?
        .read_to_end(&mut out)
        .map_err(|e| Error::Decompress {
            path: path.to_string(),
            format: kind.name(),
            msg: e.to_string(),
        })?;
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
        assert_eq!(&*decompress(&gz, "x").unwrap(), b"hello");
        assert_eq!(&*decompress(b"plain", "x").unwrap(), b"plain");
        let e = decompress(&gz[..6], "x.gz").unwrap_err().to_string();
        assert!(e.contains("x.gz"), "{e}");
        assert!(decompress(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2], "x.xz").is_err());
        assert!(decompress(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0], "x.zst").is_err());
    }
}
