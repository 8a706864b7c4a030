//! The one host-key policy for every SSH connection certlab makes.
//!
//! For machine `M` at address `A` (`host:port`), in this order:
//! 1. a key pinned in `lab.toml` (`[machine.ssh] host_key`) is the only key
//!    accepted;
//! 2. else a key recorded in the lab store for `(M, A)` is the only key
//!    accepted;
//! 3. else the key the server presents is trusted on first use and recorded
//!    for `(M, A)` *before* the session authenticates or runs anything; if
//!    it cannot be recorded, the connection is refused.
//!
//! A changed key is refused with [`TargetError::HostKeyMismatch`], naming
//! the machine, the address, the expected and the presented fingerprints.
//! The lab store ([`HostKeyStore`]) is the harness's; [`MemoryHostKeys`]
//! keeps keys for one process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{HostKey, HostKeyCheck, Ssh, SshConfig, TrustOnFirstUse};
use crate::inventory::SshEndpoint;
use crate::target::TargetError;

/// A failure of the host-key store (the message names what it tried).
#[derive(Debug, Clone, thiserror::Error)]
#[error("host key store: {0}")]
pub struct HostKeyStoreError(pub String);

/// Where host keys trusted on first use are recorded, per machine and
/// address. Blocking: called from the thread that connects (never from
/// inside an async task).
pub trait HostKeyStore: Send + Sync {
    /// The key recorded for `machine` at `address`, if any.
    fn recorded(&self, machine: &str, address: &str) -> Result<Option<HostKey>, HostKeyStoreError>;
    /// Records `key` for `machine` at `address`. An existing record is kept.
    fn record(&self, machine: &str, address: &str, key: &HostKey) -> Result<(), HostKeyStoreError>;
}

/// Host keys kept in memory, for one process (tests, one-off tools).
#[derive(Debug, Default)]
pub struct MemoryHostKeys {
    keys: Mutex<HashMap<(String, String), HostKey>>,
}

impl MemoryHostKeys {
    pub fn new() -> Arc<MemoryHostKeys> {
        Arc::new(MemoryHostKeys::default())
    }
}

impl HostKeyStore for MemoryHostKeys {
    fn recorded(&self, machine: &str, address: &str) -> Result<Option<HostKey>, HostKeyStoreError> {
        let g = self
            .keys
            .lock()
            .map_err(|_| HostKeyStoreError("poisoned".to_string()))?;
        Ok(g.get(&(machine.to_string(), address.to_string())).cloned())
    }

    fn record(&self, machine: &str, address: &str, key: &HostKey) -> Result<(), HostKeyStoreError> {
        let mut g = self
            .keys
            .lock()
            .map_err(|_| HostKeyStoreError("poisoned".to_string()))?;
        g.entry((machine.to_string(), address.to_string()))
            .or_insert_with(|| key.clone());
        Ok(())
    }
}

/// The host-key policy over a store (see the module documentation).
#[derive(Clone)]
pub struct HostKeyPolicy {
    store: Arc<dyn HostKeyStore>,
}

impl std::fmt::Debug for HostKeyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKeyPolicy").finish_non_exhaustive()
    }
}

impl HostKeyPolicy {
    pub fn new(store: Arc<dyn HostKeyStore>) -> HostKeyPolicy {
        HostKeyPolicy { store }
    }

    /// How the key of `machine` reached through `ep` is checked. Blocking
    /// (reads the store).
    pub fn check(&self, machine: &str, ep: &SshEndpoint) -> Result<HostKeyCheck, TargetError> {
        if let Some(k) = &ep.host_key {
            return Ok(HostKeyCheck::Pinned(k.clone()));
        }
        let probe = SshConfig::new(
            &ep.address,
            ep.port,
            &ep.user,
            &ep.key_file,
            HostKeyCheck::TrustOnFirstUse(Arc::new(|_: &str, _: &str, _: &HostKey| false)),
        );
        let address = probe.addr();
        let recorded =
            self.store
                .recorded(machine, &address)
                .map_err(|e| TargetError::Connect {
                    target: machine.to_string(),
                    address: address.clone(),
                    reason: format!("reading its recorded host key: {e}"),
                })?;
        if let Some(k) = recorded {
            return Ok(HostKeyCheck::Recorded(k));
        }
        let store = self.store.clone();
        let tofu: TrustOnFirstUse = Arc::new(move |machine: &str, address: &str, key: &HostKey| {
            match store.record(machine, address, key) {
                Ok(()) => {
                    tracing::warn!(
                        "{machine} ({address}): host key {} {} trusted on first use and recorded in the lab store; pin it in lab.toml under [machine.ssh]: host_key = \"{key}\"",
                        key.algorithm(),
                        key.fingerprint()
                    );
                    true
                }
                Err(e) => {
                    tracing::error!(
                        "{machine} ({address}): host key {} not trusted: it could not be recorded: {e}",
                        key.fingerprint()
                    );
                    false
                }
            }
        });
        Ok(HostKeyCheck::TrustOnFirstUse(tofu))
    }

    /// The connection settings of `machine` under this policy. Blocking.
    pub fn config(&self, machine: &str, ep: &SshEndpoint) -> Result<SshConfig, TargetError> {
        let check = self.check(machine, ep)?;
        Ok(SshConfig::new(
            &ep.address,
            ep.port,
            &ep.user,
            &ep.key_file,
            check,
        ))
    }

    /// An (unconnected) SSH target for `machine` under this policy.
    /// Blocking.
    pub fn ssh(&self, machine: &str, ep: &SshEndpoint) -> Result<Ssh, TargetError> {
        Ok(Ssh::new(machine, self.config(machine, ep)?))
    }
}
