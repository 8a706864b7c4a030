//! The router, the shared state, and the layers every response passes:
//! security headers, request metrics, and HTML rendering of errors outside `/api`.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use certlab_reports::{ArtifactStore, VerifyLimits};
use time::OffsetDateTime;

use crate::error::{ErrorBody, WebError};
use crate::metrics::Metrics;
use crate::ratelimit::{Limiters, RateLimits};
use crate::store::PortalStore;
use crate::transparency::{self, LogState};
use crate::{api, kabi, lab, pages};

/// How the portal runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where artifacts (`artifacts/<sha256>`) and uploads in progress (`uploads/`) live.
    pub data_dir: PathBuf,
    /// The URL people reach the portal at (`https://…` makes cookies Secure);
    /// links in API answers start with it.
    pub public_url: Option<String>,
    /// The largest bundle accepted, in bytes.
    pub max_upload_bytes: u64,
    /// What verification of a bundle reads at most.
    pub verify_limits: VerifyLimits,
    /// How long a browser session lasts.
    pub session_ttl: time::Duration,
    /// Limits on logins and uploads.
    pub rate_limits: RateLimits,
}

impl Config {
    /// Defaults: 1 GiB bundles, 256 MiB members, 100,000 members, 64 MiB
    /// manifests, 12-hour sessions.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            public_url: None,
            max_upload_bytes: 1 << 30,
            verify_limits: VerifyLimits {
                max_bundle_bytes: 1 << 30,
                max_member_bytes: 256 << 20,
                max_members: 100_000,
                max_manifest_bytes: 64 << 20,
            },
            session_ttl: time::Duration::hours(12),
            rate_limits: RateLimits::default(),
        }
    }
}

struct Inner {
    store: PortalStore,
    config: Config,
    artifacts: ArtifactStore,
    templates: tera::Tera,
    metrics: Metrics,
    log: LogState,
    limiters: Limiters,
}

/// What every handler shares. Cloning is cheap.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.0.config)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// The state over `store`, creating the data directory's folders and
    /// removing uploads left unfinished by an earlier process.
    pub fn new(store: PortalStore, config: Config) -> Result<AppState, WebError> {
        let artifacts =
            ArtifactStore::open(config.data_dir.join("artifacts")).map_err(WebError::internal)?;
        let uploads = config.data_dir.join("uploads");
        std::fs::create_dir_all(&uploads)
            .map_err(|e| WebError::internal(format!("cannot create {}: {e}", uploads.display())))?;
        // uploads a killed process left behind
        let entries = std::fs::read_dir(&uploads)
            .map_err(|e| WebError::internal(format!("cannot list {}: {e}", uploads.display())))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".upload-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let log = LogState::open(&config.data_dir)?;
        let limiters = Limiters::new(&config.rate_limits);
        Ok(AppState(Arc::new(Inner {
            log,
            store,
            config,
            artifacts,
            templates: pages::templates()?,
            metrics: Metrics::default(),
            limiters,
        })))
    }

    pub fn store(&self) -> &PortalStore {
        &self.0.store
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }

    pub fn artifacts(&self) -> &ArtifactStore {
        &self.0.artifacts
    }

    pub(crate) fn templates(&self) -> &tera::Tera {
        &self.0.templates
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The transparency log's key and cached tree.
    pub fn log(&self) -> &LogState {
        &self.0.log
    }

    pub(crate) fn limiters(&self) -> &Limiters {
        &self.0.limiters
    }

    pub fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// Cookies carry `Secure` when the public URL is https.
    pub fn secure_cookies(&self) -> bool {
        self.0
            .config
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    /// `path` as a link: after the public URL when there is one.
    pub fn link(&self, path: &str) -> String {
        match &self.0.config.public_url {
            Some(base) => format!("{}{path}", base.trim_end_matches('/')),
            None => path.to_string(),
        }
    }
}

/// The whole portal.
pub fn app(state: AppState) -> Router {
    let upload_limit = usize::try_from(state.config().max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20);
    let api = Router::new()
        .route(
            "/submissions",
            post(api::submit)
                .get(api::list_submissions)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/submissions/{id}", get(api::get_submission))
        .route("/submissions/{id}/review", post(api::review))
        .route("/certifications", get(api::list_certifications))
        .route("/certifications/export", get(api::export_certifications))
        .route("/certifications/{id}", get(api::get_certification))
        .route("/components/{pci_id}", get(api::get_component))
        .route("/log/head", get(transparency::head))
        .route("/log/key", get(transparency::key))
        .route("/log/entries", get(transparency::entries))
        .route("/log/proof/{n}", get(transparency::proof))
        .route("/log/consistency", get(transparency::consistency))
        .route("/kabi", get(kabi::list))
        .route("/kabi/diff", get(kabi::diff))
        .route(
            "/kabi/{release}/{arch}",
            get(kabi::get_one)
                .put(kabi::put)
                .layer(DefaultBodyLimit::max(kabi::MAX_LIST_BYTES)),
        )
        .route(
            "/kabi/{release}/{arch}/symvers",
            put(kabi::put_symvers).layer(DefaultBodyLimit::max(kabi::MAX_LIST_BYTES)),
        )
        .route("/kabi/{release}/{arch}/allowlist", get(kabi::allowlist))
        .route("/lab/machines", get(lab::api_machines))
        .route("/lab/jobs", get(lab::api_jobs).post(lab::api_submit))
        .route("/lab/runs", get(lab::api_runs))
        .route("/lab/stream", get(lab::api_lab_stream))
        .route("/lab/runs/{id}/events", get(lab::api_events))
        .route("/lab/runs/{id}/events/stream", get(lab::api_stream))
        .route(
            "/kabi/{release}/{arch}/check",
            post(kabi::check).layer(DefaultBodyLimit::max(kabi::MAX_MODULE_BYTES)),
        )
        .fallback(api::not_found);
    Router::new()
        .route("/", get(pages::index))
        .route("/style.css", get(pages::style))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/certifications/{id}", get(pages::certification))
        .route("/certifications/{id}/report", get(pages::report))
        .route("/certifications/{id}/bundle", get(pages::bundle))
        .route("/components/{pci_id}", get(pages::component))
        .route("/log", get(transparency::page))
        .route("/kabi", get(kabi::index_page))
        .route("/kabi/{release}/{arch}", get(kabi::release_page))
        .route(
            "/kabi/{release}/{arch}/check",
            post(kabi::check_form).layer(DefaultBodyLimit::max(
                kabi::MAX_MODULE_BYTES.saturating_add(1 << 20),
            )),
        )
        .route("/lab", get(lab::page))
        .route("/lab.js", get(lab::script))
        .route("/lab/jobs", post(lab::submit_form))
        .route("/lab/runs/{id}", get(lab::run_page))
        .route("/lab/runs/{id}/results.json", get(lab::results))
        .route("/lab/runs/{id}/report.html", get(lab::report))
        .route("/submissions", get(pages::submissions))
        .route("/submissions/{id}", get(pages::submission))
        .route("/submissions/{id}/review", post(pages::review))
        .route(
            "/upload",
            get(pages::upload_form)
                .post(pages::upload)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .nest("/api/v1", api)
        .fallback(pages::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), html_errors))
        .layer(middleware::from_fn_with_state(state.clone(), count_request))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Result<&'static str, WebError> {
    state.store().ping().await?;
    Ok("ok\n")
}

async fn metrics_text(State(state): State<AppState>) -> Result<Response, WebError> {
    let counts = state.store().submission_counts().await?;
    let text = state.metrics().render(&counts);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Counts each request by its route pattern and its status.
async fn count_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(request).await;
    state.metrics().count(&route, response.status().as_u16());
    response
}

/// An error outside `/api` becomes an HTML page.
async fn html_errors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if api {
        return response;
    }
    let Some(body) = response.extensions().get::<ErrorBody>().cloned() else {
        return response;
    };
    let status = response.status();
    let mut ctx = tera::Context::new();
    ctx.insert("status", &status.as_u16());
    ctx.insert("reason", status.canonical_reason().unwrap_or(""));
    ctx.insert("code", body.code);
    ctx.insert("message", &body.message);
    ctx.insert("login", &(status.as_u16() == 401));
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    match state.templates().render("error.html", &ctx) {
        Ok(page) => {
            let mut page = (status, Html(page)).into_response();
            if let Some(v) = retry_after {
                page.headers_mut().insert(header::RETRY_AFTER, v);
            }
            page
        }
        Err(e) => WebError::internal(e).into_response(),
    }
}

/// Headers on every response: a strict CSP (no scripts, no framing),
/// nosniff, no referrer leaks. A response that set its own CSP keeps it.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
            ),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
