//! The transparency log's rows: one [`LogEntry`] per recorded state change,
//! appended in the change's own transaction (see
//! [`PortalStore::record_change`](super::PortalStore)), and read back in
//! pages and as leaf hashes for the Merkle tree.

use certlab_reports::tlog::{parse_hash, Hash, LogEntry, GENESIS_PREV};
use sqlx::{Any, Transaction};

use super::rows::{db_err, get, ts, DbError};
use super::submissions::NewChange;
use super::PortalStore;

/// One stored entry: its index and its canonical JSON, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub index: u64,
    pub json: String,
}

fn index_of(seq: i64, what: &str) -> Result<u64, DbError> {
    u64::try_from(seq).map_err(|_| DbError::Corrupt {
        what: what.to_string(),
        detail: format!("seq {seq}"),
    })
}

/// Appends the log entry of `change` (already numbered `change_seq` in
/// `portal_changes`) in the change's transaction: `prev` is the leaf hash of
/// the row before, `actor` the user's e-mail, `data` the states, the action,
/// the comment and the digest of the submission's bundle.
pub(crate) async fn append(
    tx: &mut Transaction<'static, Any>,
    change: &NewChange<'_>,
    change_seq: i64,
) -> Result<LogEntry, DbError> {
    let what = format!(
        "log {} of {} {}",
        change.action, change.subject, change.subject_id
    );
    let last = sqlx::query("SELECT seq, leaf_hash FROM portal_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err(&what))?;
    let (index, prev) = match last {
        Some(row) => {
            let seq: i64 = get(&row, &what, "seq")?;
            let hash: String = get(&row, &what, "leaf_hash")?;
            (index_of(seq, &what)? + 1, hash)
        }
        None => (0, GENESIS_PREV.to_string()),
    };
    let actor = sqlx::query("SELECT email FROM portal_users WHERE id = $1")
        .bind(change.actor_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err(&what))?
        .map(|row| get::<String>(&row, &what, "email"))
        .transpose()?
        .unwrap_or_else(|| "portal".to_string());
    // the digest of what the change is about: the submission's bundle, or
    // the uploaded allowlist
    let (digest_key, bundle_sql) = match change.subject {
        "certification" => (
            "bundle_sha256",
            "SELECT s.bundle_sha256 AS sha FROM portal_certifications c \
             JOIN portal_submissions s ON s.id = c.submission_id WHERE c.id = $1",
        ),
        "kabi" => (
            "allowlist_sha256",
            "SELECT sha256 AS sha FROM portal_kabi WHERE id = $1",
        ),
        _ => (
            "bundle_sha256",
            "SELECT bundle_sha256 AS sha FROM portal_submissions WHERE id = $1",
        ),
    };
    let bundle = sqlx::query(bundle_sql)
        .bind(change.subject_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err(&what))?
        .map(|row| get::<String>(&row, &what, "sha"))
        .transpose()?;
    let mut data = serde_json::json!({
        "change": change_seq,
        "action": change.action,
        "from": change.from_state,
        "to": change.to_state,
        "comment": change.comment,
    });
    if let (Some(sha), Some(map)) = (bundle, data.as_object_mut()) {
        map.insert(digest_key.into(), serde_json::Value::String(sha));
    }
    let entry = LogEntry {
        index,
        time: ts(change.at),
        subject: format!("{}/{}", change.subject, change.subject_id),
        event: change.to_state.to_string(),
        actor,
        data,
        prev,
    };
    let json = String::from_utf8(entry.canonical_bytes()).map_err(|e| DbError::Invalid {
        what: what.clone(),
        detail: e.to_string(),
    })?;
    let seq = i64::try_from(index).map_err(|_| DbError::Invalid {
        what: what.clone(),
        detail: format!("index {index}"),
    })?;
    sqlx::query("INSERT INTO portal_log (seq, entry, leaf_hash) VALUES ($1, $2, $3)")
        .bind(seq)
        .bind(json.as_str())
        .bind(hex::encode(entry.leaf_hash()))
        .execute(&mut **tx)
        .await
        .map_err(db_err(&what))?;
    Ok(entry)
}

impl PortalStore {
    /// How many entries the log has: its last index + 1 (indices are
    /// contiguous from 0, which `log_leaves` checks), read from the primary
    /// key's index rather than counted.
    pub async fn log_size(&self) -> Result<u64, DbError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq) + 1, 0) AS n FROM portal_log")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("count log entries"))?;
        let n: i64 = get(&row, "log size", "n")?;
        index_of(n, "log size")
    }

    /// Entries `from` (inclusive) to `to` (exclusive), in order.
    pub async fn log_entries(&self, from: u64, to: u64) -> Result<Vec<StoredEntry>, DbError> {
        let what = format!("log entries {from}..{to}");
        let (from, to) = bounds(from, to, &what)?;
        let rows = sqlx::query(
            "SELECT seq, entry FROM portal_log WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err(&what))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = get(row, &what, "seq")?;
                Ok(StoredEntry {
                    index: index_of(seq, &what)?,
                    json: get(row, &what, "entry")?,
                })
            })
            .collect()
    }

    /// The leaf hashes of entries `from` (inclusive) to `to` (exclusive), in order.
    pub async fn log_leaves(&self, from: u64, to: u64) -> Result<Vec<Hash>, DbError> {
        let what = format!("log leaves {from}..{to}");
        let (lo, hi) = bounds(from, to, &what)?;
        let rows = sqlx::query(
            "SELECT seq, leaf_hash FROM portal_log WHERE seq >= $1 AND seq < $2 ORDER BY seq",
        )
        .bind(lo)
        .bind(hi)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err(&what))?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            let seq: i64 = get(row, &what, "seq")?;
            if index_of(seq, &what)? != from + i as u64 {
                return Err(DbError::Corrupt {
                    what,
                    detail: format!("entry {} is missing", from + i as u64),
                });
            }
            let hex: String = get(row, &what, "leaf_hash")?;
            leaves.push(parse_hash(&hex).ok_or_else(|| DbError::Corrupt {
                what: format!("log entry {seq}"),
                detail: format!("leaf hash {hex:?}"),
            })?);
        }
        Ok(leaves)
    }
}

fn bounds(from: u64, to: u64, what: &str) -> Result<(i64, i64), DbError> {
    let conv = |n: u64| {
        i64::try_from(n).map_err(|_| DbError::Invalid {
            what: what.to_string(),
            detail: format!("{n} is out of range"),
        })
    };
    Ok((conv(from)?, conv(to)?))
}
