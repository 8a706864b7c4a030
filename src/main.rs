//! `certlab`: the command line. Wiring only: parsing, defaults, printing.

mod cli;
mod cmd;
mod display;
mod exit;
mod targets;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CERTLAB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let code = match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("certlab: error: {}", display::chain(e.as_ref()));
            e.downcast_ref::<cli::Failure>()
                .map(|f| f.code)
                .unwrap_or(exit::INFRA)
        }
    };
    std::process::exit(code);
}
