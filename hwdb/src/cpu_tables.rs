//! Numeric CPU identification tables. Every entry names its source.
//!
//! Sources (abbreviated in the comments):
//! - `cputype.h`: Linux `arch/arm64/include/asm/cputype.h` (MIDR implementer
//!   and part numbers, `ARM_CPU_IMP_*`, `*_CPU_PART_*`), up to v6.18.
//! - `lscpu-arm.c`: util-linux `sys-utils/lscpu-arm.c` (implementer and part
//!   names, including Phytium `ft_part` and HiSilicon `hisi_part`).
//! - `intel-family.h`: Linux `arch/x86/include/asm/intel-family.h`.
//! - AMD: family/model ranges as used by Linux `arch/x86/kernel/cpu/amd.c`
//!   (`init_amd_zen*`, `bsp_init_amd`) and AMD's revision guides.
//! - `vendorid_list.h`: Linux `arch/riscv/include/asm/vendorid_list.h`.
//! - `reg.h`: Linux `arch/powerpc/include/asm/reg.h` (`PVR_*`).
//! - `cpu.h (loongarch)`: Linux `arch/loongarch/include/asm/cpu.h`
//!   (`PRID_SERIES_LA264/LA364/LA464/LA664`) and Loongson's product briefs
//!   for which SoC uses which core.
//! - s390: machine types as printed by util-linux `lscpu` / IBM's
//!   "IBM Z machine types" table.

/// ARM `CPU implementer` codes → vendor name (cputype.h `ARM_CPU_IMP_*`, lscpu-arm.c `hw_implementer`).
pub const ARM_IMPLEMENTERS: &[(u8, &str)] = &[
    (0x41, "ARM"),
    (0x42, "Broadcom"),
    (0x43, "Cavium"),
    (0x44, "DEC"),
    (0x46, "Fujitsu"),
    (0x48, "HiSilicon"),
    (0x49, "Infineon"),
    (0x4d, "Motorola/Freescale"),
    (0x4e, "NVIDIA"),
    (0x50, "APM"),
    (0x51, "Qualcomm"),
    (0x53, "Samsung"),
    (0x56, "Marvell"),
    (0x61, "Apple"),
    (0x66, "Faraday"),
    (0x69, "Intel"),
    (0x6d, "Microsoft"),
    (0x70, "Phytium"),
    (0xc0, "Ampere"),
];

/// `(implementer, part, core name)`.
pub const ARM_PARTS: &[(u8, u16, &str)] = &[
    // ARM Ltd (cputype.h ARM_CPU_PART_*, lscpu-arm.c arm_part)
    (0x41, 0xc05, "Cortex-A5"),
    (0x41, 0xc07, "Cortex-A7"),
    (0x41, 0xc08, "Cortex-A8"),
    (0x41, 0xc09, "Cortex-A9"),
    (0x41, 0xc0d, "Cortex-A17"),
    (0x41, 0xc0e, "Cortex-A17"),
    (0x41, 0xc0f, "Cortex-A15"),
    (0x41, 0xd01, "Cortex-A32"),
    (0x41, 0xd02, "Cortex-A34"),
    (0x41, 0xd03, "Cortex-A53"),
    (0x41, 0xd04, "Cortex-A35"),
    (0x41, 0xd05, "Cortex-A55"),
    (0x41, 0xd06, "Cortex-A65"),
    (0x41, 0xd07, "Cortex-A57"),
    (0x41, 0xd08, "Cortex-A72"),
    (0x41, 0xd09, "Cortex-A73"),
    (0x41, 0xd0a, "Cortex-A75"),
    (0x41, 0xd0b, "Cortex-A76"),
    (0x41, 0xd0c, "Neoverse-N1"),
    (0x41, 0xd0d, "Cortex-A77"),
    (0x41, 0xd0e, "Cortex-A76AE"),
    (0x41, 0xd40, "Neoverse-V1"),
    (0x41, 0xd41, "Cortex-A78"),
    (0x41, 0xd42, "Cortex-A78AE"),
    (0x41, 0xd43, "Cortex-A65AE"),
    (0x41, 0xd44, "Cortex-X1"),
    (0x41, 0xd46, "Cortex-A510"),
    (0x41, 0xd47, "Cortex-A710"),
    (0x41, 0xd48, "Cortex-X2"),
    (0x41, 0xd49, "Neoverse-N2"),
    (0x41, 0xd4a, "Neoverse-E1"),
    (0x41, 0xd4b, "Cortex-A78C"),
    (0x41, 0xd4c, "Cortex-X1C"),
    (0x41, 0xd4d, "Cortex-A715"),
    (0x41, 0xd4e, "Cortex-X3"),
    (0x41, 0xd4f, "Neoverse-V2"),
    (0x41, 0xd80, "Cortex-A520"),
    (0x41, 0xd81, "Cortex-A720"),
    (0x41, 0xd82, "Cortex-X4"),
    (0x41, 0xd83, "Neoverse-V3AE"),
    (0x41, 0xd84, "Neoverse-V3"),
    (0x41, 0xd85, "Cortex-X925"),
    (0x41, 0xd87, "Cortex-A725"),
    (0x41, 0xd88, "Cortex-A520AE"),
    (0x41, 0xd89, "Cortex-A720AE"),
    (0x41, 0xd8b, "C1-Pro"),
    (0x41, 0xd8c, "C1-Ultra"),
    (0x41, 0xd8e, "Neoverse-N3"),
    // Broadcom (lscpu-arm.c brcm_part)
    (0x42, 0x00f, "Brahma-B15"),
    (0x42, 0x100, "Brahma-B53"),
    (0x42, 0x516, "ThunderX2"),
    // Cavium / Marvell (cputype.h CAVIUM_CPU_PART_*, lscpu-arm.c cavium_part)
    (0x43, 0x0a0, "ThunderX"),
    (0x43, 0x0a1, "ThunderX-88XX"),
    (0x43, 0x0a2, "ThunderX-81XX"),
    (0x43, 0x0a3, "ThunderX-83XX"),
    (0x43, 0x0af, "ThunderX2-99xx"),
    (0x43, 0x0b0, "OcteonTX2"),
    (0x43, 0x0b1, "OcteonTX2-98XX"),
    (0x43, 0x0b2, "OcteonTX2-96XX"),
    (0x43, 0x0b3, "OcteonTX2-95XX"),
    (0x43, 0x0b4, "OcteonTX2-95XXN"),
    (0x43, 0x0b5, "OcteonTX2-95XXMM"),
    (0x43, 0x0b6, "OcteonTX2-95XXO"),
    (0x43, 0x0b8, "ThunderX3-T110"),
    // Fujitsu (cputype.h FUJITSU_CPU_PART_A64FX)
    (0x46, 0x001, "A64FX"),
    // HiSilicon (cputype.h HISI_CPU_PART_TSV110/HIP09/HIP12; lscpu-arm.c hisi_part)
    (0x48, 0xd01, "TSV110"),
    (0x48, 0xd02, "HIP09"),
    (0x48, 0xd06, "HIP12"),
    (0x48, 0xd40, "Cortex-A76"), // lscpu-arm.c: "HiSilicon uses this ID though advertises A76"
    (0x48, 0xd41, "Cortex-A77"), // lscpu-arm.c: "HiSilicon uses this ID though advertises A77"
    // NVIDIA (cputype.h NVIDIA_CPU_PART_*)
    (0x4e, 0x000, "Denver"),
    (0x4e, 0x003, "Denver 2"),
    (0x4e, 0x004, "Carmel"),
    (0x4e, 0x010, "Olympus"),
    // APM (cputype.h APM_CPU_PART_XGENE)
    (0x50, 0x000, "X-Gene"),
    // Qualcomm (cputype.h QCOM_CPU_PART_*, lscpu-arm.c qcom_part)
    (0x51, 0x001, "Oryon-X1"),
    (0x51, 0x800, "Kryo-2XX-Gold"),
    (0x51, 0x801, "Kryo-2XX-Silver"),
    (0x51, 0x802, "Kryo-3XX-Gold"),
    (0x51, 0x803, "Kryo-3XX-Silver"),
    (0x51, 0x804, "Kryo-4XX-Gold"),
    (0x51, 0x805, "Kryo-4XX-Silver"),
    (0x51, 0xc00, "Falkor"),
    (0x51, 0xc01, "Saphira"),
    // Samsung (lscpu-arm.c samsung_part)
    (0x53, 0x001, "exynos-m1"),
    (0x53, 0x002, "exynos-m3"),
    (0x53, 0x003, "exynos-m4"),
    (0x53, 0x004, "exynos-m5"),
    // Apple (cputype.h APPLE_CPU_PART_*, lscpu-arm.c apple_part)
    (0x61, 0x020, "Icestorm-A14"),
    (0x61, 0x021, "Firestorm-A14"),
    (0x61, 0x022, "Icestorm-M1"),
    (0x61, 0x023, "Firestorm-M1"),
    (0x61, 0x024, "Icestorm-M1-Pro"),
    (0x61, 0x025, "Firestorm-M1-Pro"),
    (0x61, 0x028, "Icestorm-M1-Max"),
    (0x61, 0x029, "Firestorm-M1-Max"),
    (0x61, 0x030, "Blizzard-A15"),
    (0x61, 0x031, "Avalanche-A15"),
    (0x61, 0x032, "Blizzard-M2"),
    (0x61, 0x033, "Avalanche-M2"),
    // Microsoft (lscpu-arm.c ms_part)
    (0x6d, 0xd49, "Azure-Cobalt-100"),
    // Phytium (lscpu-arm.c ft_part; cputype.h PHYTIUM_CPU_PART_* for 0x660-0x664)
    (0x70, 0x303, "FTC310"),
    (0x70, 0x660, "FTC660"),
    (0x70, 0x661, "FTC661"),
    (0x70, 0x662, "FTC662"),
    (0x70, 0x663, "FTC663"),
    (0x70, 0x664, "FTC664"),
    (0x70, 0x862, "FTC862"),
    // Ampere (cputype.h AMPERE_CPU_PART_AMPERE1/1A, lscpu-arm.c ampere_part)
    (0xc0, 0xac3, "AmpereOne"),
    (0xc0, 0xac4, "AmpereOne-A"),
    (0xc0, 0xac5, "AmpereOne-B"),
];

/// HiSilicon parts that are TaiShan server cores (cputype.h comments and
/// Huawei's Kunpeng documentation: TSV110 = Kunpeng 920, HIP09/TaiShan V120
/// = Kunpeng 920 new-generation/930 class, HIP12 = next server core).
/// HIP09 also appears in the Kirin 9000S phone SoC next to Cortex cores,
/// which is why [`crate::cpu`] also requires a homogeneous CPU set.
pub const HISI_SERVER_PARTS: &[u16] = &[0xd01, 0xd02, 0xd06];

/// HiSilicon server SoCs before Kunpeng 920, by the chip name firmware
/// writes in the SMBIOS type 4 `Version`, with the Arm Ltd core they are
/// built from: their type 4 `ID` (MIDR_EL1, DSP0134 7.5.3.3) carries
/// implementer 0x41 and the Cortex part, not HiSilicon's 0x48, so only the
/// type 4 manufacturer and version tell them from any other Cortex machine.
/// - Hi1610 = Hip05 (D02 board): Cortex-A57 (Linux
///   `arch/arm64/boot/dts/hisilicon/hip05.dtsi`, `arm,cortex-a57`);
/// - Hi1612 = Hip06 (D03 board): Cortex-A72 (`hip06.dtsi`, `arm,cortex-a72`);
/// - Hi1616 = Hip07 (D05 board), sold as Kunpeng 916: Cortex-A72
///   (`hip07.dtsi`, `arm,cortex-a72`).
///
/// Firmware of the D05 generation writes the family name `Hi16xx`: either
/// core then.
pub const HISI_EARLY_SERVER_SOCS: &[(&str, &[u16])] = &[
    ("hi1610", &[0xd07]),
    ("hi1612", &[0xd08]),
    ("hi1616", &[0xd08]),
    ("hi16xx", &[0xd07, 0xd08]),
];

/// HiSilicon's server chip names in an SMBIOS type 4 `Version`: one of
/// [`HISI_EARLY_SERVER_SOCS`] (with the Cortex parts it may have), or
/// Hi1620 / "Kunpeng" (Kunpeng 920 and later: TaiShan cores of
/// implementer 0x48, [`HISI_SERVER_PARTS`]).
pub fn hisi_server_soc(version: &str) -> Option<&'static [u16]> {
    let v = version.to_ascii_lowercase();
    if let Some((_, parts)) = HISI_EARLY_SERVER_SOCS
        .iter()
        .find(|(name, _)| v.contains(name))
    {
        return Some(parts);
    }
    (v.contains("hi1620") || v.contains("kunpeng")).then_some(&[])
}

/// SMBIOS type 4 manufacturers that make only Arm processors, lower case:
/// a type 4 record naming one is an Arm machine even when its `Family` is
/// `Other` and its `ID` is empty (SMBIOS 2.x firmware has neither an Arm
/// family code nor MIDR in `ID`). Phytium (implementer 0x70), HiSilicon
/// (0x48, and the Cortex-based Hi16xx/Kirin), Ampere (0xc0, and the
/// Neoverse-based Altra): cputype.h `ARM_CPU_IMP_*`, lscpu-arm.c.
pub const DMI_ARM_ONLY_MANUFACTURERS: &[&str] = &["phytium", "hisilicon", "ampere"];

pub fn arm_implementer_name(imp: u8) -> Option<&'static str> {
    ARM_IMPLEMENTERS
        .iter()
        .find(|(i, _)| *i == imp)
        .map(|(_, n)| *n)
}

pub fn arm_part_name(imp: u8, part: u16) -> Option<&'static str> {
    ARM_PARTS
        .iter()
        .find(|(i, p, _)| *i == imp && *p == part)
        .map(|(_, _, n)| *n)
}

/// Reverse lookups for `lscpu`, which prints decoded names: "HiSilicon" → 0x48.
pub fn arm_implementer_by_name(name: &str) -> Option<u8> {
    ARM_IMPLEMENTERS
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(name))
        .map(|(i, _)| *i)
}

/// lscpu's own spellings of part names (util-linux tables) → part number.
pub fn arm_part_by_lscpu_name(imp: u8, name: &str) -> Option<u16> {
    // util-linux spells some parts differently from cputype.h.
    const LSCPU_ALIASES: &[(u8, &str, u16)] = &[
        (0x48, "Kunpeng-920", 0xd01),
        (0x48, "TaiShan-v110", 0xd01),
        (0x48, "TaiShan-v120", 0xd02),
        (0xc0, "Ampere-1", 0xac3),
        (0xc0, "Ampere-1a", 0xac4),
    ];
    LSCPU_ALIASES
        .iter()
        .find(|(i, n, _)| *i == imp && n.eq_ignore_ascii_case(name))
        .map(|(_, _, p)| *p)
        .or_else(|| {
            ARM_PARTS
                .iter()
                .find(|(i, _, n)| *i == imp && n.eq_ignore_ascii_case(name))
                .map(|(_, p, _)| *p)
        })
}

/// Intel family 6 models → microarchitecture (intel-family.h `INTEL_*`).
pub const INTEL_FAM6: &[(u32, &str)] = &[
    (0x0f, "Core"),
    (0x16, "Core"),
    (0x17, "Penryn"),
    (0x1d, "Penryn"),
    (0x1a, "Nehalem"),
    (0x1e, "Nehalem"),
    (0x1f, "Nehalem"),
    (0x2e, "Nehalem"),
    (0x25, "Westmere"),
    (0x2c, "Westmere"),
    (0x2f, "Westmere"),
    (0x2a, "Sandy Bridge"),
    (0x2d, "Sandy Bridge"),
    (0x3a, "Ivy Bridge"),
    (0x3e, "Ivy Bridge"),
    (0x3c, "Haswell"),
    (0x3f, "Haswell"),
    (0x45, "Haswell"),
    (0x46, "Haswell"),
    (0x3d, "Broadwell"),
    (0x47, "Broadwell"),
    (0x4f, "Broadwell"),
    (0x56, "Broadwell"),
    (0x4e, "Skylake"),
    (0x5e, "Skylake"),
    (0x55, "Skylake"), // refined by stepping: Cascade Lake / Cooper Lake
    (0x8e, "Kaby Lake"),
    (0x9e, "Kaby Lake"),
    (0xa5, "Comet Lake"),
    (0xa6, "Comet Lake"),
    (0x66, "Cannon Lake"),
    (0x6a, "Ice Lake"),
    (0x6c, "Ice Lake"),
    (0x7d, "Ice Lake"),
    (0x7e, "Ice Lake"),
    (0x9d, "Ice Lake"),
    (0x8c, "Tiger Lake"),
    (0x8d, "Tiger Lake"),
    (0xa7, "Rocket Lake"),
    (0x97, "Alder Lake"),
    (0x9a, "Alder Lake"),
    (0xb7, "Raptor Lake"),
    (0xba, "Raptor Lake"),
    (0xbf, "Raptor Lake"),
    (0xaa, "Meteor Lake"),
    (0xac, "Meteor Lake"),
    (0xbd, "Lunar Lake"),
    (0xc5, "Arrow Lake"),
    (0xc6, "Arrow Lake"),
    (0xb5, "Arrow Lake"),
    (0x8f, "Sapphire Rapids"),
    (0xcf, "Emerald Rapids"),
    (0xad, "Granite Rapids"),
    (0xae, "Granite Rapids"),
    (0xaf, "Sierra Forest"),
    (0xdd, "Clearwater Forest"),
    (0x1c, "Bonnell"),
    (0x26, "Bonnell"),
    (0x37, "Silvermont"),
    (0x4a, "Silvermont"),
    (0x4d, "Silvermont"),
    (0x5a, "Silvermont"),
    (0x4c, "Airmont"),
    (0x5c, "Goldmont"),
    (0x5f, "Goldmont"),
    (0x7a, "Goldmont Plus"),
    (0x86, "Tremont"),
    (0x96, "Tremont"),
    (0x9c, "Tremont"),
    (0xbe, "Gracemont"),
    (0x57, "Knights Landing"),
    (0x85, "Knights Mill"),
];

/// Intel microarchitecture from family/model/stepping.
pub fn intel_uarch(family: u32, model: u32, stepping: u32) -> Option<&'static str> {
    match family {
        6 => {
            if model == 0x55 {
                // intel-family.h: SKYLAKE_X covers Skylake-SP (steppings <5),
                // Cascade Lake (5-7) and Cooper Lake (10-11).
                return Some(match stepping {
                    5..=7 => "Cascade Lake",
                    10..=11 => "Cooper Lake",
                    _ => "Skylake",
                });
            }
            INTEL_FAM6
                .iter()
                .find(|(m, _)| *m == model)
                .map(|(_, n)| *n)
        }
        0xf => Some("NetBurst"),
        0x13 => Some("Diamond Rapids"),
        _ => None,
    }
}

/// AMD microarchitecture from family/model.
pub fn amd_uarch(family: u32, model: u32) -> Option<&'static str> {
    Some(match (family, model) {
        (0xf, _) => "K8",
        (0x10, _) => "K10",
        (0x12, _) => "K10 (Llano)",
        (0x14, _) => "Bobcat",
        (0x15, 0x00..=0x01) => "Bulldozer",
        (0x15, 0x02 | 0x10..=0x1f) => "Piledriver",
        (0x15, 0x30..=0x3f) => "Steamroller",
        (0x15, 0x60..=0x7f) => "Excavator",
        (0x16, _) => "Jaguar",
        // amd.c: Zen 1/+ are models 0x00-0x2f of family 0x17, Zen 2 0x30-0xaf.
        (0x17, 0x00..=0x2f) => "Zen",
        (0x17, 0x30..=0xaf) => "Zen 2",
        // amd.c init_amd_zen3/zen4 model ranges of family 0x19.
        (0x19, 0x00..=0x0f | 0x20..=0x5f) => "Zen 3",
        (0x19, 0x10..=0x1f | 0x60..=0xaf) => "Zen 4",
        (0x1a, _) => "Zen 5",
        _ => return None,
    })
}

/// Zhaoxin family 7 models → core generation (models as in Zhaoxin's Linux
/// patches for `arch/x86` and the hwloc CPUID dumps: KX-5000 "WuDaoKou"
/// 0x1b, KX-6000 "LuJiaZui" 0x3b, KH-40000 "YongFeng" 0x5b); family 6
/// models 0x19 (ZX-C) and 0x1f (ZX-D) are the pre-2018 CentaurHauls parts.
pub fn zhaoxin_core(family: u32, model: u32) -> Option<&'static str> {
    Some(match (family, model) {
        (6, 0x19) => "ZX-C",
        (6, 0x1f) => "ZX-D",
        (7, 0x1b) => "WuDaoKou",
        (7, 0x3b) => "LuJiaZui",
        (7, 0x5b) => "YongFeng",
        _ => return None,
    })
}

/// RISC-V `mvendorid` → vendor (vendorid_list.h; SpacemiT 0x710 per its
/// JEDEC bank/ID as reported by the X60 harts).
pub const RISCV_VENDORS: &[(u64, &str)] = &[
    (0x029, "Microchip"),
    (0x127, "MIPS"),
    (0x31e, "Andes"),
    (0x489, "SiFive"),
    (0x5b7, "T-Head"),
    (0x710, "SpacemiT"),
];

/// `(mvendorid, marchid)` → core, for vendors whose marchid is meaningful
/// (SiFive sets bit 63 and a series number: 7 = U7 series (U74), 8 = P5
/// series (P550), per SiFive core manuals' `marchid` register tables;
/// SpacemiT X60 reports 0x8000000058000001).
pub const RISCV_MARCHIDS: &[(u64, u64, &str)] = &[
    (0x489, 0x8000_0000_0000_0007, "U74"),
    (0x489, 0x8000_0000_0000_0008, "P550"),
    (0x710, 0x8000_0000_5800_0001, "X60"),
];

/// Devicetree `uarch` compatible → core (T-Head reports marchid 0, so the
/// compatible string is the only numeric-free evidence the kernel gives).
/// `eswin,eic770x` is the ESWIN EIC7700 SoC, built on SiFive P550 cores.
pub const RISCV_UARCH: &[(&str, &str)] = &[
    ("thead,c906", "C906"),
    ("thead,c908", "C908"),
    ("thead,c910", "C910"),
    ("thead,c920", "C920"),
    ("sifive,u54", "U54"),
    ("sifive,u54-mc", "U54-MC"),
    ("sifive,u74", "U74"),
    ("sifive,u74-mc", "U74-MC"),
    ("sifive,p550", "P550"),
    ("eswin,eic770x", "P550"),
    ("spacemit,x60", "X60"),
];

/// POWER processor version register (upper 16 bits) → core (reg.h `PVR_*`).
pub const POWER_PVRS: &[(u16, &str)] = &[
    (0x0008, "740/750"),
    (0x003e, "POWER6"),
    (0x003f, "POWER7"),
    (0x004a, "POWER7+"),
    (0x004b, "POWER8E"),
    (0x004c, "POWER8NVL"),
    (0x004d, "POWER8"),
    (0x004e, "POWER9"),
    (0x0080, "POWER10"),
    (0x0082, "POWER11"),
];

/// IBM Z machine types → generation.
pub const S390_MACHINES: &[(u32, &str)] = &[
    (2064, "z900"),
    (2066, "z800"),
    (2084, "z990"),
    (2086, "z890"),
    (2094, "z9 EC"),
    (2096, "z9 BC"),
    (2097, "z10 EC"),
    (2098, "z10 BC"),
    (2817, "z196"),
    (2818, "z114"),
    (2827, "zEC12"),
    (2828, "zBC12"),
    (2964, "z13"),
    (2965, "z13s"),
    (3906, "z14"),
    (3907, "z14 ZR1"),
    (8561, "z15"),
    (8562, "z15 T02"),
    (3931, "z16"),
    (3932, "z16 A02"),
    (9175, "z17"),
];

/// Loongson SoC model → LoongArch core (Loongson product briefs; the
/// kernel's PRID series LA264/LA364/LA464/LA664 name the same cores).
pub fn loongson_core(model: &str) -> Option<&'static str> {
    let m = model.to_ascii_uppercase();
    const TABLE: &[(&str, &str)] = &[
        ("3A5000", "LA464"),
        ("3B5000", "LA464"),
        ("3C5000", "LA464"),
        ("3D5000", "LA464"),
        ("3A6000", "LA664"),
        ("3B6000", "LA664"),
        ("3C6000", "LA664"),
        ("3D6000", "LA664"),
        ("3E6000", "LA664"),
        ("2K0500", "LA264"),
        ("2K1000", "LA264"),
        ("2K2000", "LA364"),
        ("2K3000", "LA364"),
    ];
    TABLE.iter().find(|(k, _)| m.contains(k)).map(|(_, c)| *c)
}
