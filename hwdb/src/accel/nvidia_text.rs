//! `nvidia-smi -q`: the text log. A `GPU 00000000:07:00.0` line opens each
//! GPU; below it, `Label : value` lines and section headers nest by
//! indentation (four spaces a level). The labels are the XML's in words
//! (`ECC Errors` / `Volatile` / `SRAM Uncorrectable SEC-DED`), and older
//! drivers print `Single Bit` / `Double Bit` sections with a `Total`.

use super::tree::{ecc_scope, Node, MAX_DEPTH};
use super::{active, thermal_slowdown, Clocks, PcieState, RemappedRows, RetiredPages};
use super::{canonical_bus_id, count, ecc_mode, number, text, yes_no, AccelDevice, Ecc};
use crate::Error;

const WHAT: &str = "nvidia-smi -q";

/// `Label : value` → (label, value); the separator is a colon preceded by a
/// space, so colons inside values (bus ids, times) stay there.
fn split(line: &str) -> (&str, &str) {
    let b = line.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b':' && i > 0 && b[i - 1] == b' ' {
            return (line[..i].trim(), line[i + 1..].trim());
        }
    }
    (line.trim(), "")
}

fn is_gpu_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("GPU ")?;
    let id = rest.trim();
    (id.contains(':') && !id.contains(' ')).then_some(id)
}

/// Parses `nvidia-smi -q` output.
pub fn parse(text: &str) -> Result<Vec<AccelDevice>, Error> {
    let mut driver = None;
    let mut header_seen = false;
    let mut gpus: Vec<Node> = Vec::new();
    // The open sections of the current GPU: (indent, node).
    let mut stack: Vec<(usize, Node)> = Vec::new();
    let close_all = |stack: &mut Vec<(usize, Node)>, gpus: &mut Vec<Node>| {
        while let Some((_, n)) = stack.pop() {
            match stack.last_mut() {
                Some((_, parent)) => parent.children.push(n),
                None => gpus.push(n),
            }
        }
    };
    for line in text.lines() {
        if line.contains("NVSMI LOG") {
            header_seen = true;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if let Some(id) = is_gpu_header(line) {
            close_all(&mut stack, &mut gpus);
            let mut g = Node::new("GPU", "");
            g.children.push(Node::new("@id", id));
            stack.push((0, g));
            continue;
        }
        let indent = line.len() - line.trim_start_matches(' ').len();
        let (label, value) = split(line);
        if indent == 0 {
            close_all(&mut stack, &mut gpus);
            if label.eq_ignore_ascii_case("Driver Version") {
                driver = text_opt(value);
            }
            continue;
        }
        if stack.is_empty() {
            continue;
        }
        while stack.len() > 1 && stack.last().is_some_and(|(i, _)| *i >= indent) {
            if let Some((_, n)) = stack.pop() {
                if let Some((_, parent)) = stack.last_mut() {
                    parent.children.push(n);
                }
            }
        }
        let node = Node::new(label, value);
        if stack.len() >= MAX_DEPTH {
            if let Some((_, parent)) = stack.last_mut() {
                parent.children.push(node);
            }
        } else {
            stack.push((indent, node));
        }
    }
    close_all(&mut stack, &mut gpus);
    if !header_seen && gpus.is_empty() {
        return Err(Error::parse(
            WHAT,
            1,
            "neither an `NVSMI LOG` header nor a `GPU dddddddd:bb:dd.f` line",
        ));
    }
    Ok(gpus.iter().map(|g| device(g, driver.clone())).collect())
}

fn text_opt(v: &str) -> Option<String> {
    text(v)
}

fn device(g: &Node, driver_version: Option<String>) -> AccelDevice {
    let link = |p: &[&str]| {
        let mut path = vec!["PCI", "GPU Link Info"];
        path.extend_from_slice(p);
        g.get(&path)
            .and_then(|v| count(v, "x"))
            .and_then(|v| u32::try_from(v).ok())
    };
    let rp = |k: &str| g.get(&["Retired Pages", k]);
    let rr = |k: &str| g.get(&["Remapped Rows", k]);
    AccelDevice {
        vendor: "NVIDIA".into(),
        model: g.get(&["Product Name"]).and_then(text),
        bus_id: g
            .first(&[&["PCI", "Bus Id"], &["@id"]])
            .and_then(canonical_bus_id),
        serial: g.get(&["Serial Number"]).and_then(text),
        driver_version,
        vbios: g.get(&["VBIOS Version"]).and_then(text),
        memory_total_mib: g
            .get(&["FB Memory Usage", "Total"])
            .and_then(|v| count(v, "MiB")),
        ecc_mode: g.get(&["ECC Mode", "Current"]).and_then(ecc_mode),
        ecc: Ecc {
            volatile: ecc_scope(
                g.at(&["ECC Errors", "Volatile"]),
                "Single Bit",
                "Double Bit",
            ),
            aggregate: ecc_scope(
                g.at(&["ECC Errors", "Aggregate"]),
                "Single Bit",
                "Double Bit",
            ),
        },
        retired_pages: RetiredPages {
            single_bit: rp("Single Bit ECC").and_then(|v| count(v, "")),
            double_bit: rp("Double Bit ECC").and_then(|v| count(v, "")),
            pending: g
                .first(&[
                    &["Retired Pages", "Pending Page Retirement"],
                    &["Retired Pages", "Pending Page Blacklist"],
                    &["Retired Pages", "Pending"],
                ])
                .and_then(yes_no),
        },
        remapped_rows: RemappedRows {
            correctable: rr("Correctable Error").and_then(|v| count(v, "")),
            uncorrectable: rr("Uncorrectable Error").and_then(|v| count(v, "")),
            pending: rr("Pending").and_then(yes_no),
            failure: rr("Remapping Failure Occurred").and_then(yes_no),
        },
        pcie: PcieState {
            gen_current: link(&["PCIe Generation", "Current"]),
            gen_max: link(&["PCIe Generation", "Max"]),
            width_current: link(&["Link Width", "Current"]),
            width_max: link(&["Link Width", "Max"]),
            gen_max_device: link(&["PCIe Generation", "Device Max"]),
            gen_max_host: link(&["PCIe Generation", "Host Max"]),
        },
        temperature_c: g
            .get(&["Temperature", "GPU Current Temp"])
            .and_then(|v| number(v, "C")),
        power_w: g
            .first(&[
                &["GPU Power Readings", "Power Draw"],
                &["GPU Power Readings", "Instant Power Draw"],
                &["GPU Power Readings", "Average Power Draw"],
                &["Power Readings", "Power Draw"],
                &["Power Readings", "Instant Power Draw"],
                &["Power Readings", "Average Power Draw"],
            ])
            .and_then(|v| number(v, "W")),
        clocks: Clocks {
            sm_mhz: mhz(g.get(&["Clocks", "SM"])),
            sm_max_mhz: mhz(g.get(&["Max Clocks", "SM"])),
            thermal_slowdown: thermal_slowdown(
                reason(
                    g,
                    &["HW Slowdown", "HW Thermal Slowdown"],
                    "HW Thermal Slowdown",
                ),
                reason(g, &["SW Thermal Slowdown"], "SW Thermal Slowdown"),
            ),
        },
        health: None,
    }
}

fn mhz(v: Option<&str>) -> Option<u32> {
    v.and_then(|v| count(v, "MHz"))
        .and_then(|v| u32::try_from(v).ok())
}

/// A clock event reason: under `Clocks Event Reasons` (drivers from 535)
/// or `Clocks Throttle Reasons`, nested under `HW Slowdown` by newer
/// drivers (`nested`) or at the section's top level (`flat`).
fn reason(g: &Node, nested: &[&str], flat: &str) -> Option<bool> {
    ["Clocks Event Reasons", "Clocks Throttle Reasons"]
        .iter()
        .find_map(|section| {
            let mut p = vec![*section];
            p.extend_from_slice(nested);
            g.first(&[&p, &[section, flat]])
        })
        .and_then(active)
}
