//! What identification concludes: the [`HardwareProfile`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// CPU platform family: a fixed vocabulary (see `ARCHITECTURE.md`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Hygon,
    Kunpeng,
    Phytium,
    Loongson,
    Riscv,
    Intel,
    Amd,
    Zhaoxin,
    Ampere,
    NvidiaGrace,
    ArmOther,
    Power,
    S390,
    #[default]
    Unknown,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Hygon => "hygon",
            Family::Kunpeng => "kunpeng",
            Family::Phytium => "phytium",
            Family::Loongson => "loongson",
            Family::Riscv => "riscv",
            Family::Intel => "intel",
            Family::Amd => "amd",
            Family::Zhaoxin => "zhaoxin",
            Family::Ampere => "ampere",
            Family::NvidiaGrace => "nvidia-grace",
            Family::ArmOther => "arm-other",
            Family::Power => "power",
            Family::S390 => "s390",
            Family::Unknown => "unknown",
        }
    }
}

/// The CPU as identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CpuProfile {
    pub family: Family,
    /// Vendor as the CPU reports it (`GenuineIntel`, `HiSilicon`, `Phytium`, `Loongson`, `T-Head`, …).
    pub vendor: String,
    pub model_name: String,
    /// Microarchitecture / core (`TSV110`, `FTC663`, `LA464`, `C910`, …).
    pub core: Option<String>,
    pub sockets: Option<u32>,
    pub cores: Option<u32>,
    /// Logical CPUs.
    pub threads: Option<u32>,
    /// ISA extensions / flags.
    pub isa: Vec<String>,
    /// Microcode revision per logical CPU when reported, in CPU order.
    pub microcode: Vec<String>,
}

/// The system as DMI/SMBIOS describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SystemProfile {
    pub vendor: Option<String>,
    pub product: Option<String>,
    pub sku: Option<String>,
    pub family: Option<String>,
    pub serial: Option<String>,
    pub board_vendor: Option<String>,
    pub board_name: Option<String>,
    pub bios_vendor: Option<String>,
    pub bios_version: Option<String>,
    pub bios_date: Option<String>,
    pub chassis_type: Option<String>,
    /// A BMC is visible (dmidecode type 38, or an IPMI device).
    pub bmc_present: Option<bool>,
    /// The OS runs under a hypervisor (lscpu `Hypervisor vendor`, the x86
    /// `hypervisor` flag, or a hypervisor's DMI product name).
    #[serde(default)]
    pub hypervisor: Option<String>,
}

/// One installed memory device (dmidecode type 17).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MemoryDevice {
    pub locator: String,
    pub size_bytes: u64,
    pub speed_mts: Option<u32>,
    pub part_number: Option<String>,
    pub manufacturer: Option<String>,
}

/// Memory as identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MemoryProfile {
    /// `MemTotal` of `/proc/meminfo`.
    pub mem_total_bytes: Option<u64>,
    /// Sum of installed DIMMs (dmidecode type 17).
    pub installed_bytes: Option<u64>,
    pub devices: Vec<MemoryDevice>,
}

/// How the bound driver compares with what the kernel's `modules.alias` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriverMatch {
    /// Bound to one of the expected modules.
    Expected,
    /// Bound to a driver `modules.alias` does not name for it.
    Other,
    /// Bound to a driver built into the kernel image (`modules.builtin`):
    /// `modules.alias` never names those, so this is the kernel's own
    /// driver, not another one.
    BuiltIn,
    /// No driver bound, but an in-kernel module would claim it.
    UnboundDriverExists,
    /// No in-kernel module claims it.
    NoDriver,
    /// Not enough evidence (no `modules.alias`, or the binding is unknown).
    Unknown,
}

/// One PCI function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PciDevice {
    /// `dddd:bb:dd.f`
    pub address: String,
    pub vendor_id: u16,
    pub device_id: u16,
    pub subvendor_id: Option<u16>,
    pub subdevice_id: Option<u16>,
    /// 24-bit class code (base class, subclass, prog-if).
    pub class: u32,
    pub revision: Option<u8>,
    pub vendor_name: Option<String>,
    pub device_name: Option<String>,
    pub class_name: Option<String>,
    /// Modules that `modules.alias` says should claim it.
    pub driver_expected: Vec<String>,
    /// The driver actually bound, when the evidence shows it.
    pub driver_bound: Option<String>,
    pub driver_match: Option<DriverMatch>,
}

/// A GPU / NPU / DCU or other accelerator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Accelerator {
    pub address: String,
    #[serde(default)]
    pub vendor_id: u16,
    #[serde(default)]
    pub device_id: u16,
    pub vendor: String,
    pub model: String,
    pub link_speed: Option<String>,
    pub link_width: Option<String>,
    pub max_link_speed: Option<String>,
    pub max_link_width: Option<String>,
}

/// Everything identification concluded, and where each conclusion came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HardwareProfile {
    pub cpu: CpuProfile,
    pub system: SystemProfile,
    pub memory: MemoryProfile,
    pub pci_devices: Vec<PciDevice>,
    pub accelerators: Vec<Accelerator>,
    /// Field path (`cpu.family`, `system.vendor`, …) → the source it came from.
    pub evidence: BTreeMap<String, String>,
}
