//! End to end through the binary: `certlab serve` on a port picked at run
//! time, accounts and a key made with `certlab portal`, a bundle of this
//! machine made by `certify --local` and sent with `bundle submit`, reviewed
//! through the API, found in the public list; then SIGTERM stops the server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

mod common;

use common::portal::{certlab, create_org, create_user, json_ok, text, Server};

async fn api(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client.request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into())),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_submit_review_and_find_it_in_the_list_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    end_to_end(&dir, &db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_submit_review_and_find_it_in_the_list_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::pg::TempDb::create().await;
    end_to_end(&dir, &db.url).await;
    db.drop_db().await;
}

async fn end_to_end(dir: &tempfile::TempDir, db: &str) {
    let data = dir.path().join("data");

    // a bundle of this machine, signed by a fresh key
    let keys = data.join("keys");
    let o = certlab(&["keygen", "--out", keys.to_str().unwrap()], &data, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = dir.path().join("out");
    let o = certlab(
        &[
            "certify",
            "--local",
            "--out",
            out.to_str().unwrap(),
            "--db",
            db,
            "--format",
            "json",
        ],
        &data,
        None,
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "certify reaches a verdict: {}",
        text(&o)
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let bundle = out.join("bundle.tar");

    // accounts and the key, through the CLI
    let org = create_org(db, &data, "Acme Systems");
    assert_eq!(org["org"], "Acme Systems");
    let vendor = create_user(
        db,
        &data,
        "vendor@acme.example",
        "Acme Systems",
        "vendor",
        Some("a long enough password"),
    );
    assert_eq!(vendor["email"], "vendor@acme.example");
    assert_eq!(vendor["org"], "Acme Systems");
    assert_eq!(vendor["role"], "vendor");
    let vendor_token = vendor["token"].as_str().unwrap().to_string();
    assert!(
        vendor_token.starts_with("clp_") && vendor_token.len() == 68,
        "{vendor_token}"
    );
    create_org(db, &data, "certlab lab");
    let reviewer = create_user(
        db,
        &data,
        "reviewer@lab.example",
        "certlab lab",
        "reviewer",
        None,
    );
    let reviewer_token = reviewer["token"].as_str().unwrap().to_string();
    let second = json_ok(
        &[
            "portal",
            "token",
            "create",
            "reviewer@lab.example",
            "--db",
            db,
            "--format",
            "json",
        ],
        &data,
        None,
    );
    assert_ne!(second["token"], reviewer["token"]);
    let pubkey = keys.join("certlab-signing.pub");
    let key = json_ok(
        &[
            "portal",
            "key",
            "add",
            "--org",
            "Acme Systems",
            pubkey.to_str().unwrap(),
            "--db",
            db,
            "--format",
            "json",
        ],
        &data,
        None,
    );
    assert_eq!(key["key_id"].as_str().unwrap().len(), 16);
    // usage errors name what is wrong
    let o = certlab(
        &["portal", "org", "create", "Acme Systems", "--db", db],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists"),
        "{}",
        text(&o)
    );
    let o = certlab(
        &[
            "portal",
            "key",
            "add",
            "--org",
            "Acme Systems",
            bundle.to_str().unwrap(),
            "--db",
            db,
        ],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));

    let mut server = Server::start(db, &data, &dir.path().join("portal"));
    let base = server.base.clone();

    // bundle submit: the token from the environment, never printed
    let submit = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args([
                "bundle",
                "submit",
                bundle.to_str().unwrap(),
                "--portal",
                &base,
                "--format",
                format,
            ])
            .env("CERTLAB_PORTAL_TOKEN", &vendor_token)
            .env("CERTLAB_DATA_DIR", &data)
            .output()
            .unwrap()
    };
    let o = submit("json");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s: Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["state"], "submitted");
    assert_eq!(s["url"], format!("{base}/submissions/{id}"));
    assert!(!text(&o).contains(&vendor_token));
    let again = submit("json");
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        again["id"],
        id.as_str(),
        "the same bundle is the same submission"
    );

    // refused: a bad token (exit 2), a tampered bundle (exit 3); the token is in no message
    let o = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args([
            "bundle",
            "submit",
            bundle.to_str().unwrap(),
            "--portal",
            &base,
            "--token",
            "clp_wrong",
        ])
        .env("CERTLAB_DATA_DIR", &data)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("401"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("clp_wrong"));
    let mut bytes = std::fs::read(&bundle).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 1;
    let tampered = dir.path().join("tampered.tar");
    std::fs::write(&tampered, &bytes).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args([
            "bundle",
            "submit",
            tampered.to_str().unwrap(),
            "--portal",
            &base,
        ])
        .env("CERTLAB_PORTAL_TOKEN", &vendor_token)
        .env("CERTLAB_DATA_DIR", &data)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(!text(&o).contains(&vendor_token));
    let help = certlab(&["bundle", "submit", "--help"], &data, None);
    assert!(String::from_utf8_lossy(&help.stdout).contains("CERTLAB_PORTAL_TOKEN"));

    // review through the API
    let url = format!("{base}/api/v1/submissions/{id}/review");
    for action in ["start", "approve"] {
        let (status, body) = api(
            reqwest::Method::POST,
            &url,
            Some(&reviewer_token),
            Some(serde_json::json!({"action": action, "comment": format!("{action} from the e2e test")})),
        )
        .await;
        assert_eq!(status, 200, "{action}: {body}");
    }

    // found in the public list by what was certified
    let cpu_model = record["profile"]["cpu_model"].as_str().unwrap().to_string();
    let word = cpu_model
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    let (status, list) = api(
        reqwest::Method::GET,
        reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/certifications"),
            [
                ("arch", record["host"]["arch"].as_str().unwrap()),
                ("q", word.as_str()),
            ],
        )
        .unwrap()
        .as_str(),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["total"], 1, "{list}");
    let item = &list["items"][0];
    assert_eq!(item["kernel"], record["host"]["kernel"]);
    assert_eq!(item["os_id"], record["host"]["os_id"]);
    assert_eq!(item["plan"], record["plan"]["id"]);
    assert_eq!(item["outcome"], record["summary"]["outcome"]);
    let page = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(item["id"].as_str().unwrap()), "{page}");

    assert_eq!(server.stop(), Some(0), "serve exits 0 on SIGTERM");
}

#[test]
fn portal_commands_name_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let db = db.as_str();
    json_ok(
        &[
            "portal", "org", "create", "acme", "--db", db, "--format", "json",
        ],
        &data,
        None,
    );
    let cases: Vec<(Vec<&str>, Option<&str>, i32, &str)> = vec![
        (
            vec![
                "portal",
                "user",
                "create",
                "a@acme.example",
                "--org",
                "nope",
                "--role",
                "vendor",
                "--db",
                db,
            ],
            None,
            2,
            "organisation \"nope\" not found",
        ),
        (
            vec![
                "portal",
                "user",
                "create",
                "a@acme.example",
                "--org",
                "acme",
                "--role",
                "vendor",
                "--password-stdin",
                "--db",
                db,
            ],
            Some("short\n"),
            2,
            "shorter than 12 characters",
        ),
        (
            vec![
                "portal",
                "user",
                "create",
                "a@acme.example",
                "--org",
                "acme",
                "--role",
                "root",
                "--db",
                db,
            ],
            None,
            2,
            "invalid value 'root'",
        ),
        (
            vec![
                "portal",
                "token",
                "create",
                "nobody@acme.example",
                "--db",
                db,
            ],
            None,
            2,
            "no user nobody@acme.example",
        ),
        (
            vec![
                "portal",
                "key",
                "add",
                "--org",
                "acme",
                "/nonexistent/key.pub",
                "--db",
                db,
            ],
            None,
            3,
            "/nonexistent/key.pub",
        ),
    ];
    for (args, stdin, code, says) in cases {
        let o = certlab(&args, &data, stdin);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(says),
            "{args:?}: {}",
            text(&o)
        );
    }
    // nothing was created by the refused commands
    let o = certlab(
        &["portal", "token", "create", "a@acme.example", "--db", db],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // an unreachable database: exit 2, its password in no output
    let o = certlab(
        &[
            "serve",
            "--db",
            "postgres://portal:s3cretpw@127.0.0.1:1/portal",
            "--listen",
            "127.0.0.1:0",
        ],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!text(&o).contains("s3cretpw"), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("portal:***@127.0.0.1:1"),
        "{}",
        text(&o)
    );
}
