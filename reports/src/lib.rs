//! The result model and everything certlab writes about a run.
//!
//! `reports` is pure: it takes values and paths and returns values; it never
//! runs commands or opens sockets, and it reads no clock (times are passed in).
//!
//! - [`model`]: the result model, the content of `results.json`
//!   ([`RESULTS_SCHEMA`] is its JSON Schema);
//! - [`artifacts`]: content-addressed evidence files (`evidence/<sha256>`);
//! - [`junit`]: `junit.xml` for CI systems;
//! - [`html`]: the self-contained `report.html`;
//! - [`keys`]: Ed25519 signing keys and their files;
//! - [`bundle`]: the signed, canonical `bundle.tar` and its verification;
//! - [`tlog`]: the portal's transparency log (hash chain, Merkle tree, signed head).

pub mod artifacts;
pub mod bundle;
pub mod error;
pub mod html;
pub mod junit;
pub mod keys;
pub mod model;
pub mod plot;
pub mod schema;
pub mod tlog;

pub use artifacts::{is_sha256_hex, sha256_hex, ArtifactStore};
pub use bundle::{
    build_bundle, read_bundle_member, verify_bundle, verify_bundle_reader, write_bundle, Manifest,
    ManifestEntry, SignatureFile, Trust, VerifiedBundle, VerifyLimits, BUNDLE_FILE, BUNDLE_FORMAT,
    BUNDLE_VERSION,
};
pub use error::{BundleError, ReportError};
pub use html::report_html;
pub use junit::junit_xml;
pub use keys::{
    key_id, load_private, load_public, SigningKeyPair, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE,
};
pub use model::*;
pub use schema::{
    results_schema, RESULTS_SCHEMA, RESULTS_SCHEMA_ID, RESULTS_SCHEMA_V1, RESULTS_SCHEMA_V1_ID,
    RESULTS_SCHEMA_V2, RESULTS_SCHEMA_V2_ID,
};

/// The Ed25519 key types used by [`write_bundle`] and [`verify_bundle`].
pub use ed25519_dalek::{SigningKey, VerifyingKey};
