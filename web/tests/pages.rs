//! The browser path without a browser: login with its CSRF cookie, the
//! session cookie's flags, the upload form, the review form, logout.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{accounts, bundle, key, record, Portal, Reply};

fn set_cookie(r: &Reply, name: &str) -> String {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers))
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// The value of the hidden `csrf` input of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_string()
}

async fn login(p: &Portal, email: &str, password: &str) -> Reply {
    let form = p.get("/login").await;
    assert_eq!(form.status, StatusCode::OK);
    let login_cookie = cookie_value(&set_cookie(&form, "certlab_login_csrf"));
    let csrf = csrf_of(&form.text());
    assert_eq!(csrf, login_cookie);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("cookie", format!("certlab_login_csrf={login_cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "csrf={csrf}&email={}&password={}",
            email.replace('@', "%40"),
            password.replace(' ', "+")
        )))
        .unwrap();
    p.call(req).await
}

async fn page(p: &Portal, uri: &str, session: &str) -> Reply {
    let req = Request::builder()
        .uri(uri)
        .header("cookie", format!("certlab_session={session}"))
        .body(Body::empty())
        .unwrap();
    p.call(req).await
}

#[tokio::test]
async fn a_vendor_logs_in_uploads_and_a_reviewer_approves() {
    let p = Portal::sqlite().await;
    accounts(&p.store).await;

    let wrong = login(&p, "vendor@acme.example", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.text().contains("wrong email or password"));

    let ok = login(&p, "vendor@acme.example", "correct horse battery").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text());
    assert_eq!(ok.header("location"), "/submissions");
    let cookie = set_cookie(&ok, "certlab_session");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "http portal: {cookie}");
    let session = cookie_value(&cookie);

    let upload = page(&p, "/upload", &session).await;
    assert_eq!(upload.status, StatusCode::OK);
    let csrf = csrf_of(&upload.text());
    let b = bundle(&record("browser.lab"), &key(1));
    let boundary = "formboundary7";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"bundle.tar\"\r\nContent-Type: application/x-tar\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&b);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/upload")
        .header("cookie", format!("certlab_session={session}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let r = p.call(req).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    let location = r.header("location").to_string();
    assert!(location.starts_with("/submissions/"), "{location}");
    let mine = page(&p, &location, &session).await;
    assert!(
        mine.text().contains("State: <strong>submitted</strong>"),
        "{}",
        mine.text()
    );
    assert!(
        !mine.text().contains("action=\"/submissions/"),
        "no review form for a vendor"
    );

    let rev = login(&p, "reviewer@lab.example", "correct horse battery").await;
    let rsession = cookie_value(&set_cookie(&rev, "certlab_session"));
    let detail = page(&p, &location, &rsession).await;
    assert!(
        detail.text().contains("value=\"start\""),
        "{}",
        detail.text()
    );
    let rcsrf = csrf_of(&detail.text());
    for action in ["start", "approve"] {
        let req = Request::builder()
            .method(Method::POST)
            .uri(format!("{location}/review"))
            .header("cookie", format!("certlab_session={rsession}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "csrf={rcsrf}&action={action}&comment=checked+{action}"
            )))
            .unwrap();
        let r = p.call(req).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{action}: {}", r.text());
    }
    let done = page(&p, &location, &session).await.text();
    assert!(done.contains("State: <strong>approved</strong>"), "{done}");
    assert!(done.contains("checked approve"));
    let list = p.get("/?q=kunpeng+taishan").await.text();
    assert!(list.contains("TaiShan 200"), "{list}");

    // logout ends the session
    let req = Request::builder()
        .method(Method::POST)
        .uri("/logout")
        .header("cookie", format!("certlab_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("csrf={csrf}")))
        .unwrap();
    let out = p.call(req).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(set_cookie(&out, "certlab_session").contains("Max-Age=0"));
    assert_eq!(
        page(&p, "/submissions", &session).await.status,
        StatusCode::UNAUTHORIZED
    );
    p.close().await;
}

#[tokio::test]
async fn login_needs_its_csrf_cookie_and_https_makes_cookies_secure() {
    let p = Portal::sqlite_with(|c| c.public_url = Some("https://portal.example".into())).await;
    accounts(&p.store).await;
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(
            "csrf=guess&email=vendor%40acme.example&password=correct+horse+battery",
        ))
        .unwrap();
    let r = p.call(req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let ok = login(&p, "vendor@acme.example", "correct horse battery").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert!(set_cookie(&ok, "certlab_session").contains("; Secure"));
    p.close().await;
}

#[tokio::test]
async fn what_a_vendor_submitted_is_escaped_in_pages() {
    let p = Portal::sqlite().await;
    let a = accounts(&p.store).await;
    let mut rec = record("xss.lab");
    rec.profile.system_product = Some("<script>alert(1)</script>".into());
    rec.profile.pci_devices[0].name = Some("\"><img src=x onerror=alert(2)>".into());
    let id = p.submit(&a.vendor_a, bundle(&rec, &key(1))).await.json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    p.review(&a.reviewer, &id, "start", "<b>bold</b>").await;
    let cert = p.review(&a.reviewer, &id, "approve", "").await.json()["certification"]
        .as_str()
        .unwrap()
        .to_string();
    let pci = rec.profile.pci_devices[0].id.clone();
    for uri in [
        "/".to_string(),
        format!("/certifications/{cert}"),
        format!("/components/{pci}"),
    ] {
        let page = p.get(&uri).await;
        assert_eq!(page.status, StatusCode::OK, "{uri}");
        let text = page.text();
        assert!(!text.contains("<script>alert"), "{uri}: {text}");
        assert!(!text.contains("<img src=x"), "{uri}: {text}");
        assert!(
            text.contains("&lt;script&gt;") || text.contains("&lt;img"),
            "{uri}: {text}"
        );
    }
    p.close().await;
}
