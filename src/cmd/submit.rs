//! `certlab bundle submit`: a bundle to a portal's `POST /api/v1/submissions`.
//!
//! The token goes only to the portal named by `--portal` (redirects are not
//! followed) and appears in no message.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::runtime;
use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::Format;

/// What the portal answers for a submission.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
struct Submitted {
    id: String,
    state: String,
    url: String,
}

pub fn submit(file: &Path, portal: &str, token: &str, format: Format) -> Result<i32> {
    let base = portal.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(failure(
            exit::INFRA,
            format!("--portal {portal}: expected http://… or https://…"),
        ));
    }
    if token.trim().is_empty() {
        return Err(failure(
            exit::INFRA,
            "no API token: pass --token or set CERTLAB_PORTAL_TOKEN",
        ));
    }
    let bytes = std::fs::read(file).map_err(|e| {
        CliError::bad_input(e).context(format!("cannot read bundle {}", file.display()))
    })?;
    let client = client()?;
    let endpoint = format!("{base}/api/v1/submissions");
    let rt = runtime()?;
    let (status, body) = rt.block_on(async {
        let response = client
            .post(&endpoint)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
            .body(bytes)
            .send()
            .await
            .map_err(|e| {
                CliError::infra(e.without_url())
                    .context(format!("cannot reach the portal at {endpoint}"))
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| {
            CliError::infra(e.without_url())
                .context(format!("reading the portal's answer from {endpoint}"))
        })?;
        Ok::<_, CliError>((status, body))
    })?;
    if !status.is_success() {
        let detail = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let e = v.get("error")?;
                Some(format!(
                    "{}: {}",
                    e.get("code")?.as_str()?,
                    e.get("message")?.as_str()?
                ))
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(500).collect());
        // the portal judged the bundle: bad input; anything else: infrastructure or usage
        let code = match status.as_u16() {
            409 | 413 | 422 => exit::BAD_INPUT,
            _ => exit::INFRA,
        };
        return Err(failure(
            code,
            format!("the portal refused {} ({status}): {detail}", file.display()),
        ));
    }
    let mut answer: Submitted = serde_json::from_slice(&body).map_err(|e| {
        CliError::infra(e).context(format!("unexpected answer from the portal at {endpoint}"))
    })?;
    if answer.url.starts_with('/') {
        answer.url = format!("{base}{}", answer.url);
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&answer)?),
        _ => println!(
            "{} submission {}: {}\n{}",
            if status == reqwest::StatusCode::CREATED {
                "new"
            } else {
                "existing"
            },
            answer.id,
            answer.state,
            answer.url
        ),
    }
    Ok(exit::OK)
}

/// An HTTP client trusting the system's CA certificates, following no
/// redirects, with a deadline per request.
pub(crate) fn client() -> Result<reqwest::Client> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CliError::infra(e).context("TLS setup"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(3600))
        .build()
        .map_err(|e| CliError::infra(e).context("HTTP client setup"))
}
