//! A daemon killed between a rebooting case's `before` and `after`, on a
//! simulated machine (its BMC and OS in-process, from a real Intel
//! Sapphire Rapids server's evidence). The kill is the daemon's task
//! aborted where it stands — its workers and heartbeats are dropped and
//! nothing after that point runs, as with a SIGKILL — while the simulated
//! machine lives on (it is not the orchestrator's). A second daemon takes
//! the job over once the lease expires:
//! - killed after the reboot (the machine is on a new boot): the resumed
//!   attempt finds the stored before-snapshot, sees the boot changed, and
//!   runs `after` against it — the case compares the boot before the kill
//!   with the new one, the machine is rebooted once, `before` ran once;
//! - killed after `before` but before the reboot: the resumed attempt
//!   finds the snapshot on the same boot and reboots now, without taking a
//!   new snapshot.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::access::LabAccess;
use certlab_harness::daemon::{BoxFuture, MachineAccess};
use certlab_harness::lifecycle::JobState;
use certlab_harness::sut::{SelSweep, SutControl};
use certlab_harness::{RunState, Store};
use certlab_lab::bmc::{SelCursor, SelEntry};
use certlab_lab::{DirEntry, ExecOutput, Lab, Target, TargetError};
use certlab_reports::Verdict;
use certlab_suites::walk;
use time::OffsetDateTime;
use tokio::sync::oneshot;

const PLAN: &str = r#"
[plan]
id = "reboot-resume-test"
version = "1"
title = "a warm reboot whose orchestrator dies"

[[case]]
id = "reboot.warm"
check = "reboot"
title = "Warm reboot"
blocker = true
timeout_s = 60
reboots = true
params.link_wait_s = 5

[[case]]
id = "cpu.identity"
check = "cpu-identity"
title = "CPU identity"
blocker = true
timeout_s = 30
"#;

/// Where the first daemon dies.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Die {
    /// In the OS reboot, once the machine is back on its new boot.
    AfterReboot,
    /// In the OS reboot, before the machine is taken down.
    BeforeReboot,
}

/// The old and new boot ids the first daemon saw when it died.
type Died = oneshot::Sender<(String, Option<String>)>;

/// What both daemons share: the lab (one simulated machine) and counts.
struct Shared {
    lab: LabAccess,
    /// OS reboots carried out on the machine, by either daemon.
    reboots: AtomicU32,
    /// Net walks run on the machine: discovery's, and the reboot check's
    /// `look` before and after.
    net_walks: Arc<AtomicU32>,
}

/// One daemon's access to the lab; the first one dies at `die`.
struct Access {
    shared: Arc<Shared>,
    die: Option<(Die, Arc<Mutex<Option<Died>>>)>,
}

struct CountingTarget {
    inner: Arc<dyn Target>,
    net_walks: Arc<AtomicU32>,
}

impl Target for CountingTarget {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        if command == walk::NET_WALK {
            self.net_walks.fetch_add(1, Ordering::SeqCst);
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

/// The machine's [`SutControl`], counting OS reboots; for the first
/// daemon, its reboot never returns (the daemon is killed in it).
struct DyingSut {
    inner: Arc<dyn SutControl>,
    shared: Arc<Shared>,
    die: Option<(Die, Arc<Mutex<Option<Died>>>)>,
}

impl DyingSut {
    fn take_died(&self, at: Die) -> Option<Died> {
        let (die, tx) = self.die.as_ref()?;
        if *die != at {
            return None;
        }
        tx.lock().ok()?.take()
    }
}

impl SutControl for DyingSut {
    fn boot_id(&self) -> BoxFuture<'_, Result<String, String>> {
        self.inner.boot_id()
    }
    fn reboot(&self, old: String) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            if let Some(tx) = self.take_died(Die::BeforeReboot) {
                let _ = tx.send((old.clone(), None));
                std::future::pending::<()>().await;
            }
            let new = self.inner.reboot(old.clone()).await?;
            self.shared.reboots.fetch_add(1, Ordering::SeqCst);
            if let Some(tx) = self.take_died(Die::AfterReboot) {
                let _ = tx.send((old, Some(new.clone())));
                std::future::pending::<()>().await;
            }
            Ok(new)
        })
    }
    fn recover(&self, old: Option<String>) -> BoxFuture<'_, Result<String, String>> {
        self.inner.recover(old)
    }
    fn crash_evidence(&self) -> BoxFuture<'_, Vec<(String, Vec<u8>)>> {
        self.inner.crash_evidence()
    }
    fn sweep(&self) -> BoxFuture<'_, Option<Result<SelSweep, String>>> {
        self.inner.sweep()
    }
    fn sel_delta(&self) -> BoxFuture<'_, Option<Result<Vec<SelEntry>, String>>> {
        self.inner.sel_delta()
    }
    fn power_cycle(&self, old: String) -> BoxFuture<'_, Result<String, String>> {
        self.inner.power_cycle(old)
    }
    fn wait_boot(&self, old: String, within: Duration) -> BoxFuture<'_, Result<String, String>> {
        self.inner.wait_boot(old, within)
    }
    fn sel_mark(&self) -> BoxFuture<'_, Option<SelCursor>> {
        self.inner.sel_mark()
    }
    fn sel_after(
        &self,
        mark: Option<SelCursor>,
    ) -> BoxFuture<'_, Option<Result<Vec<SelEntry>, String>>> {
        self.inner.sel_after(mark)
    }
}

impl MachineAccess for Access {
    fn target<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>> {
        Box::pin(async move {
            let inner = self.shared.lab.target(machine).await?;
            Ok(Arc::new(CountingTarget {
                inner,
                net_walks: self.shared.net_walks.clone(),
            }) as Arc<dyn Target>)
        })
    }
    fn health_check<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.shared.lab.health_check(machine)
    }
    fn sut<'a>(
        &'a self,
        machine: &'a str,
        target: Arc<dyn Target>,
        out_dir: std::path::PathBuf,
    ) -> BoxFuture<'a, Option<Arc<dyn SutControl>>> {
        Box::pin(async move {
            let inner = self.shared.lab.sut(machine, target, out_dir).await?;
            Some(Arc::new(DyingSut {
                inner,
                shared: self.shared.clone(),
                die: self.die.clone(),
            }) as Arc<dyn SutControl>)
        })
    }
}

/// Runs the plan with a first daemon killed at `die`, then a second one
/// until the job is done. Checks what both share and returns the reason
/// of `reboot.warm` with the boot ids seen at the kill.
async fn killed_and_resumed(die: Die) -> Result<(String, String, Option<String>)> {
    let dir = tempfile::tempdir()?;
    let lab_file = dir.path().join("lab.toml");
    std::fs::write(
        &lab_file,
        common::one_sim_machine_lab("x86_64", "intel-spr-h100", 5),
    )?;
    let lab = Lab::load(&lab_file)?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let shared = Arc::new(Shared {
        lab: LabAccess::new(lab, &store),
        reboots: AtomicU32::new(0),
        net_walks: Arc::new(AtomicU32::new(0)),
    });
    store
        .sync_machines(&shared.lab.facts(), OffsetDateTime::now_utc())
        .await?;
    store
        .submit_job(
            &common::test_job("j1", "reboot-resume.toml", Some(PLAN), "name=sim-0001")?,
            OffsetDateTime::now_utc(),
        )
        .await?;
    let runs = dir.path().join("runs");

    // The first daemon, short leases so that its death is noticed soon.
    let (died_tx, died_rx) = oneshot::channel();
    let first = Access {
        shared: shared.clone(),
        die: Some((die, Arc::new(Mutex::new(Some(died_tx))))),
    };
    let mut config = common::daemon_config(&runs, 1, 1);
    config.lease_ttl = Duration::from_secs(2);
    let (_stop1, stopped1) = tokio::sync::watch::channel(false);
    let d1 = tokio::spawn(certlab_harness::daemon::run(
        store.clone(),
        Arc::new(first),
        ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]),
        config,
        stopped1,
    ));
    let (old, new) = tokio::time::timeout(Duration::from_secs(120), died_rx)
        .await
        .context("the first daemon never reached the reboot")??;
    d1.abort();
    ensure!(d1.await.is_err_and(|e| e.is_cancelled()), "not killed");

    // What the killed daemon left: a running run, its snapshot, no verdict.
    let job = store.job("j1").await?.context("job")?;
    let JobState::Running { run, .. } = &job.state else {
        anyhow::bail!("{:?}", job.state)
    };
    let run = run.clone();
    let detail = store.get_run(&run).await?.context("run")?;
    ensure!(detail.run.state == RunState::Running, "{:?}", detail.run);
    ensure!(detail.cases.is_empty(), "{:?}", detail.cases);
    let snap = store
        .case_snapshot(&run, "reboot.warm")
        .await?
        .context("the before-snapshot was not stored")?;
    ensure!(snap.boot_id == old, "{} vs {old}", snap.boot_id);
    ensure!(
        snap.snapshot["boot_id"] == old.as_str(),
        "{}",
        snap.snapshot
    );
    ensure!(!snap.evidence.is_empty(), "the before phase's evidence");
    // Walks so far: discovery's and `before`'s.
    let walks_at_kill = shared.net_walks.load(Ordering::SeqCst);
    ensure!(walks_at_kill >= 1);

    // The second daemon takes the job over when the lease expires.
    let second = Access {
        shared: shared.clone(),
        die: None,
    };
    let mut config = common::daemon_config(&runs, 1, 1);
    config.owner = "d2".into();
    let state = common::run_daemon_until_done(
        &store,
        Arc::new(second),
        config,
        "j1",
        Duration::from_secs(120),
    )
    .await?;
    let JobState::Finished { run: done, .. } = &state else {
        anyhow::bail!("{state:?}")
    };
    ensure!(*done == run, "the same run went on: {done} vs {run}");
    let detail = store.get_run(&run).await?.context("run")?;
    let verdicts: Vec<(&str, Verdict)> = detail
        .cases
        .iter()
        .map(|c| (c.id.as_str(), c.verdict))
        .collect();
    ensure!(
        verdicts
            == [
                ("reboot.warm", Verdict::Pass),
                ("cpu.identity", Verdict::Pass)
            ],
        "{verdicts:?} {:?}",
        detail.cases.first().map(|c| &c.reason)
    );
    let warm = &detail.cases[0];
    // The before phase's evidence is the case's, ahead of the after's.
    ensure!(
        warm.evidence.starts_with(&snap.evidence),
        "{:?}",
        warm.evidence
    );
    // One reboot, one snapshot before and one look after.
    ensure!(shared.reboots.load(Ordering::SeqCst) == 1);
    // The second attempt walks as much as the first: its discovery and
    // `after` (a `before` again would make one more).
    ensure!(
        shared.net_walks.load(Ordering::SeqCst) == 2 * walks_at_kill,
        "{} net walks, {walks_at_kill} at the kill: `before` ran again",
        shared.net_walks.load(Ordering::SeqCst)
    );
    let rebooted = store
        .events(&run)
        .await?
        .into_iter()
        .filter(|e| e.kind == "rebooted")
        .count();
    ensure!(rebooted == 1, "{rebooted} reboots logged");
    let reason = warm.reason.clone();
    store.close().await;
    Ok((reason, old, new))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_the_reboot_the_case_resumes_from_its_snapshot() -> Result<()> {
    let (reason, old, new) = killed_and_resumed(Die::AfterReboot).await?;
    let new = new.context("the new boot")?;
    ensure!(
        reason.starts_with(&format!("warm reboot: boot id {old} → {new}")),
        "{reason}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_the_reboot_the_case_reboots_from_its_snapshot() -> Result<()> {
    let (reason, old, new) = killed_and_resumed(Die::BeforeReboot).await?;
    ensure!(new.is_none());
    ensure!(
        reason.starts_with(&format!("warm reboot: boot id {old} → ")),
        "{reason}"
    );
    Ok(())
}
