//! The registry of checks, and the checks themselves.
//!
//! A check is stateless; its parameters come from the plan. Each file holds
//! the checks of one area and the parsers of the tool output they read.

use crate::plan::Check;

pub mod command;
pub mod cpu;
pub mod dcgm;
pub mod driver;
pub mod ethtool;
pub mod firmware;
pub mod gpu;
pub mod gpu_burn;
pub mod gpu_diag;
pub mod gpu_xid;
pub mod inject;
pub mod integrity;
pub mod kabi;
pub mod kdump;
pub mod kernel;
pub mod memory;
pub mod memtest;
pub mod net;
pub mod pci;
pub mod perf;
pub mod ras;
pub mod ras_delta;
pub mod rasdaemon;
pub mod reboot;
pub mod sel;
pub mod smartctl;
pub mod storage;
pub mod time;
pub mod watchdog;

/// Every check by its registry name.
pub static REGISTRY: &[(&str, &dyn Check)] = &[
    ("cpu-identity", &cpu::Identity),
    ("cpu-online", &cpu::Online),
    ("cpu-microcode", &cpu::Microcode),
    ("cpu-vulnerabilities", &cpu::Vulnerabilities),
    ("mem-size", &memory::Size),
    ("mem-pattern", &memory::Pattern),
    ("storage-read", &storage::Readable),
    ("storage-seqread", &storage::SeqRead),
    ("pci-drivers", &pci::Drivers),
    ("pcie-link-width", &pci::LinkWidth),
    ("net-nics", &net::Nics),
    ("driver-nic-link", &driver::NicLink),
    ("driver-versions", &driver::Versions),
    ("driver-storage-health", &driver::StorageHealth),
    ("driver-reload", &driver::Reload),
    ("kernel-taint", &kernel::Taint),
    ("kernel-log", &kernel::Log),
    ("time-clock", &time::Clock),
    ("ras-edac", &kernel::Edac),
    ("ras-aer", &ras::Aer),
    ("ras-rasdaemon", &rasdaemon::RasDaemon),
    ("ras-sel", &sel::SelDelta),
    ("ras-einj", &inject::EINJ),
    ("ras-mce-inject", &inject::MCE_INJECT),
    ("firmware-versions", &firmware::Versions),
    ("kabi-out-of-tree", &kabi::OutOfTree),
    ("integrity-packages", &integrity::Packages),
    ("integrity-module-signing", &integrity::ModuleSigning),
    ("integrity-secure-boot", &integrity::SecureBoot),
    ("gpu-ecc", &gpu::Ecc),
    ("gpu-memory-retirement", &gpu::MemoryRetirement),
    ("gpu-pcie-link", &gpu::PcieLink),
    ("gpu-xid", &gpu::XidEvents),
    ("gpu-dcgm-diag", &gpu_diag::DcgmDiag),
    ("gpu-burn", &gpu_diag::Burn),
    ("perf-fio", &perf::Fio),
    ("perf-stress-ng", &perf::StressNg),
    ("perf-iperf3", &perf::Iperf3),
    ("reboot", &reboot::Survives),
    ("kdump-config", &kdump::Config),
    ("kdump-crash", &kdump::Crash),
    ("watchdog-present", &watchdog::Present),
    ("watchdog-reset", &watchdog::Reset),
    // Not in the shipped plans: a lab's own probes and the orchestrator's tests.
    ("command", &command::Command),
];

/// The check registered under `name`.
pub fn lookup(name: &str) -> Option<&'static dyn Check> {
    REGISTRY.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

/// Parses a kernel CPU list (`0-3,8,10-11`) into CPU numbers.
pub fn parse_cpu_list(s: &str) -> Option<Vec<u32>> {
    let mut out = Vec::new();
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                if b < a {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// Formats a list of numbers back into kernel CPU-list form.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end + 1 {
            i += 1;
            end = cpus[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_round_trip() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11\n").unwrap(),
            vec![0, 1, 2, 3, 8, 10, 11]
        );
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u32>::new());
        assert!(parse_cpu_list("3-1").is_none());
        assert!(parse_cpu_list("x").is_none());
    }

    #[test]
    fn registry_names_are_unique() {
        let mut names: Vec<_> = REGISTRY.iter().map(|(n, _)| *n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGISTRY.len());
    }
}
