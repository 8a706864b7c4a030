//! The `kabi.out-of-tree` case on scripted machines serving REAL files: a
//! real module of Debian's linux-image-6.1.0-56-amd64 (e1000e) loaded as if
//! it were out-of-tree (taint `O`), and the real Module.symvers of ABI 56 and
//! ABI 50. Needs scripts/fetch-kabi-data (panics naming it when missing).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::Scripted;
use certlab_reports::{Evidence, Verdict};
use certlab_suites::{checks, CaseCtx, CaseError, CaseOutcome, MemorySink, Plan};
use sha2::Digest;

const R56: &str = "6.1.0-56-amd64";
const R50: &str = "6.1.0-50-amd64";
/// Where the scripted SUT keeps the "vendor" module (dkms-style).
const MODULE: &str = "/lib/modules/6.1.0-56-amd64/updates/dkms/e1000e.ko";

fn data_dir() -> PathBuf {
    let dir = std::env::var_os("CERTLAB_TEST_KABI_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/certlab/kabi")
        });
    assert!(
        dir.join(R56).join("Module.symvers").is_file()
            && dir.join(R50).join("Module.symvers").is_file(),
        "kabi test data missing at {}: run scripts/fetch-kabi-data (or set CERTLAB_TEST_KABI_DIR)",
        dir.display()
    );
    dir
}

fn e1000e() -> Vec<u8> {
    std::fs::read(
        data_dir()
            .join(R56)
            .join("modules/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko"),
    )
    .unwrap()
}

fn symvers(abi: &str) -> Vec<u8> {
    std::fs::read(data_dir().join(abi).join("Module.symvers")).unwrap()
}

fn sha256sum_line(bytes: &[u8], path: &str) -> String {
    format!("{}  {path}\n", hex::encode(sha2::Sha256::digest(bytes)))
}

const PROC_MODULES: &str = "e1000e 356352 0 - Live 0xffffffffc0a21000 (O)\next4 1019904 1 - Live 0xffffffffc0876000\nmbcache 16384 1 ext4, Live 0xffffffffc0862000\n";

/// A SUT running Debian's kernel `abi`, with its headers installed the
/// Debian way, and ABI 56's e1000e installed (dkms-style) and loaded as an
/// out-of-tree module, its file found by `modinfo -n`.
fn sut(abi: &str) -> Scripted {
    let ko = e1000e();
    let module = format!("/lib/modules/{abi}/updates/dkms/e1000e.ko");
    let headers = format!("/usr/src/linux-headers-{abi}");
    let vermagic = format!("{abi} SMP preempt mod_unload modversions \n");
    Scripted::new("sut")
        .file("/proc/modules", PROC_MODULES)
        .file("/proc/sys/kernel/osrelease", format!("{abi}\n"))
        .command("modinfo -n e1000e", 0, &format!("{module}\n"), "")
        .command("modinfo -F vermagic ext4", 0, &vermagic, "")
        .command(
            &format!("sha256sum {module}"),
            0,
            &sha256sum_line(&ko, &module),
            "",
        )
        .file(&module, ko)
        .link(&format!("/lib/modules/{abi}/build"), &headers)
        .file(&format!("{headers}/Module.symvers"), symvers(abi))
}

fn run(target: &Scripted, params: &str) -> Result<(CaseOutcome, Vec<Evidence>), CaseError> {
    let check = checks::lookup("kabi-out-of-tree").expect("registered");
    let sink = MemorySink::default();
    let params: toml::Table = toml::from_str(params).unwrap();
    let (inv, profile) = (Inventory::default(), HardwareProfile::default());
    let ctx = CaseCtx::new(
        target,
        &profile,
        &inv,
        &params,
        &sink,
        Duration::from_secs(120),
    );
    let out = check.run(&ctx)?;
    let evidence = ctx.take_evidence();
    // Every verdict of `run` rests on evidence (only a selection skip may not).
    assert!(
        !evidence.is_empty(),
        "{} without evidence: {}",
        out.verdict,
        out.reason
    );
    Ok((out, evidence))
}

fn commands(evidence: &[Evidence]) -> Vec<&str> {
    evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Command { cmd, .. } => Some(cmd.as_str()),
            _ => None,
        })
        .collect()
}

fn files(evidence: &[Evidence]) -> Vec<&str> {
    evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::File { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_module_built_for_the_running_abi_passes() {
    let (o, ev) = run(&sut(R56), "").unwrap();
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    let sha = hex::encode(sha2::Sha256::digest(e1000e()));
    assert!(
        o.reason
            .contains("1 out-of-tree module load on 6.1.0-56-amd64"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains(&format!("e1000e ({MODULE}, sha256 {}", &sha[..16])),
        "{}",
        o.reason
    );
    assert!(!o.reason.contains("vermagic not compared"), "{}", o.reason);
    let cmds = commands(&ev);
    assert!(cmds.contains(&"modinfo -n e1000e"), "{cmds:?}");
    assert!(
        cmds.contains(&format!("sha256sum {MODULE}").as_str()),
        "{cmds:?}"
    );
    assert!(files(&ev).contains(&"/lib/modules/6.1.0-56-amd64/build/Module.symvers"));
}

#[test]
fn the_same_module_on_abi_50_fails_naming_module_layout() {
    let (o, _) = run(&sut(R50), "").unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    println!("{}", o.reason);
    let first = o.reason.lines().next().unwrap();
    assert!(
        first.starts_with("1 of 1 out-of-tree modules would be refused by 6.1.0-50-amd64"),
        "{first}"
    );
    assert!(
        o.reason
            .contains("crc module_layout: disagrees about version of symbol module_layout")
            && o.reason.contains("(kernel 0xbce1a965, module 0x9060323f)"),
        "{}",
        o.reason
    );
    // Every problem is listed, not just the first.
    let line = o.reason.lines().find(|l| l.starts_with("e1000e ")).unwrap();
    let n: usize = line
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 1, "{line}");
    assert_eq!(line.matches("; crc ").count() + 1, n, "{line}");
    assert!(line.contains("fix: rebuild the module against the headers of 6.1.0-50-amd64"));
}

#[test]
fn skips_without_out_of_tree_modules_or_module_symvers() {
    let clean = Scripted::new("sut")
        .file(
            "/proc/modules",
            "ext4 1019904 1 - Live 0xffffffffc0876000\n",
        )
        .file("/proc/sys/kernel/osrelease", format!("{R56}\n"));
    let (o, _) = run(&clean, "").unwrap();
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason.contains("no out-of-tree module is loaded"),
        "{}",
        o.reason
    );

    let no_headers = Scripted::new("sut")
        .file("/proc/modules", PROC_MODULES)
        .file("/proc/sys/kernel/osrelease", format!("{R56}\n"));
    let (o, ev) = run(&no_headers, "").unwrap();
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(
        o.reason
            .contains("no Module.symvers for the running kernel 6.1.0-56-amd64")
            && o.reason.contains("/boot/symvers-6.1.0-56-amd64.gz"),
        "{}",
        o.reason
    );
    // Where it looked is evidence.
    assert!(ev.iter().any(|e| matches!(e, Evidence::Missing { path, .. } if path == "/usr/src/linux-headers-6.1.0-56-amd64/Module.symvers")));
}

/// A RHEL-style SUT: no modinfo, the module found through modules.dep, a
/// gzip'ed /boot/symvers, and the release's stablelist installed on it.
fn rhel_like(list: &str) -> Scripted {
    let ko = e1000e();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&symvers(R56)).unwrap();
    let gz = gz.finish().unwrap();
    let boot = format!("/boot/symvers-{R56}.gz");
    Scripted::new("sut")
        .file("/proc/modules", PROC_MODULES)
        .file("/proc/sys/kernel/osrelease", format!("{R56}\n"))
        .file(
            &format!("/lib/modules/{R56}/modules.dep"),
            "kernel/fs/ext4/ext4.ko: kernel/fs/mbcache.ko\nextra/e1000e.ko:\n",
        )
        .file(&format!("/lib/modules/{R56}/extra/e1000e.ko"), ko.clone())
        .command(
            &format!("sha256sum /lib/modules/{R56}/extra/e1000e.ko"),
            0,
            &sha256sum_line(&ko, "x"),
            "",
        )
        .command(
            &format!("sha256sum {boot}"),
            0,
            &sha256sum_line(&gz, &boot),
            "",
        )
        .file(&boot, gz)
        .command("uname -m", 0, "x86_64\n", "")
        .file("/lib/modules/kabi-current/kabi_stablelist_x86_64", list)
}

#[test]
fn modules_dep_gzip_symvers_and_an_allowlist_on_the_sut() {
    let module = certlab_kabi::Module::parse(&e1000e(), "e1000e.ko").unwrap();
    let params = r#"allowlist = ["/lib/modules/kabi-current/kabi_stablelist_{machine}"]"#;

    // Every import on the list: pass, and the list was used.
    let mut full = "[rhel9_x86_64_kabi_stablelist]\n".to_string();
    for i in module.imports() {
        full.push_str(&format!("\t{}\n", i.name));
    }
    let (o, ev) = run(&rhel_like(&full), params).unwrap();
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains(&format!("per /boot/symvers-{R56}.gz")),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("vermagic not compared") || o.reason.contains("allowlist"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("imports checked against the KABI allowlist"),
        "{}",
        o.reason
    );
    assert!(files(&ev).contains(&"/lib/modules/kabi-current/kabi_stablelist_x86_64"));
    assert!(files(&ev).contains(&format!("/lib/modules/{R56}/modules.dep").as_str()));

    // Two imports off the list: fail naming them, kind allowlist.
    let dropped: Vec<&str> = module.imports().take(2).map(|i| i.name).collect();
    let short: String = full
        .lines()
        .filter(|l| !dropped.contains(&l.trim()))
        .map(|l| format!("{l}\n"))
        .collect();
    let (o, _) = run(&rhel_like(&short), params).unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    for d in &dropped {
        assert!(
            o.reason
                .contains(&format!("allowlist {d}: {d} is not on the KABI allowlist")),
            "{d}: {}",
            o.reason
        );
    }
}

#[test]
fn an_allowlist_the_sut_lacks_is_an_infrastructure_error() {
    let e = run(
        &sut(R56),
        r#"allowlist = ["/usr/share/kabi/{release}.toml"]"#,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("the KABI allowlist /usr/share/kabi/6.1.0-56-amd64.toml named by the plan is not on the target"),
        "{e}"
    );
}

#[test]
fn a_loaded_module_without_a_file_fails() {
    let m = Scripted::new("sut")
        .file(
            "/proc/modules",
            "ghost 16384 0 - Live 0xffffffffc0a21000 (OE)\n",
        )
        .file("/proc/sys/kernel/osrelease", format!("{R56}\n"))
        .file(
            &format!("/usr/src/linux-headers-{R56}/Module.symvers"),
            symvers(R56),
        );
    let (o, _) = run(&m, "").unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason.contains("ghost: its file is not found"),
        "{}",
        o.reason
    );
}

#[test]
fn server_basic_has_the_case_as_a_blocker() {
    let p = Plan::load("server-basic").unwrap();
    let c = p.cases.iter().find(|c| c.id == "kabi.out-of-tree").unwrap();
    assert_eq!(c.check, "kabi-out-of-tree");
    assert!(c.blocker);
    assert_eq!(c.timeout, Duration::from_secs(120));
}
