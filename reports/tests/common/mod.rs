//! Helpers shared by the integration tests.
#![allow(dead_code)]

use certlab_reports::RunRecord;

/// The checked-in results.json of schema version 1.
pub const FIXTURE_V1: &str = include_str!("../fixtures/results-v1.json");

pub fn fixture() -> RunRecord {
    serde_json::from_str(FIXTURE_V1).unwrap()
}

/// The creation time of test bundles.
pub const CREATED: time::OffsetDateTime = time::macros::datetime!(2025-03-14 10:41:07 UTC);

/// A fixed signing key per seed, so bundles are reproducible.
pub fn key(seed: u8) -> certlab_reports::SigningKey {
    certlab_reports::SigningKey::from_bytes(&[seed; 32])
}
