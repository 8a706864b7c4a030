//! The result model and everything certlab writes about a run.
//!
//! `reports` is pure: it takes values and paths and returns values; it never
//! runs commands or opens sockets, and it reads no clock.

pub mod model;

pub use model::*;
