//! The portal store shares the lab store's database and its
//! `_sqlx_migrations` table: each opens after the other, in both orders, on
//! one SQLite file and one PostgreSQL database, and both keep working.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use certlab_harness::Store;
use certlab_web::PortalStore;
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
