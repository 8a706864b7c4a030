//! `--format`: one enum for every command.
//!
//! `human` and `json` are accepted everywhere; `junit` only where a command
//! has a JUnit report (`kabi check`, `kabi diff`): the other commands parse
//! `--format` with [`text_format`], so `--help` lists what each accepts and
//! clap refuses the rest as a usage error.

use clap::builder::{PossibleValuesParser, TypedValueParser};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for people.
    Human,
    /// JSON on stdout, for programs.
    Json,
    /// JUnit XML (kabi check and diff only): one testcase per module × kernel, or per change kind / allowlisted symbol.
    Junit,
}

/// The parser of `--format` for commands that print text or JSON only.
pub fn text_format() -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(["human", "json"]).map(|s| {
        if s == "json" {
            Format::Json
        } else {
            Format::Human
        }
    })
}
