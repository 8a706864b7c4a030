//! Driver matching against a real kernel's `modules.alias` (a Debian
//! linux-image package unpacked by `scripts/fetch-kernel`, which runs
//! depmod on it): for every real dump that shows which driver the kernel
//! bound, the module(s) `modules.alias` names must agree with it, except
//! for drivers that cannot appear in `modules.alias` (out-of-tree, built
//! in), each listed below with the reason.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};

use certlab_hwdb::{identify, DriverMatch, Fact, Inventory, ModulesAlias, PciIds};

/// The kernel directory: `CERTLAB_TEST_KERNEL_DIR`, else the newest
/// `~/.cache/certlab/debian/linux-image-*/`. Never skips.
fn kernel_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("CERTLAB_TEST_KERNEL_DIR") {
        return PathBuf::from(d);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
        .map(|c| c.join("certlab/debian"));
    let mut found: Vec<PathBuf> = cache
        .and_then(|c| std::fs::read_dir(c).ok())
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("linux-image-"))
                && p.join("modules.alias").is_file()
        })
        .collect();
    found.sort();
    match found.pop() {
        Some(d) => d,
        None => panic!(
            "no real kernel for the driver-matching tests: set CERTLAB_TEST_KERNEL_DIR or run \
             scripts/fetch-kernel (it caches a Debian linux-image with its modules.alias under \
             ~/.cache/certlab/debian/)"
        ),
    }
}

fn modules_alias_text() -> String {
    let dir = kernel_dir();
    let p = dir.join("modules.alias");
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/fetch-kernel to fetch the kernel again)",
            p.display()
        )
    })
}

/// Bound drivers that no `modules.alias` line of this kernel can name, and why.
const NOT_IN_MODULES_ALIAS: &[(&str, &str)] = &[
    (
        "pcieport",
        "built in: drivers/pci/pcie/portdrv.c, CONFIG_PCIEPORTBUS is a bool, no module",
    ),
    // Drivers of the dumps' own (older) kernels that Linux 6.1 replaced or renamed.
    (
        "intel-pmt",
        "older kernel: drivers/mfd/intel_pmt.c (Linux 5.11-5.15), merged into intel_vsec in 5.16",
    ),
    (
        "iwlagn",
        "older kernel: the iwlwifi module and driver were named iwlagn in early 3.x kernels",
    ),
    (
        "HDA Intel",
        "older kernel: snd_hda_intel registered its pci_driver as \"HDA Intel\" before using KBUILD_MODNAME",
    ),
    (
        "nvidia",
        "out-of-tree: NVIDIA's driver, not part of the Debian kernel package",
    ),
    (
        "nvidia-nvswitch",
        "out-of-tree: the NVSwitch pci_driver of NVIDIA's nvidia.ko",
    ),
];

#[derive(Default)]
struct Tally {
    agree: usize,
    /// Bindings the evidence cannot judge (class not shown, nothing device-specific).
    unknown: usize,
    explained: Vec<String>,
    disagree: Vec<String>,
}

/// Module names built into the kernel image (`modules.builtin`), `-` → `_`.
fn builtin_modules() -> Vec<String> {
    let dir = kernel_dir().join("root/lib/modules");
    let Some(ver) = std::fs::read_dir(&dir)
        .ok()
        .and_then(|mut r| r.next())
        .and_then(|e| e.ok())
    else {
        return Vec::new();
    };
    let text = std::fs::read_to_string(ver.path().join("modules.builtin")).unwrap_or_default();
    text.lines()
        .filter_map(|l| l.rsplit('/').next())
        .map(|f| f.trim_end_matches(".ko").replace('-', "_"))
        .collect()
}

fn tally(name: &str, source: &str, text: String, alias: &str) -> Tally {
    let builtin = builtin_modules();
    let inv = Inventory {
        lspci: Some(Fact::new(source, text)),
        modules_alias: Some(Fact::new("modules.alias", alias.to_string())),
        ..Inventory::default()
    };
    let p = identify(&inv, PciIds::embedded());
    let mut t = Tally::default();
    for d in &p.pci_devices {
        let Some(bound) = d.driver_bound.as_deref() else {
            continue;
        };
        let line = format!(
            "{name} {} [{:04x}:{:04x}] class {:06x} bound {bound}, modules.alias: {:?}",
            d.address, d.vendor_id, d.device_id, d.class, d.driver_expected
        );
        if d.driver_match == Some(DriverMatch::Expected) {
            t.agree += 1;
        } else if d.driver_match == Some(DriverMatch::Unknown) {
            // /proc/bus/pci/devices: no class, and no device-specific alias.
            t.unknown += 1;
        } else if builtin
            .iter()
            .any(|m| certlab_hwdb::modalias::driver_is_module(bound, m))
        {
            t.explained
                .push(format!("{line} (built into this kernel: modules.builtin)"));
        } else if let Some((_, why)) = NOT_IN_MODULES_ALIAS.iter().find(|(n, _)| *n == bound) {
            t.explained.push(format!("{line} ({why})"));
        } else {
            t.disagree.push(line);
        }
    }
    t
}

#[test]
fn real_modules_alias_parses() {
    let text = modules_alias_text();
    let m = ModulesAlias::parse(&text);
    assert!(m.len() > 5000, "only {} pci aliases", m.len());
    // Full modalias strings, as the kernel prints them.
    let nvme = m.modules_for("pci:v0000144Dd0000A808sv0000144Dsd0000A801bc01sc08i02");
    assert_eq!(nvme, vec!["nvme".to_string()]);
    let xhci = m.modules_for("pci:v00008086d00001BCDsv00000000sd00000000bc0Csc03i30");
    assert_eq!(xhci, vec!["xhci_pci".to_string()]);
    let mlx = m.modules_for("pci:v000015B3d00001021sv000015B3sd00000041bc02sc00i00");
    assert_eq!(mlx, vec!["mlx5_core".to_string()]);
}

#[test]
fn h100_node_lspci_k_drivers_agree_with_real_modules_alias() {
    let alias = modules_alias_text();
    let text = std::fs::read_to_string(common::fixtures().join("lspci/lspci-vvv.txt"))
        .expect("lspci fixture");
    let t = tally("h100", "lspci -vvv", text, &alias);
    eprintln!(
        "h100 lspci -vvv: {} bound drivers agree, {} explained, {} disagree",
        t.agree,
        t.explained.len(),
        t.disagree.len()
    );
    for l in t.explained.iter().chain(&t.disagree) {
        eprintln!("  {l}");
    }
    assert!(t.disagree.is_empty(), "{:#?}", t.disagree);
    assert!(t.agree >= 20, "only {} agree", t.agree);
}

#[test]
fn proc_bus_pci_drivers_agree_with_real_modules_alias() {
    let alias = modules_alias_text();
    let mut total = Tally::default();
    for dir in common::machine_dirs() {
        let p = dir.join("proc-bus-pci-devices.txt");
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = tally(&name, "/proc/bus/pci/devices", text, &alias);
        total.agree += t.agree;
        total.unknown += t.unknown;
        total.explained.extend(t.explained);
        total.disagree.extend(t.disagree);
    }
    eprintln!(
        "/proc/bus/pci/devices dumps: {} bound drivers agree, {} explained, {} disagree, {} not judged (class not shown)",
        total.agree,
        total.explained.len(),
        total.disagree.len(),
        total.unknown
    );
    for l in total.explained.iter().chain(&total.disagree) {
        eprintln!("  {l}");
    }
    assert!(total.disagree.is_empty(), "{:#?}", total.disagree);
    assert!(total.agree >= 100, "only {} agree", total.agree);
}
