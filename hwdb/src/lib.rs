//! Hardware identification: raw evidence in, [`HardwareProfile`] out.
//!
//! `hwdb` is pure: it parses text it is given and never runs commands or
//! opens sockets. The only file access is in helpers that take a path
//! ([`sysfs::read_sysfs_pci`], [`sysfs::read_dmi_sysfs`], [`PciIds::from_path`],
//! …), for snapshots handed over by a user or by `lab`.
//!
//! Responsibilities, one module each:
//! - parsers of raw facts: [`cpuinfo`], [`lscpu`], [`cpuid`], [`dmidecode`],
//!   [`meminfo`], [`osrelease`], [`lspci`], [`modalias`], [`pciids`];
//! - accelerator tools' outputs: [`accel`] (`nvidia-smi`, `rocm-smi`,
//!   `hy-smi`, `npu-smi`: ECC, retired pages, remapped rows, PCIe link);
//! - tables: [`cpu_tables`] (ARM/x86/RISC-V/LoongArch/POWER/s390 numbers),
//!   [`accel_ids`] (accelerators `pci.ids` lacks);
//! - decisions: [`cpu`] (CPU family/vendor/core), [`identify`] (everything).

pub mod accel;
pub mod accel_ids;
pub mod cpu;
pub mod cpu_tables;
pub mod cpuid;
pub mod cpuinfo;
pub mod dmidecode;
pub mod error;
pub mod identify;
pub mod inventory;
pub mod lscpu;
pub mod lspci;
pub mod meminfo;
pub mod modalias;
pub mod osrelease;
pub mod pciids;
pub mod profile;
pub mod sysfs;
mod text;

pub use accel::AccelDevice;
pub use accel_ids::{AccelEntry, AccelKind, Confidence};
pub use cpu::{identify_cpu, CpuEvidence, CpuIdentification};
pub use cpuid::CpuidDump;
pub use cpuinfo::CpuInfo;
pub use dmidecode::{Dmi, DmiProcessor, DmiRecord};
pub use error::Error;
pub use identify::identify;
pub use inventory::{Fact, Inventory, SysfsPciDevice};
pub use lscpu::Lscpu;
pub use lspci::{normalize_link_speed, LspciDevice, PciLink};
pub use meminfo::MemInfo;
pub use modalias::{driver_match, pci_modalias, ModulesAlias, PciMatchKey};
pub use osrelease::OsRelease;
pub use pciids::PciIds;
pub use profile::*;
