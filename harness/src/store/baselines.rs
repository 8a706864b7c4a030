//! Performance baselines (migration 0009): the samples a run's performance
//! cases recorded, kept per machine or per platform, which later runs of
//! those cases are compared with.
//!
//! A baseline is set from a finished run: every case that passed gives one
//! row per metric it sampled at least [`MIN_SAMPLES`] times, and every RAS
//! case that read its counters (passed or failed) one row per counter (and
//! its uptime) with that one reading, all rows with one `created`. Rows are never changed; for a case, the newest set of a
//! (scope, key) is the one in force.

use std::collections::{BTreeMap, BTreeSet};

use certlab_reports::{BaselineScope, Better, Verdict};
use certlab_suites::checks::ras_delta::is_ras_counter;
use certlab_suites::perf::samples::Series;
use certlab_suites::perf::stats::MIN_SAMPLES;
use certlab_suites::perf::{platform_key, Baseline};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::{
    corrupt, escape_like, from_json, get, invalid, parse_ts, query_err, to_json, ts,
};
use super::{Store, StoreError};

/// One metric of one case in a baseline, as stored.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BaselineRow {
    pub id: String,
    pub scope: BaselineScope,
    /// The machine's name, or the platform's key.
    pub key: String,
    pub case_id: String,
    /// The metric's name as the case records it.
    pub metric: String,
    pub unit: String,
    pub direction: Better,
    pub samples: Vec<f64>,
    pub source_run: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    pub kernel: String,
    pub plan_id: String,
    pub plan_version: String,
}

/// The key of a machine's baselines: its name in the lab, or for a run on
/// the machine certlab runs on (target `local`), `local:HOSTNAME`.
pub fn machine_key(target: &str, hostname: &str) -> String {
    if target == "local" {
        format!("local:{hostname}")
    } else {
        target.to_string()
    }
}

/// Rows of one case's set (same scope, key, source run and time) as the
/// baseline a case is given.
pub fn baseline_of(rows: &[BaselineRow]) -> Option<Baseline> {
    let first = rows.first()?;
    let metrics: BTreeMap<String, Series> = rows
        .iter()
        .map(|r| {
            (
                r.metric.clone(),
                Series {
                    unit: r.unit.clone(),
                    direction: r.direction,
                    samples: r.samples.clone(),
                },
            )
        })
        .collect();
    Some(Baseline {
        scope: first.scope,
        key: first.key.clone(),
        source_run: first.source_run.clone(),
        created: first.created,
        kernel: first.kernel.clone(),
        plan_version: first.plan_version.clone(),
        metrics,
    })
}

const SELECT: &str =
    "SELECT id, scope, scope_key, case_id, metric, unit, direction, samples_json, \
     source_run, created, kernel, plan_id, plan_version FROM perf_baselines ";

fn baseline_from_row(row: &AnyRow) -> Result<BaselineRow, StoreError> {
    let id: String = get(row, "baseline", "id")?;
    let what = format!("baseline `{id}`");
    let scope: String = get(row, &what, "scope")?;
    let direction: String = get(row, &what, "direction")?;
    Ok(BaselineRow {
        scope: scope.parse().map_err(|e| corrupt(&what, e))?,
        key: get(row, &what, "scope_key")?,
        case_id: get(row, &what, "case_id")?,
        metric: get(row, &what, "metric")?,
        unit: get(row, &what, "unit")?,
        direction: match direction.as_str() {
            "higher" => Better::Higher,
            "lower" => Better::Lower,
            other => return Err(corrupt(&what, format!("unknown direction `{other}`"))),
        },
        samples: from_json(&what, &get::<String>(row, &what, "samples_json")?)?,
        source_run: get(row, &what, "source_run")?,
        created: parse_ts(&what, &get::<String>(row, &what, "created")?)?,
        kernel: get(row, &what, "kernel")?,
        plan_id: get(row, &what, "plan_id")?,
        plan_version: get(row, &what, "plan_version")?,
        id,
    })
}

/// Keeps, for each (scope, key, case), the rows of its newest set.
fn in_force(rows: Vec<BaselineRow>) -> Vec<BaselineRow> {
    // Rows come newest first: the first set seen of a case is in force.
    let mut newest: BTreeMap<(BaselineScope, String, String), (OffsetDateTime, String)> =
        BTreeMap::new();
    rows.into_iter()
        .filter(|r| {
            let set = newest
                .entry((r.scope, r.key.clone(), r.case_id.clone()))
                .or_insert_with(|| (r.created, r.source_run.clone()));
            set.0 == r.created && set.1 == r.source_run
        })
        .collect()
}

impl Store {
    /// Makes `scope` baselines of a finished run's performance samples at
    /// `now`: for every case that passed, one row per metric it sampled at
    /// least [`MIN_SAMPLES`] times. The machine's key is
    /// [`machine_key`] of the run, the platform's [`platform_key`] of its
    /// record. A run with no such metric is [`StoreError::Invalid`].
    pub async fn set_baselines_from_run(
        &self,
        run_id_or_prefix: &str,
        scope: BaselineScope,
        now: OffsetDateTime,
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let detail = self
            .get_run(run_id_or_prefix)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                run_id: run_id_or_prefix.to_string(),
            })?;
        let run_id = detail.run.id.clone();
        let Some(record) = detail.record else {
            return Err(invalid(
                format!("baseline source run `{run_id}`"),
                format!("it is {}, not finished", detail.run.state),
            ));
        };
        let key = match scope {
            BaselineScope::Machine => machine_key(&detail.run.target, &record.host.hostname),
            BaselineScope::Platform => platform_key(&record.profile),
        };
        let mut rows = Vec::new();
        for case in record.cases.iter().filter(|c| c.verdict == Verdict::Pass) {
            let mut set = certlab_suites::perf::SampleSet::default();
            certlab_suites::perf::samples::add_run(&mut set, &case.id, case.metrics.clone())
                .map_err(|e| invalid(format!("samples of run `{run_id}`"), e))?;
            let prefix = format!("{}/", case.id);
            for (name, series) in set.metrics {
                if series.samples.len() < MIN_SAMPLES {
                    continue;
                }
                rows.push(BaselineRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    scope,
                    key: key.clone(),
                    case_id: case.id.clone(),
                    metric: name.strip_prefix(&prefix).unwrap_or(&name).to_string(),
                    unit: series.unit,
                    direction: series.direction,
                    samples: series.samples,
                    source_run: run_id.clone(),
                    created: now,
                    kernel: record.host.kernel.clone(),
                    plan_id: record.plan.id.clone(),
                    plan_version: record.plan.version.clone(),
                });
            }
        }
        // RAS counters (one reading each) of every case that read them,
        // passed or failed: a later run's counters are compared with them.
        for case in record
            .cases
            .iter()
            .filter(|c| matches!(c.verdict, Verdict::Pass | Verdict::Fail))
        {
            for m in case.metrics.iter().filter(|m| is_ras_counter(m)) {
                if case.metrics.iter().filter(|o| o.name == m.name).count() != 1 {
                    continue;
                }
                rows.push(BaselineRow {
                    id: uuid::Uuid::new_v4().to_string(),
                    scope,
                    key: key.clone(),
                    case_id: case.id.clone(),
                    metric: m.name.clone(),
                    unit: m.unit.clone(),
                    direction: m.better,
                    samples: vec![m.value],
                    source_run: run_id.clone(),
                    created: now,
                    kernel: record.host.kernel.clone(),
                    plan_id: record.plan.id.clone(),
                    plan_version: record.plan.version.clone(),
                });
            }
        }
        if rows.is_empty() {
            return Err(invalid(
                format!("baseline source run `{run_id}`"),
                format!(
                    "no case that passed sampled a metric {MIN_SAMPLES} times or more (performance cases sample their figure once per run of the benchmark), and no RAS case read its counters"
                ),
            ));
        }
        let what = format!("set baselines from run `{run_id}`");
        let mut tx = self.pool.begin().await.map_err(query_err(&what))?;
        for r in &rows {
            sqlx::query(
                "INSERT INTO perf_baselines (id, scope, scope_key, case_id, metric, unit, \
                 direction, samples_json, source_run, created, kernel, plan_id, plan_version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(r.id.as_str())
            .bind(r.scope.as_str())
            .bind(r.key.as_str())
            .bind(r.case_id.as_str())
            .bind(r.metric.as_str())
            .bind(r.unit.as_str())
            .bind(match r.direction {
                Better::Higher => "higher",
                Better::Lower => "lower",
            })
            .bind(to_json(&what, &r.samples)?)
            .bind(r.source_run.as_str())
            .bind(ts(r.created)?)
            .bind(r.kernel.as_str())
            .bind(r.plan_id.as_str())
            .bind(r.plan_version.as_str())
            .execute(&mut *tx)
            .await
            .map_err(query_err(&what))?;
        }
        tx.commit().await.map_err(query_err(&what))?;
        Ok(rows)
    }

    /// Baselines, newest first, of `scope` and `key` when given; only the
    /// sets in force unless `all`.
    pub async fn list_baselines(
        &self,
        scope: Option<BaselineScope>,
        key: Option<&str>,
        all: bool,
    ) -> Result<Vec<BaselineRow>, StoreError> {
        let sql = format!(
            "{SELECT} WHERE ($1 = '' OR scope = $1) AND ($2 = '' OR scope_key = $2) \
             ORDER BY created DESC, case_id, metric"
        );
        let key = key.unwrap_or("");
        let rows = sqlx::query(&sql)
            .bind(scope.map_or("", BaselineScope::as_str))
            .bind(key)
            .fetch_all(&self.pool)
            .await
            .map_err(query_err("list baselines"))?;
        let rows = rows
            .iter()
            .map(baseline_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if all { rows } else { in_force(rows) })
    }

    /// A baseline row by its id or a prefix of it no other id starts with.
    pub async fn get_baseline(
        &self,
        id_or_prefix: &str,
    ) -> Result<Option<BaselineRow>, StoreError> {
        if id_or_prefix.is_empty() {
            return Ok(None);
        }
        let sql = format!("{SELECT} WHERE id LIKE $1 ESCAPE '\\'");
        let rows = sqlx::query(&sql)
            .bind(format!("{}%", escape_like(id_or_prefix)))
            .fetch_all(&self.pool)
            .await
            .map_err(query_err(format!("find baseline `{id_or_prefix}`")))?;
        let mut found: Vec<BaselineRow> = Vec::new();
        for row in &rows {
            let r = baseline_from_row(row)?;
            if r.id == id_or_prefix {
                return Ok(Some(r));
            }
            if r.id.starts_with(id_or_prefix) {
                found.push(r);
            }
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            count => Err(StoreError::Ambiguous {
                prefix: id_or_prefix.to_string(),
                count,
            }),
        }
    }

    /// The baseline in force for `case_id`: the machine's when it has one,
    /// else the platform's; `None` when neither has.
    pub async fn baseline_for_case(
        &self,
        machine: &str,
        platform: &str,
        case_id: &str,
    ) -> Result<Option<Baseline>, StoreError> {
        for (scope, key) in [
            (BaselineScope::Machine, machine),
            (BaselineScope::Platform, platform),
        ] {
            let sql = format!(
                "{SELECT} WHERE scope = $1 AND scope_key = $2 AND case_id = $3 \
                 ORDER BY created DESC, metric"
            );
            let rows = sqlx::query(&sql)
                .bind(scope.as_str())
                .bind(key)
                .bind(case_id)
                .fetch_all(&self.pool)
                .await
                .map_err(query_err(format!("find the baseline of case `{case_id}`")))?;
            let rows = rows
                .iter()
                .map(baseline_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(b) = baseline_of(&in_force(rows)) {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// The cases of `case_ids` with a baseline in force for this machine or
    /// platform, each with it (one query per case).
    pub async fn baselines_for_cases(
        &self,
        machine: &str,
        platform: &str,
        case_ids: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, Baseline>, StoreError> {
        let mut out = BTreeMap::new();
        for id in case_ids {
            if let Some(b) = self.baseline_for_case(machine, platform, id).await? {
                out.insert(id.clone(), b);
            }
        }
        Ok(out)
    }
}
