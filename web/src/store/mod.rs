//! The portal store: organisations, users, tokens, sessions, signing keys,
//! submissions, their state changes and the certifications they publish.
//!
//! It lives in the lab store's database (SQLite by default, PostgreSQL in
//! production) beside the lab's tables, with its own migrations
//! (`web/migrations/`, numbered from 1000) sharing sqlx's
//! `_sqlx_migrations` table: each migrator leaves the other's versions
//! alone. The SQL is the lab store's portable dialect.

mod accounts;
mod certifications;
mod kabi;
mod log;
mod rows;
mod seed;
mod submissions;

use certlab_harness::{redact_url, resolve_url, Backend};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection};

pub use accounts::{Org, Role, User};
pub use certifications::{
    CertQuery, Certification, CertificationDetail, Component, ComponentUse, DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
};
pub use kabi::{kabi_id, KabiList, NewKabi};
pub use log::StoredEntry;
pub use rows::{ts, DbError};
pub use seed::{DemoCertification, Seeded};
pub use submissions::{Change, NewSubmission, Submission};

/// The portal's migrations; the lab store's versions (below 1000) are not ours.
static MIGRATOR: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations")
};

/// The portal store. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct PortalStore {
    pool: AnyPool,
    backend: Backend,
}

impl PortalStore {
    /// Connects to `url` (as `--db` takes it: a SQLite path or URL, or
    /// `postgres://…`) and applies the portal's pending migrations.
    pub async fn open(url: &str) -> Result<PortalStore, DbError> {
        sqlx::any::install_default_drivers();
        let redacted = redact_url(url);
        let (backend, url, in_memory) = resolve_url(url).map_err(|e| DbError::Open {
            url_redacted: redacted.clone(),
            detail: e.to_string(),
        })?;
        let connect_err = |e: sqlx::Error| DbError::Open {
            url_redacted: redacted.clone(),
            detail: e.to_string(),
        };
        let mut options = AnyPoolOptions::new();
        if in_memory {
            options = options.max_connections(1).min_connections(1);
            options = options.idle_timeout(None).max_lifetime(None);
        } else {
            // a bad URL or a server that is down fails here at once; a new
            // SQLite file is switched to WAL (retried: that needs the file
            // alone, and another process may be creating it)
            let mut tries = 0;
            loop {
                match first_connect(&url, backend).await {
                    Ok(()) => break,
                    Err(_) if backend == Backend::Sqlite && tries < 50 => {
                        tries += 1;
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(connect_err(e)),
                }
            }
        }
        let pool = options.connect(&url).await.map_err(connect_err)?;
        let mut migrated = MIGRATOR.run(&pool).await;
        if backend == Backend::Sqlite {
            // SQLite's migrations take no lock: another process applying the
            // same migration at once makes this one fail; once it committed,
            // running again finds it applied
            let mut tries = 0;
            while migrated.is_err() && tries < 50 {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                migrated = MIGRATOR.run(&pool).await;
            }
        }
        migrated.map_err(|source: MigrateError| DbError::Migrate {
            url_redacted: redacted.clone(),
            detail: source.to_string(),
        })?;
        Ok(PortalStore { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1")
            .fetch_one(&self.pool)
            .await
            .map_err(rows::db_err("ping"))?;
        Ok(())
    }

    /// Waits for the pool's connections to close.
    pub async fn close(self) {
        self.pool.close().await;
    }
}

async fn first_connect(url: &str, backend: Backend) -> Result<(), sqlx::Error> {
    let mut conn = AnyConnection::connect(url).await?;
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_optional(&mut conn)
            .await?;
    }
    conn.close().await
}
