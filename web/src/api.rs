//! The JSON API under `/api/v1`.
//!
//! Submissions need a bearer token: vendors see their organisation's,
//! reviewers and admins every one; another organisation's submission is
//! 404, as if it did not exist. Certifications are public.

use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::header::{self, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::auth::ApiUser;
use crate::error::WebError;
use crate::review::ReviewAction;
use crate::store::{CertQuery, Submission, User};
use crate::submit::{self, Source};
use crate::views::{
    csv_record, CertificationList, CertificationView, ChangeView, ComponentView, RecordSummary,
    SubmissionDetail, SubmissionView, CSV_COLUMNS,
};
use crate::AppState;

/// The most submissions one list answers.
const LIST_LIMIT: u32 = 500;
/// The most rows an export holds.
pub const EXPORT_LIMIT: u32 = 10_000;

pub async fn not_found() -> WebError {
    WebError::not_found("no such API route")
}

/// `POST /api/v1/submissions`: a raw tar body, or `multipart/form-data`
/// with the bundle in the field `bundle`. 201 with the new submission, or
/// 200 with the existing one for a bundle submitted before.
pub async fn submit(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    request: Request,
) -> Result<Response, WebError> {
    state
        .limiters()
        .upload(&crate::ratelimit::bearer_digest(request.headers()))?;
    // a body announced over the limit is refused before it is read
    let max = state.config().max_upload_bytes;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max.saturating_add(1 << 20)) {
        return Err(WebError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("bundle refused: over the limit of {max} bytes"),
        ));
    }
    let multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let (submission, created) = if multipart {
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| WebError::bad_request("bad_form", e.body_text()))?;
        loop {
            let field = form
                .next_field()
                .await
                .map_err(|e| WebError::bad_request("bad_form", e.body_text()))?
                .ok_or_else(|| {
                    WebError::bad_request("bad_form", "no field `bundle` in the form")
                })?;
            if field.name() == Some("bundle") {
                break submit::receive(&state, &user, Source::Field(Box::new(field))).await?;
            }
        }
    } else {
        submit::receive(&state, &user, Source::Body(request.into_body())).await?
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let view = SubmissionView::new(&state, &submission);
    Ok((status, Json(view)).into_response())
}

/// A submission the user may see: their organisation's, or any for a reviewer.
async fn visible_submission(
    state: &AppState,
    user: &User,
    id: &str,
) -> Result<Submission, WebError> {
    let found = state.store().submission(id).await?;
    match found {
        Some(s) if user.role.reviews() || s.org_id == user.org_id => Ok(s),
        _ => Err(WebError::not_found(format!("submission {id} not found"))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PageQuery {
    pub page: u32,
    pub per_page: u32,
}

/// `GET /api/v1/submissions?page=&per_page=`: the caller's organisation's,
/// or every one for a reviewer; `{"items", "total", "page", "per_page"}`.
pub async fn list_submissions(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    q: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, WebError> {
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let page = q.page.max(1);
    let per_page = match q.per_page {
        0 => 50,
        n => n.min(LIST_LIMIT),
    };
    let org = (!user.role.reviews()).then_some(user.org_id.as_str());
    let (items, total) = state.store().list_submissions(org, page, per_page).await?;
    let items: Vec<SubmissionView> = items
        .iter()
        .map(|s| SubmissionView::new(&state, s))
        .collect();
    Ok(Json(serde_json::json!({
        "items": items, "total": total, "page": page, "per_page": per_page,
    })))
}

pub async fn submission_detail(
    state: &AppState,
    s: &Submission,
) -> Result<SubmissionDetail, WebError> {
    let record = state.store().submission_record(&s.id).await?;
    let changes = state.store().changes(&s.id).await?;
    Ok(SubmissionDetail {
        submission: SubmissionView::new(state, s),
        results: RecordSummary::new(&record),
        history: changes.iter().map(ChangeView::from).collect(),
    })
}

pub async fn get_submission(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<String>,
) -> Result<Json<SubmissionDetail>, WebError> {
    let s = visible_submission(&state, &user, &id).await?;
    Ok(Json(submission_detail(&state, &s).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub action: String,
    #[serde(default)]
    pub comment: String,
}

/// Applies a review action for `user`: reviewers and admins only; a vendor
/// gets 404 for another organisation's submission and 403 for their own.
pub async fn apply_review(
    state: &AppState,
    user: &User,
    id: &str,
    action: &str,
    comment: &str,
) -> Result<Submission, WebError> {
    let submission = visible_submission(state, user, id).await?;
    if !user.role.reviews() {
        return Err(WebError::forbidden("only reviewers review submissions"));
    }
    let action = ReviewAction::parse(action).ok_or_else(|| {
        WebError::bad_request(
            "bad_action",
            format!(
                "unknown action {action:?}: expected start, request_changes, approve, reject or revoke"
            ),
        )
    })?;
    if comment.len() > 10_000 {
        return Err(WebError::bad_request(
            "bad_comment",
            "the comment is over 10,000 bytes",
        ));
    }
    let done = state
        .store()
        .review(&submission.id, user, action, comment, state.now())
        .await?;
    Ok(done)
}

pub async fn review(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<String>,
    body: Result<Json<ReviewRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<SubmissionDetail>, WebError> {
    // authorization before the body is looked at
    visible_submission(&state, &user, &id).await?;
    let Json(req) = body.map_err(|e| WebError::bad_request("bad_json", e.body_text()))?;
    let s = apply_review(&state, &user, &id, &req.action, &req.comment).await?;
    Ok(Json(submission_detail(&state, &s).await?))
}

fn query_of(
    q: Result<Query<CertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<CertQuery, WebError> {
    q.map(|Query(q)| q)
        .map_err(|e| WebError::bad_request("bad_query", e.body_text()))
}

pub async fn list_certifications(
    State(state): State<AppState>,
    q: Result<Query<CertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<CertificationList>, WebError> {
    let q = query_of(q)?;
    let (items, total) = state.store().search(&q).await?;
    let (page, per_page) = q.page_bounds();
    Ok(Json(CertificationList {
        items: items
            .iter()
            .map(|c| CertificationView::new(&state, c, None))
            .collect(),
        total,
        page,
        per_page,
    }))
}

#[derive(Debug, Deserialize)]
pub struct ExportFormat {
    #[serde(default)]
    pub format: String,
}

/// `GET /api/v1/certifications/export?format=csv|json&…filters`: every
/// match (up to 10,000), as a download.
pub async fn export_certifications(
    State(state): State<AppState>,
    format: Result<Query<ExportFormat>, axum::extract::rejection::QueryRejection>,
    q: Result<Query<CertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let format = format
        .map_err(|e| WebError::bad_request("bad_query", e.body_text()))?
        .0
        .format;
    let mut q = query_of(q)?;
    let mut views = Vec::new();
    q.per_page = crate::store::MAX_PER_PAGE;
    q.page = 1;
    loop {
        let (items, total) = state.store().search(&q).await?;
        let done = items.is_empty() || u64::from(q.page * q.per_page) >= total;
        views.extend(
            items
                .iter()
                .map(|c| CertificationView::new(&state, c, None)),
        );
        if done || views.len() >= EXPORT_LIMIT as usize {
            break;
        }
        q.page += 1;
    }
    match format.as_str() {
        "csv" => {
            let mut out = csv_record(&CSV_COLUMNS);
            for v in &views {
                out.push_str(&csv_record(&v.csv_fields()));
            }
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"certifications.csv\"",
                    ),
                ],
                out,
            )
                .into_response())
        }
        "json" | "" => Ok((
            [(
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"certifications.json\"",
            )],
            Json(serde_json::json!({ "items": views, "total": views.len() })),
        )
            .into_response()),
        other => Err(WebError::bad_request(
            "bad_format",
            format!("unknown export format {other:?}: expected csv or json"),
        )),
    }
}

pub async fn get_certification(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CertificationView>, WebError> {
    let detail = state
        .store()
        .certification(&id)
        .await?
        .ok_or_else(|| WebError::not_found(format!("certification {id} not found")))?;
    Ok(Json(CertificationView::detail(&state, &detail)))
}

/// `GET /api/v1/components/{pci_id}`: the component and the published
/// certifications it is part of.
pub async fn get_component(
    State(state): State<AppState>,
    Path(pci_id): Path<String>,
) -> Result<Json<serde_json::Value>, WebError> {
    let uses = state.store().component_uses(&pci_id).await?;
    let first = uses
        .first()
        .ok_or_else(|| WebError::not_found(format!("no certification holds component {pci_id}")))?;
    let component = ComponentView::new(&state, &first.component);
    let items: Vec<serde_json::Value> = uses
        .iter()
        .map(|u| {
            serde_json::json!({
                "driver": u.component.driver,
                "certification": CertificationView::new(&state, &u.certification, None),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({
        "component": component,
        "items": items,
        "total": items.len(),
    })))
}
