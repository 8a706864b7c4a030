//! The lab's machines and jobs in the store. Every change of a job is a
//! transition of [`crate::lifecycle::job`] applied with one guarded
//! `UPDATE`: it names the state the transition was computed from, so when
//! another orchestrator got there first nothing changes and the caller is
//! told ([`StoreError::Conflict`]).

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::{corrupt, from_json, get, invalid, parse_ts, query_err, to_json, ts};
use super::{Backend, Store, StoreError};
use crate::lifecycle::{
    Health, JobState, JobStateKind, MachineFacts, MachineState, Requirements, Resume,
};

/// A job as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    /// App-generated, unique (a UUID).
    pub id: String,
    pub plan: String,
    pub plan_version: String,
    pub plan_digest: String,
    /// The plan's TOML when it was given as a file.
    pub plan_text: Option<String>,
    pub requirements: Requirements,
    /// 0–100, higher first.
    pub priority: u8,
    pub submitter: String,
}

impl NewJob {
    /// A job of `plan` with a fresh id (a UUID v7, so ids sort by time):
    /// named by the plan's id when it is built in, or by the path of the
    /// plan `file` it was read from, whose text is kept with the job so that
    /// any daemon can run it. How `certlab job submit` and the portal queue jobs.
    pub fn of_plan(
        plan: &certlab_suites::Plan,
        file: Option<(String, String)>,
        requirements: Requirements,
        priority: u8,
        submitter: &str,
    ) -> NewJob {
        let (name, text) = match file {
            Some((path, text)) => (path, Some(text)),
            None => (plan.id.clone(), None),
        };
        NewJob {
            id: uuid::Uuid::now_v7().to_string(),
            plan: name,
            plan_version: plan.version.clone(),
            plan_digest: plan.digest.clone(),
            plan_text: text,
            requirements,
            priority,
            submitter: submitter.to_string(),
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub plan: String,
    pub plan_version: String,
    pub plan_digest: String,
    pub plan_text: Option<String>,
    pub requirements: Requirements,
    pub priority: u8,
    pub submitter: String,
    pub submitted: OffsetDateTime,
    pub state: JobState,
    pub state_since: OffsetDateTime,
    /// When the current (or last) run started.
    pub started: Option<OffsetDateTime>,
    /// Why a queued job waits, as the scheduler last saw it.
    pub waiting_reason: Option<String>,
}

impl JobRow {
    /// The run of the job: the one it runs, ran, or will resume.
    pub fn run_id(&self) -> Option<&str> {
        match &self.state {
            JobState::Leased { run, .. }
            | JobState::Running { run, .. }
            | JobState::Finished { run, .. } => Some(run),
            JobState::Queued {
                resume: Some(r), ..
            } => Some(&r.run),
            _ => None,
        }
    }

    /// The machine it is on, or finished on.
    pub fn machine(&self) -> Option<&str> {
        match &self.state {
            JobState::Leased { machine, .. }
            | JobState::Running { machine, .. }
            | JobState::Finished { machine, .. } => Some(machine),
            _ => None,
        }
    }

    /// When it reached a final state.
    pub fn finished(&self) -> Option<OffsetDateTime> {
        match &self.state {
            JobState::Finished { at, .. }
            | JobState::Failed { at, .. }
            | JobState::Cancelled { at, .. } => Some(*at),
            _ => None,
        }
    }

    /// The error (or cancellation reason) to show.
    pub fn error(&self) -> Option<&str> {
        match &self.state {
            JobState::Queued { last_error, .. } => last_error.as_deref(),
            JobState::Failed { error, .. } => Some(error),
            JobState::Cancelled { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// A machine as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRow {
    pub facts: MachineFacts,
    /// Still described in lab.toml.
    pub in_lab: bool,
    pub state: MachineState,
    pub state_since: OffsetDateTime,
    pub health: Health,
    /// Consecutive jobs on it that ended in infrastructure faults.
    pub infra_failures: u32,
}

/// What [`Store::sync_machines`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    /// In the store but no longer in lab.toml: kept, marked out of the lab.
    pub removed: Vec<String>,
}

/// A job leased to a machine by [`Store::lease`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leased {
    pub job: String,
    pub machine: String,
    pub run: String,
    /// The run already existed: it resumes, keeping its finished cases.
    pub resumed: bool,
}

const JOB_COLUMNS: &str = "id, plan, plan_version, plan_digest, plan_text, requirements_json, \
     priority, submitter, submitted, state, state_since, attempt, machine, lease_owner, \
     lease_until, run_id, resume_run, resume_machine, started, finished, waiting_reason, error";

const MACHINE_COLUMNS: &str = "name, arch, family, pool, tags_json, in_lab, state, state_reason, \
     state_since, job_id, run_id, health, health_reason, health_since, infra_failures";

/// A job state flattened into its columns.
struct JobCols {
    state: &'static str,
    attempt: i64,
    machine: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<String>,
    run_id: Option<String>,
    resume_run: Option<String>,
    resume_machine: Option<String>,
    started: Option<String>,
    finished: Option<String>,
    error: Option<String>,
}

fn cols(state: &JobState) -> Result<JobCols, StoreError> {
    let mut c = JobCols {
        state: state.kind().as_str(),
        attempt: i64::from(state.attempt()),
        machine: None,
        lease_owner: None,
        lease_until: None,
        run_id: None,
        resume_run: None,
        resume_machine: None,
        started: None,
        finished: None,
        error: None,
    };
    match state {
        JobState::Queued {
            resume,
            last_error,
            avoid,
            ..
        } => {
            // A queued job has no machine: the column holds the one to avoid.
            c.machine = avoid.clone();
            c.resume_run = resume.as_ref().map(|r| r.run.clone());
            c.resume_machine = resume.as_ref().map(|r| r.machine.clone());
            c.error = last_error.clone();
        }
        JobState::Leased {
            machine,
            owner,
            run,
            until,
            ..
        } => {
            c.machine = Some(machine.clone());
            c.lease_owner = Some(owner.clone());
            c.lease_until = Some(ts(*until)?);
            c.run_id = Some(run.clone());
        }
        JobState::Running {
            machine,
            owner,
            run,
            until,
            started,
            ..
        } => {
            c.machine = Some(machine.clone());
            c.lease_owner = Some(owner.clone());
            c.lease_until = Some(ts(*until)?);
            c.run_id = Some(run.clone());
            c.started = Some(ts(*started)?);
        }
        JobState::Finished { machine, run, at } => {
            c.machine = Some(machine.clone());
            c.run_id = Some(run.clone());
            c.finished = Some(ts(*at)?);
        }
        JobState::Failed { error, at, .. } => {
            c.error = Some(error.clone());
            c.finished = Some(ts(*at)?);
        }
        JobState::Cancelled { reason, at } => {
            c.error = Some(reason.clone());
            c.finished = Some(ts(*at)?);
        }
    }
    Ok(c)
}

fn job_from_row(row: &AnyRow) -> Result<JobRow, StoreError> {
    let id: String = get(row, "job", "id")?;
    let what = format!("job `{id}`");
    let w = what.as_str();
    let opt_ts = |col: &str| -> Result<Option<OffsetDateTime>, StoreError> {
        get::<Option<String>>(row, w, col)?
            .map(|s| parse_ts(w, &s))
            .transpose()
    };
    let need = |col: &str| -> Result<String, StoreError> {
        get::<Option<String>>(row, w, col)?
            .ok_or_else(|| corrupt(w, format!("{col} is empty in this state")))
    };
    let need_ts = |col: &str| -> Result<OffsetDateTime, StoreError> {
        opt_ts(col)?.ok_or_else(|| corrupt(w, format!("{col} is empty in this state")))
    };
    let kind_text: String = get(row, w, "state")?;
    let kind = JobStateKind::parse(&kind_text)
        .ok_or_else(|| corrupt(w, format!("unknown state `{kind_text}`")))?;
    let attempt: i64 = get(row, w, "attempt")?;
    let attempt = u32::try_from(attempt).map_err(|e| corrupt(w, e))?;
    let state_since = parse_ts(w, &get::<String>(row, w, "state_since")?)?;
    let error: Option<String> = get(row, w, "error")?;
    let state = match kind {
        JobStateKind::Queued => {
            let run: Option<String> = get(row, w, "resume_run")?;
            let machine: Option<String> = get(row, w, "resume_machine")?;
            JobState::Queued {
                since: state_since,
                attempt,
                resume: match (run, machine) {
                    (Some(run), Some(machine)) => Some(Resume { run, machine }),
                    _ => None,
                },
                last_error: error,
                avoid: get(row, w, "machine")?,
            }
        }
        JobStateKind::Leased => JobState::Leased {
            machine: need("machine")?,
            owner: need("lease_owner")?,
            run: need("run_id")?,
            until: need_ts("lease_until")?,
            attempt,
        },
        JobStateKind::Running => JobState::Running {
            machine: need("machine")?,
            owner: need("lease_owner")?,
            run: need("run_id")?,
            until: need_ts("lease_until")?,
            attempt,
            started: need_ts("started")?,
        },
        JobStateKind::Finished => JobState::Finished {
            machine: need("machine")?,
            run: need("run_id")?,
            at: need_ts("finished")?,
        },
        JobStateKind::Failed => JobState::Failed {
            error: need("error")?,
            attempt,
            at: need_ts("finished")?,
        },
        JobStateKind::Cancelled => JobState::Cancelled {
            reason: need("error")?,
            at: need_ts("finished")?,
        },
    };
    let priority: i64 = get(row, w, "priority")?;
    Ok(JobRow {
        plan: get(row, w, "plan")?,
        plan_version: get(row, w, "plan_version")?,
        plan_digest: get(row, w, "plan_digest")?,
        plan_text: get(row, w, "plan_text")?,
        requirements: from_json(w, &get::<String>(row, w, "requirements_json")?)?,
        priority: u8::try_from(priority).map_err(|e| corrupt(w, e))?,
        submitter: get(row, w, "submitter")?,
        submitted: parse_ts(w, &get::<String>(row, w, "submitted")?)?,
        state,
        state_since,
        started: opt_ts("started")?,
        waiting_reason: get(row, w, "waiting_reason")?,
        id,
    })
}

fn machine_from_row(row: &AnyRow) -> Result<MachineRow, StoreError> {
    let name: String = get(row, "machine", "name")?;
    let what = format!("machine `{name}`");
    let w = what.as_str();
    let reason: Option<String> = get(row, w, "state_reason")?;
    let job: Option<String> = get(row, w, "job_id")?;
    let run: Option<String> = get(row, w, "run_id")?;
    let state_text: String = get(row, w, "state")?;
    let state = match (state_text.as_str(), job, run) {
        ("idle", _, _) => MachineState::Idle,
        ("leased", Some(job), _) => MachineState::Leased { job },
        ("running", Some(job), Some(run)) => MachineState::Running { job, run },
        ("offline", _, _) => MachineState::Offline {
            reason: reason.unwrap_or_default(),
        },
        (s, _, _) => return Err(corrupt(w, format!("state `{s}` without its job or run"))),
    };
    let since = parse_ts(w, &get::<String>(row, w, "health_since")?)?;
    let health_reason: Option<String> = get(row, w, "health_reason")?;
    let health_text: String = get(row, w, "health")?;
    let health = match health_text.as_str() {
        "good" => Health::Good { since },
        "unknown" => Health::Unknown { since },
        "bad" => Health::Bad {
            reason: health_reason.unwrap_or_default(),
            since,
        },
        "maintenance" => Health::Maintenance {
            note: health_reason.unwrap_or_default(),
            since,
        },
        "retired" => Health::Retired { since },
        h => return Err(corrupt(w, format!("unknown health `{h}`"))),
    };
    let failures: i64 = get(row, w, "infra_failures")?;
    let in_lab: i64 = get(row, w, "in_lab")?;
    Ok(MachineRow {
        facts: MachineFacts {
            arch: get(row, w, "arch")?,
            family: get(row, w, "family")?,
            pool: get(row, w, "pool")?,
            tags: from_json(w, &get::<String>(row, w, "tags_json")?)?,
            name,
        },
        in_lab: in_lab != 0,
        state,
        state_since: parse_ts(w, &get::<String>(row, w, "state_since")?)?,
        health,
        infra_failures: u32::try_from(failures).map_err(|e| corrupt(w, e))?,
    })
}

/// Sets a machine's facts from lab.toml (and puts it back in the lab).
async fn update_facts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    m: &MachineFacts,
    tags: String,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE machines SET arch = $2, family = $3, pool = $4, tags_json = $5, \
         in_lab = 1 WHERE name = $1",
    )
    .bind(m.name.as_str())
    .bind(m.arch.as_str())
    .bind(m.family.as_deref())
    .bind(m.pool.as_deref())
    .bind(tags)
    .execute(&mut **tx)
    .await
    .map_err(query_err(format!("update machine `{}`", m.name)))?;
    Ok(())
}

impl Store {
    /// Makes the machines table describe `machines` (from lab.toml): new
    /// ones are added with health `unknown` (a health check runs first),
    /// changed facts are updated, machines no longer listed are kept with
    /// their history but marked out of the lab.
    pub async fn sync_machines(
        &self,
        machines: &[MachineFacts],
        now: OffsetDateTime,
    ) -> Result<SyncReport, StoreError> {
        let what = "synchronise machines from the lab inventory";
        let mut report = SyncReport::default();
        let existing = self.machines().await?;
        let mut tx = self.pool.begin().await.map_err(query_err(what))?;
        for m in machines {
            let tags = to_json(what, &m.tags)?;
            match existing.iter().find(|e| e.facts.name == m.name) {
                None => {
                    // Several daemons may start at once: the first adds it.
                    let added = sqlx::query(
                        "INSERT INTO machines (name, arch, family, pool, tags_json, in_lab, state, \
                         state_since, health, health_since, infra_failures) \
                         VALUES ($1, $2, $3, $4, $5, 1, 'idle', $6, 'unknown', $6, 0) \
                         ON CONFLICT (name) DO NOTHING",
                    )
                    .bind(m.name.as_str())
                    .bind(m.arch.as_str())
                    .bind(m.family.as_deref())
                    .bind(m.pool.as_deref())
                    .bind(tags.clone())
                    .bind(ts(now)?)
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(format!("add machine `{}`", m.name)))?;
                    if added.rows_affected() == 1 {
                        report.added.push(m.name.clone());
                    } else {
                        // Added meanwhile by another daemon: make it ours.
                        update_facts(&mut tx, m, tags).await?;
                    }
                }
                Some(e) if e.facts != *m || !e.in_lab => {
                    update_facts(&mut tx, m, tags).await?;
                    report.updated.push(m.name.clone());
                }
                Some(_) => {}
            }
        }
        for e in existing.iter().filter(|e| e.in_lab) {
            if !machines.iter().any(|m| m.name == e.facts.name) {
                sqlx::query("UPDATE machines SET in_lab = 0 WHERE name = $1")
                    .bind(e.facts.name.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(query_err(format!("retire machine `{}`", e.facts.name)))?;
                report.removed.push(e.facts.name.clone());
            }
        }
        tx.commit().await.map_err(query_err(what))?;
        self.announce("machines").await;
        Ok(report)
    }

    /// Every machine the store knows, by name.
    pub async fn machines(&self) -> Result<Vec<MachineRow>, StoreError> {
        let sql = format!("SELECT {MACHINE_COLUMNS} FROM machines ORDER BY name");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await;
        rows.map_err(query_err("list machines"))?
            .iter()
            .map(machine_from_row)
            .collect()
    }

    /// Sets a machine's health (computed with
    /// [`crate::lifecycle::next_health`] from `from`): refused with
    /// [`StoreError::Conflict`] when the stored health is no longer `from`.
    pub async fn set_health(
        &self,
        machine: &str,
        from: &Health,
        to: &Health,
    ) -> Result<(), StoreError> {
        let what = format!("set the health of machine `{machine}`");
        let done = sqlx::query(
            "UPDATE machines SET health = $3, health_reason = $4, health_since = $5 \
             WHERE name = $1 AND health = $2 AND health_since = $6",
        )
        .bind(machine)
        .bind(from.name())
        .bind(to.name())
        .bind(to.reason())
        .bind(ts(to.since())?)
        .bind(ts(from.since())?)
        .execute(&self.pool)
        .await
        .map_err(query_err(&what))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict {
                what,
                detail: format!("its health is no longer {}", from.name()),
            });
        }
        self.announce(&format!("machine:{machine}:{}", to.name()))
            .await;
        Ok(())
    }

    /// Counts one more consecutive infrastructure failure of a job on
    /// `machine` and returns the count.
    pub async fn count_infra_failure(&self, machine: &str) -> Result<u32, StoreError> {
        let what = format!("count an infrastructure failure of machine `{machine}`");
        let row = sqlx::query(
            "UPDATE machines SET infra_failures = infra_failures + 1 WHERE name = $1 \
             RETURNING infra_failures",
        )
        .bind(machine)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err(&what))?;
        let Some(row) = row else {
            return Err(StoreError::Conflict {
                what,
                detail: "no such machine".to_string(),
            });
        };
        let n: i64 = get(&row, &what, "infra_failures")?;
        u32::try_from(n).map_err(|e| corrupt(&what, e))
    }

    /// A job ran to its end on `machine`: its consecutive infrastructure
    /// failures start again from 0.
    pub async fn clear_infra_failures(&self, machine: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE machines SET infra_failures = 0 WHERE name = $1 AND infra_failures <> 0",
        )
        .bind(machine)
        .execute(&self.pool)
        .await
        .map_err(query_err(format!(
            "clear the infrastructure failures of machine `{machine}`"
        )))?;
        Ok(())
    }

    /// Where `machine`'s SEL stood after its last job (`None` before the
    /// orchestrator first read it).
    pub async fn sel_cursor(&self, machine: &str) -> Result<Option<String>, StoreError> {
        let what = format!("read the SEL position of machine `{machine}`");
        let row = sqlx::query("SELECT sel_cursor FROM machines WHERE name = $1")
            .bind(machine)
            .fetch_optional(&self.pool)
            .await
            .map_err(query_err(&what))?;
        match row {
            Some(r) => get(&r, &what, "sel_cursor"),
            None => Ok(None),
        }
    }

    /// Records where `machine`'s SEL stands now.
    pub async fn set_sel_cursor(&self, machine: &str, cursor: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE machines SET sel_cursor = $2 WHERE name = $1")
            .bind(machine)
            .bind(cursor)
            .execute(&self.pool)
            .await
            .map_err(query_err(format!(
                "record the SEL position of machine `{machine}`"
            )))?;
        Ok(())
    }

    /// Queues a job.
    pub async fn submit_job(&self, job: &NewJob, now: OffsetDateTime) -> Result<(), StoreError> {
        self.submit_jobs(std::slice::from_ref(job), now).await
    }

    /// Queues several jobs at once: one transaction, one announcement (a
    /// daemon sees them together, as one scheduling pass).
    pub async fn submit_jobs(
        &self,
        jobs: &[NewJob],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let what = format!("submit {} job(s)", jobs.len());
        let mut tx = self.pool.begin().await.map_err(query_err(&what))?;
        for job in jobs {
            self.insert_job(&mut tx, job, now).await?;
        }
        tx.commit().await.map_err(query_err(&what))?;
        match jobs {
            [one] => self.announce(&format!("job:{}:queued", one.id)).await,
            _ => self.announce(&format!("jobs:{}:queued", jobs.len())).await,
        }
        Ok(())
    }

    async fn insert_job(
        &self,
        conn: &mut sqlx::AnyConnection,
        job: &NewJob,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let what = format!("submit job `{}`", job.id);
        if job.priority > 100 {
            return Err(invalid(
                format!("priority of job `{}`", job.id),
                format!("{} is not within 0–100", job.priority),
            ));
        }
        sqlx::query(
            "INSERT INTO jobs (id, plan, plan_version, plan_digest, plan_text, requirements_json, \
             priority, submitter, submitted, state, state_since, attempt) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $9, 0)",
        )
        .bind(job.id.as_str())
        .bind(job.plan.as_str())
        .bind(job.plan_version.as_str())
        .bind(job.plan_digest.as_str())
        .bind(job.plan_text.as_deref())
        .bind(to_json(&what, &job.requirements)?)
        .bind(i64::from(job.priority))
        .bind(job.submitter.as_str())
        .bind(ts(now)?)
        .execute(&mut *conn)
        .await
        .map_err(query_err(&what))?;
        Ok(())
    }

    /// One job by id.
    pub async fn job(&self, id: &str) -> Result<Option<JobRow>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await;
        row.map_err(query_err(format!("read job `{id}`")))?
            .as_ref()
            .map(job_from_row)
            .transpose()
    }

    /// Jobs, optionally of one state, in submission order.
    pub async fn jobs(&self, state: Option<JobStateKind>) -> Result<Vec<JobRow>, StoreError> {
        let rows = match state {
            Some(s) => {
                let sql = format!(
                    "SELECT {JOB_COLUMNS} FROM jobs WHERE state = $1 ORDER BY submitted, id"
                );
                sqlx::query(&sql)
                    .bind(s.as_str())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                let sql = format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY submitted, id");
                sqlx::query(&sql).fetch_all(&self.pool).await
            }
        };
        rows.map_err(query_err("list jobs"))?
            .iter()
            .map(job_from_row)
            .collect()
    }

    /// The newest `limit` jobs, optionally of one state, newest first.
    pub async fn recent_jobs(
        &self,
        state: Option<JobStateKind>,
        limit: u32,
    ) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE $1 = '' OR state = $1 \
             ORDER BY submitted DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(state.map_or("", JobStateKind::as_str))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await;
        rows.map_err(query_err("list recent jobs"))?
            .iter()
            .map(job_from_row)
            .collect()
    }

    /// Applies a job transition computed from `from` (see
    /// [`crate::lifecycle::next_job`]) with one guarded update. When the
    /// stored job is no longer in `from`, nothing changes and the result is
    /// [`StoreError::Conflict`]. When the job leaves a lease, its machine is
    /// released in the same transaction.
    pub async fn apply_job(
        &self,
        id: &str,
        from: &JobState,
        to: &JobState,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let what = format!("move job `{id}` from {} to {}", from.kind(), to.kind());
        let f = cols(from)?;
        let t = cols(to)?;
        let mut tx = self.pool.begin().await.map_err(query_err(&what))?;
        let done = sqlx::query(
            "UPDATE jobs SET state = $6, state_since = $7, attempt = $8, machine = $9, \
             lease_owner = $10, lease_until = $11, run_id = $12, resume_run = $13, \
             resume_machine = $14, started = COALESCE($15, started), finished = $16, \
             error = $17, waiting_reason = NULL \
             WHERE id = $1 AND state = $2 AND attempt = $3 \
             AND COALESCE(lease_owner, '') = $4 AND COALESCE(lease_until, '') = $5",
        )
        .bind(id)
        .bind(f.state)
        .bind(f.attempt)
        .bind(f.lease_owner.unwrap_or_default())
        .bind(f.lease_until.unwrap_or_default())
        .bind(t.state)
        .bind(ts(now)?)
        .bind(t.attempt)
        .bind(t.machine.as_deref())
        .bind(t.lease_owner.as_deref())
        .bind(t.lease_until.as_deref())
        .bind(t.run_id.as_deref())
        .bind(t.resume_run.as_deref())
        .bind(t.resume_machine.as_deref())
        .bind(t.started.as_deref())
        .bind(t.finished.as_deref())
        .bind(t.error.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(query_err(&what))?;
        if done.rows_affected() == 0 {
            tx.rollback().await.map_err(query_err(&what))?;
            let now_state = self.job(id).await?;
            let detail = match now_state {
                None => "no such job".to_string(),
                Some(j) => format!("it is {} now", j.state.kind()),
            };
            return Err(StoreError::Conflict { what, detail });
        }
        // The machine follows the job.
        let machine_sql = match to {
            JobState::Running { machine, run, .. } => Some((
                "UPDATE machines SET state = 'running', run_id = $3, state_since = $4 \
                 WHERE name = $1 AND job_id = $2",
                machine.clone(),
                Some(run.clone()),
            )),
            JobState::Leased { .. } => None,
            _ => match from {
                JobState::Leased { machine, .. } | JobState::Running { machine, .. } => Some((
                    "UPDATE machines SET state = 'idle', job_id = NULL, run_id = NULL, \
                     state_since = $4, state_reason = $3 WHERE name = $1 AND job_id = $2",
                    machine.clone(),
                    None,
                )),
                _ => None,
            },
        };
        if let Some((sql, machine, run)) = machine_sql {
            sqlx::query(sql)
                .bind(machine.as_str())
                .bind(id)
                .bind(run.as_deref())
                .bind(ts(now)?)
                .execute(&mut *tx)
                .await
                .map_err(query_err(format!("{what}: update machine `{machine}`")))?;
        }
        tx.commit().await.map_err(query_err(&what))?;
        self.announce(&format!("job:{id}:{}", to.kind())).await;
        Ok(())
    }

    /// Records why queued jobs wait (only those whose reason changed).
    pub async fn set_waiting_reasons(
        &self,
        reasons: &[(String, String)],
    ) -> Result<(), StoreError> {
        for (job, reason) in reasons {
            sqlx::query(
                "UPDATE jobs SET waiting_reason = $2 WHERE id = $1 AND state = 'queued' \
                 AND COALESCE(waiting_reason, '') <> $2",
            )
            .bind(job.as_str())
            .bind(reason.as_str())
            .execute(&self.pool)
            .await
            .map_err(query_err(format!("record why job `{job}` waits")))?;
        }
        Ok(())
    }

    /// Leases `machine` to the queued job `from` describes, as `to` (a
    /// `Leased` state computed by [`crate::lifecycle::next_job`]), in one
    /// transaction: the machine must still be idle, good and in the lab,
    /// the job still queued as in `from` (on PostgreSQL its row is taken
    /// with `FOR UPDATE SKIP LOCKED`, so concurrent daemons pass over it
    /// instead of waiting), and the run row is created — or, for a resumed
    /// run, put back to `running` — before the transaction commits. `None`
    /// when another orchestrator got the job or the machine first.
    pub async fn lease(
        &self,
        job: &JobRow,
        to: &JobState,
        now: OffsetDateTime,
    ) -> Result<Option<Leased>, StoreError> {
        let what = format!("lease job `{}`", job.id);
        let mut tx = self.pool.begin().await.map_err(query_err(&what))?;
        let leased = self.lease_in(&mut tx, job, to, now).await?;
        if leased.is_some() {
            tx.commit().await.map_err(query_err(&what))?;
            self.announce(&format!("job:{}:leased", job.id)).await;
        } else {
            tx.rollback().await.map_err(query_err(&what))?;
        }
        Ok(leased)
    }

    /// Leases several jobs as [`Store::lease`] does, in one transaction
    /// (one commit for a whole scheduling pass): each job's lease is its own
    /// savepoint, so a job taken meanwhile by another daemon, or a machine
    /// no longer free, is left out without undoing the others. Returns the
    /// leases made, in the order asked.
    pub async fn lease_many(
        &self,
        leases: &[(&JobRow, JobState)],
        now: OffsetDateTime,
    ) -> Result<Vec<Leased>, StoreError> {
        use sqlx::Acquire;
        let what = format!("lease {} job(s)", leases.len());
        let mut tx = self.pool.begin().await.map_err(query_err(&what))?;
        let mut done = Vec::new();
        for (job, to) in leases {
            let mut sp = (&mut tx).begin().await.map_err(query_err(&what))?;
            match self.lease_in(&mut sp, job, to, now).await? {
                Some(l) => {
                    sp.commit().await.map_err(query_err(&what))?;
                    done.push(l);
                }
                None => sp.rollback().await.map_err(query_err(&what))?,
            }
        }
        tx.commit().await.map_err(query_err(&what))?;
        if !done.is_empty() {
            self.announce(&format!("jobs:{}:leased", done.len())).await;
        }
        Ok(done)
    }

    /// One job's lease inside the caller's transaction (see [`Store::lease`]).
    async fn lease_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        job: &JobRow,
        to: &JobState,
        now: OffsetDateTime,
    ) -> Result<Option<Leased>, StoreError> {
        let JobState::Leased {
            machine,
            run,
            owner,
            ..
        } = to
        else {
            return Err(invalid(
                format!("lease of job `{}`", job.id),
                format!("target state is {}", to.kind()),
            ));
        };
        let what = format!("lease machine `{machine}` to job `{}`", job.id);
        let f = cols(&job.state)?;
        let t = cols(to)?;
        if self.backend() == Backend::Postgres {
            let locked = sqlx::query(
                "SELECT id FROM jobs WHERE id = $1 AND state = 'queued' AND attempt = $2 \
                 FOR UPDATE SKIP LOCKED",
            )
            .bind(job.id.as_str())
            .bind(f.attempt)
            .fetch_optional(&mut *conn)
            .await
            .map_err(query_err(&what))?;
            if locked.is_none() {
                return Ok(None);
            }
        }
        let taken = sqlx::query(
            "UPDATE machines SET state = 'leased', job_id = $2, run_id = $3, state_since = $4, \
             state_reason = NULL WHERE name = $1 AND state = 'idle' AND health = 'good' \
             AND in_lab = 1",
        )
        .bind(machine.as_str())
        .bind(job.id.as_str())
        .bind(run.as_str())
        .bind(ts(now)?)
        .execute(&mut *conn)
        .await
        .map_err(query_err(&what))?;
        let moved = if taken.rows_affected() == 1 {
            sqlx::query(
                "UPDATE jobs SET state = 'leased', state_since = $4, attempt = $5, machine = $6, \
                 lease_owner = $7, lease_until = $8, run_id = $9, resume_run = NULL, \
                 resume_machine = NULL, waiting_reason = NULL \
                 WHERE id = $1 AND state = 'queued' AND attempt = $2 \
                 AND COALESCE(resume_run, '') = $3",
            )
            .bind(job.id.as_str())
            .bind(f.attempt)
            .bind(f.resume_run.unwrap_or_default())
            .bind(ts(now)?)
            .bind(t.attempt)
            .bind(machine.as_str())
            .bind(owner.as_str())
            .bind(t.lease_until.as_deref())
            .bind(run.as_str())
            .execute(&mut *conn)
            .await
            .map_err(query_err(&what))?
            .rows_affected()
        } else {
            0
        };
        if moved == 0 {
            return Ok(None);
        }
        let resumed =
            matches!(&job.state, JobState::Queued { resume: Some(r), .. } if &r.run == run);
        if resumed {
            sqlx::query(
                "UPDATE runs SET state = 'running', finished = NULL, interrupt_reason = NULL \
                 WHERE id = $1 AND state IN ('running', 'interrupted')",
            )
            .bind(run.as_str())
            .execute(&mut *conn)
            .await
            .map_err(query_err(format!("{what}: resume run `{run}`")))?;
        } else {
            // The run exists from the lease on; discovery fills in the host.
            sqlx::query(
                "INSERT INTO runs (id, plan_id, plan_version, plan_digest, target, hostname, \
                 kernel, state, started) VALUES ($1, $2, $3, $4, $5, '', '', 'running', $6)",
            )
            .bind(run.as_str())
            .bind(job.plan.as_str())
            .bind(job.plan_version.as_str())
            .bind(job.plan_digest.as_str())
            .bind(machine.as_str())
            .bind(ts(now)?)
            .execute(&mut *conn)
            .await
            .map_err(query_err(format!("{what}: create run `{run}`")))?;
        }
        Ok(Some(Leased {
            job: job.id.clone(),
            machine: machine.clone(),
            run: run.clone(),
            resumed,
        }))
    }

    /// When the next lease expires, if any job holds one.
    pub async fn next_lease_expiry(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let what = "find the next lease expiry";
        let row = sqlx::query(
            "SELECT MIN(lease_until) AS next FROM jobs WHERE state IN ('leased', 'running')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(query_err(what))?;
        let next: Option<String> = get(&row, what, "next")?;
        next.map(|t| parse_ts(what, &t)).transpose()
    }

    /// Jobs whose lease expired before `now` (their holder stopped beating).
    pub async fn expired_leases(&self, now: OffsetDateTime) -> Result<Vec<JobRow>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('leased', 'running') \
             AND lease_until <= $1 ORDER BY lease_until, id"
        );
        let rows = sqlx::query(&sql).bind(ts(now)?).fetch_all(&self.pool).await;
        rows.map_err(query_err("list expired leases"))?
            .iter()
            .map(job_from_row)
            .collect()
    }
}
