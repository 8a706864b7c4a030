//! Exit codes of the `certlab` binary: documented, stable, distinct.

/// Everything selected passed (skips allowed); a verification succeeded.
pub const OK: i32 = 0;
/// At least one case failed (or crashed the machine): the product did not pass.
pub const TEST_FAILURE: i32 = 1;
/// Infrastructure or usage error: nothing can be said about the product.
/// (clap also exits 2 on a usage error.)
pub const INFRA: i32 = 2;
/// A bundle, allowlist or other input file is corrupt, tampered with or not what it claims.
pub const BAD_INPUT: i32 = 3;
/// Interrupted by a signal; what was recorded is kept and the run marked interrupted.
pub const INTERRUPTED: i32 = 130;
