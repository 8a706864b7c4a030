//! A Redfish BMC replayed from a recorded tree.
//!
//! The tree is in DMTF mockup layout: `DIR/index.json` is `/redfish/v1`,
//! `DIR/A/B/index.json` is `/redfish/v1/A/B`. On top of the recording the
//! server keeps state:
//! - `ComputerSystem.Reset` changes `PowerState` after a configurable delay,
//!   showing `PoweringOn`/`PoweringOff` meanwhile;
//! - the system event log grows when events are injected
//!   ([`Replay::inject_event`]) and empties on `LogService.ClearLog`; a
//!   system without any LogService gets an empty `SEL` one;
//! - `PATCH` merges into the resource (boot override and the like);
//! - optional basic auth (plus Redfish sessions), optional TLS with a
//!   self-signed certificate made at start;
//! - scripted faults: the next N requests answer a given HTTP status, or
//!   stall without answering.
//!
//! Used by tests, demos and `certlab lab replay-bmc`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

use super::Health;
use crate::inventory::Secret;

/// How the replay server behaves.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Time between a `ComputerSystem.Reset` and the new `PowerState`.
    pub power_delay: Duration,
    /// Basic-auth credentials; `None`: no authentication.
    pub auth: Option<(String, Secret)>,
    /// Serve HTTPS with a self-signed certificate for 127.0.0.1/localhost.
    pub tls: bool,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            power_delay: Duration::from_secs(2),
            auth: None,
            tls: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a redfish tree (no index.json at its top)")]
    NotATree { path: PathBuf },
    #[error("tls: {0}")]
    Tls(String),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// A loaded tree and its live state. Cheap to clone (shared state).
#[derive(Clone)]
pub struct Replay {
    state: Arc<ReplayState>,
    tls: Option<Arc<TlsIdentity>>,
}

struct TlsIdentity {
    cert_der: Vec<u8>,
    cert_pem: String,
    config: Arc<rustls::ServerConfig>,
}

struct ReplayState {
    opts: ReplayOptions,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Normalized path (no trailing slash) → resource.
    res: HashMap<String, Value>,
    /// System path → a pending power change.
    pending: HashMap<String, Pending>,
    sessions: HashMap<String, String>,
    next_session: u64,
    faults: VecDeque<Fault>,
    requests: u64,
}

#[derive(Clone, Copy)]
struct Pending {
    at: Instant,
    to: &'static str,
    via: &'static str,
}

/// A scripted fault for the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status (and a Redfish error body).
    Status(u16),
    /// Do not answer for this long, then close.
    Stall(Duration),
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

fn norm(path: &str) -> String {
    let p = path.split(['?', '#']).next().unwrap_or(path);
    let p = p.trim_end_matches('/');
    if p.is_empty() {
        "/".to_string()
    } else {
        p.to_string()
    }
}

fn odata_id(v: &Value) -> Option<&str> {
    v.get("@odata.id").and_then(Value::as_str)
}

impl Replay {
    /// Reads every `index.json` under `tree`.
    pub fn load(tree: &Path, opts: ReplayOptions) -> Result<Replay, ReplayError> {
        if !tree.join("index.json").is_file() {
            return Err(ReplayError::NotATree {
                path: tree.to_path_buf(),
            });
        }
        let mut res = HashMap::new();
        let mut stack = vec![(tree.to_path_buf(), String::from("/redfish/v1"))];
        while let Some((dir, url)) = stack.pop() {
            let rd = std::fs::read_dir(&dir).map_err(|source| ReplayError::Io {
                path: dir.clone(),
                source,
            })?;
            for entry in rd.flatten() {
                let p = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if p.is_dir() {
                    stack.push((p, format!("{url}/{name}")));
                } else if name == "index.json" {
                    let text = std::fs::read_to_string(&p).map_err(|source| ReplayError::Io {
                        path: p.clone(),
                        source,
                    })?;
                    match serde_json::from_str::<Value>(&text) {
                        Ok(v) => {
                            res.insert(norm(&url), v);
                        }
                        Err(e) => {
                            tracing::warn!(file = %p.display(), error = %e, "replay: skipping unreadable json")
                        }
                    }
                }
            }
        }
        let mut inner = Inner {
            res,
            ..Inner::default()
        };
        add_missing_sel(&mut inner);
        let tls = if opts.tls {
            Some(Arc::new(self_signed()?))
        } else {
            None
        };
        Ok(Replay {
            state: Arc::new(ReplayState {
                opts,
                inner: Mutex::new(inner),
            }),
            tls,
        })
    }

    /// The axum app (no socket; TLS is the listener's business).
    pub fn router(&self) -> Router {
        Router::new()
            .fallback(handle)
            .with_state(self.state.clone())
    }

    /// The self-signed certificate (DER) when serving TLS.
    pub fn cert_der(&self) -> Option<&[u8]> {
        self.tls.as_ref().map(|t| t.cert_der.as_slice())
    }

    /// The self-signed certificate (PEM) when serving TLS.
    pub fn cert_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.cert_pem.as_str())
    }

    /// SHA-256 of the certificate's DER, for `tls = { pin_sha256 = … }`.
    pub fn cert_sha256(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        self.cert_der().map(|d| sha2::Sha256::digest(d).into())
    }

    /// Makes the next requests fail, one fault each, in order.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        if let Ok(mut g) = self.state.inner.lock() {
            g.faults.extend(faults);
        }
    }

    /// Requests served so far (faulted ones included).
    pub fn request_count(&self) -> u64 {
        self.state.inner.lock().map(|g| g.requests).unwrap_or(0)
    }

    /// The `@odata.id`s of every ComputerSystem.
    pub fn systems(&self) -> Vec<String> {
        let Ok(g) = self.state.inner.lock() else {
            return Vec::new();
        };
        members(&g.res, &systems_collection(&g.res))
    }

    /// Appends an event to the system event log of the first system (the
    /// log a client picks: see [`super::redfish`]). Returns the entry's id.
    pub fn inject_event(
        &self,
        severity: Health,
        sensor_type: &str,
        message: &str,
    ) -> Option<String> {
        let mut g = self.state.inner.lock().ok()?;
        let entries = sel_entries_of_first_system(&g.res)?;
        let existing = members(&g.res, &entries);
        let next = existing
            .iter()
            .filter_map(|m| {
                m.trim_end_matches('/')
                    .rsplit('/')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap_or(0)
            .max(inline_max_id(&g.res, &entries))
            + 1;
        let id = next.to_string();
        let uri = format!("{entries}/{id}");
        let sev = match severity {
            Health::Ok => "OK",
            Health::Warning => "Warning",
            Health::Critical => "Critical",
            Health::Unknown => "OK",
        };
        let created = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let entry = json!({
            "@odata.id": uri,
            "@odata.type": "#LogEntry.v1_4_0.LogEntry",
            "Id": id,
            "Name": format!("Log Entry {id}"),
            "EntryType": "SEL",
            "Severity": sev,
            "Created": created,
            "SensorType": sensor_type,
            "Message": message,
        });
        g.res.insert(norm(&uri), entry);
        if let Some(coll) = g.res.get_mut(&norm(&entries)) {
            push_member(coll, &uri);
        }
        Some(id)
    }

    /// Serves on `listener` until the task is dropped or fails.
    pub async fn run(self, listener: TcpListener) -> Result<(), ReplayError> {
        let app = self.router();
        match &self.tls {
            None => axum::serve(listener, app).await.map_err(ReplayError::Serve),
            Some(t) => {
                let l = TlsListener {
                    tcp: listener,
                    acceptor: tokio_rustls::TlsAcceptor::from(t.config.clone()),
                };
                axum::serve(l, app).await.map_err(ReplayError::Serve)
            }
        }
    }
}

/// Loads `tree` and serves it on `listener` (see [`Replay`]).
pub async fn serve(
    tree: PathBuf,
    listener: TcpListener,
    opts: ReplayOptions,
) -> Result<(), ReplayError> {
    Replay::load(&tree, opts)?.run(listener).await
}

fn systems_collection(res: &HashMap<String, Value>) -> String {
    res.get("/redfish/v1")
        .and_then(|r| r.get("Systems"))
        .and_then(odata_id)
        .map(norm)
        .unwrap_or_else(|| "/redfish/v1/Systems".to_string())
}

fn members(res: &HashMap<String, Value>, coll: &str) -> Vec<String> {
    res.get(&norm(coll))
        .and_then(|c| c.get("Members"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(odata_id).map(str::to_string).collect())
        .unwrap_or_default()
}

fn inline_max_id(res: &HashMap<String, Value>, coll: &str) -> u64 {
    res.get(&norm(coll))
        .and_then(|c| c.get("Members"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("Id")?.as_str()?.parse::<u64>().ok())
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn push_member(coll: &mut Value, uri: &str) {
    if let Some(obj) = coll.as_object_mut() {
        let m = obj.entry("Members").or_insert_with(|| json!([]));
        if let Some(a) = m.as_array_mut() {
            a.push(json!({ "@odata.id": uri }));
        }
        let n = m.as_array().map(Vec::len).unwrap_or(0);
        obj.insert("Members@odata.count".to_string(), json!(n));
    }
}

/// Same preference as the client: the service with `Id` SEL first, then
/// one of SEL type or name, then event logs, then any log service with
/// entries; the system's before the managers'.
pub(crate) fn sel_score(s: &Value) -> i32 {
    let id = s
        .get("Id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    let name = s
        .get("Name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    let kind = s.get("LogEntryType").and_then(Value::as_str).unwrap_or("");
    if id == "sel" {
        4
    } else if kind == "SEL" || name.contains("sel") {
        3
    } else if id.contains("event") || name.contains("event") {
        2
    } else if s.get("Entries").is_some() {
        1
    } else {
        0
    }
}

fn sel_entries_of_first_system(res: &HashMap<String, Value>) -> Option<String> {
    let sys_uri = members(res, &systems_collection(res)).into_iter().next()?;
    let sys = res.get(&norm(&sys_uri))?;
    let mut owners = vec![sys.clone()];
    let managers = res
        .get("/redfish/v1")
        .and_then(|r| r.get("Managers"))
        .and_then(odata_id)
        .map(norm)
        .unwrap_or_else(|| "/redfish/v1/Managers".to_string());
    for m in members(res, &managers) {
        if let Some(v) = res.get(&norm(&m)) {
            owners.push(v.clone());
        }
    }
    let mut best: Option<(i32, String)> = None;
    for o in owners {
        let Some(ls) = o.get("LogServices").and_then(odata_id) else {
            continue;
        };
        let Some(coll) = res.get(&norm(ls)) else {
            continue;
        };
        for m in coll
            .get("Members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let svc = match odata_id(m) {
                Some(u) if m.as_object().is_some_and(|o| o.len() <= 2) => {
                    res.get(&norm(u)).cloned()
                }
                _ => Some(m.clone()),
            };
            let Some(svc) = svc else { continue };
            let sc = sel_score(&svc);
            let entries = svc
                .get("Entries")
                .and_then(odata_id)
                .map(norm)
                .or_else(|| odata_id(&svc).map(|s| format!("{}/Entries", norm(s))));
            if let Some(e) = entries {
                if sc > 0 && best.as_ref().is_none_or(|(b, _)| sc > *b) {
                    best = Some((sc, e));
                }
            }
        }
    }
    best.map(|(_, e)| e)
}

/// When no system or manager has an event log, gives every system without
/// a LogServices link an empty `SEL` service.
fn add_missing_sel(g: &mut Inner) {
    if sel_entries_of_first_system(&g.res).is_some() {
        // A manager (or the system) already has an event log.
        return;
    }
    let systems = members(&g.res, &systems_collection(&g.res));
    for s in systems {
        let key = norm(&s);
        let Some(sys) = g.res.get(&key) else { continue };
        let linked = sys
            .get("LogServices")
            .and_then(odata_id)
            .is_some_and(|ls| g.res.contains_key(&norm(ls)));
        if linked {
            continue;
        }
        let ls = format!("{key}/LogServices");
        let sel = format!("{ls}/SEL");
        let entries = format!("{sel}/Entries");
        g.res.insert(
            ls.clone(),
            json!({"@odata.id": ls, "@odata.type": "#LogServiceCollection.LogServiceCollection",
                   "Name": "Log Services", "Members": [{"@odata.id": sel}], "Members@odata.count": 1}),
        );
        g.res.insert(
            sel.clone(),
            json!({"@odata.id": sel, "@odata.type": "#LogService.v1_1_0.LogService", "Id": "SEL",
                   "Name": "System Event Log", "LogEntryType": "SEL",
                   "Entries": {"@odata.id": entries},
                   "Actions": {"#LogService.ClearLog": {"target": format!("{sel}/Actions/LogService.ClearLog")}}}),
        );
        g.res.insert(
            entries.clone(),
            json!({"@odata.id": entries, "@odata.type": "#LogEntryCollection.LogEntryCollection",
                   "Name": "Log Entries", "Members": [], "Members@odata.count": 0}),
        );
        if let Some(obj) = g.res.get_mut(&key).and_then(Value::as_object_mut) {
            obj.insert("LogServices".to_string(), json!({ "@odata.id": ls }));
        }
    }
}

fn redfish_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"code": "Base.1.8.GeneralError", "message": message,
        "@Message.ExtendedInfo": [{"MessageId": "Base.1.8.GeneralError", "Message": message}]}});
    json_response(status, &body)
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert("OData-Version", HeaderValue::from_static("4.0"));
    r
}

fn authorized(st: &ReplayState, g: &Inner, headers: &HeaderMap) -> bool {
    let Some((user, pass)) = &st.opts.auth else {
        return true;
    };
    if let Some(t) = headers.get("X-Auth-Token").and_then(|v| v.to_str().ok()) {
        return g.sessions.contains_key(t);
    }
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    else {
        return false;
    };
    use base64::Engine;
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(auth.trim()) else {
        return false;
    };
    let Ok(raw) = String::from_utf8(raw) else {
        return false;
    };
    raw.split_once(':')
        .is_some_and(|(u, p)| u == user && p == pass.expose())
}

/// Applies pending power changes that are due; sets transitional states.
fn settle_power(g: &mut Inner) {
    let now = Instant::now();
    let due: Vec<(String, Pending)> = g.pending.iter().map(|(k, p)| (k.clone(), *p)).collect();
    for (sys, p) in due {
        let state = if now >= p.at {
            g.pending.remove(&sys);
            p.to
        } else {
            p.via
        };
        if let Some(obj) = g.res.get_mut(&sys).and_then(Value::as_object_mut) {
            obj.insert("PowerState".to_string(), json!(state));
        }
    }
}

async fn handle(
    State(st): State<Arc<ReplayState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = norm(uri.path());
    let fault = {
        let Ok(mut g) = st.inner.lock() else {
            return redfish_error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
        };
        g.requests += 1;
        g.faults.pop_front()
    };
    match fault {
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return redfish_error(status, "injected fault");
        }
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(d).await;
            return redfish_error(StatusCode::GATEWAY_TIMEOUT, "stalled");
        }
        None => {}
    }
    let Ok(mut g) = st.inner.lock() else {
        return redfish_error(StatusCode::INTERNAL_SERVER_ERROR, "state poisoned");
    };
    let body: Option<Value> = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return redfish_error(StatusCode::BAD_REQUEST, &format!("malformed json: {e}"))
            }
        }
    };
    // Session login needs no credentials in headers.
    if method == Method::POST && path.ends_with("/SessionService/Sessions") {
        return create_session(&st, &mut g, body.as_ref());
    }
    let public = method == Method::GET && (path == "/redfish/v1" || path == "/redfish");
    if !public && !authorized(&st, &g, &headers) {
        let mut r = redfish_error(StatusCode::UNAUTHORIZED, "authentication required");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"redfish\""),
        );
        return r;
    }
    settle_power(&mut g);
    match method {
        Method::GET | Method::HEAD => {
            if path == "/redfish" {
                return json_response(StatusCode::OK, &json!({"v1": "/redfish/v1/"}));
            }
            match g.res.get(&path) {
                Some(v) => json_response(StatusCode::OK, v),
                None => redfish_error(StatusCode::NOT_FOUND, &format!("{path} not found")),
            }
        }
        Method::PATCH => {
            let Some(patch) = body else {
                return redfish_error(StatusCode::BAD_REQUEST, "empty patch");
            };
            match g.res.get_mut(&path) {
                Some(v) => {
                    merge(v, &patch);
                    let v = v.clone();
                    json_response(StatusCode::OK, &v)
                }
                None => redfish_error(StatusCode::NOT_FOUND, &format!("{path} not found")),
            }
        }
        Method::POST => post_action(&st, &mut g, &path, body.as_ref()),
        Method::DELETE if path.contains("/SessionService/Sessions/") => {
            let id = path.rsplit('/').next().unwrap_or("").to_string();
            g.sessions.retain(|_, v| *v != id);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => redfish_error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
    }
}

fn create_session(st: &ReplayState, g: &mut Inner, body: Option<&Value>) -> Response {
    let user = body.and_then(|b| b.get("UserName")).and_then(Value::as_str);
    let pass = body.and_then(|b| b.get("Password")).and_then(Value::as_str);
    let ok = match &st.opts.auth {
        None => true,
        Some((u, p)) => user == Some(u.as_str()) && pass == Some(p.expose()),
    };
    if !ok {
        return redfish_error(StatusCode::UNAUTHORIZED, "invalid credentials");
    }
    g.next_session += 1;
    let id = g.next_session.to_string();
    let token = format!("replay-{}-{}", id, g.requests);
    g.sessions.insert(token.clone(), id.clone());
    let loc = format!("/redfish/v1/SessionService/Sessions/{id}");
    let mut r = json_response(
        StatusCode::CREATED,
        &json!({"@odata.id": loc, "Id": id, "UserName": user}),
    );
    if let Ok(v) = HeaderValue::from_str(&token) {
        r.headers_mut().insert("X-Auth-Token", v);
    }
    if let Ok(v) = HeaderValue::from_str(&loc) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn post_action(st: &ReplayState, g: &mut Inner, path: &str, body: Option<&Value>) -> Response {
    if let Some(owner) = path.strip_suffix("/Actions/ComputerSystem.Reset") {
        let owner = norm(owner);
        if !g.res.contains_key(&owner) {
            return redfish_error(StatusCode::NOT_FOUND, &format!("{owner} not found"));
        }
        let reset = body
            .and_then(|b| b.get("ResetType"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let (via, to) = match reset {
            "On" | "ForceOn" | "PushPowerButton" => ("PoweringOn", "On"),
            "ForceOff" | "GracefulShutdown" => ("PoweringOff", "Off"),
            "ForceRestart" | "GracefulRestart" | "PowerCycle" | "Nmi" => ("PoweringOn", "On"),
            other => {
                return redfish_error(
                    StatusCode::BAD_REQUEST,
                    &format!("unsupported ResetType {other:?}"),
                )
            }
        };
        let delay = st.opts.power_delay;
        if delay.is_zero() {
            if let Some(obj) = g.res.get_mut(&owner).and_then(Value::as_object_mut) {
                obj.insert("PowerState".to_string(), json!(to));
            }
        } else {
            g.pending.insert(
                owner.clone(),
                Pending {
                    at: Instant::now() + delay,
                    to,
                    via,
                },
            );
            settle_power(g);
        }
        return StatusCode::NO_CONTENT.into_response();
    }
    if let Some(svc) = path.strip_suffix("/Actions/LogService.ClearLog") {
        let svc = norm(svc);
        let entries = g
            .res
            .get(&svc)
            .and_then(|s| s.get("Entries"))
            .and_then(odata_id)
            .map(norm)
            .unwrap_or_else(|| format!("{svc}/Entries"));
        let old = members(&g.res, &entries);
        for m in old {
            g.res.remove(&norm(&m));
        }
        return match g.res.get_mut(&entries).and_then(Value::as_object_mut) {
            Some(obj) => {
                obj.insert("Members".to_string(), json!([]));
                obj.insert("Members@odata.count".to_string(), json!(0));
                StatusCode::NO_CONTENT.into_response()
            }
            None => redfish_error(StatusCode::NOT_FOUND, &format!("{svc} not found")),
        };
    }
    if path.contains("/Actions/") {
        return StatusCode::NO_CONTENT.into_response();
    }
    redfish_error(StatusCode::METHOD_NOT_ALLOWED, "post not supported here")
}

/// JSON merge patch (RFC 7396).
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn self_signed() -> Result<TlsIdentity, ReplayError> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .map_err(|e| ReplayError::Tls(e.to_string()))?;
    let cert_der = ck.cert.der().to_vec();
    let cert_pem = ck.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        ck.key_pair.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(super::redfish::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ReplayError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert_der.clone())],
            key,
        )
        .map_err(|e| ReplayError::Tls(e.to_string()))?;
    Ok(TlsIdentity {
        cert_der,
        cert_pem,
        config: Arc::new(config),
    })
}

/// A TCP listener that completes the TLS handshake before handing the
/// connection to axum. Handshakes run one at a time with a 5 s bound: fine
/// for a test and demo BMC.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::debug!(error = %e, "replay: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::debug!(error = %e, %addr, "replay: tls handshake failed"),
                Err(_) => tracing::debug!(%addr, "replay: tls handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patch_sets_and_removes() {
        let mut v = json!({"Boot": {"BootSourceOverrideTarget": "None", "X": 1}, "Keep": true});
        merge(
            &mut v,
            &json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "X": null}}),
        );
        assert_eq!(
            v,
            json!({"Boot": {"BootSourceOverrideTarget": "Pxe"}, "Keep": true})
        );
    }

    #[test]
    fn paths_normalize() {
        assert_eq!(norm("/redfish/v1/"), "/redfish/v1");
        assert_eq!(
            norm("/redfish/v1/Systems/1?$expand=."),
            "/redfish/v1/Systems/1"
        );
        assert_eq!(norm("/"), "/");
    }
}
