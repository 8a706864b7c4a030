//! Ascend `npu-smi info`: a box-drawn table, two rows per NPU chip:
//!
//! ```text
//! | NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
//! | Chip  [Phy-ID|Device]     | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
//! +===========================+===============+====================================================+
//! | 0     910B2C              | OK            | 88.6        51                0    / 0             |
//! | 0                         | 0000:5A:00.0  | 0           0    / 0          20701/ 65536         |
//! ```
//!
//! The second header row says whether an `HBM-Usage` column exists; memory
//! is the HBM total where there is HBM, else the `Memory-Usage` total. `-`
//! (a card's second chip has no power reading of its own) and `NA` are
//! `None`. The `Version:` of the banner is the driver's. The process table
//! that follows (`Process id`) is not read.

use super::{canonical_bus_id, count, number, reported, text, AccelDevice};
use crate::Error;

const WHAT: &str = "npu-smi info";

fn cells(line: &str) -> Option<Vec<&str>> {
    let t = line.trim();
    let inner = t.strip_prefix('|')?.strip_suffix('|')?;
    Some(inner.split('|').map(str::trim).collect())
}

/// `used / total` pairs in a cell, in order.
fn pairs(cell: &str) -> Vec<(String, String)> {
    let toks: Vec<&str> = cell.split_whitespace().collect();
    let joined = toks.join(" ").replace(" /", "/").replace("/ ", "/");
    joined
        .split(' ')
        .filter_map(|t| t.split_once('/'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Parses `npu-smi info` output.
pub fn parse(text_in: &str) -> Result<Vec<AccelDevice>, Error> {
    let driver = text_in.lines().find_map(|l| {
        let at = l.find("Version:")? + "Version:".len();
        l[at..].split_whitespace().next().and_then(text)
    });
    let mut has_hbm = None;
    let mut saw_header = false;
    let mut out = Vec::new();
    let mut first_row: Option<Vec<String>> = None;
    for line in text_in.lines() {
        let Some(c) = cells(line) else {
            continue;
        };
        if c.len() < 3 {
            continue;
        }
        if c.iter().any(|x| x.contains("Process id")) {
            break;
        }
        if c[0].starts_with("NPU") && c[1].starts_with("Health") {
            saw_header = true;
            continue;
        }
        if c[0].starts_with("Chip") && c[1].starts_with("Bus-Id") {
            has_hbm = Some(c[2].contains("HBM"));
            continue;
        }
        let lead = c[0].split_whitespace().next().unwrap_or("");
        if !saw_header || !lead.chars().all(|ch| ch.is_ascii_digit()) || lead.is_empty() {
            continue;
        }
        let Some(row1) = first_row.take() else {
            first_row = Some(c.iter().map(|s| s.to_string()).collect());
            continue;
        };
        // row1: NPU Name | Health | Power Temp Hugepages; c: Chip … | Bus-Id | AICore Memory [HBM]
        let name = row1[0].split_whitespace().nth(1).and_then(text);
        let r1: Vec<&str> = row1[2].split_whitespace().collect();
        let mem = pairs(c[2]);
        let total = |i: usize| {
            mem.get(i)
                .and_then(|(_, t)| count(t, ""))
                .filter(|t| *t > 0)
        };
        let memory = if has_hbm.unwrap_or(mem.len() > 1) {
            total(1).or_else(|| total(0))
        } else {
            total(0)
        };
        out.push(AccelDevice {
            vendor: "Huawei".into(),
            model: name,
            bus_id: canonical_bus_id(c[1]),
            driver_version: driver.clone(),
            memory_total_mib: memory,
            temperature_c: r1.get(1).and_then(|v| number(v, "")),
            power_w: r1.first().and_then(|v| number(v, "")),
            clocks: Default::default(),
            health: reported(&row1[1]).map(str::to_string),
            ..AccelDevice::default()
        });
    }
    if !saw_header {
        return Err(Error::parse(
            WHAT,
            1,
            "no `| NPU … | Health |` table header: not npu-smi info output",
        ));
    }
    Ok(out)
}
