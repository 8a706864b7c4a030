//! What a job asks of a machine, and the scheduler's pure choice of which
//! queued job goes to which idle machine.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::machine::{unavailable, Health, MachineState};

/// The facts about a machine that requirements are matched against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineFacts {
    pub name: String,
    /// `uname -m` spelling.
    pub arch: String,
    /// The hwdb CPU platform family (`kunpeng`, `hygon`, …), when known.
    pub family: Option<String>,
    pub pool: Option<String>,
    pub tags: Vec<String>,
}

/// Where a job may run: one machine by name, or any machine meeting every
/// requirement given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirements {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Every tag must be present.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A `--require` expression that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    #[error("requirement `{0}` is not KEY=VALUE")]
    NotKeyValue(String),
    #[error("unknown requirement key `{key}` (known: arch, family, tag, pool, name)")]
    UnknownKey { key: String },
    #[error("requirement `{key}` given twice (`{first}` and `{second}`)")]
    Twice {
        key: String,
        first: String,
        second: String,
    },
    #[error("requirement `{key}` has an empty value")]
    Empty { key: String },
}

impl Requirements {
    /// Parses `KEY=VALUE[,KEY=VALUE…]` (several `tag=` allowed).
    pub fn parse(spec: &str) -> Result<Self, RequirementError> {
        let mut r = Requirements::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| RequirementError::NotKeyValue(part.to_string()))?;
            let (key, value) = (key.trim(), value.trim());
            if value.is_empty() {
                return Err(RequirementError::Empty { key: key.into() });
            }
            let slot = match key {
                "tag" => {
                    r.tags.push(value.to_string());
                    continue;
                }
                "arch" => &mut r.arch,
                "family" => &mut r.family,
                "pool" => &mut r.pool,
                "name" => &mut r.name,
                _ => return Err(RequirementError::UnknownKey { key: key.into() }),
            };
            if let Some(first) = slot.replace(value.to_string()) {
                return Err(RequirementError::Twice {
                    key: key.into(),
                    first,
                    second: value.into(),
                });
            }
        }
        r.tags.sort();
        r.tags.dedup();
        Ok(r)
    }

    /// The first requirement `m` does not meet, or `None` when it meets all.
    pub fn unmet(&self, m: &MachineFacts) -> Option<String> {
        let eq = |want: &Option<String>, have: Option<&str>, key: &str| match want {
            Some(w) if have != Some(w.as_str()) => Some(format!(
                "{key}={w} (machine has {})",
                have.unwrap_or("none")
            )),
            _ => None,
        };
        eq(&self.name, Some(&m.name), "name")
            .or_else(|| eq(&self.arch, Some(&m.arch), "arch"))
            .or_else(|| eq(&self.family, m.family.as_deref(), "family"))
            .or_else(|| eq(&self.pool, m.pool.as_deref(), "pool"))
            .or_else(|| {
                self.tags
                    .iter()
                    .find(|t| !m.tags.contains(t))
                    .map(|t| format!("tag={t}"))
            })
    }

    pub fn matches(&self, m: &MachineFacts) -> bool {
        self.unmet(m).is_none()
    }
}

impl fmt::Display for Requirements {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (k, v) in [
            ("name", &self.name),
            ("arch", &self.arch),
            ("family", &self.family),
            ("pool", &self.pool),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={v}"));
            }
        }
        parts.extend(self.tags.iter().map(|t| format!("tag={t}")));
        if parts.is_empty() {
            f.write_str("any machine")
        } else {
            f.write_str(&parts.join(","))
        }
    }
}

/// A queued job as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct QueuedJob {
    pub id: String,
    pub requirements: Requirements,
    pub priority: u8,
    pub submitter: String,
    /// Submission order (a timestamp's text, or a sequence): older first.
    pub age_key: String,
    /// A machine whose infrastructure failed the job's previous attempt:
    /// not chosen while another matching machine can serve (its health
    /// good or not yet known).
    pub avoid: Option<String>,
}

/// A machine as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub facts: MachineFacts,
    pub state: MachineState,
    pub health: Health,
}

/// The scheduler's decision for one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// (job id, machine name), in the order to lease them.
    pub leases: Vec<(String, String)>,
    /// Why each job left waiting waits.
    pub waiting: BTreeMap<String, String>,
}

/// Assigns queued jobs to available machines: requirements first, then
/// priority, then fairness between submitters (within one priority, each
/// submitter's oldest job before anyone's second), then age.
pub fn schedule(jobs: &[QueuedJob], machines: &[Candidate]) -> Plan {
    let mut order: Vec<&QueuedJob> = jobs.iter().collect();
    // Rank of each job among its submitter's jobs of the same priority.
    let mut by_owner: BTreeMap<(u8, &str), Vec<&QueuedJob>> = BTreeMap::new();
    for j in jobs {
        by_owner
            .entry((j.priority, j.submitter.as_str()))
            .or_default()
            .push(j);
    }
    let mut rank: BTreeMap<&str, usize> = BTreeMap::new();
    for list in by_owner.values_mut() {
        list.sort_by(|a, b| a.age_key.cmp(&b.age_key).then(a.id.cmp(&b.id)));
        for (i, j) in list.iter().enumerate() {
            rank.insert(j.id.as_str(), i);
        }
    }
    order.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(rank[a.id.as_str()].cmp(&rank[b.id.as_str()]))
            .then(a.age_key.cmp(&b.age_key))
            .then(a.id.cmp(&b.id))
    });

    let mut free: Vec<bool> = machines
        .iter()
        .map(|m| unavailable(&m.state, &m.health).is_none())
        .collect();
    let mut plan = Plan::default();
    for job in order {
        // The machine to avoid, when another matching one can serve.
        let avoid = job.avoid.as_deref().filter(|avoid| {
            machines.iter().any(|m| {
                m.facts.name != *avoid
                    && job.requirements.matches(&m.facts)
                    && matches!(m.health, Health::Good { .. } | Health::Unknown { .. })
            })
        });
        let mut matching = 0usize;
        let mut why: Option<String> = None;
        let mut chosen = None;
        for (i, m) in machines.iter().enumerate() {
            if job.requirements.unmet(&m.facts).is_some() {
                continue;
            }
            if avoid == Some(m.facts.name.as_str()) {
                continue;
            }
            matching += 1;
            if free[i] {
                chosen = Some(i);
                break;
            }
            if why.is_none() {
                why = match unavailable(&m.state, &m.health) {
                    Some(u) => Some(format!("{}: {u}", m.facts.name)),
                    None => Some(format!(
                        "{}: taken by a job ahead in the queue",
                        m.facts.name
                    )),
                };
            }
        }
        match chosen {
            Some(i) => {
                free[i] = false;
                plan.leases
                    .push((job.id.clone(), machines[i].facts.name.clone()));
            }
            None if matching == 0 => {
                let closest = machines
                    .iter()
                    .filter_map(|m| job.requirements.unmet(&m.facts))
                    .next();
                let reason = match closest {
                    Some(u) => format!(
                        "no machine in the lab matches {} (e.g. {u})",
                        job.requirements
                    ),
                    None => "the lab has no machines".to_string(),
                };
                plan.waiting.insert(job.id.clone(), reason);
            }
            None => {
                let avoiding = avoid
                    .map(|a| {
                        format!("{a} avoided (its infrastructure failed the previous attempt); ")
                    })
                    .unwrap_or_default();
                let reason = format!(
                    "{avoiding}all {matching} matching machine(s) unavailable; first: {}",
                    why.unwrap_or_default()
                );
                plan.waiting.insert(job.id.clone(), reason);
            }
        }
    }
    plan
}
