//! SSH host keys trusted on first use, recorded per machine.

use sqlx::Row;
use time::OffsetDateTime;

use super::rows::{query_err, ts};
use super::{Store, StoreError};

/// A host key the lab accepted the first time it saw a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownHostKey {
    pub machine: String,
    pub address: String,
    /// OpenSSH public key line (`ssh-ed25519 AAAA…`).
    pub host_key: String,
    pub first_seen: String,
}

impl Store {
    /// The host key recorded for `machine`, if any.
    pub async fn known_host_key(&self, machine: &str) -> Result<Option<KnownHostKey>, StoreError> {
        let what = format!("read the host key of `{machine}`");
        let row = sqlx::query(
            "SELECT machine, address, host_key, first_seen FROM ssh_host_keys WHERE machine = $1",
        )
        .bind(machine)
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
        let what = format!("record the host key of `{machine}`");
        sqlx::query(
            "INSERT INTO ssh_host_keys (machine, address, host_key, first_seen) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (machine) DO NOTHING",
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
