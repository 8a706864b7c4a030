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
    /// Bound to a driver built into the kernel (`DriverMatch::BuiltIn`).
    builtin: Vec<String>,
    explained: Vec<String>,
    disagree: Vec<String>,
}

/// The kernel's `modules.builtin` (as `scripts/fetch-kernel` unpacks it
/// under `root/lib/modules/VER/`). Missing data fails, naming the script:
/// an empty list would let every built-in driver pass as "explained".
fn modules_builtin_text() -> String {
    let dir = kernel_dir().join("root/lib/modules");
    let ver = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run scripts/fetch-kernel to unpack the kernel with its modules.builtin)",
                dir.display()
            )
        })
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "{}: no kernel version directory (run scripts/fetch-kernel)",
                dir.display()
            )
        });
    let p = ver.join("modules.builtin");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/fetch-kernel to fetch the kernel again)",
            p.display()
        )
    });
    assert!(
        text.lines().count() > 100,
        "{}: only {} lines, not a distribution kernel's modules.builtin (run scripts/fetch-kernel)",
        p.display(),
        text.lines().count()
    );
    text
}

fn tally(name: &str, source: &str, text: String, alias: &str, builtin: &str) -> Tally {
    let inv = Inventory {
        lspci: Some(Fact::new(source, text)),
        modules_alias: Some(Fact::new("modules.alias", alias.to_string())),
        modules_builtin: Some(Fact::new("modules.builtin", builtin.to_string())),
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
        } else if d.driver_match == Some(DriverMatch::BuiltIn) {
            t.builtin.push(line);
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
    let t = tally("h100", "lspci -vvv", text, &alias, &modules_builtin_text());
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
    let builtin = modules_builtin_text();
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
        let t = tally(&name, "/proc/bus/pci/devices", text, &alias, &builtin);
        total.agree += t.agree;
        total.unknown += t.unknown;
        total.builtin.extend(t.builtin);
        total.explained.extend(t.explained);
        total.disagree.extend(t.disagree);
    }
    eprintln!(
        "/proc/bus/pci/devices dumps: {} bound drivers agree, {} built in, {} explained, {} disagree, {} not judged (class not shown)",
        total.agree,
        total.builtin.len(),
        total.explained.len(),
        total.disagree.len(),
        total.unknown
    );
    for l in total.explained.iter().chain(&total.disagree) {
        eprintln!("  {l}");
    }
    assert!(total.disagree.is_empty(), "{:#?}", total.disagree);
    assert!(total.agree >= 100, "only {} agree", total.agree);
    // The LoongArch KVM guest's bridges (shpchp, built into Debian's kernel).
    assert!(
        !total.builtin.is_empty(),
        "no built-in driver among the dumps"
    );
}

/// A device bound to a driver the kernel has built in (listed in its
/// `modules.builtin`, never in `modules.alias`) is the kernel's own driver:
/// `BuiltIn`, not `Other`. The real dump: a LoongArch KVM guest whose PCI
/// bridges are bound to `shpchp`, which Debian builds in.
#[test]
fn a_driver_built_into_the_kernel_is_builtin_not_other() {
    let alias = modules_alias_text();
    let builtin = modules_builtin_text();
    assert!(
        certlab_hwdb::modalias::builtin_modules(&builtin)
            .iter()
            .any(|m| m == "shpchp"),
        "this kernel's modules.builtin lacks shpchp"
    );
    let dump = common::fixtures()
        .join("machines/loongson--ul-loongarch-kvm_on_loongson_3c6000/proc-bus-pci-devices.txt");
    let text = std::fs::read_to_string(&dump).expect("dump");
    let identify_with = |builtin: Option<&str>| {
        let inv = Inventory {
            lspci: Some(Fact::new("/proc/bus/pci/devices", text.clone())),
            modules_alias: Some(Fact::new("modules.alias", alias.clone())),
            modules_builtin: builtin.map(|b| Fact::new("modules.builtin", b.to_string())),
            ..Inventory::default()
        };
        identify(&inv, PciIds::embedded())
    };
    let with = identify_with(Some(&builtin));
    let shpc: Vec<_> = with
        .pci_devices
        .iter()
        .filter(|d| d.driver_bound.as_deref() == Some("shpchp"))
        .collect();
    assert!(
        !shpc.is_empty(),
        "no device bound to shpchp in {}",
        dump.display()
    );
    for d in &shpc {
        assert_eq!(d.driver_match, Some(DriverMatch::BuiltIn), "{}", d.address);
    }
    assert_eq!(
        with.evidence
            .get("pci_devices.driver_builtin")
            .map(String::as_str),
        Some("modules.builtin")
    );
    // Without modules.builtin the same binding cannot be called built in.
    let without = identify_with(None);
    for d in without
        .pci_devices
        .iter()
        .filter(|d| d.driver_bound.as_deref() == Some("shpchp"))
    {
        assert_ne!(d.driver_match, Some(DriverMatch::BuiltIn), "{}", d.address);
    }
}
