//! Property tests: the parsers take arbitrary text (and arbitrary bytes,
//! read the way identification reads dumps) without panicking, and so
//! does identification on any mix of such inputs.
//!
//! Besides fully random text, inputs are built from line fragments of the
//! real formats with random pieces spliced in, so the deeper branches of
//! each parser (ids, brackets, indentation, nested records) are reached.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use certlab_hwdb::lspci::{parse_lspci, parse_proc_bus_pci_devices};
use certlab_hwdb::modalias::fnmatch;
use certlab_hwdb::{
    identify, normalize_link_speed, CpuInfo, CpuidDump, Dmi, Fact, Inventory, Lscpu, MemInfo,
    ModulesAlias, OsRelease, PciIds, PciMatchKey,
};
use proptest::prelude::*;

/// Fragments of real lines of every format the crate parses.
const FRAGMENTS: &[&str] = &[
    "processor\t: 0",
    "processor : 7",
    "vendor_id\t: HygonGenuine",
    "cpu family\t: 24",
    "model\t\t: 1",
    "CPU implementer\t: 0x48",
    "CPU part\t: 0xd01",
    "CPU part : 0x663",
    "isa\t\t: rv64imafdc_zicsr",
    "mvendorid\t: 0x5b7",
    "uarch\t\t: thead,c910",
    "Model Name\t\t: Loongson-3A5000",
    "PRID\t\t\t: Loongson-64bit (0x0014c010)",
    "flags\t\t: fpu vme de pse hypervisor",
    "...",
    "Architecture:            aarch64",
    "  Model name:            Kunpeng-920",
    "Socket(s):               2",
    "CPU(s):                  128",
    "Hypervisor vendor:       KVM",
    "# CPU,Core,Socket",
    "Handle 0x0004, DMI type 4, 48 bytes",
    "Handle 0x0001, DMI type 1, 27 bytes",
    "Handle 0x0011, DMI type 17, 92 bytes",
    "Handle 0xZZZZ, DMI type 300, 1 bytes",
    "Processor Information",
    "\tVersion: Kunpeng 920-4826",
    "\tManufacturer: HiSilicon",
    "\tID: 10 D0 1F 48 00 00 00 00",
    "\tSignature: Family 24, Model 1, Stepping 1",
    "\tSize: 32 GB",
    "\tSize: 16384 MB",
    "\tSpeed: 2933 MT/s",
    "\tFlags:",
    "\t\tFPU (Floating-point unit on-chip)",
    "\tProduct Name: TaiShan 200 (Model 2280)",
    "00:1f.2 SATA controller [0106]: Intel Corporation Device [8086:a282] (rev 10) (prog-if 01 [AHCI 1.0])",
    "19:00.0 3D controller: NVIDIA Corporation Device 2330 (rev a1)",
    "0000:3b:00.0 Ethernet controller [0200]: Mellanox Technologies MT2910 [15b3:1021]",
    "zz:zz.z Bogus: [",
    "\tSubsystem: NVIDIA Corporation Device [10de:16c1]",
    "\tKernel driver in use: nvidia",
    "\tKernel modules: nvidiafb, nouveau",
    "\tLnkCap:\tPort #0, Speed 32GT/s, Width x16",
    "\tLnkSta:\tSpeed 16GT/s (downgraded), Width x8 (downgraded)",
    "\tControl: I/O- Mem+ BusMaster+",
    "Slot:\t0000:00:00.0",
    "Class:\tHost bridge [0600]",
    "Vendor:\tIntel Corporation [8086]",
    "Device:\tDevice [1bbc]",
    "ProgIf:\t30",
    "Driver:\txhci_hcd",
    "0008\t80863408\t48\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\tpcieport",
    "alias pci:v000010DEd*sv*sd*bc03sc*i* nouveau",
    "alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci",
    "alias pci:v0000AAAAd0000BB[0-9]?sv*sd*bc*sc*i* hand",
    "alias pci:v[ d*[!]] x",
    "alias vfio_pci:v*d* vfio",
    "# Version: 2026.08.22",
    "10de  NVIDIA Corporation",
    "\t2330  GH100 [H100 SXM5 80GB]",
    "\t\t10de 16c1  H100 SXM5 80GB",
    "C 03  Display controller",
    "\t02  3D controller",
    "\t\t01  prog",
    "X 01 other list",
    "NAME=\"Debian GNU/Linux\"",
    "ID=debian",
    "VERSION_ID='12'",
    "MemTotal:       131072000 kB",
    "CPUID 0x00000000 0x00000000: 0x0000000d 0x6f677948 0x656e6975 0x6e65476e",
    "",
    "\t",
    ":",
    "[",
    "]",
    "(rev ",
    "(prog-if ",
    "0x",
    "\u{00e9}\u{4e2d}",
];

/// Text made of real fragments with random splices.
fn formatish() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        4 => proptest::sample::select(FRAGMENTS).prop_map(str::to_string),
        1 => any::<String>(),
        1 => (proptest::sample::select(FRAGMENTS), any::<String>(), 0usize..80).prop_map(
            |(f, junk, at)| {
                let mut cut = at.min(f.len());
                while !f.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}{junk}", &f[..cut])
            }
        ),
    ];
    proptest::collection::vec(line, 0..40).prop_map(|v| v.join("\n"))
}

/// Arbitrary bytes, read as dumps are read (lossy UTF-8).
fn bytes_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<u8>(), 0..2048)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![formatish(), bytes_text(), any::<String>()]
}

fn parse_everything(t: &str) {
    let _ = CpuInfo::parse(t);
    let _ = Lscpu::parse(t);
    let _ = CpuidDump::parse(t);
    let d = Dmi::parse(t);
    let _ = d.system_profile();
    let _ = d.processors();
    let _ = d.memory_devices();
    let _ = MemInfo::parse(t).mem_total_bytes();
    let o = OsRelease::parse(t);
    let _ = (o.id(), o.version_id(), o.pretty_name(), o.id_like());
    let _ = parse_lspci(t);
    let _ = parse_proc_bus_pci_devices(t);
    let m = ModulesAlias::parse(t);
    let _ = m.modules_for(t);
    let _ = m.modules_for_key(&PciMatchKey::default());
    let _ = PciIds::parse(t);
    let _ = PciIds::newer_of(t, PciIds::embedded());
    let _ = normalize_link_speed(t);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parsers_take_any_text(t in any_text()) {
        parse_everything(&t);
    }

    #[test]
    fn identification_takes_any_inventory(
        cpuinfo in any_text(),
        lscpu in any_text(),
        dmidecode in any_text(),
        lspci in any_text(),
        alias in any_text(),
    ) {
        let inv = Inventory {
            cpuinfo: Some(Fact::new("cpuinfo", cpuinfo)),
            lscpu: Some(Fact::new("lscpu", lscpu)),
            dmidecode: Some(Fact::new("dmidecode", dmidecode)),
            lspci: Some(Fact::new("lspci", lspci)),
            modules_alias: Some(Fact::new("modules.alias", alias)),
            ..Inventory::default()
        };
        let _ = identify(&inv, PciIds::embedded());
    }

    #[test]
    fn fnmatch_takes_any_pattern(p in any_text(), s in any_text()) {
        let _ = fnmatch(p.as_bytes(), s.as_bytes());
        // A pattern always matches itself when it has no special characters.
        if !p.contains(['*', '?', '[', '\\']) {
            prop_assert!(fnmatch(p.as_bytes(), p.as_bytes()));
        }
    }

    #[test]
    fn modules_alias_lookup_takes_any_key(
        alias in formatish(),
        v in any::<u16>(), d in any::<u16>(),
        sv in any::<Option<u16>>(), sd in any::<Option<u16>>(),
        bc in any::<Option<u8>>(), sc in any::<Option<u8>>(), pi in any::<Option<u8>>(),
    ) {
        let m = ModulesAlias::parse(&alias);
        let key = PciMatchKey { vendor: v, device: d, subvendor: sv, subdevice: sd,
            base_class: bc, sub_class: sc, prog_if: pi };
        let _ = m.modules_for_key(&key);
        if let Some(ma) = key.modalias() {
            let _ = m.modules_for(&ma);
        }
    }
}
