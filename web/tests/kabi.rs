//! KABI allowlists through the router, with real Debian data (the kernels
//! scripts/fetch-kabi-data caches): an admin publishes releases' lists in
//! several formats, everyone reads them back and diffs them, and a driver
//! of one ABI is checked against its own release (compatible) and another
//! (incompatible: module_layout's CRC) — the verdict JSON of
//! `certlab kabi check --format json`. Every upload is a log entry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use certlab_reports::tlog::LogEntry;
use common::{accounts, Portal, Reply};

const NEW: &str = "6.1.0-56-amd64";
const OLD: &str = "6.1.0-50-amd64";

/// The cache of scripts/fetch-kabi-data; panics naming it when missing.
fn kabi_data() -> PathBuf {
    let dir = std::env::var_os("CERTLAB_TEST_KABI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/certlab/kabi")
        });
    for abi in [NEW, OLD] {
        assert!(
            dir.join(abi).join("Module.symvers").is_file(),
            "kabi test data missing at {}: run scripts/fetch-kabi-data (or set CERTLAB_TEST_KABI_DIR)",
            dir.display()
        );
    }
    dir
}

fn symvers(abi: &str) -> Vec<u8> {
    std::fs::read(kabi_data().join(abi).join("Module.symvers")).unwrap()
}

/// e1000e.ko as that ABI's package ships it.
fn e1000e(abi: &str) -> Vec<u8> {
    let p = kabi_data()
        .join(abi)
        .join("modules/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko");
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/fetch-kabi-data", p.display()))
}

async fn send(p: &Portal, method: Method, uri: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    p.call(req.body(Body::from(body)).unwrap()).await
}

async fn kabi_releases(p: &Portal) {
    let a = accounts(&p.store).await;
    let put = |uri: &'static str, token: String, body: Vec<u8>| async move {
        send(p, Method::PUT, uri, Some(&token), body).await
    };

    // only admins publish
    let r = send(
        p,
        Method::PUT,
        "/api/v1/kabi/debian-12-abi56/amd64",
        None,
        symvers(NEW),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for t in [&a.vendor_a, &a.reviewer] {
        let r = put(
            "/api/v1/kabi/debian-12-abi56/amd64",
            t.clone(),
            symvers(NEW),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    }
    assert_eq!(
        p.get("/api/v1/kabi/debian-12-abi56/amd64").await.status,
        StatusCode::NOT_FOUND
    );

    // two releases, from their Module.symvers (format guessed)
    let r = put(
        "/api/v1/kabi/debian-12-abi56/amd64",
        a.admin.clone(),
        symvers(NEW),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    let lines = String::from_utf8(symvers(NEW)).unwrap().lines().count() as u64;
    assert_eq!(v["symbols"], lines);
    assert_eq!(v["source_format"], "symvers");
    assert_eq!(v["checkable"], true);
    assert_eq!(v["sha256"], certlab_reports::sha256_hex(&symvers(NEW)));
    let r = put(
        "/api/v1/kabi/debian-12-abi50/amd64",
        a.admin.clone(),
        symvers(OLD),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // the same release again replaces it: 200
    let r = put(
        "/api/v1/kabi/debian-12-abi50/amd64",
        a.admin.clone(),
        symvers(OLD),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let list = p.get("/api/v1/kabi").await.json();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["release"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["debian-12-abi50", "debian-12-abi56"]);

    // read back: as symvers, the CRC of module_layout as Debian built it
    let r = p
        .get("/api/v1/kabi/debian-12-abi56/amd64/allowlist?format=symvers")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text()
            .contains("0x9060323f\tmodule_layout\tvmlinux\tEXPORT_SYMBOL"),
        "{}",
        &r.text()[..200]
    );
    let r = p
        .get("/api/v1/kabi/debian-12-abi56/amd64/allowlist?format=rhel")
        .await;
    assert!(
        r.text().starts_with("[rhel_kabi_stablelist_amd64]\n"),
        "{}",
        &r.text()[..100]
    );
    let r = p.get("/api/v1/kabi/debian-12-abi56/amd64/allowlist").await;
    assert_eq!(r.json()["release"], "debian-12-abi56");
    let r = p
        .get("/api/v1/kabi/debian-12-abi56/amd64/allowlist?format=xml")
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "bad_format".to_string())
    );

    // the diff names module_layout among the changed CRCs
    let r = p
        .get("/api/v1/kabi/diff?from=debian-12-abi50/amd64&to=debian-12-abi56/amd64")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = r.json();
    assert!(d["crc_changed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "module_layout"));
    let r = p
        .get("/api/v1/kabi/diff?from=debian-12-abi50&to=debian-12-abi56/amd64")
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = p
        .get("/api/v1/kabi/diff?from=debian-12-abi49/amd64&to=debian-12-abi56/amd64")
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // check my driver: abi 56's e1000e against 56 is compatible …
    let r = send(
        p,
        Method::POST,
        "/api/v1/kabi/debian-12-abi56/amd64/check?name=e1000e.ko",
        None,
        e1000e(NEW),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["command"], "kabi check");
    assert_eq!(v["summary"]["checks"], 1);
    assert_eq!(v["summary"]["incompatible"], 0, "{v:#}");
    assert_eq!(v["modules"][0]["name"], "e1000e");
    assert_eq!(v["modules"][0]["compatible"], true);
    assert_eq!(
        v["inputs"][2]["sha256"],
        certlab_reports::sha256_hex(&e1000e(NEW))
    );
    // … abi 50's is not: module_layout's CRC differs, as the loader would say
    let r = send(
        p,
        Method::POST,
        "/api/v1/kabi/debian-12-abi56/amd64/check?name=e1000e.ko",
        None,
        e1000e(OLD),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let v = r.json();
    assert_eq!(v["summary"]["incompatible"], 1);
    let problems = v["modules"][0]["problems"].as_array().unwrap();
    assert_eq!(problems[0]["symbol"], "module_layout");
    assert_eq!(problems[0]["kind"], "crc");

    // a narrower list (RHEL format, no CRCs) needs the release's Module.symvers
    let narrow = "[rhel_kabi_stablelist_x86_64]\n\tkmalloc_caches\n\tnetif_rx\n";
    let r = put(
        "/api/v1/kabi/narrow-56/amd64",
        a.admin.clone(),
        narrow.into(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["source_format"], "rhel");
    assert_eq!(r.json()["checkable"], false);
    let r = send(
        p,
        Method::POST,
        "/api/v1/kabi/narrow-56/amd64/check",
        None,
        e1000e(NEW),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(r.text().contains("/symvers"), "{}", r.text());
    let r = put(
        "/api/v1/kabi/narrow-56/amd64/symvers",
        a.vendor_a.clone(),
        symvers(NEW),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put(
        "/api/v1/kabi/narrow-56/amd64/symvers",
        a.admin.clone(),
        symvers(NEW),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["checkable"], true);
    let r = send(
        p,
        Method::POST,
        "/api/v1/kabi/narrow-56/amd64/check",
        None,
        e1000e(NEW),
    )
    .await;
    let v = r.json();
    assert_eq!(v["summary"]["incompatible"], 1, "{v:#}");
    let problems = v["modules"][0]["problems"].as_array().unwrap();
    assert!(
        problems.iter().all(|p| p["kind"] == "allowlist"),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|p| p["symbol"] == "pci_enable_msi"),
        "{problems:#?}"
    );

    // bad input is refused naming why
    let r = put(
        "/api/v1/kabi/bad/amd64",
        a.admin.clone(),
        b"0xzz\tfoo\tvmlinux\tEXPORT_SYMBOL\t\n".to_vec(),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_allowlist".to_string()
        ),
        "{}",
        r.text()
    );
    let r = put("/api/v1/kabi/..%2Fetc/amd64", a.admin.clone(), symvers(NEW)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = send(
        p,
        Method::POST,
        "/api/v1/kabi/debian-12-abi56/amd64/check",
        None,
        b"not an ELF file".to_vec(),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "bad_module".to_string()),
        "{}",
        r.text()
    );
    let big = vec![0u8; certlab_web::kabi::MAX_MODULE_BYTES + 1];
    let r = send(
        p,
        Method::POST,
        "/api/v1/kabi/debian-12-abi56/amd64/check",
        None,
        big,
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());

    // pages: the list, a release with its form, and the form's verdict
    let r = p.get("/kabi").await;
    assert!(r.text().contains("/kabi/debian-12-abi56/amd64"));
    let r = p.get("/kabi/debian-12-abi56/amd64").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("module_layout") && r.text().contains("name=\"module\""));
    let boundary = "certlab-test-boundary";
    let mut form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"module\"; filename=\"e1000e.ko\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    form.extend(e1000e(OLD));
    form.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/kabi/debian-12-abi56/amd64/check")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(form))
        .unwrap();
    let r = p.call(req).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        r.text()
            .contains("NOT compatible with debian-12-abi56/amd64"),
        "{}",
        r.text()
    );

    // every upload is a log entry, with the digest of what was uploaded
    let size = p.get("/api/v1/log/head").await.json()["size"]
        .as_u64()
        .unwrap();
    let entries: Vec<LogEntry> = serde_json::from_value(
        p.get(&format!("/api/v1/log/entries?from=0&to={size}"))
            .await
            .json()["entries"]
            .clone(),
    )
    .unwrap();
    let kabi: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.subject.as_str(), e.data["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kabi,
        [
            ("kabi/debian-12-abi56/amd64", "upload"),
            ("kabi/debian-12-abi50/amd64", "upload"),
            ("kabi/debian-12-abi50/amd64", "upload"),
            ("kabi/narrow-56/amd64", "upload"),
            ("kabi/narrow-56/amd64", "upload_symvers"),
        ]
    );
    assert_eq!(entries[0].actor, "admin@lab.example");
    assert_eq!(
        entries[0].data["allowlist_sha256"],
        certlab_reports::sha256_hex(&symvers(NEW)).as_str()
    );
}

#[tokio::test]
async fn kabi_allowlists_diffs_and_driver_checks_sqlite() {
    let p = Portal::sqlite().await;
    kabi_releases(&p).await;
    p.close().await;
}

#[tokio::test]
async fn kabi_allowlists_diffs_and_driver_checks_postgres() {
    let p = Portal::postgres().await;
    kabi_releases(&p).await;
    p.close().await;
}
