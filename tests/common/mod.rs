//! Helpers shared by the end-to-end tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod netns;
pub mod pg;
pub mod portal;
