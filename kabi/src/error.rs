//! The one error type of the crate: every variant names the file (and the
//! archive member, line or symbol) it is about.

/// Errors reading kernels, modules, Module.symvers and allowlists.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or directory could not be read at all.
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A Module.symvers line that fits none of the known layouts.
    #[error("{path}: line {line}: {msg}")]
    Symvers {
        path: String,
        line: usize,
        msg: String,
    },
    /// A kernel module that is not a well-formed relocatable ELF file.
    #[error("{path}: not a valid kernel module: {msg}")]
    Elf { path: String, msg: String },
    /// Compressed data that does not decompress.
    #[error("{path}: cannot decompress {format} data: {msg}")]
    Decompress {
        path: String,
        format: &'static str,
        msg: String,
    },
    /// An input that decompresses to more than its limit
    /// ([`crate::compress::Limits`]): a corrupt file or a compression bomb.
    #[error("{path}: {what} larger than the limit of {limit} when decompressed")]
    TooLarge {
        path: String,
        what: &'static str,
        limit: String,
    },
    /// A package (`.deb`) or one of its members that cannot be read.
    #[error("{path}: {member}: {msg}")]
    Archive {
        path: String,
        member: String,
        msg: String,
    },
    /// An allowlist that does not parse in the format it is read as.
    #[error("{path}: line {line}: {msg}")]
    Allowlist {
        path: String,
        line: usize,
        msg: String,
    },
    /// A kernel given without any Module.symvers (and nothing to rebuild it from).
    #[error("{path}: no Module.symvers found (give the linux-headers package or the headers directory with the kernel)")]
    NoSymvers { path: String },
    /// An input that is none of the things it may be.
    #[error("{path}: {msg}")]
    Unrecognised { path: String, msg: String },
}

impl Error {
    /// Whether the error is about the content of an input (corrupt ELF,
    /// symvers, allowlist, archive) rather than about reaching it.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, Error::Io { .. })
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
