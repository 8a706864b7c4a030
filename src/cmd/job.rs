//! `certlab job …` and `certlab machine …`: the orchestrator's queue and
//! machines in the lab store. The daemon (`certlab lab daemon`) carries the
//! jobs out; these commands only read and change the store.

use std::time::{Duration, Instant};

use certlab_harness::lifecycle::{
    next_health, next_job, HealthEvent, JobEvent, JobState, JobStateKind, Requirements,
};
use certlab_harness::{JobRow, MachineRow, NewJob, Store};
use certlab_reports::Outcome;
use certlab_suites::Plan;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::common::{db_url, runtime, DbArg};
use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Subcommand)]
pub enum JobCmd {
    /// Queue a plan for a machine, or for any machine meeting requirements.
    Submit(SubmitArgs),
    /// List jobs, oldest first.
    List {
        /// Only jobs in this state (queued, leased, running, finished, failed, cancelled).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Show one job.
    Show {
        id: String,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Cancel a job that has not ended.
    Cancel {
        id: String,
        /// Why (recorded with the job).
        #[arg(long, default_value = "cancelled by a user")]
        reason: String,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// A job's run events as they were recorded; with --follow, as they
    /// happen, until the job ends (a job retried on another machine shows
    /// each attempt's run in turn).
    Logs {
        id: String,
        /// Keep printing new events until the job ends.
        #[arg(long)]
        follow: bool,
        #[command(flatten)]
        db: DbArg,
        /// `json`: one JSON object per line (`seq`, `at`, `kind`, `run`, `event`).
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Wait for jobs to end: exit 0 when every job finished and its run
    /// passed, 1 when a run failed, 2 on timeout or a job that could not run.
    Wait {
        /// Job ids (or `--all`).
        ids: Vec<String>,
        /// Every job in the store.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// Give up after this many seconds (exit 2).
        #[arg(long)]
        timeout: Option<u64>,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

#[derive(Debug, clap::Args)]
pub struct SubmitArgs {
    /// A built-in plan name or a plan file.
    #[arg(long)]
    plan: String,
    /// Run on this machine.
    #[arg(long, conflicts_with = "require", required_unless_present = "require")]
    machine: Option<String>,
    /// Run on any machine with KEY=VALUE[,KEY=VALUE…]; keys arch, family, tag, pool, name.
    #[arg(long)]
    require: Option<String>,
    /// 0–100, higher runs first.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u8).range(0..=100))]
    priority: u8,
    /// How many jobs to queue.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    count: u32,
    /// Who submits (fairness is kept between submitters) [default: $USER].
    #[arg(long)]
    submitter: Option<String>,
    #[command(flatten)]
    db: DbArg,
    #[arg(long, default_value = "human", value_parser = text_format())]
    format: Format,
}

#[derive(Debug, clap::Subcommand)]
pub enum MachineCmd {
    /// The lab's machines as the orchestrator sees them: state and health.
    List {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Run a machine's health check now (SSH answers; for sim machines,
    /// their BMC and console) and record the result: exit 0 when it is
    /// good, 2 when it is not (the machine is then `bad` with the reason).
    Health {
        name: String,
        #[command(flatten)]
        lab: crate::cmd::lab::LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Take a machine out of service, or bring it back (a health check then runs).
    Maintenance {
        name: String,
        #[arg(value_parser = ["on", "off"])]
        mode: String,
        /// Why (shown as the health reason).
        #[arg(long, default_value = "maintenance")]
        note: String,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

fn rfc3339(t: Option<OffsetDateTime>) -> Value {
    t.and_then(|t| t.format(&Rfc3339).ok())
        .map_or(Value::Null, Value::String)
}

fn job_json(j: &JobRow) -> Value {
    json!({
        "id": j.id,
        "state": j.state.kind().as_str(),
        "plan": j.plan,
        "machine": j.machine(),
        "run_id": j.run_id(),
        "priority": j.priority,
        "attempt": j.state.attempt(),
        "submitted": rfc3339(Some(j.submitted)),
        "started": rfc3339(j.started),
        "finished": rfc3339(j.finished()),
        "waiting_reason": j.waiting_reason,
        "error": j.error(),
    })
}

fn machine_json(m: &MachineRow) -> Value {
    let job = match &m.state {
        certlab_harness::lifecycle::MachineState::Leased { job }
        | certlab_harness::lifecycle::MachineState::Running { job, .. } => Some(job.as_str()),
        _ => None,
    };
    json!({
        "name": m.facts.name,
        "state": m.state.name(),
        "health": m.health.name(),
        "health_reason": m.health.reason(),
        "health_since": rfc3339(Some(m.health.since())),
        "job": job,
        "in_lab": m.in_lab,
    })
}

fn print_jobs(jobs: &[JobRow], format: Format) -> Result<()> {
    if format == Format::Json {
        let all: Vec<Value> = jobs.iter().map(job_json).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    println!(
        "{:<36}  {:<9}  {:<20}  {:<12}  {:>3}  NOTE",
        "JOB", "STATE", "PLAN", "MACHINE", "PRI"
    );
    for j in jobs {
        let note = j
            .waiting_reason
            .as_deref()
            .or(j.error())
            .unwrap_or_default();
        println!(
            "{:<36}  {:<9}  {:<20}  {:<12}  {:>3}  {note}",
            j.id,
            j.state.kind(),
            j.plan,
            j.machine().unwrap_or("-"),
            j.priority
        );
    }
    Ok(())
}

async fn find_job(store: &Store, id: &str) -> Result<JobRow> {
    store
        .job(id)
        .await?
        .ok_or_else(|| failure(exit::INFRA, format!("no job {id} in the store")))
}

pub fn run(cmd: JobCmd) -> Result<i32> {
    runtime()?.block_on(async move {
        match cmd {
            JobCmd::Submit(a) => submit(a).await,
            JobCmd::List { state, db, format } => {
                let state = match state {
                    Some(s) => Some(JobStateKind::parse(&s).ok_or_else(|| {
                        failure(
                            exit::INFRA,
                            format!("unknown job state `{s}` (queued, leased, running, finished, failed, cancelled)"),
                        )
                    })?),
                    None => None,
                };
                let store = Store::open(&db_url(&db)?).await?;
                let jobs = store.jobs(state).await?;
                print_jobs(&jobs, format)?;
                store.close().await;
                Ok(exit::OK)
            }
            JobCmd::Show { id, db, format } => {
                let store = Store::open(&db_url(&db)?).await?;
                let j = find_job(&store, &id).await?;
                let mut v = job_json(&j);
                v["requirements"] = json!(j.requirements.to_string());
                v["submitter"] = json!(j.submitter);
                if let Some(run) = j.run_id() {
                    if let Some(d) = store.get_run(run).await? {
                        v["run"] = json!({
                            "state": d.run.state.as_str(),
                            "outcome": d.run.outcome.map(|o| o.as_str()),
                            "cases": d.cases.len(),
                        });
                    }
                }
                if format == Format::Json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else if let Some(obj) = v.as_object() {
                    for (k, val) in obj {
                        println!("{k:<15} {}", val.to_string().trim_matches('"'));
                    }
                }
                store.close().await;
                Ok(exit::OK)
            }
            JobCmd::Cancel {
                id,
                reason,
                db,
                format,
            } => {
                let store = Store::open(&db_url(&db)?).await?;
                let j = find_job(&store, &id).await?;
                let now = OffsetDateTime::now_utc();
                let to = next_job(&j.state, &JobEvent::Cancel { reason }, now)
                    .map_err(|e| failure(exit::INFRA, format!("job {id}: {e}")))?;
                store.apply_job(&id, &j.state, &to, now).await?;
                let j = find_job(&store, &id).await?;
                if format == Format::Json {
                    println!("{}", serde_json::to_string_pretty(&job_json(&j))?);
                } else {
                    println!("job {id} cancelled");
                }
                store.close().await;
                Ok(exit::OK)
            }
            JobCmd::Logs {
                id,
                follow,
                db,
                format,
            } => logs(id, follow, db, format).await,
            JobCmd::Wait {
                ids,
                all,
                timeout,
                db,
                format,
            } => wait(ids, all, timeout, db, format).await,
        }
    })
}

async fn submit(a: SubmitArgs) -> Result<i32> {
    let plan = Plan::load(&a.plan)?;
    let is_file = a.plan.contains('/') || a.plan.ends_with(".toml");
    let file = if is_file {
        let text = std::fs::read_to_string(&a.plan).map_err(|e| {
            CliError::bad_input(anyhow::Error::new(e).context(format!("reading plan {}", a.plan)))
        })?;
        Some((a.plan.clone(), text))
    } else {
        None
    };
    let requirements = match (&a.machine, &a.require) {
        (Some(m), _) => Requirements {
            name: Some(m.clone()),
            ..Requirements::default()
        },
        (None, Some(r)) => {
            Requirements::parse(r).map_err(|e| failure(exit::INFRA, e.to_string()))?
        }
        (None, None) => Requirements::default(),
    };
    let submitter = a
        .submitter
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let store = Store::open(&db_url(&a.db)?).await?;
    let now = OffsetDateTime::now_utc();
    let jobs: Vec<NewJob> = (0..a.count)
        .map(|_| {
            NewJob::of_plan(
                &plan,
                file.clone(),
                requirements.clone(),
                a.priority,
                &submitter,
            )
        })
        .collect();
    let out: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
    // All of them in one transaction: a daemon sees them together.
    store.submit_jobs(&jobs, now).await?;
    store.close().await;
    if a.format == Format::Json {
        let jobs: Vec<Value> = out
            .iter()
            .map(|id| json!({"id": id, "state": "queued"}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "jobs": jobs }))?
        );
    } else {
        for id in &out {
            println!("{id} queued ({requirements})");
        }
    }
    Ok(exit::OK)
}

async fn logs(id: String, follow: bool, db: DbArg, format: Format) -> Result<i32> {
    let store = Store::open(&db_url(&db)?).await?;
    let mut shown: Option<(String, u64)> = None;
    let mut said_waiting = false;
    loop {
        let j = find_job(&store, &id).await?;
        let ended = j.state.kind().is_terminal();
        if let Some(run) = j.run_id() {
            let after = match &shown {
                Some((r, seq)) if r == run => *seq,
                _ => {
                    if format != Format::Json {
                        println!("== job {id}: run {run} on {}", j.machine().unwrap_or("?"));
                    }
                    0
                }
            };
            let mut last = after;
            for ev in store.events(run).await? {
                if ev.seq <= after {
                    continue;
                }
                let at = ev.at.format(&Rfc3339).unwrap_or_default();
                if format == Format::Json {
                    let line = json!({
                        "seq": ev.seq, "at": at, "kind": ev.kind, "run": run, "event": ev.payload,
                    });
                    println!("{line}");
                } else {
                    println!(
                        "{at}  {:<14} {}",
                        ev.kind,
                        certlab_harness::events::summary(&ev.kind, &ev.payload)
                    );
                }
                last = ev.seq;
            }
            shown = Some((run.to_string(), last));
        } else if follow && !said_waiting && format != Format::Json {
            let why = j.waiting_reason.clone().unwrap_or_else(|| "queued".into());
            println!("== job {id}: waiting: {why}");
            said_waiting = true;
        }
        if !follow || ended {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    store.close().await;
    Ok(exit::OK)
}

async fn wait(
    ids: Vec<String>,
    all: bool,
    timeout: Option<u64>,
    db: DbArg,
    format: Format,
) -> Result<i32> {
    if ids.is_empty() && !all {
        return Err(failure(exit::INFRA, "name job ids or give --all"));
    }
    let store = Store::open(&db_url(&db)?).await?;
    let deadline = timeout.map(|s| Instant::now() + Duration::from_secs(s));
    let jobs = loop {
        let jobs = if all {
            store.jobs(None).await?
        } else {
            let mut v = Vec::with_capacity(ids.len());
            for id in &ids {
                v.push(find_job(&store, id).await?);
            }
            v
        };
        if jobs.iter().all(|j| j.state.kind().is_terminal()) {
            break jobs;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let pending = jobs
                .iter()
                .filter(|j| !j.state.kind().is_terminal())
                .count();
            if format == Format::Json {
                print_jobs(&jobs, format)?;
            }
            store.close().await;
            return Err(failure(
                exit::INFRA,
                format!("timed out: {pending} job(s) not ended"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut code = exit::OK;
    for j in &jobs {
        match &j.state {
            JobState::Finished { run, .. } => {
                let outcome = store.get_run(run).await?.and_then(|d| d.run.outcome);
                match outcome {
                    Some(Outcome::Pass) => {}
                    Some(Outcome::Fail) => code = code.max(exit::TEST_FAILURE),
                    _ => code = exit::INFRA,
                }
            }
            _ => code = exit::INFRA,
        }
    }
    print_jobs(&jobs, format)?;
    store.close().await;
    Ok(code)
}

async fn stored_machine(store: &Store, name: &str) -> Result<MachineRow> {
    store
        .machines()
        .await?
        .into_iter()
        .find(|m| m.facts.name == name)
        .ok_or_else(|| {
            failure(
                exit::INFRA,
                format!(
                    "no machine {name} in the store (a daemon adds lab.toml's machines when it starts)"
                ),
            )
        })
}

pub fn run_machine(cmd: MachineCmd) -> Result<i32> {
    runtime()?.block_on(async move {
        match cmd {
            MachineCmd::List { db, format } => {
                let store = Store::open(&db_url(&db)?).await?;
                let machines = store.machines().await?;
                if format == Format::Json {
                    let v: Vec<Value> = machines.iter().map(machine_json).collect();
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    println!(
                        "{:<16}  {:<8}  {:<11}  REASON",
                        "MACHINE", "STATE", "HEALTH"
                    );
                    for m in &machines {
                        println!(
                            "{:<16}  {:<8}  {:<11}  {}",
                            m.facts.name,
                            m.state.name(),
                            m.health.name(),
                            m.health.reason().unwrap_or_default()
                        );
                    }
                }
                store.close().await;
                Ok(exit::OK)
            }
            MachineCmd::Health {
                name,
                lab,
                db,
                format,
            } => {
                use certlab_harness::daemon::MachineAccess;
                let lab = certlab_lab::Lab::load(&lab.lab)?;
                let store = Store::open(&db_url(&db)?).await?;
                let m = stored_machine(&store, &name).await?;
                let access = certlab_harness::access::LabAccess::new(lab, &store);
                let checked = access.health_check(&name).await;
                let event = match &checked {
                    Ok(()) => HealthEvent::CheckPassed,
                    Err(reason) => HealthEvent::CheckFailed {
                        reason: reason.clone(),
                    },
                };
                let to = next_health(&m.health, &event, OffsetDateTime::now_utc())
                    .map_err(|e| failure(exit::INFRA, format!("machine {name}: {e}")))?;
                store.set_health(&name, &m.health, &to).await?;
                let m = MachineRow { health: to, ..m };
                if format == Format::Json {
                    println!("{}", serde_json::to_string_pretty(&machine_json(&m))?);
                } else {
                    println!(
                        "{name}: health {}{}",
                        m.health.name(),
                        m.health
                            .reason()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    );
                }
                store.close().await;
                Ok(if checked.is_ok() {
                    exit::OK
                } else {
                    exit::INFRA
                })
            }
            MachineCmd::Maintenance {
                name,
                mode,
                note,
                db,
                format,
            } => {
                let store = Store::open(&db_url(&db)?).await?;
                let m = stored_machine(&store, &name).await?;
                let event = if mode == "on" {
                    HealthEvent::MaintenanceOn { note }
                } else {
                    HealthEvent::MaintenanceOff
                };
                let to = next_health(&m.health, &event, OffsetDateTime::now_utc())
                    .map_err(|e| failure(exit::INFRA, format!("machine {name}: {e}")))?;
                store.set_health(&name, &m.health, &to).await?;
                let m = MachineRow { health: to, ..m };
                if format == Format::Json {
                    println!("{}", serde_json::to_string_pretty(&machine_json(&m))?);
                } else {
                    println!("{name}: health {}", m.health.name());
                }
                store.close().await;
                Ok(exit::OK)
            }
        }
    })
}
