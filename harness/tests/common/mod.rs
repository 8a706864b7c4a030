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

/// A daemon's configuration for one test: owner `d1`, 10 s leases, 2
/// retries per case, a 100 ms poll, outputs under `out_root`.
pub fn daemon_config(
    out_root: &std::path::Path,
    max_runs: usize,
    max_attempts: u32,
) -> certlab_harness::daemon::DaemonConfig {
    certlab_harness::daemon::DaemonConfig {
        owner: "d1".into(),
        lease_ttl: std::time::Duration::from_secs(10),
        max_runs,
        max_attempts,
        case_retries: 2,
        machine_failure_limit: 3,
        bad_recheck: std::time::Duration::from_secs(900),
        poll: std::time::Duration::from_millis(100),
        out_root: out_root.to_path_buf(),
        tool_version: "test".into(),
    }
}

/// A job of plan `plan` (a built-in name, or a file name with its text),
/// priority 50, submitted by `ci`.
pub fn test_job(
    id: &str,
    plan: &str,
    plan_text: Option<&str>,
    require: &str,
) -> Result<certlab_harness::NewJob> {
    Ok(certlab_harness::NewJob {
        id: id.into(),
        plan: plan.into(),
        plan_version: if plan_text.is_some() { "1" } else { "1.0.0" }.into(),
        plan_digest: String::new(),
        plan_text: plan_text.map(str::to_string),
        requirements: certlab_harness::lifecycle::Requirements::parse(require)?,
        priority: 50,
        submitter: "ci".into(),
    })
}

/// Runs a daemon over `store` and `access` until job `id` ends (or
/// `within` passes: an error naming the job's state), stops it, and
/// returns the job's final state.
pub async fn run_daemon_until_done(
    store: &certlab_harness::Store,
    access: std::sync::Arc<dyn certlab_harness::daemon::MachineAccess>,
    config: certlab_harness::daemon::DaemonConfig,
    id: &str,
    within: std::time::Duration,
) -> Result<certlab_harness::lifecycle::JobState> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let d = tokio::spawn(certlab_harness::daemon::run(
        store.clone(),
        access,
        ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]),
        config,
        stopped,
    ));
    let deadline = tokio::time::Instant::now() + within;
    let state = loop {
        let j = store.job(id).await?.context("job")?;
        if j.state.kind().is_terminal() {
            break j.state;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "job {id} not done: {:?}",
            j.state
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    stop.send(true)?;
    d.await??;
    Ok(state)
}

/// A lab.toml with one fault-free simulated machine `sim-0001` in pool
/// `sim`, at time scale 0.002 (the reboot, resume and crash tests' lab).
pub fn one_sim_machine_lab(arch: &str, profile: &str, seed: u64) -> String {
    format!(
        r#"version = 1

[[machine]]
name = "sim-0001"
arch = "{arch}"
pool = "sim"

[machine.sim]
profile = "{profile}"
faults = "none"
seed = {seed}
defect = "none"
time_scale = 0.002
"#
    )
}
