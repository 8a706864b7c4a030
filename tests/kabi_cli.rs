//! `certlab kabi …` end to end: the binary's exit codes and outputs over
//! real Debian kernels (`scripts/fetch-kabi-data`).
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

/// Where the real Debian kernels are cached (as in `kabi/tests/common`,
/// whose ELF builders this test does not need).
mod common {
    use std::path::PathBuf;

    /// The cache directory; panics naming the fetch script when it is missing.
    pub fn data_dir() -> PathBuf {
        let dir = std::env::var_os("CERTLAB_TEST_KABI_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_default();
                PathBuf::from(home).join(".cache/certlab/kabi")
            });
        for abi in ["6.1.0-56-amd64", "6.1.0-50-amd64"] {
            let p = dir.join(abi).join("Module.symvers");
            assert!(
                p.is_file() && dir.join(abi).join("modules").is_dir(),
                "kabi test data missing at {}: run scripts/fetch-kabi-data (or set CERTLAB_TEST_KABI_DIR)",
                dir.display()
            );
        }
        dir
    }

    pub fn symvers(abi: &str) -> PathBuf {
        data_dir().join(abi).join("Module.symvers")
    }

    pub fn modules(abi: &str) -> PathBuf {
        data_dir().join(abi).join("modules")
    }
}

use std::process::{Command, Output};

const EXIT_OK: i32 = 0;
const EXIT_INCOMPATIBLE: i32 = 1;
const EXIT_INFRA: i32 = 2;
const EXIT_BAD_INPUT: i32 = 3;

fn certlab(args: &[&str]) -> Output {
    let mut argv = vec!["kabi"];
    argv.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(&argv)
        .env_remove("CERTLAB_LOG")
        .output()
        .unwrap()
}

fn run(args: &[&str]) -> i32 {
    let o = certlab(args);
    o.status
        .code()
        .unwrap_or_else(|| panic!("{args:?} was killed"))
}

/// Parses: a usage error is exit 2 with clap's message, anything else got past clap.
fn parses(args: &[&str]) -> bool {
    let o = certlab(args);
    let err = String::from_utf8_lossy(&o.stderr);
    !(o.status.code() == Some(2) && (err.contains("Usage:") || err.contains("usage:")))
}

#[test]
fn usage_parses() {
    assert!(parses(&[
        "check",
        "--kernel",
        "a,b",
        "--kernel",
        "c",
        "--allowlist",
        "l",
        "--with",
        "d.ko",
        "--format",
        "json",
        "m.ko",
        "dir",
    ]));
    assert!(parses(&["diff", "old", "new", "--allowlist", "x"]));
    assert!(parses(&[
        "allowlist",
        "import",
        "f",
        "--from-format",
        "rhel",
        "--to",
        "json",
    ]));
    assert!(!parses(&["check", "m.ko"]), "--kernel is required");
}

#[test]
fn exit_codes_for_bad_and_missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Module.symvers");
    std::fs::write(&bad, "not a symvers line\n").unwrap();
    let ko = dir.path().join("x.ko");
    std::fs::write(&ko, b"\x7fELF garbage").unwrap();
    let good = dir.path().join("good.symvers");
    std::fs::write(&good, "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let bad_s = bad.to_str().unwrap();
    let good_s = good.to_str().unwrap();
    assert_eq!(
        run(&["check", "--kernel", bad_s, ko.to_str().unwrap()]),
        EXIT_BAD_INPUT
    );
    assert_eq!(
        run(&["check", "--kernel", good_s, ko.to_str().unwrap()]),
        EXIT_BAD_INPUT
    );
    assert_eq!(
        run(&["check", "--kernel", "/nonexistent/k", ko.to_str().unwrap()]),
        EXIT_INFRA
    );
    assert_eq!(run(&["diff", good_s, good_s]), EXIT_OK);
    let list = dir.path().join("list.json");
    std::fs::write(&list, "{ nope").unwrap();
    assert_eq!(
        run(&["allowlist", "show", list.to_str().unwrap()]),
        EXIT_BAD_INPUT
    );
}

#[test]
fn real_kernels_through_the_cli() {
    let (s50, s56) = (
        common::symvers("6.1.0-50-amd64"),
        common::symvers("6.1.0-56-amd64"),
    );
    let m56 = common::modules("6.1.0-56-amd64");
    let e1000 = m56.join("kernel/drivers/net/ethernet/intel/e1000e");
    let dir56 = format!("{},{}", m56.display(), s56.display());
    assert_eq!(
        run(&["check", "--kernel", &dir56, e1000.to_str().unwrap()]),
        EXIT_OK
    );
    assert_eq!(
        run(&[
            "check",
            "--kernel",
            s50.to_str().unwrap(),
            "--kernel",
            &dir56,
            "--format",
            "json",
            e1000.to_str().unwrap()
        ]),
        EXIT_INCOMPATIBLE
    );
    assert_eq!(
        run(&[
            "diff",
            s50.to_str().unwrap(),
            s56.to_str().unwrap(),
            "--format",
            "json"
        ]),
        EXIT_INCOMPATIBLE
    );

    // An allowlist generated from a driver: the driver checks clean against it,
    // and diff 50 → 56 is release-blocking because those symbols changed CRC.
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allowlist.toml");
    assert_eq!(
        run(&[
            "allowlist",
            "generate",
            "--kernel",
            &dir56,
            "--from",
            e1000.to_str().unwrap(),
            "--out",
            list.to_str().unwrap()
        ]),
        EXIT_OK
    );
    let l = list.to_str().unwrap();
    assert_eq!(
        run(&[
            "check",
            "--kernel",
            &dir56,
            "--allowlist",
            l,
            e1000.to_str().unwrap()
        ]),
        EXIT_OK
    );
    assert_eq!(
        run(&[
            "diff",
            s50.to_str().unwrap(),
            s56.to_str().unwrap(),
            "--allowlist",
            l
        ]),
        EXIT_INCOMPATIBLE
    );
    let rhel = dir.path().join("kabi_stablelist_x86_64");
    assert_eq!(
        run(&[
            "allowlist",
            "export",
            l,
            "--to",
            "rhel",
            "--out",
            rhel.to_str().unwrap()
        ]),
        EXIT_OK
    );
    assert_eq!(
        run(&["allowlist", "diff", l, rhel.to_str().unwrap()]),
        EXIT_OK
    );
    // 56 against 56: only additions and no break.
    assert_eq!(
        run(&[
            "diff",
            s56.to_str().unwrap(),
            s56.to_str().unwrap(),
            "--allowlist",
            l
        ]),
        EXIT_OK
    );
}

#[test]
fn a_cached_check_gives_identical_json() {
    let data = common::data_dir().join("6.12.117+deb13-amd64");
    let symvers = data.join("Module.symvers");
    let intel = data.join("modules/kernel/drivers/net/ethernet/intel");
    assert!(
        symvers.is_file() && intel.is_dir(),
        "trixie .ko.xz data missing at {}: run scripts/fetch-kabi-data",
        data.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--kernel",
            symvers.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        args.push(intel.to_str().unwrap());
        let o = certlab(&args);
        (o.status.code(), String::from_utf8(o.stdout).unwrap())
    };
    let plain = check(&["--no-cache"]);
    let cold = check(&["--cache", cache]);
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(entries > 0, "the cold run filled the cache");
    let warm = check(&["--cache", cache]);
    assert_eq!(plain.0, Some(EXIT_OK));
    assert!(plain.1.contains("e1000e"), "{}", &plain.1[..500]);
    assert_eq!(cold, plain);
    assert_eq!(warm, plain);
    // --no-cache and --cache together are a usage error.
    assert!(!parses(&[
        "check",
        "--kernel",
        "k",
        "--cache",
        "d",
        "--no-cache",
        "m.ko"
    ]));
}
