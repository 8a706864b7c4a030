//! Raw facts about a machine, each with where it came from.
//!
//! An [`Inventory`] is what discovery collects (through a `lab::Target`, or
//! from files a user hands `certlab hwdb identify`); [`crate::identify`]
//! turns it into a [`crate::HardwareProfile`]. Any field may be missing:
//! identification does its best with the subset it gets.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One raw text fact and its source (a path or the command that printed it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    /// `/proc/cpuinfo`, `lscpu`, `lspci -nn -k`, …
    pub source: String,
    pub text: String,
}

impl Fact {
    pub fn new(source: impl Into<String>, text: impl Into<String>) -> Fact {
        Fact {
            source: source.into(),
            text: text.into(),
        }
    }
}

/// A PCI function as read from `/sys/bus/pci/devices/<address>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SysfsPciDevice {
    /// `dddd:bb:dd.f`
    pub address: String,
    /// Attribute files as read (`vendor` = "0x8086", `class` = "0x020000",
    /// `subsystem_vendor`, `subsystem_device`, `device`, `revision`,
    /// `current_link_speed`, `max_link_speed`, `current_link_width`,
    /// `max_link_width`, `numa_node`, `modalias`, …), trimmed.
    pub attrs: BTreeMap<String, String>,
    /// Basename of the `driver` symlink when a driver is bound.
    pub driver: Option<String>,
}

/// Everything discovery collected that identification can use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Inventory {
    /// `/proc/cpuinfo`
    pub cpuinfo: Option<Fact>,
    /// `lscpu` output
    pub lscpu: Option<Fact>,
    /// `/proc/meminfo`
    pub meminfo: Option<Fact>,
    /// `dmidecode` output (all types)
    pub dmidecode: Option<Fact>,
    /// `/sys/class/dmi/id/<name>` → value, for the readable attributes
    pub dmi_sysfs: BTreeMap<String, String>,
    /// `lspci -nn -k` (or `-nn`, or `-vmm -nn`) output
    pub lspci: Option<Fact>,
    /// PCI devices walked in `/sys/bus/pci/devices`
    pub sysfs_pci: Vec<SysfsPciDevice>,
    /// The running kernel's `modules.alias`
    pub modules_alias: Option<Fact>,
    /// The running kernel's `modules.builtin`: modules linked into the
    /// image, whose drivers `modules.alias` cannot name.
    #[serde(default)]
    pub modules_builtin: Option<Fact>,
    /// `/etc/os-release`
    pub os_release: Option<Fact>,
    /// `uname -r`
    pub kernel_release: Option<String>,
    /// `uname -m`
    pub machine: Option<String>,
    /// A raw x86 CPUID dump (hwloc `hwloc-gather-cpuid` format), for
    /// machines known only by such a dump.
    #[serde(default)]
    pub cpuid: Option<Fact>,
}
