//! Databases for the store tests: a SQLite file in a temporary directory,
//! and a fresh PostgreSQL database per test.
//!
//! PostgreSQL is expected at `postgres://postgres@127.0.0.1:5432/postgres`
//! (trust auth; `CERTLAB_TEST_PG_URL` overrides it, as scripts/test sets
//! it). Each test creates its own database through that admin database and
//! drops it at the end, also when the test fails. An unreachable server
//! fails the test, naming what to run.

#![allow(dead_code)]

use std::future::Future;

use anyhow::{Context, Result};
use sqlx::{Connection, Executor};

pub const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}/nested/dir/lab.db", dir.path().display())
}

pub async fn with_postgres<F, Fut>(test: &str, body: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let admin_url =
        std::env::var("CERTLAB_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
    let server = admin_url
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap_or_else(|| admin_url.clone());
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "{test}: PostgreSQL is not reachable at {admin_url}: {e}\n\
             run scripts/test (it starts PostgreSQL) or point CERTLAB_TEST_PG_URL at a \
             server's admin database (trust auth)"
        ),
    };
    let db = format!("certlab_t_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await?;
    let outcome = tokio::spawn(body(format!("{server}/{db}"))).await;
    let dropped = admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await;
    admin.close().await.ok();
    match outcome {
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        outcome => outcome??,
    }
    dropped.with_context(|| format!("drop test database {db}"))?;
    Ok(())
}
