//! Errors of the crate: every one says which input it was reading.

use std::path::PathBuf;

/// Everything that can go wrong in `hwdb`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of a snapshot could not be read.
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of an input could not be parsed.
    #[error("{what}, line {line}: {message}")]
    Parse {
        /// Which input (`pci.ids`, `modules.alias`, …).
        what: String,
        /// 1-based line number.
        line: usize,
        message: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(what: &str, line: usize, message: impl Into<String>) -> Error {
        Error::Parse {
            what: what.to_string(),
            line,
            message: message.into(),
        }
    }
}
