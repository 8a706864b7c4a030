//! A machine's *state* (what it is doing) and *health* (whether it may be
//! used), kept apart as LAVA does, as pure transition functions.
//!
//! A machine takes a job only when it is `Idle` and `Good`. `Unknown`
//! health (a new machine, or one back from maintenance) must pass a health
//! check first; `Bad` machines are taken out of service until a health
//! check passes again; `Maintenance` and `Retired` are set by people.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

/// What a machine is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MachineState {
    Idle,
    Leased {
        job: String,
    },
    Running {
        job: String,
        run: String,
    },
    /// Not reachable (powered off by policy, or its BMC does not answer).
    Offline {
        reason: String,
    },
}

impl MachineState {
    pub fn name(&self) -> &'static str {
        match self {
            MachineState::Idle => "idle",
            MachineState::Leased { .. } => "leased",
            MachineState::Running { .. } => "running",
            MachineState::Offline { .. } => "offline",
        }
    }
}

/// Whether a machine may be used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "health", rename_all = "snake_case")]
pub enum Health {
    Good {
        since: OffsetDateTime,
    },
    Unknown {
        since: OffsetDateTime,
    },
    Bad {
        reason: String,
        since: OffsetDateTime,
    },
    Maintenance {
        note: String,
        since: OffsetDateTime,
    },
    Retired {
        since: OffsetDateTime,
    },
}

impl Health {
    pub fn name(&self) -> &'static str {
        match self {
            Health::Good { .. } => "good",
            Health::Unknown { .. } => "unknown",
            Health::Bad { .. } => "bad",
            Health::Maintenance { .. } => "maintenance",
            Health::Retired { .. } => "retired",
        }
    }

    pub fn since(&self) -> OffsetDateTime {
        match self {
            Health::Good { since }
            | Health::Unknown { since }
            | Health::Bad { since, .. }
            | Health::Maintenance { since, .. }
            | Health::Retired { since } => *since,
        }
    }

    /// The reason shown beside the health, if any.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Health::Bad { reason, .. } => Some(reason),
            Health::Maintenance { note, .. } => Some(note),
            _ => None,
        }
    }
}

/// Something that changes a machine's health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthEvent {
    /// A health check passed (BMC answers, no critical SEL entry, SSH up).
    CheckPassed,
    CheckFailed {
        reason: String,
    },
    /// `failures` consecutive jobs ended in infrastructure faults on this
    /// machine: below `limit` its health is checked again before its next
    /// job; at `limit` it is taken out of service.
    InfraFailures {
        failures: u32,
        limit: u32,
        last_error: String,
    },
    MaintenanceOn {
        note: String,
    },
    /// Back from maintenance: a health check decides.
    MaintenanceOff,
    Retire,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthRefusal {
    #[error("machine is retired")]
    Retired,
    #[error("machine is in maintenance ({note}): only `maintenance off` or `retire` apply")]
    InMaintenance { note: String },
    #[error("machine is not in maintenance")]
    NotInMaintenance,
}

/// The next health, or why the event is refused.
pub fn next_health(
    health: &Health,
    event: &HealthEvent,
    now: OffsetDateTime,
) -> Result<Health, HealthRefusal> {
    if let Health::Retired { .. } = health {
        return Err(HealthRefusal::Retired);
    }
    match (health, event) {
        (_, HealthEvent::Retire) => Ok(Health::Retired { since: now }),
        (Health::Maintenance { .. }, HealthEvent::MaintenanceOff) => {
            Ok(Health::Unknown { since: now })
        }
        (_, HealthEvent::MaintenanceOff) => Err(HealthRefusal::NotInMaintenance),
        (Health::Maintenance { note, .. }, _) => {
            Err(HealthRefusal::InMaintenance { note: note.clone() })
        }
        (_, HealthEvent::MaintenanceOn { note }) => Ok(Health::Maintenance {
            note: note.clone(),
            since: now,
        }),
        (Health::Good { since }, HealthEvent::CheckPassed) => Ok(Health::Good { since: *since }),
        (_, HealthEvent::CheckPassed) => Ok(Health::Good { since: now }),
        (_, HealthEvent::CheckFailed { reason }) => Ok(Health::Bad {
            reason: reason.clone(),
            since: now,
        }),
        (
            _,
            HealthEvent::InfraFailures {
                failures,
                limit,
                last_error,
            },
        ) => {
            if failures >= limit {
                Ok(Health::Bad {
                    reason: format!(
                        "{failures} consecutive infrastructure failures, last: {last_error}"
                    ),
                    since: now,
                })
            } else {
                // Checked again before it takes another job (a machine that
                // crashed is brought back by its health check).
                Ok(Health::Unknown { since: now })
            }
        }
    }
}

/// Why a machine cannot take a job now, or `None` when it can.
pub fn unavailable(state: &MachineState, health: &Health) -> Option<Unavailable> {
    match health {
        Health::Good { .. } => {}
        Health::Unknown { .. } => return Some(Unavailable::NeedsHealthCheck),
        Health::Bad { reason, .. } => return Some(Unavailable::Bad(reason.clone())),
        Health::Maintenance { note, .. } => return Some(Unavailable::Maintenance(note.clone())),
        Health::Retired { .. } => return Some(Unavailable::Retired),
    }
    match state {
        MachineState::Idle => None,
        MachineState::Leased { job } | MachineState::Running { job, .. } => {
            Some(Unavailable::Busy(job.clone()))
        }
        MachineState::Offline { reason } => Some(Unavailable::Offline(reason.clone())),
    }
}

/// Why a machine is not available, worded for a job's waiting reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    NeedsHealthCheck,
    Bad(String),
    Maintenance(String),
    Retired,
    Busy(String),
    Offline(String),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::NeedsHealthCheck => {
                f.write_str("health unknown: a health check runs first")
            }
            Unavailable::Bad(r) => write!(f, "health bad: {r}"),
            Unavailable::Maintenance(n) => write!(f, "in maintenance: {n}"),
            Unavailable::Retired => f.write_str("retired"),
            Unavailable::Busy(job) => write!(f, "busy with job {job}"),
            Unavailable::Offline(r) => write!(f, "offline: {r}"),
        }
    }
}
