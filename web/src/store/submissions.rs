//! Submissions and every state change of a submission or a certification.
//!
//! All state changes go through [`PortalStore::record_change`], inside the
//! transaction that makes them: it numbers them in one sequence
//! (`portal_changes.seq`), and appends the change to the transparency log
//! (`portal_log`, see `log.rs`) in the same transaction.

use certlab_harness::Backend;
use certlab_reports::RunRecord;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::accounts::User;
use super::certifications::{bump_list_version, insert_certification};
use super::rows::{db_err, get, get_ts, new_id, ts, DbError};
use super::PortalStore;
use crate::review::{self, CertificationEffect, ReviewAction, SubmissionState};

/// A verified bundle to record.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub org_id: String,
    pub submitter_id: String,
    pub bundle_sha256: String,
    pub bundle_size: u64,
    /// The key that signed the bundle.
    pub key_id: String,
    /// sha256 of the bundle's `report.html`.
    pub report_sha256: String,
    /// The bundle's `results.json`, validated.
    pub results_json: String,
}

/// A submission as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub submitter_email: String,
    pub bundle_sha256: String,
    pub bundle_size: u64,
    pub key_id: String,
    pub report_sha256: String,
    pub state: SubmissionState,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    /// The certification its approval published.
    pub certification_id: Option<String>,
}

/// One state change, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    /// `submission` or `certification`.
    pub subject: String,
    pub subject_id: String,
    pub actor_email: String,
    pub action: String,
    pub from_state: Option<String>,
    pub to_state: String,
    pub comment: String,
    pub at: OffsetDateTime,
}

/// A change to record (see [`PortalStore::record_change`]).
pub(crate) struct NewChange<'a> {
    pub subject: &'a str,
    pub subject_id: &'a str,
    pub actor_id: &'a str,
    pub action: &'a str,
    pub from_state: Option<&'a str>,
    pub to_state: &'a str,
    pub comment: &'a str,
    pub at: OffsetDateTime,
}

const SELECT_SUBMISSION: &str =
    "SELECT s.id, s.org_id, o.name AS org_name, u.email AS submitter_email, \
     s.bundle_sha256, s.bundle_size, s.key_id, s.report_sha256, s.state, s.created, s.updated, \
     c.id AS certification_id FROM portal_submissions s \
     JOIN portal_orgs o ON o.id = s.org_id JOIN portal_users u ON u.id = s.submitter_id \
     LEFT JOIN portal_certifications c ON c.submission_id = s.id ";

fn submission_from_row(row: &AnyRow) -> Result<Submission, DbError> {
    let id: String = get(row, "submission", "id")?;
    let what = format!("submission {id}");
    let state: String = get(row, &what, "state")?;
    let size: i64 = get(row, &what, "bundle_size")?;
    Ok(Submission {
        org_id: get(row, &what, "org_id")?,
        org_name: get(row, &what, "org_name")?,
        submitter_email: get(row, &what, "submitter_email")?,
        bundle_sha256: get(row, &what, "bundle_sha256")?,
        bundle_size: u64::try_from(size).map_err(|_| DbError::Corrupt {
            what: what.clone(),
            detail: format!("bundle_size {size}"),
        })?,
        key_id: get(row, &what, "key_id")?,
        report_sha256: get(row, &what, "report_sha256")?,
        state: SubmissionState::parse(&state).ok_or_else(|| DbError::Corrupt {
            what: what.clone(),
            detail: format!("state {state:?}"),
        })?,
        created: get_ts(row, &what, "created")?,
        updated: get_ts(row, &what, "updated")?,
        certification_id: get(row, &what, "certification_id")?,
        id,
    })
}

impl PortalStore {
    /// Records a verified bundle as a new submission in state `submitted`,
    /// or returns the submission of the same bundle (same sha256) when there
    /// is one: `(submission, created)`.
    pub async fn create_submission(
        &self,
        new: &NewSubmission,
        now: OffsetDateTime,
    ) -> Result<(Submission, bool), DbError> {
        if let Some(existing) = self.submission_by_bundle(&new.bundle_sha256).await? {
            return Ok((existing, false));
        }
        let id = new_id();
        let what = format!("submission of bundle {}", new.bundle_sha256);
        let size = i64::try_from(new.bundle_size).map_err(|_| DbError::Invalid {
            what: what.clone(),
            detail: format!("size {}", new.bundle_size),
        })?;
        let mut tx = self.begin(&what).await?;
        let inserted = sqlx::query(
            "INSERT INTO portal_submissions (id, org_id, submitter_id, bundle_sha256, bundle_size, \
             key_id, report_sha256, results_json, state, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
        )
        .bind(id.as_str())
        .bind(new.org_id.as_str())
        .bind(new.submitter_id.as_str())
        .bind(new.bundle_sha256.as_str())
        .bind(size)
        .bind(new.key_id.as_str())
        .bind(new.report_sha256.as_str())
        .bind(new.results_json.as_str())
        .bind(SubmissionState::Submitted.as_str())
        .bind(ts(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err(&what));
        match inserted {
            Ok(_) => {}
            Err(DbError::Duplicate { .. }) => {
                // the same bundle, submitted at the same moment by another request
                drop(tx);
                let existing = self.submission_by_bundle(&new.bundle_sha256).await?;
                return existing
                    .map(|s| (s, false))
                    .ok_or_else(|| DbError::Conflict {
                        what,
                        detail: "stored and gone again".into(),
                    });
            }
            Err(e) => return Err(e),
        }
        self.record_change(
            &mut tx,
            &NewChange {
                subject: "submission",
                subject_id: &id,
                actor_id: &new.submitter_id,
                action: "submit",
                from_state: None,
                to_state: SubmissionState::Submitted.as_str(),
                comment: "",
                at: now,
            },
        )
        .await?;
        tx.commit().await.map_err(db_err(&what))?;
        let created = self.submission(&id).await?.ok_or(DbError::NotFound {
            what: format!("submission {id}"),
        })?;
        Ok((created, true))
    }

    pub async fn submission(&self, id: &str) -> Result<Option<Submission>, DbError> {
        let sql = format!("{SELECT_SUBMISSION} WHERE s.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err(format!("find submission {id}")))?;
        row.as_ref().map(submission_from_row).transpose()
    }

    pub async fn submission_by_bundle(
        &self,
        bundle_sha256: &str,
    ) -> Result<Option<Submission>, DbError> {
        let sql = format!("{SELECT_SUBMISSION} WHERE s.bundle_sha256 = $1");
        let row = sqlx::query(&sql)
            .bind(bundle_sha256)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("find submission by bundle"))?;
        row.as_ref().map(submission_from_row).transpose()
    }

    /// The `results.json` of a submission, as submitted.
    pub async fn submission_record(&self, id: &str) -> Result<RunRecord, DbError> {
        let what = format!("results of submission {id}");
        let row = sqlx::query("SELECT results_json FROM portal_submissions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err(&what))?
            .ok_or_else(|| DbError::NotFound { what: what.clone() })?;
        let json: String = get(&row, &what, "results_json")?;
        serde_json::from_str(&json).map_err(|e| DbError::Corrupt {
            what,
            detail: e.to_string(),
        })
    }

    /// One page of submissions, newest first — of one organisation, or all
    /// (`None`) — and how many there are in all.
    pub async fn list_submissions(
        &self,
        org_id: Option<&str>,
        page: u32,
        per_page: u32,
    ) -> Result<(Vec<Submission>, u64), DbError> {
        let offset = i64::from(page.max(1) - 1) * i64::from(per_page);
        let (filter, count_sql) = match org_id {
            Some(_) => (
                "WHERE s.org_id = $1",
                "SELECT COUNT(*) AS n FROM portal_submissions WHERE org_id = $1",
            ),
            None => ("", "SELECT COUNT(*) AS n FROM portal_submissions"),
        };
        let sql = format!(
            "{SELECT_SUBMISSION} {filter} ORDER BY s.created DESC, s.id DESC \
             LIMIT {per_page} OFFSET {offset}"
        );
        let mut items = sqlx::query(&sql);
        let mut count = sqlx::query(count_sql);
        if let Some(org) = org_id {
            items = items.bind(org);
            count = count.bind(org);
        }
        let rows = items
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list submissions"))?;
        let row = count
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("count submissions"))?;
        let total: i64 = get(&row, "submission count", "n")?;
        let items = rows
            .iter()
            .map(submission_from_row)
            .collect::<Result<_, _>>()?;
        Ok((items, u64::try_from(total).unwrap_or(0)))
    }

    /// The number of submissions in each state (states without any left out).
    pub async fn submission_counts(&self) -> Result<Vec<(String, u64)>, DbError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM portal_submissions GROUP BY state ORDER BY state",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db_err("count submissions"))?;
        rows.iter()
            .map(|row| {
                let n: i64 = get(row, "submission count", "n")?;
                Ok((
                    get(row, "submission count", "state")?,
                    u64::try_from(n).unwrap_or(0),
                ))
            })
            .collect()
    }

    /// The state changes of a submission and of its certification, in order.
    pub async fn changes(&self, submission_id: &str) -> Result<Vec<Change>, DbError> {
        let rows = sqlx::query(
            "SELECT ch.seq, ch.subject, ch.subject_id, u.email AS actor_email, ch.action, \
             ch.from_state, ch.to_state, ch.comment, ch.at FROM portal_changes ch \
             JOIN portal_users u ON u.id = ch.actor_id \
             WHERE ch.subject_id = $1 OR ch.subject_id IN \
             (SELECT id FROM portal_certifications WHERE submission_id = $1) ORDER BY ch.seq",
        )
        .bind(submission_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err(format!("changes of submission {submission_id}")))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = get(row, "change", "seq")?;
                let what = format!("change {seq}");
                Ok(Change {
                    seq: u64::try_from(seq).unwrap_or(0),
                    subject: get(row, &what, "subject")?,
                    subject_id: get(row, &what, "subject_id")?,
                    actor_email: get(row, &what, "actor_email")?,
                    action: get(row, &what, "action")?,
                    from_state: get(row, &what, "from_state")?,
                    to_state: get(row, &what, "to_state")?,
                    comment: get(row, &what, "comment")?,
                    at: get_ts(row, &what, "at")?,
                })
            })
            .collect()
    }

    /// Applies a reviewer's `action` to a submission, with its comment: the
    /// state change (by [`review::next`]), its record, and the publication
    /// or withdrawal of the certification, in one transaction.
    ///
    /// A refused action is [`DbError::Conflict`] naming why; a submission
    /// changed by someone else meanwhile is a conflict too.
    pub async fn review(
        &self,
        id: &str,
        actor: &User,
        action: ReviewAction,
        comment: &str,
        now: OffsetDateTime,
    ) -> Result<Submission, DbError> {
        let what = format!("{} submission {id}", action.as_str().replace('_', " "));
        let current = self
            .submission(id)
            .await?
            .ok_or_else(|| DbError::NotFound {
                what: format!("submission {id}"),
            })?;
        let step = review::next(current.state, action).map_err(|r| DbError::Conflict {
            what: what.clone(),
            detail: r.to_string(),
        })?;
        let record = match step.certification {
            Some(CertificationEffect::Publish) => Some(self.submission_record(id).await?),
            _ => None,
        };
        let mut tx = self.begin(&what).await?;
        let updated = sqlx::query(
            "UPDATE portal_submissions SET state = $1, updated = $2 WHERE id = $3 AND state = $4",
        )
        .bind(step.to.as_str())
        .bind(ts(now))
        .bind(id)
        .bind(current.state.as_str())
        .execute(&mut *tx)
        .await
        .map_err(db_err(&what))?;
        if updated.rows_affected() != 1 {
            return Err(DbError::Conflict {
                what,
                detail: format!("it is no longer {}", current.state),
            });
        }
        self.record_change(
            &mut tx,
            &NewChange {
                subject: "submission",
                subject_id: id,
                actor_id: &actor.id,
                action: action.as_str(),
                from_state: Some(current.state.as_str()),
                to_state: step.to.as_str(),
                comment,
                at: now,
            },
        )
        .await?;
        match step.certification {
            None => {}
            Some(CertificationEffect::Publish) => {
                let record = record.ok_or_else(|| DbError::NotFound {
                    what: format!("results of submission {id}"),
                })?;
                let cert_id = new_id();
                insert_certification(&mut tx, &cert_id, &current, &record, now).await?;
                self.record_change(
                    &mut tx,
                    &NewChange {
                        subject: "certification",
                        subject_id: &cert_id,
                        actor_id: &actor.id,
                        action: "publish",
                        from_state: None,
                        to_state: "published",
                        comment,
                        at: now,
                    },
                )
                .await?;
            }
            Some(CertificationEffect::Revoke) => {
                let cert_id =
                    current
                        .certification_id
                        .clone()
                        .ok_or_else(|| DbError::Conflict {
                            what: what.clone(),
                            detail: "it has no certification".into(),
                        })?;
                let revoked = sqlx::query(
                    "UPDATE portal_certifications SET state = 'revoked', revoked = $1 \
                     WHERE id = $2 AND state = 'published'",
                )
                .bind(ts(now))
                .bind(cert_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err(&what))?;
                if revoked.rows_affected() != 1 {
                    return Err(DbError::Conflict {
                        what,
                        detail: format!("certification {cert_id} is not published"),
                    });
                }
                sqlx::query(
                    "UPDATE portal_component_list SET state = 'revoked' WHERE certification_id = $1",
                )
                .bind(cert_id.as_str())
                .execute(&mut *tx)
                .await
                .map_err(db_err(&what))?;
                bump_list_version(&mut tx).await?;
                self.record_change(
                    &mut tx,
                    &NewChange {
                        subject: "certification",
                        subject_id: &cert_id,
                        actor_id: &actor.id,
                        action: "revoke",
                        from_state: Some("published"),
                        to_state: "revoked",
                        comment,
                        at: now,
                    },
                )
                .await?;
            }
        }
        tx.commit().await.map_err(db_err(&what))?;
        self.submission(id).await?.ok_or(DbError::NotFound {
            what: format!("submission {id}"),
        })
    }

    /// A transaction for a state change. On PostgreSQL it takes the changes
    /// table's lock at once, so changes are numbered one at a time; on
    /// SQLite the first write of the transaction does the same.
    pub(super) async fn begin(&self, what: &str) -> Result<Transaction<'static, Any>, DbError> {
        let mut tx = self.pool.begin().await.map_err(db_err(what))?;
        if self.backend == Backend::Postgres {
            sqlx::query("LOCK TABLE portal_changes IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(db_err(what))?;
        }
        Ok(tx)
    }

    /// The one place a state change of a submission or a certification is
    /// recorded: the next number of the one sequence of changes, and the
    /// next entry of the transparency log.
    pub(crate) async fn record_change(
        &self,
        tx: &mut Transaction<'static, Any>,
        change: &NewChange<'_>,
    ) -> Result<u64, DbError> {
        let what = format!(
            "record {} of {} {}",
            change.action, change.subject, change.subject_id
        );
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM portal_changes")
            .fetch_one(&mut **tx)
            .await
            .map_err(db_err(&what))?;
        let seq: i64 = get(&row, &what, "next")?;
        sqlx::query(
            "INSERT INTO portal_changes (seq, subject, subject_id, actor_id, action, from_state, \
             to_state, comment, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(seq)
        .bind(change.subject)
        .bind(change.subject_id)
        .bind(change.actor_id)
        .bind(change.action)
        .bind(change.from_state)
        .bind(change.to_state)
        .bind(change.comment)
        .bind(ts(change.at))
        .execute(&mut **tx)
        .await
        .map_err(db_err(&what))?;
        super::log::append(tx, change, seq).await?;
        Ok(u64::try_from(seq).unwrap_or(0))
    }
}
