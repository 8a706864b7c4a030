//! Facts measured on real Debian bookworm kernels (issue 5), checked with
//! the engine. Needs scripts/fetch-kabi-data.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::sync::OnceLock;

use certlab_kabi::{diff, Checker, Kernel, ProblemKind};

const NEW: &str = "6.1.0-56-amd64";
const OLD: &str = "6.1.0-50-amd64";

fn kernel(abi: &'static str) -> &'static Kernel {
    static K56: OnceLock<Kernel> = OnceLock::new();
    static K50: OnceLock<Kernel> = OnceLock::new();
    let cell = if abi == NEW { &K56 } else { &K50 };
    cell.get_or_init(|| Kernel::load(&[common::modules(abi), common::symvers(abi)]).unwrap())
}

#[test]
fn stats_of_6_1_0_56_from_directory() {
    let k = kernel(NEW);
    let s = k.stats();
    println!("{s:?}");
    assert_eq!(k.release.as_deref(), Some(NEW));
    assert_eq!(k.arch.as_deref(), Some("amd64"));
    assert!(k.modversions());
    assert_eq!(
        k.vermagic.as_deref(),
        Some("6.1.0-56-amd64 SMP preempt mod_unload modversions ")
    );
    assert_eq!(s.modules, 4023);
    assert_eq!(s.signed_modules, 4023);
    assert_eq!(s.imports, 184_890);
    assert_eq!(s.exports, 24_683);
    assert_eq!(s.vmlinux_exports, 10_503);
    assert_eq!(s.gpl_exports, 13_559);
    assert_eq!(s.namespaced_exports, 554);
    // Every module's own exports agree with Module.symvers.
    for m in &k.modules {
        for e in &m.exports {
            let s = k.export(&e.name).unwrap();
            assert_eq!(s.crc, e.crc, "{}: {}", m.path, e.name);
            assert_eq!(s.export_type, e.export_type, "{}: {}", m.path, e.name);
            assert_eq!(
                s.namespace,
                e.namespace.as_deref(),
                "{}: {}",
                m.path,
                e.name
            );
            assert_eq!(s.module_name(), m.name, "{}", e.name);
        }
    }
}

/// `Kernel::from_file_bytes` (the fuzz targets' entry) reads a package's
/// bytes as `Kernel::load` reads its path.
#[test]
fn a_package_in_memory_reads_as_the_package_file() {
    let path = common::deb("linux-headers-6.1.0-56-amd64");
    let bytes = std::fs::read(&path).unwrap();
    let shown = path.display().to_string();
    let from_bytes = Kernel::from_file_bytes(&bytes, &shown).unwrap();
    let from_path = Kernel::load(&[&path]).unwrap();
    assert_eq!(from_bytes.stats(), from_path.stats());
    assert_eq!(from_bytes.release, from_path.release);
    assert_eq!(from_bytes.sources, vec![shown]);
    assert!(
        from_bytes.symvers.len() > 10_000,
        "{}",
        from_bytes.symvers.len()
    );
    // Bytes that are no kernel file at all: an error naming them.
    let e = Kernel::from_file_bytes(b"!<arch>\nnot a deb", "in-memory.deb").unwrap_err();
    assert!(e.to_string().contains("in-memory.deb"), "{e}");
}

#[test]
fn packages_read_directly_give_the_same_kernel() {
    let k = Kernel::load(&[
        common::deb("linux-image-6.1.0-56-amd64"),
        common::deb("linux-headers-6.1.0-56-amd64"),
    ])
    .unwrap();
    assert_eq!(k.release.as_deref(), Some(NEW));
    assert_eq!(k.stats(), kernel(NEW).stats());
    assert_eq!(k.vermagic, kernel(NEW).vermagic);
}

#[test]
fn every_in_tree_module_is_clean_against_its_own_kernel() {
    for abi in [NEW, OLD] {
        let k = kernel(abi);
        let reports = Checker::new(k).check_all(&k.modules);
        let bad: Vec<_> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
        assert!(bad.is_empty(), "{abi}: {:#?}", &bad[..bad.len().min(3)]);
        let warnings: usize = reports.iter().map(|r| r.warnings.len()).sum();
        println!(
            "{abi}: {} modules clean, {warnings} warnings",
            reports.len()
        );
    }
}

#[test]
fn abi_50_modules_are_refused_by_56_for_module_layout() {
    let (old, new) = (kernel(OLD), kernel(NEW));
    assert_eq!(old.modules.len(), 4022);
    let want = new.export("module_layout").unwrap().crc;
    assert_eq!(want, Some(0x9060_323f));
    assert_eq!(old.export("module_layout").unwrap().crc, Some(0xbce1_a965));
    let reports = Checker::new(new).check_all(&old.modules);
    assert!(reports.iter().all(|r| !r.compatible));
    assert!(reports.iter().all(|r| r
        .problems
        .first()
        .is_some_and(|p| p.symbol == "module_layout" && p.kind == ProblemKind::Crc)));
    // What a checker that ignores module_layout would wrongly call loadable.
    let only_layout = reports.iter().filter(|r| r.problems.len() == 1).count();
    assert_eq!(only_layout, 177);
    assert!(reports
        .iter()
        .flat_map(|r| &r.problems)
        .all(|p| p.kind == ProblemKind::Crc || p.kind == ProblemKind::Missing));

    // And the other way round.
    let back = Checker::new(old).check_all(&new.modules);
    assert!(back.iter().all(|r| !r.compatible));
}

#[test]
fn diff_50_to_56() {
    let d = diff(kernel(OLD), kernel(NEW), None);
    println!(
        "added {} removed {} crc {} type {} ns {} module {}",
        d.added.len(),
        d.removed.len(),
        d.crc_changed.len(),
        d.export_type_changed.len(),
        d.namespace_changed.len(),
        d.module_changed.len()
    );
    assert_eq!(d.added.len(), 77);
    assert_eq!(d.removed.len(), 16);
    assert_eq!(d.crc_changed.len(), 18_254);
    let ml = d
        .crc_changed
        .iter()
        .find(|c| c.symbol == "module_layout")
        .unwrap();
    assert_eq!(
        (ml.old.as_str(), ml.new.as_str()),
        ("0xbce1a965", "0x9060323f")
    );
}

#[test]
fn reading_only_the_needed_parts_equals_parsing_the_whole_file() {
    // Module::read reads uncompressed modules piecewise (pread of the
    // sections the parser needs); Module::parse sees every byte.
    let k = kernel(NEW);
    for m in &k.modules {
        let whole = std::fs::read(&m.path).unwrap();
        let full = certlab_kabi::Module::parse(&whole, &m.path).unwrap();
        assert_eq!(
            serde_json::to_string(m).unwrap(),
            serde_json::to_string(&full).unwrap(),
            "{}",
            m.path
        );
    }
}

/// Modules as JSON, one string each.
fn modules_json(modules: &[certlab_kabi::Module]) -> Vec<String> {
    modules
        .iter()
        .map(|m| serde_json::to_string(m).unwrap())
        .collect()
}

/// The parsed-module cache files (`parsed/`) of a module cache and their
/// modification times.
fn parsed_files(cache: &std::path::Path) -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
    let mut v: Vec<_> = std::fs::read_dir(cache.join("parsed"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, t)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_parsed_module_cache_gives_the_modules_a_parse_gives() {
    use certlab_kabi::{load_modules, load_modules_cached, ModuleCache};
    // All 4,023 modules: cold (parsed, recorded), then warm (decoded from
    // the record, the cache file left as it was).
    let k = kernel(NEW);
    let dir = tempfile::tempdir().unwrap();
    let cache = ModuleCache::new(dir.path().join("cache"));
    let want = modules_json(&k.modules);
    let cold = load_modules_cached(&common::modules(NEW), Some(&cache)).unwrap();
    assert_eq!(modules_json(&cold), want, "cold");
    let files = parsed_files(&dir.path().join("cache"));
    assert_eq!(files.len(), 1, "one record file for the directory");
    let warm = load_modules_cached(&common::modules(NEW), Some(&cache)).unwrap();
    assert_eq!(modules_json(&warm), want, "warm");
    assert_eq!(
        parsed_files(&dir.path().join("cache")),
        files,
        "a warm run parses nothing, so it rewrites nothing"
    );

    // A module replaced in place (new size and ctime) is parsed again; a
    // new one is parsed; a removed one is gone.
    let real = common::modules(NEW).join("kernel/drivers/net");
    let mods = dir.path().join("mods");
    std::fs::create_dir_all(mods.join("phy")).unwrap();
    for r in ["mii.ko", "dummy.ko", "phy/libphy.ko"] {
        std::fs::copy(real.join(r), mods.join(r)).unwrap();
    }
    let cached = |why: &str| {
        let got = load_modules_cached(&mods, Some(&cache)).unwrap();
        assert_eq!(
            modules_json(&got),
            modules_json(&load_modules(&mods).unwrap()),
            "{why}"
        );
        got
    };
    cached("cold");
    cached("warm");
    std::fs::copy(real.join("macvlan.ko"), mods.join("dummy.ko")).unwrap();
    let changed = cached("a module replaced");
    assert!(changed.iter().any(|m| m.name == "macvlan"));
    assert!(!changed.iter().any(|m| m.name == "dummy"));
    std::fs::copy(real.join("ifb.ko"), mods.join("ifb.ko")).unwrap();
    std::fs::remove_file(mods.join("mii.ko")).unwrap();
    let names: Vec<String> = cached("one added, one removed")
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["macvlan", "ifb", "libphy"]);
}
