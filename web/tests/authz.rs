//! The authorization matrix: every route × every role, for a submission of
//! the caller's own organisation or another's, against a table of expected
//! statuses. API routes authenticate with a bearer token, pages with a
//! session cookie (and the session's CSRF token in forms). The lab
//! dashboard is for the lab's operators: reviewers and admins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request};
use common::{accounts, bundle, key, record, Portal};

/// Who calls: nobody, acme's vendor (the submissions' organisation),
/// globex's vendor (another organisation), a reviewer, an admin.
const WHO: [&str; 5] = [
    "anonymous",
    "vendor (own)",
    "vendor (other)",
    "reviewer",
    "admin",
];

/// Expected status per route, in the order of [`WHO`]. `{s}` is a
/// submission of acme, fresh for each call; `{c}` a published certification.
const MATRIX: &[(&str, &str, [u16; 5])] = &[
    ("GET", "/healthz", [200, 200, 200, 200, 200]),
    ("GET", "/metrics", [200, 200, 200, 200, 200]),
    ("GET", "/api/v1/certifications", [200, 200, 200, 200, 200]),
    (
        "GET",
        "/api/v1/certifications/{c}",
        [200, 200, 200, 200, 200],
    ),
    (
        "GET",
        "/api/v1/certifications/export?format=csv",
        [200, 200, 200, 200, 200],
    ),
    (
        "GET",
        "/api/v1/components/15b3:1017",
        [200, 200, 200, 200, 200],
    ),
    ("GET", "/api/v1/submissions", [401, 200, 200, 200, 200]),
    ("GET", "/api/v1/submissions/{s}", [401, 200, 404, 200, 200]),
    (
        "POST",
        "/api/v1/submissions/{s}/review",
        [401, 403, 404, 200, 200],
    ),
    // a bundle signed with acme's key: only acme's users may submit it
    ("POST", "/api/v1/submissions", [401, 201, 422, 422, 422]),
    ("GET", "/", [200, 200, 200, 200, 200]),
    ("GET", "/certifications/{c}", [200, 200, 200, 200, 200]),
    (
        "GET",
        "/certifications/{c}/report",
        [200, 200, 200, 200, 200],
    ),
    (
        "GET",
        "/certifications/{c}/bundle",
        [200, 200, 200, 200, 200],
    ),
    ("GET", "/components/15b3:1017", [200, 200, 200, 200, 200]),
    ("GET", "/login", [200, 200, 200, 200, 200]),
    ("GET", "/submissions", [401, 200, 200, 200, 200]),
    ("GET", "/submissions/{s}", [401, 200, 404, 200, 200]),
    ("POST", "/submissions/{s}/review", [401, 403, 404, 303, 303]),
    ("GET", "/upload", [401, 200, 200, 200, 200]),
    // the upload form with a bundle signed with acme's key
    ("POST", "/upload", [401, 303, 422, 422, 422]),
    ("GET", "/style.css", [200, 200, 200, 200, 200]),
    // the lab: its operators (reviewers, admins) only; `{r}` is a finished run
    ("GET", "/lab", [401, 403, 403, 200, 200]),
    ("GET", "/lab.js", [200, 200, 200, 200, 200]),
    ("POST", "/lab/jobs", [401, 403, 403, 303, 303]),
    ("GET", "/lab/runs/{r}", [401, 403, 403, 200, 200]),
    (
        "GET",
        "/lab/runs/{r}/results.json",
        [401, 403, 403, 200, 200],
    ),
    (
        "GET",
        "/lab/runs/{r}/report.html",
        [401, 403, 403, 200, 200],
    ),
    ("GET", "/api/v1/lab/machines", [401, 403, 403, 200, 200]),
    ("GET", "/api/v1/lab/jobs", [401, 403, 403, 200, 200]),
    ("POST", "/api/v1/lab/jobs", [401, 403, 403, 201, 201]),
    ("GET", "/api/v1/lab/runs", [401, 403, 403, 200, 200]),
    (
        "GET",
        "/api/v1/lab/runs/{r}/events",
        [401, 403, 403, 200, 200],
    ),
    (
        "GET",
        "/api/v1/lab/runs/{r}/events/stream",
        [401, 403, 403, 200, 200],
    ),
    ("POST", "/logout", [401, 303, 303, 303, 303]),
];

/// The matrix submits a fresh bundle per cell with one token: far over the
/// default upload limit, which `tests/ratelimit.rs` tests on its own.
fn no_upload_limit(c: &mut certlab_web::Config) {
    c.rate_limits.uploads_per_token.burst = u32::MAX;
}

#[tokio::test]
async fn every_route_for_every_role_and_organisation_sqlite() {
    let p = Portal::sqlite_with(no_upload_limit).await;
    matrix(&p).await;
    p.close().await;
}

#[tokio::test]
async fn every_route_for_every_role_and_organisation_postgres() {
    let p = Portal::postgres_with(no_upload_limit).await;
    matrix(&p).await;
    p.close().await;
}

async fn matrix(p: &Portal) {
    let a = accounts(&p.store).await;
    let tokens = [
        None,
        Some(a.vendor_a.clone()),
        Some(a.vendor_b.clone()),
        Some(a.reviewer.clone()),
        Some(a.admin.clone()),
    ];
    let emails = [
        "",
        "vendor@acme.example",
        "vendor@globex.example",
        "reviewer@lab.example",
        "admin@lab.example",
    ];

    // a published certification
    let id = p
        .submit(&a.vendor_a, bundle(&record("published.lab"), &key(1)))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.review(&a.reviewer, &id, "start", "").await;
    let cert = p.review(&a.reviewer, &id, "approve", "").await.json()["certification"]
        .as_str()
        .unwrap()
        .to_string();

    // a finished run in the lab store
    let mut lab_record = record("lab-run.lab");
    lab_record.run_id = "00000000-0000-4000-8000-00000000a11b".into();
    let lab_run = lab_record.run_id.clone();
    p.store
        .lab()
        .create_run(&certlab_harness::NewRun {
            id: lab_run.clone(),
            plan_id: "server-basic".into(),
            plan_version: "1".into(),
            plan_digest: "ab".repeat(32),
            target: "kp1".into(),
            hostname: "kp1".into(),
            kernel: "6.1.0".into(),
            started: lab_record.started,
            out_dir: None,
        })
        .await
        .unwrap();
    p.store
        .lab()
        .finish_run(&lab_run, &lab_record)
        .await
        .unwrap();

    let mut n = 0;
    let mut failures = Vec::new();
    for (method, route, want) in MATRIX {
        for (who, expected) in want.iter().enumerate() {
            n += 1;
            // a fresh submission of acme for each call, so that a review
            // in one cell does not change the next
            let sub = p
                .submit(
                    &a.vendor_a,
                    bundle(&record(&format!("cell-{n}.lab")), &key(1)),
                )
                .await
                .json()["id"]
                .as_str()
                .unwrap()
                .to_string();
            let uri = route
                .replace("{s}", &sub)
                .replace("{c}", &cert)
                .replace("{r}", &lab_run);
            // each login is its own session, with its own CSRF token
            let session = if who == 0 {
                None
            } else {
                let user = p.store.user_by_email(emails[who]).await.unwrap().unwrap();
                let (cookie, digest) = certlab_web::auth::new_token();
                let csrf = format!("csrf-{n}");
                let now = time::OffsetDateTime::now_utc();
                p.store
                    .create_session(
                        &digest,
                        &user.id,
                        &csrf,
                        now,
                        now + time::Duration::hours(1),
                    )
                    .await
                    .unwrap();
                Some((cookie, csrf))
            };
            let mut req = Request::builder()
                .method(Method::from_bytes(method.as_bytes()).unwrap())
                .uri(&uri);
            let api = uri.starts_with("/api/");
            if api {
                if let Some(t) = &tokens[who] {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
            } else if let Some((cookie, _)) = &session {
                req = req.header("cookie", format!("certlab_session={cookie}"));
            }
            let csrf = session.as_ref().map_or("none", |(_, c)| c.as_str());
            let body = match (*method, api) {
                ("POST", true) if uri.ends_with("/review") => {
                    req = req.header("content-type", "application/json");
                    Body::from(r#"{"action": "start", "comment": "matrix"}"#)
                }
                ("POST", true) if uri == "/api/v1/lab/jobs" => {
                    req = req.header("content-type", "application/json");
                    Body::from(r#"{"plan": "server-basic", "machine": "kp1"}"#)
                }
                ("POST", true) => {
                    req = req.header("content-type", "application/x-tar");
                    Body::from(bundle(&record(&format!("own-{n}.lab")), &key(1)))
                }
                ("POST", false) if uri == "/upload" => {
                    let boundary = "matrixboundary";
                    req = req.header(
                        "content-type",
                        format!("multipart/form-data; boundary={boundary}"),
                    );
                    let mut body = format!(
                        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
                         --{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"b.tar\"\r\n\r\n"
                    )
                    .into_bytes();
                    body.extend(bundle(&record(&format!("form-{n}.lab")), &key(1)));
                    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
                    Body::from(body)
                }
                ("POST", false) if uri == "/lab/jobs" => {
                    req = req.header("content-type", "application/x-www-form-urlencoded");
                    Body::from(format!(
                        "csrf={csrf}&plan=server-basic&machine=kp1&require=&priority=50"
                    ))
                }
                ("POST", false) => {
                    req = req.header("content-type", "application/x-www-form-urlencoded");
                    Body::from(format!("csrf={csrf}&action=start&comment=matrix"))
                }
                _ => Body::empty(),
            };
            let r = p.call(req.body(body).unwrap()).await;
            if r.status.as_u16() != *expected {
                failures.push(format!(
                    "{method} {route} as {}: {} (want {expected}): {}",
                    WHO[who],
                    r.status.as_u16(),
                    r.text().chars().take(200).collect::<String>()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(n, MATRIX.len() * WHO.len());
}

#[tokio::test]
async fn a_form_without_the_session_csrf_token_is_refused() {
    let p = Portal::sqlite().await;
    let a = accounts(&p.store).await;
    let id = p
        .submit(&a.vendor_a, bundle(&record("csrf.lab"), &key(1)))
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let user = p
        .store
        .user_by_email("reviewer@lab.example")
        .await
        .unwrap()
        .unwrap();
    let (cookie, digest) = certlab_web::auth::new_token();
    let now = time::OffsetDateTime::now_utc();
    p.store
        .create_session(
            &digest,
            &user.id,
            "the-right-one",
            now,
            now + time::Duration::hours(1),
        )
        .await
        .unwrap();
    let missing = Request::builder()
        .method(Method::POST)
        .uri(format!("/submissions/{id}/review"))
        .header("cookie", format!("certlab_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from("action=start"))
        .unwrap();
    let r = p.call(missing).await;
    assert_eq!(r.status.as_u16(), 400, "a form without its csrf field");
    assert!(
        r.header("content-type").starts_with("text/html"),
        "an HTML page"
    );
    for form in ["csrf=the-wrong-one&action=start", "csrf=&action=start"] {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("/submissions/{id}/review"))
            .header("cookie", format!("certlab_session={cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap();
        let r = p.call(req).await;
        assert_eq!(r.status.as_u16(), 403, "{form}");
        assert!(r.text().contains("CSRF"));
    }
    let s = p
        .api(
            Method::GET,
            &format!("/api/v1/submissions/{id}"),
            Some(&a.reviewer),
            None,
        )
        .await
        .json();
    assert_eq!(s["state"], "submitted", "nothing changed");
    // an expired session is no session
    let (old, old_digest) = certlab_web::auth::new_token();
    p.store
        .create_session(
            &old_digest,
            &user.id,
            "x",
            now - time::Duration::hours(2),
            now - time::Duration::hours(1),
        )
        .await
        .unwrap();
    let req = Request::builder()
        .uri("/submissions")
        .header("cookie", format!("certlab_session={old}"))
        .body(Body::empty())
        .unwrap();
    assert_eq!(p.call(req).await.status.as_u16(), 401);
    p.close().await;
}
