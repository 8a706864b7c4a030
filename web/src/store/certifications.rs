//! Published certifications: made from an approved submission's
//! `results.json`, searched by the public list.

use std::collections::HashMap;
use std::sync::Mutex;

use certlab_harness::Backend;
use certlab_reports::{HardwareSummary, RunRecord};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use time::OffsetDateTime;

use super::rows::{db_err, get, get_opt_ts, get_ts, ts, DbError};
use super::submissions::Submission;
use super::PortalStore;

/// A certification as published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certification {
    pub id: String,
    pub submission_id: String,
    pub org_name: String,
    /// `published` or `revoked`.
    pub state: String,
    /// The system's vendor (SMBIOS), else the submitting organisation.
    pub vendor: String,
    pub product: String,
    /// BIOS / firmware version.
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
    pub revoked: Option<OffsetDateTime>,
    pub bundle_sha256: String,
    pub report_sha256: String,
}

/// A certification with its components and hardware profile.
#[derive(Debug, Clone, PartialEq)]
pub struct CertificationDetail {
    pub certification: Certification,
    pub components: Vec<Component>,
    /// The profile as `results.json` gave it.
    pub profile: Option<HardwareSummary>,
}

/// A certified component (a PCI device with its driver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// `vvvv:dddd`.
    pub pci_id: String,
    pub class: String,
    pub name: String,
    pub driver: String,
}

/// A certification a component is part of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentUse {
    pub component: Component,
    pub certification: Certification,
}

/// A search of the public list. Empty strings are no filter; filters and
/// words ignore case.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default)]
pub struct CertQuery {
    /// Words that must all appear (vendor, product, CPU, OS, kernel, components).
    pub q: String,
    pub vendor: String,
    /// CPU platform family (`kunpeng`, `intel`, …).
    pub family: String,
    pub arch: String,
    /// An OS id (`debian`) or id-version (`debian-12`).
    pub os: String,
    /// A PCI id (`8086:1572`), a driver or a word of a component's name.
    pub component: String,
    pub page: u32,
    pub per_page: u32,
    /// Revoked certifications too.
    #[serde(skip)]
    pub include_revoked: bool,
}

/// The most items one page holds.
pub const MAX_PER_PAGE: u32 = 100;
/// Items per page when none is asked for.
pub const DEFAULT_PER_PAGE: u32 = 20;

impl CertQuery {
    /// What the matches depend on (not the page): the key of their count.
    fn filter_key(&self) -> String {
        let words: Vec<String> = self
            .q
            .split_whitespace()
            .take(8)
            .map(str::to_lowercase)
            .collect();
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
            words.join(" "),
            self.vendor.to_lowercase(),
            self.family.to_lowercase(),
            self.arch.to_lowercase(),
            self.os.to_lowercase(),
            self.component.to_lowercase(),
            self.include_revoked
        )
    }

    /// The page (from 1) and its size, within bounds.
    pub fn page_bounds(&self) -> (u32, u32) {
        let per_page = match self.per_page {
            0 => DEFAULT_PER_PAGE,
            n => n.min(MAX_PER_PAGE),
        };
        (self.page.max(1), per_page)
    }
}

const SELECT_CERT: &str = "SELECT c.id, c.submission_id, o.name AS org_name, c.state, c.vendor, \
     c.product, c.firmware, c.cpu_family, c.cpu_vendor, c.cpu_model, c.arch, c.os_id, \
     c.os_version, c.os_name, c.kernel, c.plan_id, c.plan_version, c.outcome, c.published, \
     c.revoked, s.bundle_sha256, s.report_sha256 FROM portal_certifications c \
     JOIN portal_orgs o ON o.id = c.org_id JOIN portal_submissions s ON s.id = c.submission_id ";

fn cert_from_row(row: &AnyRow) -> Result<Certification, DbError> {
    let id: String = get(row, "certification", "id")?;
    let w = format!("certification {id}");
    let w = w.as_str();
    Ok(Certification {
        submission_id: get(row, w, "submission_id")?,
        org_name: get(row, w, "org_name")?,
        state: get(row, w, "state")?,
        vendor: get(row, w, "vendor")?,
        product: get(row, w, "product")?,
        firmware: get(row, w, "firmware")?,
        cpu_family: get(row, w, "cpu_family")?,
        cpu_vendor: get(row, w, "cpu_vendor")?,
        cpu_model: get(row, w, "cpu_model")?,
        arch: get(row, w, "arch")?,
        os_id: get(row, w, "os_id")?,
        os_version: get(row, w, "os_version")?,
        os_name: get(row, w, "os_name")?,
        kernel: get(row, w, "kernel")?,
        plan_id: get(row, w, "plan_id")?,
        plan_version: get(row, w, "plan_version")?,
        outcome: get(row, w, "outcome")?,
        published: get_ts(row, w, "published")?,
        revoked: get_opt_ts(row, w, "revoked")?,
        bundle_sha256: get(row, w, "bundle_sha256")?,
        report_sha256: get(row, w, "report_sha256")?,
        id,
    })
}

fn component_from_row(row: &AnyRow) -> Result<Component, DbError> {
    Ok(Component {
        pci_id: get(row, "component", "pci_id")?,
        class: get(row, "component", "class")?,
        name: get(row, "component", "name")?,
        driver: get(row, "component", "driver")?,
    })
}

/// The components a record certifies: its PCI functions other than bridges
/// (class 06), one per (PCI id, driver).
pub fn components_of(record: &RunRecord) -> Vec<Component> {
    let mut out: Vec<Component> = Vec::new();
    for d in &record.profile.pci_devices {
        if d.class.starts_with("06") {
            continue;
        }
        let c = Component {
            pci_id: d.id.to_ascii_lowercase(),
            class: d.class.clone(),
            name: d.name.clone().unwrap_or_default(),
            driver: d.driver.clone().unwrap_or_default(),
        };
        if !out
            .iter()
            .any(|o| o.pci_id == c.pci_id && o.driver == c.driver)
        {
            out.push(c);
        }
    }
    out
}

fn or_empty(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// Inserts the certification of an approved submission, with its components.
pub(crate) async fn insert_certification(
    tx: &mut Transaction<'static, Any>,
    id: &str,
    submission: &Submission,
    record: &RunRecord,
    now: OffsetDateTime,
) -> Result<(), DbError> {
    let what = format!("publish certification of submission {}", submission.id);
    let p = &record.profile;
    let h = &record.host;
    let vendor = p
        .system_vendor
        .clone()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| submission.org_name.clone());
    let components = components_of(record);
    let mut words = vec![
        vendor.clone(),
        or_empty(&p.system_product),
        p.cpu_family.clone(),
        p.cpu_vendor.clone(),
        p.cpu_model.clone(),
        h.arch.clone(),
        h.os_name.clone(),
        h.os_id.clone(),
        h.kernel.clone(),
        submission.org_name.clone(),
        record.plan.id.clone(),
    ];
    for c in &components {
        words.extend([c.pci_id.clone(), c.name.clone(), c.driver.clone()]);
    }
    let search_text = words.join(" ").to_lowercase();
    sqlx::query(
        "INSERT INTO portal_certifications (id, submission_id, org_id, state, vendor, product, \
         firmware, cpu_family, cpu_vendor, cpu_model, arch, os_id, os_version, os_name, kernel, \
         plan_id, plan_version, outcome, search_text, published, profile_json) VALUES ($1, $2, $3, \
         'published', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
    )
    .bind(id)
    .bind(submission.id.as_str())
    .bind(submission.org_id.as_str())
    .bind(vendor)
    .bind(or_empty(&p.system_product))
    .bind(or_empty(&p.bios_version))
    .bind(p.cpu_family.as_str())
    .bind(p.cpu_vendor.as_str())
    .bind(p.cpu_model.as_str())
    .bind(h.arch.as_str())
    .bind(h.os_id.as_str())
    .bind(h.os_version.as_str())
    .bind(h.os_name.as_str())
    .bind(h.kernel.as_str())
    .bind(record.plan.id.as_str())
    .bind(record.plan.version.as_str())
    .bind(record.summary.outcome.as_str())
    .bind(search_text)
    .bind(ts(now))
    .bind(serde_json::to_string(&record.profile).map_err(|e| DbError::Invalid {
        what: what.clone(),
        detail: e.to_string(),
    })?)
    .execute(&mut **tx)
    .await
    .map_err(db_err(&what))?;
    for (seq, c) in components.iter().enumerate() {
        sqlx::query(
            "INSERT INTO portal_components (certification_id, seq, pci_id, class, name, driver) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(c.pci_id.as_str())
        .bind(c.class.as_str())
        .bind(c.name.as_str())
        .bind(c.driver.as_str())
        .execute(&mut **tx)
        .await
        .map_err(db_err(&what))?;
    }
    for pci_id in listed_pci_ids(&components) {
        sqlx::query(
            "INSERT INTO portal_component_list (certification_id, pci_id, state, published) \
             VALUES ($1, $2, 'published', $3)",
        )
        .bind(id)
        .bind(pci_id)
        .bind(ts(now))
        .execute(&mut **tx)
        .await
        .map_err(db_err(&what))?;
    }
    bump_list_version(tx).await
}

/// A certification's rows of `portal_component_list`: each PCI id of its
/// components once (a device may be listed with two drivers).
pub(crate) fn listed_pci_ids(components: &[Component]) -> Vec<&str> {
    let mut ids: Vec<&str> = components.iter().map(|c| c.pci_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Marks the public list changed (see [`CountCache`]): in the transaction
/// that publishes, revokes or seeds certifications.
pub(crate) async fn bump_list_version(tx: &mut Transaction<'static, Any>) -> Result<(), DbError> {
    sqlx::query("UPDATE portal_list_version SET version = version + 1 WHERE id = 1")
        .execute(&mut **tx)
        .await
        .map_err(db_err("bump the list version"))?;
    Ok(())
}

/// The most rows of the list index a SQLite page walks rather than sort
/// the matches (see `PortalStore::search`).
const WALK_LIMIT: u64 = 20_000;

/// The most filters whose counts are kept; the cache starts over past it.
const COUNT_CACHE_ENTRIES: usize = 4096;
/// The longest filter whose count is kept (longer ones are counted each
/// time), so the cache holds at most a few MiB.
const COUNT_CACHE_KEY_BYTES: usize = 512;

/// How many certifications match each filter, at one version of the list
/// (`portal_list_version`): an answer's `total` without a COUNT over every
/// matching row per request. Certifications change only when published,
/// revoked or seeded, and each of those bumps the version in its
/// transaction, so a count is exact for the version it is kept under; a
/// request that reads a newer version drops every count. Shared by the
/// store's clones.
#[derive(Debug, Default)]
pub(crate) struct CountCache {
    /// The version the counts were made at, and the counts by filter key.
    inner: Mutex<(i64, HashMap<String, u64>)>,
    /// The filters being counted now, each with a lock its counter holds:
    /// requests for a filter that is not counted yet wait for the one
    /// count instead of each running its own.
    pending: Mutex<HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl CountCache {
    /// The lock of the count of `key` (one per filter being counted).
    fn counting(&self, key: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        match self.pending.lock() {
            Ok(mut pending) => pending.entry(key.to_string()).or_default().clone(),
            Err(_) => Default::default(),
        }
    }

    /// Forgets the lock of `key` once its count is kept.
    fn counted(&self, key: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(key);
        }
    }

    fn get(&self, version: i64, key: &str) -> Option<u64> {
        let guard = self.inner.lock().ok()?;
        if guard.0 != version {
            return None;
        }
        guard.1.get(key).copied()
    }

    fn put(&self, version: i64, key: String, count: u64) {
        if key.len() > COUNT_CACHE_KEY_BYTES {
            return;
        }
        let Ok(mut guard) = self.inner.lock() else {
            return;
        };
        if guard.0 != version || guard.1.len() >= COUNT_CACHE_ENTRIES {
            // a count made at an older version than the kept ones is
            // dropped by the next request that reads the newer one
            if version < guard.0 {
                return;
            }
            guard.0 = version;
            guard.1.clear();
        }
        guard.1.insert(key, count);
    }
}

/// Adds a bound value and returns its placeholder.
fn bind(binds: &mut Vec<String>, v: String) -> String {
    binds.push(v);
    format!("${}", binds.len())
}

/// `%` and `_` taken literally in a `LIKE … ESCAPE '\'` pattern.
fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// `vvvv:dddd`, four hex digits each: a PCI vendor and device id, as
/// components are stored (lowercase; any case is accepted here).
fn is_pci_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 9
        && b[4] == b':'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_hexdigit())
}

/// The clause of a search without revoked certifications.
const PUBLISHED_ONLY: &str = "c.state = 'published'";

/// The page query of a search with a PCI-id component (bound as `exact`):
/// the page's ids from `portal_component_list`'s order index — its rows for
/// that PCI id, newest first, the state read from the index — joined to
/// their certifications only when other filters (`rest`, over `c`: not the
/// state's nor the component's own) must be tested, so a page
/// reads about `offset + per_page` index entries, not the list's.
fn component_page_sql(
    backend: Backend,
    exact: &str,
    rest: &[&String],
    include_revoked: bool,
    per_page: u32,
    offset: i64,
) -> String {
    let mut filter = vec![format!("cl.pci_id = {exact}")];
    if !include_revoked {
        filter.push("cl.state = 'published'".into());
    }
    filter.extend(rest.iter().map(|c| c.to_string()));
    // SQLite, given statistics, may rather take a filter's index on `c` and
    // sort; the order index is the walk meant here
    let indexed = match backend {
        Backend::Sqlite => " INDEXED BY portal_component_list_order",
        _ => "",
    };
    let join = if rest.is_empty() {
        ""
    } else {
        " JOIN portal_certifications c ON c.id = cl.certification_id"
    };
    format!(
        "{SELECT_CERT} JOIN (SELECT cl.certification_id AS id FROM portal_component_list cl{indexed}{join} \
         WHERE {} ORDER BY cl.published DESC, cl.certification_id DESC \
         LIMIT {per_page} OFFSET {offset}) p ON p.id = c.id ORDER BY c.published DESC, c.id DESC",
        filter.join(" AND ")
    )
}

impl PortalStore {
    /// One page of the certifications matching `query`, newest first, and
    /// how many match in all.
    pub async fn search(&self, query: &CertQuery) -> Result<(Vec<Certification>, u64), DbError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        if !query.include_revoked {
            clauses.push(PUBLISHED_ONLY.into());
        }
        // A word is a substring of the lowercased search text. Written as a
        // position test, not `LIKE '%word%'`: PostgreSQL estimates a LIKE
        // from the column's statistics — a histogram of 100 search texts of
        // ~400 bytes, decompressed and matched on every planning, which was
        // most of a word search's cost at 500 requests/s — while a position
        // test gets a fixed estimate, one plan (the list index walked in
        // its order) whatever the word.
        let contains = match self.backend {
            Backend::Postgres => "strpos",
            _ => "instr",
        };
        for word in query.q.split_whitespace().take(8) {
            let p = bind(&mut binds, word.to_lowercase());
            clauses.push(format!("{contains}(c.search_text, {p}) > 0"));
        }
        for (value, column) in [
            (&query.vendor, "vendor"),
            (&query.family, "cpu_family"),
            (&query.arch, "arch"),
        ] {
            if !value.is_empty() {
                let p = bind(&mut binds, value.to_lowercase());
                clauses.push(format!("LOWER(c.{column}) = {p}"));
            }
        }
        if !query.os.is_empty() {
            let os = query.os.to_lowercase();
            match os.rsplit_once('-') {
                Some((id, version)) => {
                    let a = bind(&mut binds, id.to_string());
                    let b = bind(&mut binds, version.to_string());
                    let c = bind(&mut binds, os.clone());
                    clauses.push(format!(
                        "((LOWER(c.os_id) = {a} AND LOWER(c.os_version) = {b}) OR LOWER(c.os_id) = {c})"
                    ));
                }
                None => {
                    let p = bind(&mut binds, os);
                    clauses.push(format!("LOWER(c.os_id) = {p}"));
                }
            }
        }
        // A PCI id (`8086:1572`) names components exactly: the certifications
        // holding it (a few thousand at most among 100,000) come from
        // `portal_component_list`, in the list's order (see the page query).
        let mut pci: Option<(String, String)> = None;
        if is_pci_id(&query.component) {
            let exact = bind(&mut binds, query.component.to_lowercase());
            let clause = format!(
                "c.id IN (SELECT cl.certification_id FROM portal_component_list cl WHERE cl.pci_id = {exact})"
            );
            clauses.push(clause.clone());
            pci = Some((exact, clause));
        } else if !query.component.is_empty() {
            let exact = bind(&mut binds, query.component.to_lowercase());
            let like = bind(
                &mut binds,
                format!("%{}%", like_escape(&query.component.to_lowercase())),
            );
            // search_text holds every component's PCI id, driver and name,
            // lowercased: a certification whose text lacks the value has no
            // such component, and is passed over without looking up its
            // components. PostgreSQL would turn the EXISTS into a join that
            // scans every component row (its estimate of the text test is far
            // too low); an OFFSET keeps it a per-candidate lookup.
            let fence = match self.backend {
                Backend::Postgres => " OFFSET 0",
                _ => "",
            };
            clauses.push(format!(
                "{contains}(c.search_text, {exact}) > 0 \
                 AND EXISTS (SELECT 1 FROM portal_components pc WHERE pc.certification_id = c.id \
                 AND (pc.pci_id = {exact} OR pc.driver = {exact} \
                 OR LOWER(pc.name) LIKE {like} ESCAPE '\\'){fence})"
            ));
        }
        let filter = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        let row = sqlx::query("SELECT version FROM portal_list_version WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("read the list version"))?;
        let version: i64 = get(&row, "list version", "version")?;
        let total = self
            .cached_count(version, query.filter_key(), &filter, &binds)
            .await?;
        let (page, per_page) = query.page_bounds();
        let offset = i64::from(page - 1) * i64::from(per_page);
        if u64::try_from(offset).unwrap_or(u64::MAX) >= total {
            // no match, or a page past the last: no need to look
            return Ok((Vec::new(), total));
        }
        // The page's ids first, from the certifications table alone (the
        // list index covers the unfiltered walk), then the joins for those
        // rows only: the rows an OFFSET skips are never joined.
        //
        // SQLite's planner, given statistics, takes a filter's index and
        // sorts every match (thousands of rows) for a page of 20; when the
        // matches are common enough that walking the list index in its order
        // meets a page's worth within WALK_LIMIT rows, walk it. PostgreSQL's
        // planner weighs the LIMIT itself.
        let mut from = "portal_certifications c";
        if let Some((exact, clause)) = &pci {
            let rest: Vec<&String> = clauses
                .iter()
                .filter(|c| *c != clause && c.as_str() != PUBLISHED_ONLY)
                .collect();
            let sql = component_page_sql(
                self.backend,
                exact,
                &rest,
                query.include_revoked,
                per_page,
                offset,
            );
            return Ok((self.page(&sql, &binds).await?, total));
        }
        if self.backend == Backend::Sqlite && !query.include_revoked && !clauses.is_empty() {
            let all = self
                .cached_count(
                    version,
                    CertQuery::default().filter_key(),
                    "WHERE c.state = 'published'",
                    &[],
                )
                .await?;
            let wanted = u64::try_from(offset).unwrap_or(u64::MAX) + u64::from(per_page);
            if wanted.saturating_mul(all) <= WALK_LIMIT.saturating_mul(total) {
                from = "portal_certifications c INDEXED BY portal_certifications_list";
            }
        }
        let sql = format!(
            "{SELECT_CERT} JOIN (SELECT c.id FROM {from} {filter} \
             ORDER BY c.published DESC, c.id DESC LIMIT {per_page} OFFSET {offset}) p \
             ON p.id = c.id ORDER BY c.published DESC, c.id DESC"
        );
        Ok((self.page(&sql, &binds).await?, total))
    }

    /// The certifications a page query (`SELECT_CERT …`) gives.
    async fn page(&self, sql: &str, binds: &[String]) -> Result<Vec<Certification>, DbError> {
        let mut items = sqlx::query(sql);
        for b in binds {
            items = items.bind(b.as_str());
        }
        let rows = items
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("search certifications"))?;
        rows.iter().map(cert_from_row).collect()
    }

    /// How many certifications match `filter` (a WHERE clause over `c`) at
    /// list version `version`: from the cache, else counted once (requests
    /// for the same filter meanwhile wait for that count).
    async fn cached_count(
        &self,
        version: i64,
        key: String,
        filter: &str,
        binds: &[String],
    ) -> Result<u64, DbError> {
        if let Some(n) = self.counts.get(version, &key) {
            return Ok(n);
        }
        let lock = self.counts.counting(&key);
        let _counting = lock.lock().await;
        if let Some(n) = self.counts.get(version, &key) {
            // counted while this request waited
            return Ok(n);
        }
        let n = self.count(filter, binds).await;
        if let Ok(n) = n {
            self.counts.put(version, key.clone(), n);
        }
        self.counts.counted(&key);
        n
    }

    /// How many certifications match `filter` (a WHERE clause over `c`).
    async fn count(&self, filter: &str, binds: &[String]) -> Result<u64, DbError> {
        let sql = format!("SELECT COUNT(*) AS n FROM portal_certifications c {filter}");
        let mut count = sqlx::query(&sql);
        for b in binds {
            count = count.bind(b.as_str());
        }
        let row = count
            .fetch_one(&self.pool)
            .await
            .map_err(db_err("count certifications"))?;
        let n: i64 = get(&row, "count", "n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// A certification (published or revoked) with its components and profile.
    pub async fn certification(&self, id: &str) -> Result<Option<CertificationDetail>, DbError> {
        let sql = format!("{SELECT_CERT} WHERE c.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err(format!("find certification {id}")))?;
        let Some(row) = row else { return Ok(None) };
        let certification = cert_from_row(&row)?;
        let what = format!("profile of certification {id}");
        let row = sqlx::query("SELECT profile_json FROM portal_certifications WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err(&what))?;
        let profile = get::<Option<String>>(&row, &what, "profile_json")?
            .map(|json| {
                serde_json::from_str(&json).map_err(|e| DbError::Corrupt {
                    what: what.clone(),
                    detail: e.to_string(),
                })
            })
            .transpose()?;
        let rows = sqlx::query(
            "SELECT pci_id, class, name, driver FROM portal_components \
             WHERE certification_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err(format!("components of certification {id}")))?;
        let components = rows
            .iter()
            .map(component_from_row)
            .collect::<Result<_, _>>()?;
        Ok(Some(CertificationDetail {
            certification,
            components,
            profile,
        }))
    }

    /// The published certifications a component (by PCI id) is part of, newest first.
    pub async fn component_uses(&self, pci_id: &str) -> Result<Vec<ComponentUse>, DbError> {
        let sql = format!(
            "SELECT c.id, c.submission_id, o.name AS org_name, c.state, c.vendor, \
             c.product, c.firmware, c.cpu_family, c.cpu_vendor, c.cpu_model, c.arch, c.os_id, \
             c.os_version, c.os_name, c.kernel, c.plan_id, c.plan_version, c.outcome, \
             c.published, c.revoked, s.bundle_sha256, s.report_sha256, pc.pci_id, pc.class, \
             pc.name, pc.driver FROM portal_components pc \
             JOIN portal_certifications c ON c.id = pc.certification_id \
             JOIN portal_orgs o ON o.id = c.org_id \
             JOIN portal_submissions s ON s.id = c.submission_id \
             WHERE pc.pci_id = $1 AND c.state = 'published' \
             ORDER BY c.published DESC, c.id DESC LIMIT {}",
            10 * MAX_PER_PAGE
        );
        let rows = sqlx::query(&sql)
            .bind(pci_id.to_ascii_lowercase())
            .fetch_all(&self.pool)
            .await
            .map_err(db_err(format!("certifications of component {pci_id}")))?;
        rows.iter()
            .map(|row| {
                Ok(ComponentUse {
                    component: component_from_row(row)?,
                    certification: cert_from_row(row)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pci_ids_are_told_by_their_form() {
        for yes in ["8086:1572", "10DE:20B0", "19e5:a222"] {
            assert!(is_pci_id(yes), "{yes}");
        }
        for no in [
            "8086",
            "8086:157",
            "8086:15722",
            "8086-1572",
            "i40e",
            "808g:1572",
            "",
        ] {
            assert!(!is_pci_id(no), "{no}");
        }
    }

    #[test]
    fn a_pci_id_is_listed_once_per_certification() {
        let c = |pci_id: &str, driver: &str| Component {
            pci_id: pci_id.into(),
            class: "0200".into(),
            name: String::new(),
            driver: driver.into(),
        };
        let components = [
            c("8086:1572", "i40e"),
            c("10de:20b0", "nvidia"),
            c("8086:1572", "vfio-pci"),
        ];
        assert_eq!(listed_pci_ids(&components), ["10de:20b0", "8086:1572"]);
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_escape("a%b_c\\"), "a\\%b\\_c\\\\");
    }

    #[test]
    fn pages_are_bounded() {
        let q = |page, per_page| CertQuery {
            page,
            per_page,
            ..CertQuery::default()
        };
        assert_eq!(q(0, 0).page_bounds(), (1, DEFAULT_PER_PAGE));
        assert_eq!(q(3, 1000).page_bounds(), (3, MAX_PER_PAGE));
    }
}
