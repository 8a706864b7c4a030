//! Exit codes of the `certlab` binary: documented, stable, distinct.
//! [`crate::error::CliError::exit_code`] maps every error to one of them.

/// Everything selected passed (skips allowed); a verification succeeded.
pub const OK: i32 = 0;
/// At least one case failed (or crashed the machine): the product did not pass.
/// `kabi`: a module is incompatible, or a diff breaks the allowlist.
pub const TEST_FAILURE: i32 = 1;
/// Infrastructure or usage error: nothing can be said about the product.
/// (clap also exits 2 on a usage error.)
pub const INFRA: i32 = 2;
/// A bundle, allowlist, plan, key or other input file is corrupt, tampered
/// with, untrusted, unreadable or not what it claims.
pub const BAD_INPUT: i32 = 3;
/// Interrupted by a signal; what was recorded is kept and the run marked interrupted.
pub const INTERRUPTED: i32 = 130;
//
// `lab exec` follows ssh: it exits with the remote command's own status, and
// 255 when certlab itself could not run it (`CliError::new(255, e)`).
