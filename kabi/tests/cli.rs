//! The `certlab kabi` command module (src/cmd/kabi.rs), compiled here so
//! that it is tested with the engine it wires.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

#[path = "../../src/cmd/kabi.rs"]
#[allow(dead_code)]
mod cmd_kabi;

mod common;

use clap::Parser;
use cmd_kabi::{KabiCmd, EXIT_BAD_INPUT, EXIT_INCOMPATIBLE, EXIT_INFRA, EXIT_OK};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: KabiCmd,
}

fn run(args: &[&str]) -> i32 {
    let mut argv = vec!["kabi"];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(argv).unwrap();
    cmd_kabi::run(cli.cmd).unwrap()
}

#[test]
fn usage_parses() {
    Cli::try_parse_from([
        "kabi",
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
    ])
    .unwrap();
    Cli::try_parse_from(["kabi", "diff", "old", "new", "--allowlist", "x"]).unwrap();
    Cli::try_parse_from([
        "kabi",
        "allowlist",
        "import",
        "f",
        "--from-format",
        "rhel",
        "--to",
        "json",
    ])
    .unwrap();
    assert!(
        Cli::try_parse_from(["kabi", "check", "m.ko"]).is_err(),
        "--kernel is required"
    );
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
    use std::path::PathBuf;
    let data = common::data_dir().join("6.12.117+deb13-amd64");
    let symvers = data.join("Module.symvers");
    let intel = data.join("modules/kernel/drivers/net/ethernet/intel");
    if !symvers.is_file() || !intel.is_dir() {
        eprintln!("skipped: trixie .ko.xz data missing (scripts/fetch-kabi-data)");
        return;
    }
    let kernels = [symvers.display().to_string()];
    let inputs = [intel];
    let check = |cache: Option<&certlab_kabi::ModuleCache>| {
        let (code, text) = cmd_kabi::check(
            &kernels,
            None,
            &[] as &[PathBuf],
            cmd_kabi::OutputFormat::Json,
            &inputs,
            cache,
        )
        .unwrap_or_else(|_| panic!("kabi check failed"));
        (code, text)
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = cmd_kabi::module_cache(Some(dir.path().to_path_buf()), false).unwrap();
    let plain = check(None);
    let cold = check(Some(&cache));
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(entries > 0, "the cold run filled the cache");
    let warm = check(Some(&cache));
    assert_eq!(plain.0, EXIT_OK);
    assert!(plain.1.contains("e1000e"), "{}", &plain.1[..500]);
    assert_eq!(cold, plain);
    assert_eq!(warm, plain);
    // --no-cache wins over a directory; the default lives under the cache home.
    assert!(cmd_kabi::module_cache(Some(dir.path().to_path_buf()), true).is_none());
    // And the flags parse.
    Cli::try_parse_from(["kabi", "check", "--kernel", "k", "--cache", "d", "m.ko"]).unwrap();
    Cli::try_parse_from(["kabi", "check", "--kernel", "k", "--no-cache", "m.ko"]).unwrap();
    assert!(Cli::try_parse_from([
        "kabi",
        "check",
        "--kernel",
        "k",
        "--cache",
        "d",
        "--no-cache",
        "m.ko"
    ])
    .is_err());
}
