//! KABI allowlists per OS release and architecture (`portal_kabi`): each
//! upload replaces the release's list and is a recorded change, so a
//! transparency log entry, in the same transaction.

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::accounts::User;
use super::rows::{db_err, get, get_ts, ts, DbError};
use super::submissions::NewChange;
use super::PortalStore;

/// An allowlist to store.
#[derive(Debug, Clone)]
pub struct NewKabi<'a> {
    pub release: &'a str,
    pub arch: &'a str,
    /// The format it was uploaded in (`rhel`, `symvers`, `json`, …).
    pub source_format: &'a str,
    /// sha256 of the uploaded bytes.
    pub sha256: &'a str,
    pub symbols: u64,
    /// certlab's format, JSON.
    pub allowlist_json: &'a str,
    /// Module.symvers text to check drivers against, if this upload gives
    /// one (`None` keeps the one stored before).
    pub symvers: Option<&'a str>,
}

/// A stored allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KabiList {
    pub release: String,
    pub arch: String,
    pub source_format: String,
    pub sha256: String,
    pub symbols: u64,
    pub allowlist_json: String,
    pub symvers: Option<String>,
    pub symvers_sha256: Option<String>,
    pub updated: OffsetDateTime,
    pub updated_by: String,
}

fn kabi_from_row(row: &AnyRow) -> Result<KabiList, DbError> {
    let id: String = get(row, "kabi allowlist", "id")?;
    let what = format!("kabi allowlist {id}");
    let symbols: i64 = get(row, &what, "symbols")?;
    Ok(KabiList {
        release: get(row, &what, "release")?,
        arch: get(row, &what, "arch")?,
        source_format: get(row, &what, "source_format")?,
        sha256: get(row, &what, "sha256")?,
        symbols: u64::try_from(symbols).unwrap_or(0),
        allowlist_json: get(row, &what, "allowlist_json")?,
        symvers: get(row, &what, "symvers")?,
        symvers_sha256: get(row, &what, "symvers_sha256")?,
        updated: get_ts(row, &what, "updated")?,
        updated_by: get(row, &what, "updated_by")?,
    })
}

/// The id of a release's list: `<release>/<arch>`.
pub fn kabi_id(release: &str, arch: &str) -> String {
    format!("{release}/{arch}")
}

impl PortalStore {
    /// Stores (or replaces) the allowlist of `release`/`arch`, recording the
    /// change; `true` when it is the release's first.
    pub async fn put_kabi(
        &self,
        new: &NewKabi<'_>,
        actor: &User,
        now: OffsetDateTime,
    ) -> Result<bool, DbError> {
        let id = kabi_id(new.release, new.arch);
        let what = format!("store kabi allowlist {id}");
        let symbols = i64::try_from(new.symbols).map_err(|_| DbError::Invalid {
            what: what.clone(),
            detail: format!("{} symbols", new.symbols),
        })?;
        let symvers_sha256 = new
            .symvers
            .map(|s| certlab_reports::sha256_hex(s.as_bytes()));
        let mut tx = self.begin(&what).await?;
        let before = sqlx::query("SELECT sha256 FROM portal_kabi WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err(&what))?;
        let created = before.is_none();
        if created {
            sqlx::query(
                "INSERT INTO portal_kabi (id, release, arch, source_format, sha256, symbols, \
                 allowlist_json, symvers, symvers_sha256, updated, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(id.as_str())
            .bind(new.release)
            .bind(new.arch)
            .bind(new.source_format)
            .bind(new.sha256)
            .bind(symbols)
            .bind(new.allowlist_json)
            .bind(new.symvers)
            .bind(symvers_sha256.as_deref())
            .bind(ts(now))
            .bind(actor.email.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err(&what))?;
        } else {
            sqlx::query(
                "UPDATE portal_kabi SET source_format = $2, sha256 = $3, symbols = $4, \
                 allowlist_json = $5, symvers = COALESCE($6, symvers), \
                 symvers_sha256 = COALESCE($7, symvers_sha256), updated = $8, \
                 updated_by = $9 WHERE id = $1",
            )
            .bind(id.as_str())
            .bind(new.source_format)
            .bind(new.sha256)
            .bind(symbols)
            .bind(new.allowlist_json)
            .bind(new.symvers)
            .bind(symvers_sha256.as_deref())
            .bind(ts(now))
            .bind(actor.email.as_str())
            .execute(&mut *tx)
            .await
            .map_err(db_err(&what))?;
        }
        self.record_change(
            &mut tx,
            &NewChange {
                subject: "kabi",
                subject_id: &id,
                actor_id: &actor.id,
                action: "upload",
                from_state: if created { None } else { Some("published") },
                to_state: "published",
                comment: "",
                at: now,
            },
        )
        .await?;
        tx.commit().await.map_err(db_err(&what))?;
        Ok(created)
    }

    pub async fn kabi(&self, release: &str, arch: &str) -> Result<Option<KabiList>, DbError> {
        let id = kabi_id(release, arch);
        let row = sqlx::query("SELECT * FROM portal_kabi WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err(format!("find kabi allowlist {id}")))?;
        row.as_ref().map(kabi_from_row).transpose()
    }

    /// Every release's list, without their contents: (release, arch,
    /// symbols, updated), sorted.
    pub async fn kabi_releases(
        &self,
    ) -> Result<Vec<(String, String, u64, OffsetDateTime)>, DbError> {
        let rows = sqlx::query(
            "SELECT release, arch, symbols, updated FROM portal_kabi ORDER BY release, arch",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("list kabi allowlists"))?;
        rows.iter()
            .map(|row| {
                let n: i64 = get(row, "kabi allowlist", "symbols")?;
                Ok((
                    get(row, "kabi allowlist", "release")?,
                    get(row, "kabi allowlist", "arch")?,
                    u64::try_from(n).unwrap_or(0),
                    get_ts(row, "kabi allowlist", "updated")?,
                ))
            })
            .collect()
    }
}

impl PortalStore {
    /// Stores the Module.symvers that drivers are checked against for
    /// `release`/`arch` (whose allowlist must exist), recording the change.
    pub async fn put_kabi_symvers(
        &self,
        release: &str,
        arch: &str,
        symvers: &str,
        actor: &User,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        let id = kabi_id(release, arch);
        let what = format!("store Module.symvers of {id}");
        let sha = certlab_reports::sha256_hex(symvers.as_bytes());
        let mut tx = self.begin(&what).await?;
        let done = sqlx::query(
            "UPDATE portal_kabi SET symvers = $2, symvers_sha256 = $3, updated = $4, \
             updated_by = $5 WHERE id = $1",
        )
        .bind(id.as_str())
        .bind(symvers)
        .bind(sha.as_str())
        .bind(ts(now))
        .bind(actor.email.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err(&what))?;
        if done.rows_affected() != 1 {
            return Err(DbError::NotFound {
                what: format!("kabi allowlist {id}"),
            });
        }
        self.record_change(
            &mut tx,
            &NewChange {
                subject: "kabi",
                subject_id: &id,
                actor_id: &actor.id,
                action: "upload_symvers",
                from_state: Some("published"),
                to_state: "published",
                comment: "",
                at: now,
            },
        )
        .await?;
        tx.commit().await.map_err(db_err(&what))
    }
}
