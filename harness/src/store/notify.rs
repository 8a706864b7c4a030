//! Wake-ups between orchestrators on PostgreSQL: every change of the lab's
//! jobs and machines is announced with `NOTIFY` on [`LAB_CHANNEL`], and a
//! daemon `LISTEN`s, so a submission or a run ending elsewhere starts the
//! next scheduling pass at once instead of at the next poll. SQLite has no
//! such channel: daemons on it poll (and wake each other in-process).

use sqlx::postgres::PgListener;

use super::rows::query_err;
use super::{Backend, Store, StoreError};

/// The channel every lab change is announced on.
pub const LAB_CHANNEL: &str = "certlab_lab";

/// A `LISTEN` on [`LAB_CHANNEL`] (PostgreSQL only).
pub struct LabListener(PgListener);

impl LabListener {
    /// Waits for the next announcement; reconnects by itself after a lost
    /// connection (notifications sent meanwhile are lost: callers also poll).
    pub async fn recv(&mut self) -> Result<String, StoreError> {
        let n = self
            .0
            .recv()
            .await
            .map_err(query_err(format!("listen on {LAB_CHANNEL}")))?;
        Ok(n.payload().to_string())
    }
}

impl Store {
    /// Announces a change (`what`: e.g. `job:<id>:queued`) to listening
    /// daemons. A failure is logged, not returned: daemons also poll.
    pub(crate) async fn announce(&self, what: &str) {
        if self.backend != Backend::Postgres {
            return;
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(LAB_CHANNEL)
            .bind(what)
            .execute(&self.pool)
            .await;
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not announce a lab change");
        }
    }

    /// A listener for lab changes, or `None` on SQLite.
    pub async fn listen(&self) -> Result<Option<LabListener>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let what = format!("listen on {LAB_CHANNEL}");
        let mut l = PgListener::connect(&self.url.0)
            .await
            .map_err(query_err(&what))?;
        l.listen(LAB_CHANNEL).await.map_err(query_err(&what))?;
        Ok(Some(LabListener(l)))
    }
}
