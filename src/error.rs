//! The binary's one error type: [`CliError`], an error with the exit code it
//! means (see [`crate::exit`]) and its whole chain of causes.
//!
//! Each library crate's error converts with `?` into the code its kind
//! documents (a corrupt input is 3, an unreachable peer 2, …); `main` prints
//! the chain once, through [`redact`], so no password in a URL reaches the
//! terminal.

use std::fmt;

use crate::exit;

/// `Result` of the command modules.
pub type Result<T, E = CliError> = std::result::Result<T, E>;

/// An error of a `certlab` command: its exit code and its cause chain.
#[derive(Debug)]
pub struct CliError {
    code: i32,
    error: anyhow::Error,
}

impl CliError {
    /// `error` (with its sources) ending the process with `code`.
    pub fn new(code: i32, error: impl Into<anyhow::Error>) -> CliError {
        CliError {
            code,
            error: error.into(),
        }
    }

    /// A message without a further cause.
    pub fn msg(code: i32, message: impl fmt::Display + fmt::Debug + Send + Sync + 'static) -> Self {
        CliError::new(code, anyhow::Error::msg(message))
    }

    /// A corrupt, unreadable or untrusted input (exit 3).
    pub fn bad_input(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(exit::BAD_INPUT, error)
    }

    /// Infrastructure or usage (exit 2).
    pub fn infra(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(exit::INFRA, error)
    }

    /// The process exit code this error means.
    pub fn exit_code(&self) -> i32 {
        self.code
    }

    /// Adds what was being done, keeping the code and the cause chain.
    pub fn context(self, context: impl fmt::Display + Send + Sync + 'static) -> CliError {
        CliError {
            code: self.code,
            error: self.error.context(context),
        }
    }
}

/// The message and every cause on one line (`a: b: c`), a cause left out
/// when the message before already quotes it, with URLs redacted.
impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        for cause in self.error.chain() {
            let m = cause.to_string();
            if s.contains(&m) {
                continue;
            }
            if !s.is_empty() {
                s.push_str(": ");
            }
            s.push_str(&m);
        }
        f.write_str(&redact(&s))
    }
}

/// A `CliError` from a code and a message (the common case of the commands).
pub fn failure(code: i32, message: impl Into<String>) -> CliError {
    CliError::msg(code, message.into())
}

macro_rules! infra_from {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> CliError {
                CliError::infra(e)
            }
        }
    )*};
}

infra_from!(
    std::io::Error,
    serde_json::Error,
    certlab_harness::StoreError,
    certlab_web::store::DbError,
    certlab_harness::RunError,
    certlab_lab::bmc::BmcError,
    tokio::task::JoinError,
);

impl From<anyhow::Error> for CliError {
    fn from(e: anyhow::Error) -> CliError {
        CliError::infra(e)
    }
}

/// Corrupt input is 3; an input that cannot be read at all is 2.
impl From<certlab_kabi::Error> for CliError {
    fn from(e: certlab_kabi::Error) -> CliError {
        let code = if e.is_bad_input() {
            exit::BAD_INPUT
        } else {
            exit::INFRA
        };
        CliError::new(code, e)
    }
}

/// A bundle that does not verify is bad input.
impl From<certlab_reports::BundleError> for CliError {
    fn from(e: certlab_reports::BundleError) -> CliError {
        CliError::bad_input(e)
    }
}

/// A key file that is not a key is bad input; failing to write is infrastructure.
impl From<certlab_reports::ReportError> for CliError {
    fn from(e: certlab_reports::ReportError) -> CliError {
        match e {
            certlab_reports::ReportError::Key { .. } => CliError::bad_input(e),
            e => CliError::infra(e),
        }
    }
}

/// An invalid `lab.toml` is bad input; a machine that isn't there, or has no
/// such endpoint, is a usage error.
impl From<certlab_lab::inventory::InventoryError> for CliError {
    fn from(e: certlab_lab::inventory::InventoryError) -> CliError {
        match e {
            certlab_lab::inventory::InventoryError::Invalid { .. }
            | certlab_lab::inventory::InventoryError::TooLarge { .. } => CliError::bad_input(e),
            e => CliError::infra(e),
        }
    }
}

/// An unknown plan name is a usage error; a plan file that cannot be parsed,
/// or is too large, is bad input.
impl From<certlab_suites::PlanError> for CliError {
    fn from(e: certlab_suites::PlanError) -> CliError {
        use certlab_suites::PlanError as P;
        match e {
            P::Unknown(..) | P::Read { .. } => CliError::infra(e),
            e => CliError::bad_input(e),
        }
    }
}

/// `text` with every password taken out: the password of a URL's userinfo
/// (`scheme://user:PASSWORD@host`) and the value of a `password=`-like
/// parameter (URL query or `key=value` connection string) become `***`.
pub fn redact(text: &str) -> String {
    use std::sync::OnceLock;
    static USERINFO: OnceLock<Option<regex::Regex>> = OnceLock::new();
    static PARAM: OnceLock<Option<regex::Regex>> = OnceLock::new();
    let userinfo = USERINFO.get_or_init(|| {
        regex::Regex::new(r"(?i)([a-z][a-z0-9+.\-]*://[^\s/?#@:]*:)[^\s/?#@]*@").ok()
    });
    let param = PARAM.get_or_init(|| {
        regex::Regex::new(r"(?i)\b([a-z_]*(?:password|passwd|pwd))=[^\s&;'\x22]*").ok()
    });
    let (Some(userinfo), Some(param)) = (userinfo, param) else {
        // The patterns are constants; should they not compile, say nothing rather than leak.
        return "<message withheld: redaction unavailable>".to_string();
    };
    let once = userinfo.replace_all(text, "${1}***@");
    param.replace_all(&once, "${1}=***").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords_and_password_params() {
        let cases = [
            (
                "cannot connect to postgres://u:secretpw@127.0.0.1:1/x: refused",
                "cannot connect to postgres://u:***@127.0.0.1:1/x: refused",
            ),
            (
                "postgresql://admin:p%40ss@db/x?sslmode=require&password=two",
                "postgresql://admin:***@db/x?sslmode=require&password=***",
            ),
            (
                "host=db user=u password=hunter2 dbname=x",
                "host=db user=u password=*** dbname=x",
            ),
            (
                "https://user@host/p and sqlite:///tmp/lab.db",
                "https://user@host/p and sqlite:///tmp/lab.db",
            ),
            ("ssh://root:toor@10.0.0.1", "ssh://root:***@10.0.0.1"),
            ("DB_PASSWORD=abc", "DB_PASSWORD=***"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn the_chain_is_printed_once_and_redacted() {
        let io = std::io::Error::other("connection refused");
        let e = CliError::infra(
            anyhow::Error::new(io).context("cannot connect to lab store postgres://u:pw@h/x"),
        );
        assert_eq!(
            e.to_string(),
            "cannot connect to lab store postgres://u:***@h/x: connection refused"
        );
        assert_eq!(e.exit_code(), exit::INFRA);
        assert_eq!(
            e.context("runs list").to_string(),
            "runs list: cannot connect to lab store postgres://u:***@h/x: connection refused"
        );
    }
}
