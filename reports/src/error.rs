//! Errors of the writers ([`ReportError`]) and of bundle verification ([`BundleError`]).

use std::io;
use std::path::PathBuf;

/// Writing a report, an artifact, a key or a bundle failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file system operation on `path` failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done: `create directory`, `write`, `read`, `rename`, …
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A key file could not be encoded or decoded.
    #[error("invalid signing key file {}: {detail}", path.display())]
    Key { path: PathBuf, detail: String },
    /// Rendering an HTML template failed; `detail` holds tera's whole error chain.
    #[error("cannot render template {template}: {detail}")]
    Template {
        template: &'static str,
        detail: String,
    },
    /// Serializing a value to JSON failed.
    #[error("cannot serialize {what}")]
    Json {
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// An input cannot go into a bundle as it is (a directory in `evidence/`, a
    /// name a ustar header cannot hold, a creation time before 1970).
    #[error("cannot bundle {member}: {reason}")]
    Bundle { member: String, reason: String },
}

impl ReportError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ReportError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// A bundle did not verify. Each variant names what is wrong and where.
///
/// [`crate::verify_bundle`] checks in the order of these variants and reports
/// the first problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// The bundle could not be read (an I/O error of the file or stream).
    #[error("cannot read the bundle: {detail}")]
    Read { detail: String },
    /// The bundle, or one of its members, is larger than verification accepts.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge { what: String, size: u64, limit: u64 },
    /// The bundle has more members than verification accepts.
    #[error("the bundle has more than {limit} members")]
    TooManyMembers { limit: usize },
    /// The bytes are not a readable tar archive.
    #[error("not a tar archive: {detail}")]
    NotTar { detail: String },
    /// A tar member is a link, a directory or an extension header, not a plain file.
    #[error("member {path} is not a regular file")]
    NotRegularFile { path: String },
    /// A tar archive, but not a certlab bundle.
    #[error("not a certlab bundle: {reason}")]
    NotBundle { reason: String },
    /// `manifest.json` or `signature.json` is not what this version writes.
    #[error("malformed {member}: {detail}")]
    Malformed {
        member: &'static str,
        detail: String,
    },
    /// The signature in `signature.json` does not verify over `manifest.json`.
    #[error("bad signature: signature.json does not verify over manifest.json with key {key_id}")]
    BadSignature { key_id: String },
    /// The signature is valid, but by a key that is not trusted.
    #[error("signed by key {found}, which is not trusted (trusted keys: {})", if trusted.is_empty() { "none".to_string() } else { trusted.join(", ") })]
    UntrustedKey {
        found: String,
        /// The ids of the trusted keys.
        trusted: Vec<String>,
    },
    /// A file listed in the manifest is not in the archive.
    #[error("missing file {path}: listed in manifest.json but not in the bundle")]
    MissingFile { path: String },
    /// A member's size differs from the manifest.
    #[error("size mismatch for {path}: manifest.json says {expected} bytes, member has {actual}")]
    SizeMismatch {
        path: String,
        expected: u64,
        actual: u64,
    },
    /// A member's sha256 differs from the manifest.
    #[error(
        "digest mismatch for {path}: manifest.json says sha256 {expected}, member has {actual}"
    )]
    DigestMismatch {
        path: String,
        expected: String,
        actual: String,
    },
    /// A member that the manifest does not list.
    #[error("unexpected file {path}: not listed in manifest.json")]
    UnexpectedFile { path: String },
    /// Two members with the same name.
    #[error("duplicate member {path}")]
    DuplicateMember { path: String },
    /// A member name that is absolute, climbs with `..`, or is otherwise not a plain relative path.
    #[error("unsafe member name {path:?}")]
    UnsafePath { path: String },
    /// Every check passed on the parsed members, but the archive's bytes are
    /// not those certlab writes for them (headers, padding, order, trailing data).
    #[error("bundle is not canonical: differs at byte {offset}{near}")]
    NotCanonical { offset: u64, near: String },
    /// [`crate::read_bundle_member`] found no member of that name.
    #[error("no member {name} in bundle")]
    NoSuchMember { name: String },
}
