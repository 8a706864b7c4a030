//! The simulated lab: machines that live in the certlab process.
//!
//! A `[machine.sim]` table in `lab.toml` makes a [`SimMachine`]: a
//! [`SimBmc`] (implements [`crate::bmc::Bmc`]: power with delays and
//! transitional states, SEL, sensors, identity, console) and a [`SimTarget`]
//! (implements [`crate::Target`]) over one shared state, built from a real
//! machine's evidence ([`profile`]). The checks of a plan run on it
//! unchanged: the target answers the files and commands they read the way
//! the profiled machine would.
//!
//! Faults are seeded and deterministic ([`faults`]): the n-th operation of
//! a machine with a given seed always meets the same fate. Product defects
//! ([`Defect`]) change the machine itself, so the real checks find them.
//!
//! A machine is cheap: its profile (every dump) and its file tree are shared
//! through `Arc`s by all machines of the same profile and defect; what is
//! its own is a name, a seed, a power state, a console and a SEL.

pub mod bmc;
pub mod faults;
pub mod generate;
pub mod health;
pub mod profile;
pub mod system;
pub mod target;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub use bmc::SimBmc;
pub use faults::{FaultLevel, Faults};
pub use health::health_check;
pub use profile::{Profile, PROFILES};
pub use target::SimTarget;

use crate::bmc::{Health, SelEntry};
use crate::inventory::Lab;
use crate::scripted::Scripted;

/// A product defect a simulated machine can have: each makes exactly one
/// case of `server-basic` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// The last CPU is offline (fails `cpu.online`).
    OfflineCpu,
    /// A module was loaded without a signature: taint `E` (fails `kernel.taint`).
    KernelTaint,
    /// A corrected machine check in the kernel log (fails `kernel.log`).
    MceLog,
    /// A PCI function whose driver is in `modules.alias` is left unbound
    /// (fails `pci.drivers`).
    UnboundDevice,
}

impl Defect {
    pub const ALL: [Defect; 4] = [
        Defect::OfflineCpu,
        Defect::KernelTaint,
        Defect::MceLog,
        Defect::UnboundDevice,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Defect::OfflineCpu => "offline-cpu",
            Defect::KernelTaint => "kernel-taint",
            Defect::MceLog => "mce-log",
            Defect::UnboundDevice => "unbound-device",
        }
    }

    pub fn parse(s: &str) -> Option<Defect> {
        Defect::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The `server-basic` case this defect fails.
    pub fn fails_case(self) -> &'static str {
        match self {
            Defect::OfflineCpu => "cpu.online",
            Defect::KernelTaint => "kernel.taint",
            Defect::MceLog => "kernel.log",
            Defect::UnboundDevice => "pci.drivers",
        }
    }
}

impl fmt::Display for Defect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a `[machine.sim]` table says.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSpec {
    /// A name of [`PROFILES`].
    pub profile: String,
    pub faults: FaultLevel,
    pub seed: u64,
    pub defect: Option<Defect>,
    /// Multiplies every simulated delay (1.0: realistic; 0.001 for tests).
    pub time_scale: f64,
}

// `time_scale` is validated finite and positive when parsed.
impl Eq for SimSpec {}

impl SimSpec {
    pub fn new(profile: &str) -> SimSpec {
        SimSpec {
            profile: profile.to_string(),
            faults: FaultLevel::None,
            seed: 0,
            defect: None,
            time_scale: 1.0,
        }
    }

    /// A delay of `secs` simulated seconds, scaled.
    pub fn delay(&self, secs: f64) -> Duration {
        Duration::from_secs_f64((secs * self.time_scale).max(0.0))
    }
}

/// Chassis power as the simulated BMC keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Power {
    Off,
    PoweringOn {
        until: Instant,
    },
    /// On; the OS answers over SSH from `ready` on.
    On {
        ready: Instant,
    },
    PoweringOff {
        until: Instant,
    },
}

/// What changes while a simulated machine lives.
#[derive(Debug)]
pub(crate) struct State {
    pub power: Power,
    /// Boots since the simulation began (part of the boot id).
    pub boots: u64,
    /// The kernel panicked: nothing answers until the power is cycled.
    pub crashed: bool,
    pub console: String,
    pub sel: Vec<SelEntry>,
    pub next_sel_id: u64,
    /// Operations on the target so far (the fault stream's position).
    pub target_ops: u64,
    /// Operations on the BMC so far.
    pub bmc_ops: u64,
    /// After a sysrq panic: the crash kernel saves its dump until then,
    /// and the machine reboots by itself.
    pub kdump_until: Option<Instant>,
    /// The dumps the crash kernel left in the dump directory, by name.
    pub dumps: Vec<String>,
    /// A watchdog opened and left unfed resets the machine then.
    pub watchdog_at: Option<Instant>,
}

/// Console text kept per machine, at most (older text is dropped).
const CONSOLE_LIMIT: usize = 64 * 1024;

impl State {
    pub fn log_console(&mut self, text: &str) {
        self.console.push_str(text);
        if self.console.len() > CONSOLE_LIMIT {
            let cut = self.console.len() - CONSOLE_LIMIT / 2;
            let cut = (cut..self.console.len())
                .find(|i| self.console.is_char_boundary(*i))
                .unwrap_or(self.console.len());
            self.console.drain(..cut);
        }
    }

    pub fn log_sel(&mut self, severity: Health, sensor_type: &str, message: &str) {
        self.next_sel_id += 1;
        self.sel.push(SelEntry {
            id: self.next_sel_id.to_string(),
            timestamp: Some(time::OffsetDateTime::now_utc()),
            sensor_type: Some(sensor_type.to_string()),
            severity,
            message: message.to_string(),
        });
    }
}

/// One simulated machine: its spec, shared profile and file tree, and state.
#[derive(Debug)]
pub struct SimMachine {
    name: String,
    spec: SimSpec,
    profile: Arc<Profile>,
    system: Arc<Scripted>,
    faults: Faults,
    state: Mutex<State>,
}

/// Why a simulated machine could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("machine {machine}: unknown sim profile `{profile}` (known: {known})")]
    UnknownProfile {
        machine: String,
        profile: String,
        known: String,
    },
}

impl SimMachine {
    /// A machine powered on and booted, as a lab machine is found.
    pub fn new(name: &str, spec: SimSpec) -> Result<Arc<SimMachine>, SimError> {
        let profile = Profile::get(&spec.profile).ok_or_else(|| SimError::UnknownProfile {
            machine: name.to_string(),
            profile: spec.profile.clone(),
            known: profile::names().join(", "),
        })?;
        let system = system::shared(&profile, spec.defect);
        let mut state = State {
            power: Power::On {
                ready: Instant::now(),
            },
            boots: 1,
            crashed: false,
            console: String::new(),
            sel: Vec::new(),
            next_sel_id: 0,
            target_ops: 0,
            bmc_ops: 0,
            kdump_until: None,
            dumps: Vec::new(),
            watchdog_at: None,
        };
        state.log_sel(Health::Ok, "System Event", "System Boot Initiated");
        state.log_console(&system::boot_console(&profile, name));
        if spec.defect == Some(Defect::MceLog) {
            state.log_sel(
                Health::Warning,
                "Processor",
                "Correctable Machine Check Error",
            );
        }
        Ok(Arc::new(SimMachine {
            name: name.to_string(),
            faults: Faults::new(spec.faults, spec.seed, name),
            spec,
            profile,
            system,
            state: Mutex::new(state),
        }))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn spec(&self) -> &SimSpec {
        &self.spec
    }

    pub fn profile(&self) -> &Arc<Profile> {
        &self.profile
    }

    /// The machine's BMC.
    pub fn bmc(self: &Arc<Self>) -> SimBmc {
        SimBmc::new(self.clone())
    }

    /// The machine as a target (its SSH side).
    pub fn target(self: &Arc<Self>) -> SimTarget {
        SimTarget::new(self.clone())
    }

    /// Whether the kernel has panicked and waits for a power cycle.
    pub fn is_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// The console text kept so far.
    pub fn console_text(&self) -> String {
        self.lock().console.clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a state that is still
        // coherent (every update is a single assignment).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Advances transitional power states whose time has come.
    pub(crate) fn settle(&self, st: &mut State) {
        let now = Instant::now();
        if st.crashed && st.kdump_until.is_some_and(|t| now >= t) {
            // The crash kernel saved its dump and reboots the machine.
            st.kdump_until = None;
            let name = system::dump_name(&self.profile, &st.dumps);
            st.log_console(&system::kdump_console(&self.profile, &name));
            st.dumps.push(name);
            st.crashed = false;
            st.power = Power::PoweringOn { until: now };
        }
        if st.watchdog_at.is_some_and(|t| now >= t) {
            st.watchdog_at = None;
            if matches!(st.power, Power::On { .. }) && !st.crashed {
                st.log_console("\r\n[ watchdog ] hardware watchdog timer expired: resetting\r\n");
                st.log_sel(
                    Health::Warning,
                    "Watchdog 2",
                    "Timer expired, hard reset (OS watchdog)",
                );
                st.power = Power::PoweringOn { until: now };
            }
        }
        match st.power {
            Power::PoweringOn { until } if now >= until => {
                st.boots += 1;
                st.crashed = false;
                st.kdump_until = None;
                st.watchdog_at = None;
                st.power = Power::On {
                    ready: now + self.spec.delay(system::BOOT_SECS),
                };
                st.log_sel(Health::Ok, "System Event", "System Boot Initiated");
                let text = system::boot_console(&self.profile, &self.name);
                st.log_console(&text);
            }
            Power::PoweringOff { until } if now >= until => {
                st.power = Power::Off;
                st.crashed = false;
                st.kdump_until = None;
                st.watchdog_at = None;
            }
            _ => {}
        }
    }
}

/// Every simulated machine of a lab, made once and shared by whoever opens
/// them (the daemon's targets and health checks, the BMC commands).
#[derive(Debug, Default, Clone)]
pub struct SimLab {
    machines: BTreeMap<String, Arc<SimMachine>>,
}

impl SimLab {
    /// The `[machine.sim]` machines of `lab`.
    pub fn from_lab(lab: &Lab) -> Result<SimLab, SimError> {
        let mut machines = BTreeMap::new();
        for m in &lab.machines {
            if let Some(spec) = &m.sim {
                machines.insert(m.name.clone(), SimMachine::new(&m.name, spec.clone())?);
            }
        }
        Ok(SimLab { machines })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<SimMachine>> {
        self.machines.get(name)
    }

    pub fn len(&self) -> usize {
        self.machines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defects_round_trip_and_name_their_case() {
        for d in Defect::ALL {
            assert_eq!(Defect::parse(d.as_str()), Some(d));
            assert!(!d.fails_case().is_empty());
        }
        assert_eq!(Defect::parse("none"), None);
    }

    #[test]
    fn unknown_profile_is_refused_with_the_known_ones() {
        let e = SimMachine::new("m", SimSpec::new("vax-11")).unwrap_err();
        assert!(e.to_string().contains("kunpeng-920"), "{e}");
    }

    #[test]
    fn machines_of_one_profile_share_their_tree() {
        let a = SimMachine::new("a", SimSpec::new("phytium-d2000")).unwrap();
        let b = SimMachine::new("b", SimSpec::new("phytium-d2000")).unwrap();
        assert!(Arc::ptr_eq(&a.system, &b.system));
        assert!(Arc::ptr_eq(&a.profile, &b.profile));
    }
}
