//! `certlab portal seed-demo`: demo certifications drawn from the hwdb
//! fixtures, seen through `certlab serve`'s public API — on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

mod common;

fn seed(db: &str, data: &Path, n: u64) -> Value {
    let o = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args([
            "portal",
            "seed-demo",
            "--certifications",
            &n.to_string(),
            "--db",
            db,
            "--format",
            "json",
        ])
        .env("CERTLAB_DATA_DIR", data)
        .env_remove("CERTLAB_DB")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(db: &str, dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(["serve", "--db", db, "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.join("portal"))
        .env("CERTLAB_DATA_DIR", dir.join("data"))
        .env_remove("CERTLAB_DB")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit_once(' ').unwrap().1.to_string();
    Server(child, base)
}

async fn get(base: &str, path: &str) -> Value {
    let r = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{path}");
    r.json().await.unwrap()
}

async fn seeded_list(db: &str, dir: &Path) {
    let out = seed(db, &dir.join("data"), 300);
    assert_eq!(out["certifications"], 300, "{out}");
    assert!(out["orgs"].as_u64().unwrap() >= 5, "{out}");
    assert!(out["components"].as_u64().unwrap() >= 900, "{out}");
    // seeding again adds more, in the organisations already there
    let again = seed(db, &dir.join("data"), 20);
    assert_eq!(again["certifications"], 20);
    assert_eq!(again["orgs"], 0, "{again}");

    let server = serve(db, dir);
    let base = &server.1;
    let all = get(base, "/api/v1/certifications?per_page=100").await;
    assert_eq!(all["total"], 320);
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 100);
    // newest first
    let published: Vec<&str> = items
        .iter()
        .map(|c| c["published"].as_str().unwrap())
        .collect();
    assert!(published.windows(2).all(|w| w[0] >= w[1]));
    // each record is coherent: the kernel is built for its architecture
    for c in items {
        let (arch, kernel) = (c["arch"].as_str().unwrap(), c["kernel"].as_str().unwrap());
        let suffix = match arch {
            "x86_64" => ["x86_64", "amd64"],
            "aarch64" => ["aarch64", "arm64"],
            "loongarch64" => ["loongarch64", "loong64"],
            other => panic!("unexpected arch {other}"),
        };
        assert!(
            suffix.iter().any(|s| kernel.ends_with(s)),
            "{arch} with kernel {kernel}"
        );
    }
    // filters partition the list
    let mut by_arch = 0;
    for arch in ["x86_64", "aarch64", "loongarch64"] {
        by_arch += get(base, &format!("/api/v1/certifications?arch={arch}")).await["total"]
            .as_u64()
            .unwrap();
    }
    assert_eq!(by_arch, 320);
    // a vendor from a real dmidecode dump, and a component from a real PCI table
    let huawei = get(base, "/api/v1/certifications?q=huawei").await;
    assert!(huawei["total"].as_u64().unwrap() > 0, "{huawei}");
    let first = &items[0]["id"];
    let detail = get(
        base,
        &format!("/api/v1/certifications/{}", first.as_str().unwrap()),
    )
    .await;
    let comp = &detail["components"][0];
    let pci = comp["pci_id"].as_str().unwrap();
    assert!(pci.len() == 9 && pci.as_bytes()[4] == b':', "{comp}");
    assert!(!comp["driver"].as_str().unwrap().is_empty(), "{comp}");
    let uses = get(base, &format!("/api/v1/certifications?component={pci}")).await;
    assert!(uses["total"].as_u64().unwrap() >= 1, "{uses}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_fills_the_public_list_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    seeded_list(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_demo_fills_the_public_list_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::pg::TempDb::create().await;
    seeded_list(&db.url, dir.path()).await;
    db.drop_db().await;
}
