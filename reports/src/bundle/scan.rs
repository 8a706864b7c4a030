//! Reading a bundle as a stream, with bounded memory: one pass that parses
//! the headers and hashes each member's content as it goes (keeping only
//! `manifest.json` and `signature.json`), and one that compares the
//! archive's headers, padding and end with the canonical layout.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use sha2::{Digest, Sha256};

use super::tarball::{canonical_header, describe_offset, BLOCK};
use super::{VerifyLimits, MANIFEST, SIGNATURE};
use crate::error::BundleError;

/// One member of the archive as the scan saw it.
pub(crate) struct Scanned {
    pub(crate) name: String,
    pub(crate) name_ok: bool,
    pub(crate) size: u64,
    pub(crate) sha256: String,
}

/// What the first pass found.
pub(crate) struct Scan {
    pub(crate) members: Vec<Scanned>,
    /// The index of the first member of each name.
    first: HashMap<String, usize>,
    pub(crate) manifest: Option<Vec<u8>>,
    pub(crate) signature: Option<Vec<u8>>,
}

impl Scan {
    pub(crate) fn find(&self, name: &str) -> Option<&Scanned> {
        self.first.get(name).map(|&i| &self.members[i])
    }
}

fn read_error(e: std::io::Error) -> BundleError {
    BundleError::Read {
        detail: e.to_string(),
    }
}

/// The length of the stream, checked against the whole-bundle limit.
pub(crate) fn bundle_len<R: Seek>(
    reader: &mut R,
    limits: &VerifyLimits,
) -> Result<u64, BundleError> {
    let len = reader.seek(SeekFrom::End(0)).map_err(read_error)?;
    reader.seek(SeekFrom::Start(0)).map_err(read_error)?;
    if len > limits.max_bundle_bytes {
        return Err(BundleError::TooLarge {
            what: "the bundle".into(),
            size: len,
            limit: limits.max_bundle_bytes,
        });
    }
    Ok(len)
}

/// First pass: every header in raw mode (no PAX or GNU extensions
/// interpreted), each member's size and sha256; the contents of the first
/// `manifest.json` and `signature.json`.
pub(crate) fn scan<R: Read>(
    reader: R,
    len: u64,
    limits: &VerifyLimits,
) -> Result<Scan, BundleError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(|e| BundleError::NotTar {
        detail: e.to_string(),
    })?;
    let mut scan = Scan {
        members: Vec::new(),
        first: HashMap::new(),
        manifest: None,
        signature: None,
    };
    // Where the next header should start, and the member before it, for messages.
    let mut next_header: u64 = 0;
    let mut previous: Option<String> = None;
    let mut buf = vec![0u8; 64 * 1024];
    for entry in entries.raw(true) {
        let mut entry = entry.map_err(|e| BundleError::NotTar {
            detail: match &previous {
                Some(p) => format!("{e} in the header at byte {next_header}, after member {p}"),
                None => format!("{e} in the first header (byte 0)"),
            },
        })?;
        if scan.members.len() >= limits.max_members {
            return Err(BundleError::TooManyMembers {
                limit: limits.max_members,
            });
        }
        let raw_name = entry.path_bytes().into_owned();
        let (name, name_ok) = match String::from_utf8(raw_name) {
            Ok(n) => (n, true),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), false),
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BundleError::NotRegularFile { path: name });
        }
        let start = entry.raw_file_position();
        let size = entry.size();
        let keep = (name == MANIFEST && scan.manifest.is_none())
            || (name == SIGNATURE && scan.signature.is_none());
        let limit = if keep {
            limits.max_manifest_bytes
        } else {
            limits.max_member_bytes
        };
        if size > limit {
            return Err(BundleError::TooLarge {
                what: format!("member {name}"),
                size,
                limit,
            });
        }
        let truncated = || {
            BundleError::NotTar {
            detail: format!(
                "member {name} is truncated: its header says {size} bytes from byte {start}, the archive has {len}"
            ),
        }
        };
        if start.checked_add(size).is_none_or(|end| end > len) {
            return Err(truncated());
        }
        let mut hasher = Sha256::new();
        let mut kept = Vec::new();
        let mut read: u64 = 0;
        while read < size {
            let want = usize::try_from((size - read).min(buf.len() as u64)).unwrap_or(buf.len());
            let n = entry.read(&mut buf[..want]).map_err(read_error)?;
            if n == 0 {
                return Err(truncated());
            }
            hasher.update(&buf[..n]);
            if keep {
                kept.extend_from_slice(&buf[..n]);
            }
            read += n as u64;
        }
        if keep && name == MANIFEST {
            scan.manifest = Some(kept);
        } else if keep {
            scan.signature = Some(kept);
        }
        next_header = start + size.div_ceil(BLOCK as u64) * BLOCK as u64;
        previous = Some(name.clone());
        scan.first.entry(name.clone()).or_insert(scan.members.len());
        scan.members.push(Scanned {
            name,
            name_ok,
            size,
            sha256: hex::encode(hasher.finalize()),
        });
    }
    Ok(scan)
}

/// Second pass: the archive's bytes outside the members' contents (headers,
/// padding, end-of-archive blocks, anything after) against the canonical
/// layout of `members` (name, size), in order. The contents themselves were
/// checked by their digests; a header that matches puts the member certlab
/// hashed at the place the canonical layout has it.
pub(crate) fn check_canonical<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    members: &[(&str, u64)],
    mtime: u64,
) -> Result<(), BundleError> {
    let block = BLOCK as u64;
    let not_canonical = |offset: u64| BundleError::NotCanonical {
        offset,
        near: describe_offset(members, offset),
    };
    let mut pos: u64 = 0;
    let mut actual = vec![0u8; 2 * BLOCK];
    for (name, size) in members {
        let header = canonical_header(name, *size, mtime).map_err(|_| BundleError::UnsafePath {
            path: (*name).to_string(),
        })?;
        compare(reader, len, pos, header.as_bytes(), &mut actual).map_err(|e| match e {
            Mismatch::At(o) => not_canonical(o),
            Mismatch::Read(e) => e,
        })?;
        pos += block + size;
        let pad = usize::try_from(size.div_ceil(block) * block - size).unwrap_or(0);
        compare(reader, len, pos, &[0u8; BLOCK][..pad], &mut actual).map_err(|e| match e {
            Mismatch::At(o) => not_canonical(o),
            Mismatch::Read(e) => e,
        })?;
        pos += pad as u64;
    }
    compare(reader, len, pos, &[0u8; 2 * BLOCK], &mut actual).map_err(|e| match e {
        Mismatch::At(o) => not_canonical(o),
        Mismatch::Read(e) => e,
    })?;
    pos += 2 * block;
    if len > pos {
        return Err(not_canonical(pos));
    }
    Ok(())
}

enum Mismatch {
    At(u64),
    Read(BundleError),
}

/// Compares the stream's bytes at `pos` with `expected`; a stream that ends
/// first differs where it ends.
fn compare<R: Read + Seek>(
    reader: &mut R,
    len: u64,
    pos: u64,
    expected: &[u8],
    buf: &mut [u8],
) -> Result<(), Mismatch> {
    if expected.is_empty() {
        return Ok(());
    }
    if pos >= len {
        return Err(Mismatch::At(len));
    }
    let available = usize::try_from((len - pos).min(expected.len() as u64)).unwrap_or(0);
    reader
        .seek(SeekFrom::Start(pos))
        .map_err(|e| Mismatch::Read(read_error(e)))?;
    let actual = &mut buf[..available];
    reader
        .read_exact(actual)
        .map_err(|e| Mismatch::Read(read_error(e)))?;
    if let Some(i) = actual.iter().zip(expected).position(|(a, b)| a != b) {
        return Err(Mismatch::At(pos + i as u64));
    }
    if available < expected.len() {
        return Err(Mismatch::At(len));
    }
    Ok(())
}
