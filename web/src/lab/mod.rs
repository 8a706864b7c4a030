//! The lab dashboard: the orchestrator's machines (state and health), jobs
//! (with why they wait), runs with their events — stored, then live as
//! server-sent events — with machines and jobs updated live (one lab-wide
//! stream, [`live`]), and a form that queues a job as `certlab job
//! submit` does; a `certlab lab daemon` on the same database carries it out.
//!
//! Everything is read from and written to the lab's tables of the portal's
//! database through the harness's [`certlab_harness::Store`]
//! ([`crate::PortalStore::lab`]). Only lab operators — reviewers and admins
//! ([`crate::Role::operates_lab`]) — see the lab; vendors are refused (403),
//! since its machines and jobs concern other organisations' hardware.
//! Pages use the session (forms its CSRF token); the API a bearer token,
//! and its reads also the session, for the page's `EventSource`.

pub mod live;
mod stream;
pub mod views;

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Json;
use certlab_harness::lifecycle::{JobStateKind, Requirements};
use certlab_harness::{JobRow, NewJob, RunDetail};
use certlab_suites::plan::BUILTIN_PLANS;
use certlab_suites::Plan;
use serde::Deserialize;

use crate::auth::{lab_forbidden, ApiUser, LabReader, Viewer};
use crate::error::WebError;
use crate::store::User;
use crate::AppState;
use views::{EventView, JobView, MachineView, RunView};

pub use stream::POLL;

/// Jobs on the dashboard and, by default, in the API's list.
const JOBS_SHOWN: u32 = 200;
/// The most jobs one API list answers.
const MAX_JOBS: u32 = 1_000;
/// Runs on the dashboard and in the API's list.
const RUNS_SHOWN: u32 = 50;
/// The most events one answer (page or API) holds; the stream goes on from there.
const MAX_EVENTS: u32 = 5_000;

/// The logged-in user of a page, if they operate the lab.
fn operator(viewer: &Viewer) -> Result<&User, WebError> {
    let user = viewer.require()?;
    if user.role.operates_lab() {
        Ok(user)
    } else {
        Err(lab_forbidden())
    }
}

/// What a job is queued with, from the form or the API.
#[derive(Debug, Deserialize)]
pub struct JobRequest {
    /// A built-in plan's name.
    pub plan: String,
    /// Run on this machine…
    #[serde(default)]
    pub machine: Option<String>,
    /// …or on any machine with `KEY=VALUE[,KEY=VALUE…]` (arch, family,
    /// tag, pool, name); neither: any machine.
    #[serde(default)]
    pub require: Option<String>,
    /// 0–100, higher first; 50 when not given.
    #[serde(default)]
    pub priority: Option<u32>,
}

/// Queues a job as `certlab job submit` does (the same [`NewJob::of_plan`]
/// and [`certlab_harness::Store::submit_job`]), submitted by `user`.
async fn queue(state: &AppState, user: &User, req: &JobRequest) -> Result<JobRow, WebError> {
    // only built-in plans: a path would read a file of the portal's host
    if !BUILTIN_PLANS.iter().any(|(name, _)| *name == req.plan) {
        let names: Vec<&str> = BUILTIN_PLANS.iter().map(|(n, _)| *n).collect();
        return Err(WebError::rejected(
            "unknown_plan",
            format!(
                "plan {:?} is not a built-in plan ({})",
                req.plan,
                names.join(", ")
            ),
        ));
    }
    let plan = Plan::load(&req.plan).map_err(WebError::internal)?;
    let machine = req.machine.as_deref().map(str::trim).unwrap_or_default();
    let require = req.require.as_deref().map(str::trim).unwrap_or_default();
    let requirements = match (machine, require) {
        ("", "") => Requirements::default(),
        (m, "") => Requirements {
            name: Some(m.to_string()),
            ..Requirements::default()
        },
        ("", r) => Requirements::parse(r)
            .map_err(|e| WebError::rejected("bad_requirements", e.to_string()))?,
        _ => {
            return Err(WebError::rejected(
                "bad_requirements",
                "give a machine or requirements, not both",
            ))
        }
    };
    let priority = req.priority.unwrap_or(50);
    let priority = u8::try_from(priority)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or_else(|| {
            WebError::rejected(
                "bad_priority",
                format!("priority {priority} is not within 0–100"),
            )
        })?;
    let job = NewJob::of_plan(&plan, None, requirements, priority, &user.email);
    let lab = state.store().lab();
    lab.submit_job(&job, state.now()).await?;
    tracing::info!(job = %job.id, plan = %job.plan, by = %user.email, "job queued from the portal");
    lab.job(&job.id)
        .await?
        .ok_or_else(|| WebError::internal(format!("job {} vanished after its submission", job.id)))
}

/// A run by its exact id.
async fn run_detail(state: &AppState, id: &str) -> Result<RunDetail, WebError> {
    match state.store().lab().get_run(id).await {
        Ok(Some(d)) if d.run.id == id => Ok(d),
        // a prefix of ids is for the CLI; here a run is named in full
        Ok(_) | Err(certlab_harness::StoreError::Ambiguous { .. }) => {
            Err(WebError::not_found(format!("run {id} not found")))
        }
        Err(e) => Err(e.into()),
    }
}

fn path_id(p: Result<Path<String>, PathRejection>) -> Result<String, WebError> {
    let Path(id) = p.map_err(|e| WebError::bad_request("bad_path", e.body_text()))?;
    Ok(id)
}

// ---- pages ----

/// `GET /lab`: machines, jobs, recent runs, and the form that queues a job.
pub async fn page(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, WebError> {
    operator(&viewer)?;
    let lab = state.store().lab();
    let machines: Vec<MachineView> = lab
        .machines()
        .await?
        .iter()
        .map(|m| MachineView::new(&state, m))
        .collect();
    let jobs: Vec<JobView> = lab
        .recent_jobs(None, JOBS_SHOWN)
        .await?
        .iter()
        .map(|j| JobView::new(&state, j))
        .collect();
    let runs: Vec<RunView> = lab
        .list_runs(RUNS_SHOWN)
        .await?
        .iter()
        .map(|r| RunView::new(&state, r))
        .collect();
    let plans: Vec<&str> = BUILTIN_PLANS.iter().map(|(n, _)| *n).collect();
    let mut ctx = crate::pages::context(&viewer);
    ctx.insert("machines", &machines);
    ctx.insert("jobs", &jobs);
    ctx.insert("jobs_shown", &JOBS_SHOWN);
    ctx.insert("runs", &runs);
    ctx.insert("plans", &plans);
    crate::pages::render(&state, "lab.html", &ctx)
}

#[derive(Debug, Deserialize)]
pub struct JobForm {
    pub csrf: String,
    pub plan: String,
    #[serde(default)]
    pub machine: String,
    #[serde(default)]
    pub require: String,
    pub priority: u32,
}

/// `POST /lab/jobs`: the form queues a job, then back to `/lab`.
pub async fn submit_form(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Result<Form<JobForm>, FormRejection>,
) -> Result<Response, WebError> {
    let user = operator(&viewer)?;
    let Form(form) = form.map_err(|e| WebError::bad_request("bad_form", e.body_text()))?;
    viewer.check_csrf(&form.csrf)?;
    let req = JobRequest {
        plan: form.plan,
        machine: Some(form.machine),
        require: Some(form.require),
        priority: Some(form.priority),
    };
    queue(&state, user, &req).await?;
    Ok(Redirect::to("/lab").into_response())
}

/// `GET /lab/runs/{id}`: the run, its stored events, the live tail
/// (`lab.js`), and its results once it has them.
pub async fn run_page(
    State(state): State<AppState>,
    viewer: Viewer,
    p: Result<Path<String>, PathRejection>,
) -> Result<Html<String>, WebError> {
    operator(&viewer)?;
    let id = path_id(p)?;
    let d = run_detail(&state, &id).await?;
    let lab = state.store().lab();
    let events: Vec<EventView> = lab
        .events_after(&id, None, Some(MAX_EVENTS))
        .await?
        .iter()
        .map(EventView::new)
        .collect();
    let open = lab.run_open(&id).await?.unwrap_or(false);
    let mut ctx = crate::pages::context(&viewer);
    ctx.insert("run", &RunView::new(&state, &d.run));
    // the live tail starts after the last event shown
    let after = events.last().map(|e| format!("?after={}", e.seq));
    ctx.insert("after_query", &after.unwrap_or_default());
    ctx.insert("events", &events);
    ctx.insert("open", &open);
    ctx.insert("cases", &d.cases.len());
    ctx.insert("has_record", &d.record.is_some());
    ctx.insert("out_dir", &d.run.out_dir);
    crate::pages::render(&state, "lab_run.html", &ctx)
}

/// A finished run's record, for an operator; 404 while it has none.
async fn run_record(
    state: &AppState,
    viewer: &Viewer,
    p: Result<Path<String>, PathRejection>,
) -> Result<certlab_reports::RunRecord, WebError> {
    operator(viewer)?;
    let id = path_id(p)?;
    run_detail(state, &id)
        .await?
        .record
        .ok_or_else(|| WebError::not_found(format!("run {id} has no results yet")))
}

/// `GET /lab/runs/{id}/results.json`: the run's record as the lab store keeps it.
pub async fn results(
    State(state): State<AppState>,
    viewer: Viewer,
    p: Result<Path<String>, PathRejection>,
) -> Result<Response, WebError> {
    let record = run_record(&state, &viewer, p).await?;
    Ok(Json(record).into_response())
}

/// `GET /lab/runs/{id}/report.html`: the record's HTML report, sandboxed
/// like a certification's report.
pub async fn report(
    State(state): State<AppState>,
    viewer: Viewer,
    p: Result<Path<String>, PathRejection>,
) -> Result<Response, WebError> {
    let record = run_record(&state, &viewer, p).await?;
    let html = certlab_reports::report_html(&record).map_err(WebError::internal)?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'none'",
        ),
    );
    Ok((headers, html).into_response())
}

/// `GET /lab.js`: the run page's live tail (the portal's only script).
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../templates/lab.js"),
    )
        .into_response()
}

// ---- API ----

/// `GET /api/v1/lab/machines`: `{"items": [machine]}`, by name.
pub async fn api_machines(
    State(state): State<AppState>,
    _: LabReader,
) -> Result<Json<serde_json::Value>, WebError> {
    let items: Vec<MachineView> = state
        .store()
        .lab()
        .machines()
        .await?
        .iter()
        .map(|m| MachineView::new(&state, m))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct JobsQuery {
    pub state: Option<String>,
    pub limit: Option<u32>,
}

/// `GET /api/v1/lab/jobs?state=&limit=`: `{"items": [job]}`, newest first.
pub async fn api_jobs(
    State(state): State<AppState>,
    _: LabReader,
    q: Result<Query<JobsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, WebError> {
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let kind = match q.state.as_deref() {
        None | Some("") => None,
        Some(s) => Some(JobStateKind::parse(s).ok_or_else(|| {
            WebError::bad_request(
                "bad_query",
                format!(
                    "state {s:?}: expected queued, leased, running, finished, failed or cancelled"
                ),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(JOBS_SHOWN).clamp(1, MAX_JOBS);
    let items: Vec<JobView> = state
        .store()
        .lab()
        .recent_jobs(kind, limit)
        .await?
        .iter()
        .map(|j| JobView::new(&state, j))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// `POST /api/v1/lab/jobs`: queues a job; 201 with it.
pub async fn api_submit(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    body: Result<Json<JobRequest>, JsonRejection>,
) -> Result<Response, WebError> {
    if !user.role.operates_lab() {
        return Err(lab_forbidden());
    }
    let Json(req) = body.map_err(|e| WebError::bad_request("bad_body", e.body_text()))?;
    let job = queue(&state, &user, &req).await?;
    Ok((StatusCode::CREATED, Json(JobView::new(&state, &job))).into_response())
}

/// `GET /api/v1/lab/runs`: `{"items": [run]}`, the newest first.
pub async fn api_runs(
    State(state): State<AppState>,
    _: LabReader,
) -> Result<Json<serde_json::Value>, WebError> {
    let items: Vec<RunView> = state
        .store()
        .lab()
        .list_runs(RUNS_SHOWN)
        .await?
        .iter()
        .map(|r| RunView::new(&state, r))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AfterQuery {
    /// Events after this sequence number (none: from the first).
    pub after: Option<u64>,
}

/// `GET /api/v1/lab/runs/{id}/events?after=`: `{"run", "open", "events"}`
/// — `open`: more events may come.
pub async fn api_events(
    State(state): State<AppState>,
    _: LabReader,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<AfterQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, WebError> {
    let id = path_id(p)?;
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let d = run_detail(&state, &id).await?;
    let lab = state.store().lab();
    let open = lab.run_open(&id).await?.unwrap_or(false);
    let events: Vec<EventView> = lab
        .events_after(&id, q.after, Some(MAX_EVENTS))
        .await?
        .iter()
        .map(EventView::new)
        .collect();
    Ok(Json(serde_json::json!({
        "run": RunView::new(&state, &d.run),
        "open": open,
        "events": events,
    })))
}

/// `GET /api/v1/lab/stream`: the lab's machines and jobs as server-sent
/// events — a `snapshot`, then each change (see [`live`]).
pub async fn api_lab_stream(State(state): State<AppState>, _: LabReader) -> Response {
    live::follow(state).await.into_response()
}

/// `GET /api/v1/lab/runs/{id}/events/stream`: the run's events as
/// server-sent events, after `Last-Event-ID` (or `?after=`), until the run
/// is over (see [`stream`]).
pub async fn api_stream(
    State(state): State<AppState>,
    _: LabReader,
    headers: HeaderMap,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<AfterQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let id = path_id(p)?;
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    // a reconnecting browser sends the last id it saw: it wins over the
    // position the page started from
    let after = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                WebError::bad_request(
                    "bad_last_event_id",
                    "Last-Event-ID is not an event sequence number",
                )
            })?,
        None => q.after,
    };
    let lab = state.store().lab();
    if lab.run_open(&id).await?.is_none() {
        return Err(WebError::not_found(format!("run {id} not found")));
    }
    Ok(stream::follow(lab.clone(), id, after).into_response())
}
