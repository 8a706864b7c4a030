//! Profile details (PCI, accelerators, DMI, memory, counts, evidence)
//! checked against real dumps in `tests/fixtures`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::borrow::Cow;

use certlab_hwdb::lspci::parse_lspci;
use certlab_hwdb::{identify, DriverMatch, Fact, Family, Inventory, PciIds};

fn machine(name: &str) -> Inventory {
    common::load_inventory(&common::fixtures().join("machines").join(name))
}

fn lspci_fixture(name: &str) -> String {
    std::fs::read_to_string(common::fixtures().join("lspci").join(name)).expect("lspci fixture")
}

#[test]
fn lspci_names_match_pci_ids() {
    // Every `-nn` line: our vendor name is the prefix of lspci's text, and
    // lspci's device text is our pci.ids name unless lspci's own (older)
    // pci.ids lacked the device ("Device xxxx") or named it differently
    // then; those differences are counted and must stay rare.
    let ids = PciIds::embedded();
    let old = PciIds::parse(
        &std::fs::read_to_string(common::fixtures().join("ids/pci.ids.debian-bookworm"))
            .expect("debian pci.ids"),
    )
    .expect("debian pci.ids parses");
    let mut texts = vec![
        lspci_fixture("lspci.nn.a100.txt"),
        lspci_fixture("lspci.nn.a10.txt"),
    ];
    for d in common::machine_dirs() {
        if let Some(f) = common::load_inventory(&d)
            .lspci
            .filter(|f| f.text.contains(" ["))
        {
            texts.push(f.text);
        }
    }
    let (mut checked, mut named) = (0, 0);
    let mut unmatched = Vec::new();
    for t in &texts {
        for d in parse_lspci(t) {
            let (Some(v), Some(dev)) = (d.vendor_id, d.device_id) else {
                continue;
            };
            let desc = d.description.clone().unwrap_or_default();
            let vname = [ids.vendor_name(v), old.vendor_name(v)]
                .into_iter()
                .flatten()
                .find(|n| desc.starts_with(n))
                .unwrap_or_else(|| {
                    panic!("{}: {desc:?} vs vendor {:?}", d.address, ids.vendor_name(v))
                });
            checked += 1;
            let rest = desc[vname.len()..].trim();
            if rest == "Device" || rest.starts_with("Device ") {
                continue;
            }
            let new = ids.device_name(v, dev);
            let then = old.device_name(v, dev);
            named += 1;
            if new != Some(rest) && then != Some(rest) {
                // Named by neither copy: lspci ran with a third version.
                unmatched.push(format!("{}: lspci {rest:?}, pci.ids {new:?}", d.address));
            }
        }
    }
    assert!(checked >= 100, "checked {checked}");
    assert!(
        unmatched.len() * 10 <= named,
        "{} of {named}: {unmatched:#?}",
        unmatched.len()
    );
}

#[test]
fn newer_pci_ids_wins() {
    let debian = std::fs::read_to_string(common::fixtures().join("ids/pci.ids.debian-bookworm"))
        .expect("debian");
    let emb = PciIds::embedded();
    assert_eq!(emb.version.as_deref(), Some("2026.08.22"));
    assert!(matches!(
        PciIds::newer_of(&debian, emb).expect("parses"),
        Cow::Borrowed(_)
    ));
    let old = PciIds::parse(&debian).expect("parses");
    assert_eq!(old.version.as_deref(), Some("2023.04.10"));
    let text = include_str!("../data/pci.ids");
    assert!(matches!(
        PciIds::newer_of(text, &old).expect("parses"),
        Cow::Owned(_)
    ));
    // Class and prog-if names as lspci prints them.
    assert_eq!(
        emb.class_name(0x010802),
        Some("Non-Volatile memory controller")
    );
    assert_eq!(emb.prog_if_name(0x010802), Some("NVM Express"));
}

#[test]
fn h100_node_lspci_vvv_accelerators_links_and_drivers() {
    let inv = Inventory {
        lspci: Some(Fact::new("lspci -vvv", lspci_fixture("lspci-vvv.txt"))),
        ..Inventory::default()
    };
    let p = identify(&inv, PciIds::embedded());
    let gpus: Vec<_> = p
        .accelerators
        .iter()
        .filter(|a| a.vendor_id == 0x10de)
        .collect();
    assert_eq!(gpus.len(), 8, "{:#?}", p.accelerators);
    for g in &gpus {
        assert_eq!(g.device_id, 0x2330);
        assert_eq!(g.model, "GH100 [H100 SXM5 80GB]");
        assert_eq!(g.max_link_speed.as_deref(), Some("32GT/s"));
        assert_eq!(g.max_link_width.as_deref(), Some("x16"));
        assert!(g.link_speed.is_some() && g.link_width.is_some());
    }
    // No modules.alias in this inventory: matching is unknown, binding is shown.
    assert!(p
        .pci_devices
        .iter()
        .all(|d| d.driver_match == Some(DriverMatch::Unknown)));
    assert!(
        p.pci_devices
            .iter()
            .filter(|d| d.driver_bound.as_deref() == Some("nvidia"))
            .count()
            >= 8
    );
    assert_eq!(
        p.evidence.get("pci_devices").map(String::as_str),
        Some("lspci -vvv")
    );
}

#[test]
fn lspci_kernel_modules_agree_with_bound_drivers() {
    // lspci -k computes "Kernel modules" from the SUT's modules.alias. Our
    // module-vs-driver rule must call each bound driver Expected when lspci
    // listed a module for it, except drivers that are not modules.alias
    // material (vfio-pci binds by request, pcieport is built in).
    use certlab_hwdb::modalias::driver_match;
    let devs = parse_lspci(&lspci_fixture("lspci-vvv.txt"));
    let mut agreed = 0;
    let mut other = Vec::new();
    for d in devs.iter().filter(|d| !d.modules.is_empty()) {
        let Some(drv) = d.driver.as_deref() else {
            continue;
        };
        let m = driver_match(&d.modules, Some(drv), true, d.binding_known);
        if drv == "vfio-pci" || drv == "pcieport" {
            continue;
        }
        if m == DriverMatch::Expected {
            agreed += 1;
        } else {
            other.push(format!("{} {drv} {:?}", d.address, d.modules));
        }
    }
    // isst_if_mmio registers its pci_driver as "isst_if_pci" (read from the
    // module's string table): a name difference, not a disagreement.
    assert!(agreed >= 20, "agreed {agreed}");
    assert!(other.is_empty(), "{other:#?}");
}

#[test]
fn a100_lspci_keeps_domains() {
    let inv = Inventory {
        lspci: Some(Fact::new("lspci -nn", lspci_fixture("lspci.nn.a100.txt"))),
        ..Inventory::default()
    };
    let p = identify(&inv, PciIds::embedded());
    let a: Vec<&str> = p.accelerators.iter().map(|a| a.address.as_str()).collect();
    assert_eq!(a.len(), 8);
    assert!(a.contains(&"0001:00:00.0") && a.contains(&"000e:00:00.0"));
    let a10 = identify(
        &Inventory {
            lspci: Some(Fact::new("lspci -nn", lspci_fixture("lspci.nn.a10.txt"))),
            ..Inventory::default()
        },
        PciIds::embedded(),
    );
    // A10 (3D controller) and the virtio GPU (VGA) are both display class.
    let models: Vec<&str> = a10.accelerators.iter().map(|a| a.model.as_str()).collect();
    assert!(models.contains(&"GA102GL [A10]"), "{models:?}");
    assert!(a10
        .pci_devices
        .iter()
        .any(|d| d.address == "0000:00:1f.2" && d.class == 0x010600));
}

#[test]
fn taishan_dmidecode_system_memory_and_sockets() {
    let p = identify(
        &machine("kunpeng--linuxhw-TaiShan-200-Model-2280-50ED10C1AEE2"),
        PciIds::embedded(),
    );
    assert_eq!(p.system.vendor.as_deref(), Some("Huawei"));
    assert_eq!(
        p.system.product.as_deref(),
        Some("TaiShan 200 (Model 2280)")
    );
    assert_eq!(p.system.board_name.as_deref(), Some("BC82AMDDA"));
    assert_eq!(
        p.system.chassis_type.as_deref(),
        Some("Main Server Chassis")
    );
    assert_eq!(p.system.bios_version.as_deref(), Some("1.25"));
    assert_eq!(p.system.sku, None, "placeholder SKU dropped");
    assert_eq!(p.cpu.sockets, Some(2));
    assert_eq!(p.cpu.cores, Some(96));
    let first = p.memory.devices.first().expect("a DIMM");
    assert_eq!(first.size_bytes, 32 << 30);
    assert_eq!(first.speed_mts, Some(2933));
    assert_eq!(first.part_number.as_deref(), Some("HMA84GR7JJR4N-WM"));
    assert_eq!(
        p.memory.installed_bytes,
        Some(p.memory.devices.iter().map(|d| d.size_bytes).sum())
    );
    assert_eq!(
        p.evidence.get("cpu.family").map(String::as_str),
        Some("dmidecode")
    );
}

#[test]
fn counts_from_complete_dumps_only() {
    let epyc = identify(&machine("amd--ul-x86_64-epyc_7451"), PciIds::embedded());
    assert_eq!(epyc.cpu.threads, Some(96));
    assert_eq!(epyc.cpu.sockets, Some(2));
    assert_eq!(epyc.cpu.cores, Some(48));
    assert_eq!(epyc.cpu.microcode.len(), 96);
    // archspec files hold the first CPU of a bigger machine: x86 `siblings` shows it.
    let cut = identify(
        &machine("intel--archspec-linux-unknown-sapphirerapids"),
        PciIds::embedded(),
    );
    assert_eq!(cut.cpu.threads, None);
    assert!(cut.cpu.isa.iter().any(|f| f == "avx512f"));
    // Elided pasted dump ("...") is not counted.
    let grace = identify(
        &machine("nvidia-grace--armsocs-nvidia-grace"),
        PciIds::embedded(),
    );
    assert_eq!(grace.cpu.threads, None);
    let lpar = identify(&machine("s390--ul-s390-lpar"), PciIds::embedded());
    assert_eq!(lpar.cpu.family, Family::S390);
    assert_eq!(lpar.cpu.threads, Some(20));
}

#[test]
fn dgx_spark_dmi_sysfs_and_evidence() {
    let p = identify(
        &machine("nvidia-grace--hwloc-nvidia-dgx-gb10"),
        PciIds::embedded(),
    );
    assert_eq!(p.cpu.family, Family::NvidiaGrace);
    assert_eq!(p.system.vendor.as_deref(), Some("NVIDIA"));
    assert_eq!(p.system.family.as_deref(), Some("DGX Spark"));
    assert_eq!(
        p.system.chassis_type.as_deref(),
        Some("Main Server Chassis")
    );
    assert_eq!(
        p.evidence.get("system.vendor").map(String::as_str),
        Some("/sys/class/dmi/id")
    );
    assert_eq!(
        p.evidence.get("cpu.family").map(String::as_str),
        Some("/sys/class/dmi/id")
    );
    assert_eq!(
        p.evidence.get("cpu.core").map(String::as_str),
        Some("/proc/cpuinfo")
    );
    assert_eq!(p.cpu.threads, Some(20));
}

#[test]
fn proc_bus_pci_devices_and_hypervisors() {
    let p = identify(&machine("x86-virt--ul-vbox-win"), PciIds::embedded());
    assert_eq!(p.system.hypervisor.as_deref(), Some("Oracle"));
    assert!(!p.pci_devices.is_empty());
    assert!(p.pci_devices.iter().all(|d| d.address.starts_with("0000:")));
    assert!(
        p.pci_devices.iter().any(|d| d.vendor_id == 0x80ee),
        "VirtualBox devices"
    );
    let ci = identify(&machine("ci--certlab-ci-machine"), PciIds::embedded());
    assert_eq!(ci.cpu.family, Family::Amd);
    assert!(ci.system.hypervisor.is_some());
}
