//! schemathesis against `certlab serve`: a portal seeded with a real
//! submission of this machine (`certify --local`), reviewed and approved
//! into a certification, and a KABI release from real Debian data; then
//! `schemathesis run /openapi.json` with an admin's bearer token must find
//! no server error, no response outside the spec (schema, status code,
//! content type). The venv comes from scripts/schemathesis-venv.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

fn certlab(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .env("CERTLAB_DATA_DIR", data)
        .env_remove("CERTLAB_DB")
        .env_remove("CERTLAB_KEY")
        .env_remove("CERTLAB_PORTAL_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run certlab")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_ok(args: &[&str], data: &Path) -> Value {
    let o = certlab(args, data);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn schemathesis() -> PathBuf {
    let venv = std::env::var_os("CERTLAB_SCHEMATHESIS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/certlab/venv-schemathesis")
        });
    let bin = venv.join("bin/schemathesis");
    assert!(
        bin.is_file(),
        "schemathesis missing at {}: run scripts/schemathesis-venv (or set CERTLAB_SCHEMATHESIS_VENV)",
        bin.display()
    );
    bin
}

fn kabi_symvers() -> PathBuf {
    let dir = std::env::var_os("CERTLAB_TEST_KABI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/certlab/kabi")
        });
    let p = dir.join("6.1.0-56-amd64/Module.symvers");
    assert!(
        p.is_file(),
        "{} missing: run scripts/fetch-kabi-data",
        p.display()
    );
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_a_seeded_portal() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let data = dir.path().join("data");
    let keys = data.join("keys");
    let o = certlab(&["keygen", "--out", keys.to_str().unwrap()], &data);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = dir.path().join("out");
    let o = certlab(
        &[
            "certify",
            "--local",
            "--out",
            out.to_str().unwrap(),
            "--db",
            &db,
        ],
        &data,
    );
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(&o));

    for org in ["Acme Systems", "certlab lab"] {
        json_ok(
            &[
                "portal", "org", "create", org, "--db", &db, "--format", "json",
            ],
            &data,
        );
    }
    let token = |email: &str, org: &str, role: &str| {
        json_ok(
            &[
                "portal", "user", "create", email, "--org", org, "--role", role, "--db", &db,
                "--format", "json",
            ],
            &data,
        )["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let vendor = token("vendor@acme.example", "Acme Systems", "vendor");
    let admin = token("admin@lab.example", "certlab lab", "admin");
    let pubkey = keys.join("certlab-signing.pub");
    json_ok(
        &[
            "portal",
            "key",
            "add",
            "--org",
            "Acme Systems",
            pubkey.to_str().unwrap(),
            "--db",
            &db,
            "--format",
            "json",
        ],
        &data,
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(["serve", "--db", &db, "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("portal"))
        .env("CERTLAB_DATA_DIR", &data)
        .env_remove("CERTLAB_DB")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start certlab serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server(child);
    let base = line.trim().rsplit_once(' ').unwrap().1.to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");

    // seed: a certification, and a KABI release
    let bundle = out.join("bundle.tar");
    let s = json_ok(
        &[
            "bundle",
            "submit",
            bundle.to_str().unwrap(),
            "--portal",
            &base,
            "--token",
            &vendor,
            "--format",
            "json",
        ],
        &data,
    );
    let id = s["id"].as_str().unwrap();
    let client = reqwest::Client::new();
    for action in ["start", "approve"] {
        let r = client
            .post(format!("{base}/api/v1/submissions/{id}/review"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "action": action, "comment": "seed" }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{action}: {}", r.status());
    }
    let r = client
        .put(format!("{base}/api/v1/kabi/debian-12/amd64"))
        .bearer_auth(&admin)
        .body(std::fs::read(kabi_symvers()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);

    // run in the temporary folder: schemathesis keeps a .schemathesis/ there
    let o = Command::new(&st)
        .current_dir(dir.path())
        .args([
            "run",
            &format!("{base}/openapi.json"),
            "--header",
            &format!("Authorization: Bearer {admin}"),
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "25",
            "--seed",
            "20261206",
            "--workers",
            "1",
            "--no-color",
            // the lab-wide stream never ends by itself (a dashboard's
            // live feed): a request would wait for it forever.
            // tests/portal_lab.rs reads it with an HTTP client instead
            "--exclude-path",
            "/api/v1/lab/stream",
        ])
        .output()
        .expect("run schemathesis");
    drop(server);
    let report = String::from_utf8_lossy(&o.stdout);
    // the token is filtered from schemathesis' output; make sure of it
    assert!(!report.contains(&admin), "the token leaked into the report");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{report}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // every operation of the spec but the lab stream was selected and tested
    let selected = report
        .split("Selected: ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.split_once('/'))
        .unwrap_or_else(|| panic!("no operation count in {report}"));
    let total: u32 = selected.1.parse().unwrap();
    assert_eq!(
        selected.0.parse::<u32>().unwrap() + 1,
        total,
        "all but the lab stream: {report}"
    );
    assert!(selected.0.parse::<u32>().unwrap() >= 20, "{report}");
}
