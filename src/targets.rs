//! Building the target a certification runs on: this machine, or a lab
//! machine over SSH with its host key pinned or trusted on first use and
//! recorded in the lab store.

use std::path::Path;
use std::sync::{Arc, Mutex};

use certlab_harness::Store;
use certlab_lab::ssh::TrustOnFirstUse;
use certlab_lab::{HostKey, HostKeyCheck, Lab, Local, Ssh, SshConfig, Target};

use crate::error::{failure, Result};
use crate::exit;

/// A target and what must be undone when the run ends.
pub struct Prepared {
    pub target: Arc<dyn Target>,
    /// Kills the local target's commands on interrupt.
    pub local: Option<Local>,
    /// The agent binary copied to a remote target, removed afterwards.
    pub remote_agent: Option<String>,
}

impl Prepared {
    /// Stops what the run left behind on the target.
    pub fn cleanup(&self) {
        if let Some(l) = &self.local {
            l.kill_all();
        }
        if let Some(agent) = &self.remote_agent {
            let _ = self.target.exec(
                &format!("rm -f {}", certlab_lab::target::shell_quote(agent)),
                std::time::Duration::from_secs(10),
            );
        }
    }
}

/// This machine; its own binary serves `certlab agent …`.
pub fn local() -> Prepared {
    let agent = std::env::current_exe()
        .ok()
        .map(|p| p.display().to_string());
    let local = Local::new(agent);
    Prepared {
        target: Arc::new(local.clone()),
        local: Some(local),
        remote_agent: None,
    }
}

/// A machine of the lab inventory, over SSH.
pub async fn machine(lab_file: &Path, name: &str, store: &Store, run_id: &str) -> Result<Prepared> {
    let lab = Lab::load(lab_file).map_err(|e| failure(exit::BAD_INPUT, e.to_string()))?;
    let machine = lab
        .machine(name)
        .map_err(|e| failure(exit::INFRA, e.to_string()))?;
    let ep = machine
        .ssh()
        .map_err(|e| failure(exit::INFRA, e.to_string()))?
        .clone();
    let known = store
        .known_host_key(name)
        .await
        .map_err(|e| failure(exit::INFRA, e.to_string()))?;
    let accepted: Arc<Mutex<Option<HostKey>>> = Arc::default();
    let cfg = match (&ep.host_key, known) {
        (Some(_), _) => {
            SshConfig::from_endpoint(&ep, Arc::new(|_: &str, _: &str, _: &HostKey| false))
        }
        (None, Some(k)) => {
            let key = HostKey::parse(&k.host_key).map_err(|e| {
                failure(
                    exit::INFRA,
                    format!("the lab store's host key for {name} is unreadable: {e}"),
                )
            })?;
            SshConfig::new(
                &ep.address,
                ep.port,
                &ep.user,
                &ep.key_file,
                HostKeyCheck::Pinned(key),
            )
        }
        (None, None) => {
            let slot = accepted.clone();
            let tofu: TrustOnFirstUse = Arc::new(
                move |machine: &str, address: &str, key: &HostKey| {
                    eprintln!(
                    "certlab: trusting {machine} ({address}) host key {} on first use; it is recorded in the lab store",
                    key.fingerprint()
                );
                    if let Ok(mut s) = slot.lock() {
                        *s = Some(key.clone());
                    }
                    true
                },
            );
            SshConfig::from_endpoint(&ep, tofu)
        }
    };
    let ssh = Ssh::new(name, cfg);
    let agent_path = format!("/var/tmp/certlab-agent-{run_id}");
    let exe = std::env::current_exe().ok();
    let (ssh, agent) = tokio::task::spawn_blocking(move || -> Result<(Ssh, Option<String>)> {
        ssh.connect()
            .map_err(|e| failure(exit::INFRA, e.to_string()))?;
        // The memory test runs as `certlab agent memtest` on the SUT: copy
        // this binary there when it can run it (same architecture).
        let arch = ssh
            .exec("uname -m", std::time::Duration::from_secs(30))
            .map(|o| o.stdout_str().trim().to_string())
            .unwrap_or_default();
        match exe {
            Some(exe) if arch == std::env::consts::ARCH => {
                match ssh.put_path(&exe, &agent_path, 0o755) {
                    Ok(_) => Ok((ssh.with_agent(&agent_path), Some(agent_path))),
                    Err(e) => {
                        eprintln!("certlab: cannot copy the agent to {}: {e}", ssh.name());
                        Ok((ssh, None))
                    }
                }
            }
            _ => Ok((ssh, None)),
        }
    })
    .await
    .map_err(|e| failure(exit::INFRA, format!("connecting to {name}: {e}")))??;
    let first_use = accepted.lock().ok().and_then(|mut s| s.take());
    if let Some(key) = first_use {
        store
            .remember_host_key(
                name,
                &ep.address,
                &key.to_string(),
                time::OffsetDateTime::now_utc(),
            )
            .await
            .map_err(|e| failure(exit::INFRA, e.to_string()))?;
    }
    Ok(Prepared {
        target: Arc::new(ssh),
        local: None,
        remote_agent: agent,
    })
}
