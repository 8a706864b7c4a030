//! The other real Debian kernels of issue 5, beyond bookworm amd64
//! (kabi/tests/debian.rs): bookworm arm64, trixie (`.ko.xz`) and sid
//! (modversions off, `module:` namespaces, names over 55 bytes). Every
//! in-tree module must check clean against its own kernel. Needs
//! scripts/fetch-kabi-data (it fetches these through a private APT
//! configuration; panics naming it when the data is missing).
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use certlab_kabi::{Checker, Kernel, ProblemKind};

const ARM64: &str = "6.1.0-56-arm64";
const AMD64: &str = "6.1.0-56-amd64";
const TRIXIE: &str = "6.12.117+deb13-amd64";
const SID: &str = "7.2.13+deb14-amd64";

fn dir(abi: &str) -> PathBuf {
    let d = common::data_dir().join(abi);
    assert!(
        d.join("Module.symvers").is_file() && d.join("modules").is_dir(),
        "{abi} missing in {}: run scripts/fetch-kabi-data",
        d.display()
    );
    d
}

fn kernel(abi: &'static str) -> &'static Kernel {
    static CELLS: OnceLock<std::sync::Mutex<Vec<(&'static str, &'static Kernel)>>> =
        OnceLock::new();
    let cells = CELLS.get_or_init(Default::default);
    let mut v = cells.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, k)) = v.iter().find(|(a, _)| *a == abi) {
        return k;
    }
    let d = dir(abi);
    let k: &'static Kernel = Box::leak(Box::new(
        Kernel::load(&[d.join("modules"), d.join("Module.symvers")]).unwrap(),
    ));
    v.push((abi, k));
    k
}

/// Every in-tree module checks clean against its own kernel; returns the
/// number of warnings (the loader's "no symbol version" and the like).
fn all_clean(k: &Kernel) -> usize {
    let reports = Checker::new(k).check_all(&k.modules);
    let bad: Vec<_> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
    assert!(
        bad.is_empty(),
        "{}: {} of {} modules with problems: {:#?}",
        k.name,
        bad.len(),
        reports.len(),
        &bad[..bad.len().min(3)]
    );
    reports.iter().map(|r| r.warnings.len()).sum()
}

#[test]
fn bookworm_arm64() {
    let k = kernel(ARM64);
    let s = k.stats();
    println!("{ARM64}: {s:?}");
    assert_eq!(k.release.as_deref(), Some(ARM64));
    assert_eq!(k.arch.as_deref(), Some("arm64"));
    assert!(k.modversions());
    assert_eq!(s.modules, 3685);
    assert_eq!(s.signed_modules, 3685);
    assert_eq!(s.exports, 24_033);
    assert!(k.modules.iter().all(|m| m.elf.arch() == Some("arm64")));
    assert_eq!(
        k.vermagic.as_deref(),
        Some("6.1.0-56-arm64 SMP mod_unload modversions aarch64")
    );
    let warnings = all_clean(k);
    println!("{ARM64}: {} modules clean, {warnings} warnings", s.modules);

    // CRCs differ per arch: the amd64 build of the same source is refused.
    let amd = kernel(AMD64);
    let (mut same, mut differ) = (0, 0);
    for e in k.symvers.exports() {
        if let Some(a) = amd.export(e.name) {
            if a.crc == e.crc {
                same += 1;
            } else {
                differ += 1;
            }
        }
    }
    println!("{ARM64} vs {AMD64}: {differ} common symbols differ in CRC, {same} agree");
    assert!(differ > same, "{differ} differ, {same} agree");
    assert_ne!(
        k.export("module_layout").unwrap().crc,
        amd.export("module_layout").unwrap().crc
    );
    let e1000e = amd.modules.iter().find(|m| m.name == "e1000e").unwrap();
    let r = Checker::new(k).check(e1000e);
    assert!(!r.compatible);
    assert_eq!(r.problems[0].symbol, "module_layout");
    assert!(r.problems.iter().any(|p| p.kind == ProblemKind::Vermagic));
}

#[test]
fn trixie_ko_xz() {
    let k = kernel(TRIXIE);
    let s = k.stats();
    println!("{TRIXIE}: {s:?}");
    assert_eq!(k.release.as_deref(), Some("6.12.117+deb13-amd64"));
    assert_eq!(k.arch.as_deref(), Some("amd64"));
    assert!(k.modversions());
    assert_eq!(s.modules, 4230);
    assert!(k.modules.iter().all(|m| m.path.ends_with(".ko.xz")));
    assert_eq!(s.namespaced_exports, 1384);
    assert_eq!(s.exports, 26_765);
    let warnings = all_clean(k);
    println!("{TRIXIE}: {} modules clean, {warnings} warnings", s.modules);
}

#[test]
fn sid_without_modversions() {
    let k = kernel(SID);
    let s = k.stats();
    println!("{SID}: {s:?}");
    assert_eq!(k.release.as_deref(), Some(SID));
    assert!(
        !k.modversions(),
        "sid is built without modversions: all CRCs 0"
    );
    assert_eq!(s.modules, 4216);
    assert_eq!(s.exports, 29_242);
    assert_eq!(s.namespaced_exports, 2308);
    let restricted = k
        .symvers
        .exports()
        .iter()
        .filter(|e| e.namespace.is_some_and(|n| n.starts_with("module:")))
        .count();
    assert_eq!(restricted, 332);
    let long = k
        .symvers
        .exports()
        .iter()
        .filter(|e| e.name.len() > 55)
        .count();
    assert_eq!(long, 650);
    let warnings = all_clean(k);
    println!("{SID}: {} modules clean, {warnings} warnings", s.modules);

    // A `module:` namespace admits only the modules it names.
    let (e, owner) = k
        .symvers
        .exports()
        .iter()
        .find_map(|e| {
            let list = e.namespace?.strip_prefix("module:")?;
            let first = list.split(',').next()?.replace('-', "_");
            let importer = k
                .modules
                .iter()
                .find(|m| m.name == first && m.imports().any(|i| i.name == e.name))?;
            Some((e, importer))
        })
        .expect("a module: export and one of its importers");
    let mut stranger = owner.clone();
    stranger.name = "certlab_stranger".to_string();
    let r = Checker::new(k).check(&stranger);
    assert!(r
        .problems
        .iter()
        .any(|p| p.symbol == e.name && p.kind == ProblemKind::Namespace));
}
