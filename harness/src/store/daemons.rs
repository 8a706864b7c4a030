//! The orchestrator processes of a lab: each daemon registers itself when
//! it starts, beats while it runs and notes when it stopped (a SIGKILLed
//! one simply stops beating), so `certlab lab daemons` can show who drives
//! the lab.

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::{corrupt, get, parse_ts, query_err, ts};
use super::{Store, StoreError};

/// A daemon as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonRow {
    /// Its lease-holder identity (`host:pid:random`).
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub started: OffsetDateTime,
    pub heartbeat: OffsetDateTime,
    /// When it stopped on a signal (`None`: running, or killed).
    pub stopped: Option<OffsetDateTime>,
}

fn daemon_from_row(row: &AnyRow) -> Result<DaemonRow, StoreError> {
    let w = "daemon row";
    let pid: i64 = get(row, w, "pid")?;
    let stopped: Option<String> = get(row, w, "stopped")?;
    Ok(DaemonRow {
        id: get(row, w, "id")?,
        host: get(row, w, "host")?,
        pid: u32::try_from(pid).map_err(|e| corrupt(w, e))?,
        started: parse_ts(w, &get::<String>(row, w, "started")?)?,
        heartbeat: parse_ts(w, &get::<String>(row, w, "heartbeat")?)?,
        stopped: stopped.map(|s| parse_ts(w, &s)).transpose()?,
    })
}

impl Store {
    /// Records a daemon that starts now (an id seen before starts anew).
    pub async fn register_daemon(
        &self,
        id: &str,
        host: &str,
        pid: u32,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let now = ts(now)?;
        sqlx::query(
            "INSERT INTO daemons (id, host, pid, started, heartbeat, stopped) \
             VALUES ($1, $2, $3, $4, $5, NULL) \
             ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
             started = excluded.started, heartbeat = excluded.heartbeat, stopped = NULL",
        )
        .bind(id)
        .bind(host)
        .bind(i64::from(pid))
        .bind(now.as_str())
        .bind(now.as_str())
        .execute(&self.pool)
        .await
        .map_err(query_err(format!("register daemon `{id}`")))?;
        Ok(())
    }

    /// The daemon is alive at `now`.
    pub async fn daemon_heartbeat(&self, id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        sqlx::query("UPDATE daemons SET heartbeat = $2 WHERE id = $1")
            .bind(id)
            .bind(ts(now)?)
            .execute(&self.pool)
            .await
            .map_err(query_err(format!("heartbeat of daemon `{id}`")))?;
        Ok(())
    }

    /// The daemon stopped (on a signal, its running jobs left resumable).
    pub async fn daemon_stopped(&self, id: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let now = ts(now)?;
        sqlx::query("UPDATE daemons SET heartbeat = $2, stopped = $3 WHERE id = $1")
            .bind(id)
            .bind(now.as_str())
            .bind(now.as_str())
            .execute(&self.pool)
            .await
            .map_err(query_err(format!("note that daemon `{id}` stopped")))?;
        Ok(())
    }

    /// Every daemon that ever ran on this store, the latest started first.
    pub async fn daemons(&self) -> Result<Vec<DaemonRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host, pid, started, heartbeat, stopped FROM daemons \
             ORDER BY started DESC, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(query_err("list daemons"))?;
        rows.iter().map(daemon_from_row).collect()
    }
}
