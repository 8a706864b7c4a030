//! Helpers of the portal's tests: a portal over a fresh SQLite file or
//! PostgreSQL database, accounts, bundles made by reports' own writer,
//! and one-shot requests through the router.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use certlab_reports::{build_bundle, junit_xml, report_html, RunRecord, SigningKey};
use certlab_web::{app, AppState, Config, PortalStore, Role};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const FIXTURE: &str = include_str!("../fixtures/results-v2.json");

/// The creation time of test bundles.
pub const CREATED: time::OffsetDateTime = time::macros::datetime!(2026-03-14 10:41:07 UTC);

/// A fixed signing key per seed.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// The fixture record of host `host`, with the outcome `pass` (all cases
/// counted as passed) so that it can be certified.
pub fn record(host: &str) -> RunRecord {
    let mut r: RunRecord = serde_json::from_str(FIXTURE).unwrap();
    r.host.hostname = host.to_string();
    r.run_id = format!("00000000-0000-4000-8000-{:012x}", fxhash(host));
    for c in &mut r.cases {
        c.verdict = certlab_reports::Verdict::Pass;
    }
    r.summary = certlab_reports::Summary::of(&r.cases);
    r
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    }) & 0xffff_ffff_ffff
}

/// The files of a bundle of `record`: results.json, junit.xml, report.html
/// and one evidence file, as `certlab certify` writes them.
pub fn bundle_files(record: &RunRecord) -> Vec<(String, Vec<u8>)> {
    let mut results = serde_json::to_vec_pretty(record).unwrap();
    results.push(b'\n');
    let evidence = format!("inventory of {}\n", record.host.hostname).into_bytes();
    vec![
        ("results.json".into(), results),
        ("junit.xml".into(), junit_xml(record).into_bytes()),
        (
            "report.html".into(),
            report_html(record).unwrap().into_bytes(),
        ),
        (
            format!("evidence/{}", certlab_reports::sha256_hex(&evidence)),
            evidence,
        ),
    ]
}

/// A signed bundle of `record`.
pub fn bundle(record: &RunRecord, signer: &SigningKey) -> Vec<u8> {
    bundle_of(&bundle_files(record), signer)
}

pub fn bundle_of(files: &[(String, Vec<u8>)], signer: &SigningKey) -> Vec<u8> {
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    build_bundle(&refs, signer, CREATED).unwrap()
}

/// Accounts: organisations `acme` (key 1) and `globex` (key 2), a vendor of
/// each, a reviewer and an admin of `certlab-lab`. Key 3 is nobody's.
pub struct Accounts {
    pub vendor_a: String,
    pub vendor_b: String,
    pub reviewer: String,
    pub admin: String,
}

pub async fn accounts(store: &PortalStore) -> Accounts {
    let now = time::OffsetDateTime::now_utc();
    for org in ["acme", "globex", "certlab-lab"] {
        store.create_org(org, now).await.unwrap();
    }
    store
        .add_key("acme", &key(1).verifying_key(), now)
        .await
        .unwrap();
    store
        .add_key("globex", &key(2).verifying_key(), now)
        .await
        .unwrap();
    let token = |email: &'static str, org: &'static str, role: Role| {
        let store = store.clone();
        async move {
            let pw = certlab_web::auth::hash_password("correct horse battery").unwrap();
            let user = store
                .create_user(email, org, role, Some(&pw), now)
                .await
                .unwrap();
            let (token, digest) = certlab_web::auth::new_token();
            store.add_token(&user.id, &digest, now).await.unwrap();
            token
        }
    };
    Accounts {
        vendor_a: token("vendor@acme.example", "acme", Role::Vendor).await,
        vendor_b: token("vendor@globex.example", "globex", Role::Vendor).await,
        reviewer: token("reviewer@lab.example", "certlab-lab", Role::Reviewer).await,
        admin: token("admin@lab.example", "certlab-lab", Role::Admin).await,
    }
}

/// A portal over a fresh database, its data directory in a temporary folder.
pub struct Portal {
    pub app: Router,
    pub state: AppState,
    pub store: PortalStore,
    pub dir: tempfile::TempDir,
    pub pg: Option<TempDb>,
}

impl Portal {
    pub async fn sqlite() -> Portal {
        Portal::sqlite_with(|_| {}).await
    }

    pub async fn sqlite_with(tune: impl FnOnce(&mut Config)) -> Portal {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("portal.db").display());
        Portal::open(&url, dir, None, tune).await
    }

    pub async fn postgres() -> Portal {
        Portal::postgres_with(|_| {}).await
    }

    pub async fn postgres_with(tune: impl FnOnce(&mut Config)) -> Portal {
        let db = TempDb::create().await;
        let url = db.url.clone();
        Portal::open(&url, tempfile::tempdir().unwrap(), Some(db), tune).await
    }

    async fn open(
        url: &str,
        dir: tempfile::TempDir,
        pg: Option<TempDb>,
        tune: impl FnOnce(&mut Config),
    ) -> Portal {
        let store = PortalStore::open(url).await.unwrap();
        let mut config = Config::new(dir.path().join("data"));
        tune(&mut config);
        let state = AppState::new(store.clone(), config).unwrap();
        Portal {
            app: app(state.clone()),
            state,
            store,
            dir,
            pg,
        }
    }

    pub fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Files under the data directory (uploads and artifacts), relative.
    pub fn stored_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for sub in ["uploads", "artifacts"] {
            let d = self.data().join(sub);
            for e in std::fs::read_dir(&d).unwrap() {
                out.push(format!(
                    "{sub}/{}",
                    e.unwrap().file_name().to_string_lossy()
                ));
            }
        }
        out.sort();
        out
    }

    pub async fn close(self) {
        self.store.close().await;
        if let Some(pg) = self.pg {
            pg.drop_db().await;
        }
    }

    pub async fn call(&self, req: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `method uri` with a bearer token (or none) and a JSON body (or none).
    pub async fn api(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        json: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = match json {
            Some(v) => {
                req = req.header("content-type", "application/json");
                Body::from(serde_json::to_vec(&v).unwrap())
            }
            None => Body::empty(),
        };
        self.call(req.body(body).unwrap()).await
    }

    /// `POST /api/v1/submissions` of raw tar bytes.
    pub async fn submit(&self, token: &str, bundle: Vec<u8>) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/submissions")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/x-tar")
            .body(Body::from(bundle))
            .unwrap();
        self.call(req).await
    }

    pub async fn get(&self, uri: &str) -> Reply {
        self.api(Method::GET, uri, None, None).await
    }

    pub async fn review(&self, token: &str, id: &str, action: &str, comment: &str) -> Reply {
        self.api(
            Method::POST,
            &format!("/api/v1/submissions/{id}/review"),
            Some(token),
            Some(serde_json::json!({ "action": action, "comment": comment })),
        )
        .await
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of an API error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

/// A fresh PostgreSQL database per test (`CERTLAB_TEST_PG_URL`, an admin
/// database with trust auth, else 127.0.0.1:5432): the end-to-end tests' helper.
#[path = "../../../tests/common/pg.rs"]
mod pg;
pub use pg::TempDb;
