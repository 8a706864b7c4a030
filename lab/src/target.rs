//! The [`Target`] trait: how suites reach a system under test.

use std::time::Duration;

/// What a command run on a target produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit status; `None` when the command was killed by a signal or timed out.
    pub exit: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Wall-clock time the command ran.
    pub duration: Duration,
    /// The command ran past its timeout and was killed.
    pub timed_out: bool,
}

impl ExecOutput {
    /// The command ran to completion with exit status 0.
    pub fn success(&self) -> bool {
        self.exit == Some(0) && !self.timed_out
    }

    /// Stdout decoded lossily as UTF-8.
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr decoded lossily as UTF-8.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// One entry of a directory listing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirEntry {
    pub name: String,
    pub is_dir: bool,
    pub is_symlink: bool,
}

/// Why an operation on a target could not be carried out.
///
/// These are infrastructure outcomes: a suite turns them into an `error`
/// verdict (or a skip where a missing file means "does not apply"), never into
/// a product failure.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{target}: {path}: no such file or directory")]
    NotFound { target: String, path: String },
    #[error("{target}: {path}: permission denied")]
    PermissionDenied { target: String, path: String },
    #[error("{target}: command `{command}` could not be started: {source}")]
    Spawn {
        target: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: {path}: {source}")]
    Io {
        target: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: connection lost: {reason}")]
    Disconnected { target: String, reason: String },
    #[error("{target}: cannot connect to {address}: {reason}")]
    Connect {
        target: String,
        address: String,
        reason: String,
    },
    /// The server's host key is not the one pinned or recorded: refused
    /// before authenticating, nothing was sent.
    #[error("{target}: host key of {address} has changed: the key {trusted_as} is {expected}, the server presented {presented}; if the machine was reinstalled, pin its new key in lab.toml or remove the recorded one")]
    HostKeyMismatch {
        target: String,
        address: String,
        /// "pinned in lab.toml", "recorded in the lab store".
        trusted_as: String,
        expected: String,
        presented: String,
    },
    #[error("{target}: host key {presented} of {address} is not trusted")]
    HostKeyUntrusted {
        target: String,
        address: String,
        presented: String,
    },
    #[error("{target}: authentication as {user} at {address} failed: {reason}")]
    Auth {
        target: String,
        address: String,
        user: String,
        reason: String,
    },
    #[error("{target}: {operation} timed out after {after:?}")]
    Timeout {
        target: String,
        operation: String,
        after: Duration,
    },
}

impl TargetError {
    /// The error only says that a path does not exist on the target.
    pub fn is_not_found(&self) -> bool {
        matches!(self, TargetError::NotFound { .. })
    }

    /// The error says that the caller lacks the privilege to do it.
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, TargetError::PermissionDenied { .. })
    }

    /// The way to the target failed (the connection could not be made,
    /// was lost, or a transport operation timed out): nothing was learnt
    /// about the product, and trying again may succeed.
    pub fn is_transient_transport(&self) -> bool {
        matches!(
            self,
            TargetError::Disconnected { .. }
                | TargetError::Connect { .. }
                | TargetError::Timeout { .. }
        )
    }

    pub(crate) fn from_io(target: &str, path: &str, err: std::io::Error) -> TargetError {
        match err.kind() {
            std::io::ErrorKind::NotFound => TargetError::NotFound {
                target: target.to_string(),
                path: path.to_string(),
            },
            std::io::ErrorKind::PermissionDenied => TargetError::PermissionDenied {
                target: target.to_string(),
                path: path.to_string(),
            },
            _ => TargetError::Io {
                target: target.to_string(),
                path: path.to_string(),
                source: err,
            },
        }
    }
}

/// A system under test that commands can be run on and files read from.
///
/// Implementations are blocking; callers on an async runtime run them on a
/// blocking thread. Every command has a timeout.
pub trait Target: Send + Sync {
    /// A short name for messages ("local", the machine name, …).
    fn name(&self) -> &str;

    /// Runs `command` through `/bin/sh -c` on the target, killing it after `timeout`.
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError>;

    /// Reads a whole file (sysfs and procfs files included).
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError>;

    /// Lists a directory, sorted by name.
    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError>;

    /// Reads the target of a symbolic link.
    fn read_link(&self, path: &str) -> Result<String, TargetError>;

    /// Writes a file with the given permission bits.
    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError>;

    /// A path on the target of a `certlab` binary that can run helper
    /// subcommands (`certlab agent …`), when the target has one.
    fn agent_path(&self) -> Option<String> {
        None
    }

    /// Reads a file as trimmed UTF-8 text.
    fn read_text(&self, path: &str) -> Result<String, TargetError> {
        let bytes = self.read_file(path)?;
        Ok(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// Whether a path exists on the target. "No such file" is `Ok(false)`, a
    /// path that may not be read counts as existing (a root-only device);
    /// any other error (a lost connection, a timeout) is returned, so that an
    /// infrastructure failure never reads as absence.
    fn exists(&self, path: &str) -> Result<bool, TargetError> {
        let settled = |r: Result<(), TargetError>| -> Result<Option<bool>, TargetError> {
            match r {
                Ok(()) => Ok(Some(true)),
                // Exists, but is not of this kind (or may not be opened):
                // the next probe decides.
                Err(TargetError::NotFound { .. }) => Ok(None),
                Err(TargetError::PermissionDenied { .. }) => Ok(Some(true)),
                Err(TargetError::Io { .. }) => Ok(None),
                Err(e) => Err(e),
            }
        };
        if let Some(found) = settled(self.read_link(path).map(drop))? {
            return Ok(found);
        }
        if let Some(found) = settled(self.list_dir(path).map(drop))? {
            return Ok(found);
        }
        Ok(settled(self.read_file(path).map(drop))?.unwrap_or(false))
    }

    /// Whether a command is on the target's `PATH`. A failure to run the
    /// probe is returned, never read as "not installed".
    fn has_command(&self, name: &str) -> Result<bool, TargetError> {
        let probe = format!("command -v {} >/dev/null 2>&1", shell_quote(name));
        let out = self.exec(&probe, Duration::from_secs(10))?;
        if out.timed_out {
            return Err(TargetError::Timeout {
                target: self.name().to_string(),
                operation: probe,
                after: Duration::from_secs(10),
            });
        }
        Ok(out.success())
    }
}

/// Quotes a string for safe use as one word in a POSIX shell command.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target whose connection is gone: every operation fails.
    struct Dropped;

    impl Target for Dropped {
        fn name(&self) -> &str {
            "dropped"
        }
        fn exec(&self, _: &str, _: Duration) -> Result<ExecOutput, TargetError> {
            Err(self.gone())
        }
        fn read_file(&self, _: &str) -> Result<Vec<u8>, TargetError> {
            Err(self.gone())
        }
        fn list_dir(&self, _: &str) -> Result<Vec<DirEntry>, TargetError> {
            Err(self.gone())
        }
        fn read_link(&self, _: &str) -> Result<String, TargetError> {
            Err(self.gone())
        }
        fn put_file(&self, _: &str, _: &[u8], _: u32) -> Result<(), TargetError> {
            Err(self.gone())
        }
    }

    impl Dropped {
        fn gone(&self) -> TargetError {
            TargetError::Disconnected {
                target: "dropped".into(),
                reason: "SSH session closed by peer".into(),
            }
        }
    }

    #[test]
    fn a_dropped_session_is_an_error_not_absence() {
        let e = Dropped.exists("/dev/ipmi0").unwrap_err();
        assert!(matches!(e, TargetError::Disconnected { .. }), "{e}");
        let e = Dropped.has_command("ipmitool").unwrap_err();
        assert!(matches!(e, TargetError::Disconnected { .. }), "{e}");
    }

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(shell_quote("/dev/sda"), "/dev/sda");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
