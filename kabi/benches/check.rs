//! Benchmarks over the real Debian bookworm kernels cached by
//! scripts/fetch-kabi-data (6.1.0-56-amd64: 4,023 modules, 184,890 imports;
//! 6.1.0-50-amd64). Figures go to BENCHMARKS.md.
#![allow(clippy::expect_used, clippy::unwrap_used)] // benches: a failure should panic

use std::path::PathBuf;

use certlab_kabi::{
    diff, load_modules, load_modules_cached, Checker, Kernel, ModuleCache, Symvers,
};
use criterion::{criterion_group, criterion_main, Criterion};

fn data(abi: &str) -> PathBuf {
    let dir = std::env::var_os("CERTLAB_TEST_KABI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/certlab/kabi")
        })
        .join(abi);
    assert!(
        dir.join("Module.symvers").is_file(),
        "{} missing: run scripts/fetch-kabi-data",
        dir.display()
    );
    dir
}

fn benches(c: &mut Criterion) {
    let (d56, d50) = (data("6.1.0-56-amd64"), data("6.1.0-50-amd64"));
    let k56 = Kernel::load(&[d56.join("Module.symvers"), d56.join("modules")]).unwrap();
    let k50 = Kernel::load(&[d50.join("Module.symvers")]).unwrap();
    let modules = k56.modules.clone();
    assert_eq!(modules.len(), 4023);
    let m50 = load_modules(&d50.join("modules")).unwrap();
    // Read back from the parsed-module cache (`--cache DIR`, second run):
    // the modules share one name table.
    let cache_dir =
        std::env::temp_dir().join(format!("certlab-kabi-bench-check-{}", std::process::id()));
    let cache = ModuleCache::new(&cache_dir);
    load_modules_cached(&d56.join("modules"), Some(&cache)).unwrap();
    let cached = load_modules_cached(&d56.join("modules"), Some(&cache)).unwrap();
    assert_eq!(cached.len(), 4023);

    let mut g = c.benchmark_group("kabi");
    g.sample_size(20);
    g.bench_function("symvers_parse_24683", |b| {
        b.iter(|| Symvers::read(&d56.join("Module.symvers")).unwrap())
    });
    g.bench_function("read_4023_modules", |b| {
        b.iter(|| load_modules(&d56.join("modules")).unwrap())
    });
    g.bench_function("check_4023_parsed_modules", |b| {
        b.iter(|| Checker::new(&k56).check_all(&modules))
    });
    // As `certlab kabi check DIR` does it: the modules are also the set
    // (replacement of the kernel's modules, refusals propagated).
    g.bench_function("check_4023_parsed_modules_as_a_set", |b| {
        b.iter(|| {
            Checker::new(&k56)
                .with_modules(&modules)
                .check_all(&modules)
        })
    });
    g.bench_function("read_4023_modules_from_the_parsed_cache", |b| {
        b.iter(|| load_modules_cached(&d56.join("modules"), Some(&cache)).unwrap())
    });
    g.bench_function("check_4023_cached_modules_as_a_set", |b| {
        b.iter(|| Checker::new(&k56).with_modules(&cached).check_all(&cached))
    });
    g.bench_function("check_4023_abi_50_modules_on_56", |b| {
        b.iter(|| Checker::new(&k56).check_all(&m50))
    });
    g.bench_function("check_4023_abi_50_modules_as_a_set_on_56", |b| {
        b.iter(|| Checker::new(&k56).with_modules(&m50).check_all(&m50))
    });
    g.bench_function("read_and_check_4023_modules", |b| {
        b.iter(|| {
            let m = load_modules(&d56.join("modules")).unwrap();
            Checker::new(&k56).check_all(&m)
        })
    });
    g.bench_function("diff_50_56", |b| b.iter(|| diff(&k50, &k56, None)));
    g.finish();
    let _ = std::fs::remove_dir_all(&cache_dir);
}

criterion_group!(kabi, benches);
criterion_main!(kabi);
