//! Rate limits through the router: login per account and per client
//! address, uploads per API token and per browser session; over the limit
//! is 429 `rate_limited` with `Retry-After`, and the refused request
//! changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use certlab_web::ratelimit::{Limit, RateLimits};
use common::{accounts, bundle, key, record, Portal, Reply};

const HOUR: Duration = Duration::from_secs(3600);

fn limits(account: u32, client: u32, uploads: u32) -> RateLimits {
    RateLimits {
        login_per_account: Limit::new(account, HOUR),
        login_per_client: Limit::new(client, HOUR),
        uploads_per_token: Limit::new(uploads, HOUR),
    }
}

fn cookie_value(r: &Reply, name: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers))
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

/// A login from `from` (the TCP peer `certlab serve` records).
async fn login(p: &Portal, from: &str, email: &str, password: &str) -> Reply {
    let form = p.get("/login").await;
    let csrf = cookie_value(&form, "certlab_login_csrf");
    let mut req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("cookie", format!("certlab_login_csrf={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "csrf={csrf}&email={}&password={}",
            email.replace('@', "%40"),
            password.replace(' ', "+")
        )))
        .unwrap();
    let peer: SocketAddr = format!("{from}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    p.call(req).await
}

/// A 429 with a Retry-After within the interval; its message in the page or JSON.
fn assert_limited(r: &Reply, what: &str) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let secs: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=3600).contains(&secs), "Retry-After {secs}");
    assert!(r.text().contains(what), "{}", r.text());
    assert!(r.text().contains("rate_limited"), "{}", r.text());
}

#[tokio::test]
async fn logins_are_limited_per_account_whatever_the_password() {
    let p = Portal::sqlite_with(|c| c.rate_limits = limits(3, 100, 100)).await;
    accounts(&p.store).await;
    for _ in 0..3 {
        let r = login(&p, "192.0.2.1", "vendor@acme.example", "wrong password!").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
    // over the limit: refused before the password is looked at, as a page
    let r = login(
        &p,
        "192.0.2.1",
        "Vendor@ACME.example",
        "correct horse battery",
    )
    .await;
    assert_limited(&r, "too many login attempts for this account");
    assert!(r.header("content-type").starts_with("text/html"));
    assert!(r.header("set-cookie").is_empty(), "no session: {r:?}");
    // from another address too: the account is what is limited
    let r = login(
        &p,
        "198.51.100.7",
        "vendor@acme.example",
        "correct horse battery",
    )
    .await;
    assert_limited(&r, "for this account");
    // another account from the same address logs in
    let r = login(
        &p,
        "192.0.2.1",
        "reviewer@lab.example",
        "correct horse battery",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(!cookie_value(&r, "certlab_session").is_empty());
    p.close().await;
}

#[tokio::test]
async fn logins_are_limited_per_client_address() {
    let p = Portal::sqlite_with(|c| c.rate_limits = limits(100, 4, 100)).await;
    accounts(&p.store).await;
    // one address guessing across accounts
    for i in 0..4 {
        let r = login(
            &p,
            "203.0.113.9",
            &format!("guess{i}@acme.example"),
            "password guess",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
    let r = login(
        &p,
        "203.0.113.9",
        "vendor@acme.example",
        "correct horse battery",
    )
    .await;
    assert_limited(&r, "too many login attempts from this address");
    // another address is not affected
    let r = login(
        &p,
        "203.0.113.10",
        "vendor@acme.example",
        "correct horse battery",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    p.close().await;
}

#[tokio::test]
async fn uploads_are_limited_per_token_and_the_refused_one_stores_nothing() {
    let p = Portal::sqlite_with(|c| c.rate_limits = limits(100, 100, 2)).await;
    let a = accounts(&p.store).await;
    let first = bundle(&record("one.lab"), &key(1));
    let r = p.submit(&a.vendor_a, first.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let r = p.submit(&a.vendor_a, first).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let stored = p.stored_files();
    let third = bundle(&record("three.lab"), &key(1));
    let r = p.submit(&a.vendor_a, third.clone()).await;
    assert_limited(&r, "too many uploads with this token");
    assert_eq!(r.code(), "rate_limited");
    assert_eq!(p.stored_files(), stored, "nothing stored");
    let list = p
        .api(Method::GET, "/api/v1/submissions", Some(&a.vendor_a), None)
        .await;
    assert_eq!(list.json()["total"], 1, "{}", list.text());
    // another token of another organisation has its own limit
    let r = p
        .submit(&a.vendor_b, bundle(&record("globex.lab"), &key(2)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    // an unknown token is refused as such (401) before any limit counts
    for _ in 0..3 {
        let r = p.submit("clp_not-a-token", third.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    }
    p.close().await;
}

#[tokio::test]
async fn the_upload_form_is_limited_per_session() {
    let p = Portal::sqlite_with(|c| c.rate_limits = limits(100, 100, 1)).await;
    accounts(&p.store).await;
    let ok = login(
        &p,
        "192.0.2.1",
        "vendor@acme.example",
        "correct horse battery",
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let session = cookie_value(&ok, "certlab_session");
    let upload_page = |session: String| {
        let p = &p;
        async move {
            let req = Request::builder()
                .uri("/upload")
                .header("cookie", format!("certlab_session={session}"))
                .body(Body::empty())
                .unwrap();
            csrf_of(&p.call(req).await.text())
        }
    };
    let csrf = upload_page(session.clone()).await;
    let post = |host: &str| {
        let tar = bundle(&record(host), &key(1));
        let boundary = "certlabboundary7d1";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"bundle.tar\"\r\n\
             Content-Type: application/x-tar\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(&tar);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Request::builder()
            .method(Method::POST)
            .uri("/upload")
            .header("cookie", format!("certlab_session={session}"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap()
    };
    let r = p.call(post("form-one.lab")).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let r = p.call(post("form-two.lab")).await;
    assert_limited(&r, "too many uploads");
    assert!(r.header("content-type").starts_with("text/html"));
    p.close().await;
}
