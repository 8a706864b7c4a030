//! Helpers every command shares: the data directory, the lab store's URL,
//! the async runtime. Nothing here knows the command line's shape.

use std::path::PathBuf;

use crate::error::{failure, CliError, Result};
use crate::exit;

/// `--db` / `CERTLAB_DB`.
#[derive(Debug, clap::Args)]
pub struct DbArg {
    /// Lab store: a SQLite path or URL (sqlite://…) or a PostgreSQL URL (postgres://…)
    /// [default: <data dir>/lab.db]. Passwords in it never appear in output.
    #[arg(long, env = "CERTLAB_DB", hide_env_values = true)]
    pub db: Option<String>,
}

/// certlab's data directory: `$CERTLAB_DATA_DIR`, else the user's data dir.
pub fn data_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("CERTLAB_DATA_DIR") {
        return Ok(PathBuf::from(d));
    }
    dirs::data_dir().map(|d| d.join("certlab")).ok_or_else(|| {
        failure(
            exit::INFRA,
            "no data directory: set CERTLAB_DATA_DIR or HOME",
        )
    })
}

/// The lab store URL: `--db`, else `<data dir>/lab.db`.
pub fn db_url(arg: &DbArg) -> Result<String> {
    match &arg.db {
        Some(u) => Ok(u.clone()),
        None => Ok(data_dir()?.join("lab.db").display().to_string()),
    }
}

/// The async runtime of the commands that do I/O: two workers.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .build()
        .map_err(|e| CliError::infra(anyhow::Error::new(e).context("starting the async runtime")))
}
