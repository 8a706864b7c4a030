//! Helpers shared by the integration tests.
#![allow(dead_code)]

use certlab_reports::RunRecord;

/// The checked-in results.json of schema version 1 (kept as released).
pub const FIXTURE_V1: &str = include_str!("../fixtures/results-v1.json");

/// The checked-in results.json of schema version 2: version 1's cases plus
/// a failed non-blocker (`time.clock`, a warning).
pub const FIXTURE_V2: &str = include_str!("../fixtures/results-v2.json");

/// The checked-in results.json of schema version 3, the version written now:
/// version 2's cases, `perf.fio-randread` with three samples a metric and
/// its comparison with a stored baseline.
pub const FIXTURE_V3: &str = include_str!("../fixtures/results-v3.json");

/// The fixture of the current version.
pub fn fixture() -> RunRecord {
    serde_json::from_str(FIXTURE_V3).unwrap()
}

/// The fixture of version 1, read by this build.
pub fn fixture_v1() -> RunRecord {
    serde_json::from_str(FIXTURE_V1).unwrap()
}

/// The creation time of test bundles.
pub const CREATED: time::OffsetDateTime = time::macros::datetime!(2025-03-14 10:41:07 UTC);

/// A fixed signing key per seed, so bundles are reproducible.
pub fn key(seed: u8) -> certlab_reports::SigningKey {
    certlab_reports::SigningKey::from_bytes(&[seed; 32])
}
