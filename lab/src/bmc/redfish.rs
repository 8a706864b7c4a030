//! Redfish driver over HTTP(S).
//!
//! Why `reqwest` and not the `redfish` crate (lvillis/redfish-rs, the
//! project's first choice): its 0.3 client builder exposes no TLS settings at
//! all (no insecure mode, no extra CA, no certificate pinning), ships its own
//! HTTP stack and retry policy (we need exactly one, in [`super::retry`]),
//! and decodes into typed structs that fail the whole read when a vendor
//! leaves a field out. The lab needs the four TLS modes of the inventory
//! (`verify`, `insecure`, `ca_file`, `pin_sha256`) and tolerant reads, so
//! this driver speaks Redfish with `reqwest` (rustls, ring, no default
//! features) and reads `serde_json::Value`s, following `@odata.id` links
//! from the service root instead of guessing paths.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{
    BmcError, BmcFuture, BootDevice, BootOverride, Firmware, Health, Identity, LogService,
    PowerAction, PowerState, SelCursor, SelEntry, SelPage, Sensor, Thresholds,
};
use crate::inventory::{BmcEndpoint, BmcProtocol, Secret, TlsMode};

/// How the driver authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// HTTP basic auth on every request.
    #[default]
    Basic,
    /// A Redfish session (`X-Auth-Token`), created on first use and renewed
    /// once when the BMC answers 401; falls back to basic auth when the BMC
    /// has no SessionService.
    Session,
}

/// Everything needed to reach one Redfish BMC.
#[derive(Debug, Clone)]
pub struct RedfishConfig {
    /// Names the BMC in errors and call records (the machine name).
    pub name: String,
    /// `https://host:port` (no path).
    pub base_url: String,
    pub username: String,
    /// `Debug` shows `***`.
    pub password: Secret,
    pub tls: TlsMode,
    pub auth: AuthMode,
    /// The ComputerSystem `Id` to drive; `None`: the first (usually only) one.
    pub system_id: Option<String>,
    /// Bound on one HTTP request.
    pub timeout: Duration,
    /// Bound on one response body; a larger answer is refused.
    pub max_body: usize,
}

/// The largest Redfish response body read ([`RedfishConfig::max_body`]'s
/// default). Real BMCs answer in kilobytes; an expanded log of thousands
/// of entries stays well under it.
pub const MAX_BODY_BYTES: usize = 16 << 20;

/// Redirects followed per request (same origin only).
const MAX_REDIRECTS: usize = 10;

/// The scheme, host and port of a URL, the default port filled in: the
/// only place credentials may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// `None` for a URL without a host or a known port (`file:`, `data:`).
    pub fn of(url: &reqwest::Url) -> Option<Origin> {
        Some(Origin {
            scheme: url.scheme().to_ascii_lowercase(),
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
        })
    }

    /// The origin of `url`, or its text when it has none.
    fn describe(url: &reqwest::Url) -> String {
        Origin::of(url).map_or_else(|| url.to_string(), |o| o.to_string())
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// A redirect to another origin, refused inside reqwest's redirect policy
/// and recognised again in [`Redfish::map_send`].
#[derive(Debug, thiserror::Error)]
#[error("redirect to {url} refused: its origin {origin} is not the bmc's")]
struct RedirectRefused {
    url: String,
    origin: String,
}

impl RedfishConfig {
    /// A config for `base_url` with basic auth, `verify` TLS and a 20 s
    /// request timeout.
    pub fn new(
        name: impl Into<String>,
        base_url: impl Into<String>,
        username: impl Into<String>,
        password: Secret,
    ) -> RedfishConfig {
        RedfishConfig {
            name: name.into(),
            base_url: base_url.into().trim_end_matches('/').to_string(),
            username: username.into(),
            password,
            tls: TlsMode::Verify,
            auth: AuthMode::Basic,
            system_id: None,
            timeout: Duration::from_secs(20),
            max_body: MAX_BODY_BYTES,
        }
    }

    /// From a machine's inventory entry; reads the password from its
    /// environment variable or file.
    pub fn from_endpoint(machine: &str, ep: &BmcEndpoint) -> Result<RedfishConfig, BmcError> {
        let BmcProtocol::Redfish(opts) = &ep.protocol else {
            return Err(BmcError::Config {
                bmc: machine.to_string(),
                message: format!("bmc protocol is {}, not redfish", ep.protocol.as_str()),
            });
        };
        let password = ep.password.resolve(machine).map_err(|e| BmcError::Config {
            bmc: machine.to_string(),
            message: e.to_string(),
        })?;
        let host = if ep.address.contains(':') && !ep.address.starts_with('[') {
            format!("[{}]", ep.address)
        } else {
            ep.address.clone()
        };
        let mut cfg = RedfishConfig::new(
            machine,
            format!("{}://{}:{}", opts.scheme.as_str(), host, ep.port),
            ep.username.clone(),
            password,
        );
        cfg.tls = opts.tls.clone();
        cfg.system_id = opts.system_id.clone();
        Ok(cfg)
    }
}

/// A Redfish BMC. One attempt per call; wrap in [`super::Guarded`] for
/// retries.
pub struct Redfish {
    cfg: RedfishConfig,
    /// `cfg.base_url` parsed; links are resolved against it.
    base: reqwest::Url,
    /// `base`'s origin: every request goes there and nowhere else.
    origin: Origin,
    http: reqwest::Client,
    session: tokio::sync::Mutex<Option<String>>,
    /// Discovered once: the service root and the system's URI.
    root: Mutex<Option<Value>>,
    system_uri: Mutex<Option<String>>,
}

impl std::fmt::Debug for Redfish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redfish")
            .field("name", &self.cfg.name)
            .field("base_url", &self.cfg.base_url)
            .field("tls", &self.cfg.tls)
            .finish_non_exhaustive()
    }
}

impl Redfish {
    pub fn new(cfg: RedfishConfig) -> Result<Redfish, BmcError> {
        let tls = tls::client_config(&cfg.tls).map_err(|message| BmcError::Config {
            bmc: cfg.name.clone(),
            message,
        })?;
        let base = reqwest::Url::parse(&cfg.base_url).map_err(|e| BmcError::Config {
            bmc: cfg.name.clone(),
            message: format!("base url {:?}: {e}", cfg.base_url),
        })?;
        let origin = Origin::of(&base).ok_or_else(|| BmcError::Config {
            bmc: cfg.name.clone(),
            message: format!("base url {:?}: no host and port", cfg.base_url),
        })?;
        // Credentials (basic auth, X-Auth-Token, the session login body) go
        // only to the configured origin: reqwest strips `Authorization` on a
        // cross-host redirect but keeps other headers, so other origins are
        // refused outright.
        let allowed = origin.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            if Origin::of(attempt.url()).as_ref() == Some(&allowed) {
                attempt.follow()
            } else {
                let refused = RedirectRefused {
                    url: attempt.url().to_string(),
                    origin: Origin::describe(attempt.url()),
                };
                attempt.error(refused)
            }
        });
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(redirects)
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BmcError::Config {
                bmc: cfg.name.clone(),
                message: format!("http client: {e}"),
            })?;
        Ok(Redfish {
            cfg,
            base,
            origin,
            http,
            session: tokio::sync::Mutex::new(None),
            root: Mutex::new(None),
            system_uri: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &RedfishConfig {
        &self.cfg
    }

    /// Ends the Redfish session, if one was opened.
    pub async fn logout(&self) -> Result<(), BmcError> {
        let token = self.session.lock().await.take();
        if let Some(token) = token {
            let Ok(url) = self.url("/redfish/v1/SessionService/Sessions") else {
                return Ok(());
            };
            let _ = self
                .http
                .delete(url)
                .header("X-Auth-Token", token)
                .send()
                .await;
        }
        Ok(())
    }

    fn err_invalid(&self, message: impl Into<String>) -> BmcError {
        BmcError::InvalidResponse {
            bmc: self.cfg.name.clone(),
            message: message.into(),
        }
    }

    /// The absolute URL of `link` (an `@odata.id`, a `nextLink`, an action
    /// target, or a path of ours): relative links are resolved against the
    /// BMC's base URL; a link to any other origin is refused, since every
    /// request carries the BMC's credentials.
    fn url(&self, link: &str) -> Result<reqwest::Url, BmcError> {
        let link = link.split('#').next().unwrap_or(link);
        let url = self
            .base
            .join(link)
            .map_err(|e| BmcError::InvalidResponse {
                bmc: self.cfg.name.clone(),
                message: format!("link {link:?}: {e}"),
            })?;
        if Origin::of(&url).as_ref() != Some(&self.origin) {
            return Err(BmcError::ForeignOrigin {
                bmc: self.cfg.name.clone(),
                link: link.to_string(),
                origin: Origin::describe(&url),
                expected: self.origin.to_string(),
            });
        }
        Ok(url)
    }

    /// A response body, at most `max_body` bytes (checked against
    /// Content-Length first, then while reading).
    async fn body(&self, mut resp: reqwest::Response, path: &str) -> Result<String, BmcError> {
        let max = self.cfg.max_body;
        let too_big = |n: String| BmcError::InvalidResponse {
            bmc: self.cfg.name.clone(),
            message: format!("{path}: response body of {n} bytes exceeds the limit of {max} bytes"),
        };
        if let Some(n) = resp.content_length() {
            if n > max as u64 {
                return Err(too_big(n.to_string()));
            }
        }
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.map_send(e, path))? {
            if buf.len() + chunk.len() > max {
                return Err(too_big(format!("more than {max}")));
            }
            buf.extend_from_slice(&chunk);
        }
        String::from_utf8(buf)
            .map_err(|e| self.err_invalid(format!("{path}: body is not utf-8: {e}")))
    }

    async fn login(&self) -> Result<Option<String>, BmcError> {
        let root = self.root().await?;
        let Some(sessions) = link(&root, &["Links", "Sessions"]).or_else(|| {
            root.get("SessionService")
                .and_then(odata_id)
                .map(|s| format!("{}/Sessions", s.trim_end_matches('/')))
        }) else {
            return Ok(None);
        };
        let resp = self
            .http
            .post(self.url(&sessions)?)
            .json(&json!({"UserName": self.cfg.username, "Password": self.cfg.password.expose()}))
            .send()
            .await
            .map_err(|e| self.map_send(e, &sessions))?;
        let status = resp.status();
        if !status.is_success() {
            let text = self.body(resp, &sessions).await.unwrap_or_default();
            return Err(self.map_status(status, &sessions, text));
        }
        match resp
            .headers()
            .get("X-Auth-Token")
            .and_then(|v| v.to_str().ok())
        {
            Some(t) => Ok(Some(t.to_string())),
            None => Err(self.err_invalid("session created without an X-Auth-Token header")),
        }
    }

    /// One request with authentication; the JSON body of the answer (Null
    /// when empty).
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, BmcError> {
        let mut relogged = false;
        loop {
            let mut req = self
                .http
                .request(method.clone(), self.url(path)?)
                .header("Accept", "application/json");
            let mut basic = true;
            if self.cfg.auth == AuthMode::Session && !path.contains("/SessionService/Sessions") {
                let mut guard = self.session.lock().await;
                if guard.is_none() {
                    *guard = self.login().await?;
                }
                if let Some(t) = guard.as_ref() {
                    req = req.header("X-Auth-Token", t.clone());
                    basic = false;
                }
            }
            if basic {
                req = req.basic_auth(&self.cfg.username, Some(self.cfg.password.expose()));
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| self.map_send(e, path))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED
                && self.cfg.auth == AuthMode::Session
                && !relogged
                && self.session.lock().await.take().is_some()
            {
                relogged = true;
                continue;
            }
            let text = self.body(resp, path).await?;
            if !status.is_success() {
                return Err(self.map_status(status, path, text));
            }
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            return serde_json::from_str(&text)
                .map_err(|e| self.err_invalid(format!("{method} {path}: not json: {e}")));
        }
    }

    async fn get(&self, path: &str) -> Result<Value, BmcError> {
        let v = self.request(Method::GET, path, None).await?;
        if v.is_object() {
            Ok(v)
        } else {
            Err(self.err_invalid(format!("GET {path}: expected a json object")))
        }
    }

    fn map_send(&self, e: reqwest::Error, path: &str) -> BmcError {
        let bmc = self.cfg.name.clone();
        if let Some(r) = redirect_refused(&e) {
            return BmcError::ForeignOrigin {
                bmc,
                link: format!("{path} redirected to {}", r.url),
                origin: r.origin.clone(),
                expected: self.origin.to_string(),
            };
        }
        if let Some(tls) = tls_cause(&e) {
            return BmcError::Tls {
                bmc,
                message: format!("{path}: {tls}"),
            };
        }
        if e.is_timeout() {
            return BmcError::Timeout {
                bmc,
                what: format!("{path}: no answer"),
                after: self.cfg.timeout,
            };
        }
        if e.is_builder() {
            return BmcError::Config {
                bmc,
                message: format!("{path}: {}", chain(&e)),
            };
        }
        if e.is_decode() {
            return BmcError::InvalidResponse {
                bmc,
                message: format!("{path}: {}", chain(&e)),
            };
        }
        let text = chain(&e);
        // rustls errors reach us boxed inside hyper-util's connect error,
        // where a downcast cannot always see them: recognise their text.
        if text.contains("invalid peer certificate")
            || text.contains("peer sent no certificates")
            || text.contains("does not match the pinned")
        {
            return BmcError::Tls {
                bmc,
                message: format!("{path}: {text}"),
            };
        }
        BmcError::ConnectionReset {
            bmc,
            message: format!("{path}: {text}"),
        }
    }

    fn map_status(&self, status: StatusCode, path: &str, body: String) -> BmcError {
        let bmc = self.cfg.name.clone();
        let detail = redfish_message(&body).unwrap_or_else(|| {
            status
                .canonical_reason()
                .unwrap_or("unknown status")
                .to_string()
        });
        let message = format!("{path}: http {}: {detail}", status.as_u16());
        match status.as_u16() {
            401 | 403 => BmcError::Auth {
                bmc,
                message: format!(
                    "{path}: http {} (user {:?}): {detail}",
                    status.as_u16(),
                    self.cfg.username
                ),
            },
            404 | 410 => BmcError::NotFound { bmc, what: message },
            405 | 501 => BmcError::Unsupported { bmc, what: message },
            429 | 503 => BmcError::Busy { bmc, message },
            500..=599 => BmcError::Server5xx {
                bmc,
                status: status.as_u16(),
                message,
            },
            _ => BmcError::InvalidResponse { bmc, message },
        }
    }

    async fn root(&self) -> Result<Value, BmcError> {
        if let Some(r) = self.root.lock().ok().and_then(|g| g.clone()) {
            return Ok(r);
        }
        // The service root answers without credentials on most BMCs; ask
        // with them anyway (some require it).
        let resp = self
            .http
            .get(self.url("/redfish/v1/")?)
            .header("Accept", "application/json")
            .basic_auth(&self.cfg.username, Some(self.cfg.password.expose()))
            .send()
            .await
            .map_err(|e| self.map_send(e, "/redfish/v1/"))?;
        let status = resp.status();
        let text = self.body(resp, "/redfish/v1/").await?;
        if !status.is_success() {
            return Err(self.map_status(status, "/redfish/v1/", text));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| self.err_invalid(format!("service root: not json: {e}")))?;
        if let Ok(mut g) = self.root.lock() {
            *g = Some(v.clone());
        }
        Ok(v)
    }

    /// A top-level collection's URI from the service root (`Systems`,
    /// `Managers`, `Chassis`, `UpdateService`), or the standard path when
    /// the root does not link it.
    async fn root_link(&self, key: &str) -> Result<String, BmcError> {
        let root = self.root().await?;
        Ok(root
            .get(key)
            .and_then(odata_id)
            .map(str::to_string)
            .unwrap_or_else(|| format!("/redfish/v1/{key}")))
    }

    /// The `@odata.id`s of a collection's members, following
    /// `Members@odata.nextLink` pages.
    async fn members(&self, collection: &str) -> Result<Vec<Value>, BmcError> {
        let mut out = Vec::new();
        let mut next = Some(collection.to_string());
        let mut pages = 0;
        while let Some(uri) = next.take() {
            pages += 1;
            let page = self.get(&uri).await?;
            if let Some(m) = page.get("Members").and_then(Value::as_array) {
                out.extend(m.iter().cloned());
            }
            next = page
                .get("Members@odata.nextLink")
                .and_then(Value::as_str)
                .map(str::to_string);
            if pages > 1000 {
                return Err(self.err_invalid(format!("{collection}: more than 1000 pages")));
            }
        }
        Ok(out)
    }

    /// Every member of a collection as a full resource: inline members
    /// (expanded collections) are used as they are, links are fetched.
    /// Members that fail fatally are skipped (logged); retryable errors
    /// fail the read so the retry policy can repeat it.
    async fn member_resources(&self, collection: &str) -> Result<Vec<Value>, BmcError> {
        let mut out = Vec::new();
        for m in self.members(collection).await? {
            let is_link_only = m
                .as_object()
                .is_some_and(|o| o.keys().all(|k| k.starts_with("@odata")));
            match (is_link_only, odata_id(&m)) {
                (true, Some(id)) => match self.get(id).await {
                    Ok(v) => out.push(v),
                    Err(e) if must_stop(&e) => return Err(e),
                    Err(e) => {
                        tracing::warn!(bmc = %self.cfg.name, member = id, error = %e, "skipping unreadable member")
                    }
                },
                (false, _) => out.push(m),
                (true, None) => {}
            }
        }
        Ok(out)
    }

    /// The ComputerSystem this driver acts on.
    async fn system_uri(&self) -> Result<String, BmcError> {
        if let Some(u) = self.system_uri.lock().ok().and_then(|g| g.clone()) {
            return Ok(u);
        }
        let systems = self.root_link("Systems").await?;
        let members = self.members(&systems).await?;
        let ids: Vec<String> = members
            .iter()
            .filter_map(odata_id)
            .map(str::to_string)
            .collect();
        let uri = match &self.cfg.system_id {
            Some(want) => ids
                .iter()
                .find(|u| u.trim_end_matches('/').rsplit('/').next() == Some(want.as_str()))
                .cloned()
                .ok_or_else(|| BmcError::NotFound {
                    bmc: self.cfg.name.clone(),
                    what: format!("system {want:?} (systems: {})", ids.join(", ")),
                })?,
            None => ids.first().cloned().ok_or_else(|| BmcError::NotFound {
                bmc: self.cfg.name.clone(),
                what: format!("any ComputerSystem in {systems}"),
            })?,
        };
        if let Ok(mut g) = self.system_uri.lock() {
            *g = Some(uri.clone());
        }
        Ok(uri)
    }

    async fn system(&self) -> Result<(String, Value), BmcError> {
        let uri = self.system_uri().await?;
        let v = self.get(&uri).await?;
        Ok((uri, v))
    }

    /// Every ComputerSystem's URI (for tests and `lab info` on
    /// multi-system BMCs).
    pub async fn systems(&self) -> Result<Vec<String>, BmcError> {
        let systems = self.root_link("Systems").await?;
        let members = match self.members(&systems).await {
            Ok(m) => m,
            // A BMC without systems (an expansion box, a bare chassis).
            Err(BmcError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        Ok(members
            .iter()
            .filter_map(odata_id)
            .map(str::to_string)
            .collect())
    }

    async fn get_power_state(&self) -> Result<PowerState, BmcError> {
        let (uri, sys) = self.system().await?;
        let state = sys
            .get("PowerState")
            .and_then(Value::as_str)
            .ok_or_else(|| self.err_invalid(format!("{uri}: no PowerState")))?;
        parse_power_state(state)
            .ok_or_else(|| self.err_invalid(format!("{uri}: unknown PowerState {state:?}")))
    }

    async fn do_power(&self, action: PowerAction) -> Result<(), BmcError> {
        let (uri, sys) = self.system().await?;
        let reset = sys.pointer("/Actions/#ComputerSystem.Reset");
        let target = reset
            .and_then(|r| r.get("target"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!("{}/Actions/ComputerSystem.Reset", uri.trim_end_matches('/'))
            });
        let allowed: Option<Vec<String>> = reset
            .and_then(|r| r.get("ResetType@Redfish.AllowableValues"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            });
        let wanted: &[&str] = match action {
            PowerAction::On => &["On", "ForceOn"],
            PowerAction::Off => &["GracefulShutdown"],
            PowerAction::ForceOff => &["ForceOff"],
            PowerAction::Cycle => &["PowerCycle", "ForceRestart"],
            PowerAction::Reset => &["ForceRestart"],
        };
        let reset_type = match &allowed {
            None => wanted[0],
            Some(list) => wanted
                .iter()
                .find(|w| list.iter().any(|a| a == *w))
                .copied()
                .ok_or_else(|| BmcError::Unsupported {
                    bmc: self.cfg.name.clone(),
                    what: format!("power {action} (ResetType allowed: {})", list.join(", ")),
                })?,
        };
        self.request(
            Method::POST,
            &target,
            Some(&json!({ "ResetType": reset_type })),
        )
        .await?;
        Ok(())
    }

    async fn do_set_boot(&self, boot: BootOverride) -> Result<(), BmcError> {
        let (uri, sys) = self.system().await?;
        let target = match boot.device {
            BootDevice::Pxe => "Pxe",
            BootDevice::Disk => "Hdd",
            BootDevice::BiosSetup => "BiosSetup",
        };
        if let Some(allowed) = sys
            .pointer("/Boot/BootSourceOverrideTarget@Redfish.AllowableValues")
            .and_then(Value::as_array)
        {
            if !allowed.iter().any(|a| a.as_str() == Some(target)) {
                return Err(BmcError::Unsupported {
                    bmc: self.cfg.name.clone(),
                    what: format!("boot override to {target}"),
                });
            }
        }
        let enabled = if boot.once { "Once" } else { "Continuous" };
        let body = json!({"Boot": {"BootSourceOverrideTarget": target, "BootSourceOverrideEnabled": enabled}});
        self.request(Method::PATCH, &uri, Some(&body)).await?;
        Ok(())
    }

    /// The current boot override: device target and enabled value as the
    /// BMC reports them (e.g. `("Pxe", "Once")`).
    pub async fn boot_override(&self) -> Result<(String, String), BmcError> {
        let (_, sys) = self.system().await?;
        let s = |k: &str| {
            sys.pointer(&format!("/Boot/{k}"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        Ok((
            s("BootSourceOverrideTarget"),
            s("BootSourceOverrideEnabled"),
        ))
    }

    /// Every log service of the system and of the managers, the system's
    /// first.
    async fn log_service_resources(&self) -> Result<Vec<Value>, BmcError> {
        let mut owners = match self.system().await {
            Ok((_, sys)) => vec![sys],
            Err(BmcError::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let managers = self.root_link("Managers").await?;
        match self.member_resources(&managers).await {
            Ok(ms) => owners.extend(ms),
            Err(e) if must_stop(&e) => return Err(e),
            Err(_) => {}
        }
        let mut services = Vec::new();
        for owner in &owners {
            let Some(ls) = owner.get("LogServices").and_then(odata_id) else {
                continue;
            };
            match self.member_resources(ls).await {
                Ok(found) => services.extend(found),
                Err(e) if must_stop(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(bmc = %self.cfg.name, log_services = ls, error = %e, "skipping log services")
                }
            }
        }
        Ok(services)
    }

    /// The log service that holds the system event log (see
    /// [`super::replay::sel_score`]): one with `Id` SEL first, then one of
    /// SEL type or name, then event logs; the system's before the
    /// managers'.
    fn pick_sel(services: &[Value]) -> Option<usize> {
        let mut best: Option<(i32, usize)> = None;
        for (i, c) in services.iter().enumerate() {
            let sc = super::replay::sel_score(c);
            if sc > 0 && best.as_ref().is_none_or(|(b, _)| sc > *b) {
                best = Some((sc, i));
            }
        }
        best.map(|(_, i)| i)
    }

    async fn sel_service(&self) -> Result<Value, BmcError> {
        let mut services = self.log_service_resources().await?;
        match Self::pick_sel(&services) {
            Some(i) => Ok(services.swap_remove(i)),
            None => Err(BmcError::Unsupported {
                bmc: self.cfg.name.clone(),
                what: "system event log (no LogService)".to_string(),
            }),
        }
    }

    fn entries_uri(&self, service: &Value) -> Result<String, BmcError> {
        service
            .get("Entries")
            .and_then(odata_id)
            .map(str::to_string)
            .or_else(|| odata_id(service).map(|s| format!("{}/Entries", s.trim_end_matches('/'))))
            .ok_or_else(|| self.err_invalid("log service without Entries"))
    }

    async fn do_log_services(&self) -> Result<Vec<LogService>, BmcError> {
        let services = self.log_service_resources().await?;
        let default = Self::pick_sel(&services);
        let mut out = Vec::new();
        for (i, s) in services.iter().enumerate() {
            let uri = odata_id(s).map(str::to_string);
            let id = s
                .get("Id")
                .and_then(Value::as_str)
                .map(str::to_string)
                .or_else(|| {
                    uri.as_deref()
                        .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
                        .map(str::to_string)
                })
                .unwrap_or_default();
            // One page of the entries collection: its count, or its members.
            let entries = match self.entries_uri(s) {
                Ok(e) => match self.get(&e).await {
                    Ok(c) => c
                        .get("Members@odata.count")
                        .and_then(Value::as_u64)
                        .or_else(|| {
                            c.get("Members")
                                .and_then(Value::as_array)
                                .map(|m| m.len() as u64)
                        }),
                    Err(e) if must_stop(&e) => return Err(e),
                    Err(_) => None,
                },
                Err(_) => None,
            };
            out.push(LogService {
                id,
                name: s.get("Name").and_then(Value::as_str).map(str::to_string),
                uri,
                entries,
                default: default == Some(i),
            });
        }
        Ok(out)
    }

    async fn do_log_since(
        &self,
        key: &str,
        cursor: Option<SelCursor>,
    ) -> Result<SelPage, BmcError> {
        let services = self.log_service_resources().await?;
        let service = services
            .iter()
            .find(|s| {
                odata_id(s).map(|u| u.trim_end_matches('/')) == Some(key.trim_end_matches('/'))
            })
            .ok_or_else(|| BmcError::NotFound {
                bmc: self.cfg.name.clone(),
                what: format!("log service {key}"),
            })?;
        self.entries_since(service, cursor).await
    }

    async fn do_sel_since(&self, cursor: Option<SelCursor>) -> Result<SelPage, BmcError> {
        let service = self.sel_service().await?;
        self.entries_since(&service, cursor).await
    }

    async fn entries_since(
        &self,
        service: &Value,
        cursor: Option<SelCursor>,
    ) -> Result<SelPage, BmcError> {
        let entries_uri = self.entries_uri(service)?;
        let mut entries: Vec<SelEntry> = self
            .member_resources(&entries_uri)
            .await?
            .iter()
            .map(log_entry)
            .collect();
        entries.sort_by_key(sel_key);
        let since = cursor.as_ref().and_then(parse_cursor);
        if let Some(since) = &since {
            entries.retain(|e| sel_key(e) > *since);
        }
        let cursor = match entries.last() {
            Some(last) => make_cursor(last),
            None => cursor.unwrap_or_else(|| SelCursor("start".to_string())),
        };
        Ok(SelPage { entries, cursor })
    }

    async fn do_sel_clear(&self) -> Result<(), BmcError> {
        let service = self.sel_service().await?;
        let target = service
            .pointer("/Actions/#LogService.ClearLog/target")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                odata_id(&service)
                    .map(|s| format!("{}/Actions/LogService.ClearLog", s.trim_end_matches('/')))
            })
            .ok_or_else(|| self.err_invalid("log service without ClearLog action"))?;
        self.request(Method::POST, &target, Some(&json!({})))
            .await?;
        Ok(())
    }

    async fn do_sensors(&self) -> Result<Vec<Sensor>, BmcError> {
        let chassis = self.root_link("Chassis").await?;
        let mut out = Vec::new();
        for ch in self.member_resources(&chassis).await? {
            match self.chassis_sensors(&ch).await {
                Ok(s) => out.extend(s),
                Err(e) if must_stop(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(bmc = %self.cfg.name, chassis = odata_id(&ch).unwrap_or("?"), error = %e, "skipping chassis sensors")
                }
            }
        }
        Ok(out)
    }

    /// One chassis's sensors: the `Sensors` collection when it has members,
    /// otherwise the older `Thermal` and `Power` resources.
    async fn chassis_sensors(&self, ch: &Value) -> Result<Vec<Sensor>, BmcError> {
        let mut out = Vec::new();
        if let Some(uri) = ch.get("Sensors").and_then(odata_id) {
            for s in self.member_resources(uri).await? {
                out.push(sensor_from_sensors(&s));
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
        if let Some(uri) = ch.get("Thermal").and_then(odata_id) {
            match self.get(uri).await {
                Ok(t) => out.extend(sensors_from_thermal(&t)),
                Err(e) if must_stop(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(bmc = %self.cfg.name, thermal = uri, error = %e, "skipping thermal")
                }
            }
        }
        if let Some(uri) = ch.get("Power").and_then(odata_id) {
            match self.get(uri).await {
                Ok(p) => out.extend(sensors_from_power(&p)),
                Err(e) if must_stop(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(bmc = %self.cfg.name, power = uri, error = %e, "skipping power")
                }
            }
        }
        Ok(out)
    }

    async fn do_identity(&self) -> Result<Identity, BmcError> {
        let sys = match self.system().await {
            Ok((_, sys)) => sys,
            Err(BmcError::NotFound { .. }) => Value::Null,
            Err(e) => return Err(e),
        };
        let s = |v: &Value, k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let mut id = Identity {
            bios_version: s(&sys, "BiosVersion"),
            manufacturer: s(&sys, "Manufacturer"),
            model: s(&sys, "Model"),
            serial: s(&sys, "SerialNumber"),
            ..Identity::default()
        };
        // The BMC's own firmware: the manager that manages this system
        // (Links.ManagedBy), else the first manager.
        let manager_uri = match sys
            .pointer("/Links/ManagedBy")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(odata_id)
        {
            Some(m) => Some(m.to_string()),
            None => {
                let managers = self.root_link("Managers").await?;
                match self.members(&managers).await {
                    Ok(m) => m.first().and_then(odata_id).map(str::to_string),
                    Err(e) if must_stop(&e) => return Err(e),
                    Err(_) => None,
                }
            }
        };
        if let Some(m) = manager_uri {
            match self.get(&m).await {
                Ok(mgr) => id.bmc_firmware = s(&mgr, "FirmwareVersion"),
                Err(e) if must_stop(&e) => return Err(e),
                Err(e) => {
                    tracing::warn!(bmc = %self.cfg.name, manager = %m, error = %e, "manager unreadable")
                }
            }
        }
        id.firmware = match self.firmware_inventory().await {
            Ok(f) => f,
            Err(e) if must_stop(&e) => return Err(e),
            Err(e) => {
                tracing::info!(bmc = %self.cfg.name, error = %e, "no firmware inventory");
                Vec::new()
            }
        };
        Ok(id)
    }

    /// UpdateService → FirmwareInventory members.
    pub async fn firmware_inventory(&self) -> Result<Vec<Firmware>, BmcError> {
        let root = self.root().await?;
        let Some(us) = root.get("UpdateService").and_then(odata_id) else {
            return Err(BmcError::Unsupported {
                bmc: self.cfg.name.clone(),
                what: "UpdateService".to_string(),
            });
        };
        let us = self.get(us).await?;
        let Some(inv) = us.get("FirmwareInventory").and_then(odata_id) else {
            return Err(BmcError::Unsupported {
                bmc: self.cfg.name.clone(),
                what: "FirmwareInventory".to_string(),
            });
        };
        Ok(self
            .member_resources(inv)
            .await?
            .iter()
            .map(|f| Firmware {
                id: f
                    .get("Id")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| {
                        odata_id(f)
                            .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
                            .map(str::to_string)
                    })
                    .unwrap_or_default(),
                name: f
                    .get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                version: f.get("Version").and_then(Value::as_str).map(str::to_string),
            })
            .collect())
    }
}

impl super::Bmc for Redfish {
    fn name(&self) -> &str {
        &self.cfg.name
    }

    fn power_status(&self) -> BmcFuture<'_, PowerState> {
        Box::pin(self.get_power_state())
    }

    fn power(&self, action: PowerAction) -> BmcFuture<'_, ()> {
        Box::pin(self.do_power(action))
    }

    fn set_boot(&self, boot: BootOverride) -> BmcFuture<'_, ()> {
        Box::pin(self.do_set_boot(boot))
    }

    fn sel_since(&self, cursor: Option<SelCursor>) -> BmcFuture<'_, SelPage> {
        Box::pin(self.do_sel_since(cursor))
    }

    fn sel_clear(&self) -> BmcFuture<'_, ()> {
        Box::pin(self.do_sel_clear())
    }

    fn log_services(&self) -> BmcFuture<'_, Vec<LogService>> {
        Box::pin(self.do_log_services())
    }

    fn log_since(&self, key: &str, cursor: Option<SelCursor>) -> BmcFuture<'_, SelPage> {
        let key = key.to_string();
        Box::pin(async move { self.do_log_since(&key, cursor).await })
    }

    fn sensors(&self) -> BmcFuture<'_, Vec<Sensor>> {
        Box::pin(self.do_sensors())
    }

    fn identity(&self) -> BmcFuture<'_, Identity> {
        Box::pin(self.do_identity())
    }

    fn console(
        &self,
        out: PathBuf,
        duration: Option<Duration>,
    ) -> BmcFuture<'_, super::ConsoleCapture> {
        let _ = (out, duration);
        Box::pin(async move {
            Err(BmcError::Unsupported {
                bmc: self.cfg.name.clone(),
                what: "serial console capture over redfish (use ipmi sol)".to_string(),
            })
        })
    }
}

/// A Redfish driver for a machine of the inventory, wrapped in the retry
/// policy.
pub fn connect(
    machine: &str,
    ep: &BmcEndpoint,
    policy: super::RetryPolicy,
    sink: Arc<dyn super::CallSink>,
) -> Result<super::Guarded<Redfish>, BmcError> {
    let rf = Redfish::new(RedfishConfig::from_endpoint(machine, ep)?)?;
    Ok(super::Guarded::new(rf, policy, sink).with_warnings(&ep.exposure_warnings()))
}

fn odata_id(v: &Value) -> Option<&str> {
    v.get("@odata.id").and_then(Value::as_str)
}

fn link(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    odata_id(cur).map(str::to_string)
}

/// `error.message` or the first `@Message.ExtendedInfo` message of a
/// Redfish error body.
fn redfish_message(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    let e = v.get("error")?;
    e.pointer("/@Message.ExtendedInfo/0/Message")
        .or_else(|| e.get("message"))
        .and_then(Value::as_str)
        .map(|s| s.chars().take(300).collect())
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

/// The refused cross-origin redirect behind a request error, if any.
fn redirect_refused(e: &reqwest::Error) -> Option<&RedirectRefused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<RedirectRefused>() {
            return Some(r);
        }
        cur = c.source();
    }
    None
}

/// Errors a read must not skip over: retryable ones (the retry policy
/// repeats the read) and a link to another origin (never ignored quietly).
fn must_stop(e: &BmcError) -> bool {
    e.is_retryable() || matches!(e.root(), BmcError::ForeignOrigin { .. })
}

/// The TLS failure behind a connection error, if that is what it was.
fn tls_cause(e: &reqwest::Error) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cur {
        if let Some(r) = c.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return Some(r.to_string());
            }
        }
        cur = c.source();
    }
    None
}

fn parse_power_state(s: &str) -> Option<PowerState> {
    match s {
        "On" | "Paused" => Some(PowerState::On),
        "Off" => Some(PowerState::Off),
        "PoweringOn" => Some(PowerState::PoweringOn),
        "PoweringOff" => Some(PowerState::PoweringOff),
        _ => None,
    }
}

fn health(v: &Value) -> Option<Health> {
    match v.as_str()? {
        "OK" | "Ok" | "ok" => Some(Health::Ok),
        "Warning" => Some(Health::Warning),
        "Critical" => Some(Health::Critical),
        _ => None,
    }
}

fn log_entry(e: &Value) -> SelEntry {
    let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
    let timestamp = s("Created").or_else(|| s("EventTimestamp")).and_then(|t| {
        time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
    });
    let message = s("Message")
        .filter(|m| !m.is_empty())
        .or_else(|| s("MessageId"))
        .or_else(|| s("Name"))
        .unwrap_or_default();
    SelEntry {
        id: s("Id")
            .or_else(|| {
                odata_id(e)
                    .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
                    .map(str::to_string)
            })
            .unwrap_or_default(),
        timestamp,
        sensor_type: s("SensorType").filter(|t| !t.is_empty()),
        severity: e
            .get("Severity")
            .and_then(health)
            .unwrap_or(Health::Unknown),
        message,
    }
}

/// Orders entries: by time, then by id (numerically where both are numbers).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SelKey {
    nanos: i128,
    num: Option<u128>,
    id: String,
}

fn sel_key(e: &SelEntry) -> SelKey {
    SelKey {
        nanos: e
            .timestamp
            .map(|t| t.unix_timestamp_nanos())
            .unwrap_or(i128::MIN),
        num: e.id.parse().ok(),
        id: e.id.clone(),
    }
}

/// Cursor form: `<unix nanos or "-">/<id>`.
fn make_cursor(e: &SelEntry) -> SelCursor {
    let k = sel_key(e);
    let t = if k.nanos == i128::MIN {
        "-".to_string()
    } else {
        k.nanos.to_string()
    };
    SelCursor(format!("{t}/{}", k.id))
}

fn parse_cursor(c: &SelCursor) -> Option<SelKey> {
    let (t, id) = c.0.split_once('/')?;
    let nanos = if t == "-" { i128::MIN } else { t.parse().ok()? };
    Some(SelKey {
        nanos,
        num: id.parse().ok(),
        id: id.to_string(),
    })
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

fn status_of(v: &Value, reading: Option<f64>, th: &Thresholds) -> (Health, bool) {
    let absent = matches!(
        v.pointer("/Status/State").and_then(Value::as_str),
        Some("Absent" | "Disabled" | "UnavailableOffline")
    );
    let h = v
        .pointer("/Status/Health")
        .and_then(health)
        .or_else(|| reading.map(|r| th.judge(r)))
        .unwrap_or(Health::Unknown);
    (if absent { Health::Unknown } else { h }, absent)
}

fn legacy_thresholds(v: &Value) -> Thresholds {
    Thresholds {
        lower_fatal: num(v, "LowerThresholdFatal"),
        lower_critical: num(v, "LowerThresholdCritical"),
        lower_caution: num(v, "LowerThresholdNonCritical"),
        upper_caution: num(v, "UpperThresholdNonCritical"),
        upper_critical: num(v, "UpperThresholdCritical"),
        upper_fatal: num(v, "UpperThresholdFatal"),
    }
}

fn legacy_sensor(v: &Value, kind: &str, reading_key: &str, unit: Option<&str>) -> Sensor {
    let name = v
        .get("Name")
        .or_else(|| v.get("FanName"))
        .or_else(|| v.get("MemberId"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let thresholds = legacy_thresholds(v);
    let reading = num(v, reading_key);
    let (status, absent) = status_of(v, reading, &thresholds);
    let unit = v
        .get("ReadingUnits")
        .and_then(Value::as_str)
        .map(|u| match u {
            "Percent" => "%".to_string(),
            other => other.to_string(),
        })
        .or_else(|| unit.map(str::to_string));
    Sensor {
        name,
        sensor_type: kind.to_string(),
        reading: if absent { None } else { reading },
        unit,
        status,
        thresholds,
    }
}

fn sensors_from_thermal(t: &Value) -> Vec<Sensor> {
    let mut out = Vec::new();
    for v in t
        .get("Temperatures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(legacy_sensor(
            v,
            "Temperature",
            "ReadingCelsius",
            Some("Cel"),
        ));
    }
    for v in t
        .get("Fans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(legacy_sensor(v, "Fan", "Reading", Some("RPM")));
    }
    out
}

fn sensors_from_power(p: &Value) -> Vec<Sensor> {
    let mut out = Vec::new();
    for v in p
        .get("Voltages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(legacy_sensor(v, "Voltage", "ReadingVolts", Some("V")));
    }
    for v in p
        .get("PowerControl")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push(legacy_sensor(v, "Power", "PowerConsumedWatts", Some("W")));
    }
    out
}

fn sensor_from_sensors(s: &Value) -> Sensor {
    let th = |k: &str| {
        s.pointer(&format!("/Thresholds/{k}/Reading"))
            .and_then(Value::as_f64)
    };
    let thresholds = Thresholds {
        lower_fatal: th("LowerFatal"),
        lower_critical: th("LowerCritical"),
        lower_caution: th("LowerCaution"),
        upper_caution: th("UpperCaution"),
        upper_critical: th("UpperCritical"),
        upper_fatal: th("UpperFatal"),
    };
    let reading = num(s, "Reading");
    let (status, absent) = status_of(s, reading, &thresholds);
    Sensor {
        name: s
            .get("Name")
            .or_else(|| s.get("Id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        sensor_type: s
            .get("ReadingType")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string(),
        reading: if absent { None } else { reading },
        unit: s
            .get("ReadingUnits")
            .and_then(Value::as_str)
            .map(str::to_string),
        status,
        thresholds,
    }
}

/// rustls client configurations for the inventory's TLS modes.
pub(crate) mod tls {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{
        verify_tls12_signature, verify_tls13_signature, CryptoProvider, WebPkiSupportedAlgorithms,
    };
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
    use sha2::{Digest, Sha256};

    use crate::inventory::TlsMode;

    pub(crate) fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    pub fn client_config(mode: &TlsMode) -> Result<ClientConfig, String> {
        let provider = provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?;
        let algs = provider.signature_verification_algorithms;
        let cfg = match mode {
            TlsMode::Verify => {
                let mut roots = RootCertStore::empty();
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            TlsMode::CaFile(path) => {
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("ca_file {}: no certificate in it", path.display()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            TlsMode::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { pin: None, algs }))
                .with_no_client_auth(),
            TlsMode::PinSha256(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    pin: Some(*pin),
                    algs,
                }))
                .with_no_client_auth(),
        };
        Ok(cfg)
    }

    /// Accepts the server certificate whose DER SHA-256 is `pin` (any
    /// certificate when `None`: `insecure`); handshake signatures are still
    /// checked, so the server must hold the certificate's key.
    #[derive(Debug)]
    struct Pinned {
        pin: Option<[u8; 32]>,
        algs: WebPkiSupportedAlgorithms,
    }

    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self.pin {
                None => Ok(ServerCertVerified::assertion()),
                Some(pin) => {
                    let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                    if got == pin {
                        Ok(ServerCertVerified::assertion())
                    } else {
                        Err(rustls::Error::General(format!(
                            "certificate sha256 {} does not match the pinned {}",
                            hex::encode(got),
                            hex::encode(pin)
                        )))
                    }
                }
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.algs)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.algs)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algs.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_orders() {
        let e = SelEntry {
            id: "12".to_string(),
            timestamp: None,
            sensor_type: None,
            severity: Health::Ok,
            message: String::new(),
        };
        let c = make_cursor(&e);
        assert_eq!(c.0, "-/12");
        let k = parse_cursor(&c);
        assert_eq!(k, Some(sel_key(&e)));
        let later = SelEntry {
            id: "13".to_string(),
            ..e.clone()
        };
        assert!(sel_key(&later) > sel_key(&e));
    }

    #[test]
    fn thermal_tolerates_missing_fields() {
        let t = json!({"Temperatures": [{"Name": "CPU", "ReadingCelsius": 41, "UpperThresholdCritical": 90},
                                         {"MemberId": "1", "Status": {"State": "Absent"}}],
                       "Fans": [{"FanName": "Fan1", "Reading": 40, "ReadingUnits": "Percent"}]});
        let s = sensors_from_thermal(&t);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].reading, Some(41.0));
        assert_eq!(s[0].status, Health::Ok);
        assert_eq!(s[1].reading, None);
        assert_eq!(s[2].unit.as_deref(), Some("%"));
    }
}

/// The tolerant decoders of Redfish resources, public so that they can be
/// exercised without a BMC (the fuzz targets in `fuzz/`). Each takes a
/// JSON value as a BMC served it and never fails: what is missing or
/// malformed is left out of the result.
pub mod decode {
    use serde_json::Value;

    use crate::bmc::{PowerState, SelCursor, SelEntry, Sensor};

    /// `error.message` or the first `@Message.ExtendedInfo` message of an
    /// error body.
    pub fn error_message(body: &str) -> Option<String> {
        super::redfish_message(body)
    }

    /// A ComputerSystem's `PowerState`.
    pub fn power_state(system: &Value) -> Option<PowerState> {
        system
            .get("PowerState")
            .and_then(Value::as_str)
            .and_then(super::parse_power_state)
    }

    /// A LogEntry, and the cursor a SEL read would resume after it
    /// (`None` when the cursor does not parse back).
    pub fn log_entry(entry: &Value) -> (SelEntry, Option<SelCursor>) {
        let e = super::log_entry(entry);
        let cursor = super::make_cursor(&e);
        let back = super::parse_cursor(&cursor).map(|_| cursor);
        (e, back)
    }

    /// The sensors of a legacy `Thermal` resource.
    pub fn sensors_from_thermal(thermal: &Value) -> Vec<Sensor> {
        super::sensors_from_thermal(thermal)
    }

    /// The sensors of a legacy `Power` resource.
    pub fn sensors_from_power(power: &Value) -> Vec<Sensor> {
        super::sensors_from_power(power)
    }

    /// One member of a `Sensors` collection.
    pub fn sensor(sensor: &Value) -> Sensor {
        super::sensor_from_sensors(sensor)
    }

    /// Which of these log services holds the system event log.
    pub fn pick_sel(services: &[Value]) -> Option<usize> {
        super::Redfish::pick_sel(services)
    }
}
