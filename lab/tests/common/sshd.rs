//! A real OpenSSH `sshd` on 127.0.0.1 at a free port, with its own host key,
//! authorized key and config in a temporary directory; killed (with every
//! session process it forked) when dropped. Shared by `lab/tests/ssh.rs` and
//! the root package's `tests/ssh_certify.rs`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certlab_lab::ssh::{HostKeyCheck, SshConfig};
use certlab_lab::HostKey;

pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub client_key: PathBuf,
    pub host_key: HostKey,
    child: Option<Child>,
}

fn keygen(path: &Path) {
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "certlab-test", "-f"])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("ssh-keygen not runnable ({e}): run `apt-get install openssh-client openssh-server`")
        });
    assert!(o.status.success(), "ssh-keygen: {o:?}");
}

/// A fresh ed25519 key pair in `dir` named `name`; returns the private key path.
pub fn new_key(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    keygen(&p);
    p
}

pub fn read_pub(private: &Path) -> HostKey {
    let text = std::fs::read_to_string(private.with_extension("pub")).unwrap();
    HostKey::parse(&text).unwrap()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The pids of `pid`'s descendants (children first come after their parent).
/// Whether `pid` is stopped (state `T` in `/proc/PID/stat`).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rfind(')')
                .map(|i| s[i + 1..].trim_start().starts_with('T'))
        })
        .unwrap_or(true)
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …; comm may hold spaces and parens.
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
            {
                parent_of.push((p, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (c, pp) in &parent_of {
            if *pp == p && !out.contains(c) {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

impl Sshd {
    /// Starts sshd, or panics with what to install.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: these tests need a real OpenSSH server; run `apt-get install openssh-server openssh-client` (or scripts/bootstrap --test)"
        );
        let dir = tempfile::tempdir().unwrap();
        let host = new_key(dir.path(), "host_key");
        let client_key = new_key(dir.path(), "id_ed25519");
        std::fs::copy(
            client_key.with_extension("pub"),
            dir.path().join("authorized_keys"),
        )
        .unwrap();
        let host_key = read_pub(&host);
        let mut s = Sshd {
            dir,
            port: 0,
            client_key,
            host_key,
            child: None,
        };
        s.launch_on_free_port();
        s
    }

    /// The sessions get the temporary directory as HOME, so the shell's rc
    /// files of whoever runs the tests (pyenv, conda…) do not run in them:
    /// a stale lock of such a tool would hang every session.
    fn write_config(&self) -> PathBuf {
        let d = self.dir.path().display();
        let user = whoami();
        let cfg = format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             HostKey {d}/host_key\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin yes\n\
             AllowUsers {user}\n\
             MaxStartups 100\n\
             MaxSessions 100\n\
             LogLevel VERBOSE\n\
             SetEnv HOME={d}\n\
             Subsystem sftp internal-sftp\n",
            port = self.port
        );
        let p = self.dir.path().join("sshd_config");
        std::fs::write(&p, cfg).unwrap();
        p
    }

    fn launch_on_free_port(&mut self) {
        for _ in 0..5 {
            self.port = free_port();
            if self.launch() {
                return;
            }
        }
        panic!("sshd did not start; log:\n{}", self.log());
    }

    /// Starts sshd on `self.port`; false if the port was taken meanwhile.
    fn launch(&mut self) -> bool {
        std::fs::create_dir_all("/run/sshd").ok();
        let cfg = self.write_config();
        let log = self.dir.path().join("sshd.log");
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&cfg)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {SSHD}: {e}; run `apt-get install openssh-server`")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let log = self.log();
                    self.child = None;
                    if log.contains("Address already in use") {
                        return false;
                    }
                    panic!("sshd exited with {status}; log:\n{log}");
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("sshd is not listening after 10 s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Kills sshd and every session it forked, as a machine going down does.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // Stop the listener first: a connection it accepted between the
            // snapshot of its children and the kill would otherwise survive
            // (each connection's sshd is its own session, so a group kill
            // does not reach it).
            let _ = Command::new("kill")
                .args(["-STOP", &c.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && !stopped(c.id()) {
                std::thread::sleep(Duration::from_millis(5));
            }
            let mut pids = descendants(c.id());
            pids.push(c.id());
            let args: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
            let _ = Command::new("kill")
                .arg("-9")
                .args(&args)
                .stderr(Stdio::null())
                .status();
            let _ = c.wait();
        }
    }

    /// Starts sshd again on the same port after [`Sshd::kill`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "sshd is still running");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.launch() {
            assert!(Instant::now() < deadline, "port {} stays taken", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kill, then start on the same port with the same keys.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }

    /// A client config with the server's key pinned.
    pub fn config(&self) -> SshConfig {
        let mut c = SshConfig::new(
            "127.0.0.1",
            self.port,
            &whoami(),
            &self.client_key,
            HostKeyCheck::Pinned(self.host_key.clone()),
        );
        c.connect_timeout = Duration::from_secs(10);
        c
    }
}

pub fn whoami() -> String {
    let o = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}
