//! The BMC call log: every attempt of every BMC call ([`CallRecord`]), and
//! what it says about a BMC's health.

use std::time::Duration;

use certlab_lab::bmc::{CallOutcome, CallRecord, ErrorClass};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::{corrupt, get, parse_ts, query_err, to_i64, ts};
use super::{Store, StoreError};

/// What a BMC's recorded calls since some instant say about it.
#[derive(Debug, Clone, PartialEq)]
pub struct BmcCallStats {
    pub machine: String,
    /// The start of the window.
    pub since: OffsetDateTime,
    /// Attempts recorded in the window (each retry counts).
    pub calls: u64,
    /// Attempts that did not succeed: retryable, fatal, or refused by the
    /// circuit breaker.
    pub failures: u64,
    pub retryable_failures: u64,
    pub fatal_failures: u64,
    /// Refused locally while the circuit breaker was open (in `failures`,
    /// neither retryable nor fatal, not in the latencies).
    pub circuit_open: u64,
    /// Median latency of the attempts that reached the BMC (nearest rank).
    pub p50_ms: Option<u64>,
    /// 95th percentile latency of the attempts that reached the BMC.
    pub p95_ms: Option<u64>,
    /// How many of the newest calls in the window failed, in a row.
    pub failure_streak: u64,
    /// When the newest call in the window started.
    pub last_call: Option<OffsetDateTime>,
    /// The newest failure in the window.
    pub last_error: Option<BmcCallError>,
}

impl BmcCallStats {
    /// `failures / calls`; `None` without calls.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.failures as f64 / self.calls as f64)
    }
}

/// A failed BMC call, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcCallError {
    pub at: OffsetDateTime,
    pub operation: String,
    /// `retryable`, `fatal` or `circuit_open`.
    pub outcome: String,
    /// `BmcError::kind` ("auth", "timeout", …).
    pub kind: String,
    pub message: String,
}

/// `outcome` column values.
fn outcome_str(o: &CallOutcome) -> &'static str {
    match o {
        CallOutcome::Ok => "ok",
        CallOutcome::Failed {
            class: ErrorClass::Retryable,
            ..
        } => "retryable",
        CallOutcome::Failed {
            class: ErrorClass::Fatal,
            ..
        } => "fatal",
        CallOutcome::CircuitOpen => "circuit_open",
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len() as u64;
    let rank = (p * n).div_ceil(100).clamp(1, n);
    usize::try_from(rank - 1)
        .ok()
        .and_then(|i| sorted.get(i).copied())
}

fn call_from_row(row: &AnyRow, machine: &str) -> Result<CallRecord, StoreError> {
    let what = format!("BMC call of `{machine}`");
    let operation: String = get(row, &what, "operation")?;
    let attempt: i64 = get(row, &what, "attempt")?;
    let started: String = get(row, &what, "started")?;
    let latency_ms: i64 = get(row, &what, "latency_ms")?;
    let outcome: String = get(row, &what, "outcome")?;
    let error_kind: Option<String> = get(row, &what, "error_kind")?;
    let error: Option<String> = get(row, &what, "error")?;
    let failed = |class| CallOutcome::Failed {
        class,
        kind: error_kind.clone().unwrap_or_default(),
        message: error.clone().unwrap_or_default(),
    };
    let outcome = match outcome.as_str() {
        "ok" => CallOutcome::Ok,
        "retryable" => failed(ErrorClass::Retryable),
        "fatal" => failed(ErrorClass::Fatal),
        "circuit_open" => CallOutcome::CircuitOpen,
        other => return Err(corrupt(&what, format!("unknown outcome `{other}`"))),
    };
    Ok(CallRecord {
        bmc: machine.to_string(),
        attempt: u32::try_from(attempt).map_err(|e| corrupt(&format!("{what} attempt"), e))?,
        started: parse_ts(&what, &started)?,
        latency: Duration::from_millis(
            u64::try_from(latency_ms).map_err(|e| corrupt(&format!("{what} latency_ms"), e))?,
        ),
        operation,
        outcome,
        note: get(row, &what, "note")?,
    })
}

impl Store {
    /// Appends BMC call records (each record's `bmc` is the machine's name),
    /// in one transaction. A record already stored (same machine, start,
    /// operation and attempt) is skipped. Latencies are kept in whole
    /// milliseconds. Returns how many were new.
    pub async fn record_bmc_calls(&self, records: &[CallRecord]) -> Result<u64, StoreError> {
        let what = format!("record {} BMC calls", records.len());
        if records.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await.map_err(query_err(&what))?;
        let mut added = 0;
        for r in records {
            let latency_ms = u64::try_from(r.latency.as_millis()).unwrap_or(u64::MAX);
            let (kind, message) = match &r.outcome {
                CallOutcome::Ok => (None, None),
                CallOutcome::Failed { kind, message, .. } => {
                    (Some(kind.as_str()), Some(message.as_str()))
                }
                CallOutcome::CircuitOpen => (Some("circuit_open"), None),
            };
            let done = sqlx::query(
                "INSERT INTO bmc_calls (machine, operation, attempt, started, latency_ms, \
                 outcome, error_kind, error, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (machine, started, operation, attempt) DO NOTHING",
            )
            .bind(r.bmc.as_str())
            .bind(r.operation.as_str())
            .bind(i64::from(r.attempt))
            .bind(ts(r.started)?)
            .bind(to_i64("BMC call latency_ms", latency_ms)?)
            .bind(outcome_str(&r.outcome))
            .bind(kind)
            .bind(message)
            .bind(r.note.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(query_err(&what))?;
            added += done.rows_affected();
        }
        tx.commit().await.map_err(query_err(&what))?;
        Ok(added)
    }

    /// The BMC calls of `machine` that started at or after `since`, oldest
    /// first (latencies in whole milliseconds).
    pub async fn bmc_calls(
        &self,
        machine: &str,
        since: OffsetDateTime,
    ) -> Result<Vec<CallRecord>, StoreError> {
        let what = format!("list the BMC calls of `{machine}`");
        let rows = sqlx::query(
            "SELECT operation, attempt, started, latency_ms, outcome, error_kind, error, note \
             FROM bmc_calls WHERE machine = $1 AND started >= $2 \
             ORDER BY started, operation, attempt",
        )
        .bind(machine)
        .bind(ts(since)?)
        .fetch_all(&self.pool)
        .await
        .map_err(query_err(&what))?;
        rows.iter().map(|r| call_from_row(r, machine)).collect()
    }

    /// What the calls of `machine` since `since` say about its BMC.
    pub async fn bmc_call_stats(
        &self,
        machine: &str,
        since: OffsetDateTime,
    ) -> Result<BmcCallStats, StoreError> {
        let calls = self.bmc_calls(machine, since).await?;
        let mut stats = BmcCallStats {
            machine: machine.to_string(),
            since,
            calls: calls.len() as u64,
            failures: 0,
            retryable_failures: 0,
            fatal_failures: 0,
            circuit_open: 0,
            p50_ms: None,
            p95_ms: None,
            failure_streak: 0,
            last_call: calls.last().map(|c| c.started),
            last_error: None,
        };
        let mut latencies = Vec::with_capacity(calls.len());
        for c in &calls {
            match &c.outcome {
                CallOutcome::Ok => {}
                CallOutcome::Failed { class, .. } => match class {
                    ErrorClass::Retryable => stats.retryable_failures += 1,
                    ErrorClass::Fatal => stats.fatal_failures += 1,
                },
                CallOutcome::CircuitOpen => stats.circuit_open += 1,
            }
            if c.outcome != CallOutcome::CircuitOpen {
                latencies.push(u64::try_from(c.latency.as_millis()).unwrap_or(u64::MAX));
            }
        }
        stats.failures = stats.retryable_failures + stats.fatal_failures + stats.circuit_open;
        stats.failure_streak = calls
            .iter()
            .rev()
            .take_while(|c| c.outcome != CallOutcome::Ok)
            .count() as u64;
        stats.last_error = calls.iter().rev().find_map(|c| {
            let (kind, message) = match &c.outcome {
                CallOutcome::Ok => return None,
                CallOutcome::Failed { kind, message, .. } => (kind.clone(), message.clone()),
                CallOutcome::CircuitOpen => ("circuit_open".to_string(), String::new()),
            };
            Some(BmcCallError {
                at: c.started,
                operation: c.operation.clone(),
                outcome: outcome_str(&c.outcome).to_string(),
                kind,
                message,
            })
        });
        latencies.sort_unstable();
        stats.p50_ms = percentile(&latencies, 50);
        stats.p95_ms = percentile(&latencies, 95);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 50), Some(7));
        assert_eq!(percentile(&[7], 95), Some(7));
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 95), Some(95));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 95), Some(4));
    }
}
