//! The orchestrator: runs plans on targets and persists lab state.
//!
//! `harness` is the only crate that schedules work and writes the lab
//! store. It emits [`RunEvent`]s and never prints.

pub mod access;
pub mod daemon;
pub mod events;
pub mod lifecycle;
pub mod runner;
pub mod store;
pub mod sut;

pub use events::{RunEvent, Stage};
pub use runner::{certify, publish, Outputs, RunError, RunSpec, CASE_GRACE};
pub use store::*;
