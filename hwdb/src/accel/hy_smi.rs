//! Hygon DCU `hy-smi` (the default table):
//!
//! ```text
//! DCU     Temp     AvgPwr     Perf     PwrCap     VRAM%      DCU%      Mode
//! 0       49.0C    118.0W     auto     800.0W     0%         0%        Normal
//! ```
//!
//! Columns are found by their header names (`Temp`, `AvgPwr`/`Pwr`), the
//! first column (`DCU`, `HCU` in later DTK releases) being the index. The
//! table names no model, bus id, serial or memory size: those are `None`.

use super::{number, AccelDevice};
use crate::Error;

const WHAT: &str = "hy-smi";

/// Parses `hy-smi` output.
pub fn parse(text: &str) -> Result<Vec<AccelDevice>, Error> {
    let mut header: Option<Vec<String>> = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = cols.first() else { continue };
        if header.is_none() {
            if first.chars().all(|c| c.is_ascii_alphabetic())
                && cols.iter().any(|c| c.eq_ignore_ascii_case("Temp"))
            {
                header = Some(cols.iter().map(|c| c.to_ascii_lowercase()).collect());
            }
            continue;
        }
        let Some(h) = &header else { continue };
        if !first.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let col = |names: &[&str]| {
            h.iter()
                .position(|x| names.contains(&x.as_str()))
                .and_then(|i| cols.get(i))
                .copied()
        };
        out.push(AccelDevice {
            vendor: "Hygon".into(),
            temperature_c: col(&["temp"]).and_then(|v| number(v, "C")),
            power_w: col(&["avgpwr", "pwr", "power"]).and_then(|v| number(v, "W")),
            ..AccelDevice::default()
        });
    }
    if header.is_none() {
        return Err(Error::parse(
            WHAT,
            1,
            "no table header naming a `Temp` column: not hy-smi output",
        ));
    }
    Ok(out)
}
