//! Hardware watchdogs: one exists (`/sys/class/watchdog/watchdogN` with a
//! `/dev/watchdogN`, its `identity` and `timeout`), and — opt-in, in a
//! declared crash window — it resets a machine that stops feeding it.
//!
//! The software watchdog (`softdog`, identity "Software Watchdog") is not
//! a hardware one: it dies with the kernel it runs in.

use serde::{Deserialize, Serialize};

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::{Before, Check, Rebooted};
use crate::requires::Requires;

/// One watchdog device as sysfs describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watchdog {
    /// `watchdog0`.
    pub name: String,
    pub identity: Option<String>,
    /// Seconds; `None` when the driver does not say.
    pub timeout: Option<u64>,
    /// `active` / `inactive`; `None` when the driver does not say.
    pub state: Option<String>,
    /// `/dev/<name>` exists.
    pub dev: bool,
}

impl Watchdog {
    /// A hardware watchdog (not softdog).
    pub fn is_hardware(&self) -> bool {
        !self
            .identity
            .as_deref()
            .is_some_and(|i| i.eq_ignore_ascii_case("Software Watchdog"))
    }

    fn describe(&self) -> String {
        format!(
            "{} ({}, timeout {}, {}{})",
            self.name,
            self.identity.as_deref().unwrap_or("no identity"),
            self.timeout
                .map_or("unknown".to_string(), |t| format!("{t} s")),
            self.state.as_deref().unwrap_or("state unknown"),
            if self.dev { "" } else { ", no /dev node" }
        )
    }
}

/// Every watchdog the kernel registered.
pub fn watchdogs(ctx: &CaseCtx<'_>) -> Result<Vec<Watchdog>, CaseError> {
    let Some(entries) = ctx.list_dir("/sys/class/watchdog")? else {
        return Ok(Vec::new());
    };
    let dev: Vec<String> = ctx
        .list_dir("/dev")?
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut out = Vec::new();
    let mut names: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n.starts_with("watchdog"))
        .collect();
    names.sort();
    for name in names {
        let base = format!("/sys/class/watchdog/{name}");
        let text = |f: &str| -> Result<Option<String>, CaseError> {
            Ok(ctx
                .read(&format!("{base}/{f}"))?
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()))
        };
        out.push(Watchdog {
            identity: text("identity")?,
            timeout: text("timeout")?.and_then(|t| t.parse().ok()),
            state: text("state")?,
            dev: dev.contains(&name),
            name,
        });
    }
    Ok(out)
}

/// `watchdog.present`: a hardware watchdog is registered, with a device.
pub struct Present;

impl Check for Present {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let all = watchdogs(ctx)?;
        let hw: Vec<&Watchdog> = all.iter().filter(|w| w.is_hardware() && w.dev).collect();
        let list = all
            .iter()
            .map(Watchdog::describe)
            .collect::<Vec<_>>()
            .join("; ");
        if all.is_empty() {
            return Ok(CaseOutcome::fail(
                "no watchdog is registered (/sys/class/watchdog is empty or missing): load the platform's watchdog driver (iTCO_wdt, sp5100_tco, sbsa_gwdt, ipmi_watchdog …)",
            ));
        }
        if hw.is_empty() {
            return Ok(CaseOutcome::fail(format!(
                "no hardware watchdog with a device node: {list}"
            )));
        }
        Ok(CaseOutcome::pass(format!(
            "{} hardware watchdog(s): {list}",
            hw.len()
        )))
    }
}

/// What the reset case noted before starving the watchdog.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetBefore {
    pub watchdog: Watchdog,
}

/// The command that opens the watchdog, feeds it once and closes it
/// without the magic `V`: the driver keeps it running and nobody feeds it.
pub fn starve_command(name: &str) -> String {
    format!(": certlab watchdog-starve; exec 3>/dev/{name} && printf 1 >&3 && exec 3>&-")
}

/// `watchdog.reset` (opt-in: `params.enabled = true`): a watchdog nobody
/// feeds resets the machine within its timeout.
pub struct Reset;

impl Check for Reset {
    /// Opening /dev/watchdog is for root only.
    fn requires(&self) -> Requires {
        Requires::root()
    }

    fn run(&self, _ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        Ok(CaseOutcome::skip(
            "the case resets the machine: it runs only in a declared crash window under the orchestrator",
        ))
    }

    fn before(&self, ctx: &CaseCtx<'_>) -> Result<Before, CaseError> {
        if !ctx.param_bool("enabled", false) {
            return Ok(Before::Stop(CaseOutcome::skip(
                "opt-in: the plan must set params.enabled = true to let a starved watchdog reset the machine",
            )));
        }
        let all = watchdogs(ctx)?;
        let Some(w) = all.iter().find(|w| w.is_hardware() && w.dev) else {
            return Ok(Before::Stop(CaseOutcome::skip(format!(
                "no hardware watchdog with a device node to starve ({} registered)",
                all.len()
            ))));
        };
        if w.state.as_deref() == Some("active") {
            return Ok(Before::Stop(CaseOutcome::skip(format!(
                "{} is already active (fed by systemd or a daemon), so it cannot be starved from here",
                w.describe()
            ))));
        }
        serde_json::to_value(ResetBefore {
            watchdog: w.clone(),
        })
        .map(Before::Go)
        .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))
    }

    fn trigger(&self, ctx: &CaseCtx<'_>, before: &serde_json::Value) -> Result<(), CaseError> {
        let b: ResetBefore = serde_json::from_value(before.clone())
            .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))?;
        match ctx.run(&starve_command(&b.watchdog.name)) {
            Ok(o) if !o.success() => Err(CaseError::Infra(format!(
                "{} could not be opened (exit {:?}): {}",
                b.watchdog.name,
                o.exit,
                o.stderr_str().trim()
            ))),
            Ok(_) => Ok(()),
            Err(e) if e.is_infrastructure() => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn after(
        &self,
        _ctx: &CaseCtx<'_>,
        before: &serde_json::Value,
        reboot: &Rebooted,
    ) -> Result<CaseOutcome, CaseError> {
        let b: ResetBefore = serde_json::from_value(before.clone())
            .map_err(|e| CaseError::Infra(format!("snapshot: {e}")))?;
        let sel = match &reboot.sel {
            Some(Ok(entries)) => {
                let wd: Vec<String> = entries
                    .iter()
                    .filter(|e| {
                        e.sensor_type
                            .as_deref()
                            .is_some_and(|t| t.to_ascii_lowercase().contains("watchdog"))
                    })
                    .map(|e| format!("SEL {}: {}", e.id, e.message))
                    .collect();
                if wd.is_empty() {
                    "no watchdog entry in the SEL".to_string()
                } else {
                    wd.join(", ")
                }
            }
            Some(Err(e)) => format!("the SEL could not be read: {e}"),
            None => "no BMC event log".to_string(),
        };
        let boots = format!("boot id {} → {}", reboot.old_boot, reboot.new_boot);
        match &reboot.recovered {
            Some(why) => Ok(CaseOutcome::fail(format!(
                "{} was starved but did not reset the machine; it was power-cycled through its BMC: {why}; {sel}",
                b.watchdog.describe()
            ))),
            None => Ok(CaseOutcome::pass(format!(
                "{} reset the starved machine: {boots}; {sel}",
                b.watchdog.describe()
            ))),
        }
    }
}
