//! End-to-end tests of `certlab hwdb`: the real binary on real machine
//! dumps (hwdb/tests/fixtures, provenance in its PROVENANCE.tsv).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn certlab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("hwdb/tests/fixtures")
        .join(rel)
}

fn run(args: &[&str]) -> Output {
    certlab().args(args).output().expect("run certlab")
}

fn identify_json(args: &[&str]) -> Value {
    let mut a = vec!["hwdb", "identify", "--format", "json"];
    a.extend_from_slice(args);
    let out = run(&a);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn s<'a>(v: &'a Value, path: &str) -> Option<&'a str> {
    path.split('.')
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
}

#[test]
fn kunpeng_920_cpuinfo() {
    let p = fixture("machines/kunpeng--armsocs-hisilion-kunpeng-920/cpuinfo");
    let v = identify_json(&["--cpuinfo", path_str(&p)]);
    assert_eq!(s(&v, "cpu.family"), Some("kunpeng"));
    assert_eq!(s(&v, "cpu.vendor"), Some("HiSilicon"));
    assert_eq!(s(&v, "cpu.core"), Some("TSV110"));
    assert!(s(&v, "cpu.model_name").is_some());
    assert_eq!(
        v["evidence"]["cpu.family"].as_str(),
        Some(path_str(&p)),
        "evidence names the file: {}",
        v["evidence"]
    );
}

#[test]
fn taishan_200_dmidecode_system_and_cpu() {
    let p = fixture("machines/kunpeng--linuxhw-TaiShan-200-Model-2280-50ED10C1AEE2/dmidecode.txt");
    let v = identify_json(&["--dmidecode", path_str(&p)]);
    assert_eq!(s(&v, "cpu.family"), Some("kunpeng"));
    assert_eq!(s(&v, "cpu.core"), Some("TSV110"));
    assert_eq!(s(&v, "cpu.model_name"), Some("Kunpeng 920-4826"));
    assert!(
        s(&v, "system.product").is_some_and(|p| p.contains("TaiShan")),
        "{}",
        v["system"]
    );
    assert!(s(&v, "system.vendor").is_some());
    assert_eq!(v["evidence"]["system.product"].as_str(), Some(path_str(&p)));
}

#[test]
fn phytium_d2000_cpuinfo() {
    let p = fixture("machines/phytium--armsocs-phytium-d2000-8/cpuinfo");
    let v = identify_json(&["--cpuinfo", path_str(&p)]);
    assert_eq!(s(&v, "cpu.family"), Some("phytium"));
    assert_eq!(s(&v, "cpu.vendor"), Some("Phytium"));
    assert_eq!(s(&v, "cpu.core"), Some("FTC663"));
}

#[test]
fn loongson_3a5000_cpuinfo_and_proc_pci() {
    let dir = fixture("machines/loongson--ul-loongarch-loongson_3a5000_hv");
    let cpuinfo = dir.join("cpuinfo");
    let pci = dir.join("proc-bus-pci-devices.txt");
    let v = identify_json(&["--cpuinfo", path_str(&cpuinfo), "--lspci", path_str(&pci)]);
    assert_eq!(s(&v, "cpu.family"), Some("loongson"));
    assert_eq!(s(&v, "cpu.vendor"), Some("Loongson"));
    assert_eq!(s(&v, "cpu.core"), Some("LA464"));
    let devs = v["pci_devices"].as_array().expect("pci_devices");
    assert!(!devs.is_empty());
    // Loongson's PCI vendor id is 0014; ids are four hex digits.
    assert!(devs.iter().any(|d| d["vendor_id"] == "0014"), "{devs:#?}");
    for d in devs {
        for k in ["vendor_id", "device_id"] {
            let id = d[k].as_str().expect("hex string");
            assert_eq!(id.len(), 4, "{k} = {id}");
        }
    }
}

#[test]
fn h100_node_lspci_accelerators_and_fields() {
    let p = fixture("lspci/lspci-vvv.txt");
    let v = identify_json(&["--lspci", path_str(&p)]);
    let accs = v["accelerators"].as_array().expect("accelerators");
    let gpus: Vec<&Value> = accs.iter().filter(|a| a["vendor_id"] == "10de").collect();
    assert!(gpus.len() >= 8, "{accs:#?}");
    assert!(gpus.iter().all(|g| g["max_link_speed"] == "32GT/s"));
    let devs = v["pci_devices"].as_array().expect("pci_devices");
    let h100 = devs
        .iter()
        .find(|d| d["device_id"] == "2330")
        .expect("an H100");
    for k in [
        "vendor_id",
        "device_id",
        "vendor_name",
        "device_name",
        "class",
        "driver_expected",
        "driver_bound",
    ] {
        assert!(h100.get(k).is_some(), "missing {k}: {h100}");
    }
    assert_eq!(h100["driver_bound"], "nvidia");
    assert_eq!(h100["class"], "030200");
    assert!(v["evidence"].is_object());
}

#[test]
fn human_output_is_a_summary() {
    let p = fixture("machines/kunpeng--armsocs-hisilion-kunpeng-920/cpuinfo");
    let out = run(&["hwdb", "identify", "--cpuinfo", path_str(&p)]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("kunpeng") && text.contains("TSV110"),
        "{text}"
    );
}

#[test]
fn pci_lookup() {
    let out = run(&["hwdb", "pci", "10de:2330", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["vendor_id"], "10de");
    assert_eq!(v["device_id"], "2330");
    assert_eq!(v["vendor_name"], "NVIDIA Corporation");
    assert!(
        v["device_name"]
            .as_str()
            .is_some_and(|n| n.contains("H100")),
        "{v}"
    );
    let out = run(&["hwdb", "pci", "10de:2330"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("H100"));
    // An Ascend NPU: only the supplementary table knows it.
    let out = run(&["hwdb", "pci", "19e5:d801", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(v["accelerator"]["model"].as_str().is_some(), "{v}");
}

#[test]
fn usage_errors_exit_2() {
    let out = run(&["hwdb", "pci", "not-an-id"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["hwdb", "identify", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn malformed_or_missing_input_exits_3_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("not-dmidecode.txt");
    std::fs::write(&bad, b"\x00\x01\x02 this is not dmidecode output\n").expect("write");
    let out = run(&["hwdb", "identify", "--dmidecode", path_str(&bad)]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(path_str(&bad)), "{err}");

    let bad_lspci = dir.path().join("lspci.txt");
    std::fs::write(&bad_lspci, "hello\nworld\n").expect("write");
    let out = run(&["hwdb", "identify", "--lspci", path_str(&bad_lspci)]);
    assert_eq!(out.status.code(), Some(3));

    let missing = dir.path().join("missing-cpuinfo");
    let out = run(&["hwdb", "identify", "--cpuinfo", path_str(&missing)]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing-cpuinfo"), "{err}");
}

#[test]
fn sysfs_snapshot_dir() {
    // A sysfs snapshot as `--sysfs` expects it: class/dmi/id from a real
    // DGX Spark (GB10) dump, copied into a temporary root.
    let src = fixture("machines/nvidia-grace--hwloc-nvidia-dgx-gb10/sys-class-dmi-id");
    let root = tempfile::tempdir().expect("tempdir");
    let dmi = root.path().join("class/dmi/id");
    std::fs::create_dir_all(&dmi).expect("mkdir");
    for e in std::fs::read_dir(&src).expect("fixture dir") {
        let e = e.expect("entry");
        if e.path().is_file() {
            std::fs::copy(e.path(), dmi.join(e.file_name())).expect("copy");
        }
    }
    let v = identify_json(&["--sysfs", path_str(root.path())]);
    assert!(s(&v, "system.vendor").is_some(), "{}", v["system"]);
    assert_eq!(
        v["evidence"]["system.vendor"].as_str(),
        Some("/sys/class/dmi/id")
    );
    let out = run(&[
        "hwdb",
        "identify",
        "--sysfs",
        path_str(&root.path().join("nope")),
    ]);
    assert_eq!(out.status.code(), Some(3));
}

/// A machine known only by its SMBIOS type 4 record: HiSilicon's
/// Cortex-A72 based Hi16xx is kunpeng, not arm-other (issue 8 item 10).
#[test]
fn hi16xx_known_only_by_dmidecode_is_kunpeng() {
    let p = fixture("machines/kunpeng--dmi-reconstructed-hi16xx/dmidecode.txt");
    let v = identify_json(&["--dmidecode", path_str(&p)]);
    assert_eq!(s(&v, "cpu.family"), Some("kunpeng"));
    assert_eq!(s(&v, "cpu.vendor"), Some("HiSilicon"));
    assert_eq!(s(&v, "cpu.core"), Some("Cortex-A72"));
}

/// The Debian kernel scripts/fetch-kernel caches (modules.alias and the
/// unpacked modules.builtin); fails naming the script when missing.
fn fetched_kernel() -> (PathBuf, PathBuf) {
    let cache = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cache/certlab/debian"))
        .expect("HOME");
    let dir = std::fs::read_dir(&cache)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.join("modules.alias").is_file())
        .unwrap_or_else(|| panic!("no kernel in {}: run scripts/fetch-kernel", cache.display()));
    let builtin = std::fs::read_dir(dir.join("root/lib/modules"))
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-kernel)", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path().join("modules.builtin"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no modules.builtin under {}: run scripts/fetch-kernel",
                dir.display()
            )
        });
    (dir.join("modules.alias"), builtin)
}

/// --modules-builtin: bridges bound to shpchp (built into Debian's kernel)
/// are `built_in`, not `other`; a file that is no modules.builtin is bad input.
#[test]
fn modules_builtin_makes_a_built_in_driver_built_in() {
    let (alias, builtin) = fetched_kernel();
    let pci =
        fixture("machines/loongson--ul-loongarch-kvm_on_loongson_3c6000/proc-bus-pci-devices.txt");
    let v = identify_json(&[
        "--lspci",
        path_str(&pci),
        "--modules-alias",
        path_str(&alias),
        "--modules-builtin",
        path_str(&builtin),
    ]);
    let devs = v["pci_devices"].as_array().expect("pci_devices");
    let shpc: Vec<&Value> = devs
        .iter()
        .filter(|d| d["driver_bound"].as_str() == Some("shpchp"))
        .collect();
    assert!(!shpc.is_empty(), "{devs:?}");
    for d in shpc {
        assert_eq!(d["driver_match"].as_str(), Some("built_in"), "{d}");
    }
    let out = run(&["hwdb", "identify", "--modules-builtin", path_str(&alias)]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("modules.builtin"), "{err}");
}
