//! `certlab agent …`: helpers that run on the system under test.

use crate::error::{failure, Result};
use crate::exit;

#[derive(Debug, clap::Subcommand)]
pub enum AgentCmd {
    /// Pattern-verifying memory test; prints a report the mem-pattern check reads.
    Memtest {
        #[arg(long)]
        mib: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

pub fn run(cmd: AgentCmd) -> Result<i32> {
    match cmd {
        AgentCmd::Memtest { mib, seed } => {
            let report = certlab_suites::checks::memtest::run(mib, seed)
                .map_err(|e| failure(exit::INFRA, e))?;
            print!("{}", report.to_text());
            Ok(if report.errors() == 0 {
                exit::OK
            } else {
                exit::TEST_FAILURE
            })
        }
    }
}
