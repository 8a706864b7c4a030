//! Where the real Debian kernels are cached (see scripts/fetch-kabi-data).
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

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

/// `<cache>/<abi>/Module.symvers`.
pub fn symvers(abi: &str) -> PathBuf {
    data_dir().join(abi).join("Module.symvers")
}

/// `<cache>/<abi>/modules` (the image's /lib/modules/<abi>).
pub fn modules(abi: &str) -> PathBuf {
    data_dir().join(abi).join("modules")
}

/// The cached `.deb` of `package`.
pub fn deb(package: &str) -> PathBuf {
    let debs = data_dir().join("debs");
    std::fs::read_dir(&debs)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
        })
        .unwrap_or_else(|| {
            panic!(
                "{package}.deb missing in {}: run scripts/fetch-kabi-data",
                debs.display()
            )
        })
}

pub mod elf;
