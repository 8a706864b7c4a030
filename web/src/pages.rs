//! The HTML pages: the public list and its search, a page per
//! certification and per component, login, the submissions of the logged-in
//! user with the review form for reviewers, and the upload form. Plain
//! forms, no scripts; every form that changes something carries a CSRF token.

use axum::body::{Body, Bytes};
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Multipart, Path, Query, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use certlab_reports::ArtifactRef;
use serde::Deserialize;
use tokio::io::AsyncReadExt;

use crate::api::{apply_review, submission_detail};
use crate::auth::{self, Viewer, LOGIN_CSRF_COOKIE, SESSION_COOKIE};
use crate::error::WebError;
use crate::ratelimit::ClientAddr;
use crate::store::CertQuery;
use crate::submit::{self, Source};
use crate::views::{CertificationView, ComponentView, SubmissionView};
use crate::AppState;

const TEMPLATES: [(&str, &str); 15] = [
    ("base.html", include_str!("../templates/base.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("index.html", include_str!("../templates/index.html")),
    (
        "certification.html",
        include_str!("../templates/certification.html"),
    ),
    (
        "component.html",
        include_str!("../templates/component.html"),
    ),
    ("login.html", include_str!("../templates/login.html")),
    (
        "submissions.html",
        include_str!("../templates/submissions.html"),
    ),
    (
        "submission.html",
        include_str!("../templates/submission.html"),
    ),
    ("upload.html", include_str!("../templates/upload.html")),
    ("log.html", include_str!("../templates/log.html")),
    ("kabi.html", include_str!("../templates/kabi.html")),
    (
        "kabi_index.html",
        include_str!("../templates/kabi_index.html"),
    ),
    ("style.css", include_str!("../templates/style.css")),
    ("lab.html", include_str!("../templates/lab.html")),
    ("lab_run.html", include_str!("../templates/lab_run.html")),
];

/// The compiled templates (HTML ones autoescaped).
pub fn templates() -> Result<tera::Tera, WebError> {
    let mut tera = tera::Tera::default();
    tera.add_raw_templates(TEMPLATES.to_vec())
        .map_err(|e| WebError::internal(format!("templates: {e:?}")))?;
    Ok(tera)
}

pub(crate) fn render(
    state: &AppState,
    name: &str,
    ctx: &tera::Context,
) -> Result<Html<String>, WebError> {
    state
        .templates()
        .render(name, ctx)
        .map(Html)
        .map_err(|e| WebError::internal(format!("render {name}: {e:?}")))
}

/// A context with what every page shows: who is logged in, and the CSRF
/// token of the logout form.
pub(crate) fn context(viewer: &Viewer) -> tera::Context {
    let mut ctx = tera::Context::new();
    if let Some(u) = &viewer.user {
        ctx.insert("me", &serde_json::json!({
            "email": u.email, "org": u.org_name, "role": u.role.as_str(), "reviews": u.role.reviews(),
            "lab": u.role.operates_lab(),
        }));
    }
    ctx.insert("csrf", viewer.csrf.as_deref().unwrap_or(""));
    ctx
}

fn form_error(e: FormRejection) -> WebError {
    WebError::bad_request("bad_form", e.body_text())
}

pub async fn not_found() -> WebError {
    WebError::not_found("no such page")
}

pub async fn style(State(state): State<AppState>) -> Result<Response, WebError> {
    let css = state
        .templates()
        .render("style.css", &tera::Context::new())
        .map_err(WebError::internal)?;
    Ok(([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response())
}

pub async fn index(
    State(state): State<AppState>,
    viewer: Viewer,
    q: Result<Query<CertQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Html<String>, WebError> {
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let (items, total) = state.store().search(&q).await?;
    let (page, per_page) = q.page_bounds();
    let items: Vec<CertificationView> = items
        .iter()
        .map(|c| CertificationView::new(&state, c, None))
        .collect();
    let mut ctx = context(&viewer);
    ctx.insert("items", &items);
    ctx.insert("total", &total);
    ctx.insert("q", &q);
    ctx.insert("page", &page);
    ctx.insert("has_prev", &(page > 1));
    ctx.insert("has_next", &(u64::from(page) * u64::from(per_page) < total));
    let filters = [
        ("q", &q.q),
        ("vendor", &q.vendor),
        ("family", &q.family),
        ("arch", &q.arch),
        ("os", &q.os),
        ("component", &q.component),
    ];
    let query_string: String = filters
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}&", url_encode(v)))
        .collect();
    ctx.insert("query_string", &query_string);
    render(&state, "index.html", &ctx)
}

/// Percent-encoding of a query value (RFC 3986 unreserved kept).
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub async fn certification(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let detail = state
        .store()
        .certification(&id)
        .await?
        .ok_or_else(|| WebError::not_found(format!("certification {id} not found")))?;
    let mut ctx = context(&viewer);
    ctx.insert("c", &CertificationView::detail(&state, &detail));
    render(&state, "certification.html", &ctx)
}

/// Streams a stored artifact.
async fn artifact(state: &AppState, sha256: &str) -> Result<Body, WebError> {
    let path = state.artifacts().path_of(&ArtifactRef {
        sha256: sha256.to_string(),
        size: 0,
    });
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| WebError::internal(format!("artifact {}: {e}", path.display())))?;
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(Body::from_stream(stream))
}

/// The certification's `report.html` as submitted: sandboxed, with only its
/// inline styles allowed.
pub async fn report(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let cert = state
        .store()
        .certification(&id)
        .await?
        .ok_or_else(|| WebError::not_found(format!("certification {id} not found")))?
        .certification;
    let body = artifact(&state, &cert.report_sha256).await?;
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
    Ok((headers, body).into_response())
}

/// The signed bundle, as submitted.
pub async fn bundle(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let cert = state
        .store()
        .certification(&id)
        .await?
        .ok_or_else(|| WebError::not_found(format!("certification {id} not found")))?
        .certification;
    let body = artifact(&state, &cert.bundle_sha256).await?;
    let disposition = format!("attachment; filename=\"certlab-{}.tar\"", cert.id);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(WebError::internal)?,
    );
    Ok((headers, body).into_response())
}

pub async fn component(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(pci_id): Path<String>,
) -> Result<Html<String>, WebError> {
    let uses = state.store().component_uses(&pci_id).await?;
    let first = uses
        .first()
        .ok_or_else(|| WebError::not_found(format!("no certification holds component {pci_id}")))?;
    let mut ctx = context(&viewer);
    ctx.insert("component", &ComponentView::new(&state, &first.component));
    let items: Vec<serde_json::Value> = uses
        .iter()
        .map(|u| {
            serde_json::json!({
                "driver": u.component.driver,
                "c": CertificationView::new(&state, &u.certification, None),
            })
        })
        .collect();
    ctx.insert("items", &items);
    render(&state, "component.html", &ctx)
}

pub async fn login_form(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Response, WebError> {
    let token = auth::new_secret("");
    let mut ctx = context(&viewer);
    ctx.insert("login_csrf", &token);
    let page = render(&state, "login.html", &ctx)?;
    let cookie = auth::set_cookie(&state, LOGIN_CSRF_COOKIE, &token, 3600);
    Ok(([(header::SET_COOKIE, cookie)], page).into_response())
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub email: String,
    pub password: String,
    pub csrf: String,
}

pub async fn login(
    State(state): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, WebError> {
    let Form(form) = form.map_err(form_error)?;
    let cookie_csrf = auth::cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or("");
    if cookie_csrf.is_empty() || !auth::same_secret(cookie_csrf, &form.csrf) {
        return Err(WebError::forbidden(
            "the login form's CSRF token does not match: reload the login page",
        ));
    }
    state.limiters().login(&form.email, &client)?;
    let user = state.store().user_by_email(&form.email).await?;
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = form.password.clone();
    // an unknown email costs one verification too, so timing does not tell
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => auth::verify_password(&password, &h),
        None => {
            auth::verify_password(&password, auth::unusable_hash());
            false
        }
    })
    .await
    .map_err(WebError::internal)?;
    let Some(user) = user.filter(|_| ok) else {
        return Err(WebError::unauthorized("wrong email or password"));
    };
    let session = auth::new_secret("");
    let csrf = auth::new_secret("");
    let now = state.now();
    let ttl = state.config().session_ttl;
    state
        .store()
        .create_session(&auth::sha256_hex(&session), &user.id, &csrf, now, now + ttl)
        .await?;
    let mut response = Redirect::to("/submissions").into_response();
    let h = response.headers_mut();
    let set = auth::set_cookie(&state, SESSION_COOKIE, &session, ttl.whole_seconds());
    h.append(header::SET_COOKIE, set.parse().map_err(WebError::internal)?);
    let clear = auth::set_cookie(&state, LOGIN_CSRF_COOKIE, "", 0);
    h.append(
        header::SET_COOKIE,
        clear.parse().map_err(WebError::internal)?,
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

pub async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, WebError> {
    viewer.require()?;
    let Form(form) = form.map_err(form_error)?;
    viewer.check_csrf(&form.csrf)?;
    if let Some(session) = &viewer.session {
        state.store().delete_session(session).await?;
    }
    let clear = auth::set_cookie(&state, SESSION_COOKIE, "", 0);
    Ok(([(header::SET_COOKIE, clear)], Redirect::to("/")).into_response())
}

pub async fn submissions(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, WebError> {
    let user = viewer.require()?;
    let org = (!user.role.reviews()).then_some(user.org_id.as_str());
    let (items, _) = state.store().list_submissions(org, 1, 500).await?;
    let items: Vec<SubmissionView> = items
        .iter()
        .map(|s| SubmissionView::new(&state, s))
        .collect();
    let mut ctx = context(&viewer);
    ctx.insert("items", &items);
    render(&state, "submissions.html", &ctx)
}

pub async fn submission(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, WebError> {
    let user = viewer.require()?;
    let s = state.store().submission(&id).await?;
    let s = match s {
        Some(s) if user.role.reviews() || s.org_id == user.org_id => s,
        _ => return Err(WebError::not_found(format!("submission {id} not found"))),
    };
    let detail = submission_detail(&state, &s).await?;
    let actions: Vec<&str> = crate::review::ALL_ACTIONS
        .iter()
        .filter(|a| user.role.reviews() && crate::review::next(s.state, **a).is_ok())
        .map(|a| a.as_str())
        .collect();
    let mut ctx = context(&viewer);
    ctx.insert("s", &detail);
    ctx.insert("actions", &actions);
    render(&state, "submission.html", &ctx)
}

#[derive(Debug, Deserialize)]
pub struct ReviewForm {
    pub csrf: String,
    pub action: String,
    #[serde(default)]
    pub comment: String,
}

pub async fn review(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    form: Result<Form<ReviewForm>, FormRejection>,
) -> Result<Response, WebError> {
    let user = viewer.require()?;
    let Form(form) = form.map_err(form_error)?;
    viewer.check_csrf(&form.csrf)?;
    let s = apply_review(&state, user, &id, &form.action, &form.comment).await?;
    Ok(Redirect::to(&format!("/submissions/{}", s.id)).into_response())
}

pub async fn upload_form(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, WebError> {
    viewer.require()?;
    let mut ctx = context(&viewer);
    ctx.insert("max_bytes", &state.config().max_upload_bytes);
    render(&state, "upload.html", &ctx)
}

/// The upload form: the field `csrf` first, then the file in `bundle`.
pub async fn upload(
    State(state): State<AppState>,
    viewer: Viewer,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let user = viewer.require()?.clone();
    state
        .limiters()
        .upload(viewer.session.as_deref().unwrap_or_default())?;
    let mut form = form.map_err(|e| WebError::bad_request("bad_form", e.body_text()))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        WebError::bad_request("bad_form", e.body_text())
    };
    let mut csrf_ok = false;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        match field.name() {
            Some("csrf") => {
                let sent = field.text().await.map_err(bad)?;
                viewer.check_csrf(&sent)?;
                csrf_ok = true;
            }
            Some("bundle") if csrf_ok => {
                // a bundle sent before leads to its existing submission
                let (s, _created) =
                    submit::receive(&state, &user, Source::Field(Box::new(field))).await?;
                return Ok((
                    StatusCode::SEE_OTHER,
                    [(header::LOCATION, format!("/submissions/{}", s.id))],
                )
                    .into_response());
            }
            Some("bundle") => {
                return Err(WebError::forbidden(
                    "the form's CSRF token must come before the file",
                ))
            }
            _ => {}
        }
    }
    Err(WebError::bad_request(
        "bad_form",
        "no file in the field `bundle`",
    ))
}
