//! The `kabi.out-of-tree` case judges the loaded out-of-tree modules as one
//! set, as `certlab kabi check` does (issue 8): on a scripted SUT running
//! Debian's 6.1.0-54 kernel, `ife`, `act_ife` and `act_meta_mark` of
//! 6.1.0-50 (same `module_layout`) are loaded out-of-tree; the real loader
//! refuses `act_ife` (CRCs) and therefore `act_meta_mark`, which on its own
//! has nothing wrong. Data: scripts/fetch-loader-data (panics naming it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::Scripted;
use certlab_reports::Verdict;
use certlab_suites::{checks, CaseCtx, MemorySink};
use sha2::Digest;

const ABI: &str = "6.1.0-54-amd64";

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CERTLAB_TEST_LOADER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/certlab/loader")
        });
    assert!(
        dir.join("boot/Module.symvers").is_file() && dir.join("set/.complete").is_file(),
        "loader test data missing at {}: run scripts/fetch-loader-data (or set CERTLAB_TEST_LOADER_DIR)",
        dir.display()
    );
    dir
}

#[test]
fn a_loaded_module_whose_provider_is_refused_fails_with_a_dependency() {
    let data = data_dir();
    let modules = [
        ("ife", "net/ife/ife.ko"),
        ("act_ife", "net/sched/act_ife.ko"),
        ("act_meta_mark", "net/sched/act_meta_mark.ko"),
    ];
    let headers = format!("/usr/src/linux-headers-{ABI}");
    let mut proc_modules = String::new();
    let mut sut = Scripted::new("sut")
        .file("/proc/sys/kernel/osrelease", format!("{ABI}\n"))
        .link(&format!("/lib/modules/{ABI}/build"), &headers)
        .file(
            &format!("{headers}/Module.symvers"),
            std::fs::read(data.join("boot/Module.symvers")).unwrap(),
        );
    for (name, rel) in modules {
        let bytes = std::fs::read(data.join("set/kernel").join(rel)).unwrap();
        let path = format!("/lib/modules/{ABI}/updates/{name}.ko");
        proc_modules.push_str(&format!("{name} 16384 0 - Live 0xffffffffc0a21000 (O)\n"));
        sut = sut
            .command(&format!("modinfo -n {name}"), 0, &format!("{path}\n"), "")
            .command(
                &format!("sha256sum {path}"),
                0,
                &format!("{}  {path}\n", hex::encode(sha2::Sha256::digest(&bytes))),
                "",
            )
            .file(&path, bytes);
    }
    let sut = sut.file("/proc/modules", proc_modules);

    let check = checks::lookup("kabi-out-of-tree").expect("registered");
    let sink = MemorySink::default();
    let params = toml::Table::new();
    let (inv, profile) = (Inventory::default(), HardwareProfile::default());
    let ctx = CaseCtx::new(
        &sut,
        &profile,
        &inv,
        &params,
        &sink,
        Duration::from_secs(120),
    );
    let o = check.run(&ctx).unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.starts_with(&format!(
            "3 of 3 out-of-tree modules would be refused by {ABI}"
        )),
        "{}",
        o.reason
    );
    let line = o
        .reason
        .lines()
        .find(|l| l.starts_with("act_meta_mark "))
        .unwrap_or_else(|| panic!("no act_meta_mark line:\n{}", o.reason));
    assert!(
        line.contains("dependency ife_alloc_meta_u32: unknown symbol ife_alloc_meta_u32: only act_ife of the checked set exports it, and the loader refuses act_ife (crc: "),
        "{line}"
    );
}
