//! Reboots and crashes under the orchestrator, on a simulated machine (its
//! BMC and OS in-process, from a real Kunpeng 920's evidence):
//! - a case that crashes the kernel (`echo c > /proc/sysrq-trigger`, as a
//!   real panic) is recorded as `crash` with the console's panic text and
//!   the SEL's critical stop as evidence; the machine is power-cycled
//!   through its BMC and the run goes on with the next case;
//! - a case declaring `reboots = true` gets its reboot first and runs on
//!   the new boot;
//! - nothing but `ras.sel` is `fail` (the crash's critical stop is in the
//!   BMC's log over the run), nothing is `error`, and the job finishes.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::access::LabAccess;
use certlab_harness::daemon::{BoxFuture, MachineAccess};
use certlab_harness::lifecycle::JobState;
use certlab_harness::sut::SutControl;
use certlab_harness::Store;
use certlab_lab::{DirEntry, ExecOutput, Lab, Target, TargetError};
use certlab_reports::{Evidence, Verdict};
use time::OffsetDateTime;

const PLAN: &str = r#"
[plan]
id = "crash-test"
version = "1"
title = "a crash and a declared reboot"

[[case]]
id = "kernel.taint"
check = "kernel-taint"
title = "Kernel not tainted (the kernel panics during it)"
blocker = true
timeout_s = 30

[[case]]
id = "cpu.online"
check = "cpu-online"
title = "All present CPUs are online, after a reboot"
blocker = true
timeout_s = 30
reboots = true

[[case]]
id = "cpu.identity"
check = "cpu-identity"
title = "CPU identity"
blocker = true
timeout_s = 30

[[case]]
id = "ras.sel"
check = "ras-sel"
title = "The BMC logged no critical event during the run"
blocker = true
timeout_s = 30
"#;

/// The lab's simulated machine, whose kernel panics when the
/// `kernel.taint` case reads the taint flags (the second read of the run:
/// discovery makes the first).
struct Panicking {
    lab: LabAccess,
}

struct PanicTarget {
    inner: Arc<dyn Target>,
    reads: AtomicU32,
}

impl Target for PanicTarget {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        self.inner.exec(command, timeout)
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        if path == "/proc/sys/kernel/tainted" && self.reads.fetch_add(1, Ordering::SeqCst) == 1 {
            let _ = self
                .inner
                .exec("echo c > /proc/sysrq-trigger", Duration::from_secs(5));
        }
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

impl MachineAccess for Panicking {
    fn target<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>> {
        Box::pin(async move {
            let inner = self.lab.target(machine).await?;
            Ok(Arc::new(PanicTarget {
                inner,
                reads: AtomicU32::new(0),
            }) as Arc<dyn Target>)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_is_recorded_recovered_and_the_run_goes_on() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let lab_file = dir.path().join("lab.toml");
    std::fs::write(
        &lab_file,
        common::one_sim_machine_lab("aarch64", "kunpeng-920", 3),
    )?;
    let lab = Lab::load(&lab_file)?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let access = LabAccess::new(lab, &store);
    store
        .sync_machines(&access.facts(), OffsetDateTime::now_utc())
        .await?;
    store
        .submit_job(
            &common::test_job("j1", "crash-test.toml", Some(PLAN), "name=sim-0001")?,
            OffsetDateTime::now_utc(),
        )
        .await?;
    let config = common::daemon_config(&dir.path().join("runs"), 1, 1);
    let state = common::run_daemon_until_done(
        &store,
        Arc::new(Panicking { lab: access }),
        config,
        "j1",
        Duration::from_secs(120),
    )
    .await?;

    let JobState::Finished { run, .. } = &state else {
        anyhow::bail!("{state:?}")
    };
    let detail = store.get_run(run).await?.context("run")?;
    let verdicts: Vec<(&str, Verdict)> = detail
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.verdict))
        .collect();
    ensure!(
        verdicts
            == [
                ("kernel.taint", Verdict::Crash),
                ("cpu.online", Verdict::Pass),
                ("cpu.identity", Verdict::Pass),
                ("ras.sel", Verdict::Fail)
            ],
        "{verdicts:?}"
    );
    let crash = &detail.cases[0];
    ensure!(
        crash.reason.contains("power-cycled through its BMC"),
        "{}",
        crash.reason
    );
    // The panic's console text and the SEL's critical stop are its evidence.
    let evidence_dir = dir.path().join("runs").join(run).join("evidence");
    let mut sources = Vec::new();
    for e in &crash.evidence {
        if let Evidence::Bmc { source, content } = e {
            let text = std::fs::read_to_string(evidence_dir.join(&content.sha256))?;
            match source.as_str() {
                "console" => ensure!(text.contains("Kernel panic"), "console: {text}"),
                "sel" => ensure!(text.contains("critical stop"), "sel: {text}"),
                other => anyhow::bail!("unexpected evidence source {other}"),
            }
            sources.push(source.clone());
        }
    }
    ensure!(sources == ["console", "sel"], "{sources:?}");
    // ras.sel, handed the SEL since the run began by the orchestrator,
    // fails on the crash's critical stop, with the log as its evidence.
    let sel = &detail.cases[3];
    ensure!(
        sel.reason.starts_with("critical SEL entries: record")
            && sel.reason.contains("[OS critical stop]"),
        "{}",
        sel.reason
    );
    ensure!(
        sel.evidence
            .iter()
            .any(|e| matches!(e, Evidence::Bmc { source, .. } if source == "sel")),
        "{:?}",
        sel.evidence
    );
    // The declared reboot was logged with its new boot id.
    let rebooted: Vec<_> = store
        .events(run)
        .await?
        .into_iter()
        .filter(|e| e.kind == "rebooted")
        .collect();
    ensure!(
        rebooted.len() == 1 && rebooted[0].payload["declared"] == true,
        "{rebooted:?}"
    );
    store.close().await;
    Ok(())
}
