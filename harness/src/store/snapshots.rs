//! The before-snapshots of rebooting cases (migration 0010): what a
//! case's `before` phase noted, stored before the machine goes down, so a
//! run whose orchestrator died between `before` and `after` resumes from
//! it instead of starting the case again on the new boot.

use certlab_reports::Evidence;
use time::OffsetDateTime;

use super::rows::{db_err, from_json, get, parse_ts, query_err, to_json, ts};
use super::{Store, StoreError};

/// What a rebooting case's `before` phase left, as stored with its run.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSnapshot {
    pub case_id: String,
    /// The boot the snapshot was taken on (the orchestrator's reading).
    pub boot_id: String,
    /// Where the BMC's event log stood before the reboot (`None`: no log).
    pub sel_mark: Option<String>,
    /// The check's snapshot (`Before::Go`).
    pub snapshot: serde_json::Value,
    /// The `before` phase's evidence (artifacts in the run's evidence directory).
    pub evidence: Vec<Evidence>,
    pub created: OffsetDateTime,
}

impl Store {
    /// Stores `snap` for `run_id`, replacing an earlier one of the same
    /// case (a retried `before`).
    pub async fn save_case_snapshot(
        &self,
        run_id: &str,
        snap: &CaseSnapshot,
    ) -> Result<(), StoreError> {
        let what = format!(
            "store the before-snapshot of case `{}` of run `{run_id}`",
            snap.case_id
        );
        let query = sqlx::query(
            "INSERT INTO case_snapshots (run_id, case_id, boot_id, sel_mark, snapshot_json, \
             evidence_json, created) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (run_id, case_id) DO UPDATE SET boot_id = excluded.boot_id, \
             sel_mark = excluded.sel_mark, snapshot_json = excluded.snapshot_json, \
             evidence_json = excluded.evidence_json, created = excluded.created",
        )
        .bind(run_id)
        .bind(snap.case_id.as_str())
        .bind(snap.boot_id.as_str())
        .bind(snap.sel_mark.as_deref())
        .bind(to_json(&what, &snap.snapshot)?)
        .bind(to_json(&what, &snap.evidence)?)
        .bind(ts(snap.created)?);
        self.execute_fenced(&what, query)
            .await?
            .map_err(|e| db_err(run_id, what.clone(), e))?;
        Ok(())
    }

    /// The stored before-snapshot of `case_id` in `run_id`, if its `before`
    /// phase ran in this or an earlier attempt of the run.
    pub async fn case_snapshot(
        &self,
        run_id: &str,
        case_id: &str,
    ) -> Result<Option<CaseSnapshot>, StoreError> {
        let what = format!("read the before-snapshot of case `{case_id}` of run `{run_id}`");
        let row = sqlx::query(
            "SELECT boot_id, sel_mark, snapshot_json, evidence_json, created \
             FROM case_snapshots WHERE run_id = $1 AND case_id = $2",
        )
        .bind(run_id)
        .bind(case_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err(&what))?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(CaseSnapshot {
            case_id: case_id.to_string(),
            boot_id: get(&row, &what, "boot_id")?,
            sel_mark: get(&row, &what, "sel_mark")?,
            snapshot: from_json(&what, &get::<String>(&row, &what, "snapshot_json")?)?,
            evidence: from_json(&what, &get::<String>(&row, &what, "evidence_json")?)?,
            created: parse_ts(&what, &get::<String>(&row, &what, "created")?)?,
        }))
    }
}
