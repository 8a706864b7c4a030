//! Benchmarks of BTF, explain, vmlinuz and the module cache over the real
//! Debian kernels cached by scripts/fetch-kabi-data. Figures go to
//! BENCHMARKS.md.
#![allow(clippy::expect_used, clippy::unwrap_used)] // benches: a failure should panic

use std::path::PathBuf;

use certlab_kabi::btf::Btf;
use certlab_kabi::explain::TypeDiff;
use certlab_kabi::{load_modules, load_modules_cached, vmlinuz, ModuleCache};
use criterion::{criterion_group, criterion_main, Criterion};

fn data() -> PathBuf {
    std::env::var_os("CERTLAB_TEST_KABI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/certlab/kabi")
        })
}

fn image(abi: &str) -> Vec<u8> {
    let p = data().join(abi).join("vmlinuz");
    std::fs::read(&p)
        .unwrap_or_else(|e| panic!("{}: {e}: run scripts/fetch-kabi-data", p.display()))
}

fn benches(c: &mut Criterion) {
    let (z56, z50) = (image("6.1.0-56-amd64"), image("6.1.0-50-amd64"));
    let v56 = vmlinuz::unpack(&z56, "56").unwrap().data.into_owned();
    let v50 = vmlinuz::unpack(&z50, "50").unwrap().data.into_owned();
    let raw56 = vmlinuz::btf_section(&v56, "56").unwrap().unwrap().to_vec();
    let b56 = Btf::parse(&raw56, "56").unwrap();
    let b50 = vmlinuz::vmlinux_btf(&v50, "50").unwrap();

    let mut g = c.benchmark_group("kabi-types");
    g.sample_size(10);
    g.bench_function("vmlinuz_xz_unpack_56", |b| {
        b.iter(|| vmlinuz::unpack(&z56, "56").unwrap())
    });
    g.bench_function("vmlinux_exports_10503", |b| {
        b.iter(|| vmlinuz::exports(&v56, "56").unwrap())
    });
    g.bench_function("btf_parse_vmlinux_56", |b| {
        b.iter(|| Btf::parse(&raw56, "56").unwrap())
    });
    g.bench_function("btf_type_diff_50_56", |b| {
        b.iter(|| TypeDiff::new(&b50, &b56).changes.len())
    });
    let d = TypeDiff::new(&b50, &b56);
    g.bench_function("explain_tcp_sendmsg", |b| {
        b.iter(|| d.explain("tcp_sendmsg"))
    });

    // The trixie .ko.xz set: cold (decompress everything) and through the cache.
    let xz = data().join("6.12.117+deb13-amd64").join("modules");
    assert!(
        xz.is_dir(),
        "{} missing: run scripts/fetch-kabi-data",
        xz.display()
    );
    let cache_dir =
        std::env::temp_dir().join(format!("certlab-kabi-bench-cache-{}", std::process::id()));
    let cache = ModuleCache::new(&cache_dir);
    let cold = load_modules(&xz).unwrap();
    let warm = load_modules_cached(&xz, Some(&cache)).unwrap();
    assert_eq!(cold.len(), warm.len());
    let again = load_modules_cached(&xz, Some(&cache)).unwrap();
    for (a, b) in cold.iter().zip(&again) {
        assert_eq!(
            (
                &a.path,
                &a.name,
                a.imports().collect::<Vec<_>>(),
                a.versions().map(Iterator::collect::<Vec<_>>),
                &a.exports
            ),
            (
                &b.path,
                &b.name,
                b.imports().collect::<Vec<_>>(),
                b.versions().map(Iterator::collect::<Vec<_>>),
                &b.exports
            )
        );
    }
    println!("{} .ko.xz modules", cold.len());
    g.bench_function("read_ko_xz_set_uncached", |b| {
        b.iter(|| load_modules(&xz).unwrap())
    });
    g.bench_function("read_ko_xz_set_cached", |b| {
        b.iter(|| load_modules_cached(&xz, Some(&cache)).unwrap())
    });
    let _ = std::fs::remove_dir_all(&cache_dir);
    g.finish();
}

criterion_group!(types, benches);
criterion_main!(types);
