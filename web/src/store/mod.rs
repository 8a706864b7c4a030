//! The portal store: organisations, users, tokens, sessions, signing keys,
//! submissions, their state changes and the certifications they publish.
//!
//! It lives in the lab store's database (SQLite by default, PostgreSQL in
//! production) beside the lab's tables, with its own migrations
//! (`web/migrations/`, numbered from 1000) sharing sqlx's
//! `_sqlx_migrations` table: each migrator leaves the other's versions
//! alone. The SQL is the lab store's portable dialect.
//!
//! The lab dashboard reads (and queues jobs in) the lab's tables of the same
//! database through [`PortalStore::lab`]: the harness's own [`Store`] over
//! this store's pool, so the lab's SQL stays in `harness`.

mod accounts;
mod certifications;
mod kabi;
mod log;
mod rows;
mod seed;
mod submissions;

use certlab_harness::{open_pool, redact_url, Backend, PoolError, Store};
use sqlx::migrate::Migrator;
use sqlx::AnyPool;

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

/// An error and its causes, joined.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut out = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push(c.to_string());
        cur = c.source();
    }
    out.join(": ")
}

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
    /// The public list's match counts by filter.
    counts: std::sync::Arc<certifications::CountCache>,
    lab: Store,
}

impl PortalStore {
    /// Connects to `url` (as `--db` takes it: a SQLite path or URL, or
    /// `postgres://…`) and applies the portal's pending migrations.
    pub async fn open(url: &str) -> Result<PortalStore, DbError> {
        let url_redacted = redact_url(url);
        let (pool, backend, url) = open_pool(url, &MIGRATOR).await.map_err(|e| match e {
            PoolError::Url(e) => DbError::Open {
                url_redacted: url_redacted.clone(),
                detail: e.to_string(),
            },
            PoolError::Connect(e) => DbError::Open {
                url_redacted: url_redacted.clone(),
                detail: e.to_string(),
            },
            PoolError::Migrate(e) => DbError::Migrate {
                url_redacted: url_redacted.clone(),
                detail: e.to_string(),
            },
        })?;
        // the lab's tables too, so that the dashboard finds them (empty)
        // before any daemon ran on this database
        let lab = Store::over_pool(pool.clone(), backend, url)
            .await
            .map_err(|e| DbError::Migrate {
                url_redacted: url_redacted.clone(),
                detail: source_chain(&e),
            })?;
        Ok(PortalStore {
            pool,
            backend,
            counts: Default::default(),
            lab,
        })
    }

    /// The lab store on the same database: machines, jobs, runs, events.
    pub fn lab(&self) -> &Store {
        &self.lab
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
