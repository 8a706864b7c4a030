//! Starting a run whose row may already exist: created when its job was
//! leased, or left `running`/`interrupted` by an orchestrator that died.

use certlab_reports::CaseResult;
use sqlx::Row;

use super::rows::{corrupt, from_json, get, parse_state, query_err, ts};
use super::{NewRun, RunState, Store, StoreError};

/// What an earlier attempt of a run left in the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResumePoint {
    /// Cases already recorded, with their sequence numbers.
    pub cases: Vec<(u32, CaseResult)>,
    /// The last event sequence number used.
    pub last_event_seq: u64,
}

impl Store {
    /// Creates the run, or takes over an existing `running` or
    /// `interrupted` row of the same id (discovery's host and kernel fill
    /// in what the lease could not know) and returns what it recorded
    /// already. A finished run is not started again.
    pub async fn begin_run(&self, run: &NewRun) -> Result<ResumePoint, StoreError> {
        let what = format!("begin run `{}`", run.id);
        let row = sqlx::query("SELECT state FROM runs WHERE id = $1")
            .bind(run.id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err(&what))?;
        let Some(row) = row else {
            self.create_run(run).await?;
            return Ok(ResumePoint::default());
        };
        let state = parse_state(&what, &get::<String>(&row, &what, "state")?)?;
        if state == RunState::Finished {
            return Err(StoreError::State {
                run_id: run.id.clone(),
                state,
                action: "begin",
            });
        }
        let query = sqlx::query(
            "UPDATE runs SET state = 'running', hostname = $2, kernel = $3, \
             out_dir = COALESCE($4, out_dir), finished = NULL, interrupt_reason = NULL, \
             started = CASE WHEN hostname = '' THEN $5 ELSE started END \
             WHERE id = $1 AND state IN ('running', 'interrupted')",
        )
        .bind(run.id.as_str())
        .bind(run.hostname.as_str())
        .bind(run.kernel.as_str())
        .bind(run.out_dir.as_deref())
        .bind(ts(run.started)?);
        self.execute_fenced(&what, query)
            .await?
            .map_err(query_err(&what))?;
        let rows =
            sqlx::query("SELECT seq, result_json FROM case_results WHERE run_id = $1 ORDER BY seq")
                .bind(run.id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(query_err(&what))?;
        let mut cases = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = get(row, &what, "seq")?;
            let seq = u32::try_from(seq).map_err(|e| corrupt(&what, e))?;
            let case: CaseResult = from_json(&what, &get::<String>(row, &what, "result_json")?)?;
            cases.push((seq, case));
        }
        let last = sqlx::query("SELECT MAX(seq) AS last FROM run_events WHERE run_id = $1")
            .bind(run.id.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(query_err(&what))?;
        let last: Option<i64> = last.try_get("last").map_err(query_err(&what))?;
        let last_event_seq = u64::try_from(last.unwrap_or(0)).map_err(|e| corrupt(&what, e))?;
        Ok(ResumePoint {
            cases,
            last_event_seq,
        })
    }
}
