//! `command`: runs a shell command on the target and passes when it exits
//! with the expected status. Not used by the shipped plans: it is for lab
//! plans of one's own (a site-specific probe) and for the orchestrator's
//! tests, which need a case that does something to the machine (reboot it,
//! crash it) through the one path a case has to it.
//!
//! Parameters: `command` (required, run with `sh -c` by the target) and
//! `exit` (the expected exit status, default 0).

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

pub struct Command;

impl Check for Command {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let command = ctx.param_str("command", "");
        if command.trim().is_empty() {
            return Err(CaseError::Infra(
                "the case has no `command` parameter (a string) for the `command` check".into(),
            ));
        }
        let expected = ctx.param_u64("exit", 0);
        let out = ctx.run(&command)?;
        match out.exit {
            Some(code) if u64::try_from(code).ok() == Some(expected) => {
                Ok(CaseOutcome::pass(format!("`{command}` exited {code}")))
            }
            Some(code) => Ok(CaseOutcome::fail(format!(
                "`{command}` exited {code}, expected {expected}: {}",
                last_line(&out.stderr_str())
            ))),
            None => Ok(CaseOutcome::fail(format!(
                "`{command}` was killed by a signal, expected exit {expected}"
            ))),
        }
    }
}

fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use certlab_hwdb::{HardwareProfile, Inventory};
    use certlab_lab::Local;
    use certlab_reports::Verdict;

    use super::*;
    use crate::MemorySink;

    fn run(params: &str) -> Result<CaseOutcome, CaseError> {
        let params: toml::Table = toml::from_str(params).unwrap();
        let target = Local::default();
        let sink = MemorySink::default();
        let (profile, inventory) = (HardwareProfile::default(), Inventory::default());
        let ctx = CaseCtx::new(
            &target,
            &profile,
            &inventory,
            &params,
            &sink,
            Duration::from_secs(10),
        );
        let out = Command.run(&ctx);
        if out.is_ok() {
            assert_eq!(ctx.take_evidence().len(), 1, "the command is evidence");
        }
        out
    }

    #[test]
    fn the_exit_status_decides() {
        assert_eq!(run("command = 'true'").unwrap().verdict, Verdict::Pass);
        let o = run("command = 'echo nope >&2; exit 3'").unwrap();
        assert_eq!(o.verdict, Verdict::Fail);
        assert!(
            o.reason.contains("exited 3, expected 0: nope"),
            "{}",
            o.reason
        );
        let o = run("command = 'exit 3'\nexit = 3").unwrap();
        assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    }

    #[test]
    fn a_case_without_a_command_is_an_error_not_a_verdict() {
        let e = run("exit = 0").unwrap_err();
        assert!(!e.is_infrastructure());
        assert!(e.to_string().contains("`command` parameter"), "{e}");
    }
}
