//! A genuinely out-of-tree driver (issue 5): two small modules — a library
//! that exports a symbol and a user of it, as a vendor package ships them —
//! built with gcc by kbuild from Debian's own packages
//! (`linux-headers-6.1.0-56-amd64`, `linux-headers-6.1.0-56-common`,
//! `linux-kbuild-6.1`, unpacked by scripts/fetch-kabi-data into
//! `<cache>/kbuild/6.1.0-56-amd64`, never installed), then checked against
//! the kernel it was built for (compatible) and against ABI 50 (refused:
//! `module_layout` first).
//!
//! Never skips: a missing toolchain (make, gcc-12: scripts/bootstrap --test)
//! or missing packages (scripts/fetch-kabi-data) fail the test loudly.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use certlab_kabi::{Checker, Kernel, Module, ProblemKind, Symvers};

const NEW: &str = "6.1.0-56-amd64";
const OLD: &str = "6.1.0-50-amd64";

const LIB_C: &str = r#"#include <linux/module.h>
#include <linux/slab.h>
#include <linux/jiffies.h>
#include <linux/dma-buf.h>

static void *buf;

/* Exported to the other module of the package. */
unsigned long certlab_hello_value(void)
{
	return jiffies;
}
EXPORT_SYMBOL_GPL(certlab_hello_value);

/* Never called with a real buffer: it is here for its namespaced import. */
void certlab_hello_put(struct dma_buf *b)
{
	if (b)
		dma_buf_put(b);
}
EXPORT_SYMBOL_GPL(certlab_hello_put);

static int __init certlab_hello_init(void)
{
	buf = kmalloc(64, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	pr_info("certlab_hello loaded at %lu\n", jiffies);
	return 0;
}

static void __exit certlab_hello_exit(void)
{
	kfree(buf);
}

module_init(certlab_hello_init);
module_exit(certlab_hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("certlab out-of-tree test module: exports a symbol");
MODULE_IMPORT_NS(DMA_BUF);
"#;

const USER_C: &str = r#"#include <linux/module.h>

unsigned long certlab_hello_value(void);

static int __init certlab_user_init(void)
{
	pr_info("certlab_user: %lu\n", certlab_hello_value());
	return 0;
}

static void __exit certlab_user_exit(void)
{
}

module_init(certlab_user_init);
module_exit(certlab_user_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("certlab out-of-tree test module: uses the other one");
"#;

const KBUILD: &str = "obj-m := certlab_hello.o certlab_user.o\n";

/// The kbuild tree of the unpacked packages.
fn headers_tree() -> PathBuf {
    let tree = common::data_dir()
        .join("kbuild")
        .join(NEW)
        .join("usr/src")
        .join(format!("linux-headers-{NEW}"));
    assert!(
        tree.join("Makefile").is_file() && tree.join("scripts/mod/modpost").exists(),
        "{} is not an unpacked linux-headers + linux-kbuild tree: run scripts/fetch-kabi-data",
        tree.display()
    );
    tree
}

fn tool(program: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{program}` is needed to build the out-of-tree module (Debian's 6.1 headers use gcc-12): run scripts/bootstrap --test"
    );
}

/// Builds the two modules once per test run; returns the build directory.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        tool("make");
        tool("gcc-12");
        let tree = headers_tree();
        // Per process: nextest runs each test in its own process, and
        // parallel builds in one directory would overwrite each other.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("kabi-out-of-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("certlab_hello.c"), LIB_C).unwrap();
        std::fs::write(dir.join("certlab_user.c"), USER_C).unwrap();
        std::fs::write(dir.join("Kbuild"), KBUILD).unwrap();
        let out = Command::new("make")
            .arg("-C")
            .arg(&tree)
            .arg(format!("M={}", dir.display()))
            .arg("modules")
            .env_remove("MAKEFLAGS")
            .output()
            .expect("make runs");
        assert!(
            out.status.success(),
            "make -C {} M={} modules failed:\n{}{}",
            tree.display(),
            dir.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

fn modules() -> Vec<Module> {
    let dir = built();
    ["certlab_hello.ko", "certlab_user.ko"]
        .iter()
        .map(|f| Module::read(&dir.join(f)).unwrap())
        .collect()
}

fn kernel(abi: &'static str) -> &'static Kernel {
    static K56: OnceLock<Kernel> = OnceLock::new();
    static K50: OnceLock<Kernel> = OnceLock::new();
    let cell = if abi == NEW { &K56 } else { &K50 };
    cell.get_or_init(|| Kernel::load(&[common::modules(abi), common::symvers(abi)]).unwrap())
}

#[test]
fn kbuild_output_is_read_like_the_loader_reads_it() {
    let mods = modules();
    let (lib, user) = (&mods[0], &mods[1]);
    assert_eq!(lib.name, "certlab_hello");
    assert_eq!(user.name, "certlab_user");
    for m in &mods {
        assert!(!m.modinfo.intree(), "{}: built outside the tree", m.name);
        assert_eq!(m.modinfo.license(), Some("GPL"));
        assert_eq!(
            m.modinfo.vermagic(),
            Some("6.1.0-56-amd64 SMP preempt mod_unload modversions ")
        );
        assert_eq!(
            m.version_of("module_layout"),
            kernel(NEW)
                .export("module_layout")
                .unwrap()
                .crc
                .map(u64::from),
            "{}: module_layout of the headers it was built with",
            m.name
        );
    }
    let imports: Vec<&str> = lib.imports().map(|i| i.name).collect();
    for sym in ["jiffies", "dma_buf_put", "_printk", "kfree"] {
        assert!(imports.contains(&sym), "{sym} not in {imports:?}");
    }
    assert_eq!(lib.modinfo.import_ns().collect::<Vec<_>>(), ["DMA_BUF"]);
    // Our reading of the exports agrees with the Module.symvers modpost wrote.
    let symvers = Symvers::read(&built().join("Module.symvers")).unwrap();
    assert_eq!(symvers.len(), 2);
    for e in &lib.exports {
        let s = symvers.get(&e.name).unwrap();
        assert_eq!(s.crc, e.crc, "{}", e.name);
        assert_eq!(s.export_type, e.export_type, "{}", e.name);
        assert!(s.crc.is_some_and(|c| c != 0), "{}: a real CRC", e.name);
    }
    assert!(user.imports().any(|i| i.name == "certlab_hello_value"));
    assert!(user.version_of("certlab_hello_value").is_some());
}

#[test]
fn loads_on_the_kernel_it_was_built_for() {
    let mods = modules();
    let reports = Checker::new(kernel(NEW))
        .with_modules(&mods)
        .check_all(&mods);
    for r in &reports {
        assert!(r.compatible, "{r:#?}");
        assert!(r.problems.is_empty() && r.warnings.is_empty(), "{r:#?}");
    }
    // Without the library shipped alongside, its user cannot resolve it.
    let user = Checker::new(kernel(NEW)).check(&mods[1]);
    assert!(!user.compatible);
    assert_eq!(user.problems.len(), 1);
    assert_eq!(user.problems[0].symbol, "certlab_hello_value");
    assert_eq!(user.problems[0].kind, ProblemKind::Missing);
}

#[test]
fn refused_by_abi_50_for_module_layout() {
    let mods = modules();
    let reports = Checker::new(kernel(OLD))
        .with_modules(&mods)
        .check_all(&mods);
    for r in &reports {
        assert!(!r.compatible, "{}", r.name);
        let first = &r.problems[0];
        assert_eq!(
            (first.symbol.as_str(), first.kind),
            ("module_layout", ProblemKind::Crc)
        );
        assert_eq!(first.expected.as_deref(), Some("0xbce1a965"));
        assert_eq!(first.found.as_deref(), Some("0x9060323f"));
        println!(
            "{} on {OLD}: {} problems: {}",
            r.name,
            r.problems.len(),
            r.problems
                .iter()
                .map(|p| p.symbol.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    assert!(reports[0]
        .problems
        .iter()
        .all(|p| p.kind == ProblemKind::Crc));
    // certlab_user imports nothing whose CRC changed between 50 and 56:
    // module_layout refuses it, as the real loader would, and its
    // certlab_hello_value comes only from certlab_hello, refused too.
    let user = &reports[1];
    assert_eq!(user.problems.len(), 2, "{:#?}", user.problems);
    let dep = &user.problems[1];
    assert_eq!(
        (dep.symbol.as_str(), dep.kind, dep.provider.as_deref()),
        (
            "certlab_hello_value",
            ProblemKind::Dependency,
            Some("certlab_hello")
        )
    );
    assert_eq!(
        dep.cause.as_deref(),
        Some("crc: module_layout: disagrees about version of symbol module_layout: built for another kernel ABI")
    );

    // The compatibility matrix as JUnit: one testcase per module × kernel.
    let mut all = Checker::new(kernel(NEW))
        .with_modules(&mods)
        .check_all(&mods);
    all.extend(reports);
    let xml = certlab_kabi::junit::check_junit(&all);
    assert!(
        xml.contains(r#"<testsuites name="certlab kabi check" tests="4" failures="2""#),
        "{xml}"
    );
    assert!(
        xml.contains(r#"<testcase classname="kabi.check.6.1.0-50-amd64" name="certlab_user""#),
        "{xml}"
    );
    assert!(
        xml.contains("crc: module_layout: disagrees about version of symbol module_layout"),
        "{xml}"
    );
}
