//! How the daemon reaches the machines of a `lab.toml`: over SSH under the
//! one host-key policy (pinned in lab.toml, else recorded in the lab store,
//! else trusted on first use and recorded), and through their BMCs. The
//! health check and a job's prepare step are one function: the BMC
//! answers, its SEL holds no critical entry since the machine's last job,
//! and SSH answers or the machine is powered on (or cycled) through its BMC
//! and waited for. It also runs a machine's `[machine.provision]` hook and
//! applies its `power_policy` at release. A `[machine.sim]` machine is
//! reached in-process ([`certlab_lab::sim`]) through its simulated BMC.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use certlab_lab::bmc::{
    Bmc, BmcError, BootOverride, CallRecord, CallSink, PowerAction, PowerState, SelCursor,
};
use certlab_lab::inventory::PowerPolicy;

use certlab_lab::sim::SimLab;
use certlab_lab::ssh::HostKeyPolicy;
use certlab_lab::{Lab, Target};

use crate::daemon::{BoxFuture, MachineAccess, PrepareError, Provisioned};
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

    /// The machine's BMC: a sim machine's in-process one, or the one
    /// lab.toml describes (calls recorded in the store); `None` without.
    fn bmc_of(&self, machine: &str) -> Option<Result<Arc<dyn Bmc>, String>> {
        if let Some(sim) = self.sims.get(machine) {
            return Some(Ok(Arc::new(sim.bmc()) as Arc<dyn Bmc>));
        }
        let m = self.lab.machine(machine).ok()?;
        m.bmc.as_ref()?;
        let sink = Arc::new(StoreCallSink::new(self.store.clone()));
        Some(
            certlab_lab::bmc::open(m, sink)
                .map(Arc::from)
                .map_err(|e| e.to_string()),
        )
    }

    /// The health gate: the BMC answers, and its event log holds no
    /// critical entry since the machine's last job (an OS critical stop
    /// aside: that crash was its run's verdict). The first reading of a
    /// machine's log is its baseline. Returns the power state.
    async fn gate(&self, machine: &str, bmc: &dyn Bmc) -> Result<PowerState, PrepareError> {
        let infra = |what: &str, e: BmcError| {
            PrepareError::Infrastructure(format!("its BMC does not answer ({what}): {e}"))
        };
        let power = bmc_retry(|| bmc.power_status())
            .await
            .map_err(|e| infra("power status", e))?;
        let store_err = |e: crate::store::StoreError| PrepareError::Infrastructure(e.to_string());
        let cursor = self.store.sel_cursor(machine).await.map_err(store_err)?;
        let page = bmc_retry(|| bmc.sel_since(cursor.clone().map(SelCursor)))
            .await
            .map_err(|e| infra("event log", e))?;
        if cursor.is_none() {
            self.store
                .set_sel_cursor(machine, &page.cursor.0)
                .await
                .map_err(store_err)?;
            return Ok(power);
        }
        let critical = page.entries.iter().find(|e| {
            e.severity == certlab_lab::bmc::Health::Critical
                && e.sensor_type.as_deref() != Some(OS_CRITICAL_STOP)
        });
        match critical {
            Some(e) => Err(PrepareError::Unhealthy(format!(
                "critical SEL entry since its last job: record {} ({}{}){}",
                e.id,
                e.sensor_type
                    .as_deref()
                    .map(|t| format!("{t}: "))
                    .unwrap_or_default(),
                e.message,
                "; clear the SEL (`certlab lab sel NAME --clear`) once it is dealt with"
            ))),
            None => Ok(power),
        }
    }

    /// The OS answers over SSH with a boot id.
    async fn os_answers(&self, machine: &str) -> Result<(), String> {
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
    }

    /// SSH answers, or the machine is powered on (off) or power-cycled
    /// (on but silent for a while) through its BMC and waited for.
    async fn power_up(
        &self,
        machine: &str,
        bmc: &dyn Bmc,
        power: PowerState,
    ) -> Result<String, PrepareError> {
        let infra = PrepareError::Infrastructure;
        let first = match self.os_answers(machine).await {
            Ok(()) => return Ok("SSH answers".to_string()),
            Err(e) => e,
        };
        let t0 = std::time::Instant::now();
        let action = if power == PowerState::Off {
            Some(PowerAction::On)
        } else {
            // On but silent: it may be booting; give it a while first.
            let until = t0 + SILENT_GRACE;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if self.os_answers(machine).await.is_ok() {
                    break None;
                }
                if std::time::Instant::now() >= until {
                    break Some(PowerAction::Cycle);
                }
            }
        };
        let Some(action) = action else {
            return Ok(format!("SSH answered after {} s", t0.elapsed().as_secs()));
        };
        bmc_retry(|| bmc.power(action))
            .await
            .map_err(|e| infra(format!("power {action} through its BMC: {e}")))?;
        let deadline = std::time::Instant::now() + REAL_BOOT_TIMEOUT;
        loop {
            match self.os_answers(machine).await {
                Ok(()) => {
                    return Ok(format!(
                        "power {action} through its BMC ({first}); SSH answered after {} s",
                        t0.elapsed().as_secs()
                    ))
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(infra(format!(
                        "SSH does not answer {} s after power {action} through its BMC: {e}",
                        REAL_BOOT_TIMEOUT.as_secs()
                    )))
                }
                Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
            }
        }
    }

    /// Prepare: the gate, then power. Also the daemon's health check.
    async fn prepare_machine(&self, machine: &str) -> Result<String, PrepareError> {
        if let Some(sim) = self.sims.get(machine) {
            let bmc = sim.bmc();
            self.gate(machine, &bmc).await?;
            return certlab_lab::sim::health_check(sim)
                .await
                .map(|()| String::new())
                .map_err(PrepareError::Infrastructure);
        }
        match self.bmc_of(machine) {
            None => self
                .os_answers(machine)
                .await
                .map(|()| "SSH answers (no BMC)".to_string())
                .map_err(PrepareError::Infrastructure),
            Some(Err(e)) => Err(PrepareError::Infrastructure(format!(
                "its BMC cannot be opened: {e}"
            ))),
            Some(Ok(bmc)) => {
                let power = self.gate(machine, bmc.as_ref()).await?;
                self.power_up(machine, bmc.as_ref(), power).await
            }
        }
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

/// How long a powered-on machine whose SSH does not answer is given (it
/// may be booting) before the prepare step power-cycles it.
const SILENT_GRACE: Duration = Duration::from_secs(60);

/// The SEL sensor type of an OS crash: the run that crashed recorded it
/// (verdict `crash`); the health gate does not hold it against the machine.
const OS_CRITICAL_STOP: &str = "OS Critical Stop";

/// The most output of a provisioning hook kept in its event.
const PROVISION_OUTPUT: usize = 4096;

/// A BMC call tried again on retryable errors (a sim BMC is not wrapped
/// in the retry guard; a real one is, and then one try is all it needs).
async fn bmc_retry<T, F, Fut>(mut call: F) -> Result<T, BmcError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, BmcError>>,
{
    let mut attempt = 0u32;
    loop {
        match call().await {
            Err(e) if e.is_retryable() && attempt < 6 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
            }
            other => return other,
        }
    }
}

/// Runs a provisioning hook: `sh -c COMMAND` on this host, with the
/// machine's name and its BMC and SSH hosts in the environment (never a
/// password), bounded by `timeout`; output (stdout then stderr) kept to
/// its last [`PROVISION_OUTPUT`] bytes.
async fn run_hook(
    command: &str,
    env: Vec<(&'static str, String)>,
    timeout: Duration,
) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, cmd.output()).await;
    let tail = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        let mut i = s.len().saturating_sub(PROVISION_OUTPUT);
        while !s.is_char_boundary(i) {
            i += 1;
        }
        s[i..].to_string()
    };
    match out {
        Ok(Ok(o)) => {
            let mut all = o.stdout;
            all.extend_from_slice(&o.stderr);
            (o.status.code(), tail(&all))
        }
        Ok(Err(e)) => (None, format!("could not be started: {e}")),
        Err(_) => (
            None,
            format!("killed after its {} s timeout", timeout.as_secs()),
        ),
    }
}

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
            self.prepare_machine(machine)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    fn prepare<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Result<String, PrepareError>> {
        Box::pin(self.prepare_machine(machine))
    }

    fn provision_command(&self, machine: &str) -> Option<String> {
        let m = self.lab.machine(machine).ok()?;
        m.provision.as_ref().map(|p| p.command.clone())
    }

    fn provision<'a>(&'a self, machine: &'a str) -> BoxFuture<'a, Provisioned> {
        Box::pin(async move {
            let Some((m, p)) = self
                .lab
                .machine(machine)
                .ok()
                .and_then(|m| Some((m, m.provision.clone()?)))
            else {
                return Provisioned::default();
            };
            let mut done = Provisioned {
                command: p.command.clone(),
                boot: p.boot.map(|b| b.as_str().to_string()),
                ..Provisioned::default()
            };
            if let Some(device) = p.boot {
                let set = match self.bmc_of(machine) {
                    Some(Ok(bmc)) => {
                        bmc_retry(|| bmc.set_boot(BootOverride { device, once: true }))
                            .await
                            .map_err(|e| e.to_string())
                    }
                    Some(Err(e)) => Err(e),
                    None => Err("the machine has no BMC".to_string()),
                };
                if let Err(e) = set {
                    done.output = format!("boot override {} not set: {e}", device.as_str());
                    return done;
                }
            }
            let mut env = vec![("CERTLAB_MACHINE", m.name.clone())];
            if let Some(b) = &m.bmc {
                env.push(("CERTLAB_BMC_HOST", b.address.clone()));
            }
            if let Some(s) = &m.ssh {
                env.push(("CERTLAB_SSH_HOST", s.address.clone()));
            }
            let (exit, output) = run_hook(&p.command, env, p.timeout).await;
            done.exit = exit;
            done.output = output;
            done
        })
    }

    fn release<'a>(
        &'a self,
        machine: &'a str,
        more_work: bool,
    ) -> BoxFuture<'a, Result<(String, String), String>> {
        Box::pin(async move {
            let policy = self
                .lab
                .machine(machine)
                .map(|m| m.power_policy)
                .unwrap_or_default();
            let Some(bmc) = self.bmc_of(machine) else {
                return Ok((policy.as_str().to_string(), "nothing (no BMC)".to_string()));
            };
            let bmc = bmc?;
            // Where the SEL stands: the next job's gate judges what follows.
            let page = bmc_retry(|| bmc.sel_since(None))
                .await
                .map_err(|e| format!("SEL position not read: {e}"))?;
            self.store
                .set_sel_cursor(machine, &page.cursor.0)
                .await
                .map_err(|e| e.to_string())?;
            let off = match policy {
                PowerPolicy::Keep => false,
                PowerPolicy::Off => true,
                PowerPolicy::OffWhenIdle => !more_work,
            };
            let action = if off {
                bmc_retry(|| bmc.power(PowerAction::Off))
                    .await
                    .map_err(|e| format!("power off through the BMC: {e}"))?;
                "powered off through its BMC".to_string()
            } else if policy == PowerPolicy::OffWhenIdle {
                "kept on: more work is queued for it".to_string()
            } else {
                "kept as it is".to_string()
            };
            Ok((policy.as_str().to_string(), action))
        })
    }
}
