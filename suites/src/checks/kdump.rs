//! kdump: memory reserved for a crash kernel, the crash kernel loaded, and
//! — in a declared crash window — a real crash that leaves a vmcore.
//!
//! Facts, each from the kernel first and the distribution's tool second:
//! `crashkernel=` on `/proc/cmdline`; `/sys/kernel/kexec_crash_size` (bytes
//! reserved, 0 when none); `/sys/kernel/kexec_crash_loaded` (`1` once
//! `kexec -p` loaded a crash kernel: the service is armed); then Debian's
//! `kdump-config show` (`current state: ready to kdump`) or RHEL's
//! `kdumpctl status` (`Kdump is operational`).
//!
//! The crash case (`reboot = "crash"`) checks all of that first and does
//! not crash a machine that is not armed (`fail`); then
//! `echo c > /proc/sysrq-trigger`; after the machine is back, a directory
//! of the dump directory that was not there before (Debian
//! `/var/crash/YYYYMMDDHHMM/dump.YYYYMMDDHHMM`, RHEL
//! `/var/crash/<ip>-<date>/vmcore`) must hold a complete dump and a dmesg
//! file that shows the sysrq crash.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::{Before, Check, Rebooted};
use crate::requires::Requires;

/// The value of `crashkernel=` on a kernel command line, if any.
pub fn crashkernel_param(cmdline: &str) -> Option<&str> {
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("crashkernel="))
}

/// What `kdump-config show` (Debian/Ubuntu kdump-tools) says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KdumpConfigShow {
    /// `current state:` (`ready to kdump`, `Not ready to kdump`).
    pub state: Option<String>,
    /// `crashkernel addr:`; `None` when empty (nothing reserved).
    pub crashkernel_addr: Option<String>,
    /// `KDUMP_COREDIR:`, where dumps go.
    pub coredir: Option<String>,
    /// A `kexec command:` was recorded (the crash kernel was loaded).
    pub kexec_recorded: bool,
}

impl KdumpConfigShow {
    /// Ready: the tool's own word.
    pub fn ready(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("ready to kdump"))
    }
}

/// Parses `kdump-config show`.
pub fn parse_kdump_config_show(text: &str) -> KdumpConfigShow {
    let mut out = KdumpConfigShow::default();
    let mut in_kexec = false;
    for line in text.lines() {
        let t = line.trim();
        if in_kexec {
            if !t.is_empty() && !t.starts_with("no kexec command") {
                out.kexec_recorded = true;
            }
            in_kexec = false;
            continue;
        }
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "current state" => out.state = Some(value.to_string()).filter(|v| !v.is_empty()),
            "crashkernel addr" => {
                out.crashkernel_addr = Some(value.to_string()).filter(|v| !v.is_empty())
            }
            "KDUMP_COREDIR" => out.coredir = Some(value.to_string()).filter(|v| !v.is_empty()),
            "kexec command" => in_kexec = true,
            _ => {}
        }
    }
    out
}

/// What `kdumpctl status` (RHEL, Fedora, openEuler) says: `Some(true)` for
/// "Kdump is operational", `Some(false)` for "Kdump is not operational"
/// (with or without the newer `kdump: ` prefix), `None` otherwise.
pub fn parse_kdumpctl_status(text: &str) -> Option<bool> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let l = l.strip_prefix("kdump:").map_or(l, str::trim);
        if l.eq_ignore_ascii_case("Kdump is operational") {
            Some(true)
        } else if l.eq_ignore_ascii_case("Kdump is not operational") {
            Some(false)
        } else {
            None
        }
    })
}

/// The `path` line of RHEL's `/etc/kdump.conf` (where dumps go), if any.
pub fn kdump_conf_path(text: &str) -> Option<&str> {
    text.lines().find_map(|l| {
        let l = l.trim();
        let rest = l.strip_prefix("path")?;
        rest.starts_with([' ', '\t'])
            .then(|| rest.trim())
            .filter(|p| p.starts_with('/'))
    })
}

/// What was found about kdump on the machine.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdumpState {
    pub crashkernel: Option<String>,
    /// `None`: the kernel has no `kexec_crash_size` (no kexec support).
    pub crash_size: Option<u64>,
    pub loaded: Option<bool>,
    /// The service's own word: (tool, ready).
    pub service: Option<(String, bool)>,
    /// Where dumps go.
    pub coredir: String,
}

impl KdumpState {
    /// Why the machine cannot take a dump; empty when it can.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        match self.crash_size {
            None => p.push(
                "/sys/kernel/kexec_crash_size is missing: the kernel has no kexec crash support"
                    .to_string(),
            ),
            Some(0) => p.push(format!(
                "no memory is reserved for a crash kernel (kexec_crash_size 0; {})",
                match &self.crashkernel {
                    Some(v) =>
                        format!("crashkernel={v} is on the command line but was not honoured"),
                    None => "no crashkernel= on the kernel command line".to_string(),
                }
            )),
            Some(_) => {}
        }
        match self.loaded {
            Some(true) => {}
            Some(false) => p.push(
                "no crash kernel is loaded (kexec_crash_loaded 0): the kdump service is not armed"
                    .to_string(),
            ),
            None => p.push("/sys/kernel/kexec_crash_loaded is missing".to_string()),
        }
        if let Some((tool, false)) = &self.service {
            p.push(format!("{tool} says kdump is not ready"));
        }
        p
    }

    /// One line of what was found.
    pub fn summary(&self) -> String {
        format!(
            "crashkernel={}, {} reserved, crash kernel {}, {}; dumps go to {}",
            self.crashkernel.as_deref().unwrap_or("(none)"),
            self.crash_size
                .map_or("nothing".to_string(), |s| format!("{} MiB", s >> 20)),
            match self.loaded {
                Some(true) => "loaded",
                Some(false) => "not loaded",
                None => "state unknown",
            },
            match &self.service {
                Some((tool, true)) => format!("{tool}: ready"),
                Some((tool, false)) => format!("{tool}: not ready"),
                None => "no kdump-config or kdumpctl to ask".to_string(),
            },
            self.coredir
        )
    }
}

/// Reads every kdump fact the checks judge.
pub fn read_state(ctx: &CaseCtx<'_>) -> Result<KdumpState, CaseError> {
    let cmdline = ctx.read("/proc/cmdline")?.unwrap_or_default();
    let num = |s: Option<String>| s.and_then(|s| s.trim().parse::<u64>().ok());
    let crash_size = num(ctx.read("/sys/kernel/kexec_crash_size")?);
    let loaded = num(ctx.read("/sys/kernel/kexec_crash_loaded")?).map(|v| v == 1);
    let mut coredir = None;
    let service = if ctx.has_command("kdump-config")? {
        let o = ctx.run("kdump-config show")?;
        let show = parse_kdump_config_show(&o.stdout_str());
        coredir = show.coredir.clone();
        Some(("kdump-config show".to_string(), show.ready()))
    } else if ctx.has_command("kdumpctl")? {
        let o = ctx.run("kdumpctl status")?;
        // kdumpctl writes its verdict to stderr on some releases.
        let text = format!("{}\n{}", o.stdout_str(), o.stderr_str());
        if let Some(conf) = ctx.read("/etc/kdump.conf")? {
            coredir = kdump_conf_path(&conf).map(str::to_string);
        }
        parse_kdumpctl_status(&text).map(|ok| ("kdumpctl status".to_string(), ok))
    } else {
        None
    };
    Ok(KdumpState {
        crashkernel: crashkernel_param(&cmdline).map(str::to_string),
        crash_size,
        loaded,
        service,
        coredir: coredir.unwrap_or_else(|| "/var/crash".to_string()),
    })
}

/// `kdump.config`: memory reserved and the crash kernel loaded — without
/// crashing anything.
pub struct Config;

impl Check for Config {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let state = read_state(ctx)?;
        let problems = state.problems();
        if problems.is_empty() {
            Ok(CaseOutcome::pass(format!(
                "kdump is armed: {}",
                state.summary()
            )))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{}; {}",
                problems.join("; "),
                state.summary()
            )))
        }
    }
}

/// What the crash case noted before the crash.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashBefore {
    pub coredir: String,
    /// The dump directory's entries before the crash.
    pub entries: BTreeSet<String>,
}

/// The dump a kdump directory holds, by its file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpFiles {
    /// A complete dump (`vmcore`, `dump.*`) and its dmesg file, if any.
    Complete {
        dump: String,
        dmesg: Option<String>,
    },
    /// The dump was cut off (`vmcore-incomplete`, `dump-incomplete`).
    Incomplete(String),
    None,
}

/// Classifies the files of one dump directory.
pub fn dump_files(names: &[String]) -> DumpFiles {
    if let Some(n) = names.iter().find(|n| n.contains("incomplete")) {
        return DumpFiles::Incomplete(n.clone());
    }
    let dump = names
        .iter()
        .find(|n| *n == "vmcore" || n.starts_with("dump.") || n.starts_with("vmcore.flat"));
    let dmesg = names
        .iter()
        .find(|n| n.starts_with("dmesg") || n.starts_with("vmcore-dmesg"));
    match dump {
        Some(d) => DumpFiles::Complete {
            dump: d.clone(),
            dmesg: dmesg.cloned(),
        },
        None => DumpFiles::None,
    }
}

/// Whether a crash kernel's copy of the log shows the sysrq crash
/// (`sysrq: Trigger a crash`, older `SysRq : Trigger a crash`, and the
/// panic line `sysrq triggered crash`).
pub fn shows_sysrq_crash(dmesg: &str) -> bool {
    let l = dmesg.to_ascii_lowercase();
    l.contains("trigger a crash") || l.contains("sysrq triggered crash")
}

/// `kdump.crash` (opt-in: `params.enabled = true`): a real crash in a
/// declared crash window leaves a vmcore.
pub struct Crash;

impl Check for Crash {
    /// The crash is `echo c > /proc/sysrq-trigger`, which only root may write.
    fn requires(&self) -> Requires {
        Requires::root()
    }

    fn run(&self, _ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        Ok(CaseOutcome::skip(
            "the case crashes the machine: it runs only in a declared crash window under the orchestrator",
        ))
    }

    fn before(&self, ctx: &CaseCtx<'_>) -> Result<Before, CaseError> {
        if !ctx.param_bool("enabled", false) {
            return Ok(Before::Stop(CaseOutcome::skip(
                "opt-in: the plan must set params.enabled = true to let the case crash the machine",
            )));
        }
        let state = read_state(ctx)?;
        let problems = state.problems();
        if !problems.is_empty() {
            return Ok(Before::Stop(CaseOutcome::fail(format!(
                "kdump is not armed, so the machine was not crashed: {}; {}",
                problems.join("; "),
                state.summary()
            ))));
        }
        let entries = ctx
            .list_dir(&state.coredir)?
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.name)
            .collect();
        let snap = CrashBefore {
            coredir: state.coredir,
            entries,
        };
        serde_json::to_value(&snap)
            .map(Before::Go)
            .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))
    }

    fn trigger(&self, ctx: &CaseCtx<'_>, _before: &serde_json::Value) -> Result<(), CaseError> {
        match ctx.run_with_timeout("echo c > /proc/sysrq-trigger", Duration::from_secs(30)) {
            // The session dies with the kernel, or goes silent.
            Err(CaseError::Timeout { .. }) => Ok(()),
            Err(e) if e.is_infrastructure() => Ok(()),
            Err(e) => Err(e),
            Ok(o) if !o.success() => Err(CaseError::Infra(format!(
                "the crash trigger failed (exit {:?}): {}",
                o.exit,
                o.stderr_str().trim()
            ))),
            Ok(_) => Ok(()),
        }
    }

    fn after(
        &self,
        ctx: &CaseCtx<'_>,
        before: &serde_json::Value,
        reboot: &Rebooted,
    ) -> Result<CaseOutcome, CaseError> {
        let before: CrashBefore = serde_json::from_value(before.clone())
            .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))?;
        let mut problems = Vec::new();
        if let Some(why) = &reboot.recovered {
            problems.push(format!(
                "the machine did not come back by itself (the crash kernel should save the dump and reboot); it was power-cycled through its BMC: {why}"
            ));
        }
        let now = ctx.list_dir(&before.coredir)?.unwrap_or_default();
        let new: Vec<String> = now
            .iter()
            .filter(|e| !before.entries.contains(&e.name))
            .map(|e| e.name.clone())
            .collect();
        let mut found = Vec::new();
        let mut shown = false;
        for dir in &new {
            let path = format!("{}/{dir}", before.coredir.trim_end_matches('/'));
            let names: Vec<String> = ctx
                .list_dir(&path)?
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.name)
                .collect();
            match dump_files(&names) {
                DumpFiles::Complete { dump, dmesg } => {
                    let mut what = format!("{path}/{dump}");
                    if let Some(d) = dmesg {
                        let text = ctx.read(&format!("{path}/{d}"))?.unwrap_or_default();
                        if shows_sysrq_crash(&text) {
                            shown = true;
                            what.push_str(&format!(" ({d} shows the sysrq crash)"));
                        } else {
                            what.push_str(&format!(" ({d} does not show the sysrq crash)"));
                        }
                    }
                    found.push(what);
                }
                DumpFiles::Incomplete(n) => {
                    problems.push(format!("the dump in {path} is incomplete ({n})"))
                }
                DumpFiles::None => {}
            }
        }
        if found.is_empty() {
            problems.push(format!(
                "no new dump in {} after the crash ({} entries before, {} now)",
                before.coredir,
                before.entries.len(),
                now.len()
            ));
        } else if !shown {
            problems.push(format!(
                "no dmesg file of the new dump shows the sysrq crash: {}",
                found.join(", ")
            ));
        }
        let boots = format!("boot id {} → {}", reboot.old_boot, reboot.new_boot);
        if problems.is_empty() {
            Ok(CaseOutcome::pass(format!(
                "the sysrq crash left {}; {boots}",
                found.join(", ")
            )))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{}; {boots}",
                problems.join("; ")
            )))
        }
    }
}
