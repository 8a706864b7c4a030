//! The system under test beyond its commands: its boot identity, a
//! declared reboot, and a crash — told apart by the kernel's boot id
//! (`/proc/sys/kernel/random/boot_id`, new at every boot) and handled
//! through the machine's BMC (power cycle, console, SEL).
//!
//! The runner asks a [`SutControl`] after every case whether the machine
//! still answers with the boot id it had: an undeclared change, or no
//! answer at all, is a crash — the console and SEL are kept as evidence,
//! the machine is power-cycled, the case is recorded as `crash`, and the
//! run goes on. A case declaring `reboots = true` is rebooted between its
//! check's `before` and `after`: by the OS, a power cycle, or its own crash
//! trigger (a crash window: the machine is waited for, not counted as a
//! crash).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certlab_lab::bmc::{Bmc, PowerAction, PowerState, SelCursor, SelEntry};
use certlab_lab::Target;

use crate::daemon::BoxFuture;

/// Power, console and boot identity of the machine a run is on.
pub trait SutControl: Send + Sync {
    /// The kernel's boot id now; an error when the OS does not answer.
    fn boot_id(&self) -> BoxFuture<'_, Result<String, String>>;
    /// Reboots the OS and waits until it answers with a boot id other than
    /// `old`; returns the new one. Falls back to a BMC reset when the OS
    /// does not go down by itself.
    fn reboot(&self, old: String) -> BoxFuture<'_, Result<String, String>>;
    /// Brings a machine that does not answer back through its BMC (power
    /// cycle) and waits for a boot id other than `old`.
    fn recover(&self, old: Option<String>) -> BoxFuture<'_, Result<String, String>>;
    /// What the console and the BMC's event log hold about what just
    /// happened: `(source, bytes)` pairs (`console`, `sel`) kept as the
    /// case's evidence.
    fn crash_evidence(&self) -> BoxFuture<'_, Vec<(String, Vec<u8>)>>;
    /// The BMC's event log since the run began (the sweep at its end);
    /// `None` when the machine has no such log.
    fn sweep(&self) -> BoxFuture<'_, Option<Result<SelSweep, String>>> {
        Box::pin(async { None })
    }
    /// The BMC's event log entries since the run began, for a case that
    /// judges them (`ras.sel`, see `Check::needs_bmc_sel`); `None` when the
    /// machine has no such log.
    fn sel_delta(&self) -> BoxFuture<'_, Option<Result<Vec<SelEntry>, String>>> {
        Box::pin(async { None })
    }
    /// Powers the machine off and on through its BMC (a cold boot) and
    /// waits until it answers with a boot id other than `old`.
    fn power_cycle(&self, _old: String) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async { Err("this machine has no power control".to_string()) })
    }
    /// Waits, doing nothing, for the machine to come back by itself with a
    /// boot id other than `old` (after a crash the machine is expected to
    /// survive: a crash kernel saving its dump, a watchdog's reset).
    fn wait_boot(&self, old: String, within: Duration) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let deadline = Instant::now() + within;
            loop {
                let last = match self.boot_id().await {
                    Ok(id) if id != old => return Ok(id),
                    Ok(_) => "the old boot id still answers".to_string(),
                    Err(e) => e,
                };
                if Instant::now() >= deadline {
                    return Err(format!(
                        "no new boot within {} s ({last})",
                        within.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    }
    /// Where the BMC's event log stands now; `None` without one.
    fn sel_mark(&self) -> BoxFuture<'_, Option<SelCursor>> {
        Box::pin(async { None })
    }
    /// The BMC's event log entries after `mark` (from [`SutControl::sel_mark`]);
    /// `None` when the machine has no such log.
    fn sel_after(
        &self,
        _mark: Option<SelCursor>,
    ) -> BoxFuture<'_, Option<Result<Vec<SelEntry>, String>>> {
        Box::pin(async { None })
    }
}

/// The SEL entries of a run, as kept with it.
#[derive(Debug, Clone, PartialEq)]
pub struct SelSweep {
    /// One line per entry: id, time, severity, sensor type, message.
    pub text: Vec<u8>,
    pub entries: usize,
    pub critical: usize,
}

/// SEL entries as text, one tab-separated line each.
pub fn sel_text(entries: &[certlab_lab::bmc::SelEntry]) -> String {
    entries
        .iter()
        .map(|e| {
            format!(
                "{}\t{}\t{:?}\t{}\t{}\n",
                e.id,
                e.timestamp.map(|t| t.to_string()).unwrap_or_default(),
                e.severity,
                e.sensor_type.as_deref().unwrap_or(""),
                e.message
            )
        })
        .collect()
}

/// [`SutControl`] over a machine's target (for the boot id and the OS
/// reboot) and its BMC (power, console, SEL).
pub struct BmcSut {
    target: Arc<dyn Target>,
    bmc: Arc<dyn Bmc>,
    /// How long a boot may take before the machine counts as not back.
    boot_timeout: Duration,
    /// Where the console is captured while the run goes on.
    console: PathBuf,
    capture: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The SEL position when the run began: the crash evidence is what
    /// came after it.
    sel_start: tokio::sync::Mutex<Option<SelCursor>>,
}

impl BmcSut {
    /// Starts capturing the console to `console` (a file of the run's
    /// outputs) and notes where the SEL stands.
    pub async fn start(
        target: Arc<dyn Target>,
        bmc: Arc<dyn Bmc>,
        boot_timeout: Duration,
        console: PathBuf,
    ) -> BmcSut {
        let sel_start = match bmc.sel_since(None).await {
            Ok(page) => Some(page.cursor),
            Err(e) => {
                tracing::warn!(bmc = bmc.name(), error = %e, "SEL position not read");
                None
            }
        };
        let capture = {
            let bmc = bmc.clone();
            let out = console.clone();
            tokio::spawn(async move {
                if let Err(e) = bmc.console(out, None).await {
                    tracing::info!(bmc = bmc.name(), error = %e, "no console capture");
                }
            })
        };
        BmcSut {
            target,
            bmc,
            boot_timeout,
            console,
            capture: Mutex::new(Some(capture)),
            sel_start: tokio::sync::Mutex::new(sel_start),
        }
    }

    async fn read_boot_id(&self) -> Result<String, String> {
        let t = self.target.clone();
        tokio::task::spawn_blocking(move || {
            let o = t
                .exec(
                    "cat /proc/sys/kernel/random/boot_id",
                    Duration::from_secs(10),
                )
                .map_err(|e| e.to_string())?;
            let id = o.stdout_str().trim().to_string();
            if o.success() && !id.is_empty() {
                Ok(id)
            } else {
                Err(format!("`cat boot_id` exited {:?}", o.exit))
            }
        })
        .await
        .map_err(|e| format!("boot id task: {e}"))?
    }

    /// Waits until the OS answers with a boot id other than `old`.
    async fn wait_new_boot(&self, old: Option<&str>, since: Instant) -> Result<String, String> {
        let deadline = since + self.boot_timeout;
        let mut last: String;
        loop {
            match self.read_boot_id().await {
                Ok(id) if Some(id.as_str()) != old => return Ok(id),
                Ok(_) => last = "the old boot id still answers".into(),
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not back within {} s ({last})",
                    self.boot_timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for BmcSut {
    fn drop(&mut self) {
        if let Ok(mut c) = self.capture.lock() {
            if let Some(task) = c.take() {
                task.abort();
            }
        }
    }
}

impl SutControl for BmcSut {
    fn boot_id(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(self.read_boot_id())
    }

    fn reboot(&self, old: String) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let t = self.target.clone();
            // The session usually drops as the OS goes down: its error is
            // expected, the new boot id is what counts.
            let _ = tokio::task::spawn_blocking(move || {
                t.exec("systemctl reboot || /sbin/reboot", Duration::from_secs(15))
            })
            .await;
            let down_by = Duration::from_secs(60).min(self.boot_timeout / 2);
            let gone = loop {
                match self.read_boot_id().await {
                    Ok(id) if id == old && t0.elapsed() < down_by => {}
                    Ok(id) if id == old => break false,
                    _ => break true,
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            if !gone {
                // The OS did not reboot by itself: a reset through the BMC.
                self.bmc
                    .power(PowerAction::Reset)
                    .await
                    .map_err(|e| format!("reset through the BMC: {e}"))?;
            }
            self.wait_new_boot(Some(&old), t0).await
        })
    }

    fn recover(&self, old: Option<String>) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let deadline = t0 + self.boot_timeout;
            // A busy or slow BMC is asked again until the boot deadline.
            let state = loop {
                match self.bmc.power_status().await {
                    Ok(s) => break s,
                    Err(e) if e.is_retryable() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(format!("power status through the BMC: {e}")),
                }
            };
            let action = if state == PowerState::Off {
                PowerAction::On
            } else {
                PowerAction::Cycle
            };
            loop {
                match self.bmc.power(action).await {
                    Ok(()) => break,
                    Err(e) if e.is_retryable() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(format!("power {action} through the BMC: {e}")),
                }
            }
            self.wait_new_boot(old.as_deref(), t0)
                .await
                .map_err(|e| format!("after power {action} through the BMC: {e}"))
        })
    }

    fn crash_evidence(&self) -> BoxFuture<'_, Vec<(String, Vec<u8>)>> {
        Box::pin(async move {
            let mut out = Vec::new();
            // Let the console capture catch up: until nothing new came for
            // half a second (at most 5 s).
            let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
            let until = Instant::now() + Duration::from_secs(5);
            let mut seen = size(&self.console);
            let mut quiet_since = Instant::now();
            while Instant::now() < until && quiet_since.elapsed() < Duration::from_millis(500) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let now = size(&self.console);
                if now != seen {
                    seen = now;
                    quiet_since = Instant::now();
                }
            }
            // The console's last 64 KiB: where a panic's text is.
            if let Ok(bytes) = std::fs::read(&self.console) {
                let tail = bytes[bytes.len().saturating_sub(64 * 1024)..].to_vec();
                out.push(("console".to_string(), tail));
            }
            let start = self.sel_start.lock().await.clone();
            match self.bmc.sel_since(start).await {
                Ok(page) => {
                    out.push(("sel".to_string(), sel_text(&page.entries).into_bytes()));
                }
                Err(e) => out.push((
                    "sel".to_string(),
                    format!("the SEL could not be read: {e}\n").into_bytes(),
                )),
            }
            out
        })
    }

    fn sel_delta(&self) -> BoxFuture<'_, Option<Result<Vec<SelEntry>, String>>> {
        Box::pin(async move {
            let start = self.sel_start.lock().await.clone();
            self.sel_after(start).await
        })
    }

    fn power_cycle(&self, old: String) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let deadline = t0 + self.boot_timeout;
            loop {
                match self.bmc.power(PowerAction::Cycle).await {
                    Ok(()) => break,
                    Err(e) if e.is_retryable() && Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(format!("power cycle through the BMC: {e}")),
                }
            }
            self.wait_new_boot(Some(&old), t0)
                .await
                .map_err(|e| format!("after a power cycle through the BMC: {e}"))
        })
    }

    fn sel_mark(&self) -> BoxFuture<'_, Option<SelCursor>> {
        Box::pin(async move {
            match self.bmc.sel_since(None).await {
                Ok(page) => Some(page.cursor),
                Err(e) => {
                    tracing::warn!(bmc = self.bmc.name(), error = %e, "SEL position not read");
                    None
                }
            }
        })
    }

    fn sel_after(
        &self,
        mark: Option<SelCursor>,
    ) -> BoxFuture<'_, Option<Result<Vec<SelEntry>, String>>> {
        Box::pin(async move {
            Some(
                self.bmc
                    .sel_since(mark)
                    .await
                    .map(|page| page.entries)
                    .map_err(|e| format!("the SEL could not be read: {e}")),
            )
        })
    }

    fn sweep(&self) -> BoxFuture<'_, Option<Result<SelSweep, String>>> {
        Box::pin(async move {
            let start = self.sel_start.lock().await.clone();
            Some(match self.bmc.sel_since(start).await {
                Ok(page) => Ok(SelSweep {
                    text: sel_text(&page.entries).into_bytes(),
                    entries: page.entries.len(),
                    critical: page
                        .entries
                        .iter()
                        .filter(|e| e.severity == certlab_lab::bmc::Health::Critical)
                        .count(),
                }),
                Err(e) => Err(format!("the SEL could not be read: {e}")),
            })
        })
    }
}
