//! Accelerator health as the vendors' management tools report it: one
//! [`AccelDevice`] per GPU/NPU/DCU, whatever tool printed it.
//!
//! One module per tool, each a pure function from the tool's output to
//! devices: [`nvidia_xml`] (`nvidia-smi -q -x`, every DTD layout seen:
//! none, v11, v12, v13), [`nvidia_text`] (`nvidia-smi -q`), [`rocm_smi`]
//! (`rocm-smi --json`, keys matched by pattern because their names change
//! between ROCm releases), [`hy_smi`] (Hygon DCU `hy-smi`) and [`npu_smi`]
//! (Ascend `npu-smi info`).
//!
//! A value the tool does not report (`N/A`, `[N/A]`, `Not Supported`, an
//! absent element) is `None` — never 0: "no uncorrected errors" and "the
//! tool cannot count uncorrected errors" are different facts. Bus ids are
//! canonical Linux PCI addresses ([`canonical_bus_id`]).

use serde::Serialize;

use crate::Error;

pub mod hy_smi;
pub mod npu_smi;
pub mod nvidia_text;
pub mod nvidia_xml;
pub mod rocm_smi;
mod tree;

/// ECC error counters of one scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EccCounts {
    pub corrected: Option<u64>,
    pub uncorrected: Option<u64>,
}

/// ECC error counters: since the driver loaded (`volatile`) and over the
/// board's life (`aggregate`, kept in the InfoROM).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ecc {
    pub volatile: EccCounts,
    pub aggregate: EccCounts,
}

/// Dynamic page retirement (NVIDIA, Kepler to Turing).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetiredPages {
    /// Pages retired for repeated single-bit errors.
    pub single_bit: Option<u64>,
    /// Pages retired for a double-bit error.
    pub double_bit: Option<u64>,
    /// A retirement waits for the next driver reload.
    pub pending: Option<bool>,
}

/// Row remapping (NVIDIA, Ampere and later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RemappedRows {
    pub correctable: Option<u64>,
    pub uncorrectable: Option<u64>,
    /// A remapping waits for a GPU reset.
    pub pending: Option<bool>,
    /// A remapping failed: the memory can no longer be repaired.
    pub failure: Option<bool>,
}

/// The PCIe link as the tool reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PcieState {
    pub gen_current: Option<u32>,
    /// The highest generation the link can train at (both ends).
    pub gen_max: Option<u32>,
    pub width_current: Option<u32>,
    pub width_max: Option<u32>,
    /// The device's own highest generation (`nvidia-smi` v12 and later).
    pub gen_max_device: Option<u32>,
    /// The host side's (root port or switch) highest generation.
    pub gen_max_host: Option<u32>,
}

/// The SM clock and whether the GPU slows itself down for heat
/// (`nvidia-smi`: `Clocks` / `Max Clocks` and the `Clocks Event Reasons`,
/// formerly `Clocks Throttle Reasons`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Clocks {
    pub sm_mhz: Option<u32>,
    pub sm_max_mhz: Option<u32>,
    /// `HW Thermal Slowdown` or `SW Thermal Slowdown` active; `Some(false)`
    /// only when the tool reports both and neither is.
    pub thermal_slowdown: Option<bool>,
}

/// One accelerator.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccelDevice {
    /// `NVIDIA`, `AMD`, `Hygon`, `Huawei`.
    pub vendor: String,
    pub model: Option<String>,
    /// Canonical PCI address, `0000:3b:00.0`.
    pub bus_id: Option<String>,
    pub serial: Option<String>,
    pub driver_version: Option<String>,
    pub vbios: Option<String>,
    pub memory_total_mib: Option<u64>,
    /// `enabled` or `disabled`.
    pub ecc_mode: Option<String>,
    pub ecc: Ecc,
    pub retired_pages: RetiredPages,
    pub remapped_rows: RemappedRows,
    pub pcie: PcieState,
    pub temperature_c: Option<f64>,
    pub power_w: Option<f64>,
    pub clocks: Clocks,
    /// The tool's own health verdict where it gives one (`npu-smi`: `OK`,
    /// `Warning`, `Alarm`, `Critical`).
    pub health: Option<String>,
}

/// A management tool whose output certlab reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    NvidiaSmiXml,
    NvidiaSmiQ,
    RocmSmiJson,
    HySmi,
    NpuSmi,
}

impl Tool {
    /// Every tool, in the order they are tried on a machine.
    pub const ALL: [Tool; 5] = [
        Tool::NvidiaSmiXml,
        Tool::NvidiaSmiQ,
        Tool::RocmSmiJson,
        Tool::HySmi,
        Tool::NpuSmi,
    ];

    /// The program that must be installed.
    pub fn program(self) -> &'static str {
        match self {
            Tool::NvidiaSmiXml | Tool::NvidiaSmiQ => "nvidia-smi",
            Tool::RocmSmiJson => "rocm-smi",
            Tool::HySmi => "hy-smi",
            Tool::NpuSmi => "npu-smi",
        }
    }

    /// The command line whose output [`parse`] reads.
    pub fn command(self) -> &'static str {
        match self {
            Tool::NvidiaSmiXml => "nvidia-smi -q -x",
            Tool::NvidiaSmiQ => "nvidia-smi -q",
            Tool::RocmSmiJson => "rocm-smi --showallinfo --json",
            Tool::HySmi => "hy-smi",
            Tool::NpuSmi => "npu-smi info",
        }
    }
}

/// Parses one tool's output. `Err` when the text is not that tool's output
/// at all (the message says what was expected); a well-formed output that
/// lists no device is `Ok(vec![])`.
pub fn parse(tool: Tool, text: &str) -> Result<Vec<AccelDevice>, Error> {
    match tool {
        Tool::NvidiaSmiXml => nvidia_xml::parse(text),
        Tool::NvidiaSmiQ => nvidia_text::parse(text),
        Tool::RocmSmiJson => rocm_smi::parse(text),
        Tool::HySmi => hy_smi::parse(text),
        Tool::NpuSmi => npu_smi::parse(text),
    }
}

/// A PCI address in the kernel's canonical form `dddd:bb:dd.f` (lower case,
/// the domain at least four hex digits), from the forms tools print:
/// `00000000:3B:00.0` (nvidia-smi's 32-bit domain), `0000:3b:00.0`,
/// `3b:00.0` (domain 0). `None` unless bus ≤ 0xff, device ≤ 0x1f and
/// function ≤ 7, as PCI defines them.
pub fn canonical_bus_id(s: &str) -> Option<String> {
    let s = s.trim();
    let (head, func) = s.rsplit_once('.')?;
    let mut parts: Vec<&str> = head.split(':').collect();
    let domain = if parts.len() == 3 {
        let d = parts.remove(0);
        if d.is_empty() || d.len() > 8 {
            return None;
        }
        u32::from_str_radix(d, 16).ok()?
    } else if parts.len() == 2 {
        0
    } else {
        return None;
    };
    let hex = |p: &str, max: u32, width: usize| -> Option<u32> {
        if p.is_empty() || p.len() > width || !p.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(p, 16).ok().filter(|v| *v <= max)
    };
    let bus = hex(parts[0], 0xff, 2)?;
    let dev = hex(parts[1], 0x1f, 2)?;
    let func = hex(func, 7, 1)?;
    Some(format!("{domain:04x}:{bus:02x}:{dev:02x}.{func:x}"))
}

/// The value a tool printed, or `None` for its ways of saying "no value":
/// empty, `N/A`, `NA`, `-`, `Not Supported`, `Unknown Error`, `Not
/// Available`, `Insufficient Permissions`, each possibly in brackets.
pub fn reported(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(t)
        .trim();
    let l = inner.to_ascii_lowercase();
    let none = [
        "",
        "n/a",
        "na",
        "-",
        "--",
        "not supported",
        "unknown error",
        "not available",
        "insufficient permissions",
        "gpu is lost",
        "requested functionality has been deprecated",
    ];
    (!none.contains(&l.as_str())).then_some(t)
}

/// A number followed by an optional unit (`27 C`, `67.03 W`, `16x`,
/// `81920 MiB`, `49.0C`), unit matched case-insensitively.
pub fn number(s: &str, unit: &str) -> Option<f64> {
    let t = reported(s)?;
    let t = if t.len() >= unit.len()
        && t.is_char_boundary(t.len() - unit.len())
        && t[t.len() - unit.len()..].eq_ignore_ascii_case(unit)
    {
        &t[..t.len() - unit.len()]
    } else {
        t
    };
    t.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A non-negative integer with an optional unit.
pub fn count(s: &str, unit: &str) -> Option<u64> {
    let t = reported(s)?;
    let t = if t.len() >= unit.len()
        && t.is_char_boundary(t.len() - unit.len())
        && t[t.len() - unit.len()..].eq_ignore_ascii_case(unit)
    {
        &t[..t.len() - unit.len()]
    } else {
        t
    };
    t.trim().parse::<u64>().ok()
}

/// `Active` / `Not Active` (clock event reasons) → bool; anything else `None`.
pub fn active(s: &str) -> Option<bool> {
    match reported(s)? {
        v if v.eq_ignore_ascii_case("active") => Some(true),
        v if v.eq_ignore_ascii_case("not active") => Some(false),
        _ => None,
    }
}

/// Both thermal-slowdown reasons folded into one: active if either is,
/// inactive only if both are reported inactive.
pub fn thermal_slowdown(hw: Option<bool>, sw: Option<bool>) -> Option<bool> {
    match (hw, sw) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// `Yes`/`No` (also `True`/`False`, `Enabled`/`Disabled`).
pub fn yes_no(s: &str) -> Option<bool> {
    match reported(s)?.to_ascii_lowercase().as_str() {
        "yes" | "true" | "enabled" => Some(true),
        "no" | "false" | "disabled" => Some(false),
        _ => None,
    }
}

/// The sum of the values that were reported; `None` when none was.
pub(crate) fn sum(values: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    values
        .into_iter()
        .flatten()
        .fold(None, |acc: Option<u64>, v| {
            Some(acc.unwrap_or(0).saturating_add(v))
        })
}

/// `enabled`/`disabled` from a tool's ECC mode.
pub(crate) fn ecc_mode(s: &str) -> Option<String> {
    yes_no(s).map(|on| if on { "enabled" } else { "disabled" }.to_string())
}

/// A string value, `None` when not reported.
pub(crate) fn text(s: &str) -> Option<String> {
    reported(s).map(str::to_string)
}

/// The 1-based line of byte offset `pos` in `text`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_ids_follow_the_pci_rules() {
        assert_eq!(
            canonical_bus_id("00000000:3B:00.0").as_deref(),
            Some("0000:3b:00.0")
        );
        assert_eq!(
            canonical_bus_id("0000:C1:00.0").as_deref(),
            Some("0000:c1:00.0")
        );
        assert_eq!(canonical_bus_id("3b:1f.7").as_deref(), Some("0000:3b:1f.7"));
        // A VMD domain is wider than four digits and stays so.
        assert_eq!(
            canonical_bus_id("00010000:01:00.0").as_deref(),
            Some("10000:01:00.0")
        );
        for bad in [
            "",
            "NA",
            "0000:3b:20.0",
            "0000:3b:00.8",
            "0000:100:00.0",
            "x:3b:00.0",
            "1:2:3:4.0",
        ] {
            assert_eq!(canonical_bus_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn unreported_values_are_none_never_zero() {
        for v in [
            "N/A",
            "[N/A]",
            "Not Supported",
            "[Not Supported]",
            "",
            "  ",
            "NA",
            "-",
        ] {
            assert_eq!(count(v, ""), None, "{v}");
            assert_eq!(number(v, "W"), None, "{v}");
        }
        assert_eq!(count("0", ""), Some(0));
        assert_eq!(count("81920 MiB", "MiB"), Some(81920));
        assert_eq!(number("67.03 W", "W"), Some(67.03));
        assert_eq!(number("49.0C", "C"), Some(49.0));
        assert_eq!(count("16x", "x"), Some(16));
        assert_eq!(sum([None, None]), None);
        assert_eq!(sum([None, Some(2), Some(3)]), Some(5));
    }
}
