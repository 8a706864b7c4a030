//! The JSON Schemas of `results.json`, one per released version.

/// JSON Schema (draft 2020-12) of `results.json` as written for
/// [`crate::SCHEMA_VERSION`] 3: exactly what serde makes of a [`crate::RunRecord`].
///
/// The file is `reports/schema/results.schema.json`; its `$id` is
/// `https://certlab.dev/schema/results/v3.json`.
pub const RESULTS_SCHEMA: &str = include_str!("../schema/results.schema.json");

/// The `$id` of [`RESULTS_SCHEMA`].
pub const RESULTS_SCHEMA_ID: &str = "https://certlab.dev/schema/results/v3.json";

/// JSON Schema of `results.json` version 2 (`reports/schema/results-v2.schema.json`),
/// kept unchanged: records of that version still validate against it.
pub const RESULTS_SCHEMA_V2: &str = include_str!("../schema/results-v2.schema.json");

/// The `$id` of [`RESULTS_SCHEMA_V2`].
pub const RESULTS_SCHEMA_V2_ID: &str = "https://certlab.dev/schema/results/v2.json";

/// JSON Schema of `results.json` version 1 (`reports/schema/results-v1.schema.json`),
/// kept unchanged: records of that version still validate against it.
pub const RESULTS_SCHEMA_V1: &str = include_str!("../schema/results-v1.schema.json");

/// The `$id` of [`RESULTS_SCHEMA_V1`].
pub const RESULTS_SCHEMA_V1_ID: &str = "https://certlab.dev/schema/results/v1.json";

/// The schema of a `results.json` by its `schema_version`; `None` for a
/// version this build does not know.
pub fn results_schema(schema_version: u64) -> Option<&'static str> {
    match schema_version {
        1 => Some(RESULTS_SCHEMA_V1),
        2 => Some(RESULTS_SCHEMA_V2),
        3 => Some(RESULTS_SCHEMA),
        _ => None,
    }
}
