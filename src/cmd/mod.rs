//! One module per area of the command line, each with its clap types and
//! its wiring; `crate::cli` dispatches to them. They share `crate::error`,
//! `crate::format`, `crate::common` and `crate::exit`, never `crate::cli`.

pub mod accel;
pub mod agent;
pub mod bmc;
pub mod bundle;
pub mod certify;
pub mod daemon;
pub mod hwdb;
pub mod job;
pub mod kabi;
pub mod lab;
pub mod perf;
pub mod perf_baseline;
pub mod portal;
pub mod portal_log;
pub mod portal_seed;
pub mod ras;
pub mod runs;
pub mod serve;
pub mod submit;
