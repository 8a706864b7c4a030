//! A real OpenIPMI `ipmi_sim` on 127.0.0.1 at a free UDP port, with
//! `lan.conf`, the emulator command file and compiled SDRs in a tempdir;
//! killed on drop. Its chassis control is `fixtures/ipmi/chassis-control.sh`,
//! which keeps the power state in a file and runs an optional `on-power`
//! hook (the namespace SUT starts and stops its sshd there). SOL is wired to
//! a TCP "serial console" of the test's own that prints numbered lines.
//!
//! Shared by `lab/tests/ipmi.rs` and the root package's `tests/lab_cli.rs`
//! and `tests/netns_sut.rs`. Fails (not skips) when `ipmi_sim`, `sdrcomp`
//! or `ipmitool` are missing: `apt-get install openipmi ipmitool`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufReader, Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certlab_lab::bmc::ipmi::{Ipmi, IpmiConfig};
use certlab_lab::inventory::Secret;

pub const INSTALL: &str = "apt-get install openipmi ipmitool";
pub const USER: &str = "admin";
pub const PASSWORD: &str = "SimBmcPass-42";

/// `lab/tests/fixtures/ipmi`, from the lab package, the workspace root or
/// a sibling crate.
pub fn fixtures() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let here = root.join("tests/fixtures/ipmi");
    if here.is_dir() {
        return here;
    }
    let root_pkg = root.join("lab/tests/fixtures/ipmi");
    if root_pkg.is_dir() {
        root_pkg
    } else {
        // A sibling crate of the workspace (harness).
        root.join("../lab/tests/fixtures/ipmi")
    }
}

pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` not found on PATH: these tests need a real BMC emulator; run `{INSTALL}`"
    );
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A serial console for SOL: a TCP server ipmi_sim connects to, writing a
/// numbered line every 50 ms.
pub struct ConsoleServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ConsoleServer {
    pub fn start() -> ConsoleServer {
        ConsoleServer::serve(None)
    }

    /// A console that carries what is appended to `file` (the SUT's serial
    /// port), from the size it has when ipmi_sim connects.
    pub fn tail(file: &Path) -> ConsoleServer {
        ConsoleServer::serve(Some(file.to_path_buf()))
    }

    fn serve(file: Option<PathBuf>) -> ConsoleServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let size = |f: &Path| std::fs::metadata(f).map_or(0, |m| m.len());
        let thread = std::thread::spawn(move || {
            let mut conns: Vec<(TcpStream, u64)> = Vec::new();
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                if let Ok((c, _)) = listener.accept() {
                    c.set_nonblocking(true).ok();
                    let at = file.as_deref().map_or(0, size);
                    conns.push((c, at));
                }
                n += 1;
                let numbered = format!("certlab-sut console line {n}\r\n").into_bytes();
                let text = file
                    .as_deref()
                    .map(|f| std::fs::read(f).unwrap_or_default());
                conns.retain_mut(|(c, at)| {
                    let mut sink = [0u8; 256];
                    let _ = c.read(&mut sink);
                    let bytes = match &text {
                        None => &numbered[..],
                        Some(t) => {
                            let from = (*at as usize).min(t.len());
                            *at = t.len() as u64;
                            &t[from..]
                        }
                    };
                    c.write_all(bytes).is_ok()
                });
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        ConsoleServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One running `ipmi_sim`, killed on drop.
pub struct Sim {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub console_port: u16,
    /// ipmi_sim exits when its console connection closes: keep one open for
    /// the emulator's whole life, and use it to inject events.
    console: Option<BufReader<TcpStream>>,
    _sol: ConsoleServer,
}

impl Sim {
    /// An ipmi_sim whose power switches only its state file.
    pub fn start() -> Sim {
        Sim::start_with_hook(None)
    }

    /// An ipmi_sim whose chassis control also runs `hook` (a shell script,
    /// written to `chassis/on-power`) with the new power state, 1 or 0.
    pub fn start_with_hook(hook: Option<&str>) -> Sim {
        Sim::start_with(hook, None)
    }

    /// Like [`Sim::start_with_hook`]; with `console`, SOL carries what is
    /// appended to that file instead of numbered lines.
    pub fn start_with(hook: Option<&str>, console: Option<&Path>) -> Sim {
        require("ipmi_sim");
        require("sdrcomp");
        require("ipmitool");
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_port();
        let console_port = free_tcp_port();
        let sol = match console {
            Some(f) => ConsoleServer::tail(f),
            None => ConsoleServer::start(),
        };
        let state = dir.path().join("state");
        let sdr_dir = state.join("ipmi_sim/certlab");
        std::fs::create_dir_all(&sdr_dir).unwrap();
        let out = Command::new("sdrcomp")
            .arg("-8")
            .arg("-o")
            .arg(sdr_dir.join("sdr.20.main"))
            .arg(fixtures().join("sensors.sdrs"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sdrcomp: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let chassis = dir.path().join("chassis");
        std::fs::create_dir_all(&chassis).unwrap();
        std::fs::write(chassis.join("power"), "0\n").unwrap();
        if let Some(hook) = hook {
            let p = chassis.join("on-power");
            std::fs::write(&p, hook).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let lan = format!(
            r#"name "certlab"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "STATE_DIR={chassis} {script} 0x20"
  sol "tcp:127.0.0.1:{sol}" 115200
  user 1 true  ""        "test" user     10 none md2 md5 straight
  user 2 true  "{USER}" "{PASSWORD}" admin    10 none md2 md5 straight
console 127.0.0.1 {console_port}
"#,
            chassis = chassis.display(),
            script = fixtures().join("chassis-control.sh").display(),
            sol = sol.port,
        );
        std::fs::write(dir.path().join("lan.conf"), lan).unwrap();
        let mut sim = Sim {
            child: None,
            dir,
            port,
            console_port,
            console: None,
            _sol: sol,
        };
        sim.spawn();
        sim
    }

    pub fn spawn(&mut self) {
        let child = Command::new("ipmi_sim")
            .arg("-c")
            .arg(self.dir.path().join("lan.conf"))
            .arg("-f")
            .arg(fixtures().join("bmc.emu"))
            .arg("-s")
            .arg(self.dir.path().join("state"))
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start ipmi_sim ({e}); run `{INSTALL}`"));
        self.child = Some(child);
        // Ready when its console port (opened after the LAN port) accepts.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("ipmi_sim exited at start: {st}");
            }
            if let Ok(c) = TcpStream::connect(("127.0.0.1", self.console_port)) {
                c.set_read_timeout(Some(Duration::from_millis(300)))
                    .unwrap();
                self.console = Some(BufReader::new(c));
                break;
            }
            assert!(Instant::now() < deadline, "ipmi_sim did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        self.console = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The chassis power state as the control script last set it.
    pub fn chassis_power(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chassis/power"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    pub fn config(&self) -> IpmiConfig {
        let mut c = IpmiConfig::new("sim", "127.0.0.1", self.port, USER, Secret::new(PASSWORD));
        c.timeout = Duration::from_secs(3);
        c.retransmit = Duration::from_millis(500);
        c
    }

    pub fn bmc(&self) -> Ipmi {
        Ipmi::new(self.config())
    }

    /// `ipmitool -I lanplus -C 3 … ARGS`, stdout.
    pub fn ipmitool(&self, args: &[&str]) -> String {
        let out = Command::new("ipmitool")
            .args([
                "-I",
                "lanplus",
                "-C",
                "3",
                "-H",
                "127.0.0.1",
                "-U",
                USER,
                "-P",
                PASSWORD,
            ])
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ipmitool ({e}); run `{INSTALL}`"));
        assert!(
            out.status.success(),
            "ipmitool {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs an emulator command on ipmi_sim's console port and waits for
    /// the next prompt.
    pub fn emu(&mut self, command: &str) {
        let r = self.console.as_mut().expect("ipmi_sim is running");
        r.get_mut()
            .write_all(format!("{command}\n").as_bytes())
            .unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            let mut buf = [0u8; 512];
            match r.read(&mut buf) {
                Ok(0) => panic!("ipmi_sim closed its console"),
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if let Some(after) = text.split_once(command.split_whitespace().next().unwrap())
                    {
                        if after.1.contains('>') {
                            return;
                        }
                    }
                }
                Err(_) => {}
            }
        }
        panic!(
            "no prompt after `{command}`: {:?}",
            String::from_utf8_lossy(&seen)
        );
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop();
    }
}
