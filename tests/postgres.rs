//! `certify --local` against a PostgreSQL lab store, read back with `runs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

mod common;
use common::pg::{pg_base, TempDb};

#[tokio::test]
async fn certify_records_the_run_in_postgres() {
    let db = TempDb::create().await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args(args)
            .env("CERTLAB_DATA_DIR", dir.path())
            .output()
            .unwrap()
    };
    let out = dir.path().join("out");
    let o = run(&[
        "certify",
        "--local",
        "--out",
        out.to_str().unwrap(),
        "--db",
        &db.url,
        "--format",
        "json",
    ]);
    let result = || {
        let code = o.status.code().unwrap();
        assert!(
            code == 0 || code == 1,
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let record: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let id = record["run_id"].as_str().unwrap().to_string();
        let o = run(&["runs", "show", &id, "--db", &db.url, "--format", "json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let detail: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(detail["run"]["state"], "finished");
        assert_eq!(detail["cases"], record["cases"]);
        assert_eq!(detail["record"], record);
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(result));
    db.drop_db().await;
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}

/// With a password in the URL (the server trusts loopback, so it is accepted):
/// nothing certlab prints contains it, with debug logs on, whether the
/// store opens or the database does not exist.
#[test]
fn a_password_in_the_url_never_reaches_the_output() {
    let secret = "pw-never-shown-7f3a";
    let base = pg_base();
    // postgres://[user[:pw]@]host[:port]/db → postgres://user:SECRET@host[:port]/DB
    let (scheme, rest) = base.split_once("://").unwrap();
    let (userinfo, hostpath) = rest.rsplit_once('@').unwrap_or(("postgres", rest));
    let user = userinfo.split(':').next().unwrap();
    let host = hostpath.split('/').next().unwrap();
    let with_password = |db: &str| format!("{scheme}://{user}:{secret}@{host}/{db}");
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], url: &str| {
        Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args(args)
            .env("CERTLAB_DATA_DIR", dir.path())
            .env("CERTLAB_DB", url)
            .env("CERTLAB_LOG", "debug")
            .output()
            .unwrap()
    };
    let all = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let db = rt.block_on(TempDb::create());
    let good = with_password(&db.name);
    let checks = || {
        let o = run(&["runs", "list", "--format", "json"], &good);
        assert_eq!(o.status.code(), Some(0), "{}", all(&o));
        assert!(!all(&o).contains(secret), "{}", all(&o));
        let missing = with_password("certlab_no_such_db");
        let o = run(&["runs", "list"], &missing);
        assert_eq!(o.status.code(), Some(2), "{}", all(&o));
        let text = all(&o);
        assert!(!text.contains(secret), "{text}");
        assert!(text.contains(":***@"), "the URL is named, redacted: {text}");
        assert!(
            text.contains("certlab_no_such_db") && text.contains("does not exist"),
            "the server's reason is shown: {text}"
        );
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(checks));
    rt.block_on(db.drop_db());
    if let Err(p) = outcome {
        std::panic::resume_unwind(p);
    }
}
