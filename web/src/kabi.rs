//! KABI allowlists per OS release and architecture: admins upload them in
//! any format `certlab kabi allowlist` reads, everyone reads them back in
//! any format, diffs two releases, and checks a driver (`.ko`) against a
//! release — the kabi engine's `Checker` with the release's Module.symvers
//! and its allowlist, answered as `certlab kabi check --format json` does.

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use certlab_kabi::{Allowlist, Checker, Kernel, Limits, ListFormat, Module, ModuleReport, Symvers};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{ApiUser, Viewer};
use crate::error::WebError;
use crate::store::{KabiList, NewKabi, Role};
use crate::AppState;

/// The largest allowlist or Module.symvers accepted.
pub const MAX_LIST_BYTES: usize = 64 << 20;
/// The largest module accepted for a check.
pub const MAX_MODULE_BYTES: usize = 64 << 20;

const FORMATS: &str = "rhel, openeuler, android, symvers, json, toml";

fn too_large(what: &str, max: usize) -> WebError {
    WebError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("{what} refused: over the limit of {max} bytes"),
    )
}

fn body(b: Result<Bytes, BytesRejection>, what: &str, max: usize) -> Result<Bytes, WebError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(what, max)
        } else {
            WebError::bad_request("bad_body", e.body_text())
        }
    })
}

/// A release or arch name: 1 to 64 of `A-Za-z0-9._+-`, not starting with a dot.
fn check_name(kind: &str, name: &str) -> Result<(), WebError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(WebError::bad_request(
            "bad_name",
            format!("{kind} {name:?}: expected 1 to 64 of A-Z a-z 0-9 . _ + -"),
        ))
    }
}

fn release_path(
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<(String, String), WebError> {
    let Path((release, arch)) = p.map_err(|e| WebError::bad_request("bad_path", e.body_text()))?;
    check_name("release", &release)?;
    check_name("arch", &arch)?;
    Ok((release, arch))
}

fn list_format(name: &str) -> Result<ListFormat, WebError> {
    ListFormat::parse(name).ok_or_else(|| {
        WebError::bad_request(
            "bad_format",
            format!("format {name:?}: expected one of {FORMATS}"),
        )
    })
}

fn format_name(f: ListFormat) -> &'static str {
    match f {
        ListFormat::Rhel => "rhel",
        ListFormat::OpenEuler => "openeuler",
        ListFormat::Android => "android",
        ListFormat::Symvers => "symvers",
        ListFormat::Json => "json",
        ListFormat::Toml => "toml",
    }
}

#[derive(Debug, Deserialize)]
pub struct FormatQuery {
    format: Option<String>,
}

/// What the API says of a stored allowlist.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KabiView {
    pub release: String,
    pub arch: String,
    pub symbols: u64,
    pub source_format: String,
    pub sha256: String,
    /// Whether drivers can be checked: a Module.symvers (or the allowlist's CRCs) is stored.
    pub checkable: bool,
    pub symvers_sha256: Option<String>,
    pub updated: String,
    pub updated_by: String,
    pub url: String,
}

fn view(state: &AppState, k: &KabiList) -> KabiView {
    KabiView {
        release: k.release.clone(),
        arch: k.arch.clone(),
        symbols: k.symbols,
        source_format: k.source_format.clone(),
        sha256: k.sha256.clone(),
        checkable: k.symvers.is_some(),
        symvers_sha256: k.symvers_sha256.clone(),
        updated: crate::store::ts(k.updated),
        updated_by: k.updated_by.clone(),
        url: state.link(&format!("/kabi/{}/{}", k.release, k.arch)),
    }
}

fn admin(user: &crate::store::User) -> Result<(), WebError> {
    if user.role == Role::Admin {
        Ok(())
    } else {
        Err(WebError::forbidden("only admins upload KABI allowlists"))
    }
}

fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, WebError> {
    std::str::from_utf8(bytes)
        .map_err(|e| WebError::rejected("bad_allowlist", format!("{what} is not UTF-8 text: {e}")))
}

/// `PUT /api/v1/kabi/{release}/{arch}[?format=]`: an allowlist in any
/// format `certlab kabi allowlist` reads (guessed when `format` is not
/// given), replacing the release's. A Module.symvers-format list is also
/// what drivers are checked against; so are the CRCs of a certlab-format
/// list that records one for every symbol. 201 the first time, then 200.
pub async fn put(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<FormatQuery>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    admin(&user)?;
    let (release, arch) = release_path(p)?;
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let bytes = body(b, "allowlist", MAX_LIST_BYTES)?;
    let text = utf8(&bytes, "the allowlist")?;
    let format = match q.format.as_deref() {
        Some(f) => list_format(f)?,
        None => ListFormat::sniff("", text),
    };
    let shown = format!("allowlist of {release}/{arch}");
    let mut list = Allowlist::import(text, format, &shown)
        .map_err(|e| WebError::rejected("bad_allowlist", e.to_string()))?;
    if list.symbols.is_empty() {
        return Err(WebError::rejected(
            "bad_allowlist",
            format!("{shown}: no symbols"),
        ));
    }
    list.release = Some(release.clone());
    list.arch = Some(arch.clone());
    let symvers = match format {
        ListFormat::Symvers => Some(text.to_string()),
        _ if list.symbols.iter().all(|s| !s.crcs.is_empty()) => {
            Some(list.export(ListFormat::Symvers))
        }
        _ => None,
    };
    let json = serde_json::to_string(&list).map_err(WebError::internal)?;
    let sha = certlab_reports::sha256_hex(&bytes);
    let created = state
        .store()
        .put_kabi(
            &NewKabi {
                release: &release,
                arch: &arch,
                source_format: format_name(format),
                sha256: &sha,
                symbols: list.symbols.len() as u64,
                allowlist_json: &json,
                symvers: symvers.as_deref(),
            },
            &user,
            state.now(),
        )
        .await?;
    let stored = stored(&state, &release, &arch).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(&state, &stored))).into_response())
}

/// `PUT /api/v1/kabi/{release}/{arch}/symvers`: the release's
/// Module.symvers (text), which drivers are checked against.
pub async fn put_symvers(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    p: Result<Path<(String, String)>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<KabiView>, WebError> {
    admin(&user)?;
    let (release, arch) = release_path(p)?;
    let bytes = body(b, "Module.symvers", MAX_LIST_BYTES)?;
    let shown = format!("Module.symvers of {release}/{arch}");
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        WebError::rejected("bad_symvers", format!("{shown} is not UTF-8 text: {e}"))
    })?;
    let parsed = Symvers::parse(text, &shown)
        .map_err(|e| WebError::rejected("bad_symvers", e.to_string()))?;
    if parsed.is_empty() {
        return Err(WebError::rejected(
            "bad_symvers",
            format!("{shown}: no exports"),
        ));
    }
    state
        .store()
        .put_kabi_symvers(&release, &arch, text, &user, state.now())
        .await?;
    Ok(Json(view(&state, &stored(&state, &release, &arch).await?)))
}

async fn stored(state: &AppState, release: &str, arch: &str) -> Result<KabiList, WebError> {
    state
        .store()
        .kabi(release, arch)
        .await?
        .ok_or_else(|| WebError::not_found(format!("no KABI allowlist for {release}/{arch}")))
}

fn parse_list(k: &KabiList) -> Result<Allowlist, WebError> {
    serde_json::from_str(&k.allowlist_json).map_err(|e| {
        WebError::internal(format!(
            "stored allowlist of {}/{} is not readable: {e}",
            k.release, k.arch
        ))
    })
}

/// `GET /api/v1/kabi`: every release's list, without its symbols.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, WebError> {
    let items: Vec<Value> = state
        .store()
        .kabi_releases()
        .await?
        .into_iter()
        .map(|(release, arch, symbols, updated)| {
            serde_json::json!({
                "release": release, "arch": arch, "symbols": symbols,
                "updated": crate::store::ts(updated),
                "url": state.link(&format!("/kabi/{release}/{arch}")),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "items": items })))
}

/// `GET /api/v1/kabi/{release}/{arch}`: what is stored.
pub async fn get_one(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<KabiView>, WebError> {
    let (release, arch) = release_path(p)?;
    Ok(Json(view(&state, &stored(&state, &release, &arch).await?)))
}

/// `GET /api/v1/kabi/{release}/{arch}/allowlist?format=`: the list in
/// `format` (default json).
pub async fn allowlist(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<FormatQuery>, QueryRejection>,
) -> Result<Response, WebError> {
    let (release, arch) = release_path(p)?;
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let format = list_format(q.format.as_deref().unwrap_or("json"))?;
    let list = parse_list(&stored(&state, &release, &arch).await?)?;
    let content_type = match format {
        ListFormat::Json => "application/json",
        _ => "text/plain; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], list.export(format)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    from: String,
    to: String,
}

fn split_release(s: &str, which: &str) -> Result<(String, String), WebError> {
    let (r, a) = s.rsplit_once('/').ok_or_else(|| {
        WebError::bad_request("bad_query", format!("{which}={s:?}: expected RELEASE/ARCH"))
    })?;
    check_name("release", r)?;
    check_name("arch", a)?;
    Ok((r.to_string(), a.to_string()))
}

/// `GET /api/v1/kabi/diff?from=R1/A&to=R2/A`: symbols added, removed, and
/// with changed CRCs.
pub async fn diff(
    State(state): State<AppState>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<Value>, WebError> {
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let (r1, a1) = split_release(&q.from, "from")?;
    let (r2, a2) = split_release(&q.to, "to")?;
    let old = parse_list(&stored(&state, &r1, &a1).await?)?;
    let new = parse_list(&stored(&state, &r2, &a2).await?)?;
    let d = old.diff(&new);
    Ok(Json(serde_json::json!({
        "from": q.from, "to": q.to, "added": d.added, "removed": d.removed,
        "crc_changed": d.crc_changed,
    })))
}

/// The verdict on `module` (bytes of a `.ko`, compressed or not) against a
/// release: the JSON of `certlab kabi check --format json`.
fn verdict(k: &KabiList, name: &str, module: &[u8]) -> Result<(Value, bool), WebError> {
    let symvers = k.symvers.as_deref().ok_or_else(|| {
        WebError::conflict(format!(
            "{}/{} has no Module.symvers to check against: an admin uploads it \
             (PUT /api/v1/kabi/{}/{}/symvers)",
            k.release, k.arch, k.release, k.arch
        ))
    })?;
    let list = parse_list(k)?;
    let source = format!("{}/{}/Module.symvers", k.release, k.arch);
    let symvers = Symvers::parse(symvers, &source).map_err(WebError::internal)?;
    let mut kernel = Kernel::from_symvers(format!("{}/{}", k.release, k.arch), symvers);
    kernel.release = Some(k.release.clone());
    kernel.arch = Some(k.arch.clone());
    let module_sha = certlab_reports::sha256_hex(module);
    let module = Module::parse_with(module, name, &Limits::DEFAULT)
        .map_err(|e| WebError::rejected("bad_module", e.to_string()))?;
    let checked = [module];
    let reports: Vec<ModuleReport> = Checker::new(&kernel)
        .with_allowlist(&list)
        .check_all(&checked);
    let incompatible = reports.iter().filter(|r| !r.compatible).count();
    let out = serde_json::json!({
        "command": "kabi check",
        "inputs": [
            { "path": source, "sha256": k.symvers_sha256 },
            { "path": format!("{}/{}/allowlist", k.release, k.arch), "sha256": k.sha256 },
            { "path": name, "sha256": module_sha },
        ],
        "kernels": [{
            "name": kernel.name, "release": kernel.release, "arch": kernel.arch,
            "vermagic": kernel.vermagic, "modversions": kernel.modversions(),
            "exports": kernel.symvers.len(), "sources": kernel.sources,
        }],
        "modules": reports,
        "summary": {
            "checks": reports.len(), "compatible": reports.len() - incompatible,
            "incompatible": incompatible,
        },
    });
    Ok((out, incompatible == 0))
}

/// `POST /api/v1/kabi/{release}/{arch}/check`: a `.ko` as the raw body
/// (`?name=` names it in the report; default `module.ko`). 200 with the
/// verdict either way: `summary.incompatible` says which.
pub async fn check(
    State(state): State<AppState>,
    p: Result<Path<(String, String)>, PathRejection>,
    q: Result<Query<NameQuery>, QueryRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, WebError> {
    let (release, arch) = release_path(p)?;
    let Query(q) = q.map_err(|e| WebError::bad_request("bad_query", e.body_text()))?;
    let name = module_name(q.name.as_deref())?;
    let bytes = body(b, "module", MAX_MODULE_BYTES)?;
    let k = stored(&state, &release, &arch).await?;
    let (out, _) = verdict(&k, &name, &bytes)?;
    Ok(Json(out))
}

#[derive(Debug, Deserialize)]
pub struct NameQuery {
    name: Option<String>,
}

/// A module's file name as reports show it: a plain file name.
fn module_name(name: Option<&str>) -> Result<String, WebError> {
    let name = name.unwrap_or("module.ko");
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    if base.is_empty() || base.len() > 200 || base.chars().any(char::is_control) {
        return Err(WebError::bad_request(
            "bad_name",
            format!("module name {name:?}: expected a file name"),
        ));
    }
    Ok(base.to_string())
}

/// `GET /kabi`: the releases with an allowlist.
pub async fn index_page(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, WebError> {
    let items: Vec<Value> = state
        .store()
        .kabi_releases()
        .await?
        .into_iter()
        .map(|(release, arch, symbols, updated)| {
            serde_json::json!({
                "release": release, "arch": arch, "symbols": symbols,
                "updated": crate::store::ts(updated),
            })
        })
        .collect();
    let mut ctx = crate::pages::context(&viewer);
    ctx.insert("items", &items);
    render(&state, "kabi_index.html", &ctx)
}

fn render(state: &AppState, name: &str, ctx: &tera::Context) -> Result<Html<String>, WebError> {
    state
        .templates()
        .render(name, ctx)
        .map(Html)
        .map_err(|e| WebError::internal(format!("render {name}: {e:?}")))
}

fn release_context(
    state: &AppState,
    viewer: &Viewer,
    k: &KabiList,
) -> Result<tera::Context, WebError> {
    let list = parse_list(k)?;
    let mut ctx = crate::pages::context(viewer);
    ctx.insert("kabi", &view(state, k));
    let symbols: Vec<Value> = list
        .symbols
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "module": s.module.as_deref().unwrap_or(""),
                "crc": s.crcs.first().map(|c| c.crc.as_str()).unwrap_or(""),
            })
        })
        .collect();
    ctx.insert("symbols", &symbols);
    Ok(ctx)
}

/// `GET /kabi/{release}/{arch}`: the list, downloads, and the check form.
pub async fn release_page(
    State(state): State<AppState>,
    viewer: Viewer,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Result<Html<String>, WebError> {
    let (release, arch) = release_path(p)?;
    let k = stored(&state, &release, &arch).await?;
    let ctx = release_context(&state, &viewer, &k)?;
    render(&state, "kabi.html", &ctx)
}

/// `POST /kabi/{release}/{arch}/check`: the form's upload (field `module`)
/// → the release's page with the verdict. Changes nothing, so it needs no
/// session or CSRF token.
pub async fn check_form(
    State(state): State<AppState>,
    viewer: Viewer,
    p: Result<Path<(String, String)>, PathRejection>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Html<String>, WebError> {
    let (release, arch) = release_path(p)?;
    let mut form = form.map_err(|e| WebError::bad_request("bad_form", e.body_text()))?;
    let (name, bytes) = loop {
        let field = form
            .next_field()
            .await
            .map_err(|e| WebError::bad_request("bad_form", e.body_text()))?
            .ok_or_else(|| WebError::bad_request("bad_form", "no field `module` in the form"))?;
        if field.name() == Some("module") {
            let name = module_name(field.file_name())?;
            let bytes = field.bytes().await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large("module", MAX_MODULE_BYTES)
                } else {
                    WebError::bad_request("bad_form", e.body_text())
                }
            })?;
            break (name, bytes);
        }
    };
    let k = stored(&state, &release, &arch).await?;
    let (out, compatible) = verdict(&k, &name, &bytes)?;
    let mut ctx = release_context(&state, &viewer, &k)?;
    ctx.insert("checked", &name);
    ctx.insert("compatible", &compatible);
    ctx.insert("report", &out["modules"][0]);
    render(&state, "kabi.html", &ctx)
}
