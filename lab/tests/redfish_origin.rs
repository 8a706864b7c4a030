//! Credentials go only to the configured BMC origin, and Redfish answers
//! are bounded.
//!
//! A recorded tree served by the replay server is edited so that one of its
//! links (`@odata.id`, `Members@odata.nextLink`, the session login link)
//! or a `302 Location` points at another loopback port, where a listener
//! records every request it receives. The client must refuse with an error
//! naming that origin, and the listener must receive nothing — with basic
//! auth and with Redfish sessions (`X-Auth-Token`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use certlab_lab::bmc::redfish::{AuthMode, Redfish, RedfishConfig, MAX_BODY_BYTES};
use certlab_lab::bmc::replay::{Replay, ReplayOptions};
use certlab_lab::bmc::{Bmc, BmcError};
use certlab_lab::inventory::Secret;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "admin";
const PASS: &str = "origin-test-pw";

fn fixture_tree(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/redfish/trees")
        .join(name)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// A copy of a fixture tree, to edit.
fn crafted_tree(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixture_tree(name), dir.path());
    dir
}

fn edit(tree: &Path, resource: &str, f: impl FnOnce(&mut Value)) {
    let p = tree.join(resource).join("index.json");
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&p, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// A loopback HTTP listener that records the head of every request and
/// answers each with `answer(path)` (a full HTTP response).
struct Peer {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Peer {
    async fn start(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> Peer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let rec = heads.clone();
        let answer = Arc::new(answer);
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let rec = rec.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    rec.lock().unwrap().push(head);
                    let _ = sock.write_all(&answer(&path)).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Peer { addr, heads, task }
    }

    /// A peer that answers `{}` to everything: the place a credential
    /// must never reach.
    async fn recorder() -> Peer {
        Peer::start(|_| http_response("200 OK", &[], b"{}")).await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn http_response(status: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

struct Served {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(tree: &Path) -> Served {
    let replay = Replay::load(
        tree,
        ReplayOptions {
            power_delay: Duration::ZERO,
            auth: Some((USER.to_string(), Secret::new(PASS))),
            tls: false,
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let _ = replay.run(listener).await;
    });
    Served { addr, task }
}

fn client(url: &str, auth: AuthMode) -> Redfish {
    let mut cfg = RedfishConfig::new("origin-bmc", url, USER, Secret::new(PASS));
    cfg.auth = auth;
    cfg.timeout = Duration::from_secs(10);
    Redfish::new(cfg).unwrap()
}

/// The error refuses the foreign origin by name, is fatal, and the
/// recorder received nothing at all.
fn assert_refused(e: &BmcError, peer: &Peer) {
    let root = e.root();
    assert!(
        matches!(root, BmcError::ForeignOrigin { .. }),
        "expected a foreign-origin refusal, got {e}"
    );
    assert!(!e.is_retryable(), "{e}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("http://{}", peer.addr)), "{msg}");
    assert!(!msg.contains(PASS), "{msg}");
    let heads = peer.heads();
    assert!(
        heads.is_empty(),
        "the foreign origin received requests: {heads:?}"
    );
}

const AUTHS: [AuthMode; 2] = [AuthMode::Basic, AuthMode::Session];

#[tokio::test]
async fn an_odata_id_to_another_origin_gets_no_credentials() {
    for auth in AUTHS {
        let peer = Peer::recorder().await;
        let tree = crafted_tree("dmtf-public-tower");
        let foreign = format!("{}/redfish/v1/Systems", peer.url());
        edit(tree.path(), "", |v| {
            v["Systems"] = json!({ "@odata.id": foreign })
        });
        let srv = serve(tree.path()).await;
        let rf = client(&format!("http://{}", srv.addr), auth);
        let e = rf.power_status().await.unwrap_err();
        assert_refused(&e, &peer);
        assert!(e.to_string().contains(&foreign), "names the link: {e}");
    }
}

#[tokio::test]
async fn a_member_link_to_another_origin_gets_no_credentials() {
    for auth in AUTHS {
        let peer = Peer::recorder().await;
        let tree = crafted_tree("dmtf-public-tower");
        let foreign = format!("{}/redfish/v1/Systems/437XR1238R2", peer.url());
        edit(tree.path(), "Systems", |v| {
            v["Members"] = json!([{ "@odata.id": foreign }])
        });
        let srv = serve(tree.path()).await;
        let e = client(&format!("http://{}", srv.addr), auth)
            .power_status()
            .await
            .unwrap_err();
        assert_refused(&e, &peer);
    }
}

#[tokio::test]
async fn a_next_link_to_another_origin_gets_no_credentials() {
    for auth in AUTHS {
        let peer = Peer::recorder().await;
        let tree = crafted_tree("dmtf-public-tower");
        let next = format!("{}/redfish/v1/Systems?$skip=1", peer.url());
        edit(tree.path(), "Systems", |v| {
            v["Members@odata.nextLink"] = json!(next)
        });
        let srv = serve(tree.path()).await;
        let e = client(&format!("http://{}", srv.addr), auth)
            .systems()
            .await
            .unwrap_err();
        assert_refused(&e, &peer);
    }
}

#[tokio::test]
async fn a_session_link_to_another_origin_gets_no_password() {
    let peer = Peer::recorder().await;
    let tree = crafted_tree("dmtf-public-tower");
    let sessions = format!("{}/redfish/v1/SessionService/Sessions", peer.url());
    edit(tree.path(), "", |v| {
        v["Links"]["Sessions"] = json!({ "@odata.id": sessions })
    });
    let srv = serve(tree.path()).await;
    let e = client(&format!("http://{}", srv.addr), AuthMode::Session)
        .power_status()
        .await
        .unwrap_err();
    assert_refused(&e, &peer);
}

#[tokio::test]
async fn a_scheme_or_port_change_is_another_origin() {
    // Same host, other port; and https on the same port.
    let peer = Peer::recorder().await;
    let tree = crafted_tree("dmtf-public-tower");
    let srv = serve(tree.path()).await;
    let https = format!("https://{}/redfish/v1/Systems", srv.addr);
    edit(tree.path(), "", |v| {
        v["Systems"] = json!({ "@odata.id": https })
    });
    let srv2 = serve(tree.path()).await;
    let e = client(&format!("http://{}", srv2.addr), AuthMode::Basic)
        .power_status()
        .await
        .unwrap_err();
    assert!(matches!(e.root(), BmcError::ForeignOrigin { .. }), "{e}");
    assert!(
        e.to_string().contains(&format!("https://{}", srv.addr)),
        "{e}"
    );
    assert!(peer.heads().is_empty());
    // A protocol-relative link to another host is resolved, then refused.
    let tree = crafted_tree("dmtf-public-tower");
    let rel = format!("//{}/redfish/v1/Systems", peer.addr);
    edit(tree.path(), "", |v| {
        v["Systems"] = json!({ "@odata.id": rel })
    });
    let srv3 = serve(tree.path()).await;
    let e = client(&format!("http://{}", srv3.addr), AuthMode::Basic)
        .power_status()
        .await
        .unwrap_err();
    assert_refused(&e, &peer);
    // An absolute link to the BMC's own origin is followed.
    let tree = crafted_tree("dmtf-public-tower");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let own = format!("http://{addr}/redfish/v1/Systems");
    edit(tree.path(), "", |v| {
        v["Systems"] = json!({ "@odata.id": own })
    });
    let replay = Replay::load(tree.path(), ReplayOptions::default()).unwrap();
    let task = tokio::spawn(async move {
        let _ = replay.run(listener).await;
    });
    let got = client(&format!("http://{addr}"), AuthMode::Basic)
        .systems()
        .await;
    task.abort();
    assert_eq!(
        got.unwrap(),
        vec!["/redfish/v1/Systems/437XR1238R2".to_string()]
    );
}

#[tokio::test]
async fn a_redirect_to_another_origin_gets_no_credentials() {
    for auth in AUTHS {
        let peer = Peer::recorder().await;
        let target = format!("{}/redfish/v1/", peer.url());
        // The configured BMC answers every request with a redirect.
        let bmc =
            Peer::start(move |_| http_response("302 Found", &[("location", &target)], b"")).await;
        let rf = client(&bmc.url(), auth);
        let e = rf.power_status().await.unwrap_err();
        assert_refused(&e, &peer);
        assert!(!bmc.heads().is_empty(), "the configured bmc was asked");
    }
}

#[tokio::test]
async fn a_redirect_within_the_bmc_is_followed() {
    let tree = crafted_tree("dmtf-public-tower");
    let bmc_addr: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
    let slot = bmc_addr.clone();
    // A front that redirects /redfish/v1/Systems to the same origin's
    // /moved/... which it proxies by answering the real collection.
    let systems: Value = serde_json::from_str(
        &std::fs::read_to_string(tree.path().join("Systems/index.json")).unwrap(),
    )
    .unwrap();
    let root =
        json!({"@odata.id": "/redfish/v1/", "Systems": {"@odata.id": "/redfish/v1/Systems"}});
    let front = Peer::start(move |path| {
        let me = slot.lock().unwrap().unwrap();
        match path {
            "/redfish/v1/" | "/redfish/v1" => {
                http_response("200 OK", &[], root.to_string().as_bytes())
            }
            "/redfish/v1/Systems" => http_response(
                "302 Found",
                &[("location", &format!("http://{me}/moved/Systems"))],
                b"",
            ),
            "/moved/Systems" => http_response("200 OK", &[], systems.to_string().as_bytes()),
            _ => http_response("404 Not Found", &[], b"{}"),
        }
    })
    .await;
    *bmc_addr.lock().unwrap() = Some(front.addr);
    let got = client(&front.url(), AuthMode::Basic)
        .systems()
        .await
        .unwrap();
    assert_eq!(got, vec!["/redfish/v1/Systems/437XR1238R2".to_string()]);
    // The redirect was followed with the credentials, to the same origin.
    let heads = front.heads();
    let moved = heads
        .iter()
        .find(|h| h.starts_with("GET /moved/Systems"))
        .expect("redirect followed");
    assert!(
        moved.to_ascii_lowercase().contains("authorization: basic"),
        "{moved}"
    );
}

#[tokio::test]
async fn a_response_body_over_the_limit_is_refused() {
    // Declared too large: refused from Content-Length, before reading.
    let declared = Peer::start(|_| {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{{",
            MAX_BODY_BYTES + 1
        )
        .into_bytes()
    })
    .await;
    let e = client(&declared.url(), AuthMode::Basic)
        .power_status()
        .await
        .unwrap_err();
    assert!(matches!(e.root(), BmcError::InvalidResponse { .. }), "{e}");
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    // Streamed without a length (chunked): refused once the cap is passed.
    let chunked = Peer::start(|_| {
        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n".to_vec();
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..(MAX_BODY_BYTES / (1 << 20) + 2) {
            out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            out.extend_from_slice(&chunk);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    })
    .await;
    let e = client(&chunked.url(), AuthMode::Basic)
        .power_status()
        .await
        .unwrap_err();
    assert!(matches!(e.root(), BmcError::InvalidResponse { .. }), "{e}");
    assert!(e.to_string().contains("exceeds the limit"), "{e}");
    // Just under the limit is read (and then judged as JSON).
    let mut cfg = RedfishConfig::new("small", chunked.url(), USER, Secret::new(PASS));
    cfg.max_body = MAX_BODY_BYTES * 2;
    let e = Redfish::new(cfg).unwrap().power_status().await.unwrap_err();
    assert!(!e.to_string().contains("exceeds the limit"), "{e}");
}
