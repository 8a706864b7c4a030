//! The physical world of a certification lab.
//!
//! `lab` is the only crate that talks to machines: it runs commands and
//! reads files on a system under test (SUT) through the [`Target`] trait.
//! Suites never know whether they run on the local machine, over SSH or
//! against a scripted simulation.

pub mod bmc;
pub mod inventory;
pub mod local;
pub mod scripted;
pub mod sim;
pub mod ssh;
pub mod target;

pub use inventory::{Lab, Machine};
pub use local::Local;
pub use scripted::Scripted;
pub use ssh::{HostKey, HostKeyCheck, Ssh, SshConfig};
pub use target::{DirEntry, ExecOutput, Target, TargetError};
