//! Rebuilding vmlinux's Module.symvers rows from the real Debian bookworm
//! `vmlinuz` (bzImage, xz payload). Needs scripts/fetch-kabi-data.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::path::PathBuf;

use certlab_kabi::vmlinuz::{self, ImageKind};
use certlab_kabi::{Kernel, Symvers};

fn vmlinuz_of(abi: &str) -> PathBuf {
    let p = common::data_dir().join(abi).join("vmlinuz");
    assert!(
        p.is_file(),
        "{} missing: run scripts/fetch-kabi-data",
        p.display()
    );
    p
}

#[test]
fn bookworm_vmlinuz_reproduces_every_vmlinux_row_of_module_symvers() {
    for abi in ["6.1.0-56-amd64", "6.1.0-50-amd64"] {
        let bytes = std::fs::read(vmlinuz_of(abi)).unwrap();
        let v = vmlinuz::unpack(&bytes, abi).unwrap();
        assert_eq!(v.kind, ImageKind::BzImage);
        assert_eq!(v.compression, Some("xz"));
        let rebuilt = vmlinuz::exports(&v.data, abi).unwrap();
        let symvers = Symvers::read(&common::symvers(abi)).unwrap();
        let want: Vec<_> = symvers
            .exports()
            .iter()
            .filter(|e| e.is_vmlinux())
            .collect();
        assert_eq!(
            want.len(),
            if abi == "6.1.0-56-amd64" {
                10_503
            } else {
                10_487
            }
        );
        assert_eq!(rebuilt.len(), want.len(), "{abi}");
        for e in &rebuilt {
            let s = symvers
                .get(&e.name)
                .unwrap_or_else(|| panic!("{abi}: {}", e.name));
            assert_eq!(s, e.borrowed(), "{abi}");
        }
        let ns = rebuilt.iter().filter(|e| e.namespace.is_some()).count();
        let gpl = rebuilt.iter().filter(|e| e.export_type.gpl_only()).count();
        println!(
            "{abi}: {} vmlinux exports, {gpl} GPL, {ns} namespaced",
            rebuilt.len()
        );
        assert!(ns > 0);
        assert!(vmlinuz::btf_section(&v.data, abi).unwrap().is_some());
    }
}

#[test]
fn kernel_without_module_symvers_is_rebuilt_from_vmlinuz() {
    let abi = "6.1.0-56-amd64";
    let k = Kernel::load(&[vmlinuz_of(abi)]).unwrap();
    assert_eq!(k.symvers.len(), 10_503);
    assert_eq!(k.export("module_layout").unwrap().crc, Some(0x9060_323f));
    // With the modules, their own exports complete the table.
    let k = Kernel::load(&[vmlinuz_of(abi), common::modules(abi)]).unwrap();
    let full = Symvers::read(&common::symvers(abi)).unwrap();
    assert_eq!(k.symvers.len(), full.len());
    for e in full.exports() {
        assert_eq!(k.export(e.name), Some(e), "{}", e.name);
    }
}
