//! Lifecycles of the lab's jobs and machines as pure state machines: a
//! transition takes the time as an argument and returns the next state or
//! why it refuses. The store persists a transition before anyone acts on it.

pub mod job;
pub mod machine;
pub mod requirements;

#[cfg(test)]
mod tests;

pub use job::{next as next_job, JobEvent, JobState, JobStateKind, Refusal, Resume};
pub use machine::{
    next_health, unavailable, Health, HealthEvent, HealthRefusal, MachineState, Unavailable,
};
pub use requirements::{
    schedule, Candidate, MachineFacts, QueuedJob, RequirementError, Requirements,
};
