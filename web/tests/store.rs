//! The portal store shares the lab store's database and its
//! `_sqlx_migrations` table: each opens after the other, in both orders, on
//! one SQLite file and one PostgreSQL database, and both keep working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use certlab_harness::Store;
use certlab_web::review::ReviewAction;
use certlab_web::store::{CertQuery, Component, DemoCertification};
use certlab_web::{PortalStore, Role};
use common::TempDb;
use sqlx::Row;

async fn versions(url: &str) -> Vec<i64> {
    sqlx::any::install_default_drivers();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .unwrap();
    let rows = sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.iter().map(|r| r.get::<i64, _>("version")).collect()
}

/// Opens both stores on `url` in the given order, twice, and uses each.
async fn both_orders(url: &str, portal_first: bool) {
    for round in 0..2 {
        let (lab, portal) = if portal_first {
            let portal = PortalStore::open(url).await.unwrap();
            (Store::open(url).await.unwrap(), portal)
        } else {
            let lab = Store::open(url).await.unwrap();
            (lab, PortalStore::open(url).await.unwrap())
        };
        let now = time::OffsetDateTime::now_utc();
        portal
            .create_org(&format!("org-{round}"), now)
            .await
            .unwrap();
        assert!(portal.org_by_name("org-0").await.unwrap().is_some());
        lab.list_runs(10).await.unwrap();
        lab.close().await;
        portal.close().await;
    }
    let v = versions(url).await;
    assert!(v.contains(&1) && v.contains(&1000), "{v:?}");
    let lab: Vec<i64> = v.iter().copied().filter(|x| *x < 1000).collect();
    assert_eq!(
        lab,
        (1..=lab.len() as i64).collect::<Vec<_>>(),
        "every lab migration: {v:?}"
    );
    assert!(lab.len() >= 7, "{v:?}");
    let mut ours: Vec<i64> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.split('_').next().unwrap().parse().unwrap()
        })
        .collect();
    ours.sort();
    let applied: Vec<i64> = v.iter().copied().filter(|x| *x >= 1000).collect();
    assert_eq!(applied, ours, "every portal migration, once");
}

#[tokio::test]
async fn both_stores_on_one_sqlite_file_in_both_orders() {
    for portal_first in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("shared.db").display());
        both_orders(&url, portal_first).await;
    }
}

#[tokio::test]
async fn both_stores_on_one_postgres_database_in_both_orders() {
    for portal_first in [true, false] {
        let db = TempDb::create().await;
        both_orders(&db.url, portal_first).await;
        db.drop_db().await;
    }
}

#[tokio::test]
async fn a_bare_path_opens_like_the_lab_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/portal.db");
    let store = PortalStore::open(path.to_str().unwrap()).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
    assert!(path.is_file());
}

#[tokio::test]
async fn accounts_keep_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let store = PortalStore::open(dir.path().join("p.db").to_str().unwrap())
        .await
        .unwrap();
    let now = time::OffsetDateTime::now_utc();
    store.create_org("acme", now).await.unwrap();
    let dup = store.create_org("acme", now).await.unwrap_err();
    assert!(dup.to_string().contains("already exists"), "{dup}");
    assert!(store.create_org(" acme", now).await.is_err());
    let e = store
        .create_user(
            "x@example.org",
            "nope",
            certlab_web::Role::Vendor,
            None,
            now,
        )
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("organisation \"nope\" not found"),
        "{e}"
    );
    let k = common::key(9).verifying_key();
    let id = store.add_key("acme", &k, now).await.unwrap();
    assert_eq!(id, certlab_reports::key_id(&k));
    let org = store.org_by_name("acme").await.unwrap().unwrap();
    assert_eq!(store.org_keys(&org.id).await.unwrap(), vec![k]);
    store.create_org("globex", now).await.unwrap();
    let taken = store.add_key("globex", &k, now).await.unwrap_err();
    assert!(taken.to_string().contains("already exists"), "{taken}");
    store.close().await;
}

/// A demo certification `demo {i}`, published `i` seconds before `now`,
/// with an Intel X710 (even `i`) or a Mellanox ConnectX-5 (odd `i`).
fn demo(i: usize, arch: &str, now: time::OffsetDateTime) -> DemoCertification {
    let component = if i % 2 == 0 {
        Component {
            pci_id: "8086:1572".into(),
            class: "020000".into(),
            name: "Ethernet Controller X710 for 10GbE SFP+".into(),
            driver: "i40e".into(),
        }
    } else {
        Component {
            pci_id: "15b3:1017".into(),
            class: "020000".into(),
            name: "MT27800 Family [ConnectX-5]".into(),
            driver: "mlx5_core".into(),
        }
    };
    DemoCertification {
        vendor: "Acme".into(),
        product: format!("demo {i}"),
        firmware: "1.0".into(),
        cpu_family: "intel".into(),
        cpu_vendor: "GenuineIntel".into(),
        cpu_model: "Xeon".into(),
        arch: arch.into(),
        os_id: "debian".into(),
        os_version: "12".into(),
        os_name: "Debian GNU/Linux 12".into(),
        kernel: "6.1.0-18-amd64".into(),
        plan_id: "server-basic".into(),
        plan_version: "1".into(),
        outcome: "pass".into(),
        published: now - time::Duration::seconds(i as i64),
        components: vec![component],
    }
}

fn products(items: &[certlab_web::store::Certification]) -> Vec<String> {
    items.iter().map(|c| c.product.clone()).collect()
}

fn demos(range: std::ops::Range<usize>) -> Vec<String> {
    range
        .filter(|i| *i != 7)
        .map(|i| format!("demo {i}"))
        .collect()
}

/// The list's totals are counted once per filter and list version: a
/// second store on the same database (another portal process) that
/// publishes makes the first count again; pages come in list order whether
/// the query walks the list index (common matches) or sorts (rare ones).
async fn counts_follow_the_list(url: &str) {
    let a = PortalStore::open(url).await.unwrap();
    let b = PortalStore::open(url).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let certs: Vec<DemoCertification> = (0..1100)
        .map(|i| demo(i, if i == 7 { "riscv64" } else { "x86_64" }, now))
        .collect();
    a.seed_demo(&certs[..1000], now).await.unwrap();
    let all = CertQuery::default();
    assert_eq!(a.search(&all).await.unwrap().1, 1000);
    assert_eq!(b.search(&all).await.unwrap().1, 1000);
    b.seed_demo(&certs[1000..], now).await.unwrap();
    assert_eq!(a.search(&all).await.unwrap().1, 1100, "a counts again");

    // one match in 1,100: sorted, not walked
    let riscv = CertQuery {
        arch: "RISCV64".into(),
        ..CertQuery::default()
    };
    let (items, total) = a.search(&riscv).await.unwrap();
    assert_eq!((products(&items), total), (vec!["demo 7".to_string()], 1));
    // common matches, a deep page: walked in order
    let mut x86 = CertQuery {
        arch: "x86_64".into(),
        page: 3,
        per_page: 100,
        ..CertQuery::default()
    };
    let (items, total) = a.search(&x86).await.unwrap();
    assert_eq!(total, 1099);
    assert_eq!(products(&items), demos(0..1100)[200..300]);
    x86.page = 11;
    let (items, _) = a.search(&x86).await.unwrap();
    assert_eq!(products(&items), demos(0..1100)[1000..]);
    x86.page = 12;
    let (items, total) = a.search(&x86).await.unwrap();
    assert_eq!((items.len(), total), (0, 1099), "past the last page");

    // a component by PCI id, driver or a word of its name; a part of a PCI
    // id is in the search text but names no component
    for (value, want) in [
        ("8086:1572", 550),
        ("I40E", 550),
        ("connectx", 550),
        ("x710", 550),
        ("8086", 0),
        ("i40", 0),
    ] {
        let q = CertQuery {
            component: value.into(),
            ..CertQuery::default()
        };
        let (items, total) = a.search(&q).await.unwrap();
        assert_eq!(total, want, "{value}");
        assert_eq!(items.len(), want.min(20) as usize, "{value}");
        if value == "connectx" {
            assert_eq!(items[0].product, "demo 1");
        }
    }

    // a PCI id's pages come from its own list (portal_component_list) in
    // the list's order, other filters tested on the way; a revoked
    // certification leaves them
    let x710 = |page: u32, arch: &str| CertQuery {
        component: "8086:1572".into(),
        arch: arch.into(),
        page,
        per_page: 100,
        ..CertQuery::default()
    };
    let evens: Vec<String> = (0..1100).step_by(2).map(|i| format!("demo {i}")).collect();
    let (items, total) = a.search(&x710(2, "")).await.unwrap();
    assert_eq!((total, products(&items)), (550, evens[100..200].to_vec()));
    let (items, total) = b.search(&x710(6, "X86_64")).await.unwrap();
    assert_eq!((total, products(&items)), (550, evens[500..].to_vec()));
    assert_eq!(a.search(&x710(1, "riscv64")).await.unwrap(), (vec![], 0));
    let (first, _) = a.search(&x710(1, "")).await.unwrap();
    assert_eq!(first[0].product, "demo 0");
    a.create_org("reviewers", now).await.unwrap();
    let reviewer = a
        .create_user("r@lab.example", "reviewers", Role::Reviewer, None, now)
        .await
        .unwrap();
    a.review(
        &first[0].submission_id,
        &reviewer,
        ReviewAction::Revoke,
        "recalled",
        now,
    )
    .await
    .unwrap();
    let (items, total) = b.search(&x710(1, "")).await.unwrap();
    assert_eq!((total, products(&items)), (549, evens[1..101].to_vec()));
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn the_list_counts_follow_every_change_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("list.db").display());
    counts_follow_the_list(&url).await;
}

#[tokio::test]
async fn the_list_counts_follow_every_change_postgres() {
    let db = TempDb::create().await;
    counts_follow_the_list(&db.url).await;
    db.drop_db().await;
}
