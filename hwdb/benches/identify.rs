//! Identification benchmarks (issue 3: a full identification including
//! the pci.ids load in under 20 ms on one core).
//!
//! The "full machine" is real evidence of a large server: the 128-CPU
//! Kunpeng 920 /proc/cpuinfo, the TaiShan 200 (2280) dmidecode and the
//! 8×H100 node's `lspci -vvv` (517 functions), all from
//! `tests/fixtures` (provenance there). Alias matching uses a real
//! Debian kernel's modules.alias (`scripts/fetch-kernel`).
//!
//!     cargo bench -p certlab-hwdb --bench identify -- --quick

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::hint::black_box;
use std::path::{Path, PathBuf};

use certlab_hwdb::{identify, Fact, Inventory, ModulesAlias, PciIds};
use criterion::{criterion_group, criterion_main, Criterion};

static PCI_IDS: &str = include_str!("../data/pci.ids");

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .into_owned()
}

/// `CERTLAB_TEST_KERNEL_DIR`, else the newest ~/.cache/certlab/debian/linux-image-*/.
fn modules_alias() -> String {
    let dir = std::env::var_os("CERTLAB_TEST_KERNEL_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let cache =
                std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/certlab/debian"))?;
            let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.join("modules.alias").is_file())
                .collect();
            v.sort();
            v.pop()
        })
        .unwrap_or_else(|| {
            panic!("no real kernel: set CERTLAB_TEST_KERNEL_DIR or run scripts/fetch-kernel")
        });
    std::fs::read_to_string(dir.join("modules.alias"))
        .unwrap_or_else(|e| panic!("{}/modules.alias: {e}", dir.display()))
}

fn server() -> Inventory {
    Inventory {
        cpuinfo: Some(Fact::new(
            "/proc/cpuinfo",
            fixture("machines/kunpeng--hwloc-128arm-2pa2n8cluster4co/cpuinfo"),
        )),
        dmidecode: Some(Fact::new(
            "dmidecode",
            fixture("machines/kunpeng--linuxhw-TaiShan-200-Model-2280-50ED10C1AEE2/dmidecode.txt"),
        )),
        lspci: Some(Fact::new("lspci -vvv", fixture("lspci/lspci-vvv.txt"))),
        ..Inventory::default()
    }
}

fn benches(c: &mut Criterion) {
    c.bench_function("pci_ids_load", |b| {
        b.iter(|| PciIds::parse(black_box(PCI_IDS)))
    });

    let inv = server();
    let ids = PciIds::parse(PCI_IDS).unwrap_or_default();
    let n = identify(&inv, &ids).pci_devices.len();
    assert!(n >= 100, "the server dump has {n} PCI functions");
    c.bench_function("identify_server_preloaded_ids", |b| {
        b.iter(|| identify(black_box(&inv), &ids))
    });
    c.bench_function("identify_server_incl_pci_ids_load", |b| {
        b.iter(|| {
            let ids = PciIds::parse(black_box(PCI_IDS)).unwrap_or_default();
            identify(black_box(&inv), &ids)
        })
    });

    let alias_text = modules_alias();
    c.bench_function("modules_alias_parse", |b| {
        b.iter(|| ModulesAlias::parse(black_box(&alias_text)))
    });
    let alias = ModulesAlias::parse(&alias_text);
    let devices: Vec<_> = identify(&inv, &ids)
        .pci_devices
        .into_iter()
        .take(100)
        .collect();
    c.bench_function("modules_alias_match_100_devices", |b| {
        b.iter(|| {
            devices
                .iter()
                .map(|d| alias.modules_for_device(black_box(d)).len())
                .sum::<usize>()
        })
    });
    let with_alias = Inventory {
        modules_alias: Some(Fact::new("modules.alias", alias_text.clone())),
        ..inv.clone()
    };
    c.bench_function("identify_server_incl_pci_ids_and_modules_alias", |b| {
        b.iter(|| {
            let ids = PciIds::parse(black_box(PCI_IDS)).unwrap_or_default();
            identify(black_box(&with_alias), &ids)
        })
    });
}

criterion_group!(identify_benches, benches);
criterion_main!(identify_benches);
