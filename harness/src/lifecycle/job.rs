//! A job's lifecycle as a pure state machine.
//!
//! [`next`] takes a state, an event and the time, and returns the next
//! state or the reason it refuses. It performs no I/O: the store persists
//! the returned state with one guarded update (`WHERE state = … AND
//! lease_owner = …`) *before* the daemon acts on it, so a crash between the
//! two leaves a state from which the daemon can resume.
//!
//! ```text
//!            lease                start              run ended
//!  Queued ────────────▶ Leased ──────────▶ Running ─────────────▶ Finished
//!    ▲                    │                   │
//!    │  infra fault       │                   │   infra fault, attempts left;
//!    └────────────────────┴───────────────────┘   lease expired (resume)
//!                         │                   │
//!                         ▼                   ▼
//!                       Failed (no attempts left)        Cancelled (any live state)
//! ```

use std::fmt;

use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// A run interrupted on a machine, to be continued there: its finished
/// cases are kept and the case that was in flight runs again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resume {
    pub run: String,
    pub machine: String,
}

/// Where a job is. Each state carries only the data valid in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for a machine. `attempt` counts the attempts already made.
    Queued {
        since: OffsetDateTime,
        attempt: u32,
        /// Set when a lease ended without the run reaching its end.
        resume: Option<Resume>,
        /// Why the previous attempt ended, if there was one.
        last_error: Option<String>,
        /// The machine whose infrastructure failed the previous attempt:
        /// the scheduler gives the job to another matching machine when
        /// the lab has one.
        avoid: Option<String>,
    },
    /// A machine is reserved for the job; its run row already exists.
    Leased {
        machine: String,
        owner: String,
        run: String,
        until: OffsetDateTime,
        attempt: u32,
    },
    /// The run is being carried out.
    Running {
        machine: String,
        owner: String,
        run: String,
        until: OffsetDateTime,
        attempt: u32,
        started: OffsetDateTime,
    },
    /// The run reached its end, whatever its verdicts (the outcome belongs
    /// to the run).
    Finished {
        machine: String,
        run: String,
        at: OffsetDateTime,
    },
    /// The job could not be carried out within its attempts.
    Failed {
        error: String,
        attempt: u32,
        at: OffsetDateTime,
    },
    Cancelled {
        reason: String,
        at: OffsetDateTime,
    },
}

/// The names of the states, as stored in the `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStateKind {
    Queued,
    Leased,
    Running,
    Finished,
    Failed,
    Cancelled,
}

impl JobStateKind {
    pub const ALL: [JobStateKind; 6] = [
        JobStateKind::Queued,
        JobStateKind::Leased,
        JobStateKind::Running,
        JobStateKind::Finished,
        JobStateKind::Failed,
        JobStateKind::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStateKind::Queued => "queued",
            JobStateKind::Leased => "leased",
            JobStateKind::Running => "running",
            JobStateKind::Finished => "finished",
            JobStateKind::Failed => "failed",
            JobStateKind::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// No event leaves a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStateKind::Finished | JobStateKind::Failed | JobStateKind::Cancelled
        )
    }
}

impl fmt::Display for JobStateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl JobState {
    /// A new job, queued at `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        JobState::Queued {
            since: now,
            attempt: 0,
            resume: None,
            last_error: None,
            avoid: None,
        }
    }

    pub fn kind(&self) -> JobStateKind {
        match self {
            JobState::Queued { .. } => JobStateKind::Queued,
            JobState::Leased { .. } => JobStateKind::Leased,
            JobState::Running { .. } => JobStateKind::Running,
            JobState::Finished { .. } => JobStateKind::Finished,
            JobState::Failed { .. } => JobStateKind::Failed,
            JobState::Cancelled { .. } => JobStateKind::Cancelled,
        }
    }

    /// The holder of the lease and its expiry, in `Leased` and `Running`.
    pub fn lease(&self) -> Option<(&str, OffsetDateTime)> {
        match self {
            JobState::Leased { owner, until, .. } | JobState::Running { owner, until, .. } => {
                Some((owner, *until))
            }
            _ => None,
        }
    }

    /// The attempts made so far.
    pub fn attempt(&self) -> u32 {
        match self {
            JobState::Queued { attempt, .. }
            | JobState::Leased { attempt, .. }
            | JobState::Running { attempt, .. }
            | JobState::Failed { attempt, .. } => *attempt,
            JobState::Finished { .. } | JobState::Cancelled { .. } => 0,
        }
    }
}

/// Something that happens to a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEvent {
    /// A scheduler reserved `machine` for the job. `new_run` is the id to
    /// use unless the job resumes a run on that same machine.
    Lease {
        machine: String,
        owner: String,
        new_run: String,
        ttl: Duration,
    },
    /// The lease holder starts (or resumes) the run.
    Start {
        owner: String,
    },
    /// The lease holder is alive: the lease is extended to `now + ttl`.
    Heartbeat {
        owner: String,
        ttl: Duration,
    },
    /// The run reached its end.
    RunEnded {
        owner: String,
    },
    /// The infrastructure failed (BMC, SSH, the machine's health): the job
    /// goes back to the queue for another machine, or fails when it has
    /// used `max_attempts`.
    InfraFault {
        owner: String,
        error: String,
        max_attempts: u32,
    },
    /// A scheduler found the lease expired (its holder died): the job is
    /// queued again to resume its run.
    LeaseExpired,
    Cancel {
        reason: String,
    },
}

impl JobEvent {
    pub fn name(&self) -> &'static str {
        match self {
            JobEvent::Lease { .. } => "lease",
            JobEvent::Start { .. } => "start",
            JobEvent::Heartbeat { .. } => "heartbeat",
            JobEvent::RunEnded { .. } => "run_ended",
            JobEvent::InfraFault { .. } => "infra_fault",
            JobEvent::LeaseExpired => "lease_expired",
            JobEvent::Cancel { .. } => "cancel",
        }
    }
}

/// Why [`next`] refuses an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("job is {state}: `{event}` does not apply")]
    NotApplicable {
        state: JobStateKind,
        event: &'static str,
    },
    #[error("job is {state}, a final state")]
    Terminal { state: JobStateKind },
    #[error("lease is held by {holder}, not {owner}")]
    NotOwner { holder: String, owner: String },
    #[error("lease of {owner} expired at {until}")]
    Expired {
        owner: String,
        until: OffsetDateTime,
    },
    #[error("lease of {holder} is valid until {until}")]
    NotExpired {
        holder: String,
        until: OffsetDateTime,
    },
    #[error("lease time must be positive, got {ttl}")]
    BadTtl { ttl: Duration },
}

/// The next state of a job, or why `event` is refused in `state` at `now`.
pub fn next(state: &JobState, event: &JobEvent, now: OffsetDateTime) -> Result<JobState, Refusal> {
    let kind = state.kind();
    if kind.is_terminal() {
        return Err(Refusal::Terminal { state: kind });
    }
    let not_applicable = || Refusal::NotApplicable {
        state: kind,
        event: event.name(),
    };
    match event {
        JobEvent::Lease {
            machine,
            owner,
            new_run,
            ttl,
        } => {
            let JobState::Queued {
                attempt, resume, ..
            } = state
            else {
                return Err(not_applicable());
            };
            positive(*ttl)?;
            let run = match resume {
                Some(r) if &r.machine == machine => r.run.clone(),
                _ => new_run.clone(),
            };
            Ok(JobState::Leased {
                machine: machine.clone(),
                owner: owner.clone(),
                run,
                until: now + *ttl,
                attempt: attempt + 1,
            })
        }
        JobEvent::Start { owner } => {
            let JobState::Leased {
                machine,
                run,
                until,
                attempt,
                ..
            } = state
            else {
                return Err(not_applicable());
            };
            live_holder(state, owner, now)?;
            Ok(JobState::Running {
                machine: machine.clone(),
                owner: owner.clone(),
                run: run.clone(),
                until: *until,
                attempt: *attempt,
                started: now,
            })
        }
        JobEvent::Heartbeat { owner, ttl } => {
            positive(*ttl)?;
            live_holder(state, owner, now)?;
            let mut s = state.clone();
            match &mut s {
                JobState::Leased { until, .. } | JobState::Running { until, .. } => {
                    *until = now + *ttl;
                }
                _ => return Err(not_applicable()),
            }
            Ok(s)
        }
        JobEvent::RunEnded { owner } => {
            let JobState::Running { machine, run, .. } = state else {
                return Err(not_applicable());
            };
            // A holder whose lease expired may still report the end of a
            // run it finished: the run's results are in the store, and
            // nobody else can have taken the job without first moving it
            // out of Running (a guarded update), so accept it.
            holder(state, owner)?;
            Ok(JobState::Finished {
                machine: machine.clone(),
                run: run.clone(),
                at: now,
            })
        }
        JobEvent::InfraFault {
            owner,
            error,
            max_attempts,
        } => {
            let (JobState::Leased {
                attempt, machine, ..
            }
            | JobState::Running {
                attempt, machine, ..
            }) = state
            else {
                return Err(not_applicable());
            };
            holder(state, owner)?;
            if *attempt >= *max_attempts {
                Ok(JobState::Failed {
                    error: error.clone(),
                    attempt: *attempt,
                    at: now,
                })
            } else {
                // Another machine may take it: start a new run there.
                Ok(JobState::Queued {
                    since: now,
                    attempt: *attempt,
                    resume: None,
                    last_error: Some(error.clone()),
                    avoid: Some(machine.clone()),
                })
            }
        }
        JobEvent::LeaseExpired => {
            let Some((holder, until)) = state.lease() else {
                return Err(not_applicable());
            };
            if now < until {
                return Err(Refusal::NotExpired {
                    holder: holder.to_string(),
                    until,
                });
            }
            let resume = match state {
                JobState::Leased {
                    machine,
                    run,
                    attempt,
                    ..
                }
                | JobState::Running {
                    machine,
                    run,
                    attempt,
                    ..
                } => (
                    Resume {
                        run: run.clone(),
                        machine: machine.clone(),
                    },
                    *attempt,
                ),
                _ => return Err(not_applicable()),
            };
            // A dead orchestrator is not the job's fault: the attempt it
            // used is given back, so restarts never exhaust a job.
            Ok(JobState::Queued {
                since: now,
                attempt: resume.1.saturating_sub(1),
                resume: Some(resume.0),
                last_error: Some(format!("lease of {holder} expired at {until}")),
                avoid: None,
            })
        }
        JobEvent::Cancel { reason } => Ok(JobState::Cancelled {
            reason: reason.clone(),
            at: now,
        }),
    }
}

fn positive(ttl: Duration) -> Result<(), Refusal> {
    if ttl.is_positive() {
        Ok(())
    } else {
        Err(Refusal::BadTtl { ttl })
    }
}

fn holder(state: &JobState, owner: &str) -> Result<(), Refusal> {
    match state.lease() {
        Some((h, _)) if h == owner => Ok(()),
        Some((h, _)) => Err(Refusal::NotOwner {
            holder: h.to_string(),
            owner: owner.to_string(),
        }),
        None => Err(Refusal::NotApplicable {
            state: state.kind(),
            event: "lease holder",
        }),
    }
}

fn live_holder(state: &JobState, owner: &str, now: OffsetDateTime) -> Result<(), Refusal> {
    holder(state, owner)?;
    match state.lease() {
        Some((_, until)) if now >= until => Err(Refusal::Expired {
            owner: owner.to_string(),
            until,
        }),
        _ => Ok(()),
    }
}
