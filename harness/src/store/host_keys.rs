//! SSH host keys trusted on first use, recorded per machine and address;
//! [`StoreHostKeys`] makes the store the [`HostKeyStore`] of
//! [`certlab_lab::ssh::HostKeyPolicy`].

use certlab_lab::ssh::{HostKey, HostKeyStore, HostKeyStoreError};
use sqlx::Row;
use time::OffsetDateTime;

use super::rows::{query_err, ts};
use super::{Store, StoreError};

/// A host key the lab accepted the first time it saw a machine at an
/// address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHostKey {
    pub machine: String,
    /// `host:port`, as certlab connects.
    pub address: String,
    /// OpenSSH public key line (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    pub first_seen: String,
}

impl Store {
    /// The host key recorded for `machine` at `address`, if any.
    pub async fn known_host_key(
        &self,
        machine: &str,
        address: &str,
    ) -> Result<Option<KnownHostKey>, StoreError> {
        let what = format!("read the host key of `{machine}` at {address}");
        let row = sqlx::query(
            "SELECT machine, address, host_key, first_seen FROM ssh_known_hosts \
             WHERE machine = $1 AND address = $2",
        )
        .bind(machine)
        .bind(address)
        .fetch_optional(&self.pool)
        .await
        .map_err(query_err(&what))?;
        row.map(|r| {
            Ok(KnownHostKey {
                machine: r.try_get("machine").map_err(query_err(&what))?,
                address: r.try_get("address").map_err(query_err(&what))?,
                host_key: r.try_get("host_key").map_err(query_err(&what))?,
                first_seen: r.try_get("first_seen").map_err(query_err(&what))?,
            })
        })
        .transpose()
    }

    /// Records the host key accepted on first use. An existing record is
    /// kept: a key is only ever replaced by removing it on purpose.
    pub async fn remember_host_key(
        &self,
        machine: &str,
        address: &str,
        host_key: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let what = format!("record the host key of `{machine}` at {address}");
        sqlx::query(
            "INSERT INTO ssh_known_hosts (machine, address, host_key, first_seen) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (machine, address) DO NOTHING",
        )
        .bind(machine)
        .bind(address)
        .bind(host_key)
        .bind(ts(at)?)
        .execute(&self.pool)
        .await
        .map_err(query_err(&what))?;
        Ok(())
    }
}

/// The lab store as the host-key store of every SSH connection. Its
/// methods block on `rt`: call them from a blocking thread (the one that
/// connects), never from inside an async task.
#[derive(Debug, Clone)]
pub struct StoreHostKeys {
    store: Store,
    rt: tokio::runtime::Handle,
}

impl StoreHostKeys {
    pub fn new(store: Store, rt: tokio::runtime::Handle) -> StoreHostKeys {
        StoreHostKeys { store, rt }
    }
}

impl HostKeyStore for StoreHostKeys {
    fn recorded(&self, machine: &str, address: &str) -> Result<Option<HostKey>, HostKeyStoreError> {
        let known = self
            .rt
            .block_on(self.store.known_host_key(machine, address))
            .map_err(|e| HostKeyStoreError(e.to_string()))?;
        known
            .map(|k| {
                HostKey::parse(&k.host_key).map_err(|e| {
                    HostKeyStoreError(format!(
                        "the recorded host key of `{machine}` at {address} is unreadable: {e}"
                    ))
                })
            })
            .transpose()
    }

    fn record(&self, machine: &str, address: &str, key: &HostKey) -> Result<(), HostKeyStoreError> {
        self.rt
            .block_on(self.store.remember_host_key(
                machine,
                address,
                &key.to_string(),
                OffsetDateTime::now_utc(),
            ))
            .map_err(|e| HostKeyStoreError(e.to_string()))
    }
}
