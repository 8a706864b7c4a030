//! [`SimTarget`]: the SSH side of a simulated machine.
//!
//! Files and command outputs come from the machine's shared system
//! ([`super::system`]); what is the machine's own (host name, boot id,
//! machine id) is answered here. Every operation first asks the machine's
//! state: a machine that is off, booting or crashed does not answer
//! ([`TargetError::Connect`]), as an SSH server would not. Then the fault
//! stream decides: a dropped connection is [`TargetError::Disconnected`]
//! (an infrastructure error, never a product failure), a crash makes the
//! kernel panic (panic text on the console, a critical SEL entry, nothing
//! answers until the machine is power-cycled through its BMC), a slow
//! command takes twenty times as long. `reboot` (`systemctl reboot`,
//! `shutdown -r now`) and `poweroff` take the OS down as they would, and
//! `echo c > /proc/sysrq-trigger` makes the kernel panic on purpose, so an
//! orchestrator's declared reboots and crash handling can be exercised.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bmc::Health;
use crate::sim::faults::TargetFault;
use crate::sim::{system, Power, SimMachine};
use crate::target::{DirEntry, ExecOutput, Target, TargetError};

/// The target of a simulated machine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SimTarget {
    machine: Arc<SimMachine>,
}

impl SimTarget {
    pub fn new(machine: Arc<SimMachine>) -> SimTarget {
        SimTarget { machine }
    }

    pub fn machine(&self) -> &Arc<SimMachine> {
        &self.machine
    }

    /// The current boot's id (changes with every boot).
    pub fn boot_id(&self) -> String {
        let boots = self.machine.lock().boots;
        self.boot_id_of(boots)
    }

    fn boot_id_of(&self, boots: u64) -> String {
        let v = self.machine.faults.value(3, boots);
        let w = self.machine.faults.value(4, boots);
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            v >> 32,
            (v >> 16) & 0xffff,
            v & 0xfff,
            w >> 52,
            w & 0xffff_ffff_ffff
        )
    }

    fn machine_id(&self) -> String {
        let v = self.machine.faults.value(5, 0);
        let w = self.machine.faults.value(6, 0);
        format!("{v:016x}{w:016x}")
    }

    fn unreachable(&self, reason: &str) -> TargetError {
        TargetError::Connect {
            target: self.machine.name.clone(),
            address: format!("{}:22 (simulated)", self.machine.name),
            reason: reason.to_string(),
        }
    }

    /// Checks that the OS answers, and draws this operation's fate.
    /// Returns the boot count the operation runs in.
    fn enter(&self, command: bool) -> Result<(TargetFault, u64), TargetError> {
        let mut st = self.machine.lock();
        self.machine.settle(&mut st);
        if st.crashed {
            return Err(self.unreachable("connection timed out (the machine does not answer)"));
        }
        match st.power {
            Power::Off | Power::PoweringOff { .. } => {
                return Err(self.unreachable("no route to host (powered off)"))
            }
            Power::PoweringOn { .. } => {
                return Err(self.unreachable("no route to host (powering on)"))
            }
            Power::On { ready } if Instant::now() < ready => {
                return Err(self.unreachable("connection refused (booting)"))
            }
            Power::On { .. } => {}
        }
        st.target_ops += 1;
        let fault = if command {
            self.machine.faults.target(st.target_ops)
        } else {
            TargetFault::None
        };
        if fault == TargetFault::Crash {
            st.crashed = true;
            let uptime = 3600 + st.target_ops;
            let text = system::panic_console(&self.machine.profile, uptime);
            st.log_console(&text);
            st.log_sel(
                Health::Critical,
                "OS Critical Stop",
                "Run-time critical stop: kernel panic",
            );
        }
        Ok((fault, st.boots))
    }

    fn output(stdout: String, stderr: String, exit: i32, duration: Duration) -> ExecOutput {
        ExecOutput {
            exit: Some(exit),
            stdout: stdout.into_bytes(),
            stderr: stderr.into_bytes(),
            duration,
            timed_out: false,
        }
    }

    /// Commands whose answer is this machine's own or depends on arguments.
    fn own_command(&self, command: &str, boots: u64) -> Option<(String, String, i32, f64)> {
        let c = command.trim();
        let prof = &self.machine.profile;
        if let Some(rest) = c.strip_prefix("command -v ") {
            // `command -v PROG`, with or without redirections after it.
            let prog = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_matches('\'');
            return Some(if system::installed(prof).contains(&prog) {
                (
                    format!("/usr/bin/{prog}\n"),
                    String::new(),
                    0,
                    system::COMMAND_SECS,
                )
            } else {
                (String::new(), String::new(), 1, system::COMMAND_SECS)
            });
        }
        if c == "uname -n -r -m" {
            return Some((
                format!(
                    "{} {} {}\n",
                    self.machine.name, prof.def.kernel, prof.def.arch
                ),
                String::new(),
                0,
                system::COMMAND_SECS,
            ));
        }
        if c == "id -u" {
            // The lab reaches its machines as root.
            return Some(("0\n".to_string(), String::new(), 0, system::COMMAND_SECS));
        }
        if c == "uname -n" || c == "hostname" {
            return Some((
                format!("{}\n", self.machine.name),
                String::new(),
                0,
                system::COMMAND_SECS,
            ));
        }
        if c == "cat /proc/sys/kernel/random/boot_id" {
            return Some((
                format!("{}\n", self.boot_id_of(boots)),
                String::new(),
                0,
                system::COMMAND_SECS,
            ));
        }
        if let Some(rest) = c.strip_prefix("memtester ") {
            let mib = rest
                .split_whitespace()
                .next()
                .and_then(|s| s.trim_end_matches(['M', 'm']).parse::<u64>().ok())
                .unwrap_or(0);
            let out = format!(
                "memtester version 4.6.0 (64-bit)\nCopyright (C) 2001-2020 Charles Cazabon.\nLicensed under the GNU General Public License version 2 (only).\n\npagesize is 4096\npagesizemask is 0xfffffffffffff000\nwant {mib}MB ({} bytes)\ngot  {mib}MB ({} bytes), trying mlock ...locked.\nLoop 1/1:\n  Stuck Address       : ok\n  Random Value        : ok\n  Compare XOR         : ok\n  Compare SUB         : ok\n  Compare MUL         : ok\n  Compare DIV         : ok\n  Compare OR          : ok\n  Compare AND         : ok\n  Sequential Increment: ok\n  Solid Bits          : ok\n  Block Sequential    : ok\n  Checkerboard        : ok\n  Bit Spread          : ok\n  Bit Flip            : ok\n  Walking Ones        : ok\n  Walking Zeroes      : ok\n\nDone.\n",
                mib << 20,
                mib << 20
            );
            return Some((out, String::new(), 0, system::MEMTEST_SECS));
        }
        if c.starts_with("set -e; d=$(mktemp -d") && c.contains("certlab-seqread") {
            let mib: u64 = c
                .split("count=")
                .nth(1)
                .and_then(|s| s.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(256);
            let secs = mib as f64 / system::SEQREAD_MIB_S;
            let bytes = mib << 20;
            let err = format!(
                "{bytes} bytes ({} MB, {mib} MiB) copied, {secs:.4} s, {:.1} GB/s\n",
                bytes / 1_000_000,
                bytes as f64 / secs / 1e9
            );
            return Some(("mode=direct\n".to_string(), err, 0, system::SEQREAD_SECS));
        }
        None
    }

    /// The files of a dump the crash kernel left, if `dir` is one.
    fn dump_files(&self, dir: &str, dumps: &[String]) -> Option<Vec<(String, String)>> {
        let name = dir.strip_prefix(system::CRASH_DIR)?.strip_prefix('/')?;
        dumps
            .iter()
            .any(|d| d == name)
            .then(|| system::dump_files(&self.machine.profile, name))
    }

    fn own_file(&self, path: &str) -> Option<String> {
        match path {
            "/etc/hostname" | "/proc/sys/kernel/hostname" => {
                Some(format!("{}\n", self.machine.name))
            }
            "/proc/sys/kernel/random/boot_id" => Some(format!("{}\n", self.boot_id())),
            "/etc/machine-id" => Some(format!("{}\n", self.machine_id())),
            _ => None,
        }
    }
}

/// Commands that take the OS down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OsAction {
    Reboot,
    PowerOff,
    /// `echo c > /proc/sysrq-trigger`: the kernel panics on purpose.
    Panic,
}

impl OsAction {
    fn of(command: &str) -> Option<OsAction> {
        // `A || B`: a shell runs B only when A fails, and A does not.
        let c = command.split("||").next().unwrap_or(command).trim();
        let c = c.strip_prefix("sudo ").unwrap_or(c);
        match c {
            "reboot" | "/sbin/reboot" | "systemctl reboot" | "shutdown -r now" => {
                Some(OsAction::Reboot)
            }
            "poweroff" | "/sbin/poweroff" | "systemctl poweroff" | "shutdown -h now" => {
                Some(OsAction::PowerOff)
            }
            _ if c.contains("/proc/sysrq-trigger") && c.starts_with("echo c") => {
                Some(OsAction::Panic)
            }
            _ => None,
        }
    }
}

impl SimTarget {
    /// Carries out a reboot, power-off or panic asked for by a command:
    /// the command returns (exit 0) as the OS goes down, except a panic,
    /// whose connection dies with the kernel.
    fn os_action(&self, action: OsAction, fault: TargetFault) -> Result<ExecOutput, TargetError> {
        let mut st = self.machine.lock();
        let now = Instant::now();
        match action {
            OsAction::Reboot => {
                st.log_console(
                    "\r\n[  OK  ] Reached target System Reboot.\r\nreboot: Restarting system\r\n",
                );
                st.power = Power::PoweringOn {
                    until: now + self.machine.spec.delay(system::WARM_REBOOT_SECS),
                };
            }
            OsAction::PowerOff => {
                st.log_console(
                    "\r\n[  OK  ] Reached target System Power Off.\r\nreboot: Power down\r\n",
                );
                st.power = Power::PoweringOff {
                    until: now + self.machine.spec.delay(system::WARM_REBOOT_SECS),
                };
            }
            OsAction::Panic => {
                st.crashed = true;
                // The crash kernel is loaded: it saves a dump and reboots.
                st.kdump_until = Some(now + self.machine.spec.delay(system::KDUMP_SECS));
                let text = system::sysrq_console(&self.machine.profile, 3600 + st.target_ops);
                st.log_console(&text);
                st.log_sel(
                    Health::Critical,
                    "OS Critical Stop",
                    "Run-time critical stop: kernel panic",
                );
                return Err(TargetError::Disconnected {
                    target: self.machine.name.clone(),
                    reason: "the connection went silent (the kernel panicked)".to_string(),
                });
            }
        }
        if fault == TargetFault::Crash {
            st.crashed = true;
        }
        Ok(Self::output(
            String::new(),
            String::new(),
            0,
            Duration::ZERO,
        ))
    }
}

impl Target for SimTarget {
    fn name(&self) -> &str {
        &self.machine.name
    }

    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        let (fault, boots) = self.enter(true)?;
        let spec = &self.machine.spec;
        if let Some(action) = OsAction::of(command) {
            return self.os_action(action, fault);
        }
        if command.starts_with(": certlab watchdog-starve;") {
            // Opened, fed once and closed without the magic close: the
            // hardware resets the machine when its timeout runs out.
            let mut st = self.machine.lock();
            st.watchdog_at = Some(Instant::now() + spec.delay(system::WATCHDOG_TIMEOUT_S as f64));
            st.log_console("\r\n[ 3700.000001] watchdog: watchdog0: watchdog did not stop!\r\n");
            return Ok(Self::output(
                String::new(),
                String::new(),
                0,
                Duration::ZERO,
            ));
        }
        let (stdout, stderr, exit, secs) = match self.own_command(command, boots) {
            Some(o) => o,
            None => {
                let o = self.machine.system.exec(command, timeout)?;
                (
                    o.stdout_str(),
                    o.stderr_str(),
                    o.exit.unwrap_or(-1),
                    system::COMMAND_SECS,
                )
            }
        };
        let secs = if fault == TargetFault::Slow {
            secs * 20.0
        } else {
            secs
        };
        let took = spec.delay(secs);
        match fault {
            TargetFault::Drop | TargetFault::Crash => {
                std::thread::sleep(took.min(timeout) / 2);
                return Err(TargetError::Disconnected {
                    target: self.machine.name.clone(),
                    reason: if fault == TargetFault::Crash {
                        "the connection went silent in the middle of the command (no answer to keepalives)"
                    } else {
                        "connection reset by peer in the middle of the command"
                    }
                    .to_string(),
                });
            }
            TargetFault::Slow | TargetFault::None => {}
        }
        if took > timeout {
            std::thread::sleep(timeout);
            return Ok(ExecOutput {
                exit: None,
                stdout: Vec::new(),
                stderr: Vec::new(),
                duration: timeout,
                timed_out: true,
            });
        }
        std::thread::sleep(took);
        Ok(Self::output(stdout, stderr, exit, took))
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        self.enter(false)?;
        if let Some(s) = self.own_file(path) {
            return Ok(s.into_bytes());
        }
        let dumps = self.machine.lock().dumps.clone();
        if let Some((dir, file)) = path.rsplit_once('/') {
            if let Some(files) = self.dump_files(dir, &dumps) {
                if let Some((_, text)) = files.into_iter().find(|(n, _)| n == file) {
                    return Ok(text.into_bytes());
                }
            }
        }
        self.machine.system.read_file(path)
    }

    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        self.enter(false)?;
        let dumps = self.machine.lock().dumps.clone();
        let path = path.trim_end_matches('/');
        if path == system::CRASH_DIR {
            let mut entries = self.machine.system.list_dir(path)?;
            entries.extend(dumps.into_iter().map(|name| DirEntry {
                name,
                is_dir: true,
                is_symlink: false,
            }));
            return Ok(entries);
        }
        if let Some(files) = self.dump_files(path, &dumps) {
            return Ok(files
                .into_iter()
                .map(|(name, _)| DirEntry {
                    name,
                    is_dir: false,
                    is_symlink: false,
                })
                .collect());
        }
        self.machine.system.list_dir(path)
    }

    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        self.enter(false)?;
        self.machine.system.read_link(path)
    }

    fn put_file(&self, _path: &str, _data: &[u8], _mode: u32) -> Result<(), TargetError> {
        // Accepted and forgotten: nothing on a simulated machine runs it.
        self.enter(false)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{FaultLevel, SimSpec};

    fn spec(profile: &str) -> SimSpec {
        SimSpec {
            time_scale: 0.0,
            ..SimSpec::new(profile)
        }
    }

    #[test]
    fn answers_as_the_profiled_machine() {
        let m = SimMachine::new("sim-0001", spec("kunpeng-920")).unwrap();
        let t = m.target();
        let u = t.exec("uname -n -r -m", Duration::from_secs(5)).unwrap();
        assert!(
            u.stdout_str().starts_with("sim-0001 5.10.0"),
            "{}",
            u.stdout_str()
        );
        assert!(u.stdout_str().trim_end().ends_with("aarch64"));
        let cpus = t.read_text("/sys/devices/system/cpu/online").unwrap();
        assert_eq!(cpus, "0-127");
        let has = |p: &str| {
            t.exec(
                &format!("command -v {p} >/dev/null 2>&1"),
                Duration::from_secs(5),
            )
            .unwrap()
            .exit
                == Some(0)
        };
        assert!(has("memtester"));
        assert!(has("lspci"));
        assert!(!has("nvidia-smi"));
        // The probe as suites' recorder runs it (no redirection).
        let o = t
            .exec("command -v memtester", Duration::from_secs(5))
            .unwrap();
        assert_eq!(
            (o.exit, o.stdout_str().trim()),
            (Some(0), "/usr/bin/memtester")
        );
        let o = t
            .exec("command -v memtesterx", Duration::from_secs(5))
            .unwrap();
        assert_eq!(o.exit, Some(1));
        let walk = t
            .exec(": certlab pci-walk; for d in …", Duration::from_secs(5))
            .unwrap();
        assert!(
            walk.stdout_str().contains("driver=hns3"),
            "{}",
            walk.stdout_str()
        );
    }

    #[test]
    fn reboot_takes_the_os_down_and_brings_a_new_boot() {
        let m = SimMachine::new("sim-reboot", spec("amd-epyc-a100")).unwrap();
        let t = m.target();
        let before = t.boot_id();
        // As the orchestrator asks for it.
        let o = t
            .exec("systemctl reboot || /sbin/reboot", Duration::from_secs(5))
            .unwrap();
        assert_eq!(o.exit, Some(0));
        // time_scale 0: the reboot is over at the next look.
        let after = t
            .exec(
                "cat /proc/sys/kernel/random/boot_id",
                Duration::from_secs(5),
            )
            .unwrap();
        assert_ne!(after.stdout_str().trim(), before);
        assert!(m.console_text().contains("Restarting system"));
        let booted = after.stdout_str().trim().to_string();
        let e = t
            .exec("echo c > /proc/sysrq-trigger", Duration::from_secs(5))
            .unwrap_err();
        assert!(matches!(e, TargetError::Disconnected { .. }), "{e}");
        assert!(m.is_crashed());
        assert!(m.console_text().contains("sysrq triggered crash"));
        // The crash kernel saves a dump and reboots the machine by itself
        // (time_scale 0: at the next look).
        assert!(t.exec("uname -r", Duration::from_secs(5)).is_ok());
        assert_ne!(t.boot_id(), booted);
        let dumps = t.list_dir("/var/crash").unwrap();
        let dir = dumps.iter().find(|e| e.is_dir).expect("a dump directory");
        assert_eq!(dir.name.len(), 12, "Debian's YYYYMMDDHHMM: {}", dir.name);
        let files = t.list_dir(&format!("/var/crash/{}", dir.name)).unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let dmesg = format!("dmesg.{}", dir.name);
        assert!(names.contains(&dmesg.as_str()), "{names:?}");
        let text = t
            .read_text(&format!("/var/crash/{}/{dmesg}", dir.name))
            .unwrap();
        assert!(text.contains("sysrq: Trigger a crash"), "{text}");
        assert!(m.console_text().contains("saved vmcore"));
    }

    #[test]
    fn a_starved_watchdog_resets_the_machine() {
        let m = SimMachine::new("sim-wd", spec("kunpeng-920")).unwrap();
        let t = m.target();
        let before = t.boot_id();
        let id = t
            .read_text("/sys/class/watchdog/watchdog0/identity")
            .unwrap();
        assert_eq!(id, "SBSA Generic Watchdog");
        let o = t
            .exec(
                ": certlab watchdog-starve; exec 3>/dev/watchdog0 && printf 1 >&3 && exec 3>&-",
                Duration::from_secs(5),
            )
            .unwrap();
        assert_eq!(o.exit, Some(0));
        t.exec("uname -r", Duration::from_secs(5)).unwrap();
        assert_ne!(t.boot_id(), before);
        let sel = m.lock().sel.clone();
        assert!(
            sel.iter()
                .any(|e| e.sensor_type.as_deref() == Some("Watchdog 2")),
            "{sel:?}"
        );
    }

    #[test]
    fn heavy_faults_drop_and_crash_and_a_crash_lasts() {
        let m = SimMachine::new(
            "sim-0002",
            SimSpec {
                faults: FaultLevel::Heavy,
                seed: 3,
                ..spec("hygon-dhyana")
            },
        )
        .unwrap();
        let t = m.target();
        let mut drops = 0;
        for _ in 0..5000 {
            match t.exec("uname -r", Duration::from_secs(5)) {
                Ok(o) => assert_eq!(o.exit, Some(0)),
                Err(TargetError::Disconnected { .. }) => {
                    drops += 1;
                    if m.is_crashed() {
                        break;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(drops > 0);
        assert!(
            m.is_crashed(),
            "5000 commands under heavy faults never crashed"
        );
        assert!(m.console_text().contains("Kernel panic"));
        let e = t.exec("uname -r", Duration::from_secs(5)).unwrap_err();
        assert!(matches!(e, TargetError::Connect { .. }), "{e}");
        assert!(t.read_file("/proc/cpuinfo").is_err());
    }
}
