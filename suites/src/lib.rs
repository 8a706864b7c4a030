//! Certification suites and plans.
//!
//! `suites` is the only crate that knows what a test checks. A [`Plan`] is
//! data (TOML, compiled in); each case in it names a [`Check`] from the
//! registry. Checks reach the machine only through a [`CaseCtx`], which runs
//! commands and reads files on a `lab::Target` and records every one of them
//! as evidence, so a verdict never exists without what it rests on.

pub mod checks;
pub mod context;
pub mod discovery;
pub mod kernlog;
pub mod perf;
pub mod plan;
pub mod rasdb;
pub mod requires;
pub mod summary;
pub mod walk;

pub use context::{ArtifactSink, CaseCtx, CaseError, CaseOutcome, MemorySink, Recorder};
pub use discovery::{discover, Discovery};
pub use plan::{
    before_checked, run_checked, Applies, Before, CaseSpec, Check, Plan, PlanError, RebootKind,
    Rebooted, Selection,
};
pub use requires::Requires;
