//! Column helpers and the store's error type.

use sqlx::any::AnyRow;
use sqlx::Row;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What can go wrong in the portal store.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open portal store {url_redacted}: {detail}")]
    Open {
        url_redacted: String,
        detail: String,
    },
    #[error("cannot migrate portal store {url_redacted}: {detail}")]
    Migrate {
        url_redacted: String,
        detail: String,
    },
    #[error("portal store query failed: {what}")]
    Query {
        what: String,
        #[source]
        source: sqlx::Error,
    },
    /// A unique column already holds this value.
    #[error("{what}: already exists")]
    Duplicate { what: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The row changed, or its state forbids the change.
    #[error("cannot {what}: {detail}")]
    Conflict { what: String, detail: String },
    #[error("invalid {what}: {detail}")]
    Invalid { what: String, detail: String },
    #[error("corrupt portal store row: {what}: {detail}")]
    Corrupt { what: String, detail: String },
}

/// A query error, or [`DbError::Duplicate`] for a unique violation.
pub(crate) fn db_err(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> DbError {
    let what = what.into();
    move |source| {
        let unique = match &source {
            sqlx::Error::Database(d) => {
                d.is_unique_violation() || d.message().contains("UNIQUE constraint failed")
            }
            _ => false,
        };
        if unique {
            DbError::Duplicate { what }
        } else {
            DbError::Query { what, source }
        }
    }
}

/// A timestamp as stored: fixed-width RFC 3339 UTC with microseconds, so
/// that text order is time order.
pub fn ts(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

pub(crate) fn parse_ts(what: &str, s: &str) -> Result<OffsetDateTime, DbError> {
    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| DbError::Corrupt {
        what: what.to_string(),
        detail: format!("timestamp {s:?}: {e}"),
    })
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, what: &str, col: &str) -> Result<T, DbError>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col).map_err(|e| DbError::Corrupt {
        what: what.to_string(),
        detail: format!("column {col}: {e}"),
    })
}

pub(crate) fn get_ts(row: &AnyRow, what: &str, col: &str) -> Result<OffsetDateTime, DbError> {
    parse_ts(what, &get::<String>(row, what, col)?)
}

pub(crate) fn get_opt_ts(
    row: &AnyRow,
    what: &str,
    col: &str,
) -> Result<Option<OffsetDateTime>, DbError> {
    get::<Option<String>>(row, what, col)?
        .map(|s| parse_ts(what, &s))
        .transpose()
}

pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_fixed_width_and_read_back() {
        let t = time::macros::datetime!(2026-01-02 03:04:05.000007 UTC);
        assert_eq!(ts(t), "2026-01-02T03:04:05.000007Z");
        assert_eq!(parse_ts("t", &ts(t)).unwrap(), t);
    }
}
