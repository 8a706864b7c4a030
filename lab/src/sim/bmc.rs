//! [`SimBmc`]: the BMC of a simulated machine.
//!
//! Power changes pass through transitional states (`powering_on` for
//! [`POWER_ON_SECS`], `powering_off` for [`POWER_OFF_SECS`], longer under
//! heavy faults), then the OS boots for [`system::BOOT_SECS`] before SSH
//! answers; a power cycle or reset brings a crashed machine back with a
//! new boot id. Each call answers after [`CALL_SECS`] and may, by the
//! machine's fault stream, time out, answer 5xx or say it is busy — all
//! retryable [`BmcError`]s, as a real BMC's would be.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bmc::{
    Bmc, BmcError, BmcFuture, BootOverride, ConsoleCapture, Firmware, Health, Identity,
    PowerAction, PowerState, SelCursor, SelPage, Sensor, Thresholds,
};
use crate::sim::faults::BmcFault;
use crate::sim::{system, Power, SimMachine};

/// Simulated seconds a BMC takes to answer a call.
pub const CALL_SECS: f64 = 0.05;
/// Simulated seconds a call that times out hangs before failing.
pub const TIMEOUT_SECS: f64 = 10.0;
/// Simulated seconds in `powering_on`.
pub const POWER_ON_SECS: f64 = 8.0;
/// Simulated seconds in `powering_off` (graceful shutdown).
pub const POWER_OFF_SECS: f64 = 15.0;
/// Simulated seconds in `powering_off` for a forced off.
pub const FORCE_OFF_SECS: f64 = 2.0;

/// The BMC of a simulated machine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimBmc {
    machine: Arc<SimMachine>,
}

impl SimBmc {
    pub fn new(machine: Arc<SimMachine>) -> SimBmc {
        SimBmc { machine }
    }

    /// Waits the call's time and draws its fate.
    async fn call(&self, what: &str) -> Result<(), BmcError> {
        let n = {
            let mut st = self.machine.lock();
            st.bmc_ops += 1;
            st.bmc_ops
        };
        let spec = &self.machine.spec;
        let bmc = self.machine.name.clone();
        match self.machine.faults.bmc(n) {
            BmcFault::None => {
                tokio::time::sleep(spec.delay(CALL_SECS)).await;
                Ok(())
            }
            BmcFault::Timeout => {
                let after = spec.delay(TIMEOUT_SECS);
                tokio::time::sleep(after).await;
                Err(BmcError::Timeout {
                    bmc,
                    what: what.to_string(),
                    after,
                })
            }
            BmcFault::Server5xx => {
                tokio::time::sleep(spec.delay(CALL_SECS)).await;
                Err(BmcError::Server5xx {
                    bmc,
                    status: 500,
                    message: format!("{what}: internal error (simulated)"),
                })
            }
            BmcFault::Busy => {
                tokio::time::sleep(spec.delay(CALL_SECS)).await;
                Err(BmcError::Busy {
                    bmc,
                    message: format!("{what}: node busy (simulated)"),
                })
            }
        }
    }

    fn transition(&self, secs: f64) -> Instant {
        let slow = self.machine.faults.rates().power_slowdown.max(1.0);
        Instant::now() + self.machine.spec.delay(secs * slow)
    }

    /// Applies a power action to the state (the call already succeeded).
    fn apply(&self, action: PowerAction) {
        let mut st = self.machine.lock();
        self.machine.settle(&mut st);
        let on = matches!(st.power, Power::On { .. } | Power::PoweringOn { .. });
        let next = match action {
            PowerAction::On if on => st.power,
            PowerAction::On | PowerAction::Cycle | PowerAction::Reset => {
                if on && !st.crashed {
                    st.log_console("\r\n[  OK  ] Reached target System Reboot.\r\nreboot: Restarting system\r\n");
                }
                Power::PoweringOn {
                    until: self.transition(POWER_ON_SECS),
                }
            }
            PowerAction::Off | PowerAction::ForceOff if !on => st.power,
            PowerAction::Off => {
                if !st.crashed {
                    st.log_console(
                        "\r\n[  OK  ] Reached target System Power Off.\r\nreboot: Power down\r\n",
                    );
                }
                // A panicked kernel ignores the power button; the BMC
                // forces it off after its ACPI timeout.
                Power::PoweringOff {
                    until: self.transition(POWER_OFF_SECS),
                }
            }
            PowerAction::ForceOff => Power::PoweringOff {
                until: self.transition(FORCE_OFF_SECS),
            },
        };
        if next != st.power {
            // Whatever the crash kernel or a watchdog was about to do is moot.
            st.kdump_until = None;
            st.watchdog_at = None;
        }
        st.power = next;
        let what = match action {
            PowerAction::On | PowerAction::Cycle | PowerAction::Reset => {
                "Power Unit: power on/cycle"
            }
            PowerAction::Off | PowerAction::ForceOff => "Power Unit: power off/down",
        };
        st.log_sel(Health::Ok, "Power Unit", what);
    }

    fn state(&self) -> PowerState {
        let mut st = self.machine.lock();
        self.machine.settle(&mut st);
        match st.power {
            Power::Off => PowerState::Off,
            Power::PoweringOn { .. } => PowerState::PoweringOn,
            Power::On { .. } => PowerState::On,
            Power::PoweringOff { .. } => PowerState::PoweringOff,
        }
    }
}

impl Bmc for SimBmc {
    fn name(&self) -> &str {
        &self.machine.name
    }

    fn power_status(&self) -> BmcFuture<'_, PowerState> {
        Box::pin(async move {
            self.call("power status").await?;
            Ok(self.state())
        })
    }

    fn power(&self, action: PowerAction) -> BmcFuture<'_, ()> {
        Box::pin(async move {
            self.call(&format!("power {action}")).await?;
            self.apply(action);
            Ok(())
        })
    }

    fn set_boot(&self, _boot: BootOverride) -> BmcFuture<'_, ()> {
        Box::pin(async move { self.call("boot override").await })
    }

    fn sel_since(&self, cursor: Option<SelCursor>) -> BmcFuture<'_, SelPage> {
        Box::pin(async move {
            self.call("sel").await?;
            let after: u64 = cursor.as_ref().and_then(|c| c.0.parse().ok()).unwrap_or(0);
            let st = self.machine.lock();
            let entries: Vec<_> = st
                .sel
                .iter()
                .filter(|e| e.id.parse::<u64>().unwrap_or(0) > after)
                .cloned()
                .collect();
            Ok(SelPage {
                entries,
                cursor: SelCursor(st.next_sel_id.to_string()),
            })
        })
    }

    fn sel_clear(&self) -> BmcFuture<'_, ()> {
        Box::pin(async move {
            self.call("sel clear").await?;
            self.machine.lock().sel.clear();
            Ok(())
        })
    }

    fn sensors(&self) -> BmcFuture<'_, Vec<Sensor>> {
        Box::pin(async move {
            self.call("sensors").await?;
            let on = self.state() == PowerState::On;
            let f = &self.machine.faults;
            let jitter = |k: u64, span: f64| (f.value(7, k) % 1000) as f64 / 1000.0 * span;
            let sensor = |name: &str, ty: &str, reading: f64, unit: &str, t: Thresholds| Sensor {
                name: name.to_string(),
                sensor_type: ty.to_string(),
                reading: Some(reading),
                unit: Some(unit.to_string()),
                status: t.judge(reading),
                thresholds: t,
            };
            let upper = |caution, critical| Thresholds {
                upper_caution: Some(caution),
                upper_critical: Some(critical),
                ..Thresholds::default()
            };
            let load = if on { 1.0 } else { 0.0 };
            Ok(vec![
                sensor(
                    "Inlet Temp",
                    "Temperature",
                    22.0 + jitter(1, 4.0),
                    "Cel",
                    upper(42.0, 47.0),
                ),
                sensor(
                    "CPU0 Temp",
                    "Temperature",
                    30.0 + load * (20.0 + jitter(2, 10.0)),
                    "Cel",
                    upper(90.0, 100.0),
                ),
                sensor(
                    "Fan1",
                    "Fan",
                    3000.0 + load * 4000.0 + jitter(3, 500.0),
                    "RPM",
                    Thresholds {
                        lower_critical: Some(500.0),
                        ..Thresholds::default()
                    },
                ),
                sensor(
                    "PSU1 Power",
                    "Power",
                    40.0 + load * (300.0 + jitter(4, 100.0)),
                    "W",
                    upper(1400.0, 1600.0),
                ),
            ])
        })
    }

    fn identity(&self) -> BmcFuture<'_, Identity> {
        Box::pin(async move {
            self.call("identity").await?;
            let p = &self.machine.profile;
            let serial = format!(
                "SIM{:012X}",
                self.machine.faults.value(8, 0) & 0xffff_ffff_ffff
            );
            Ok(Identity {
                bmc_firmware: Some("certlab-sim 1.0".to_string()),
                bios_version: p.dmi.get("bios_version").cloned(),
                manufacturer: p.dmi.get("sys_vendor").cloned(),
                model: p
                    .dmi
                    .get("product_name")
                    .cloned()
                    .or_else(|| Some(p.def.title.to_string())),
                serial: Some(serial),
                firmware: vec![Firmware {
                    id: "BMC".to_string(),
                    name: "BMC firmware".to_string(),
                    version: Some("certlab-sim 1.0".to_string()),
                }],
            })
        })
    }

    fn console(&self, out: PathBuf, duration: Option<Duration>) -> BmcFuture<'_, ConsoleCapture> {
        Box::pin(async move {
            self.call("console").await?;
            let bmc = self.machine.name.clone();
            let io = |e: std::io::Error| BmcError::Config {
                bmc: bmc.clone(),
                message: format!("console capture to {}: {e}", out.display()),
            };
            let start = Instant::now();
            let mut sent = 0usize;
            let mut bytes = 0u64;
            loop {
                let text = self.machine.console_text();
                // The kept text may have been trimmed at its front: send
                // only what is new since the last look.
                let new = text.get(sent..).unwrap_or(text.as_str());
                if !new.is_empty() {
                    use std::io::Write;
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&out)
                        .map_err(io)?;
                    f.write_all(new.as_bytes()).map_err(io)?;
                    bytes += new.len() as u64;
                }
                sent = text.len();
                if duration.is_some_and(|d| start.elapsed() >= d) {
                    break;
                }
                let left = duration.map_or(Duration::from_millis(100), |d| {
                    d.saturating_sub(start.elapsed())
                        .min(Duration::from_millis(100))
                });
                tokio::time::sleep(left).await;
            }
            Ok(ConsoleCapture { path: out, bytes })
        })
    }
}

/// How long a power-on plus boot takes on this machine, unscaled by faults.
pub fn boot_time(machine: &SimMachine) -> Duration {
    machine
        .spec()
        .delay(POWER_ON_SECS * machine.faults.rates().power_slowdown.max(1.0) + system::BOOT_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{FaultLevel, SimSpec};
    use crate::Target;

    fn machine(faults: FaultLevel) -> Arc<SimMachine> {
        machine_at(faults, 0.0005)
    }

    fn machine_at(faults: FaultLevel, time_scale: f64) -> Arc<SimMachine> {
        SimMachine::new(
            "sim-bmc",
            SimSpec {
                faults,
                seed: 11,
                time_scale,
                ..SimSpec::new("loongson-3a5000")
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn power_cycle_passes_transitional_states_and_changes_the_boot() {
        // Slow enough (power off 0.75 s) that the status read right after
        // the request lands inside the transition even on a loaded machine;
        // at the default scale (7.5 ms) it once read `off` under load 19.
        let m = machine_at(FaultLevel::None, 0.05);
        let bmc = m.bmc();
        let t = m.target();
        let boot = t.boot_id();
        assert_eq!(bmc.power_status().await.unwrap(), PowerState::On);
        bmc.power(PowerAction::Off).await.unwrap();
        assert_eq!(bmc.power_status().await.unwrap(), PowerState::PoweringOff);
        assert!(t.exec("uname -r", Duration::from_secs(1)).is_err());
        let deadline = Instant::now() + Duration::from_secs(10);
        bmc.wait_for(PowerState::Off, deadline).await.unwrap();
        bmc.power(PowerAction::On).await.unwrap();
        bmc.wait_for(PowerState::On, deadline).await.unwrap();
        tokio::time::sleep(boot_time(&m)).await;
        let o = t
            .exec(
                "cat /proc/sys/kernel/random/boot_id",
                Duration::from_secs(1),
            )
            .unwrap();
        assert_ne!(o.stdout_str().trim(), boot);
        let sel = bmc.sel_since(None).await.unwrap();
        assert!(sel.entries.len() >= 3, "{:?}", sel.entries);
        let later = bmc.sel_since(Some(sel.cursor.clone())).await.unwrap();
        assert!(later.entries.is_empty());
    }

    #[tokio::test]
    async fn heavy_faults_give_retryable_errors_only() {
        let m = machine(FaultLevel::Heavy);
        let bmc = m.bmc();
        let mut errors = 0;
        for _ in 0..300 {
            match bmc.power_status().await {
                Ok(_) => {}
                Err(e) => {
                    assert!(e.is_retryable(), "{e}");
                    errors += 1;
                }
            }
        }
        assert!(errors > 10, "{errors}");
        let id = bmc.identity().await;
        let sensors = bmc.sensors().await;
        assert!(id.is_ok() || id.as_ref().is_err_and(|e| e.is_retryable()));
        assert!(sensors.is_ok() || sensors.as_ref().is_err_and(|e| e.is_retryable()));
    }
}
