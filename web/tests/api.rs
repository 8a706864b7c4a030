//! The portal through its router (`oneshot`, no socket): health, metrics,
//! headers, errors, submission with every reason to refuse a bundle, the
//! review flow and the public list, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::{Method, StatusCode};
use common::{accounts, bundle, bundle_files, bundle_of, key, record, Portal, CREATED};
use serde_json::Value;

#[tokio::test]
async fn an_unfinished_upload_of_an_earlier_process_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("data/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join(".upload-killed"), b"half a bundle").unwrap();
    std::fs::write(uploads.join("kept"), b"not ours").unwrap();
    let store = certlab_web::PortalStore::open(dir.path().join("p.db").to_str().unwrap())
        .await
        .unwrap();
    certlab_web::AppState::new(
        store.clone(),
        certlab_web::Config::new(dir.path().join("data")),
    )
    .unwrap();
    assert!(!uploads.join(".upload-killed").exists());
    assert!(uploads.join("kept").exists());
    store.close().await;
}

#[tokio::test]
async fn health_metrics_and_security_headers() {
    let p = Portal::sqlite().await;
    let r = p.get("/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.text(), "ok\n");
    for (name, want) in [
        ("content-security-policy", "default-src 'self'"),
        ("content-security-policy", "frame-ancestors 'none'"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
    ] {
        assert!(
            r.header(name).contains(want),
            "{name}: {:?}",
            r.header(name)
        );
    }
    p.get("/no/such/page").await;
    p.get("/api/v1/certifications").await;
    p.get("/api/v1/certifications/x").await;
    p.get("/api/v1/certifications/y").await;
    let m = p.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m
        .header("content-type")
        .starts_with("text/plain; version=0.0.4"));
    let text = m.text();
    assert!(
        text.contains("certlab_portal_requests_total{route=\"/healthz\",status=\"200\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("certlab_portal_requests_total{route=\"unmatched\",status=\"404\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("certlab_portal_submissions{state=\"submitted\"} 0\n"));
    // nested API routes by their pattern, not their path
    assert!(
        text.contains("{route=\"/api/v1/certifications\",status=\"200\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("{route=\"/api/v1/certifications/{id}\",status=\"404\"} 2\n"),
        "{text}"
    );
    p.close().await;
}

#[tokio::test]
async fn errors_are_json_under_api_and_html_elsewhere() {
    let p = Portal::sqlite().await;
    let api = p.get("/api/v1/certifications/nope").await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert!(api.header("content-type").starts_with("application/json"));
    assert_eq!(api.code(), "not_found");
    assert!(api.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("certification nope"));
    let page = p.get("/certifications/nope").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(
        page.text().contains("certification nope not found"),
        "{}",
        page.text()
    );
    assert!(page.text().contains("<h1>404 Not Found</h1>"));
    // no token
    let r = p.get("/api/v1/submissions").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "unauthorized");
    let r = p
        .api(Method::GET, "/api/v1/submissions", Some("clp_forged"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json()["error"]["message"], "unknown API token");
    p.close().await;
}

/// The whole path of a bundle, on one backend: submitted, the same bundle
/// again, reviewed, approved, found in the list, its report and bundle
/// downloadable, revoked.
async fn submission_lifecycle(p: &Portal) {
    let a = accounts(&p.store).await;
    let b = bundle(&record("taishan-07.lab"), &key(1));
    let r = p.submit(&a.vendor_a, b.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let s = r.json();
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["state"], "submitted");
    assert_eq!(s["org"], "acme");
    assert_eq!(s["url"], format!("/submissions/{id}"));
    assert_eq!(s["bundle_sha256"], certlab_reports::sha256_hex(&b));
    assert_eq!(
        s["key_id"],
        certlab_reports::key_id(&key(1).verifying_key())
    );

    // the artifacts and the bundle are stored content-addressed; no upload left over
    let stored = p.stored_files();
    for (name, bytes) in bundle_files(&record("taishan-07.lab")) {
        let want = format!("artifacts/{}", certlab_reports::sha256_hex(&bytes));
        assert!(stored.contains(&want), "{name} not stored: {stored:?}");
    }
    assert!(stored.contains(&format!("artifacts/{}", certlab_reports::sha256_hex(&b))));
    assert!(
        !stored.iter().any(|f| f.starts_with("uploads/")),
        "{stored:?}"
    );

    let again = p.submit(&a.vendor_a, b.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.json()["id"], id.as_str());

    // review: approve before start is refused with the reason
    let r = p.review(&a.reviewer, &id, "approve", "lgtm").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(
        r.text().contains("a review must be started first"),
        "{}",
        r.text()
    );
    let r = p.review(&a.reviewer, &id, "start", "taking it").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["state"], "in_review");
    let r = p
        .review(&a.admin, &id, "approve", "all blockers pass")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let detail = r.json();
    assert_eq!(detail["state"], "approved");
    let cert_id = detail["certification"].as_str().unwrap().to_string();
    let history: Vec<(String, String, String)> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["action"].as_str().unwrap().to_string(),
                h["to"].as_str().unwrap().to_string(),
                h["comment"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("submit", "submitted", ""),
        ("start", "in_review", "taking it"),
        ("approve", "approved", "all blockers pass"),
        ("publish", "published", "all blockers pass"),
    ];
    let want: Vec<(String, String, String)> = want
        .iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect();
    assert_eq!(history, want);
    assert_eq!(detail["results"]["outcome"], "pass");
    assert_eq!(detail["results"]["hostname"], "taishan-07.lab");

    // the certification, with the fields taken from results.json
    let c = p
        .get(&format!("/api/v1/certifications/{cert_id}"))
        .await
        .json();
    assert_eq!(c["vendor"], "Huawei");
    assert_eq!(c["product"], "TaiShan 200 (Model 2280)");
    assert_eq!(c["firmware"], "1.89");
    assert_eq!(c["cpu_family"], "kunpeng");
    assert_eq!(c["cpu_model"], "Kunpeng-920");
    assert_eq!(c["arch"], "aarch64");
    assert_eq!(c["os_id"], "openEuler");
    assert_eq!(c["os_version"], "22.03");
    assert_eq!(c["kernel"], "5.10.0-182.0.0.95.oe2203sp3.aarch64");
    assert_eq!(c["plan"], "server-cert");
    assert_eq!(c["outcome"], "pass");
    assert_eq!(c["org"], "acme");
    let components = c["components"].as_array().unwrap();
    let mlx = components
        .iter()
        .find(|x| x["pci_id"] == "15b3:1017")
        .expect("the ConnectX-5 is a component");
    assert_eq!(mlx["driver"], "mlx5_core");
    assert!(
        components
            .iter()
            .all(|x| !x["class"].as_str().unwrap().starts_with("06")),
        "bridges are not components: {components:?}"
    );
    assert_eq!(c["profile"]["cpu_core"], "TSV110");
    assert_eq!(c["profile"]["sockets"], 2);
    assert_eq!(
        c["profile"]["accelerators"][0],
        "Huawei Ascend 310P (19e5:d500)"
    );

    // report and bundle downloads are the submitted bytes
    let report = p.get(&format!("/certifications/{cert_id}/report")).await;
    assert_eq!(report.status, StatusCode::OK);
    assert!(report.header("content-security-policy").contains("sandbox"));
    let want_report = &bundle_files(&record("taishan-07.lab"))[2];
    assert_eq!(want_report.0, "report.html");
    assert_eq!(report.body, want_report.1);
    let dl = p.get(&format!("/certifications/{cert_id}/bundle")).await;
    assert_eq!(dl.status, StatusCode::OK);
    assert_eq!(dl.body, b);
    assert!(certlab_reports::verify_bundle(&dl.body, Some(&key(1).verifying_key())).is_ok());

    // found in the list, by search and by each filter
    for query in [
        "",
        "?q=taishan",
        "?q=KUNPENG+huawei",
        "?vendor=Huawei",
        "?family=kunpeng",
        "?arch=aarch64",
        "?os=openEuler",
        "?os=openEuler-22.03",
        "?vendor=huawei",
        "?os=openeuler-22.03",
        "?family=Kunpeng&arch=AArch64",
        "?component=15b3:1017",
        "?component=mlx5_core",
        "?component=connectx",
    ] {
        let l = p
            .get(&format!("/api/v1/certifications{query}"))
            .await
            .json();
        assert_eq!(l["total"], 1, "{query}: {l}");
        assert_eq!(l["items"][0]["id"], cert_id.as_str(), "{query}");
    }
    for query in [
        "?q=dell",
        "?vendor=hua",
        "?family=intel",
        "?arch=x86_64",
        "?os=debian",
        "?os=openEuler-24.03",
        "?component=8086:1572",
        "?q=%25",
    ] {
        let l = p
            .get(&format!("/api/v1/certifications{query}"))
            .await
            .json();
        assert_eq!(l["total"], 0, "{query}: {l}");
    }
    let page = p.get("/?q=taishan").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains(&format!("/certifications/{cert_id}")));
    let page = p.get(&format!("/certifications/{cert_id}")).await;
    assert!(page.text().contains("Kunpeng-920"), "{}", page.text());
    assert!(page.text().contains("<dd>512 GiB</dd>"), "{}", page.text());
    assert!(page.text().contains("TSV110"));
    let comp = p.get("/api/v1/components/15b3:1017").await.json();
    assert_eq!(comp["total"], 1);
    assert_eq!(comp["component"]["name"], "MT27800 Family [ConnectX-5]");
    let comp_page = p.get("/components/15b3:1017").await;
    assert!(comp_page.text().contains("TaiShan 200"));

    // metrics count submissions by state
    let m = p.get("/metrics").await.text();
    assert!(
        m.contains("certlab_portal_submissions{state=\"approved\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("certlab_portal_submissions{state=\"in_review\"} 0\n"),
        "{m}"
    );

    // revocation withdraws it from the list
    let r = p
        .review(&a.reviewer, &id, "revoke", "firmware recalled")
        .await;
    assert_eq!(r.json()["state"], "revoked");
    let l = p.get("/api/v1/certifications").await.json();
    assert_eq!(l["total"], 0);
    let c = p
        .get(&format!("/api/v1/certifications/{cert_id}"))
        .await
        .json();
    assert_eq!(c["state"], "revoked");
    let r = p.review(&a.reviewer, &id, "revoke", "").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn submission_lifecycle_sqlite() {
    let p = Portal::sqlite().await;
    submission_lifecycle(&p).await;
    p.close().await;
}

#[tokio::test]
async fn submission_lifecycle_postgres() {
    let p = Portal::postgres().await;
    submission_lifecycle(&p).await;
    p.close().await;
}

/// A ustar header with any name bytes, as a forger would write it.
fn raw_header(name: &str, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    h
}

/// A tar of `members` with raw headers, padded, with the two end blocks.
fn raw_tar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mtime = u64::try_from(CREATED.unix_timestamp()).unwrap();
    let mut out = Vec::new();
    for (name, data) in members {
        out.extend_from_slice(raw_header(name, data.len() as u64, mtime).as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// A manifest and signature over `files`, signed by key 1, as the bundle writer makes them.
fn signed_parts(files: &[(String, Vec<u8>)]) -> (Vec<u8>, Vec<u8>) {
    let good = bundle_of(files, &key(1));
    let m = certlab_reports::read_bundle_member(&good, "manifest.json").unwrap();
    let s = certlab_reports::read_bundle_member(&good, "signature.json").unwrap();
    (m, s)
}

#[tokio::test]
async fn bad_bundles_are_refused_with_their_reason_and_nothing_is_stored() {
    let p = Portal::sqlite_with(|c| c.verify_limits.max_members = 40).await;
    let a = accounts(&p.store).await;
    let rec = record("refused.lab");
    let good = bundle(&rec, &key(1));

    // tampered: one byte of report.html changed after signing
    let mut tampered = good.clone();
    let report = &bundle_files(&rec)[2];
    assert_eq!(report.0, "report.html");
    let at = tampered
        .windows(64)
        .position(|w| w == &report.1[..64])
        .expect("report.html in the bundle");
    tampered[at + 40] ^= 0x01;

    // path traversal: a validly signed manifest listing ../escape
    let mut files = bundle_files(&rec);
    files.push(("evidence/x".into(), b"x".to_vec()));
    let escape: &[u8] = b"outside the data directory\n";
    let (m, s) = signed_parts(&files);
    let mut listed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    listed.retain(|(n, _)| *n != "evidence/x");
    let forged_manifest = {
        let mut v: Value = serde_json::from_slice(&m).unwrap();
        let list = v["files"].as_array_mut().unwrap();
        list.retain(|f| f["path"] != "evidence/x");
        list.insert(
            0,
            serde_json::json!({"path": "../escape", "sha256": certlab_reports::sha256_hex(escape), "size": escape.len()}),
        );
        let mut b = serde_json::to_vec_pretty(&v).unwrap();
        b.push(b'\n');
        b
    };
    let forged_sig = {
        use base64::Engine as _;
        use ed25519_dalek::Signer;
        let mut v: Value = serde_json::from_slice(&s).unwrap();
        v["signature"] = base64::engine::general_purpose::STANDARD
            .encode(key(1).sign(&forged_manifest).to_bytes())
            .into();
        let mut b = serde_json::to_vec_pretty(&v).unwrap();
        b.push(b'\n');
        b
    };
    let mut traversal_members: Vec<(&str, &[u8])> = vec![
        ("manifest.json", &forged_manifest),
        ("signature.json", &forged_sig),
        ("../escape", escape),
    ];
    traversal_members.extend(listed.iter().copied());
    let traversal = raw_tar(&traversal_members);

    // tar bomb: a member whose header claims a terabyte
    let mut bomb = raw_tar(&[("manifest.json", b"{}")]);
    bomb.truncate(bomb.len() - 1024);
    bomb.extend_from_slice(raw_header("evidence/bomb", 1 << 40, 0).as_bytes());
    bomb.extend_from_slice(&[0u8; 4096]);

    // too many members: a valid bundle over the portal's limit of 40
    let mut many = bundle_files(&rec);
    for i in 0..50 {
        let content = format!("evidence {i}\n").into_bytes();
        many.push((
            format!("evidence/{}", certlab_reports::sha256_hex(&content)),
            content,
        ));
    }
    let many = bundle_of(&many, &key(1));

    // results.json that is not valid against its schema, correctly signed
    let mut invalid = bundle_files(&rec);
    let mut v: Value = serde_json::from_slice(&invalid[0].1).unwrap();
    v["summary"]["outcome"] = "maybe".into();
    invalid[0].1 = serde_json::to_vec_pretty(&v).unwrap();
    let invalid = bundle_of(&invalid, &key(1));

    let other_key_id = certlab_reports::key_id(&key(2).verifying_key());
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str, &str)> = vec![
        (
            "tampered",
            tampered,
            StatusCode::UNPROCESSABLE_ENTITY,
            "digest_mismatch",
            "report.html",
        ),
        (
            "unknown key",
            bundle(&rec, &key(3)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "untrusted_key",
            "not a signing key of organisation \"acme\"",
        ),
        (
            "another organisation's key",
            bundle(&rec, &key(2)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "untrusted_key",
            &other_key_id,
        ),
        (
            "path traversal",
            traversal,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsafe_path",
            "../escape",
        ),
        (
            "tar bomb",
            bomb,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "evidence/bomb",
        ),
        (
            "too many members",
            many,
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_many_members",
            "more than 40 members",
        ),
        (
            "invalid results.json",
            invalid,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_results",
            "/summary/outcome",
        ),
        (
            "not a tar",
            b"hello, portal".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_tar",
            "",
        ),
        (
            "empty",
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "empty",
            "empty",
        ),
    ];
    for (what, bytes, status, code, names) in cases {
        let r = p.submit(&a.vendor_a, bytes).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert_eq!(r.code(), code, "{what}: {}", r.text());
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains(names), "{what}: {message}");
        assert!(
            p.stored_files().is_empty(),
            "{what} left {:?}",
            p.stored_files()
        );
    }
    assert!(!p.data().parent().unwrap().join("escape").exists());
    let l = p
        .api(Method::GET, "/api/v1/submissions", Some(&a.reviewer), None)
        .await
        .json();
    assert_eq!(l["total"], 0, "nothing recorded: {l}");
    // and the good one still goes through
    assert_eq!(
        p.submit(&a.vendor_a, good).await.status,
        StatusCode::CREATED
    );
    p.close().await;
}

#[tokio::test]
async fn an_upload_over_the_size_limit_is_413_and_leaves_nothing() {
    let p = Portal::sqlite_with(|c| c.max_upload_bytes = 4096).await;
    let a = accounts(&p.store).await;
    let r = p
        .submit(&a.vendor_a, bundle(&record("big.lab"), &key(1)))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(r.code(), "too_large");
    assert!(p.stored_files().is_empty(), "{:?}", p.stored_files());
    // announced over the limit: refused before reading
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/submissions")
        .header("authorization", format!("Bearer {}", a.vendor_a))
        .header("content-length", (64u64 << 20).to_string())
        .body(axum::body::Body::empty())
        .unwrap();
    let r = p.call(req).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    p.close().await;
}

#[tokio::test]
async fn a_multipart_upload_is_accepted() {
    let p = Portal::sqlite().await;
    let a = accounts(&p.store).await;
    let b = bundle(&record("multipart.lab"), &key(1));
    let boundary = "XcertlabX";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"bundle.tar\"\r\nContent-Type: application/x-tar\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(&b);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/submissions")
        .header("authorization", format!("Bearer {}", a.vendor_a))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(axum::body::Body::from(body))
        .unwrap();
    let r = p.call(req).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["bundle_sha256"], certlab_reports::sha256_hex(&b));
    p.close().await;
}

#[tokio::test]
async fn list_pages_and_exports() {
    let p = Portal::sqlite().await;
    let a = accounts(&p.store).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut rec = record(&format!("node-{i}.lab"));
        rec.profile.system_product = Some(format!("Model, \"{i}\""));
        let id = p.submit(&a.vendor_a, bundle(&rec, &key(1))).await.json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        p.review(&a.reviewer, &id, "start", "").await;
        assert_eq!(
            p.review(&a.reviewer, &id, "approve", "").await.status,
            StatusCode::OK
        );
        ids.push(id);
    }
    let l = p.get("/api/v1/certifications?per_page=2").await.json();
    assert_eq!(l["total"], 3);
    assert_eq!(l["items"].as_array().unwrap().len(), 2);
    let l2 = p
        .get("/api/v1/certifications?per_page=2&page=2")
        .await
        .json();
    assert_eq!(l2["items"].as_array().unwrap().len(), 1);
    let mut seen: Vec<String> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(l2["items"].as_array().unwrap())
        .map(|c| c["product"].as_str().unwrap().to_string())
        .collect();
    seen.sort();
    assert_eq!(seen, ["Model, \"0\"", "Model, \"1\"", "Model, \"2\""]);
    let bad = p.get("/api/v1/certifications?page=x").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.code(), "bad_query");

    let csv = p
        .get("/api/v1/certifications/export?format=csv&q=model")
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.header("content-type").starts_with("text/csv"));
    let text = csv.text();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("id,vendor,product,firmware,cpu_family"));
    assert!(text.contains("\"Model, \"\"1\"\"\""), "{text}");
    let json = p
        .get("/api/v1/certifications/export?format=json")
        .await
        .json();
    assert_eq!(json["total"], 3);
    let bad = p.get("/api/v1/certifications/export?format=xls").await;
    assert_eq!(bad.code(), "bad_format");
    p.close().await;
}

/// Two uploads of one bundle at the same moment make one submission.
async fn same_bundle_at_once(p: &Portal) {
    let a = accounts(&p.store).await;
    let b = bundle(&record("twice.lab"), &key(1));
    let (r1, r2) = tokio::join!(
        p.submit(&a.vendor_a, b.clone()),
        p.submit(&a.vendor_a, b.clone())
    );
    let mut statuses = [r1.status.as_u16(), r2.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "{} / {}", r1.text(), r2.text());
    assert_eq!(r1.json()["id"], r2.json()["id"]);
    let l = p
        .api(Method::GET, "/api/v1/submissions", Some(&a.reviewer), None)
        .await
        .json();
    assert_eq!(l["total"], 1, "{l}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bundle_twice_at_once_is_one_submission_sqlite() {
    let p = Portal::sqlite().await;
    same_bundle_at_once(&p).await;
    p.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_bundle_twice_at_once_is_one_submission_postgres() {
    let p = Portal::postgres().await;
    same_bundle_at_once(&p).await;
    p.close().await;
}

#[tokio::test]
async fn vendors_see_their_organisation_and_reviewers_see_all() {
    let p = Portal::sqlite().await;
    let a = accounts(&p.store).await;
    let sa = p
        .submit(&a.vendor_a, bundle(&record("a.lab"), &key(1)))
        .await
        .json();
    let sb = p
        .submit(&a.vendor_b, bundle(&record("b.lab"), &key(2)))
        .await
        .json();
    let ids = |token: &str| {
        let token = token.to_string();
        let p = &p;
        async move {
            let l = p
                .api(Method::GET, "/api/v1/submissions", Some(&token), None)
                .await
                .json();
            let mut ids: Vec<String> = l["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    let a_id = sa["id"].as_str().unwrap().to_string();
    let b_id = sb["id"].as_str().unwrap().to_string();
    let mut both = vec![a_id.clone(), b_id.clone()];
    both.sort();
    assert_eq!(ids(&a.vendor_a).await, vec![a_id]);
    assert_eq!(ids(&a.vendor_b).await, vec![b_id.clone()]);
    assert_eq!(ids(&a.reviewer).await, both);
    assert_eq!(ids(&a.admin).await, both);
    let one = p
        .api(
            Method::GET,
            "/api/v1/submissions?per_page=1&page=2",
            Some(&a.reviewer),
            None,
        )
        .await
        .json();
    assert_eq!(one["total"], 2);
    assert_eq!(one["items"].as_array().unwrap().len(), 1);
    let mine = p
        .api(Method::GET, "/api/v1/submissions", Some(&a.vendor_b), None)
        .await
        .json();
    assert_eq!(
        mine["total"], 1,
        "a vendor's total counts their organisation's only"
    );
    let r = p
        .api(
            Method::GET,
            &format!("/api/v1/submissions/{b_id}"),
            Some(&a.vendor_a),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "not_found");
    p.close().await;
}

#[tokio::test]
async fn changes_requested_and_rejected_are_final() {
    let p = Portal::sqlite().await;
    let a = accounts(&p.store).await;
    for (host, action, state) in [
        ("changes.lab", "request_changes", "changes_requested"),
        ("rejected.lab", "reject", "rejected"),
    ] {
        let id = p
            .submit(&a.vendor_a, bundle(&record(host), &key(1)))
            .await
            .json()["id"]
            .as_str()
            .unwrap()
            .to_string();
        p.review(&a.reviewer, &id, "start", "").await;
        let r = p
            .review(&a.reviewer, &id, action, "the kdump case needs a rerun")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let d = r.json();
        assert_eq!(d["state"], state);
        assert!(d["certification"].is_null());
        assert_eq!(d["history"][2]["comment"], "the kdump case needs a rerun");
        for next in ["start", "approve", "revoke", "reject", "request_changes"] {
            let r = p.review(&a.admin, &id, next, "").await;
            assert_eq!(r.status, StatusCode::CONFLICT, "{state} then {next}");
        }
        // the vendor sees the comment on their submission
        let mine = p
            .api(
                Method::GET,
                &format!("/api/v1/submissions/{id}"),
                Some(&a.vendor_a),
                None,
            )
            .await
            .json();
        assert_eq!(mine["history"][2]["by"], "reviewer@lab.example");
    }
    let r = p.review(&a.reviewer, "no-such-id", "start", "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let l = p.get("/api/v1/certifications").await.json();
    assert_eq!(l["total"], 0);
    let bad = p
        .api(
            Method::POST,
            "/api/v1/submissions/x/review",
            Some(&a.reviewer),
            Some(serde_json::json!({"action": "approve", "extra": 1})),
        )
        .await;
    assert_eq!(
        bad.status,
        StatusCode::NOT_FOUND,
        "authorization before the body"
    );
    p.close().await;
}
