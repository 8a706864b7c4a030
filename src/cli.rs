//! The command line: clap types and dispatch. Each area's subcommands and
//! their wiring live in `crate::cmd::<area>`; nothing there imports this file.

use clap::{Parser, Subcommand};

use crate::cmd;
use crate::error::Result;

#[derive(Debug, Parser)]
#[command(
    name = "certlab",
    version,
    about = "Hardware compatibility certification lab",
    after_help = "Exit codes: 0 ok; 1 product fail / incompatible; 2 infrastructure or usage error; \
                  3 bad input (corrupt, tampered, untrusted or unreadable file); 130 interrupted. \
                  `lab exec` exits with the remote command's status, 255 when it could not run it."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Certify a machine with a plan and write results, reports and a signed bundle.
    Certify(cmd::certify::CertifyArgs),
    /// Write a new ed25519 signing key pair.
    Keygen(cmd::certify::KeygenArgs),
    /// Signed result bundles.
    #[command(subcommand)]
    Bundle(cmd::bundle::BundleCmd),
    /// Hardware identification: CPU platform, PCI devices and drivers, accelerators, DMI.
    #[command(subcommand)]
    Hwdb(cmd::hwdb::HwdbCmd),
    /// RAS: classify a kernel log into hardware-error and kernel-failure events.
    #[command(subcommand)]
    Ras(cmd::ras::RasCmd),
    /// Performance: compare a candidate's benchmark samples with a baseline's.
    #[command(subcommand)]
    Perf(cmd::perf::PerfCmd),
    /// The lab: inventory and machines.
    #[command(subcommand)]
    Lab(cmd::lab::LabCmd),
    /// Kernel ABI: check drivers against kernels, diff kernels, manage allowlists.
    #[command(subcommand)]
    Kabi(cmd::kabi::KabiCmd),
    /// The orchestrator's job queue (carried out by `certlab lab daemon`).
    #[command(subcommand)]
    Job(cmd::job::JobCmd),
    /// The lab's machines as the orchestrator sees them: state and health.
    #[command(subcommand)]
    Machine(cmd::job::MachineCmd),
    /// Runs recorded in the lab store.
    #[command(subcommand)]
    Runs(cmd::runs::RunsCmd),
    /// The certification portal's accounts and keys.
    #[command(subcommand)]
    Portal(cmd::portal::PortalCmd),
    /// Serve the certification portal (HTML pages and the JSON API).
    Serve(cmd::serve::ServeArgs),
    /// Helpers that run on the system under test.
    #[command(subcommand, hide = true)]
    Agent(cmd::agent::AgentCmd),
}

impl Cli {
    /// Whether a closed standard output (`certlab runs show … | head`)
    /// should end this command quietly, as it ends `cat`, rather than be
    /// reported as an error. Not for the commands that hold SSH sessions
    /// (libssh2 writes its sockets without `MSG_NOSIGNAL`, and a dropped
    /// peer must stay an error the command reports) or serve for long.
    pub fn quiet_on_closed_stdout(&self) -> bool {
        !matches!(
            self.command,
            Command::Certify(_)
                | Command::Serve(_)
                | Command::Agent(_)
                | Command::Lab(cmd::lab::LabCmd::Daemon(_))
                | Command::Machine(
                    cmd::job::MachineCmd::Health { .. } | cmd::job::MachineCmd::Maintenance { .. }
                )
        )
    }

    /// A one-shot command that reads a whole kernel's worth of inputs on
    /// several threads (`kabi`): its allocator may keep memory in hand
    /// ([`crate::tune_allocator_for_a_batch`]). Never a long-lived
    /// process: the daemon and the portal keep glibc's defaults.
    pub fn is_batch(&self) -> bool {
        matches!(self.command, Command::Kabi(_))
    }
}

/// Runs the parsed command line and returns the exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Certify(a) => cmd::certify::certify(a),
        Command::Keygen(a) => cmd::certify::keygen(a),
        Command::Bundle(c) => cmd::bundle::run(c),
        Command::Runs(c) => cmd::runs::run(c),
        Command::Portal(c) => cmd::portal::run(c),
        Command::Serve(a) => cmd::serve::serve(a),
        Command::Job(c) => cmd::job::run(c),
        Command::Machine(c) => cmd::job::run_machine(c),
        Command::Kabi(c) => cmd::kabi::run(c),
        Command::Hwdb(c) => cmd::hwdb::run(c),
        Command::Lab(c) => cmd::lab::run(c),
        Command::Ras(c) => cmd::ras::run(c),
        Command::Perf(c) => cmd::perf::run(c),
        Command::Agent(c) => cmd::agent::run(c),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Any environment variable may hold a secret (CERTLAB_DB does): `--help`
    /// shows none of their values, in any subcommand.
    #[test]
    fn every_env_backed_argument_hides_its_value() {
        fn walk(cmd: &clap::Command, path: &str, seen: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if let Some(var) = a.get_env() {
                    assert!(
                        a.is_hide_env_values_set(),
                        "{path} --{} shows the value of {var:?} in --help",
                        a.get_id()
                    );
                    seen.push(format!("{path} {var:?}"));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), seen);
            }
        }
        let mut seen = Vec::new();
        walk(&Cli::command(), "certlab", &mut seen);
        assert!(
            seen.iter().any(|s| s.contains("CERTLAB_DB")),
            "the walk reaches --db: {seen:?}"
        );
    }
}
