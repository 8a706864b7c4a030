//! The JSON Schema of `results.json`.

/// JSON Schema (draft 2020-12) of `results.json` as written for
/// [`crate::SCHEMA_VERSION`] 1: exactly what serde makes of a [`crate::RunRecord`].
///
/// The file is `reports/schema/results.schema.json`; its `$id` is
/// `https://certlab.dev/schema/results/v1.json`.
pub const RESULTS_SCHEMA: &str = include_str!("../schema/results.schema.json");

/// The `$id` of [`RESULTS_SCHEMA`].
pub const RESULTS_SCHEMA_ID: &str = "https://certlab.dev/schema/results/v1.json";
