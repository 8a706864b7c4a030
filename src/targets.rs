//! Building the target a certification runs on: this machine, a simulated
//! lab machine (`[machine.sim]`), or a lab machine over SSH under the one host-key policy
//! ([`certlab_lab::ssh::HostKeyPolicy`]: pinned in lab.toml, else recorded
//! in the lab store, else trusted on first use and recorded).

use std::path::Path;
use std::sync::Arc;

use certlab_harness::{Store, StoreHostKeys};
use certlab_lab::ssh::HostKeyPolicy;
use certlab_lab::{Lab, Local, Ssh, Target};

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
    if let Some(spec) = &machine.sim {
        // Simulated in this process (`[machine.sim]`): no SSH, no agent.
        let sim = certlab_lab::sim::SimMachine::new(name, spec.clone())
            .map_err(|e| failure(exit::BAD_INPUT, e.to_string()))?;
        return Ok(Prepared {
            target: Arc::new(sim.target()),
            local: None,
            remote_agent: None,
        });
    }
    let ep = machine
        .ssh()
        .map_err(|e| failure(exit::INFRA, e.to_string()))?
        .clone();
    let policy = host_key_policy(store);
    let machine_name = name.to_string();
    let agent_path = format!("/var/tmp/certlab-agent-{run_id}");
    let exe = std::env::current_exe().ok();
    let (ssh, agent) = tokio::task::spawn_blocking(move || -> Result<(Ssh, Option<String>)> {
        let ssh = policy
            .ssh(&machine_name, &ep)
            .map_err(|e| failure(exit::INFRA, e.to_string()))?;
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
    Ok(Prepared {
        target: Arc::new(ssh),
        local: None,
        remote_agent: agent,
    })
}

/// The host-key policy of every SSH connection the binary makes, over the
/// lab store. Use it from blocking threads only (it blocks on the store).
pub fn host_key_policy(store: &Store) -> HostKeyPolicy {
    HostKeyPolicy::new(Arc::new(StoreHostKeys::new(
        store.clone(),
        tokio::runtime::Handle::current(),
    )))
}
