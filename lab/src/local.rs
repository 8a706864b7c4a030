//! [`Local`]: the machine certlab runs on.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::target::{DirEntry, ExecOutput, Target, TargetError};

/// The most output kept from one stream of one command; the rest is dropped
/// and a marker appended, so a runaway command cannot exhaust memory.
pub const MAX_STREAM_BYTES: usize = 64 << 20;

/// The local machine as a target.
///
/// Clones share the set of running commands, so [`Local::kill_all`] on any
/// clone stops every command started through any of them.
#[derive(Debug, Clone)]
pub struct Local {
    name: String,
    agent: Option<String>,
    running: Arc<Mutex<BTreeSet<u32>>>,
}

impl Local {
    /// A local target; `agent` is the path of the running `certlab` binary
    /// when it can serve `certlab agent …` helper commands.
    pub fn new(agent: Option<String>) -> Local {
        Local {
            name: "local".to_string(),
            agent,
            running: Arc::default(),
        }
    }

    /// Kills every command still running (each in its own process group),
    /// e.g. when the run is interrupted.
    pub fn kill_all(&self) {
        if let Ok(running) = self.running.lock() {
            for pgid in running.iter() {
                kill_group(*pgid);
            }
        }
    }
}

impl Default for Local {
    fn default() -> Self {
        Local::new(None)
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        let mut truncated = false;
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if out.len() + n <= MAX_STREAM_BYTES {
                        out.extend_from_slice(&buf[..n]);
                    } else {
                        truncated = true;
                    }
                }
            }
        }
        if truncated {
            out.extend_from_slice(b"\n[certlab: output truncated]\n");
        }
        out
    })
}

#[allow(unsafe_code)]
fn kill_group(pgid: u32) {
    // SAFETY: kill(2) with a negative pid signals the process group we
    // created for the child (process_group(0) below); it touches no memory.
    unsafe {
        libc::kill(-(pgid as libc::pid_t), libc::SIGKILL);
    }
}

impl Target for Local {
    fn name(&self) -> &str {
        &self.name
    }

    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        let start = Instant::now();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .process_group(0)
            .spawn()
            .map_err(|source| TargetError::Spawn {
                target: self.name.clone(),
                command: command.to_string(),
                source,
            })?;
        let pid = child.id();
        if let Ok(mut r) = self.running.lock() {
            r.insert(pid);
        }
        let out = child.stdout.take().map(drain);
        let err = child.stderr.take().map(drain);
        let mut timed_out = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) => {}
                Err(source) => {
                    kill_group(pid);
                    if let Ok(mut r) = self.running.lock() {
                        r.remove(&pid);
                    }
                    return Err(TargetError::Io {
                        target: self.name.clone(),
                        path: command.to_string(),
                        source,
                    });
                }
            }
            if start.elapsed() >= timeout {
                timed_out = true;
                kill_group(pid);
                let _ = child.wait();
                break None;
            }
            let waited = start.elapsed();
            let pause = if waited < Duration::from_millis(50) {
                1
            } else {
                10
            };
            thread::sleep(Duration::from_millis(pause));
        };
        if let Ok(mut r) = self.running.lock() {
            r.remove(&pid);
        }
        // The group is killed on timeout; a grandchild that kept the pipes
        // open is killed with it, so the readers finish.
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
        Ok(ExecOutput {
            exit: status.and_then(|s| s.code()),
            stdout,
            stderr,
            duration: start.elapsed(),
            timed_out,
        })
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        std::fs::read(path).map_err(|e| TargetError::from_io(&self.name, path, e))
    }

    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        let rd = std::fs::read_dir(path).map_err(|e| TargetError::from_io(&self.name, path, e))?;
        let mut entries = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| TargetError::from_io(&self.name, path, e))?;
            let ft = entry
                .file_type()
                .map_err(|e| TargetError::from_io(&self.name, path, e))?;
            let is_dir = if ft.is_symlink() {
                entry.path().is_dir()
            } else {
                ft.is_dir()
            };
            entries.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                is_dir,
                is_symlink: ft.is_symlink(),
            });
        }
        entries.sort();
        Ok(entries)
    }

    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        std::fs::read_link(path)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| TargetError::from_io(&self.name, path, e))
    }

    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError> {
        std::fs::write(path, data).map_err(|e| TargetError::from_io(&self.name, path, e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| TargetError::from_io(&self.name, path, e))
    }

    fn agent_path(&self) -> Option<String> {
        self.agent.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_captures_streams_and_status() {
        let t = Local::default();
        let o = t
            .exec("echo out; echo err >&2; exit 3", Duration::from_secs(10))
            .unwrap();
        assert_eq!(o.exit, Some(3));
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
        assert!(!o.timed_out);
        assert!(!o.success());
    }

    #[test]
    fn exec_times_out_and_kills_the_whole_group() {
        let t = Local::default();
        // The grandchild keeps stdout open; only killing the group ends it.
        let o = t
            .exec(
                "sleep 30 & sleep 30; echo never",
                Duration::from_millis(300),
            )
            .unwrap();
        assert!(o.timed_out);
        assert_eq!(o.exit, None);
        assert!(o.duration < Duration::from_secs(10), "{:?}", o.duration);
        assert!(o.stdout.is_empty());
    }

    #[test]
    fn kill_all_stops_running_commands() {
        let t = Local::default();
        let t2 = t.clone();
        let h = std::thread::spawn(move || t2.exec("sleep 30", Duration::from_secs(60)).unwrap());
        let start = Instant::now();
        while t.running.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(5));
        }
        t.kill_all();
        let o = h.join().unwrap();
        assert_eq!(o.exit, None, "killed by a signal");
        assert!(o.duration < Duration::from_secs(10));
        assert!(t.running.lock().unwrap().is_empty());
    }

    #[test]
    fn file_errors_are_typed() {
        let t = Local::default();
        let e = t.read_file("/nonexistent/certlab").unwrap_err();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("/nonexistent/certlab"));
    }

    #[test]
    fn put_list_and_link_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let t = Local::default();
        let f = dir.path().join("a.txt");
        let fs = f.to_str().unwrap();
        t.put_file(fs, b"hello\n", 0o600).unwrap();
        assert_eq!(t.read_text(fs).unwrap(), "hello");
        std::os::unix::fs::symlink("a.txt", dir.path().join("l")).unwrap();
        let l = dir.path().join("l");
        assert_eq!(t.read_link(l.to_str().unwrap()).unwrap(), "a.txt");
        let names: Vec<_> = t
            .list_dir(dir.path().to_str().unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.is_symlink))
            .collect();
        assert_eq!(names, vec![("a.txt".into(), false), ("l".into(), true)]);
        assert!(t.has_command("sh").unwrap());
        assert!(!t.has_command("certlab-no-such-command").unwrap());
    }
}
