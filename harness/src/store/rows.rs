//! The store's plumbing: Rust values to and from the portable column types (TEXT,
//! BIGINT, TEXT timestamps, TEXT JSON), SQL fragments, and sqlx errors to [`StoreError`].

use certlab_reports::{CaseResult, Outcome, Verdict};
use sqlx::any::{Any, AnyRow};
use sqlx::Row;
use time::format_description::well_known::Rfc3339;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

use super::{RunRow, RunState, StoreError};

/// Timestamps are stored with all nine subsecond digits, so text order is time order.
const TS_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z");

pub(super) fn run_from_row(row: &AnyRow) -> Result<RunRow, StoreError> {
    let id: String = get(row, "run", "id")?;
    let what = format!("run `{id}`");
    let count = |col: &str| -> Result<u32, StoreError> {
        let n: i64 = get(row, &what, col)?;
        u32::try_from(n).map_err(|e| corrupt(&format!("{what} {col}"), e))
    };
    let outcome: Option<String> = get(row, &what, "outcome")?;
    let finished: Option<String> = get(row, &what, "finished")?;
    Ok(RunRow {
        plan_id: get(row, &what, "plan_id")?,
        plan_version: get(row, &what, "plan_version")?,
        plan_digest: get(row, &what, "plan_digest")?,
        target: get(row, &what, "target")?,
        hostname: get(row, &what, "hostname")?,
        kernel: get(row, &what, "kernel")?,
        state: parse_state(&what, &get::<String>(row, &what, "state")?)?,
        outcome: outcome.map(|o| parse_outcome(&what, &o)).transpose()?,
        pass: count("n_pass")?,
        fail: count("n_fail")?,
        warning: count("n_warning")?,
        skip: count("n_skip")?,
        error: count("n_error")?,
        crash: count("n_crash")?,
        started: parse_ts(&what, &get::<String>(row, &what, "started")?)?,
        finished: finished.map(|f| parse_ts(&what, &f)).transpose()?,
        interrupt_reason: get(row, &what, "interrupt_reason")?,
        out_dir: get(row, &what, "out_dir")?,
        id,
    })
}

pub(super) fn get<'r, T: sqlx::Decode<'r, Any> + sqlx::Type<Any>>(
    row: &'r AnyRow,
    what: &str,
    col: &str,
) -> Result<T, StoreError> {
    row.try_get(col)
        .map_err(|e| corrupt(&format!("{what} column {col}"), e))
}

pub(super) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

pub(super) fn invalid(what: impl std::fmt::Display, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

pub(super) fn parse_state(what: &str, s: &str) -> Result<RunState, StoreError> {
    [RunState::Running, RunState::Finished, RunState::Interrupted]
        .into_iter()
        .find(|state| state.as_str() == s)
        .ok_or_else(|| corrupt(what, format!("unknown state `{s}`")))
}

pub(super) fn parse_outcome(what: &str, s: &str) -> Result<Outcome, StoreError> {
    [Outcome::Pass, Outcome::Fail, Outcome::Error]
        .into_iter()
        .find(|o| o.as_str() == s)
        .ok_or_else(|| corrupt(what, format!("unknown outcome `{s}`")))
}

pub(super) fn ts(t: OffsetDateTime) -> Result<String, StoreError> {
    let utc = t.checked_to_offset(UtcOffset::UTC);
    let utc = utc.ok_or_else(|| invalid(format!("timestamp {t}"), "out of range in UTC"))?;
    utc.format(TS_FORMAT)
        .map_err(|e| invalid(format!("timestamp {t}"), e))
}

pub(super) fn parse_ts(what: &str, s: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| corrupt(what, format!("timestamp `{s}`: {e}")))
}

pub(super) fn to_i64(what: &str, n: u64) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|e| invalid(format!("{what} {n}"), e))
}

pub(super) fn to_json<T: serde::Serialize + ?Sized>(
    what: &str,
    value: &T,
) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| invalid(what, e))
}

/// A TEXT column holding JSON.
pub(super) fn json_col<T: serde::de::DeserializeOwned>(
    row: &AnyRow,
    what: &str,
    col: &str,
) -> Result<T, StoreError> {
    from_json(what, &get::<String>(row, what, col)?)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| corrupt(what, e))
}

/// JSON has no NaN or infinity: such a metric would be stored as `null` and never read back.
pub(super) fn check_metrics(cases: &[CaseResult]) -> Result<(), StoreError> {
    for case in cases {
        if let Some(m) = case.metrics.iter().find(|m| !m.value.is_finite()) {
            let what = format!("metric `{}` of case `{}`", m.name, case.id);
            return Err(invalid(what, format!("{} is not a finite number", m.value)));
        }
    }
    Ok(())
}

pub(super) fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The counter a recorded case bumps: a failed non-blocker counts as a warning.
pub(super) fn count_sql(case: &CaseResult) -> &'static str {
    macro_rules! bump {
        ($col:literal) => {
            concat!(
                "UPDATE runs SET ",
                $col,
                " = ",
                $col,
                " + 1 WHERE id = $1 AND state = 'running'"
            )
        };
    }
    match case.verdict {
        Verdict::Pass => bump!("n_pass"),
        Verdict::Fail if case.is_warning() => bump!("n_warning"),
        Verdict::Fail => bump!("n_fail"),
        Verdict::Skip => bump!("n_skip"),
        Verdict::Error => bump!("n_error"),
        Verdict::Crash => bump!("n_crash"),
    }
}

pub(super) fn query_err(what: impl std::fmt::Display) -> impl Fn(sqlx::Error) -> StoreError {
    move |source| StoreError::Query {
        what: what.to_string(),
        source,
    }
}

/// Maps a failed write: a duplicate key and a missing run get their own errors.
pub(super) fn db_err(run_id: &str, what: String, source: sqlx::Error) -> StoreError {
    match &source {
        sqlx::Error::Database(e) if e.is_unique_violation() => {
            StoreError::Duplicate { what, source }
        }
        sqlx::Error::Database(e) if e.is_foreign_key_violation() => StoreError::NotFound {
            run_id: run_id.into(),
        },
        _ => StoreError::Query { what, source },
    }
}
