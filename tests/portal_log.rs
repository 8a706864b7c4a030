//! The transparency log end to end through the binary: `certlab serve`, a
//! bundle of this machine (`certify --local`) submitted, started, approved
//! and revoked; `certlab portal verify-log` checks the whole log (exit 0),
//! refuses a head signed by another key than `--pubkey` (exit 3), and names
//! the entry that was edited directly in the SQLite database (exit 3).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use serde_json::Value;

use common::portal::{certlab, text, Server};

fn json_ok(args: &[&str], data: &Path) -> Value {
    common::portal::json_ok(args, data, None)
}

async fn review(base: &str, token: &str, id: &str, action: &str, comment: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/submissions/{id}/review"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "action": action, "comment": comment }))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "{action}: {status} {}",
        r.text().await.unwrap()
    );
}

fn user(db: &str, data: &Path, email: &str, org: &str, role: &str) -> String {
    let u = json_ok(
        &[
            "portal", "user", "create", email, "--org", org, "--role", role, "--db", db,
            "--format", "json",
        ],
        data,
    );
    u["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_log_passes_then_names_an_edited_entry_and_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let db_file = dir.path().join("lab.db");
    let db = format!("sqlite://{}", db_file.display());
    let data = dir.path().join("data");
    let portal_data = dir.path().join("portal");

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
            &db,
        ],
        &data,
        None,
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));
    let bundle = out.join("bundle.tar");

    for org in ["Acme Systems", "certlab lab"] {
        json_ok(
            &[
                "portal", "org", "create", org, "--db", &db, "--format", "json",
            ],
            &data,
        );
    }
    let vendor = user(&db, &data, "vendor@acme.example", "Acme Systems", "vendor");
    let reviewer = user(
        &db,
        &data,
        "reviewer@lab.example",
        "certlab lab",
        "reviewer",
    );
    let pubkey = keys.join("certlab-signing.pub");
    json_ok(
        &[
            "portal",
            "key",
            "add",
            "--org",
            "Acme Systems",
            pubkey.to_str().unwrap(),
            "--db",
            &db,
            "--format",
            "json",
        ],
        &data,
    );

    let server = Server::start(&db, &data, &portal_data);
    let base = server.base.clone();
    let submitted = json_ok(
        &[
            "bundle",
            "submit",
            bundle.to_str().unwrap(),
            "--portal",
            &base,
            "--token",
            &vendor,
            "--format",
            "json",
        ],
        &data,
    );
    let id = submitted["id"].as_str().unwrap().to_string();
    review(&base, &reviewer, &id, "start", "taking it").await;
    review(&base, &reviewer, &id, "approve", "all blockers pass").await;
    review(&base, &reviewer, &id, "revoke", "firmware recalled").await;

    // the log key was made in the portal's data directory
    let log_pub = portal_data.join("log-key").join("certlab-signing.pub");
    let log_key_id = certlab_reports::key_id(&certlab_reports::load_public(&log_pub).unwrap());

    // submitted, in_review, approved + published, revoked + revoked
    let o = certlab(&["portal", "verify-log", "--portal", &base], &data, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        stdout.starts_with(&format!("OK: 6 entries, head signed by {log_key_id}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("the key the portal serves"), "{stdout}");

    let o = certlab(
        &[
            "portal",
            "verify-log",
            "--portal",
            &base,
            "--pubkey",
            log_pub.to_str().unwrap(),
            "--format",
            "json",
        ],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["entries"], 6);
    assert_eq!(report["key_source"], "file");
    assert_eq!(report["key_id"], log_key_id.as_str());

    // a head signed by another key than the one trusted
    let o = certlab(
        &[
            "portal",
            "verify-log",
            "--portal",
            &base,
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(stderr.contains("tree head: signed by key"), "{stderr}");

    // an entry edited in the database behind the portal's back
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db)
        .await
        .unwrap();
    let edited = sqlx::query(
        "UPDATE portal_log SET entry = replace(entry, 'all blockers pass', 'nothing was run') \
         WHERE seq = 2",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(edited.rows_affected(), 1);
    <sqlx::SqliteConnection as sqlx::Connection>::close(conn)
        .await
        .unwrap();
    let o = certlab(
        &[
            "portal",
            "verify-log",
            "--portal",
            &base,
            "--pubkey",
            log_pub.to_str().unwrap(),
        ],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(stderr.contains("log entry 2:"), "{stderr}");
    let o = certlab(
        &[
            "portal",
            "verify-log",
            "--portal",
            &base,
            "--format",
            "json",
        ],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["bad_entry"], 2);
    drop(server);
}
