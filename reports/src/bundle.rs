//! The signed bundle `bundle.tar`: results, JUnit, HTML and evidence, with a
//! manifest of sha256 digests signed with Ed25519, verifiable offline.
//!
//! The archive is canonical: for given member contents and creation time there
//! is exactly one byte sequence certlab accepts. Members are, in order,
//! `manifest.json`, `signature.json`, then the manifest's files sorted by path;
//! every header is ustar with mode 0644, uid/gid 0, empty user and group
//! names and mtime = the manifest's `created`; the archive ends with two zero
//! blocks and nothing else. [`verify_bundle`] rebuilds that sequence from what
//! it parsed and compares byte for byte, so no byte of a bundle can change
//! unnoticed: contents are covered by the digests, the manifest by the
//! signature, `signature.json` by its own canonical form, everything else by
//! the rebuild.

use std::collections::HashSet;
use std::fs;
use std::io::{BufReader, Cursor, Read, Seek};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::artifacts::{is_hidden_name, is_sha256_hex, sha256_hex};
use crate::error::{BundleError, ReportError};
use crate::keys::key_id;

mod scan;
mod tarball;

use tarball::{canonical_tar, is_safe_name, parse_members};

/// The `format` field of every bundle manifest.
pub const BUNDLE_FORMAT: &str = "certlab-bundle";
/// The manifest `version` written and read by this build.
pub const BUNDLE_VERSION: u32 = 1;
/// File name of the bundle in an output directory.
pub const BUNDLE_FILE: &str = "bundle.tar";
/// The manifest member.
pub const MANIFEST: &str = "manifest.json";
/// The signature member.
pub const SIGNATURE: &str = "signature.json";
/// The report files every bundle carries, taken from the output directory.
pub const REPORT_FILES: [&str; 3] = ["junit.xml", "report.html", "results.json"];
/// The evidence directory inside the output directory and the bundle.
pub const EVIDENCE_DIR: &str = "evidence";

/// `manifest.json`: what the bundle holds, signed as bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// Always [`BUNDLE_VERSION`].
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// Every member but the manifest and the signature, sorted by path.
    pub files: Vec<ManifestEntry>,
}

/// One file of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestEntry {
    pub path: String,
    /// Lowercase hex sha256 of the content.
    pub sha256: String,
    pub size: u64,
}

/// `signature.json`: who signed the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// Always `ed25519`.
    pub algorithm: String,
    /// [`key_id`] of the public key.
    pub key_id: String,
    /// Base64 (standard, padded) of the raw 32-byte public key.
    pub public_key: String,
    /// Base64 of the 64-byte signature over the exact bytes of `manifest.json`.
    pub signature: String,
}

/// What [`verify_bundle`] established about a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBundle {
    /// [`key_id`] of the key that signed the manifest.
    pub key_id: String,
    pub public_key: VerifyingKey,
    /// Number of files listed in the manifest (the manifest and signature not counted).
    pub files: usize,
    pub manifest: Manifest,
}

/// Packs `results.json`, `junit.xml`, `report.html` and every file of
/// `evidence/` from `out_dir` into `out_dir/bundle.tar`, signed with `signer`,
/// and returns the bundle's path.
///
/// Files in `evidence/` whose name starts with a dot (temporary files of an
/// interrupted [`crate::ArtifactStore::put`]) are left out; anything else there
/// that is not a regular file is an error. The bundle is written to a
/// temporary name and renamed into place.
pub fn write_bundle(
    out_dir: &Path,
    signer: &SigningKey,
    created: OffsetDateTime,
) -> Result<PathBuf, ReportError> {
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for name in REPORT_FILES {
        let path = out_dir.join(name);
        let bytes = fs::read(&path).map_err(|e| ReportError::io("read", &path, e))?;
        files.push((name.to_string(), bytes));
    }
    let evidence = out_dir.join(EVIDENCE_DIR);
    if evidence.exists() {
        let entries = fs::read_dir(&evidence).map_err(|e| ReportError::io("list", &evidence, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ReportError::io("list", &evidence, e))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if is_hidden_name(&name) {
                continue;
            }
            let member = format!("{EVIDENCE_DIR}/{name}");
            let kind = entry
                .file_type()
                .map_err(|e| ReportError::io("inspect", &path, e))?;
            if !kind.is_file() {
                return Err(ReportError::Bundle {
                    member,
                    reason: "not a regular file".into(),
                });
            }
            let bytes = fs::read(&path).map_err(|e| ReportError::io("read", &path, e))?;
            files.push((member, bytes));
        }
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    let bundle = build_bundle(&refs, signer, created)?;

    let target = out_dir.join(BUNDLE_FILE);
    let temp = out_dir.join(format!(".{BUNDLE_FILE}.tmp-{}", std::process::id()));
    if let Err(e) = fs::write(&temp, &bundle) {
        let _ = fs::remove_file(&temp);
        return Err(ReportError::io("write", &temp, e));
    }
    fs::rename(&temp, &target).map_err(|e| {
        let _ = fs::remove_file(&temp);
        ReportError::io("rename into", &target, e)
    })?;
    Ok(target)
}

/// Builds a signed canonical bundle from `(member name, content)` pairs in memory.
///
/// Names must be relative `/`-separated paths of printable ASCII, at most 100
/// bytes, without `.` or `..` components, unique, and not `manifest.json` or
/// `signature.json`; the order of `files` does not matter.
pub fn build_bundle(
    files: &[(&str, &[u8])],
    signer: &SigningKey,
    created: OffsetDateTime,
) -> Result<Vec<u8>, ReportError> {
    let mtime = u64::try_from(created.unix_timestamp()).map_err(|_| ReportError::Bundle {
        member: MANIFEST.into(),
        reason: format!("creation time {created} is before 1970"),
    })?;
    let mut files: Vec<(&str, &[u8])> = files.to_vec();
    files.sort_by(|a, b| a.0.cmp(b.0));
    let mut entries = Vec::with_capacity(files.len());
    for (i, (name, content)) in files.iter().enumerate() {
        if !is_safe_name(name) {
            return Err(ReportError::Bundle {
                member: (*name).to_string(),
                reason: "not a relative path of printable ASCII up to 100 bytes".into(),
            });
        }
        if *name == MANIFEST || *name == SIGNATURE || (i > 0 && files[i - 1].0 == *name) {
            return Err(ReportError::Bundle {
                member: (*name).to_string(),
                reason: "name used twice".into(),
            });
        }
        entries.push(ManifestEntry {
            path: (*name).to_string(),
            sha256: sha256_hex(content),
            size: content.len() as u64,
        });
    }
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        version: BUNDLE_VERSION,
        created,
        files: entries,
    };
    let manifest_bytes = to_json(&manifest, MANIFEST)?;
    let verifying = signer.verifying_key();
    let signature = SignatureFile {
        algorithm: "ed25519".into(),
        key_id: key_id(&verifying),
        public_key: BASE64.encode(verifying.as_bytes()),
        signature: BASE64.encode(signer.sign(&manifest_bytes).to_bytes()),
    };
    let signature_bytes = to_json(&signature, SIGNATURE)?;

    let mut members: Vec<(&str, &[u8])> =
        vec![(MANIFEST, &manifest_bytes), (SIGNATURE, &signature_bytes)];
    members.extend(files.iter().copied());
    canonical_tar(&members, mtime)
        .map_err(|(member, reason)| ReportError::Bundle { member, reason })
}

/// Whom a verification trusts.
#[derive(Debug, Clone, Copy)]
pub enum Trust<'a> {
    /// Only a signature by one of these keys (none: nothing is trusted).
    Keys(&'a [VerifyingKey]),
    /// Any valid signature: integrity only, the signer is not checked.
    AnyKey,
}

/// What verification reads at most; a bundle beyond a limit is refused
/// before more of it is read. Memory stays bounded by `max_manifest_bytes`
/// (twice: manifest and signature) plus a small record per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyLimits {
    /// The whole bundle file.
    pub max_bundle_bytes: u64,
    /// Each member other than `manifest.json` and `signature.json`.
    pub max_member_bytes: u64,
    /// Members in the archive, manifest and signature included.
    pub max_members: usize,
    /// `manifest.json`, and `signature.json`.
    pub max_manifest_bytes: u64,
}

impl Default for VerifyLimits {
    /// 64 GiB per bundle, 16 GiB per member, 1,000,000 members, 256 MiB of
    /// manifest (about 1.5 million entries).
    fn default() -> Self {
        VerifyLimits {
            max_bundle_bytes: 64 << 30,
            max_member_bytes: 16 << 30,
            max_members: 1_000_000,
            max_manifest_bytes: 256 << 20,
        }
    }
}

/// Checks a bundle held in memory and returns what it holds and who signed
/// it: [`verify_bundle_reader`] with `trusted` the only trusted key, or any
/// key when `None`, under [`VerifyLimits::default`].
pub fn verify_bundle(
    bytes: &[u8],
    trusted: Option<&VerifyingKey>,
) -> Result<VerifiedBundle, BundleError> {
    let trust = match trusted {
        Some(key) => Trust::Keys(std::slice::from_ref(key)),
        None => Trust::AnyKey,
    };
    verify_bundle_reader(Cursor::new(bytes), trust, &VerifyLimits::default())
}

/// Checks a bundle read from `reader` (a file) and returns what it holds and
/// who signed it.
///
/// The bundle is read twice as a stream, with memory bounded by `limits`:
/// once to parse the headers and hash every member as it passes, keeping only
/// `manifest.json` and `signature.json`; once to compare the headers, padding
/// and end of the archive with the canonical layout.
///
/// The checks run in this order, and the first failure is returned:
/// 1. within `limits` ([`BundleError::TooLarge`], [`BundleError::TooManyMembers`]),
///    a tar archive of regular files ([`BundleError::NotTar`], [`BundleError::NotRegularFile`]),
///    readable ([`BundleError::Read`]);
/// 2. `manifest.json` and `signature.json` present, format `certlab-bundle` ([`BundleError::NotBundle`]);
/// 3. both well formed, `signature.json` in canonical form ([`BundleError::Malformed`]);
/// 4. the signature verifies over the exact bytes of `manifest.json` ([`BundleError::BadSignature`]);
/// 5. the signing key is trusted ([`BundleError::UntrustedKey`]), unless [`Trust::AnyKey`];
/// 6. every listed file is present with its size and sha256 ([`BundleError::MissingFile`],
///    [`BundleError::SizeMismatch`], [`BundleError::DigestMismatch`]);
/// 7. no member the manifest does not list ([`BundleError::UnexpectedFile`]);
/// 8. no member twice ([`BundleError::DuplicateMember`]);
/// 9. no absolute, `..` or otherwise unsafe name ([`BundleError::UnsafePath`]);
/// 10. the bytes are exactly the canonical archive of these members ([`BundleError::NotCanonical`]).
///
/// Nothing is written anywhere.
pub fn verify_bundle_reader<R: Read + Seek>(
    mut reader: R,
    trust: Trust<'_>,
    limits: &VerifyLimits,
) -> Result<VerifiedBundle, BundleError> {
    let len = scan::bundle_len(&mut reader, limits)?;
    let scanned = scan::scan(
        BufReader::with_capacity(64 * 1024, &mut reader),
        len,
        limits,
    )?;

    // 2. Is it a certlab bundle at all?
    let manifest_bytes = scanned
        .manifest
        .as_deref()
        .ok_or_else(|| BundleError::NotBundle {
            reason: format!("no {MANIFEST}"),
        })?;
    let signature_bytes = scanned
        .signature
        .as_deref()
        .ok_or_else(|| BundleError::NotBundle {
            reason: format!("no {SIGNATURE}"),
        })?;
    let value: serde_json::Value =
        serde_json::from_slice(manifest_bytes).map_err(|e| malformed(MANIFEST, e))?;
    match value.get("format") {
        Some(serde_json::Value::String(f)) if f == BUNDLE_FORMAT => {}
        other => {
            return Err(BundleError::NotBundle {
                reason: format!(
                    "{MANIFEST} has format {}, expected {BUNDLE_FORMAT:?}",
                    other.map_or_else(|| "none".to_string(), |v| v.to_string())
                ),
            })
        }
    }

    // 3. Well formed.
    let manifest: Manifest = serde_json::from_value(value).map_err(|e| malformed(MANIFEST, e))?;
    check_manifest(&manifest)?;
    let (public_key, signature) = parse_signature(signature_bytes)?;
    let signer_id = key_id(&public_key);

    // 4. Signature.
    public_key
        .verify_strict(manifest_bytes, &signature)
        .map_err(|_| BundleError::BadSignature {
            key_id: signer_id.clone(),
        })?;

    // 5. Trust.
    if let Trust::Keys(keys) = trust {
        if !keys.contains(&public_key) {
            return Err(BundleError::UntrustedKey {
                found: signer_id,
                trusted: keys.iter().map(key_id).collect(),
            });
        }
    }

    // 6. Every listed file, with its digest.
    for entry in &manifest.files {
        let member = scanned
            .find(&entry.path)
            .ok_or_else(|| BundleError::MissingFile {
                path: entry.path.clone(),
            })?;
        if member.size != entry.size {
            return Err(BundleError::SizeMismatch {
                path: entry.path.clone(),
                expected: entry.size,
                actual: member.size,
            });
        }
        if member.sha256 != entry.sha256 {
            return Err(BundleError::DigestMismatch {
                path: entry.path.clone(),
                expected: entry.sha256.clone(),
                actual: member.sha256.clone(),
            });
        }
    }

    // 7. Nothing unlisted.
    let names: HashSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    if let Some(m) = scanned
        .members
        .iter()
        .find(|m| m.name != MANIFEST && m.name != SIGNATURE && !names.contains(m.name.as_str()))
    {
        return Err(BundleError::UnexpectedFile {
            path: m.name.clone(),
        });
    }

    // 8. No duplicates.
    let mut seen = HashSet::new();
    if let Some(m) = scanned
        .members
        .iter()
        .find(|m| !seen.insert(m.name.as_str()))
    {
        return Err(BundleError::DuplicateMember {
            path: m.name.clone(),
        });
    }

    // 9. Safe names, in the archive and in the manifest.
    let member_names = scanned.members.iter().map(|m| (m.name.as_str(), m.name_ok));
    let manifest_names = manifest.files.iter().map(|f| (f.path.as_str(), true));
    if let Some((name, _)) = member_names
        .chain(manifest_names)
        .find(|(name, ok)| !ok || !is_safe_name(name))
    {
        return Err(BundleError::UnsafePath {
            path: name.to_string(),
        });
    }

    // 10. Canonical bytes.
    let mtime = u64::try_from(manifest.created.unix_timestamp()).unwrap_or(0);
    let mut layout: Vec<(&str, u64)> = vec![
        (MANIFEST, manifest_bytes.len() as u64),
        (SIGNATURE, signature_bytes.len() as u64),
    ];
    layout.extend(manifest.files.iter().map(|f| (f.path.as_str(), f.size)));
    scan::check_canonical(&mut reader, len, &layout, mtime)?;

    Ok(VerifiedBundle {
        key_id: signer_id,
        public_key,
        files: manifest.files.len(),
        manifest,
    })
}

/// The content of member `name` (the first of that name) of a bundle.
///
/// This only reads the archive: call [`verify_bundle`] first to know the
/// content is the signed one.
pub fn read_bundle_member(bytes: &[u8], name: &str) -> Result<Vec<u8>, BundleError> {
    parse_members(bytes)?
        .into_iter()
        .find(|m| m.name == name)
        .map(|m| m.data.to_vec())
        .ok_or_else(|| BundleError::NoSuchMember { name: name.into() })
}

fn malformed(member: &'static str, detail: impl ToString) -> BundleError {
    BundleError::Malformed {
        member,
        detail: detail.to_string(),
    }
}

fn check_manifest(m: &Manifest) -> Result<(), BundleError> {
    if m.version != BUNDLE_VERSION {
        return Err(malformed(
            MANIFEST,
            format!(
                "version {} is not supported (expected {BUNDLE_VERSION})",
                m.version
            ),
        ));
    }
    if m.created.unix_timestamp() < 0 {
        return Err(malformed(
            MANIFEST,
            format!("created {} is before 1970", m.created),
        ));
    }
    for (i, f) in m.files.iter().enumerate() {
        if f.path == MANIFEST || f.path == SIGNATURE {
            return Err(malformed(MANIFEST, format!("lists {} as a file", f.path)));
        }
        if i > 0 && m.files[i - 1].path >= f.path {
            return Err(malformed(
                MANIFEST,
                format!("files are not sorted and unique by path at {}", f.path),
            ));
        }
        if !is_sha256_hex(&f.sha256) {
            return Err(malformed(
                MANIFEST,
                format!("sha256 of {} is not 64 lowercase hex digits", f.path),
            ));
        }
    }
    if !m.files.iter().any(|f| f.path == "results.json") {
        return Err(malformed(MANIFEST, "lists no results.json"));
    }
    Ok(())
}

/// Parses `signature.json`, checks it is in the form certlab writes, and
/// returns the key and the signature.
fn parse_signature(bytes: &[u8]) -> Result<(VerifyingKey, Signature), BundleError> {
    let sig: SignatureFile = serde_json::from_slice(bytes).map_err(|e| malformed(SIGNATURE, e))?;
    if sig.algorithm != "ed25519" {
        return Err(malformed(
            SIGNATURE,
            format!(
                "algorithm {:?} is not supported (expected \"ed25519\")",
                sig.algorithm
            ),
        ));
    }
    let raw_key: [u8; 32] = BASE64
        .decode(&sig.public_key)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| malformed(SIGNATURE, "public_key is not base64 of 32 bytes"))?;
    let public_key = VerifyingKey::from_bytes(&raw_key)
        .map_err(|_| malformed(SIGNATURE, "public_key is not an ed25519 public key"))?;
    let expected_id = key_id(&public_key);
    if sig.key_id != expected_id {
        return Err(malformed(
            SIGNATURE,
            format!(
                "key_id {:?} does not match public_key (whose id is {expected_id})",
                sig.key_id
            ),
        ));
    }
    let raw_sig: [u8; 64] = BASE64
        .decode(&sig.signature)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| malformed(SIGNATURE, "signature is not base64 of 64 bytes"))?;
    let canonical = serde_json::to_vec_pretty(&sig).map(|mut v| {
        v.push(b'\n');
        v
    });
    if canonical.ok().as_deref() != Some(bytes) {
        return Err(malformed(
            SIGNATURE,
            "not in canonical form (as certlab writes it)",
        ));
    }
    Ok((public_key, Signature::from_bytes(&raw_sig)))
}

/// Pretty JSON with a final newline: the form of `manifest.json` and `signature.json`.
fn to_json<T: Serialize>(value: &T, what: &'static str) -> Result<Vec<u8>, ReportError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|source| ReportError::Json { what, source })?;
    bytes.push(b'\n');
    Ok(bytes)
}
