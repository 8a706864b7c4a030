//! Fencing a run's writes by its job's lease.
//!
//! A daemon whose lease lapsed (a stalled process, a heartbeat that did not
//! get through in time) may still be carrying out the run when another
//! daemon takes the job over and resumes the same run. Without a fence both
//! would write the run: two results for one case, two events of one
//! sequence number — and the loser of that race would see an error, count
//! it as an infrastructure fault and start the job on a new run. A store
//! made with [`Store::fenced`] checks, in the same transaction as each run
//! write, that the job is still leased or running under this holder; once
//! the lease is gone every write is refused with [`StoreError::Fenced`] and
//! changes nothing.
//!
//! The check is the last statement before the commit. On PostgreSQL it
//! takes the job row `FOR SHARE`: a takeover committed before it is seen
//! (READ COMMITTED reads the newest committed row), one that comes after it
//! waits for this commit, so the write happened before the takeover and the
//! resuming daemon finds it in the store. SQLite has one writer at a time
//! and the transaction has written already, so nothing can come between.

use std::sync::Arc;

use sqlx::any::{Any, AnyArguments, AnyQueryResult};
use sqlx::query::Query;
use sqlx::{AnyConnection, Row};

use super::rows::query_err;
use super::{Backend, Store, StoreError};

/// Who must still hold which job for a run write to go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub job: String,
    pub owner: String,
}

impl Store {
    /// This store, with every write of a run (its creation, events, case
    /// results, snapshots, end) fenced by `owner`'s lease of `job`. Reads
    /// and job steps (guarded by their own compare-and-set) are unchanged.
    pub fn fenced(&self, job: &str, owner: &str) -> Store {
        Store {
            fence: Some(Arc::new(Fence {
                job: job.to_string(),
                owner: owner.to_string(),
            })),
            ..self.clone()
        }
    }

    /// The fence of this store, if it has one.
    pub fn fence(&self) -> Option<&Fence> {
        self.fence.as_deref()
    }

    /// Refuses, inside the open transaction `conn`, when this store is
    /// fenced and its holder no longer holds the job.
    pub(super) async fn check_fence(
        &self,
        conn: &mut AnyConnection,
        what: &str,
    ) -> Result<(), StoreError> {
        let Some(fence) = &self.fence else {
            return Ok(());
        };
        let sql = match self.backend {
            Backend::Postgres => {
                "SELECT state FROM jobs WHERE id = $1 AND lease_owner = $2 \
                 AND state IN ('leased', 'running') FOR SHARE"
            }
            Backend::Sqlite => {
                "SELECT state FROM jobs WHERE id = $1 AND lease_owner = $2 \
                 AND state IN ('leased', 'running')"
            }
        };
        let held = sqlx::query(sql)
            .bind(fence.job.as_str())
            .bind(fence.owner.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err(format!(
                "{what}: check the lease of job `{}`",
                fence.job
            )))?;
        match held {
            Some(row) if row.try_get::<String, _>("state").is_ok() => Ok(()),
            _ => Err(StoreError::Fenced {
                what: what.to_string(),
                job: fence.job.clone(),
                owner: fence.owner.clone(),
            }),
        }
    }

    /// Runs one write, fenced when this store is: `Err` is the fence or the
    /// transaction, the inner result the query's own (for the caller to
    /// map as it maps its errors).
    pub(super) async fn execute_fenced<'q>(
        &self,
        what: &str,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<Result<AnyQueryResult, sqlx::Error>, StoreError> {
        if self.fence.is_none() {
            return Ok(query.execute(&self.pool).await);
        }
        let mut tx = self.pool.begin().await.map_err(query_err(what))?;
        let done = match query.execute(&mut *tx).await {
            Ok(done) => done,
            Err(e) => return Ok(Err(e)),
        };
        self.check_fence(&mut tx, what).await?;
        tx.commit().await.map_err(query_err(what))?;
        Ok(Ok(done))
    }
}
