//! The reboot, kdump and watchdog cases under the orchestrator, on a
//! simulated machine (its BMC and OS in-process, from a real Intel
//! Sapphire Rapids server's evidence), through the real daemon:
//! - `reboot.warm` (the OS's reboot) and `reboot.cold` (a power cycle
//!   through the BMC) note the machine before, and pass when it comes back
//!   with a new boot id, the same PCI drivers and links, no new kernel-log
//!   trouble and no critical SEL entry;
//! - `kdump.config` passes (crashkernel reserved, crash kernel loaded);
//! - `kdump.crash` crashes the kernel with `echo c > /proc/sysrq-trigger`
//!   inside its declared crash window: the simulated crash kernel saves a
//!   dump and reboots, and the case passes on the new dump — not `crash`;
//! - `watchdog.present` passes, and the opt-in `watchdog.reset` starves
//!   the watchdog, which resets the machine (a SEL watchdog entry);
//! - every declared reboot is logged as a `rebooted` event;
//! - a watchdog that does not reset the machine (its starving swallowed)
//!   leaves the machine up past the crash window: the orchestrator
//!   power-cycles it, and the case is `fail` (not `crash`), with the
//!   console and SEL kept.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::access::LabAccess;
use certlab_harness::daemon::{BoxFuture, MachineAccess};
use certlab_harness::lifecycle::JobState;
use certlab_harness::sut::SutControl;
use certlab_harness::Store;
use certlab_lab::Lab;
use certlab_lab::{DirEntry, ExecOutput, Target, TargetError};
use certlab_reports::{Evidence, Verdict};
use time::OffsetDateTime;

const PLAN: &str = r#"
[plan]
id = "reboot-test"
version = "1"
title = "reboots, kdump and the watchdog"

[[case]]
id = "reboot.warm"
check = "reboot"
title = "Warm reboot"
blocker = true
timeout_s = 60
reboots = true
params.link_wait_s = 5

[[case]]
id = "reboot.cold"
check = "reboot"
title = "Cold power cycle through the BMC"
blocker = true
timeout_s = 60
reboots = true
reboot = "power-cycle"
params.link_wait_s = 5

[[case]]
id = "kdump.config"
check = "kdump-config"
title = "kdump armed"
blocker = true
timeout_s = 30

[[case]]
id = "kdump.crash"
check = "kdump-crash"
title = "A sysrq crash leaves a vmcore"
blocker = true
timeout_s = 60
reboots = true
reboot = "crash"
params.enabled = true

[[case]]
id = "watchdog.present"
check = "watchdog-present"
title = "A hardware watchdog"
blocker = true
timeout_s = 30

[[case]]
id = "watchdog.reset"
check = "watchdog-reset"
title = "A starved watchdog resets the machine"
blocker = true
timeout_s = 60
reboots = true
reboot = "crash"
params.enabled = true
"#;

/// Runs `plan` once on the lab's machine through the daemon, with `access`;
/// returns the store, the run id and the temporary directory.
async fn run_plan(
    plan: &str,
    access: impl FnOnce(LabAccess) -> Arc<dyn MachineAccess>,
) -> Result<(Store, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let lab_file = dir.path().join("lab.toml");
    std::fs::write(
        &lab_file,
        common::one_sim_machine_lab("x86_64", "intel-spr-h100", 5),
    )?;
    let lab = Lab::load(&lab_file)?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let lab_access = LabAccess::new(lab, &store);
    store
        .sync_machines(&lab_access.facts(), OffsetDateTime::now_utc())
        .await?;
    store
        .submit_job(
            &common::test_job("j1", "reboot-test.toml", Some(plan), "name=sim-0001")?,
            OffsetDateTime::now_utc(),
        )
        .await?;
    let config = common::daemon_config(&dir.path().join("runs"), 1, 1);
    let state = common::run_daemon_until_done(
        &store,
        access(lab_access),
        config,
        "j1",
        Duration::from_secs(180),
    )
    .await?;
    let JobState::Finished { run, .. } = &state else {
        anyhow::bail!("{state:?}")
    };
    Ok((store, run.clone(), dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_kdump_and_watchdog_cases_pass_on_a_sim_machine() -> Result<()> {
    let (store, run, dir) = run_plan(PLAN, |a| Arc::new(a)).await?;
    let run = &run;
    let detail = store.get_run(run).await?.context("run")?;
    for c in &detail.cases {
        ensure!(
            c.verdict == Verdict::Pass,
            "{}: {} {}",
            c.id,
            c.verdict,
            c.reason
        );
    }
    ensure!(detail.cases.len() == 6, "{:?}", detail.cases.len());
    let case = |id: &str| {
        detail
            .cases
            .iter()
            .find(|c| c.id == id)
            .context(id.to_string())
    };
    let evidence_dir = dir.path().join("runs").join(run).join("evidence");
    let bmc_text = |id: &str| -> Result<String> {
        let mut out = String::new();
        for e in &case(id)?.evidence {
            if let Evidence::Bmc { content, .. } = e {
                out.push_str(&std::fs::read_to_string(
                    evidence_dir.join(&content.sha256),
                )?);
            }
        }
        Ok(out)
    };
    // The cold boot went through the BMC: its SEL shows the power cycle.
    let cold = case("reboot.cold")?;
    ensure!(
        cold.reason.contains("power cycle through the BMC"),
        "{}",
        cold.reason
    );
    ensure!(
        bmc_text("reboot.cold")?.contains("power on/cycle"),
        "{}",
        bmc_text("reboot.cold")?
    );
    // The warm one went through the OS: no power action in its SEL.
    let warm = case("reboot.warm")?;
    ensure!(
        warm.reason.starts_with("warm reboot: boot id"),
        "{}",
        warm.reason
    );
    let warm_sel = bmc_text("reboot.warm")?;
    ensure!(
        warm_sel.contains("System Boot Initiated") && !warm_sel.contains("Power Unit"),
        "{warm_sel}"
    );
    // The crash left a Debian-style dump whose log shows the sysrq crash,
    // and the BMC logged the kernel's critical stop.
    let crash = case("kdump.crash")?;
    ensure!(
        crash.reason.contains("shows the sysrq crash") && crash.reason.contains("/var/crash/"),
        "{}",
        crash.reason
    );
    ensure!(
        bmc_text("kdump.crash")?.contains("critical stop"),
        "{}",
        bmc_text("kdump.crash")?
    );
    let reset = case("watchdog.reset")?;
    ensure!(
        reset.reason.contains("reset the starved machine")
            && reset.reason.contains("Timer expired"),
        "{}",
        reset.reason
    );
    let rebooted = store
        .events(run)
        .await?
        .into_iter()
        .filter(|e| e.kind == "rebooted" && e.payload["declared"] == true)
        .count();
    ensure!(rebooted == 4, "{rebooted} declared reboots logged");
    store.close().await;
    Ok(())
}

/// The sim machine, whose watchdog is never starved: the starve command
/// is answered as done and does nothing (a watchdog that does not bite).
struct Toothless {
    lab: LabAccess,
}

struct ToothlessTarget {
    inner: Arc<dyn Target>,
}

impl Target for ToothlessTarget {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        if command.starts_with(": certlab watchdog-starve") {
            return self.inner.exec("uname -r", timeout);
        }
        self.inner.exec(command, timeout)
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        self.inner.read_file(path)
    }
    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        self.inner.list_dir(path)
    }
    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        self.inner.read_link(path)
    }
    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError> {
        self.inner.put_file(path, data, mode)
    }
}

impl MachineAccess for Toothless {
    fn target<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>> {
        Box::pin(async move {
            let inner = self.lab.target(machine).await?;
            Ok(Arc::new(ToothlessTarget { inner }) as Arc<dyn Target>)
        })
    }
    fn health_check<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.lab.health_check(machine)
    }
    fn sut<'a>(
        &'a self,
        machine: &'a str,
        target: Arc<dyn Target>,
        out_dir: std::path::PathBuf,
    ) -> BoxFuture<'a, Option<Arc<dyn SutControl>>> {
        self.lab.sut(machine, target, out_dir)
    }
}

const TOOTHLESS_PLAN: &str = r#"
[plan]
id = "reboot-test"
version = "1"
title = "a watchdog that does not bite"

[[case]]
id = "watchdog.reset"
check = "watchdog-reset"
title = "A starved watchdog resets the machine"
blocker = true
timeout_s = 3
reboots = true
reboot = "crash"
params.enabled = true

[[case]]
id = "kdump.config"
check = "kdump-config"
title = "kdump armed (the run goes on)"
blocker = true
timeout_s = 30
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watchdog_that_does_not_reset_fails_and_the_machine_is_brought_back() -> Result<()> {
    let (store, run, _dir) = run_plan(TOOTHLESS_PLAN, |lab| Arc::new(Toothless { lab })).await?;
    let detail = store.get_run(&run).await?.context("run")?;
    let verdicts: Vec<(&str, Verdict)> = detail
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.verdict))
        .collect();
    ensure!(
        verdicts
            == [
                ("watchdog.reset", Verdict::Fail),
                ("kdump.config", Verdict::Pass)
            ],
        "{verdicts:?}"
    );
    let reset = &detail.cases[0];
    ensure!(
        reset.reason.contains("did not reset the machine")
            && reset.reason.contains("power-cycled through its BMC")
            && reset.reason.contains("no new boot within 3 s"),
        "{}",
        reset.reason
    );
    let sources: Vec<&str> = reset
        .evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Bmc { source, .. } => Some(source.as_str()),
            _ => None,
        })
        .collect();
    ensure!(sources == ["console", "sel", "sel"], "{sources:?}");
    store.close().await;
    Ok(())
}
