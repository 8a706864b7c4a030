//! End-to-end tests of `certlab certify --local`, `bundle verify` and `runs`
//! on the machine the tests run on, with the SQLite and PostgreSQL stores.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn certlab(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .env("CERTLAB_DATA_DIR", data_dir)
        .env_remove("CERTLAB_DB")
        .env_remove("CERTLAB_KEY")
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

/// One certification of this machine shared by the tests that only read it.
struct Certified {
    _dir: tempfile::TempDir,
    data: PathBuf,
    out: PathBuf,
    db: String,
    record: Value,
    status: i32,
}

fn certified() -> &'static Certified {
    static ONCE: OnceLock<Certified> = OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let out = dir.path().join("out");
        let db = format!("sqlite://{}", dir.path().join("lab.db").display());
        let o = certlab(
            &[
                "certify",
                "--local",
                "--out",
                out.to_str().unwrap(),
                "--db",
                &db,
                "--format",
                "json",
            ],
            &data,
        );
        let status = o.status.code().unwrap();
        assert!(
            status == 0 || status == 1,
            "certify must reach a verdict on the CI machine: {}",
            text(&o)
        );
        let record: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("--format json prints only JSON ({e}): {}", text(&o)));
        Certified {
            _dir: dir,
            data,
            out,
            db,
            record,
            status,
        }
    })
}

#[test]
fn certify_writes_every_output_and_the_record_validates() {
    let c = certified();
    for f in ["results.json", "junit.xml", "report.html", "bundle.tar"] {
        assert!(
            c.out.join(f).is_file(),
            "{f} missing in {}",
            c.out.display()
        );
    }
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(c.out.join("results.json")).unwrap()).unwrap();
    assert_eq!(on_disk, c.record, "stdout JSON and results.json agree");

    let schema: Value = serde_json::from_str(certlab_reports::RESULTS_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&on_disk)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema errors: {errors:#?}");

    let cases = on_disk["cases"].as_array().unwrap();
    assert!(cases.len() >= 12, "{} cases", cases.len());
    // Exit status follows the outcome: 1 exactly when a blocker failed or a
    // case crashed; a failed non-blocker is a warning.
    let failed = cases
        .iter()
        .any(|c| (c["verdict"] == "fail" && c["blocker"] == true) || c["verdict"] == "crash");
    assert_eq!(c.status == 1, failed);
    let warnings = cases
        .iter()
        .filter(|c| c["verdict"] == "fail" && c["blocker"] == false)
        .count() as u64;
    assert_eq!(on_disk["summary"]["warning"].as_u64(), Some(warnings));
    for case in cases {
        let verdict = case["verdict"].as_str().unwrap();
        assert!(!case["reason"].as_str().unwrap().is_empty(), "{case}");
        if verdict != "skip" {
            // A verdict without evidence is a bug.
            assert!(
                !case["evidence"].as_array().unwrap().is_empty(),
                "{} has no evidence",
                case["id"]
            );
        }
        for ev in case["evidence"].as_array().unwrap() {
            for key in ["stdout", "stderr", "content"] {
                if let Some(sha) = ev[key]["sha256"].as_str() {
                    let p = c.out.join("evidence").join(sha);
                    let bytes = std::fs::read(&p).unwrap();
                    assert_eq!(certlab_reports::sha256_hex(&bytes), sha);
                }
            }
        }
    }
    assert!(!c.record["inventory"].as_array().unwrap().is_empty());
    assert!(!c.record["host"]["kernel"].as_str().unwrap().is_empty());
    assert!(c.record["plan"]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
}

#[test]
fn junit_counts_match_the_record() {
    let c = certified();
    let xml = std::fs::read_to_string(c.out.join("junit.xml")).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut testcases, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    let mut suite_attrs = std::collections::HashMap::new();
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testcase" => testcases += 1,
                    b"failure" => failures += 1,
                    b"error" => errors += 1,
                    b"skipped" => skipped += 1,
                    b"testsuite" => {
                        for a in e.attributes() {
                            let a = a.unwrap();
                            suite_attrs.insert(
                                String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                                a.unescape_value().unwrap().to_string(),
                            );
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let s = &c.record["summary"];
    assert_eq!(testcases, s["total"].as_u64().unwrap());
    assert_eq!(failures, s["fail"].as_u64().unwrap());
    assert_eq!(
        errors,
        s["error"].as_u64().unwrap() + s["crash"].as_u64().unwrap()
    );
    assert_eq!(skipped, s["skip"].as_u64().unwrap());
    assert_eq!(suite_attrs["tests"], testcases.to_string());
    assert_eq!(suite_attrs["failures"], failures.to_string());
}

#[test]
fn report_html_shows_every_case() {
    let c = certified();
    let html = std::fs::read_to_string(c.out.join("report.html")).unwrap();
    for case in c.record["cases"].as_array().unwrap() {
        assert!(html.contains(case["id"].as_str().unwrap()));
    }
    assert!(html.contains("evidence/"));
}

#[test]
fn bundle_verifies_and_every_kind_of_member_is_tamper_evident() {
    let c = certified();
    let bundle = c.out.join("bundle.tar");
    // Trusted by default: the data directory's own key signed it.
    let o = certlab(&["bundle", "verify", bundle.to_str().unwrap()], &c.data);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.starts_with("OK "), "{stdout}");
    assert!(
        stdout.contains(", trusted ("),
        "says whom it trusts: {stdout}"
    );
    let key_id = stdout
        .split("signed by key ")
        .nth(1)
        .and_then(|r| r.split([',', ';', ' ']).next())
        .unwrap()
        .to_string();

    // Pinned to the key that signed it: the default key created on first use.
    let pubkey = c.data.join("keys").join("certlab-signing.pub");
    let o = certlab(
        &[
            "bundle",
            "verify",
            bundle.to_str().unwrap(),
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
        &c.data,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Pinned to another key: refused.
    let other = tempfile::tempdir().unwrap();
    let o = certlab(
        &["keygen", "--out", other.path().to_str().unwrap()],
        &c.data,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = certlab(
        &[
            "bundle",
            "verify",
            bundle.to_str().unwrap(),
            "--pubkey",
            other.path().join("certlab-signing.pub").to_str().unwrap(),
        ],
        &c.data,
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains(&format!("signed by key {key_id}, which is not trusted")),
        "names the signer: {}",
        text(&o)
    );

    // Another data directory (a portal that never saw this key): untrusted by
    // default, exit 3 naming the key; --any-key checks integrity only.
    let portal = tempfile::tempdir().unwrap();
    let o = certlab(
        &["bundle", "verify", bundle.to_str().unwrap()],
        portal.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&key_id), "names the key id: {err}");
    assert!(err.contains("trusted keys: none"), "{err}");
    assert!(o.stdout.is_empty(), "{}", text(&o));
    let o = certlab(
        &["bundle", "verify", bundle.to_str().unwrap(), "--any-key"],
        portal.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("integrity only, signer not checked"),
        "{}",
        text(&o)
    );
    // --trusted-keys DIR: trusted when the signer's key is in it.
    let keys = portal.path().join("vendor-keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::copy(
        other.path().join("certlab-signing.pub"),
        keys.join("other.pub"),
    )
    .unwrap();
    let trusted_keys = |dir: &Path| {
        certlab(
            &[
                "bundle",
                "verify",
                bundle.to_str().unwrap(),
                "--trusted-keys",
                dir.to_str().unwrap(),
            ],
            portal.path(),
        )
    };
    let o = trusted_keys(&keys);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&key_id),
        "{}",
        text(&o)
    );
    std::fs::copy(&pubkey, keys.join("lab.pub")).unwrap();
    let o = trusted_keys(&keys);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("lab.pub"),
        "says which key: {}",
        text(&o)
    );
    // <data dir>/trusted-keys/*.pub are trusted by default.
    let default_dir = portal.path().join("trusted-keys");
    std::fs::create_dir(&default_dir).unwrap();
    std::fs::copy(&pubkey, default_dir.join("lab.pub")).unwrap();
    let o = certlab(
        &["bundle", "verify", bundle.to_str().unwrap()],
        portal.path(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Two trust options at once are a usage error.
    let o = certlab(
        &[
            "bundle",
            "verify",
            bundle.to_str().unwrap(),
            "--any-key",
            "--pubkey",
            pubkey.to_str().unwrap(),
        ],
        portal.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // Flip one byte in the content of one member of each kind.
    let bytes = std::fs::read(&bundle).unwrap();
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut members = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        members.push((name, entry.raw_file_position(), entry.size()));
    }
    let kinds = [
        "results.json",
        "junit.xml",
        "report.html",
        "manifest.json",
        "signature.json",
        "evidence/",
    ];
    for kind in kinds {
        let (name, pos, size) = members
            .iter()
            .find(|(n, _, size)| n.starts_with(kind) && *size > 0)
            .unwrap_or_else(|| panic!("no member {kind}"));
        let mut tampered = bytes.clone();
        tampered[(*pos + size / 2) as usize] ^= 0x01;
        let path = other.path().join("tampered.tar");
        std::fs::write(&path, &tampered).unwrap();
        let o = certlab(&["bundle", "verify", path.to_str().unwrap()], &c.data);
        assert_eq!(o.status.code(), Some(3), "{kind}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        let names_it = err.contains(name.as_str())
            || (kind == "signature.json" || kind == "manifest.json") && err.contains("signature");
        assert!(names_it, "{kind}: the message names what is wrong: {err}");
    }

    // A header claiming a member larger than the limit (16 GiB) is refused
    // before anything is read of it.
    let (name, pos, _) = members
        .iter()
        .find(|(n, _, _)| n.starts_with("evidence/"))
        .unwrap();
    let header = (*pos - 512) as usize;
    let mut huge = bytes.clone();
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()
        .copy_from_slice(&huge[header..header + 512]);
    h.set_size(1 << 40);
    h.set_cksum();
    huge[header..header + 512].copy_from_slice(h.as_bytes());
    let path = other.path().join("huge.tar");
    std::fs::write(&path, &huge).unwrap();
    let o = certlab(&["bundle", "verify", path.to_str().unwrap()], &c.data);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!(
            "member {name} is 1099511627776 bytes, over the limit of 17179869184 bytes"
        )),
        "{}",
        text(&o)
    );

    // Not a bundle at all.
    let junk = other.path().join("junk.tar");
    std::fs::write(&junk, b"this is not a tar file").unwrap();
    let o = certlab(&["bundle", "verify", junk.to_str().unwrap()], &c.data);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    // A bundle that cannot be read is bad input, naming the file.
    for unreadable in ["/nonexistent/bundle.tar", other.path().to_str().unwrap()] {
        let o = certlab(&["bundle", "verify", unreadable], &c.data);
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(unreadable),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn runs_are_read_back_from_the_sqlite_store() {
    let c = certified();
    let id = c.record["run_id"].as_str().unwrap();
    let o = certlab(
        &["runs", "list", "--db", &c.db, "--format", "json"],
        &c.data,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id)
        .expect("the run is listed");
    assert_eq!(row["state"], "finished");
    assert_eq!(row["pass"], c.record["summary"]["pass"]);

    let o = certlab(
        &["runs", "show", &id[..13], "--db", &c.db, "--format", "json"],
        &c.data,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let detail: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(detail["cases"], c.record["cases"]);
    assert_eq!(detail["record"], c.record);

    let o = certlab(&["runs", "show", "no-such-run", "--db", &c.db], &c.data);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn human_format_prints_progress_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let db = dir.path().join("lab.db");
    let o = certlab(
        &[
            "certify",
            "--local",
            "--out",
            out.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
        ],
        dir.path(),
    );
    let code = o.status.code().unwrap();
    assert!(code == 0 || code == 1, "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stderr.contains("created signing key"),
        "first use announces the key: {stderr}"
    );
    assert!(stderr.contains("cpu.identity"), "{stderr}");
    assert!(stdout.contains("bundle"), "{stdout}");
    assert!(stdout.contains(" cases — "), "{stdout}");
}

#[test]
fn unknown_plan_and_bad_key_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let o = certlab(
        &["certify", "--local", "--plan", "no-such-plan"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-plan"));
    // A plan file over the 1 MiB limit is bad input, refused before anything runs.
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat(1 << 20) + "\n").unwrap();
    let o = certlab(
        &["certify", "--local", "--plan", big.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("big.toml: plan file is larger than 1048576 bytes"),
        "{}",
        text(&o)
    );
    let key = dir.path().join("bad.key");
    std::fs::write(&key, "not a key").unwrap();
    let o = certlab(
        &[
            "certify",
            "--local",
            "--key",
            key.to_str().unwrap(),
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.key"));
}
