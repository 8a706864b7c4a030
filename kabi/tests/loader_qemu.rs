//! The real Linux loader as the judge of `kabi check` (issue 8).
//!
//! Debian bookworm's `linux-image-6.1.0-54-amd64` is booted under QEMU
//! (`qemu-system-x86_64 -accel tcg`: no KVM needed) with an initramfs of a
//! static busybox and a few dozen modules of *another* ABI,
//! `6.1.0-50-amd64`, whose `module_layout` CRC is the same (0xbce1a965), so
//! that the loader judges symbol by symbol — plus two modules of
//! `6.1.0-56-amd64` (another `module_layout`: refused whatever they import).
//! The modules were chosen with dependencies among them: providers the
//! loader refuses with their dependants, chains that load, and modules whose
//! init fails for want of hardware. `/init` insmods them in dependency order
//! (each module after the modules its `.modinfo` `depends=` names) and
//! prints one line per module, `CERTLAB-VERDICT <name> <exit status>`, on
//! the serial console; `certlab kabi check` logic (`Checker` over the same
//! set against the booted kernel's Module.symvers) must give the same
//! verdict for every module.
//!
//! How a refusal by the loader is told apart from an init that fails for a
//! non-ABI reason (no hardware): the kernel boots with `initcall_debug`, so
//! it logs `calling  <init function> [<module>]` when it runs a module's
//! init — only after the loader accepted the module (symbols resolved,
//! CRCs and vermagic checked, relocated). A module whose `insmod` fails
//! *with* that line was accepted: its init returned an error (busybox's
//! insmod exits with the errno, e.g. ENODEV 19 or EOPNOTSUPP 95) and it is
//! ABI-compatible. A module whose `insmod` fails *without* it was refused
//! by the loader, and the test also demands the loader's own evidence: an
//! errno of ENOEXEC (8: `module_layout` or vermagic), EINVAL (22: "disagrees
//! about version of symbol", logged as "Unknown symbol … (err -22)") or
//! ENOENT (2: "Unknown symbol … (err -2)", what a dependant of a refused
//! module gets), and a kernel message naming the module. Any other outcome
//! fails the test instead of being guessed at.
//!
//! Needs `scripts/fetch-loader-data` (the kernel, both module trees and an
//! unpacked qemu-system-x86; `CERTLAB_TEST_LOADER_DIR`) and `busybox-static`
//! and `cpio` (`scripts/bootstrap --test`); fails loudly naming them.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use certlab_kabi::{Checker, Kernel, Module, ModuleReport, ProblemKind};

/// The loader names (`-` as `_`) of the modules of 6.1.0-50 put in the set,
/// besides what they depend on (added from `depends=`).
const ROOTS: &[&str] = &[
    // Refused providers (CRCs changed between 50 and 54) and dependants
    // that would load on their own: act_ife ← act_meta_mark (the issue's
    // example), async_pq ← async_raid6_recov, wire ← w1_ds24xx, watchdog
    // ← pretimeout_noop, wmi ← alienware_wmi, and a chain of two:
    // industrialio ← mpl115 ← mpl115_spi.
    "act_meta_mark",
    "async_raid6_recov",
    "w1_ds2433",
    "w1_ds2438",
    "pretimeout_noop",
    "alienware_wmi",
    "mpl115_spi",
    // Load, with dependencies among them.
    "t10_pi",
    "crct10dif_generic",
    "crc64_rocksoft_generic",
    "cfi_probe",
    "jedec_probe",
    "nhpoly1305_sse2",
    "memconsole_coreboot",
    "pvpanic_mmio",
    "nls_utf8",
    // Accepted by the loader, then init fails: the CPU QEMU emulates
    // (qemu64) has no AVX2, SSSE3, SSE4.2, PCLMULQDQ or VIA PadLock, and the
    // machine is no Apple (applesmc) nor a CPU with uncore frequency control.
    "nhpoly1305_avx2",
    "sha256_ssse3",
    "crc32c_intel",
    "crct10dif_pclmul",
    "padlock_sha",
    "applesmc",
    "intel_uncore_frequency",
];

/// Modules of 6.1.0-56 (another `module_layout`): the refuse-all case.
const OTHER_ABI: &[&str] = &["tun", "nlmon"];

/// Hard limit on the boot and the whole insmod sequence under TCG (it takes
/// 10–25 s on 2 busy cores; the limit only catches a hang).
const BOOT_LIMIT: Duration = Duration::from_secs(180);

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CERTLAB_TEST_LOADER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/certlab/loader")
        });
    for p in [
        "boot/vmlinuz",
        "boot/Module.symvers",
        "set/.complete",
        "other/.complete",
        "qemu/.complete",
        "qemu/run-qemu",
    ] {
        assert!(
            dir.join(p).exists(),
            "loader test data missing: {} does not exist: run scripts/fetch-loader-data (or set CERTLAB_TEST_LOADER_DIR)",
            dir.join(p).display()
        );
    }
    dir
}

/// A static busybox (the initramfs has no libc).
fn busybox() -> PathBuf {
    let path = ["/bin/busybox", "/usr/bin/busybox"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("busybox not found: run scripts/bootstrap --test (busybox-static)")
        });
    let bytes = std::fs::read(&path).unwrap();
    let elf = object::File::parse(&*bytes).unwrap();
    use object::Object as _;
    assert!(
        elf.section_by_name(".interp").is_none(),
        "{} is dynamically linked: install busybox-static (scripts/bootstrap --test)",
        path.display()
    );
    path
}

/// Every `.ko` under `dir` by its loader name (file name, `-` as `_`).
fn index(dir: &Path) -> HashMap<String, PathBuf> {
    let mut out = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Some(n) = p.file_name().and_then(|n| n.to_str()) {
                if let Some(stem) = n.strip_suffix(".ko") {
                    out.insert(stem.replace('-', "_"), p);
                }
            }
        }
    }
    out
}

/// The roots and everything they depend on, each after its dependencies.
fn closure_in_load_order(tree: &HashMap<String, PathBuf>, roots: &[&str]) -> Vec<Module> {
    fn visit(
        name: &str,
        tree: &HashMap<String, PathBuf>,
        done: &mut HashSet<String>,
        out: &mut Vec<Module>,
    ) {
        if !done.insert(name.to_string()) {
            return;
        }
        let path = tree
            .get(name)
            .unwrap_or_else(|| panic!("module {name} is not in the tree"));
        let m = Module::read(path).unwrap();
        let deps: Vec<String> = m
            .modinfo
            .depends()
            .iter()
            .map(|d| d.replace('-', "_"))
            .collect();
        for d in &deps {
            visit(d, tree, done, out);
        }
        out.push(m);
    }
    let mut done = HashSet::new();
    let mut out = Vec::new();
    for r in roots {
        visit(r, tree, &mut done, &mut out);
    }
    out
}

/// The console stays quiet while the modules load (`loglevel=1`), so that
/// no kernel message cuts a verdict line. After each insmod the kernel's
/// messages are drained (`dmesg -c`: the ring buffer never overflows, even
/// for the whole tree) into one file, keeping the lines the verdict needs,
/// then the verdict; the file is printed after the last module.
const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
keep='calling  .*\[|disagrees about version of symbol|Unknown symbol|version magic'
while read m; do
    /bin/busybox insmod /m/$m.ko 2>/dev/null
    rc=$?
    /bin/busybox dmesg -c | /bin/busybox grep -E "$keep" >> /log
    echo "CERTLAB-VERDICT $m $rc" >> /log
done < /order
echo CERTLAB-LOG-BEGIN
/bin/busybox cat /log
echo CERTLAB-DONE
/bin/busybox poweroff -f
"#;

/// Writes the initramfs (a newc cpio) for `modules` in that order.
fn initramfs(dir: &Path, modules: &[Module]) -> PathBuf {
    let root = dir.join("root");
    let _ = std::fs::remove_dir_all(&root);
    for d in ["bin", "m", "proc", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    let init = root.join("init");
    std::fs::write(&init, INIT).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut order = String::new();
    for m in modules {
        std::fs::copy(&m.path, root.join("m").join(format!("{}.ko", m.name))).unwrap();
        let _ = writeln!(order, "{}", m.name);
    }
    std::fs::write(root.join("order"), order).unwrap();

    let mut files = String::new();
    let mut stack = vec![PathBuf::from(".")];
    while let Some(d) = stack.pop() {
        files.push_str(&format!("{}\n", d.display()));
        let here = root.join(&d);
        if here.is_dir() {
            for e in std::fs::read_dir(&here).unwrap() {
                stack.push(d.join(e.unwrap().file_name()));
            }
        }
    }
    let out = dir.join("initramfs.cpio");
    let cpio = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet", "-F"])
        .arg(&out)
        .current_dir(&root)
        .stdin(Stdio::piped())
        .spawn();
    let mut cpio = cpio
        .unwrap_or_else(|e| panic!("cpio cannot run ({e}): run scripts/bootstrap --test (cpio)"));
    cpio.stdin
        .take()
        .unwrap()
        .write_all(files.as_bytes())
        .unwrap();
    assert!(cpio.wait().unwrap().success(), "cpio failed");
    out
}

/// Boots the kernel with the initramfs; returns the serial console's text.
fn boot(data: &Path, dir: &Path, initrd: &Path, memory_mib: u32, limit: Duration) -> String {
    let log = dir.join("console.log");
    let started = Instant::now();
    let mut child = Command::new(data.join("qemu/run-qemu"))
        .args(["-accel", "tcg", "-nographic", "-no-reboot", "-m"])
        .arg(memory_mib.to_string())
        .arg("-kernel")
        .arg(data.join("boot/vmlinuz"))
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet initcall_debug"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("qemu starts (scripts/fetch-loader-data unpacks it)");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
            let tail: String = text.lines().rev().take(40).collect::<Vec<_>>().join("\n");
            panic!("the QEMU boot did not finish in {limit:?}; last lines (reversed):\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("QEMU (TCG) boot and {} s", started.elapsed().as_secs_f32());
    assert!(status.success(), "qemu exited with {status}");
    String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned()
}

/// What the loader did with one module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Loader {
    Loaded,
    /// Accepted by the loader; its init returned this errno.
    InitFailed(i32),
    /// Refused by the loader with this errno.
    Refused(i32),
}

/// Reads the log `/init` printed: for each module, the kernel's lines
/// logged during its insmod, then its verdict line.
fn loader_verdicts(console: &str, modules: &[Module]) -> BTreeMap<String, Loader> {
    assert!(
        console.contains("CERTLAB-DONE"),
        "the initramfs did not finish:\n{console}"
    );
    let log = console
        .split_once("CERTLAB-LOG-BEGIN")
        .map(|(_, log)| log)
        .unwrap_or_else(|| panic!("no log in the console output:\n{console}"));
    let mut out = BTreeMap::new();
    let mut block: Vec<&str> = Vec::new();
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix("CERTLAB-VERDICT ") else {
            block.push(line);
            continue;
        };
        let (name, rc) = rest
            .split_once(' ')
            .unwrap_or_else(|| panic!("bad verdict line {line:?}"));
        let rc: i32 = rc.trim().parse().unwrap();
        let ran_init = block
            .iter()
            .any(|l| l.contains("calling  ") && l.contains(&format!(" [{name}]")));
        let said = |what: &str| {
            let what = format!("{name}: {what}");
            block.iter().any(|l| l.contains(&what))
        };
        let v = match (rc, ran_init) {
            (0, _) => Loader::Loaded,
            (e, true) => Loader::InitFailed(e),
            (e @ (2 | 8 | 22), false)
                if said("disagrees about version of symbol")
                    || said("Unknown symbol")
                    || said("version magic") =>
            {
                Loader::Refused(e)
            }
            (e, false) => panic!(
                "{name}: insmod exited {e} without running its init and without a loader refusal in the log:\n{}",
                block.join("\n")
            ),
        };
        out.insert(name.to_string(), v);
        block.clear();
    }
    for m in modules {
        assert!(out.contains_key(&m.name), "no verdict line for {}", m.name);
    }
    out
}

/// What the loader and certlab said about one module set.
struct Comparison {
    reports: Vec<ModuleReport>,
    loader: BTreeMap<String, Loader>,
    console: String,
    loaded: usize,
    refused: usize,
    init_failed: usize,
    /// Refused by certlab only because a provider is.
    deps: usize,
}

/// Checks `modules` (in load order) as one set against the booted kernel's
/// Module.symvers, boots it with them, and asserts that every verdict agrees.
fn compare(
    data: &Path,
    modules: &[Module],
    memory_mib: u32,
    limit: Duration,
    table: bool,
) -> Comparison {
    let names: HashSet<&str> = modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), modules.len(), "one module per name");
    // certlab's verdicts: the set against the booted kernel's Module.symvers.
    let kernel = Kernel::load(&[data.join("boot/Module.symvers")]).unwrap();
    let reports = Checker::new(&kernel)
        .with_modules(modules)
        .check_all(modules);

    // The loader's.
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("loader-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let initrd = initramfs(&dir, modules);
    let console = boot(data, &dir, &initrd, memory_mib, limit);
    let loader = loader_verdicts(&console, modules);
    let _ = std::fs::remove_dir_all(&dir);

    let mut lines = String::new();
    let mut disagree = Vec::new();
    let (mut loaded, mut refused, mut init_failed, mut deps) = (0, 0, 0, 0);
    for r in &reports {
        let l = loader[&r.name];
        match l {
            Loader::Loaded => loaded += 1,
            Loader::InitFailed(_) => init_failed += 1,
            Loader::Refused(_) => refused += 1,
        }
        let first = r.problems.first().map(|p| p.summary()).unwrap_or_default();
        // Refused only because a provider is: the case issue 8 found.
        if r.problems
            .first()
            .is_some_and(|p| p.kind == ProblemKind::Dependency)
        {
            deps += 1;
        }
        let agrees = r.compatible == !matches!(l, Loader::Refused(_));
        if table || !agrees {
            let _ = writeln!(
                lines,
                "{:<30} {:<16} {:<7} {}",
                r.name,
                format!("{l:?}"),
                if r.compatible { "ok" } else { "FAIL" },
                first
            );
        }
        if !agrees {
            disagree.push(r.name.clone());
        }
    }
    println!(
        "{:<30} {:<16} {:<7} certlab's first problem",
        "module", "loader", "certlab"
    );
    print!("{lines}");
    let n = reports.len();
    println!(
        "loader: {loaded} loaded, {refused} refused, {init_failed} init failed (accepted); \
         certlab: {} compatible, {deps} refused only for a dependency; agreement {}/{n}",
        reports.iter().filter(|r| r.compatible).count(),
        n - disagree.len()
    );
    assert!(
        disagree.is_empty(),
        "certlab and the loader disagree on {disagree:?}"
    );
    Comparison {
        reports,
        loader,
        console,
        loaded,
        refused,
        init_failed,
        deps,
    }
}

#[test]
fn kabi_check_agrees_with_the_linux_loader_under_qemu() {
    let data = data_dir();
    let set_tree = index(&data.join("set"));
    let other_tree = index(&data.join("other"));
    let mut modules = closure_in_load_order(&set_tree, ROOTS);
    for n in OTHER_ABI {
        let m = Module::read(&other_tree[*n]).unwrap();
        assert!(m.modinfo.depends().is_empty(), "{n} must stand alone");
        assert!(modules.iter().all(|x| x.name != m.name));
        modules.push(m);
    }
    let Comparison {
        reports,
        loader,
        console,
        loaded,
        refused,
        init_failed,
        deps,
    } = compare(&data, &modules, 512, BOOT_LIMIT, true);

    // The set must exercise what it is for.
    assert!(
        loaded >= 5 && init_failed >= 1 && refused >= 5,
        "{loaded} {init_failed} {refused}"
    );
    assert!(deps >= 5, "refusals only through a dependency: {deps}");
    // Two steps: mpl115_spi needs mpl115, which needs industrialio.
    let spi = reports.iter().find(|r| r.name == "mpl115_spi").unwrap();
    assert_eq!(spi.problems[0].provider.as_deref(), Some("mpl115"));
    assert!(spi.problems[0]
        .cause
        .as_deref()
        .is_some_and(|c| c.starts_with("dependency: ")));
    for n in OTHER_ABI {
        assert_eq!(
            loader[*n],
            Loader::Refused(8),
            "{n}: module_layout → ENOEXEC"
        );
        let r = reports.iter().find(|r| r.name == *n).unwrap();
        assert_eq!(r.problems[0].symbol, "module_layout");
    }
    let r = |n: &str| reports.iter().find(|r| r.name == n).unwrap();
    let mark = r("act_meta_mark");
    assert!(mark
        .problems
        .iter()
        .any(|p| p.kind == ProblemKind::Dependency && p.provider.as_deref() == Some("act_ife")));
    assert!(console.contains("act_meta_mark: Unknown symbol ife_"));
}

/// The issue's example without QEMU: `act_meta_mark` of 6.1.0-50 imports
/// `ife_*` from `act_ife`, which the 6.1.0-54 loader refuses.
#[test]
fn act_meta_mark_follows_its_refused_provider() {
    let data = data_dir();
    let tree = index(&data.join("set"));
    let kernel = Kernel::load(&[data.join("boot/Module.symvers")]).unwrap();
    let set = closure_in_load_order(&tree, &["act_meta_mark"]);
    let names: Vec<&str> = set.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["ife", "act_ife", "act_meta_mark"]);
    let reports = Checker::new(&kernel).with_modules(&set).check_all(&set);
    let (act_ife, mark) = (&reports[1], &reports[2]);
    assert!(!act_ife.compatible);
    assert!(act_ife
        .problems
        .iter()
        .any(|p| p.symbol == "tcf_idr_release" && p.kind == ProblemKind::Crc));
    assert!(
        !mark.compatible,
        "act_meta_mark must not be called compatible"
    );
    let dep = mark
        .problems
        .iter()
        .find(|p| p.symbol == "ife_alloc_meta_u32")
        .expect("a problem for ife_alloc_meta_u32");
    assert_eq!(dep.kind, ProblemKind::Dependency);
    assert_eq!(dep.provider.as_deref(), Some("act_ife"));
    let first = act_ife.problems.iter().find(|p| p.kind.refuses()).unwrap();
    assert_eq!(dep.cause.as_deref(), Some(first.summary().as_str()));

    // Checked alone against the kernel, act_meta_mark resolves ife_* from
    // the kernel's own act_ife; with act_ife in the set, that one is gone.
    let alone = Checker::new(&kernel).check(&set[2]);
    assert!(alone
        .problems
        .iter()
        .all(|p| p.kind != ProblemKind::Dependency));
    let with = Checker::new(&kernel).with_modules(&set[..2]).check(&set[2]);
    assert_eq!(
        with.problems
            .iter()
            .map(|p| (&p.symbol, p.kind))
            .collect::<Vec<_>>(),
        mark.problems
            .iter()
            .map(|p| (&p.symbol, p.kind))
            .collect::<Vec<_>>()
    );
    let _: &[ModuleReport] = &reports;
}

/// The whole 6.1.0-50 tree (4,022 modules, 400 MB of initramfs) on the
/// 6.1.0-54 loader: about 5 minutes of TCG, so not in `scripts/test`; run
/// it with `cargo nextest run -p certlab-kabi --test loader_qemu
/// --run-ignored only` (figures in BENCHMARKS.md).
#[test]
#[ignore = "5 minutes of QEMU TCG: run on demand"]
fn the_whole_abi_50_tree_agrees_with_the_linux_loader() {
    let data = data_dir();
    let tree = index(&data.join("set"));
    let mut roots: Vec<&str> = tree.keys().map(String::as_str).collect();
    roots.sort_unstable();
    let modules = closure_in_load_order(&tree, &roots);
    assert_eq!(modules.len(), 4022);
    let c = compare(&data, &modules, 3072, Duration::from_secs(1800), false);
    assert_eq!(c.loaded + c.init_failed + c.refused, 4022);
}
