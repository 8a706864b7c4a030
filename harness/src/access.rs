//! How the daemon reaches the machines of a `lab.toml`: over SSH under the
//! one host-key policy (pinned in lab.toml, else recorded in the lab store,
//! else trusted on first use and recorded), with a health check that the
//! machine answers over SSH. A `[machine.sim]` machine is reached
//! in-process ([`certlab_lab::sim`]); its health check is the same, and it
//! power-cycles the machine through its simulated BMC when the OS does not
//! answer (off, or crashed).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use certlab_lab::bmc::{Bmc, CallRecord, CallSink};

use certlab_lab::sim::SimLab;
use certlab_lab::ssh::HostKeyPolicy;
use certlab_lab::{Lab, Target};

use crate::daemon::{BoxFuture, MachineAccess};
use crate::lifecycle::MachineFacts;
use crate::store::{Store, StoreHostKeys};
use crate::sut::{BmcSut, SutControl};

/// How long a health check may take to get an answer over SSH.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(30);

/// The machines of a lab inventory.
pub struct LabAccess {
    lab: Lab,
    policy: HostKeyPolicy,
    sims: SimLab,
    store: Store,
}

impl LabAccess {
    /// Must be called inside a tokio runtime (the host-key store blocks on
    /// it from the connecting thread).
    pub fn new(lab: Lab, store: &Store) -> LabAccess {
        let policy = HostKeyPolicy::new(Arc::new(StoreHostKeys::new(
            store.clone(),
            tokio::runtime::Handle::current(),
        )));
        // Lab::load already refused unknown profiles; none can fail here.
        let sims = SimLab::from_lab(&lab).unwrap_or_default();
        LabAccess {
            lab,
            policy,
            sims,
            store: store.clone(),
        }
    }

    /// The lab's simulated machines (their BMCs, consoles and state).
    pub fn sims(&self) -> &SimLab {
        &self.sims
    }

    /// The facts the scheduler matches requirements against. The CPU
    /// family is not known from lab.toml alone, except for a simulated
    /// machine (its profile's).
    pub fn facts(&self) -> Vec<MachineFacts> {
        self.lab
            .machines
            .iter()
            .map(|m| MachineFacts {
                name: m.name.clone(),
                arch: m.arch.as_str().to_string(),
                family: self.sims.get(&m.name).map(|s| s.profile().family.clone()),
                pool: m.pool.clone(),
                tags: m.tags.clone(),
            })
            .collect()
    }

    fn connect(&self, machine: &str) -> BoxFuture<'_, Result<certlab_lab::Ssh, String>> {
        let machine = machine.to_string();
        Box::pin(async move {
            let m = self.lab.machine(&machine).map_err(|e| e.to_string())?;
            let ep = m.ssh().map_err(|e| e.to_string())?.clone();
            let policy = self.policy.clone();
            tokio::task::spawn_blocking(move || {
                let ssh = policy.ssh(&machine, &ep).map_err(|e| e.to_string())?;
                ssh.connect().map_err(|e| e.to_string())?;
                Ok(ssh)
            })
            .await
            .map_err(|e| format!("connecting task: {e}"))?
        })
    }
}

/// Records BMC calls in the lab store as they happen.
pub struct StoreCallSink {
    store: Store,
    handle: tokio::runtime::Handle,
}

impl StoreCallSink {
    /// Must be made inside a tokio runtime.
    pub fn new(store: Store) -> StoreCallSink {
        StoreCallSink {
            store,
            handle: tokio::runtime::Handle::current(),
        }
    }
}

impl CallSink for StoreCallSink {
    fn record(&self, record: CallRecord) {
        let store = self.store.clone();
        self.handle.spawn(async move {
            if let Err(e) = store.record_bmc_calls(&[record]).await {
                tracing::warn!(error = %e, "a BMC call was not recorded");
            }
        });
    }
}

/// How long a real machine may take to boot (firmware POST of a large
/// server included) before it counts as not back.
const REAL_BOOT_TIMEOUT: Duration = Duration::from_secs(600);

impl MachineAccess for LabAccess {
    fn sut<'a>(
        &'a self,
        machine: &'a str,
        target: Arc<dyn Target>,
        out_dir: PathBuf,
    ) -> BoxFuture<'a, Option<Arc<dyn SutControl>>> {
        Box::pin(async move {
            let console = out_dir.join("console.log");
            if let Some(sim) = self.sims.get(machine) {
                let bmc: Arc<dyn Bmc> = Arc::new(sim.bmc());
                let boot = certlab_lab::sim::bmc::boot_time(sim) * 3 + Duration::from_secs(5);
                let sut = BmcSut::start(target, bmc, boot, console).await;
                return Some(Arc::new(sut) as Arc<dyn SutControl>);
            }
            let m = self.lab.machine(machine).ok()?;
            m.bmc.as_ref()?;
            let sink = Arc::new(StoreCallSink::new(self.store.clone()));
            match certlab_lab::bmc::open(m, sink) {
                Ok(bmc) => {
                    let sut =
                        BmcSut::start(target, Arc::from(bmc), REAL_BOOT_TIMEOUT, console).await;
                    Some(Arc::new(sut) as Arc<dyn SutControl>)
                }
                Err(e) => {
                    tracing::warn!(%machine, error = %e, "BMC not opened: no crash handling for this run");
                    None
                }
            }
        })
    }

    fn target<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<Arc<dyn Target>, String>> {
        Box::pin(async move {
            if let Some(sim) = self.sims.get(machine) {
                return Ok(Arc::new(sim.target()) as Arc<dyn Target>);
            }
            let ssh = self.connect(machine).await?;
            Ok(Arc::new(ssh) as Arc<dyn Target>)
        })
    }

    fn health_check<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if let Some(sim) = self.sims.get(machine) {
                return certlab_lab::sim::health_check(sim).await;
            }
            let ssh = self.connect(machine).await?;
            let out = tokio::task::spawn_blocking(move || {
                ssh.exec("cat /proc/sys/kernel/random/boot_id", HEALTH_TIMEOUT)
            })
            .await
            .map_err(|e| format!("health check task: {e}"))?
            .map_err(|e| e.to_string())?;
            if out.success() {
                Ok(())
            } else {
                Err(format!(
                    "SSH answers but `cat /proc/sys/kernel/random/boot_id` exits {:?}: {}",
                    out.exit,
                    out.stderr_str().trim()
                ))
            }
        })
    }
}
