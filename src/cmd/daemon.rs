//! `certlab lab daemon`: the orchestrator process. It synchronises the
//! machines of lab.toml into the lab store, then carries out queued jobs
//! until SIGTERM or SIGINT (running jobs are left resumable).

use std::path::PathBuf;
use std::time::Duration;

use certlab_harness::access::LabAccess;
use certlab_harness::daemon::{self, DaemonConfig};
use certlab_harness::Store;
use certlab_lab::Lab;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::cmd::lab::LabFile;
use crate::common::{data_dir, db_url, runtime, DbArg};
use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::Format;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    lab: LabFile,
    #[command(flatten)]
    db: DbArg,
    /// Seconds a lease lasts without a heartbeat (heartbeats come every third of it).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(3..=3600))]
    lease_ttl: u64,
    /// Runs carried out at once by this daemon.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1000))]
    max_runs: u64,
    /// Attempts of a job (infrastructure faults) before it fails.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: u32,
    /// Times a case that meets an infrastructure error (SSH lost, target
    /// unreachable) is tried again before its job goes back to the queue.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=20))]
    case_retries: u32,
    /// Consecutive jobs ending in infrastructure faults that take a machine
    /// out of service (`bad`, with the reason).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    machine_failure_limit: u32,
    /// Seconds a `bad` machine waits before its health is checked again.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..))]
    bad_recheck: u64,
    /// Where runs write their outputs: DIR/<run id>/ [default: <data dir>/runs].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Signing key of the bundles [default: <data dir>/keys/certlab-signing.key].
    #[arg(long, env = "CERTLAB_KEY", hide_env_values = true)]
    key: Option<PathBuf>,
}

fn db_is_postgres(db: &DbArg) -> bool {
    db.db
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
}

pub fn run(a: DaemonArgs) -> Result<i32> {
    let rt = runtime()?;
    // SIGTERM and SIGINT are caught from the first moment on: a stop asked
    // for while the daemon starts is honoured once it has started.
    let (stop, stopped) = watch::channel(false);
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            return Err(failure(exit::INFRA, "cannot catch SIGTERM/SIGINT"));
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            eprintln!("certlab: daemon stopping: no new jobs; running ones stay resumable");
            let _ = stop.send(true);
        });
        Ok(())
    })?;
    let lab = Lab::load(&a.lab.lab)?;
    let signer = crate::cmd::certify::signing_key(a.key.as_deref())?;
    let out_root = match a.out {
        Some(d) => d,
        None => data_dir()?.join("runs"),
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    let owner = format!(
        "{host}:{}:{}",
        std::process::id(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let config = DaemonConfig {
        owner: owner.clone(),
        lease_ttl: Duration::from_secs(a.lease_ttl),
        max_runs: usize::try_from(a.max_runs).unwrap_or(8),
        max_attempts: a.max_attempts,
        case_retries: a.case_retries,
        machine_failure_limit: a.machine_failure_limit,
        bad_recheck: Duration::from_secs(a.bad_recheck),
        // PostgreSQL announces changes (LISTEN/NOTIFY): the poll is a
        // safety net. SQLite cannot: poll for other processes' submissions.
        poll: if db_is_postgres(&a.db) {
            Duration::from_secs(5)
        } else {
            Duration::from_millis(500)
        },
        out_root,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    rt.block_on(async move {
        let store = Store::open(&db_url(&a.db)?).await?;
        let access = LabAccess::new(lab, &store);
        let sync = store
            .sync_machines(&access.facts(), OffsetDateTime::now_utc())
            .await?;
        eprintln!(
            "certlab: daemon {owner}: {} machine(s) added, {} updated, {} left the lab",
            sync.added.len(),
            sync.updated.len(),
            sync.removed.len()
        );
        daemon::run(
            store.clone(),
            std::sync::Arc::new(access),
            signer,
            config,
            stopped,
        )
        .await
        .map_err(CliError::infra)?;
        store.close().await;
        Ok(exit::OK)
    })
}

/// A daemon without a heartbeat for this long is `silent`.
const SILENT_AFTER: Duration = Duration::from_secs(60);

/// `certlab lab daemons`.
pub fn list(db: DbArg, format: Format) -> Result<i32> {
    runtime()?.block_on(async move {
        let store = Store::open(&db_url(&db)?).await?;
        let daemons = store.daemons().await?;
        store.close().await;
        let now = OffsetDateTime::now_utc();
        let rfc = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
        let rows: Vec<serde_json::Value> = daemons
            .iter()
            .map(|d| {
                let state = if d.stopped.is_some() {
                    "stopped"
                } else if now - d.heartbeat > SILENT_AFTER {
                    "silent"
                } else {
                    "running"
                };
                serde_json::json!({
                    "id": d.id,
                    "host": d.host,
                    "pid": d.pid,
                    "started": rfc(d.started),
                    "heartbeat": rfc(d.heartbeat),
                    "stopped": d.stopped.map(rfc),
                    "state": state,
                })
            })
            .collect();
        if format == Format::Json {
            println!("{}", serde_json::to_string_pretty(&rows)?);
        } else {
            println!(
                "{:<36}  {:<8}  {:<20}  {:<7}  {:<25}  HEARTBEAT",
                "DAEMON", "STATE", "HOST", "PID", "STARTED"
            );
            for r in &rows {
                let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                println!(
                    "{:<36}  {:<8}  {:<20}  {:<7}  {:<25}  {}",
                    s("id"),
                    s("state"),
                    s("host"),
                    r["pid"],
                    s("started"),
                    s("heartbeat")
                );
            }
        }
        Ok(exit::OK)
    })
}
