//! `certlab`: the command line. Wiring only: parsing, defaults, printing.

mod cli;
mod cmd;
mod common;
mod display;
mod error;
mod exit;
mod format;
mod targets;

use clap::Parser;

/// stderr for tracing, with every line passed through [`error::redact`].
struct RedactedStderr;

impl std::io::Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = error::redact(&String::from_utf8_lossy(buf));
        std::io::stderr().write_all(text.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

fn main() {
    let args = cli::Cli::parse();
    if args.quiet_on_closed_stdout() {
        // Rust starts with SIGPIPE ignored, so a write to a closed pipe is an
        // error and `println!` panics on it; the default disposition ends the
        // process the way every Unix filter ends.
        restore_default_sigpipe();
    }
    if args.is_batch() {
        tune_allocator_for_a_batch();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("CERTLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactedStderr)
        .init();
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            // The one place an error reaches the user: its chain, redacted.
            eprintln!("certlab: error: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// glibc grows each thread's arena a little at a time, one `mprotect` per
/// step (and in a threaded process each one flushes every CPU's TLB): a
/// warm `kabi check` of a kernel's 4,000 modules spent 7–10 ms of ~50
/// there. A top pad of 64 MiB makes a new arena commit that much address
/// space at once and `sbrk` ask for it in one step; pages are still
/// touched (and counted) only as they are used. Only for one-shot batch
/// commands ([`cli::Cli::is_batch`]): the pad is also what trimming keeps,
/// which a long-lived process with many threads should not hold.
#[allow(unsafe_code)]
fn tune_allocator_for_a_batch() {
    // SAFETY: mallopt takes two integers and changes a malloc parameter
    // under glibc's own lock; no pointer is involved. Called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

#[allow(unsafe_code)]
fn restore_default_sigpipe() {
    // SAFETY: called before any other thread exists; SIG_DFL is a valid
    // disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
