//! [`Scripted`]: a target whose files and command outputs are given up front.
//!
//! It stands in for a machine in tests and in the simulator: a suite runs
//! against it exactly as against [`crate::Local`], so a check can be shown
//! to fail on inputs that the CI machine does not have (an unbound PCI
//! device, a tainted kernel, a machine check in the kernel log).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::target::{DirEntry, ExecOutput, Target, TargetError};

#[derive(Debug, Clone)]
enum Node {
    File(Vec<u8>),
    Link(String),
}

/// A scripted machine: a tree of files and symlinks plus command replies.
#[derive(Debug, Clone, Default)]
pub struct Scripted {
    name: String,
    nodes: BTreeMap<String, Node>,
    commands: Vec<(String, ExecOutput)>,
    denied: Vec<String>,
}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

impl Scripted {
    pub fn new(name: &str) -> Scripted {
        Scripted {
            name: name.to_string(),
            ..Scripted::default()
        }
    }

    /// Adds a file with the given content.
    pub fn file(mut self, path: &str, content: impl Into<Vec<u8>>) -> Scripted {
        self.nodes
            .insert(normalize(path), Node::File(content.into()));
        self
    }

    /// Adds a symbolic link pointing at `target` (relative or absolute).
    pub fn link(mut self, path: &str, target: &str) -> Scripted {
        self.nodes
            .insert(normalize(path), Node::Link(target.to_string()));
        self
    }

    /// Makes reads of `path` (and below) fail with permission denied.
    pub fn deny(mut self, path: &str) -> Scripted {
        self.denied.push(normalize(path));
        self
    }

    /// Answers a command whose text starts with `prefix`; the first match wins.
    pub fn command(mut self, prefix: &str, exit: i32, stdout: &str, stderr: &str) -> Scripted {
        self.commands.push((
            prefix.to_string(),
            ExecOutput {
                exit: Some(exit),
                stdout: stdout.as_bytes().to_vec(),
                stderr: stderr.as_bytes().to_vec(),
                duration: Duration::from_millis(1),
                timed_out: false,
            },
        ));
        self
    }

    fn check_denied(&self, path: &str) -> Result<(), TargetError> {
        if self
            .denied
            .iter()
            .any(|d| path == d || path.starts_with(&format!("{d}/")))
        {
            return Err(TargetError::PermissionDenied {
                target: self.name.clone(),
                path: path.to_string(),
            });
        }
        Ok(())
    }

    fn not_found(&self, path: &str) -> TargetError {
        TargetError::NotFound {
            target: self.name.clone(),
            path: path.to_string(),
        }
    }

    /// Resolves symlinks in every component, as the kernel would.
    fn resolve(&self, path: &str, depth: usize) -> Result<String, TargetError> {
        if depth > 40 {
            return Err(self.not_found(path));
        }
        let mut resolved = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        for (i, part) in parts.iter().enumerate() {
            match *part {
                "." => continue,
                ".." => {
                    if let Some(pos) = resolved.rfind('/') {
                        resolved.truncate(pos);
                    }
                    continue;
                }
                _ => {}
            }
            let candidate = format!("{resolved}/{part}");
            if let Some(Node::Link(target)) = self.nodes.get(&candidate) {
                let base = if target.starts_with('/') {
                    target.clone()
                } else {
                    format!("{resolved}/{target}")
                };
                let rest = parts[i + 1..].join("/");
                let next = if rest.is_empty() {
                    base
                } else {
                    format!("{base}/{rest}")
                };
                return self.resolve(&next, depth + 1);
            }
            resolved = candidate;
        }
        Ok(if resolved.is_empty() {
            "/".to_string()
        } else {
            resolved
        })
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(k, _)| k.starts_with(&prefix))
    }
}

impl Target for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn exec(&self, command: &str, _timeout: Duration) -> Result<ExecOutput, TargetError> {
        if let Some((_, out)) = self.commands.iter().find(|(p, _)| command.starts_with(p)) {
            return Ok(out.clone());
        }
        // What a shell answers for an unknown command.
        Ok(ExecOutput {
            exit: Some(127),
            stdout: Vec::new(),
            stderr: format!("sh: 1: {command}: not found\n").into_bytes(),
            duration: Duration::from_millis(1),
            timed_out: false,
        })
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        let p = self.resolve(path, 0)?;
        self.check_denied(&p)?;
        match self.nodes.get(&p) {
            Some(Node::File(c)) => Ok(c.clone()),
            _ => Err(self.not_found(path)),
        }
    }

    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        let p = self.resolve(path, 0)?;
        self.check_denied(&p)?;
        if !self.is_dir(&p) {
            return Err(self.not_found(path));
        }
        let prefix = if p == "/" {
            "/".to_string()
        } else {
            format!("{p}/")
        };
        let mut names: BTreeMap<String, DirEntry> = BTreeMap::new();
        for (k, node) in self.nodes.range(prefix.clone()..) {
            let Some(rest) = k.strip_prefix(&prefix) else {
                break;
            };
            let (name, deeper) = match rest.split_once('/') {
                Some((n, _)) => (n, true),
                None => (rest, false),
            };
            let full = format!("{prefix}{name}");
            let is_symlink = !deeper && matches!(node, Node::Link(_));
            let is_dir = deeper
                || (is_symlink
                    && self
                        .resolve(&full, 0)
                        .map(|r| self.is_dir(&r))
                        .unwrap_or(false));
            names.entry(name.to_string()).or_insert(DirEntry {
                name: name.to_string(),
                is_dir,
                is_symlink,
            });
        }
        Ok(names.into_values().collect())
    }

    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        let p = normalize(path);
        let parent = match p.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => self.resolve(&p[..i], 0)?,
        };
        let name = p.rsplit('/').next().unwrap_or_default();
        let full = if parent == "/" {
            format!("/{name}")
        } else {
            format!("{parent}/{name}")
        };
        match self.nodes.get(&full) {
            Some(Node::Link(t)) => Ok(t.clone()),
            _ => Err(self.not_found(path)),
        }
    }

    fn put_file(&self, path: &str, _data: &[u8], _mode: u32) -> Result<(), TargetError> {
        Err(TargetError::PermissionDenied {
            target: self.name.clone(),
            path: path.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Scripted {
        Scripted::new("sim")
            .file("/sys/devices/pci0000:00/0000:00:01.0/vendor", "0x8086\n")
            .file("/sys/bus/pci/drivers/e1000e/bind", "")
            .link(
                "/sys/bus/pci/devices/0000:00:01.0",
                "../../../devices/pci0000:00/0000:00:01.0",
            )
            .link(
                "/sys/devices/pci0000:00/0000:00:01.0/driver",
                "../../../bus/pci/drivers/e1000e",
            )
            .command("uname -r", 0, "6.1.0-27-amd64\n", "")
            .deny("/root")
            .file("/root/secret", "x")
    }

    #[test]
    fn follows_links_like_sysfs() {
        let m = machine();
        assert_eq!(
            m.read_text("/sys/bus/pci/devices/0000:00:01.0/vendor")
                .unwrap(),
            "0x8086"
        );
        let link = m
            .read_link("/sys/bus/pci/devices/0000:00:01.0/driver")
            .unwrap();
        assert!(link.ends_with("/e1000e"));
        let entries = m.list_dir("/sys/bus/pci/devices").unwrap();
        assert_eq!(entries.len(), 1);
        assert!(entries[0].is_symlink && entries[0].is_dir);
        assert!(m.list_dir("/sys/bus/pci/devices/0000:00:01.0").is_ok());
    }

    #[test]
    fn commands_and_errors() {
        let m = machine();
        let o = m.exec("uname -r", Duration::from_secs(1)).unwrap();
        assert_eq!(o.stdout_str(), "6.1.0-27-amd64\n");
        assert_eq!(
            m.exec("lspci -nn", Duration::from_secs(1)).unwrap().exit,
            Some(127)
        );
        assert!(m
            .read_file("/root/secret")
            .unwrap_err()
            .is_permission_denied());
        assert!(m.read_file("/nope").unwrap_err().is_not_found());
    }
}
