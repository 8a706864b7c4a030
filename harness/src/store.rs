//! The lab store: runs, their case results and their events, persisted as they happen.
//!
//! One [`Store`] over [`sqlx::AnyPool`] serves SQLite (the default: a file, zero
//! setup) and PostgreSQL (labs shared by several orchestrators) with the same SQL
//! and the same migrations (`harness/migrations/`). The SQL is kept portable:
//! app-generated TEXT ids, BIGINT integers, TEXT timestamps in fixed-width
//! RFC 3339 UTC (so text order is time order), TEXT JSON payloads, `$N` placeholders.

mod baselines;
mod bmc_calls;
mod daemons;
mod fence;
mod host_keys;
mod lab_state;
mod notify;
mod resume;
mod rows;
mod snapshots;
mod url;

use certlab_reports::{CaseResult, Outcome, RunRecord};
use sqlx::any::{Any, AnyArguments, AnyPoolOptions};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::query::Query;
use sqlx::{AnyConnection, AnyPool, Connection};
use time::OffsetDateTime;

use rows::*;
pub use url::{redact_url, resolve_url};

pub use baselines::{baseline_of, machine_key, BaselineRow};
pub use bmc_calls::{BmcCallError, BmcCallStats};
pub use daemons::DaemonRow;
pub use fence::Fence;
pub use host_keys::{KnownHostKey, StoreHostKeys};
pub use lab_state::{JobRow, Leased, MachineRow, NewJob, SyncReport};
pub use notify::{LabListener, LAB_CHANNEL};
pub use resume::ResumePoint;
pub use snapshots::CaseSnapshot;

/// The lab store's migrations. Other stores share the database and sqlx's
/// `_sqlx_migrations` table (the portal's migrations are numbered from
/// 1000): versions applied by them are not ours and are left alone.
static MIGRATOR: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations")
};

/// The columns of `runs` that make a [`RunRow`], for `SELECT`s.
macro_rules! select_runs {
    ($tail:literal) => {
        concat!(
            "SELECT id, plan_id, plan_version, plan_digest, target, hostname, kernel, state, ",
            "outcome, n_pass, n_fail, n_warning, n_skip, n_error, n_crash, started, finished, ",
            "interrupt_reason, out_dir FROM runs ",
            $tail
        )
    };
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A run as it starts: what runs, where, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// App-generated, unique (a UUID).
    pub id: String,
    pub plan_id: String,
    pub plan_version: String,
    pub plan_digest: String,
    /// The machine's name in the lab inventory.
    pub target: String,
    pub hostname: String,
    pub kernel: String,
    pub started: OffsetDateTime,
    pub out_dir: Option<String>,
}

/// Where a run stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Cases are being recorded.
    Running,
    /// Its [`RunRecord`] is stored.
    Finished,
    /// It stopped before finishing (orchestrator crash, cancellation); its
    /// recorded cases are kept and it may be resumed.
    Interrupted,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Finished => "finished",
            RunState::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the runs table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRow {
    pub id: String,
    pub plan_id: String,
    pub plan_version: String,
    pub plan_digest: String,
    pub target: String,
    pub hostname: String,
    pub kernel: String,
    pub state: RunState,
    /// Set when finished.
    pub outcome: Option<Outcome>,
    pub pass: u32,
    /// Failed blocker cases (before migration 0007: every failed case).
    pub fail: u32,
    /// Failed cases that are not blockers.
    pub warning: u32,
    pub skip: u32,
    pub error: u32,
    pub crash: u32,
    pub started: OffsetDateTime,
    /// When it finished or was interrupted.
    pub finished: Option<OffsetDateTime>,
    /// Why it was interrupted, while it is.
    pub interrupt_reason: Option<String>,
    pub out_dir: Option<String>,
}

/// A run with its recorded cases (in recording order) and, once finished, its record.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub run: RunRow,
    pub cases: Vec<CaseResult>,
    pub record: Option<RunRecord>,
}

/// One entry of a run's event log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: u64,
    pub at: OffsetDateTime,
    pub kind: String,
    pub payload: serde_json::Value,
}

/// What can go wrong in the lab store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to lab store {url_redacted}")]
    Connect {
        url_redacted: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create directory {} for the lab store", path.display())]
    CreateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot migrate lab store {url_redacted}")]
    Migrate {
        url_redacted: String,
        #[source]
        source: MigrateError,
    },
    #[error("lab store query failed: {what}")]
    Query {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{what}: already stored")]
    Duplicate {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("corrupt lab store row: {what}: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("invalid {what}: {detail}")]
    Invalid { what: String, detail: String },
    #[error("run id prefix `{prefix}` matches {count} runs")]
    Ambiguous { prefix: String, count: usize },
    #[error("run `{run_id}` not found")]
    NotFound { run_id: String },
    /// A guarded update found the row changed by someone else first.
    #[error("cannot {what}: {detail}")]
    Conflict { what: String, detail: String },
    /// A fenced write (see [`Store::fenced`]) whose holder lost the job's
    /// lease: nothing was written.
    #[error("cannot {what}: job `{job}` is no longer held by `{owner}` (its lease lapsed and the job was taken over)")]
    Fenced {
        what: String,
        job: String,
        owner: String,
    },
    #[error("cannot {action} run `{run_id}`: it is {state}")]
    State {
        run_id: String,
        state: RunState,
        action: &'static str,
    },
}

/// The lab store. Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
    /// The resolved URL, for the PostgreSQL listener; never printed.
    url: SecretUrl,
    /// Set by [`Store::fenced`]: run writes need this job lease held.
    fence: Option<std::sync::Arc<Fence>>,
}

/// A database URL that may hold a password: its `Debug` is redacted.
#[derive(Clone)]
struct SecretUrl(String);

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// One plain connection: fails at once on a bad URL or a server that is down
/// (the pool would retry until its acquire timeout), and sets a SQLite file's
/// journal to WAL (a property of the file) before the pool opens it.
async fn first_connect(url: &str, backend: Backend) -> Result<(), sqlx::Error> {
    let mut conn = AnyConnection::connect(url).await?;
    if backend == Backend::Sqlite {
        sqlx::query("PRAGMA journal_mode = WAL")
            .fetch_optional(&mut conn)
            .await?;
    }
    conn.close().await
}

/// How much of a SQLite file each connection reads through a memory map
/// (256 MiB) and keeps in its own page cache (16 MiB). SQLite's defaults
/// (no map, a 2 MiB cache per connection) make every connection of the pool
/// read the pages of a walk with `pread` and copy them again and again: the
/// portal's public list over 100,000 certifications spent about half of a
/// filtered request's CPU there. The map is the operating system's page
/// cache, shared by the connections; beyond it SQLite reads as before.
const SQLITE_MMAP_BYTES: u64 = 256 << 20;
const SQLITE_CACHE_KIB: i64 = 16 << 10;

/// The read settings of a new SQLite connection ([`SQLITE_MMAP_BYTES`]).
async fn sqlite_read_settings(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query(&format!("PRAGMA mmap_size = {SQLITE_MMAP_BYTES}"))
        .fetch_optional(&mut *conn)
        .await?;
    sqlx::query(&format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}"))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// What [`open_pool`] can fail on.
#[derive(Debug)]
pub enum PoolError {
    /// The URL names no database certlab can open.
    Url(StoreError),
    Connect(sqlx::Error),
    Migrate(MigrateError),
}

/// Connects to `url` (see [`Store::open`]) and applies `migrator`: the one
/// way a store of certlab's — the lab store, the portal's — opens its
/// database. Returns the pool, the backend and the resolved URL.
pub async fn open_pool(
    url: &str,
    migrator: &Migrator,
) -> Result<(AnyPool, Backend, String), PoolError> {
    sqlx::any::install_default_drivers();
    let (backend, url, in_memory) = resolve_url(url).map_err(PoolError::Url)?;
    let mut options = AnyPoolOptions::new();
    if in_memory {
        // every new connection would open a new, empty in-memory database
        options = options.max_connections(1).min_connections(1);
        options = options.idle_timeout(None).max_lifetime(None);
    } else {
        // one plain connection first: a bad URL or a server that is down fails
        // here at once, where the pool would retry until its acquire timeout
        let mut tries = 0;
        loop {
            match first_connect(&url, backend).await {
                Ok(()) => break,
                // Switching a new file to WAL needs it exclusively and does
                // not wait on the busy timeout: another process creating
                // the same store at this moment makes it fail. Retry.
                Err(_) if backend == Backend::Sqlite && tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => return Err(PoolError::Connect(e)),
            }
        }
    }
    if backend == Backend::Sqlite && !in_memory {
        options = options.after_connect(|conn, _| Box::pin(sqlite_read_settings(conn)));
    }
    let pool = options.connect(&url).await.map_err(PoolError::Connect)?;
    migrate(&pool, backend, migrator)
        .await
        .map_err(PoolError::Migrate)?;
    Ok((pool, backend, url))
}

/// Applies `migrator` to `pool`, retrying on SQLite.
async fn migrate(
    pool: &AnyPool,
    backend: Backend,
    migrator: &Migrator,
) -> Result<(), MigrateError> {
    let mut migrated = migrator.run(pool).await;
    if backend == Backend::Sqlite {
        // PostgreSQL migrations hold an advisory lock; SQLite's take none,
        // so two processes opening a new file at once can both try to
        // apply a migration and the later one fails on the tables the
        // first created. Once the first has committed, running the
        // migrator again finds them applied: retry for a while.
        let mut tries = 0;
        while migrated.is_err() && tries < 50 {
            tries += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            migrated = migrator.run(pool).await;
        }
    }
    migrated
}

impl Store {
    /// Connects and applies pending migrations.
    ///
    /// `url` is `postgres://…`, `sqlite:PATH[?…]`, `sqlite::memory:`, or a bare file
    /// path (SQLite). SQLite files are created with their parent directory, use WAL
    /// journaling and wait up to 5 s (sqlx's default busy timeout) on a locked database.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let url_redacted = redact_url(url);
        let (pool, backend, url) = open_pool(url, &MIGRATOR).await.map_err(|e| match e {
            PoolError::Url(e) => e,
            PoolError::Connect(source) => StoreError::Connect {
                url_redacted: url_redacted.clone(),
                source,
            },
            PoolError::Migrate(source) => StoreError::Migrate {
                url_redacted: url_redacted.clone(),
                source,
            },
        })?;
        Ok(Store {
            pool,
            backend,
            url: SecretUrl(url),
            fence: None,
        })
    }

    /// The lab store over a pool that [`open_pool`] opened for another of
    /// certlab's stores (the portal's, on the same database): applies the
    /// lab's pending migrations and shares the pool. `url` is the resolved
    /// URL `open_pool` returned.
    pub async fn over_pool(
        pool: AnyPool,
        backend: Backend,
        url: String,
    ) -> Result<Store, StoreError> {
        migrate(&pool, backend, &MIGRATOR)
            .await
            .map_err(|source| StoreError::Migrate {
                url_redacted: redact_url(&url),
                source,
            })?;
        Ok(Store {
            pool,
            backend,
            url: SecretUrl(url),
            fence: None,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Stores a new run in state `running`, with no cases.
    pub async fn create_run(&self, run: &NewRun) -> Result<(), StoreError> {
        let query = sqlx::query(
            "INSERT INTO runs (id, plan_id, plan_version, plan_digest, target, hostname, kernel, \
             state, started, out_dir) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $9)",
        )
        .bind(run.id.as_str())
        .bind(run.plan_id.as_str())
        .bind(run.plan_version.as_str())
        .bind(run.plan_digest.as_str())
        .bind(run.target.as_str())
        .bind(run.hostname.as_str())
        .bind(run.kernel.as_str())
        .bind(ts(run.started)?)
        .bind(run.out_dir.as_deref());
        let what = format!("create run `{}`", run.id);
        self.execute_fenced(&what, query)
            .await?
            .map_err(|e| db_err(&run.id, what.clone(), e))?;
        Ok(())
    }

    /// Stores a finished case of a running run and counts its verdict, in one transaction.
    ///
    /// A case id already recorded for the run is [`StoreError::Duplicate`] and changes nothing.
    pub async fn record_case(
        &self,
        run_id: &str,
        seq: u32,
        case: &CaseResult,
    ) -> Result<(), StoreError> {
        let what = format!("record case `{}` of run `{run_id}`", case.id);
        check_metrics(std::slice::from_ref(case))?;
        let json = to_json(&what, case)?;
        let mut tx = self.pool.begin().await.map_err(query_err(&what))?;
        let bumped = sqlx::query(count_sql(case))
            .bind(run_id)
            .execute(&mut *tx)
            .await;
        if bumped.map_err(query_err(&what))?.rows_affected() == 0 {
            tx.rollback().await.map_err(query_err(&what))?;
            return Err(self.state_error(run_id, "record a case of").await);
        }
        sqlx::query(
            "INSERT INTO case_results (run_id, seq, case_id, title, verdict, reason, started, \
             duration_ms, result_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(run_id)
        .bind(i64::from(seq))
        .bind(case.id.as_str())
        .bind(case.title.as_str())
        .bind(case.verdict.as_str())
        .bind(case.reason.as_str())
        .bind(ts(case.started)?)
        .bind(to_i64("case duration_ms", case.duration_ms)?)
        .bind(json)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_err(run_id, what.clone(), e))?;
        self.check_fence(&mut tx, &what).await?;
        tx.commit().await.map_err(query_err(&what))
    }

    /// Appends one entry to a run's event log; `seq` is unique within the run.
    pub async fn append_event(
        &self,
        run_id: &str,
        seq: u64,
        at: OffsetDateTime,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let what = format!("append event {seq} ({kind}) of run `{run_id}`");
        let query = sqlx::query(
            "INSERT INTO run_events (run_id, seq, at, kind, payload_json) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(run_id)
        .bind(to_i64("event seq", seq)?)
        .bind(ts(at)?)
        .bind(kind)
        .bind(to_json(&what, payload)?);
        self.execute_fenced(&what, query)
            .await?
            .map_err(|e| db_err(run_id, what.clone(), e))?;
        Ok(())
    }

    /// A run's event log, in `seq` order.
    pub async fn events(&self, run_id: &str) -> Result<Vec<StoredEvent>, StoreError> {
        self.events_after(run_id, None, None).await
    }

    /// The entries of a run's event log after `seq` `after` (`None`: from
    /// the first), in `seq` order, at most `limit` of them: how a follower
    /// reads on from where it stopped.
    pub async fn events_after(
        &self,
        run_id: &str,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let after = match after.map(i64::try_from) {
            Some(Ok(seq)) => seq,
            // no stored seq is beyond the range of BIGINT
            Some(Err(_)) => return Ok(Vec::new()),
            None => -1,
        };
        let sql = "SELECT seq, at, kind, payload_json FROM run_events \
                   WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
        let rows = sqlx::query(sql)
            .bind(run_id)
            .bind(after)
            .bind(limit.map_or(i64::MAX, i64::from))
            .fetch_all(&self.pool)
            .await;
        let rows = rows.map_err(query_err(format!("list events of run `{run_id}`")))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = get(row, "event", "seq")?;
                let what = format!("event {seq} of run `{run_id}`");
                Ok(StoredEvent {
                    seq: u64::try_from(seq).map_err(|e| corrupt(&what, e))?,
                    at: parse_ts(&what, &get::<String>(row, &what, "at")?)?,
                    kind: get(row, &what, "kind")?,
                    payload: json_col(row, &what, "payload_json")?,
                })
            })
            .collect()
    }

    /// Whether more events may still come to a run's log: the run is
    /// `running`, or a job is leased to it, runs it, or waits in the queue
    /// to resume it (its release is logged after the run finishes, before
    /// the job ends). `None` when no run has this id.
    pub async fn run_open(&self, run_id: &str) -> Result<Option<bool>, StoreError> {
        let what = format!("read whether run `{run_id}` goes on");
        let row = sqlx::query(
            "SELECT state, (SELECT COUNT(*) FROM jobs WHERE \
             (run_id = $1 AND state IN ('leased', 'running')) \
             OR (resume_run = $1 AND state = 'queued')) AS active_jobs \
             FROM runs WHERE id = $1",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err(&what))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let state = parse_state(&what, &get::<String>(&row, &what, "state")?)?;
        let active: i64 = get(&row, &what, "active_jobs")?;
        Ok(Some(state == RunState::Running || active > 0))
    }

    /// Marks a running or interrupted run finished with its record; the counts and
    /// outcome become the record's summary.
    pub async fn finish_run(&self, run_id: &str, record: &RunRecord) -> Result<(), StoreError> {
        if record.run_id != run_id {
            let detail = format!("the record is of run `{}`", record.run_id);
            return Err(invalid(format!("record for run `{run_id}`"), detail));
        }
        check_metrics(&record.cases)?;
        let s = &record.summary;
        let query = sqlx::query(
            "UPDATE runs SET state = 'finished', outcome = $2, n_pass = $3, n_fail = $4, \
             n_skip = $5, n_error = $6, n_crash = $7, finished = $8, record_json = $9, \
             interrupt_reason = NULL, n_warning = $10 \
             WHERE id = $1 AND state IN ('running', 'interrupted')",
        )
        .bind(run_id)
        .bind(s.outcome.as_str())
        .bind(i64::from(s.pass))
        .bind(i64::from(s.fail))
        .bind(i64::from(s.skip))
        .bind(i64::from(s.error))
        .bind(i64::from(s.crash))
        .bind(ts(record.finished)?)
        .bind(to_json(&format!("record of run `{run_id}`"), record)?)
        .bind(i64::from(s.warning));
        self.update(run_id, "finish", query).await
    }

    /// Marks a running run interrupted at `at`; its recorded cases stay.
    pub async fn mark_interrupted(
        &self,
        run_id: &str,
        at: OffsetDateTime,
        reason: &str,
    ) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE runs SET state = 'interrupted', finished = $2, interrupt_reason = $3 \
             WHERE id = $1 AND state = 'running'",
        );
        let query = query.bind(run_id).bind(ts(at)?).bind(reason);
        self.update(run_id, "interrupt", query).await
    }

    /// Puts an interrupted run back to running, keeping its recorded cases.
    pub async fn resume_run(&self, run_id: &str) -> Result<(), StoreError> {
        let query = sqlx::query(
            "UPDATE runs SET state = 'running', finished = NULL, interrupt_reason = NULL \
             WHERE id = $1 AND state = 'interrupted'",
        );
        self.update(run_id, "resume", query.bind(run_id)).await
    }

    /// The newest `limit` runs, newest first.
    pub async fn list_runs(&self, limit: u32) -> Result<Vec<RunRow>, StoreError> {
        let query = sqlx::query(select_runs!("ORDER BY started DESC, id DESC LIMIT $1"));
        let rows = query.bind(i64::from(limit)).fetch_all(&self.pool).await;
        rows.map_err(query_err("list runs"))?
            .iter()
            .map(run_from_row)
            .collect()
    }

    /// A run by its id or by a prefix of it that no other run's id starts with.
    ///
    /// An exact id always wins; a prefix of several ids is [`StoreError::Ambiguous`];
    /// an empty prefix, or one of no id, is `None`.
    pub async fn get_run(
        &self,
        id_or_unique_prefix: &str,
    ) -> Result<Option<RunDetail>, StoreError> {
        let prefix = id_or_unique_prefix;
        if prefix.is_empty() {
            return Ok(None);
        }
        let query = sqlx::query(select_runs!("WHERE id LIKE $1 ESCAPE '\\'"));
        let rows = query
            .bind(format!("{}%", escape_like(prefix)))
            .fetch_all(&self.pool)
            .await;
        let mut runs = Vec::new();
        for row in &rows.map_err(query_err(format!("find run `{prefix}`")))? {
            let run = run_from_row(row)?;
            // SQLite's LIKE ignores ASCII case: keep exact prefixes only
            if run.id == prefix {
                runs = vec![run];
                break;
            } else if run.id.starts_with(prefix) {
                runs.push(run);
            }
        }
        let run = match runs.len() {
            0 => return Ok(None),
            1 => runs.remove(0),
            count => {
                return Err(StoreError::Ambiguous {
                    prefix: prefix.into(),
                    count,
                })
            }
        };
        let what = format!("cases of run `{}`", run.id);
        let sql = "SELECT result_json FROM case_results WHERE run_id = $1 ORDER BY seq";
        let rows = sqlx::query(sql)
            .bind(run.id.as_str())
            .fetch_all(&self.pool)
            .await;
        let rows = rows.map_err(query_err(&what))?;
        let cases = rows.iter().map(|row| json_col(row, &what, "result_json"));
        let cases = cases.collect::<Result<Vec<CaseResult>, _>>()?;
        let what = format!("record of run `{}`", run.id);
        let query = sqlx::query("SELECT record_json FROM runs WHERE id = $1").bind(run.id.as_str());
        let row = query.fetch_optional(&self.pool).await;
        let json: Option<Option<String>> = match row.map_err(query_err(&what))? {
            Some(row) => Some(get(&row, &what, "record_json")?),
            None => None,
        };
        let record = json
            .flatten()
            .map(|json| from_json(&what, &json))
            .transpose()?;
        Ok(Some(RunDetail { run, cases, record }))
    }

    /// Waits for the pool's connections to close.
    pub async fn close(self) {
        self.pool.close().await;
    }

    /// Runs an `UPDATE` of one run; when it changes nothing, says why.
    async fn update<'q>(
        &self,
        run_id: &str,
        action: &'static str,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Result<(), StoreError> {
        let what = format!("{action} run `{run_id}`");
        let done = self.execute_fenced(&what, query).await?;
        let done = done.map_err(|e| db_err(run_id, what.clone(), e))?;
        match done.rows_affected() {
            0 => Err(self.state_error(run_id, action).await),
            _ => Ok(()),
        }
    }

    /// Why a run could not be changed: it does not exist, or its state forbids it.
    async fn state_error(&self, run_id: &str, action: &'static str) -> StoreError {
        let what = format!("run `{run_id}`");
        let query = sqlx::query("SELECT state FROM runs WHERE id = $1").bind(run_id);
        let state = match query.fetch_optional(&self.pool).await {
            Ok(None) => {
                return StoreError::NotFound {
                    run_id: run_id.into(),
                }
            }
            Ok(Some(row)) => {
                get::<String>(&row, &what, "state").and_then(|s| parse_state(&what, &s))
            }
            Err(source) => return StoreError::Query { what, source },
        };
        match state {
            Ok(state) => StoreError::State {
                run_id: run_id.into(),
                state,
                action,
            },
            Err(e) => e,
        }
    }
}
