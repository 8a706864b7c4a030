//! The transparency log through the router: every state change is an
//! entry, the chain and the signed head verify with the served key, proofs
//! verify against the head, the key persists in the data directory, and
//! bad ranges are 4xx naming the range — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use certlab_reports::tlog::{
    parse_hash, verify_consistency, verify_inclusion, verify_log, LogEntry, TreeHead,
};
use common::{accounts, bundle, key, record, Portal};
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::VerifyingKey;
use serde_json::Value;

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|h| parse_hash(h.as_str().unwrap()).unwrap())
        .collect()
}

async fn head(p: &Portal) -> TreeHead {
    let r = p.get("/api/v1/log/head").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

async fn served_key(p: &Portal) -> VerifyingKey {
    let r = p.get("/api/v1/log/key").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let k = r.json();
    let key = VerifyingKey::from_public_key_pem(k["public_key_pem"].as_str().unwrap()).unwrap();
    assert_eq!(k["key_id"], certlab_reports::key_id(&key));
    assert_eq!(k["key_id"], p.state.log().key_id());
    key
}

async fn entries(p: &Portal, from: u64, to: u64) -> Vec<LogEntry> {
    let r = p
        .get(&format!("/api/v1/log/entries?from={from}&to={to}"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    serde_json::from_value(r.json()["entries"].clone()).unwrap()
}

async fn log_of_a_lifecycle(p: &Portal) {
    let a = accounts(&p.store).await;
    let empty = head(p).await;
    assert_eq!(empty.size, 0);
    let log_key = served_key(p).await;
    verify_log(&[], &empty, &log_key).unwrap();

    let b = bundle(&record("taishan-07.lab"), &key(1));
    let r = p.submit(&a.vendor_a, b.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let first = head(p).await;
    assert_eq!(first.size, 1);
    // submitting the same bundle again changes nothing, so logs nothing
    assert_eq!(
        p.submit(&a.vendor_a, b.clone()).await.status,
        StatusCode::OK
    );
    for (token, action, comment) in [
        (&a.reviewer, "start", "taking it"),
        (&a.admin, "approve", "all blockers pass"),
        (&a.reviewer, "revoke", "firmware recalled"),
    ] {
        let r = p.review(token, &id, action, comment).await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.text());
    }
    // a refused action changes nothing, so logs nothing
    assert_eq!(
        p.review(&a.reviewer, &id, "approve", "again").await.status,
        StatusCode::CONFLICT
    );

    let h = head(p).await;
    let all = entries(p, 0, h.size).await;
    verify_log(&all, &h, &log_key).unwrap();
    let got: Vec<(String, String, String)> = all
        .iter()
        .map(|e| {
            (
                e.subject.split('/').next().unwrap().to_string(),
                e.event.clone(),
                e.actor.clone(),
            )
        })
        .collect();
    let want = [
        ("submission", "submitted", "vendor@acme.example"),
        ("submission", "in_review", "reviewer@lab.example"),
        ("submission", "approved", "admin@lab.example"),
        ("certification", "published", "admin@lab.example"),
        ("submission", "revoked", "reviewer@lab.example"),
        ("certification", "revoked", "reviewer@lab.example"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(got, want);
    let sha = certlab_reports::sha256_hex(&b);
    for e in &all {
        assert_eq!(e.data["bundle_sha256"], sha.as_str(), "{e:?}");
    }
    assert_eq!(all[0].subject, format!("submission/{id}"));
    assert_eq!(all[0].data["from"], Value::Null);
    assert_eq!(all[2].data["from"], "in_review");
    assert_eq!(all[2].data["to"], "approved");
    assert_eq!(all[2].data["comment"], "all blockers pass");

    // the head is the same until something changes; its signature is fresh
    let again = head(p).await;
    assert_eq!((again.size, &again.root), (h.size, &h.root));

    // every entry's inclusion proof verifies against the head's root
    let root = h.root_hash().unwrap();
    for e in &all {
        let r = p.get(&format!("/api/v1/log/proof/{}", e.index)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let proof = r.json();
        assert_eq!(proof["size"], h.size);
        assert_eq!(proof["root"], h.root.as_str());
        assert_eq!(proof["leaf_hash"], hex::encode(e.leaf_hash()));
        let path = hashes(&proof["path"]);
        assert!(verify_inclusion(
            &e.leaf_hash(),
            e.index,
            h.size,
            &path,
            &root
        ));
    }
    // … and in an older tree, named by size
    let r = p.get("/api/v1/log/proof/0?size=1").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["root"], first.root.as_str());

    // the head after the first change is a prefix of today's
    let r = p
        .get(&format!("/api/v1/log/consistency?from=1&to={}", h.size))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let c = r.json();
    assert_eq!(c["from_root"], first.root.as_str());
    assert_eq!(c["to_root"], h.root.as_str());
    assert!(verify_consistency(
        1,
        h.size,
        &first.root_hash().unwrap(),
        &root,
        &hashes(&c["proof"])
    ));

    // pages: a range inside the log, clamped to its end
    let page = entries(p, 2, 4).await;
    assert_eq!(page, all[2..4].to_vec());
    let r = p.get("/api/v1/log/entries?from=3&to=999999").await;
    assert_eq!(r.json()["to"], h.size);
    assert_eq!(r.json()["entries"].as_array().unwrap().len(), 3);

    // bad ranges are 4xx naming them
    for (uri, status, code) in [
        (
            "/api/v1/log/entries?from=99",
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            "/api/v1/log/entries?from=4&to=2",
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            "/api/v1/log/entries?from=x",
            StatusCode::BAD_REQUEST,
            "bad_query",
        ),
        ("/api/v1/log/proof/6", StatusCode::NOT_FOUND, "not_found"),
        ("/api/v1/log/proof/x", StatusCode::BAD_REQUEST, "bad_index"),
        (
            "/api/v1/log/proof/0?size=7",
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            "/api/v1/log/consistency?from=0",
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            "/api/v1/log/consistency",
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            "/api/v1/log/consistency?from=3&to=2",
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
    ] {
        let r = p.get(uri).await;
        assert_eq!(
            (r.status, r.code()),
            (status, code.to_string()),
            "{uri}: {}",
            r.text()
        );
    }

    // the public page lists the entries, newest first, and the head
    let r = p.get("/log").await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains(&h.root), "{html}");
    assert!(html.contains("firmware recalled"));
    let newest = html.find("firmware recalled").unwrap();
    let oldest = html.find("taking it").unwrap();
    assert!(newest < oldest, "newest first");
}

#[tokio::test]
async fn every_change_is_a_verifiable_log_entry_sqlite() {
    let p = Portal::sqlite().await;
    log_of_a_lifecycle(&p).await;
    p.close().await;
}

#[tokio::test]
async fn every_change_is_a_verifiable_log_entry_postgres() {
    let p = Portal::postgres().await;
    log_of_a_lifecycle(&p).await;
    p.close().await;
}

#[tokio::test]
async fn the_log_key_is_made_once_private_and_kept() {
    let p = Portal::sqlite().await;
    let id = p.state.log().key_id().to_string();
    let file = p.data().join("log-key").join("certlab-signing.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", file.display());
    }
    // a second state over the same data directory signs with the same key
    let again =
        certlab_web::AppState::new(p.store.clone(), certlab_web::Config::new(p.data())).unwrap();
    assert_eq!(again.log().key_id(), id);
    p.close().await;
}

#[tokio::test]
async fn a_page_of_entries_is_bounded() {
    let p = Portal::sqlite().await;
    accounts(&p.store).await;
    let admin = p
        .store
        .user_by_email("admin@lab.example")
        .await
        .unwrap()
        .unwrap();
    let json = r#"{"format":"certlab-kabi-allowlist","version":1,"symbols":[{"name":"printk"}]}"#;
    let n = certlab_web::transparency::MAX_ENTRIES_PAGE + 5;
    for i in 0..n {
        let release = format!("r{i}");
        p.store
            .put_kabi(
                &certlab_web::store::NewKabi {
                    release: &release,
                    arch: "amd64",
                    source_format: "json",
                    sha256: &certlab_reports::sha256_hex(json.as_bytes()),
                    symbols: 1,
                    allowlist_json: json,
                    symvers: None,
                },
                &admin,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
    }
    let r = p.get("/api/v1/log/entries").await;
    let v = r.json();
    assert_eq!(v["size"], n);
    assert_eq!(v["to"], certlab_web::transparency::MAX_ENTRIES_PAGE);
    assert_eq!(
        v["entries"].as_array().unwrap().len() as u64,
        certlab_web::transparency::MAX_ENTRIES_PAGE
    );
    // the rest on the next page; the whole log verifies
    let rest = entries(&p, certlab_web::transparency::MAX_ENTRIES_PAGE, n).await;
    assert_eq!(rest.len(), 5);
    let mut all = entries(&p, 0, certlab_web::transparency::MAX_ENTRIES_PAGE).await;
    all.extend(rest);
    verify_log(&all, &head(&p).await, &served_key(&p).await).unwrap();
    p.close().await;
}
