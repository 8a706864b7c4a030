//! `rocm-smi --json` (`--showallinfo` or any subset): an object with one
//! `cardN` object per GPU and a `system` object, every value a string.
//!
//! Key names change between ROCm releases (`Card series` → `Card Series`,
//! `Average Graphics Package Power (W)` → `Current Socket Graphics Package
//! Power (W)`, …), so keys are matched by pattern, case-insensitively:
//! - bus id: `PCI Bus`; VBIOS: a key containing `vbios`; serial: `Serial Number`;
//! - model: `Card series`, else `Market Name`; vendor: `Card vendor` naming
//!   Hygon (DCUs run a fork of rocm-smi) makes the vendor `Hygon`, else `AMD`;
//! - memory: `VRAM Total Memory (B)`;
//! - temperature: the `edge` sensor, else `junction`, else any `Temperature … (C)`;
//! - power: a `… Package Power (W)` key that is not a maximum;
//! - PCIe: every value of the form `8.0GT/s x16` is a link state the GPU
//!   supports (the `pcie clock level` list); the one marked ` *`, or the
//!   `pcie clock level` value, is the current one; speeds map to generations
//!   by the PCIe base specification's rates (2.5, 5, 8, 16, 32, 64 GT/s);
//! - ECC (`--showrasinfo`, `--showmeminfo`): keys naming `correctable` /
//!   `uncorrectable` errors are summed as volatile counts (amdgpu's RAS
//!   counters run from driver load). No real output with these keys was
//!   available; the rule is exercised by the unit tests only.

use serde_json::{Map, Value};

use super::{canonical_bus_id, count, number, sum, text, AccelDevice, Ecc, EccCounts, PcieState};
use crate::Error;

const WHAT: &str = "rocm-smi --json";

/// Parses `rocm-smi --json` output.
pub fn parse(json: &str) -> Result<Vec<AccelDevice>, Error> {
    let v: Value = serde_json::from_str(json)
        .map_err(|e| Error::parse(WHAT, e.line().max(1), format!("not JSON: {e}")))?;
    let Value::Object(top) = v else {
        return Err(Error::parse(WHAT, 1, "the top level is not a JSON object"));
    };
    let mut cards: Vec<(u64, &Map<String, Value>)> = top
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("card")?.parse::<u64>().ok()?;
            Some((n, v.as_object()?))
        })
        .collect();
    if cards.is_empty() && !top.contains_key("system") {
        return Err(Error::parse(
            WHAT,
            1,
            "no `cardN` or `system` object: not rocm-smi output",
        ));
    }
    cards.sort_by_key(|(n, _)| *n);
    let driver = top
        .get("system")
        .and_then(Value::as_object)
        .and_then(|s| find(s, |k| k == "driver version"))
        .and_then(text);
    Ok(cards
        .into_iter()
        .map(|(_, c)| device(c, driver.clone()))
        .collect())
}

/// The string value of the first key (lower-cased) matching `pred`.
fn find(card: &Map<String, Value>, pred: impl Fn(&str) -> bool) -> Option<&str> {
    card.iter()
        .find(|(k, _)| pred(&k.to_ascii_lowercase()))
        .and_then(|(_, v)| v.as_str())
}

/// `8.0GT/s x16` (anywhere in the value) → (generation, width); a value
/// marked ` *` is the current level.
fn link_level(v: &str) -> Option<(u32, u32, bool)> {
    let at = v.find("GT/s")?;
    let speed: String = v[..at]
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let speed: f64 = speed.parse().ok()?;
    let rest = v[at + 4..].trim_start();
    let width: String = rest
        .strip_prefix('x')?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let gen = pcie_gen(speed)?;
    Some((gen, width.parse().ok()?, v.trim_end().ends_with('*')))
}

/// The PCIe generation of a transfer rate (PCIe base specification rates).
pub fn pcie_gen(gt_s: f64) -> Option<u32> {
    [
        (2.5, 1),
        (5.0, 2),
        (8.0, 3),
        (16.0, 4),
        (32.0, 5),
        (64.0, 6),
    ]
    .iter()
    .find(|(r, _)| (gt_s - r).abs() < 0.01)
    .map(|(_, g)| *g)
}

fn device(c: &Map<String, Value>, driver_version: Option<String>) -> AccelDevice {
    let vendor = match find(c, |k| k == "card vendor") {
        Some(v) if v.to_ascii_lowercase().contains("hygon") || v.contains("Haiguang") => "Hygon",
        _ => "AMD",
    };
    let temp = find(c, |k| k.starts_with("temperature") && k.contains("edge"))
        .or_else(|| {
            find(c, |k| {
                k.starts_with("temperature") && k.contains("junction")
            })
        })
        .or_else(|| find(c, |k| k.starts_with("temperature") && k.ends_with("(c)")));
    let levels: Vec<(u32, u32, bool)> = c
        .values()
        .filter_map(Value::as_str)
        .filter_map(link_level)
        .collect();
    let current = find(c, |k| k == "pcie clock level")
        .and_then(link_level)
        .or_else(|| levels.iter().copied().find(|l| l.2));
    let ecc = |unc: bool| {
        sum(c.iter().filter_map(|(k, v)| {
            let k = k.to_ascii_lowercase();
            let named = if unc {
                k.contains("uncorrectable")
            } else {
                k.contains("correctable") && !k.contains("uncorrectable")
            };
            (named && (k.contains("error") || k.contains("ecc")))
                .then(|| v.as_str().and_then(|s| count(s, "")))
        }))
    };
    AccelDevice {
        vendor: vendor.into(),
        model: find(c, |k| k == "card series")
            .or_else(|| find(c, |k| k == "market name"))
            .and_then(text),
        bus_id: find(c, |k| k == "pci bus").and_then(canonical_bus_id),
        serial: find(c, |k| k == "serial number").and_then(text),
        driver_version,
        vbios: find(c, |k| k.contains("vbios")).and_then(text),
        memory_total_mib: find(c, |k| k == "vram total memory (b)")
            .and_then(|v| count(v, ""))
            .map(|b| b / (1 << 20)),
        ecc_mode: None,
        ecc: Ecc {
            volatile: EccCounts {
                corrected: ecc(false),
                uncorrected: ecc(true),
            },
            aggregate: EccCounts::default(),
        },
        retired_pages: Default::default(),
        remapped_rows: Default::default(),
        pcie: PcieState {
            gen_current: current.map(|l| l.0),
            gen_max: levels.iter().map(|l| l.0).max(),
            width_current: current.map(|l| l.1),
            width_max: levels.iter().map(|l| l.1).max(),
            gen_max_device: None,
            gen_max_host: None,
        },
        temperature_c: temp.and_then(|v| number(v, "")),
        power_w: find(c, |k| k.contains("package power") && !k.starts_with("max"))
            .and_then(|v| number(v, "")),
        clocks: Default::default(),
        health: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_levels_and_generations() {
        assert_eq!(link_level("1 (16.0GT/s x16)"), Some((4, 16, false)));
        assert_eq!(link_level("8.0GT/s x16 *"), Some((3, 16, true)));
        assert_eq!(link_level("2.5GT/s x1"), Some((1, 1, false)));
        assert_eq!(link_level("1200Mhz"), None);
        assert_eq!(link_level("3.0GT/s x4"), None);
    }

    /// The ECC rule on keys shaped like rocm-smi's RAS output (no real
    /// sample was available; see the module docs).
    #[test]
    fn ecc_keys_by_pattern() {
        let j = r#"{"card0": {"PCI Bus": "0000:C1:00.0", "Correctable ECC Errors": "3",
                   "Uncorrectable ECC Errors": "1", "Card series": "Instinct MI210"}}"#;
        let d = parse(j).unwrap();
        assert_eq!(d[0].ecc.volatile.corrected, Some(3));
        assert_eq!(d[0].ecc.volatile.uncorrected, Some(1));
        assert_eq!(d[0].bus_id.as_deref(), Some("0000:c1:00.0"));
        let none = parse(r#"{"card0": {"PCI Bus": "0000:C1:00.0"}}"#).unwrap();
        assert_eq!(none[0].ecc.volatile, EccCounts::default());
    }
}
