//! `certlab kabi check` of a module set whose provider the loader refuses
//! (issue 8): `act_meta_mark.ko` of Debian's 6.1.0-50 imports `ife_*` from
//! `act_ife.ko`, which the 6.1.0-54 loader refuses (CRCs of
//! `tcf_idr_release`, …): both are incompatible, in human, JSON and JUnit
//! output, whether `act_ife.ko` is an input or a `--with` dependency.
//! Data: `scripts/fetch-loader-data`.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::PathBuf;
use std::process::{Command, Output};

const EXIT_INCOMPATIBLE: i32 = 1;

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CERTLAB_TEST_LOADER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/certlab/loader")
        });
    assert!(
        dir.join("boot/Module.symvers").is_file() && dir.join("set/.complete").is_file(),
        "loader test data missing at {}: run scripts/fetch-loader-data (or set CERTLAB_TEST_LOADER_DIR)",
        dir.display()
    );
    dir
}

fn kabi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .arg("kabi")
        .args(args)
        .env_remove("CERTLAB_LOG")
        .output()
        .unwrap()
}

#[test]
fn a_dependant_of_a_refused_provider_is_refused() {
    let data = data_dir();
    let symvers = data.join("boot/Module.symvers");
    let sched = data.join("set/kernel/net/sched");
    let (ife, mark) = (sched.join("act_ife.ko"), sched.join("act_meta_mark.ko"));
    let dep = data.join("set/kernel/net/ife/ife.ko");
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let (symvers, ife, mark, dep) = (s(&symvers), s(&ife), s(&mark), s(&dep));

    // Human: the dependency problem, its columns aligned with the others.
    let o = kabi(&["check", "--kernel", &symvers, &dep, &ife, &mark]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(EXIT_INCOMPATIBLE), "{out}");
    assert!(out.contains("FAIL act_meta_mark on "), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("dependency ife_alloc_meta_u32: "))
        .unwrap_or_else(|| panic!("no dependency line:\n{out}"));
    assert!(line.starts_with("     dependency ife_alloc_meta_u32: unknown symbol ife_alloc_meta_u32: only act_ife of the checked set exports it, and the loader refuses act_ife ("), "{line}");
    let crc = out
        .lines()
        .find(|l| l.trim_start().starts_with("crc "))
        .unwrap();
    // The symbol column starts at the same offset for every kind.
    assert_eq!(
        crc.find("crc").unwrap() + 11,
        line.find("ife_alloc").unwrap()
    );
    assert!(
        out.contains("\n                fix: make act_ife loadable first: "),
        "{out}"
    );

    // JSON: kind, provider and the provider's first problem.
    let o = kabi(&[
        "check", "--kernel", &symvers, "--format", "json", &dep, &ife, &mark,
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mods = v["modules"].as_array().unwrap();
    let m = mods.iter().find(|m| m["name"] == "act_meta_mark").unwrap();
    assert_eq!(m["compatible"], false);
    let p = m["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "ife_alloc_meta_u32")
        .unwrap();
    assert_eq!(p["kind"], "dependency");
    assert_eq!(p["provider"], "act_ife");
    let provider = mods.iter().find(|m| m["name"] == "act_ife").unwrap();
    let first = &provider["problems"][0];
    assert_eq!(
        p["cause"].as_str().unwrap(),
        format!(
            "{}: {}: {}",
            first["kind"].as_str().unwrap(),
            first["symbol"].as_str().unwrap(),
            first["message"].as_str().unwrap()
        )
    );

    // JUnit, with act_ife and ife passed as --with dependencies: only
    // act_meta_mark is a testcase, refused all the same.
    let o = kabi(&[
        "check", "--kernel", &symvers, "--with", &dep, "--with", &ife, "--format", "junit", &mark,
    ]);
    let xml = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(EXIT_INCOMPATIBLE), "{xml}");
    assert!(xml.contains(r#"tests="1" failures="1""#), "{xml}");
    assert!(xml.contains("dependency: ife_alloc_meta_u32: unknown symbol ife_alloc_meta_u32: only act_ife of the checked set exports it"), "{xml}");

    // Alone, act_meta_mark resolves ife_* from the kernel's own act_ife.
    let o = kabi(&["check", "--kernel", &symvers, "--format", "json", &mark]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = v["modules"][0]["problems"].as_array().unwrap();
    assert!(
        problems.iter().all(|p| p["kind"] != "dependency"),
        "{problems:?}"
    );
}
