//! Kernels as `.rpm` packages, read directly. Needs scripts/fetch-kabi-data,
//! which always builds with rpmbuild, from Debian's 6.12.117+deb13-amd64,
//! packages in RHEL's layout, one per payload compressor (rpm/built:
//! modules zstd, devel xz, core gzip) — every exact fact below is about
//! them — and also caches Rocky Linux 9's kernel packages (rpm/rocky) when
//! dl.rockylinux.org is reachable: those are then read as well, as a real
//! RHEL-family kernel that must load and check clean.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::io::Read;
use std::path::PathBuf;

use certlab_kabi::{load_modules, rpm, Checker, Kernel};

const ABI: &str = "6.12.117+deb13-amd64";

/// The packages built from the trixie kernel whose name starts with
/// `prefix` (`kernel-core-`).
fn rpms(prefix: &str) -> Vec<PathBuf> {
    rpms_in("built", prefix)
}

/// The cached packages of `rpm/<set>` whose name starts with `prefix`.
fn rpms_in(set: &str, prefix: &str) -> Vec<PathBuf> {
    let dir = common::data_dir().join("rpm").join(set);
    assert!(
        dir.join(".complete").is_file(),
        "RPM test data missing at {}: run scripts/fetch-kabi-data",
        dir.display()
    );
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                (n.starts_with(prefix) || n.starts_with(&format!("certlab-{prefix}")))
                    && n.ends_with(".rpm")
            })
        })
        .collect();
    v.sort();
    assert!(
        !v.is_empty(),
        "no {prefix}*.rpm in {}: run scripts/fetch-kabi-data",
        dir.display()
    );
    v
}

/// The package sets to read: the built one, and Rocky's when it was reachable.
fn sets() -> Vec<&'static str> {
    let mut v = vec!["built"];
    if common::data_dir().join("rpm/rocky/.complete").is_file() {
        v.push("rocky");
    }
    v
}

#[test]
fn headers_and_members_of_each_compressor() {
    let symvers = std::fs::read(common::symvers(ABI)).unwrap();
    for (prefix, compressor) in [
        ("kernel-devel-", "xz"),
        ("kernel-core-", "gzip"),
        ("kernel-modules-", "zstd"),
    ] {
        let path = &rpms(prefix)[0];
        let bytes = std::fs::read(path).unwrap();
        assert!(rpm::is_rpm(&bytes));
        let pkg = rpm::parse(&bytes, &path.display().to_string()).unwrap();
        assert_eq!(pkg.compressor, compressor);
        let name = format!("certlab-{}", prefix.trim_end_matches('-'));
        assert_eq!(pkg.name.as_deref(), Some(&*name));
        assert_eq!(pkg.version.as_deref(), Some("6.12.117+deb13"));
        assert_eq!(pkg.arch.as_deref(), Some("x86_64"));
        let m = rpm::members(&bytes, "x.rpm", &rpm::is_kernel_member).unwrap();
        match prefix {
            "kernel-devel-" => {
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].0, format!("usr/src/kernels/{ABI}/Module.symvers"));
                assert_eq!(m[0].1, symvers);
            }
            "kernel-core-" => {
                assert_eq!(m.len(), 1);
                assert_eq!(m[0].0, format!("boot/symvers-{ABI}.gz"));
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(&m[0].1[..])
                    .read_to_end(&mut plain)
                    .unwrap();
                assert_eq!(plain, symvers);
            }
            _ => {
                let kos: Vec<_> = m.iter().filter(|(p, _)| p.ends_with(".ko.xz")).collect();
                assert_eq!(kos.len(), 4230);
                // Byte-identical to the unpacked .deb.
                let (p, data) = kos[0];
                let rel = p.strip_prefix(&format!("lib/modules/{ABI}/")).unwrap();
                assert_eq!(
                    data,
                    &std::fs::read(common::modules(ABI).join(rel)).unwrap()
                );
            }
        }
    }
}

#[test]
fn kernel_from_rpms_equals_kernel_from_directory_and_is_clean() {
    for set in sets() {
        let mut paths = rpms_in(set, "kernel-modules-");
        paths.extend(rpms_in(set, "kernel-core-"));
        paths.extend(rpms_in(set, "kernel-devel-"));
        let k = Kernel::load(&paths).unwrap();
        let s = k.stats();
        println!("{set}: {:?} {s:?}", k.release);
        assert!(s.modules > 1000, "{set}: {s:?}");
        assert_eq!(k.arch.as_deref(), Some("amd64"), "{set}");
        // Every in-tree module is clean against its own kernel.
        let reports = Checker::new(&k).check_all(&k.modules);
        let bad: Vec<_> = reports.iter().filter(|r| !r.problems.is_empty()).collect();
        assert!(bad.is_empty(), "{set}: {:#?}", &bad[..bad.len().min(3)]);
        println!("{set}: {} modules clean", reports.len());
    }
    // The exact facts, about the packages built from the trixie kernel.
    let mut paths = rpms("kernel-modules-");
    paths.extend(rpms("kernel-core-"));
    paths.extend(rpms("kernel-devel-"));
    let k = Kernel::load(&paths).unwrap();
    let s = k.stats();
    assert_eq!(k.release.as_deref(), Some(ABI));
    let dir = Kernel::load(&[common::modules(ABI), common::symvers(ABI)]).unwrap();
    assert_eq!(s, dir.stats());
    assert_eq!(s.modules, 4230);
    assert_eq!(s.namespaced_exports, 1384);
    // The gzip'ed /boot/symvers alone stands in for Module.symvers.
    let mut core = rpms("kernel-modules-");
    core.extend(rpms("kernel-core-"));
    assert_eq!(Kernel::load(&core).unwrap().stats(), s);
}

#[test]
fn modules_of_an_rpm_are_checked_like_a_directory() {
    for set in sets() {
        let path = &rpms_in(set, "kernel-modules-")[0];
        let m = load_modules(path).unwrap();
        assert!(!m.is_empty(), "{set}");
        assert!(m[0]
            .path
            .starts_with(&format!("{}:lib/modules/", path.display())));
    }
    assert_eq!(
        load_modules(&rpms("kernel-modules-")[0]).unwrap().len(),
        4230
    );
}

#[test]
fn a_kernel_rpm_without_symvers_says_so() {
    let e = Kernel::load(&rpms("kernel-modules-"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no Module.symvers"), "{e}");
}

#[test]
fn corrupt_rpms_give_clear_errors() {
    let path = &rpms("kernel-devel-")[0];
    let bytes = std::fs::read(path).unwrap();
    let pkg = rpm::parse(&bytes, "x.rpm").unwrap();
    let payload_at = bytes.len() - pkg.payload.len();
    // Truncated inside the headers and inside the payload. (A cut after
    // the cpio trailer goes unnoticed: nothing past it is read.)
    let mid = payload_at + pkg.payload.len() / 2;
    for cut in [50, 100, 200, payload_at - 1, payload_at + 100, mid] {
        let e = match rpm::members(&bytes[..cut], "x.rpm", &|_| true) {
            Ok(m) => panic!("{cut}: read {} members", m.len()),
            Err(e) => e.to_string(),
        };
        assert!(e.starts_with("x.rpm: "), "{cut}: {e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("k.rpm");
        std::fs::write(&f, &bytes[..cut]).unwrap();
        assert!(Kernel::load(&[&f]).is_err(), "{cut}");
    }
    // An unsupported compressor.
    let mut b = bytes.clone();
    b[payload_at..payload_at + 3].copy_from_slice(b"BZh");
    let e = match rpm::members(&b, "x.rpm", &|_| true) {
        Ok(m) => panic!("read {} members", m.len()),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("not supported"), "{e}");
}
