//! `/openapi.json`: the OpenAPI 3.1 description of every `/api/v1` route,
//! generated with utoipa from the response types the handlers return
//! (`views.rs`, `kabi::KabiView`, `transparency::KeyView`) and, for the
//! answers built as JSON objects, from the documented shapes below. A test
//! (`web/tests/openapi.rs`) checks that every route of the API router is
//! here, so a route added without its description fails it.

use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::kabi::KabiView;
use crate::lab::views::{EventView, JobView, MachineView, RunView};
use crate::transparency::KeyView;
use crate::views::{
    CertificationList, CertificationView, ChangeView, ComponentView, RecordSummary,
    SubmissionDetail, SubmissionView,
};

/// `{"error": {"code", "message"}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorDoc {
    pub error: ErrorInner,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorInner {
    /// A stable, machine-readable reason.
    pub code: String,
    pub message: String,
}

/// Raw bytes (a bundle, a module).
#[derive(Serialize, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BinaryDoc(Vec<u8>);

/// Every certification that matches, as the JSON export.
#[derive(Serialize, ToSchema)]
pub struct CertificationExport {
    pub items: Vec<CertificationView>,
    pub total: u64,
}

/// A page of submissions.
#[derive(Serialize, ToSchema)]
pub struct SubmissionList {
    pub items: Vec<SubmissionView>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

/// The body of a review.
#[derive(Serialize, ToSchema)]
pub struct ReviewRequestDoc {
    /// `start`, `request_changes`, `approve`, `reject` or `revoke`.
    pub action: String,
    #[schema(default = "")]
    pub comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ComponentUse {
    pub driver: String,
    pub certification: CertificationView,
}

/// A component and the published certifications that hold it.
#[derive(Serialize, ToSchema)]
pub struct ComponentUses {
    pub component: ComponentView,
    pub items: Vec<ComponentUse>,
    pub total: u64,
}

/// A signed tree head (`reports::tlog::TreeHead`).
#[derive(Serialize, ToSchema)]
pub struct TreeHeadDoc {
    pub size: u64,
    /// Hex Merkle root (RFC 9162) of the first `size` entries.
    pub root: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub key_id: String,
    /// Hex Ed25519 signature over `certlab-tlog-v1\nSIZE\nROOT\nTIME\n`.
    pub signature: String,
}

/// A log entry (`reports::tlog::LogEntry`), hashed in canonical JSON.
#[derive(Serialize, ToSchema)]
pub struct LogEntryDoc {
    pub index: u64,
    pub time: String,
    /// `submission/<id>`, `certification/<id>` or `kabi/<release>/<arch>`.
    pub subject: String,
    pub event: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// Hex leaf hash of the entry before (64 zeros for the first).
    pub prev: String,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntries {
    pub size: u64,
    pub from: u64,
    pub to: u64,
    pub entries: Vec<LogEntryDoc>,
}

#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub leaf_hash: String,
    pub root: String,
    pub path: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct KabiRelease {
    pub release: String,
    pub arch: String,
    pub symbols: u64,
    pub updated: String,
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct KabiReleases {
    pub items: Vec<KabiRelease>,
}

#[derive(Serialize, ToSchema)]
pub struct KabiDiff {
    pub from: String,
    pub to: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub crc_changed: Vec<String>,
}

/// The verdict, as `certlab kabi check --format json` writes it.
#[derive(Serialize, ToSchema)]
pub struct KabiCheck {
    pub command: String,
    #[schema(value_type = Vec<Object>)]
    pub inputs: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub kernels: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub modules: Vec<serde_json::Value>,
    #[schema(value_type = Object)]
    pub summary: serde_json::Value,
}

/// The lab's machines, by name.
#[derive(Serialize, ToSchema)]
pub struct MachineList {
    pub items: Vec<MachineView>,
}

/// Jobs, newest first.
#[derive(Serialize, ToSchema)]
pub struct JobList {
    pub items: Vec<JobView>,
}

/// Runs, newest first.
#[derive(Serialize, ToSchema)]
pub struct RunList {
    pub items: Vec<RunView>,
}

/// A run and its stored events.
#[derive(Serialize, ToSchema)]
pub struct RunEvents {
    pub run: RunView,
    /// More events may come: the run goes on, or a job still holds it.
    pub open: bool,
    pub events: Vec<EventView>,
}

/// One server-sent event of a run's stream: a stored event (`id` its
/// sequence number, `data` an `EventView` as JSON, no `event` name), then
/// `event: end` (data: the run id) when the run is over, or `event: failed`
/// when the store could not be read (reconnect with `Last-Event-ID`).
#[derive(Serialize, ToSchema)]
pub struct RunStreamEvent {
    pub id: Option<String>,
    /// `message` (a run event), `end` or `failed`.
    pub event: Option<String>,
    pub data: String,
}

/// One server-sent event of the lab-wide stream: first `event: snapshot`
/// (data a `LabSnapshot`), then `event: machine` (data a `MachineView`)
/// or `event: job` (data a `JobView`) for each machine or job that
/// appeared or changed; `event: failed` when the store could not be read.
/// `id` counts the stream's events; a reconnect starts with a new snapshot.
#[derive(Serialize, ToSchema)]
pub struct LabStreamEvent {
    pub id: String,
    /// `snapshot`, `machine`, `job` or `failed`.
    pub event: String,
    pub data: String,
}

/// A job to queue, as `certlab job submit` takes it.
#[derive(Serialize, ToSchema)]
pub struct JobRequestDoc {
    /// A built-in plan's name (`server-basic`, `server-cert`, `gpu-cert`).
    pub plan: String,
    /// Run on this machine (not with `require`).
    pub machine: Option<String>,
    /// Run on any machine with `KEY=VALUE[,KEY=VALUE…]` (arch, family, tag, pool, name).
    pub require: Option<String>,
    /// 0–100, higher first.
    #[schema(default = 50, minimum = 0, maximum = 100)]
    pub priority: Option<u32>,
}

mod paths {
    #![allow(dead_code)]
    use super::*;

    #[utoipa::path(post, path = "/api/v1/submissions", tag = "submissions",
        request_body(content = BinaryDoc, content_type = "application/octet-stream", description = "a signed bundle (any content type but multipart/form-data, where the field `bundle` holds it)"),
        security(("bearer" = [])),
        responses(
            (status = 201, description = "a new submission", body = SubmissionView),
            (status = 200, description = "the submission of the same bundle", body = SubmissionView),
            (status = 400, body = ErrorDoc), (status = 401, body = ErrorDoc),
            (status = 413, body = ErrorDoc), (status = 422, description = "the bundle is refused, with the reason", body = ErrorDoc),
            (status = 429, description = "too many uploads with this token: retry after `Retry-After` seconds", body = ErrorDoc)))]
    fn submit() {}

    #[utoipa::path(get, path = "/api/v1/submissions", tag = "submissions",
        params(("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
        security(("bearer" = [])),
        responses((status = 200, body = SubmissionList), (status = 400, body = ErrorDoc), (status = 401, body = ErrorDoc)))]
    fn list_submissions() {}

    #[utoipa::path(get, path = "/api/v1/submissions/{id}", tag = "submissions",
        params(("id" = String, Path)),
        security(("bearer" = [])),
        responses((status = 200, body = SubmissionDetail), (status = 401, body = ErrorDoc), (status = 404, body = ErrorDoc)))]
    fn get_submission() {}

    #[utoipa::path(post, path = "/api/v1/submissions/{id}/review", tag = "submissions",
        params(("id" = String, Path)),
        request_body = ReviewRequestDoc,
        security(("bearer" = [])),
        responses((status = 200, body = SubmissionDetail), (status = 400, body = ErrorDoc),
            (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc),
            (status = 404, body = ErrorDoc), (status = 409, body = ErrorDoc)))]
    fn review() {}

    #[utoipa::path(get, path = "/api/v1/certifications", tag = "certifications",
        params(("q" = Option<String>, Query), ("vendor" = Option<String>, Query),
            ("family" = Option<String>, Query), ("arch" = Option<String>, Query),
            ("os" = Option<String>, Query), ("component" = Option<String>, Query),
            ("page" = Option<u32>, Query), ("per_page" = Option<u32>, Query)),
        responses((status = 200, body = CertificationList), (status = 400, body = ErrorDoc)))]
    fn list_certifications() {}

    #[utoipa::path(get, path = "/api/v1/certifications/export", tag = "certifications",
        params(("format" = Option<String>, Query, description = "csv or json"),
            ("q" = Option<String>, Query), ("vendor" = Option<String>, Query),
            ("family" = Option<String>, Query), ("arch" = Option<String>, Query),
            ("os" = Option<String>, Query), ("component" = Option<String>, Query)),
        responses((status = 200, description = "every match", content(
            (CertificationExport = "application/json"), (String = "text/csv"))),
            (status = 400, body = ErrorDoc)))]
    fn export_certifications() {}

    #[utoipa::path(get, path = "/api/v1/certifications/{id}", tag = "certifications",
        params(("id" = String, Path)),
        responses((status = 200, body = CertificationView), (status = 404, body = ErrorDoc)))]
    fn get_certification() {}

    #[utoipa::path(get, path = "/api/v1/components/{pci_id}", tag = "certifications",
        params(("pci_id" = String, Path)),
        responses((status = 200, body = ComponentUses), (status = 404, body = ErrorDoc)))]
    fn get_component() {}

    #[utoipa::path(get, path = "/api/v1/log/head", tag = "log",
        responses((status = 200, body = TreeHeadDoc)))]
    fn log_head() {}

    #[utoipa::path(get, path = "/api/v1/log/key", tag = "log",
        responses((status = 200, body = KeyView)))]
    fn log_key() {}

    #[utoipa::path(get, path = "/api/v1/log/entries", tag = "log",
        params(("from" = Option<u64>, Query), ("to" = Option<u64>, Query)),
        responses((status = 200, body = LogEntries), (status = 400, body = ErrorDoc)))]
    fn log_entries() {}

    #[utoipa::path(get, path = "/api/v1/log/proof/{n}", tag = "log",
        params(("n" = u64, Path), ("size" = Option<u64>, Query)),
        responses((status = 200, body = InclusionProof), (status = 400, body = ErrorDoc), (status = 404, body = ErrorDoc)))]
    fn log_proof() {}

    #[utoipa::path(get, path = "/api/v1/log/consistency", tag = "log",
        params(("from" = u64, Query), ("to" = Option<u64>, Query)),
        responses((status = 200, body = ConsistencyProof), (status = 400, body = ErrorDoc)))]
    fn log_consistency() {}

    #[utoipa::path(get, path = "/api/v1/kabi", tag = "kabi",
        responses((status = 200, body = KabiReleases)))]
    fn kabi_list() {}

    #[utoipa::path(get, path = "/api/v1/kabi/diff", tag = "kabi",
        params(("from" = String, Query, description = "RELEASE/ARCH"), ("to" = String, Query, description = "RELEASE/ARCH")),
        responses((status = 200, body = KabiDiff), (status = 400, body = ErrorDoc), (status = 404, body = ErrorDoc)))]
    fn kabi_diff() {}

    #[utoipa::path(get, path = "/api/v1/kabi/{release}/{arch}", tag = "kabi",
        params(("release" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"), ("arch" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$")),
        responses((status = 200, body = KabiView), (status = 400, body = ErrorDoc), (status = 404, body = ErrorDoc)))]
    fn kabi_get() {}

    #[utoipa::path(put, path = "/api/v1/kabi/{release}/{arch}", tag = "kabi",
        params(("release" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"), ("arch" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"),
            ("format" = Option<String>, Query, description = "rhel, openeuler, android, symvers, json or toml; guessed when absent")),
        request_body(content = String, content_type = "text/plain"),
        security(("bearer" = [])),
        responses((status = 201, body = KabiView), (status = 200, body = KabiView),
            (status = 400, body = ErrorDoc), (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc),
            (status = 413, body = ErrorDoc), (status = 422, body = ErrorDoc)))]
    fn kabi_put() {}

    #[utoipa::path(put, path = "/api/v1/kabi/{release}/{arch}/symvers", tag = "kabi",
        params(("release" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"), ("arch" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$")),
        request_body(content = String, content_type = "text/plain"),
        security(("bearer" = [])),
        responses((status = 200, body = KabiView), (status = 400, body = ErrorDoc),
            (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc), (status = 404, body = ErrorDoc),
            (status = 413, body = ErrorDoc), (status = 422, body = ErrorDoc)))]
    fn kabi_put_symvers() {}

    #[utoipa::path(get, path = "/api/v1/kabi/{release}/{arch}/allowlist", tag = "kabi",
        params(("release" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"), ("arch" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"), ("format" = Option<String>, Query)),
        responses((status = 200, description = "the list in that format", content(
            (Object = "application/json"), (String = "text/plain"))),
            (status = 400, body = ErrorDoc), (status = 404, body = ErrorDoc)))]
    fn kabi_allowlist() {}

    #[utoipa::path(post, path = "/api/v1/kabi/{release}/{arch}/check", tag = "kabi",
        params(("release" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"), ("arch" = String, Path, pattern = "^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}$"), ("name" = Option<String>, Query)),
        request_body(content = BinaryDoc, content_type = "application/octet-stream", description = "a kernel module (.ko, compressed or not)"),
        responses((status = 200, body = KabiCheck), (status = 400, body = ErrorDoc), (status = 404, body = ErrorDoc),
            (status = 409, body = ErrorDoc), (status = 413, body = ErrorDoc), (status = 422, body = ErrorDoc)))]
    fn kabi_check() {}

    #[utoipa::path(get, path = "/api/v1/lab/machines", tag = "lab",
        security(("bearer" = [])),
        responses((status = 200, body = MachineList), (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc)))]
    fn lab_machines() {}

    #[utoipa::path(get, path = "/api/v1/lab/jobs", tag = "lab",
        params(("state" = Option<String>, Query, description = "queued, leased, running, finished, failed or cancelled"),
            ("limit" = Option<u32>, Query, description = "at most this many (default 200, at most 1000)")),
        security(("bearer" = [])),
        responses((status = 200, body = JobList), (status = 400, body = ErrorDoc),
            (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc)))]
    fn lab_jobs() {}

    #[utoipa::path(post, path = "/api/v1/lab/jobs", tag = "lab",
        request_body = JobRequestDoc,
        security(("bearer" = [])),
        responses((status = 201, description = "the queued job", body = JobView), (status = 400, body = ErrorDoc),
            (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc),
            (status = 422, description = "an unknown plan, unreadable requirements, a priority over 100", body = ErrorDoc)))]
    fn lab_submit() {}

    #[utoipa::path(get, path = "/api/v1/lab/runs", tag = "lab",
        security(("bearer" = [])),
        responses((status = 200, body = RunList), (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc)))]
    fn lab_runs() {}

    #[utoipa::path(get, path = "/api/v1/lab/stream", tag = "lab",
        security(("bearer" = [])),
        responses((status = 200, description = "server-sent events: `snapshot` (the machines and newest jobs), then `machine` and `job` for each one that appeared or changed (a new job, job state, machine state or health)", content_type = "text/event-stream", body = LabStreamEvent),
            (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc)))]
    fn lab_live() {}

    #[utoipa::path(get, path = "/api/v1/lab/runs/{id}/events", tag = "lab",
        params(("id" = String, Path), ("after" = Option<u64>, Query, description = "events after this sequence number")),
        security(("bearer" = [])),
        responses((status = 200, body = RunEvents), (status = 400, body = ErrorDoc),
            (status = 401, body = ErrorDoc), (status = 403, body = ErrorDoc), (status = 404, body = ErrorDoc)))]
    fn lab_events() {}

    #[utoipa::path(get, path = "/api/v1/lab/runs/{id}/events/stream", tag = "lab",
        params(("id" = String, Path),
            ("after" = Option<u64>, Query, description = "start after this sequence number (Last-Event-ID wins)"),
            ("Last-Event-ID" = Option<u64>, Header, description = "resume after this event id")),
        security(("bearer" = [])),
        responses((status = 200, description = "server-sent events: one per stored event (`id:` its sequence number, data an EventView), then `event: end` when the run is over", content_type = "text/event-stream", body = RunStreamEvent),
            (status = 400, body = ErrorDoc), (status = 401, body = ErrorDoc),
            (status = 403, body = ErrorDoc), (status = 404, body = ErrorDoc)))]
    fn lab_stream() {}
}

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "certlab portal", description = "Certification submissions, the public list, KABI allowlists, the transparency log, and the lab's orchestrator (for reviewers and admins)."),
    modifiers(&Bearer),
    paths(
        paths::submit, paths::list_submissions, paths::get_submission, paths::review,
        paths::list_certifications, paths::export_certifications, paths::get_certification,
        paths::get_component, paths::log_head, paths::log_key, paths::log_entries,
        paths::log_proof, paths::log_consistency, paths::kabi_list, paths::kabi_diff,
        paths::kabi_get, paths::kabi_put, paths::kabi_put_symvers, paths::kabi_allowlist,
        paths::kabi_check, paths::lab_machines, paths::lab_jobs, paths::lab_submit,
        paths::lab_runs, paths::lab_live, paths::lab_events, paths::lab_stream,
    ),
    components(schemas(ChangeView, RecordSummary, crate::lab::live::LabSnapshot))
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub async fn openapi_json() -> impl IntoResponse {
    Json(ApiDoc::openapi())
}
