//! Demo records for demos and benchmarks (`certlab portal seed-demo`):
//! certifications inserted directly — an organisation per vendor with one
//! vendor user, an approved submission and a published certification each —
//! in one transaction with multi-row inserts. What a certification holds is
//! the caller's (the binary draws it from the hwdb fixtures).
//!
//! A demo submission has no bundle and a `results_json` of
//! `{"demo": true}`: the public list, search, component and certification
//! pages work on it; its submission page does not.

use std::collections::BTreeMap;

use time::OffsetDateTime;

use super::rows::{db_err, new_id, ts};
use super::{Component, DbError, PortalStore};
use certlab_harness::Backend;

/// One demo certification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoCertification {
    pub vendor: String,
    pub product: String,
    pub firmware: String,
    pub cpu_family: String,
    pub cpu_vendor: String,
    pub cpu_model: String,
    pub arch: String,
    pub os_id: String,
    pub os_version: String,
    pub os_name: String,
    pub kernel: String,
    pub plan_id: String,
    pub plan_version: String,
    pub outcome: String,
    pub published: OffsetDateTime,
    pub components: Vec<Component>,
}

/// What a seeding inserted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Seeded {
    pub orgs: u64,
    pub certifications: u64,
    pub components: u64,
}

/// Rows per multi-row INSERT (binds stay far below SQLite's and
/// PostgreSQL's limits).
const BATCH: usize = 250;

/// `($1, $2, …), (…)` for `rows` rows of `cols` columns.
fn values(rows: usize, cols: usize) -> String {
    let mut out = String::new();
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", r * cols + c + 1));
        }
        out.push(')');
    }
    out
}

/// A bound value.
enum V {
    S(String),
    I(i64),
}

impl From<String> for V {
    fn from(s: String) -> V {
        V::S(s)
    }
}

/// Runs `INSERT INTO {table} ({columns}) VALUES …` over `rows` in batches.
async fn insert_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &str,
    columns: &[&str],
    rows: &[Vec<V>],
) -> Result<(), DbError> {
    for chunk in rows.chunks(BATCH) {
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            values(chunk.len(), columns.len())
        );
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    V::S(s) => q.bind(s.as_str()),
                    V::I(i) => q.bind(*i),
                };
            }
        }
        q.execute(&mut **tx)
            .await
            .map_err(db_err(format!("seed {table}")))?;
    }
    Ok(())
}

impl PortalStore {
    /// Inserts `certs` with their organisations (one per vendor, named
    /// `<vendor> (demo)`, created when missing) in one transaction.
    pub async fn seed_demo(
        &self,
        certs: &[DemoCertification],
        now: OffsetDateTime,
    ) -> Result<Seeded, DbError> {
        let mut seeded = Seeded::default();
        let mut tx = self.pool.begin().await.map_err(db_err("seed: begin"))?;
        // organisation and submitter of each vendor
        let mut orgs: BTreeMap<&str, (String, String)> = BTreeMap::new();
        for c in certs {
            if orgs.contains_key(c.vendor.as_str()) {
                continue;
            }
            let name = format!("{} (demo)", c.vendor);
            let email = format!("demo-{}@{}", orgs.len(), "seed.invalid");
            let existing: Option<(String,)> =
                sqlx::query_as("SELECT id FROM portal_orgs WHERE name = $1")
                    .bind(name.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err("seed: organisations"))?;
            let org_id = match existing {
                Some((id,)) => id,
                None => {
                    let id = new_id();
                    sqlx::query("INSERT INTO portal_orgs (id, name, created) VALUES ($1, $2, $3)")
                        .bind(id.as_str())
                        .bind(name.as_str())
                        .bind(ts(now))
                        .execute(&mut *tx)
                        .await
                        .map_err(db_err("seed: organisations"))?;
                    seeded.orgs += 1;
                    id
                }
            };
            let user_id = new_id();
            let email = format!("{}-{}", &user_id[24..], email);
            sqlx::query(
                "INSERT INTO portal_users (id, email, org_id, role, password_hash, created) \
                 VALUES ($1, $2, $3, 'vendor', NULL, $4)",
            )
            .bind(user_id.as_str())
            .bind(email.as_str())
            .bind(org_id.as_str())
            .bind(ts(now))
            .execute(&mut *tx)
            .await
            .map_err(db_err("seed: users"))?;
            orgs.insert(c.vendor.as_str(), (org_id, user_id));
        }
        let mut submissions = Vec::with_capacity(certs.len());
        let mut certifications = Vec::with_capacity(certs.len());
        let mut components = Vec::new();
        let mut listed = Vec::new();
        for c in certs {
            let Some((org_id, user_id)) = orgs.get(c.vendor.as_str()) else {
                continue;
            };
            let sub_id = new_id();
            let cert_id = new_id();
            let published = ts(c.published);
            let digest = crate::auth::sha256_hex(&format!("demo bundle {sub_id}"));
            submissions.push(vec![
                sub_id.clone().into(),
                org_id.clone().into(),
                user_id.clone().into(),
                digest.clone().into(),
                V::I(0),
                "demo".to_string().into(),
                digest.into(),
                r#"{"demo": true}"#.to_string().into(),
                "approved".to_string().into(),
                published.clone().into(),
                published.clone().into(),
            ]);
            let org_name = format!("{} (demo)", c.vendor);
            let mut words = vec![
                c.vendor.clone(),
                c.product.clone(),
                c.cpu_family.clone(),
                c.cpu_vendor.clone(),
                c.cpu_model.clone(),
                c.arch.clone(),
                c.os_name.clone(),
                c.os_id.clone(),
                c.kernel.clone(),
                org_name,
                c.plan_id.clone(),
            ];
            for x in &c.components {
                words.extend([x.pci_id.clone(), x.name.clone(), x.driver.clone()]);
            }
            certifications.push(vec![
                cert_id.clone().into(),
                sub_id.into(),
                org_id.clone().into(),
                "published".to_string().into(),
                c.vendor.clone().into(),
                c.product.clone().into(),
                c.firmware.clone().into(),
                c.cpu_family.clone().into(),
                c.cpu_vendor.clone().into(),
                c.cpu_model.clone().into(),
                c.arch.clone().into(),
                c.os_id.clone().into(),
                c.os_version.clone().into(),
                c.os_name.clone().into(),
                c.kernel.clone().into(),
                c.plan_id.clone().into(),
                c.plan_version.clone().into(),
                c.outcome.clone().into(),
                words.join(" ").to_lowercase().into(),
                published.clone().into(),
            ]);
            for pci_id in super::certifications::listed_pci_ids(&c.components) {
                listed.push(vec![
                    cert_id.clone().into(),
                    pci_id.to_string().into(),
                    "published".to_string().into(),
                    published.clone().into(),
                ]);
            }
            for (seq, x) in c.components.iter().enumerate() {
                components.push(vec![
                    cert_id.clone().into(),
                    V::I(i64::try_from(seq).unwrap_or(i64::MAX)),
                    x.pci_id.clone().into(),
                    x.class.clone().into(),
                    x.name.clone().into(),
                    x.driver.clone().into(),
                ]);
            }
        }
        insert_rows(
            &mut tx,
            "portal_submissions",
            &[
                "id",
                "org_id",
                "submitter_id",
                "bundle_sha256",
                "bundle_size",
                "key_id",
                "report_sha256",
                "results_json",
                "state",
                "created",
                "updated",
            ],
            &submissions,
        )
        .await?;
        insert_rows(
            &mut tx,
            "portal_certifications",
            &[
                "id",
                "submission_id",
                "org_id",
                "state",
                "vendor",
                "product",
                "firmware",
                "cpu_family",
                "cpu_vendor",
                "cpu_model",
                "arch",
                "os_id",
                "os_version",
                "os_name",
                "kernel",
                "plan_id",
                "plan_version",
                "outcome",
                "search_text",
                "published",
            ],
            &certifications,
        )
        .await?;
        insert_rows(
            &mut tx,
            "portal_components",
            &[
                "certification_id",
                "seq",
                "pci_id",
                "class",
                "name",
                "driver",
            ],
            &components,
        )
        .await?;
        insert_rows(
            &mut tx,
            "portal_component_list",
            &["certification_id", "pci_id", "state", "published"],
            &listed,
        )
        .await?;
        super::certifications::bump_list_version(&mut tx).await?;
        tx.commit().await.map_err(db_err("seed: commit"))?;
        // Fresh planner statistics after a bulk load (PostgreSQL's
        // autovacuum may be off or not have run yet; SQLite has none until
        // ANALYZE): without them both planners may sort every published
        // row for a page instead of walking the list index. On PostgreSQL
        // VACUUM also sets the visibility map, without which an index-only
        // scan fetches every row it passes from the heap (the component
        // filter: 8.3 ms → 2.1 ms per page on 100,000 certifications).
        let analyze = match self.backend {
            Backend::Postgres => "VACUUM (ANALYZE)",
            _ => "ANALYZE",
        };
        sqlx::query(analyze)
            .execute(&self.pool)
            .await
            .map_err(db_err("seed: analyze"))?;
        seeded.certifications = certifications.len() as u64;
        seeded.components = components.len() as u64;
        Ok(seeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_numbers_placeholders_row_by_row() {
        assert_eq!(values(2, 3), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(values(1, 1), "($1)");
    }
}
