//! The canonical tar layer of bundles: reading members out of an archive
//! without interpreting extensions, and writing the one archive certlab
//! accepts for given members.

use crate::error::BundleError;

/// Size of a tar block.
pub(crate) const BLOCK: usize = 512;
/// The longest member name a ustar `name` field holds without a prefix.
const MAX_NAME: usize = 100;

/// One member of a parsed archive, borrowing its content from the input.
pub(crate) struct Member<'a> {
    /// The name, lossily decoded when it is not UTF-8.
    pub(crate) name: String,
    pub(crate) data: &'a [u8],
}

/// Reads every header of the archive in raw mode (no PAX or GNU extensions
/// interpreted) and slices each member's content out of `bytes`.
pub(crate) fn parse_members(bytes: &[u8]) -> Result<Vec<Member<'_>>, BundleError> {
    let mut archive = tar::Archive::new(bytes);
    let entries = archive.entries().map_err(|e| BundleError::NotTar {
        detail: e.to_string(),
    })?;
    let mut members = Vec::new();
    // Where the next header should start, and the member before it, for messages.
    let mut next_header: u64 = 0;
    let mut previous: Option<String> = None;
    for entry in entries.raw(true) {
        let entry = entry.map_err(|e| BundleError::NotTar {
            detail: match &previous {
                Some(p) => format!("{e} in the header at byte {next_header}, after member {p}"),
                None => format!("{e} in the first header (byte 0)"),
            },
        })?;
        let raw_name = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw_name).into_owned();
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(BundleError::NotRegularFile { path: name });
        }
        let start = entry.raw_file_position();
        let size = entry.size();
        let data = usize::try_from(start)
            .ok()
            .zip(usize::try_from(size).ok())
            .and_then(|(s, n)| bytes.get(s..s.checked_add(n)?))
            .ok_or_else(|| BundleError::NotTar {
                detail: format!(
                    "member {name} is truncated: its header says {size} bytes from byte {start}, the archive has {}",
                    bytes.len()
                ),
            })?;
        next_header = start + size.div_ceil(BLOCK as u64) * BLOCK as u64;
        previous = Some(name.clone());
        members.push(Member { name, data });
    }
    Ok(members)
}

/// A relative `/`-separated path of printable ASCII (no backslash), at most
/// [`MAX_NAME`] bytes, without empty, `.` or `..` components.
pub(crate) fn is_safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && name
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The canonical ustar header of a member: mode 0644, uid/gid 0, empty
/// user and group names, the given size and mtime.
pub(crate) fn canonical_header(name: &str, size: u64, mtime: u64) -> Result<tar::Header, String> {
    if !is_safe_name(name) {
        return Err("not a safe member name".into());
    }
    let mut header = tar::Header::new_ustar();
    let ustar = header
        .as_ustar_mut()
        .ok_or_else(|| "no ustar header".to_string())?;
    ustar.name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(size);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

/// The canonical archive of `members`, in the given order. On error, returns
/// the member and why it cannot be written.
pub(crate) fn canonical_tar(
    members: &[(&str, &[u8])],
    mtime: u64,
) -> Result<Vec<u8>, (String, String)> {
    let capacity = members
        .iter()
        .map(|(_, d)| BLOCK + d.len().div_ceil(BLOCK) * BLOCK)
        .sum::<usize>()
        + 2 * BLOCK;
    let mut builder = tar::Builder::new(Vec::with_capacity(capacity));
    for (name, data) in members {
        let fail = |reason: String| ((*name).to_string(), reason);
        let header = canonical_header(name, data.len() as u64, mtime).map_err(fail)?;
        builder
            .append(&header, *data)
            .map_err(|e| fail(e.to_string()))?;
    }
    builder
        .into_inner()
        .map_err(|e| (String::new(), e.to_string()))
}

/// Where `offset` falls in the canonical layout of `members`, for messages.
pub(crate) fn describe_offset(members: &[(&str, u64)], offset: u64) -> String {
    let block = BLOCK as u64;
    let mut start = 0;
    for (name, size) in members {
        let content = start + block;
        let end = content + size.div_ceil(block) * block;
        if offset < content {
            return format!(" (header of {name})");
        }
        if offset < content + size {
            return format!(" (content of {name})");
        }
        if offset < end {
            return format!(" (padding after {name})");
        }
        start = end;
    }
    if offset < start + 2 * block {
        " (end-of-archive blocks)".to_string()
    } else {
        " (data after the end-of-archive blocks)".to_string()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn safe_names() {
        for ok in ["results.json", "evidence/ab12", "a/b/c", "x-y_z.1"] {
            assert!(is_safe_name(ok), "{ok}");
        }
        let long = "a".repeat(101);
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "a\\b",
            "a b",
            "é",
            long.as_str(),
        ] {
            assert!(!is_safe_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn canonical_layout_and_descriptions() {
        let members: Vec<(&str, &[u8])> = vec![("a", b"hello"), ("b", b"")];
        let tar = canonical_tar(&members, 1_700_000_000).unwrap();
        let members: Vec<(&str, u64)> = vec![("a", 5), ("b", 0)];
        assert_eq!(tar.len(), 512 + 512 + 512 + 1024);
        assert_eq!(&tar[257..263], b"ustar\0");
        assert_eq!(&tar[100..108], b"0000644\0");
        assert!(tar[265..297].iter().all(|b| *b == 0), "empty user name");
        assert_eq!(describe_offset(&members, 0), " (header of a)");
        assert_eq!(describe_offset(&members, 514), " (content of a)");
        assert_eq!(describe_offset(&members, 600), " (padding after a)");
        assert_eq!(describe_offset(&members, 1024), " (header of b)");
        assert_eq!(describe_offset(&members, 1536), " (end-of-archive blocks)");
        assert_eq!(
            describe_offset(&members, 2560),
            " (data after the end-of-archive blocks)"
        );
    }
}
