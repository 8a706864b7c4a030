//! One module per area of the command line; `cli.rs` holds the clap types
//! and the dispatch.

pub mod bmc;
pub mod hwdb;
pub mod kabi;
pub mod lab;
