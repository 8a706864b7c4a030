//! Receiving a bundle: streamed to a temporary file under the data
//! directory within the size limit, verified as `certlab bundle verify`
//! does with the submitting organisation's keys as the only trusted ones,
//! its `results.json` validated against the schema of its version, then its
//! members and the bundle itself stored content-addressed. A bundle refused
//! at any step leaves nothing behind.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use certlab_reports::{
    results_schema, verify_bundle_reader, ArtifactRef, ArtifactStore, BundleError, RunRecord,
    Trust, VerifyLimits, VerifyingKey,
};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::error::WebError;
use crate::store::{NewSubmission, Submission, User};
use crate::AppState;

/// Where the bytes of an upload come from.
pub enum Source<'a> {
    /// A raw `application/x-tar` request body.
    Body(Body),
    /// The file field of a `multipart/form-data` body.
    Field(Box<axum::extract::multipart::Field<'a>>),
}

impl Source<'_> {
    async fn chunk(&mut self) -> Result<Option<Bytes>, WebError> {
        match self {
            Source::Body(body) => loop {
                match body.frame().await {
                    None => return Ok(None),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                    Some(Err(e)) => {
                        return Err(WebError::bad_request(
                            "unreadable",
                            format!("cannot read the upload: {e}"),
                        ))
                    }
                }
            },
            Source::Field(field) => field.chunk().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    WebError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        format!("the upload is too large: {}", e.body_text()),
                    )
                } else {
                    WebError::bad_request(
                        "unreadable",
                        format!("cannot read the upload: {}", e.body_text()),
                    )
                }
            }),
        }
    }
}

/// The stable code and status of each reason a bundle is refused.
pub fn bundle_rejection(e: &BundleError) -> WebError {
    let code = match e {
        BundleError::Read { .. } => "unreadable",
        BundleError::TooLarge { .. } => "too_large",
        BundleError::TooManyMembers { .. } => "too_many_members",
        BundleError::NotTar { .. } => "not_tar",
        BundleError::NotRegularFile { .. } => "not_regular_file",
        BundleError::NotBundle { .. } => "not_bundle",
        BundleError::Malformed { .. } => "malformed",
        BundleError::BadSignature { .. } => "bad_signature",
        BundleError::UntrustedKey { .. } => "untrusted_key",
        BundleError::MissingFile { .. } | BundleError::NoSuchMember { .. } => "missing_file",
        BundleError::SizeMismatch { .. } => "size_mismatch",
        BundleError::DigestMismatch { .. } => "digest_mismatch",
        BundleError::UnexpectedFile { .. } => "unexpected_file",
        BundleError::DuplicateMember { .. } => "duplicate_member",
        BundleError::UnsafePath { .. } => "unsafe_path",
        BundleError::NotCanonical { .. } => "not_canonical",
    };
    let status = match e {
        BundleError::TooLarge { .. } | BundleError::TooManyMembers { .. } => {
            StatusCode::PAYLOAD_TOO_LARGE
        }
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    WebError::new(status, code, format!("bundle refused: {e}"))
}

/// Receives, checks and records the bundle `source` from `user`:
/// `(submission, created)`; the same bundle again gives its existing
/// submission with `created` false.
pub async fn receive(
    state: &AppState,
    user: &User,
    mut source: Source<'_>,
) -> Result<(Submission, bool), WebError> {
    let config = state.config();
    let max = config.max_upload_bytes;
    let temp = tempfile::Builder::new()
        .prefix(".upload-")
        .tempfile_in(config.data_dir.join("uploads"))
        .map_err(WebError::internal)?;
    let std_file = temp.as_file().try_clone().map_err(WebError::internal)?;
    let mut file = tokio::fs::File::from_std(std_file);
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = source.chunk().await? {
        size += chunk.len() as u64;
        if size > max {
            return Err(WebError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("bundle refused: over the limit of {max} bytes"),
            ));
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(WebError::internal)?;
    }
    file.flush().await.map_err(WebError::internal)?;
    drop(file);
    if size == 0 {
        return Err(WebError::bad_request(
            "empty",
            "no bundle: the upload is empty",
        ));
    }
    let bundle_sha256 = hex::encode(hasher.finalize());

    let keys = state.store().org_keys(&user.org_id).await?;
    let limits = config.verify_limits;
    let org = user.org_name.clone();
    let path = temp.path().to_path_buf();
    let checked = tokio::task::spawn_blocking(move || check(&path, &keys, &limits, &org))
        .await
        .map_err(WebError::internal)??;

    if let Some(existing) = state.store().submission_by_bundle(&bundle_sha256).await? {
        if existing.org_id != user.org_id {
            return Err(WebError::conflict(
                "this bundle was submitted by another organisation",
            ));
        }
        return Ok((existing, false));
    }

    let artifacts = state.artifacts().clone();
    let sha = bundle_sha256.clone();
    let report_sha256 = checked.report_sha256.clone();
    tokio::task::spawn_blocking(move || store_artifacts(temp, &artifacts, &sha, size))
        .await
        .map_err(WebError::internal)??;

    let new = NewSubmission {
        org_id: user.org_id.clone(),
        submitter_id: user.id.clone(),
        bundle_sha256,
        bundle_size: size,
        key_id: checked.key_id,
        report_sha256,
        results_json: checked.results_json,
    };
    Ok(state.store().create_submission(&new, state.now()).await?)
}

/// What [`check`] found in a good bundle.
struct Checked {
    key_id: String,
    report_sha256: String,
    results_json: String,
}

/// Verifies the bundle at `path` with `keys` trusted and validates its
/// `results.json`. Reads only.
fn check(
    path: &Path,
    keys: &[VerifyingKey],
    limits: &VerifyLimits,
    org: &str,
) -> Result<Checked, WebError> {
    let file = std::fs::File::open(path).map_err(WebError::internal)?;
    let verified = verify_bundle_reader(file, Trust::Keys(keys), limits).map_err(|e| match &e {
        BundleError::UntrustedKey { found, trusted } => {
            let keys = if trusted.is_empty() {
                "none; register one with `certlab portal key add`".to_string()
            } else {
                trusted.join(", ")
            };
            WebError::rejected(
                "untrusted_key",
                format!(
                    "bundle refused: signed by key {found}, which is not a signing key of \
                     organisation {org:?} (its keys: {keys})"
                ),
            )
        }
        _ => bundle_rejection(&e),
    })?;
    let report = verified
        .manifest
        .files
        .iter()
        .find(|f| f.path == "report.html")
        .ok_or_else(|| {
            bundle_rejection(&BundleError::MissingFile {
                path: "report.html".into(),
            })
        })?;
    let results = read_member(path, "results.json")?;
    let results_json = validate_results(&results)?;
    Ok(Checked {
        key_id: verified.key_id,
        report_sha256: report.sha256.clone(),
        results_json,
    })
}

/// The content of one member of a verified bundle.
fn read_member(path: &Path, name: &str) -> Result<Vec<u8>, WebError> {
    let file = std::fs::File::open(path).map_err(WebError::internal)?;
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().map_err(WebError::internal)? {
        let mut entry = entry.map_err(WebError::internal)?;
        let entry_path = entry.path().map_err(WebError::internal)?;
        if entry_path.to_str() == Some(name) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(WebError::internal)?;
            return Ok(bytes);
        }
    }
    Err(bundle_rejection(&BundleError::NoSuchMember {
        name: name.into(),
    }))
}

/// `results.json` valid against the schema of its `schema_version` and
/// readable as a record: its text, else 422 `invalid_results` naming the
/// first problems and where they are.
pub fn validate_results(bytes: &[u8]) -> Result<String, WebError> {
    let invalid = |detail: String| {
        WebError::rejected(
            "invalid_results",
            format!("results.json is not valid: {detail}"),
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8: {e}")))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| invalid(format!("not JSON: {e}")))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| invalid("no schema_version".into()))?;
    let validator = validator(version).ok_or_else(|| {
        invalid(format!(
            "schema_version {version} is not known to this portal"
        ))
    })?;
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .take(5)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    if !errors.is_empty() {
        return Err(invalid(errors.join("; ")));
    }
    serde_json::from_value::<RunRecord>(value).map_err(|e| invalid(e.to_string()))?;
    Ok(text.to_string())
}

/// The compiled schema of a `results.json` version, compiled once.
fn validator(version: u64) -> Option<&'static jsonschema::Validator> {
    // One cell per version this build writes or reads: a schema bump
    // (certlab_reports::SCHEMA_VERSION) is accepted here without an edit.
    const VERSIONS: usize = certlab_reports::SCHEMA_VERSION as usize + 1;
    static CELLS: [OnceLock<Option<jsonschema::Validator>>; VERSIONS] =
        [const { OnceLock::new() }; VERSIONS];
    if version < u64::from(certlab_reports::OLDEST_SCHEMA_VERSION) {
        return None;
    }
    let cell = CELLS.get(usize::try_from(version).ok()?)?;
    cell.get_or_init(|| {
        let schema: serde_json::Value = serde_json::from_str(results_schema(version)?).ok()?;
        jsonschema::validator_for(&schema).ok()
    })
    .as_ref()
}

/// Stores every member of the verified bundle, then the bundle itself
/// (moved from its temporary file), content-addressed.
fn store_artifacts(
    temp: tempfile::NamedTempFile,
    artifacts: &ArtifactStore,
    bundle_sha256: &str,
    size: u64,
) -> Result<(), WebError> {
    let file = std::fs::File::open(temp.path()).map_err(WebError::internal)?;
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().map_err(WebError::internal)? {
        let mut entry = entry.map_err(WebError::internal)?;
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(WebError::internal)?;
        artifacts.put(&bytes).map_err(WebError::internal)?;
    }
    let target = artifacts.path_of(&ArtifactRef {
        sha256: bundle_sha256.to_string(),
        size,
    });
    if !target.is_file() {
        temp.persist(&target).map_err(WebError::internal)?;
    }
    Ok(())
}
