//! `certify --local` against a PostgreSQL lab store, read back with `runs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn pg_base() -> String {
    std::env::var("CERTLAB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A fresh database for this test, dropped at the end.
struct TempDb {
    admin: String,
    name: String,
    url: String,
}

impl TempDb {
    async fn create() -> TempDb {
        let admin = pg_base();
        let name = format!("certlab_e2e_{}", uuid_like());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL is required for this test (CERTLAB_TEST_PG_URL or 127.0.0.1:5432): {e}")
            });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap();
        TempDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }

    async fn drop_db(self) {
        if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&self.admin).await {
            let _ = sqlx::query(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut conn)
            .await;
        }
    }
}

fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", t, std::process::id())
}

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
