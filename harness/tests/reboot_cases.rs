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
//! - every declared reboot is logged as a `rebooted` event.

mod common;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::access::LabAccess;
use certlab_harness::daemon::{self, DaemonConfig};
use certlab_harness::lifecycle::{JobState, Requirements};
use certlab_harness::{NewJob, Store};
use certlab_lab::Lab;
use certlab_reports::{Evidence, Verdict};
use ed25519_dalek::SigningKey;
use time::OffsetDateTime;
use tokio::sync::watch;

const LAB: &str = r#"
version = 1

[[machine]]
name = "sim-0001"
arch = "x86_64"
pool = "sim"

[machine.sim]
profile = "intel-spr-h100"
faults = "none"
seed = 5
defect = "none"
time_scale = 0.002
"#;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reboot_kdump_and_watchdog_cases_pass_on_a_sim_machine() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let lab_file = dir.path().join("lab.toml");
    std::fs::write(&lab_file, LAB)?;
    let lab = Lab::load(&lab_file)?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let access = LabAccess::new(lab, &store);
    store
        .sync_machines(&access.facts(), OffsetDateTime::now_utc())
        .await?;
    store
        .submit_job(
            &NewJob {
                id: "j1".into(),
                plan: "reboot-test.toml".into(),
                plan_version: "1".into(),
                plan_digest: String::new(),
                plan_text: Some(PLAN.into()),
                requirements: Requirements::parse("name=sim-0001")?,
                priority: 50,
                submitter: "ci".into(),
            },
            OffsetDateTime::now_utc(),
        )
        .await?;
    let config = DaemonConfig {
        owner: "d1".into(),
        lease_ttl: Duration::from_secs(10),
        max_runs: 1,
        max_attempts: 1,
        case_retries: 2,
        machine_failure_limit: 3,
        bad_recheck: Duration::from_secs(900),
        poll: Duration::from_millis(100),
        out_root: dir.path().join("runs"),
        tool_version: "test".into(),
    };
    let (stop, stopped) = watch::channel(false);
    let d = tokio::spawn(daemon::run(
        store.clone(),
        Arc::new(access),
        SigningKey::from_bytes(&[5u8; 32]),
        config,
        stopped,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let job = loop {
        let j = store.job("j1").await?.context("job")?;
        if j.state.kind().is_terminal() {
            break j;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "job not done: {:?}",
            j.state
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.send(true)?;
    d.await??;

    let JobState::Finished { run, .. } = &job.state else {
        anyhow::bail!("{:?}", job.state)
    };
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
