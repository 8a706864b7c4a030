//! `nvidia-smi -q -x`: the XML log (`<nvidia_smi_log>`, one `<gpu id=…>`
//! per GPU).
//!
//! Layouts differ by DTD version (`<!DOCTYPE nvidia_smi_log SYSTEM
//! "nvsmi_device_vNN.dtd">`; drivers before ~2019 print none). What this
//! parser reads, and where each layout puts it:
//! - ECC counters: `ecc_errors/{volatile,aggregate}/{single_bit,double_bit}/total`
//!   (pre-Ampere, DTD ≤ v11) or `…/{sram,dram}_{correctable,uncorrectable}`
//!   (v11/v12), with `sram_uncorrectable` split into `_parity` and `_secded`
//!   (v12 late, v13);
//! - power: `power_readings/power_draw` (≤ v11), `gpu_power_readings/power_draw`
//!   (v12), `gpu_power_readings/{instant,average}_power_draw` (v12 from
//!   driver 550, v13);
//! - retired pages: `retired_pages/pending_blacklist` (old name) or
//!   `pending_retirement`; `remapped_rows` is `N/A` or absent before Ampere.

use quick_xml::events::Event;

use super::tree::{ecc_scope, Node, MAX_DEPTH};
use super::{active, thermal_slowdown, Clocks, PcieState, RemappedRows, RetiredPages};
use super::{canonical_bus_id, count, ecc_mode, number, text, yes_no, AccelDevice, Ecc};
use crate::Error;

const WHAT: &str = "nvidia-smi -q -x";

/// The DTD version the log declares (`12` for `nvsmi_device_v12.dtd`).
pub fn dtd_version(xml: &str) -> Option<u32> {
    let at = xml.find("nvsmi_device_v")? + "nvsmi_device_v".len();
    let digits: String = xml[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Parses the XML into its element tree.
fn tree(xml: &str) -> Result<Node, Error> {
    let mut reader = quick_xml::Reader::from_str(xml);
    reader.config_mut().trim_text(true);
    let err = |reader: &quick_xml::Reader<&[u8]>, m: String| {
        let pos = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        Error::parse(WHAT, super::line_of(xml, pos), m)
    };
    let mut stack: Vec<Node> = vec![Node::new("#document", "")];
    loop {
        let ev = reader
            .read_event()
            .map_err(|e| err(&reader, e.to_string()))?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(e) | Event::Empty(e) => {
                if stack.len() > MAX_DEPTH {
                    return Err(err(
                        &reader,
                        format!("elements nest deeper than {MAX_DEPTH}"),
                    ));
                }
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let mut node = Node::new(&name, "");
                // `<gpu id="…">`: the bus id, kept as a child like the others.
                for a in e.attributes().flatten() {
                    if a.key.as_ref() == b"id" {
                        let v = a
                            .unescape_value()
                            .map_err(|x| err(&reader, x.to_string()))?;
                        node.children.push(Node::new("@id", &v));
                    }
                }
                if empty {
                    if let Some(top) = stack.last_mut() {
                        top.children.push(node);
                    }
                } else {
                    stack.push(node);
                }
            }
            Event::End(_) => {
                if stack.len() < 2 {
                    return Err(err(&reader, "closing tag without an opening one".into()));
                }
                if let (Some(done), Some(parent)) = (stack.pop(), stack.last_mut()) {
                    parent.children.push(done);
                }
            }
            Event::Text(t) => {
                let v = t.unescape().map_err(|x| err(&reader, x.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.value.push_str(&v);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.value.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() != 1 {
        return Err(Error::parse(
            WHAT,
            super::line_of(xml, xml.len()),
            "the document ends inside an element",
        ));
    }
    let doc = stack.pop().unwrap_or_default();
    doc.children
        .into_iter()
        .find(|c| c.name == "nvidia_smi_log")
        .ok_or_else(|| Error::parse(WHAT, 1, "no <nvidia_smi_log> root element"))
}

/// Parses `nvidia-smi -q -x` output.
pub fn parse(xml: &str) -> Result<Vec<AccelDevice>, Error> {
    let log = tree(xml)?;
    let driver = log.get(&["driver_version"]).and_then(text);
    Ok(log
        .children
        .iter()
        .filter(|c| c.name == "gpu")
        .map(|g| device(g, driver.clone()))
        .collect())
}

fn device(g: &Node, driver_version: Option<String>) -> AccelDevice {
    let link = |p: &[&str]| {
        let mut path = vec!["pci", "pci_gpu_link_info"];
        path.extend_from_slice(p);
        g.get(&path)
            .and_then(|v| count(v, "x"))
            .and_then(|v| u32::try_from(v).ok())
    };
    let retired = |which: &str| {
        g.get(&["retired_pages", which, "retired_count"])
            .and_then(|v| count(v, ""))
    };
    let rows = g.at(&["remapped_rows"]);
    let row = |k: &str| rows.and_then(|r| r.get(&[k]));
    AccelDevice {
        vendor: "NVIDIA".into(),
        model: g.get(&["product_name"]).and_then(text),
        bus_id: g
            .first(&[&["pci", "pci_bus_id"], &["@id"]])
            .and_then(canonical_bus_id),
        serial: g.get(&["serial"]).and_then(text),
        driver_version,
        vbios: g.get(&["vbios_version"]).and_then(text),
        memory_total_mib: g
            .get(&["fb_memory_usage", "total"])
            .and_then(|v| count(v, "MiB")),
        ecc_mode: g.get(&["ecc_mode", "current_ecc"]).and_then(ecc_mode),
        ecc: Ecc {
            volatile: ecc_scope(
                g.at(&["ecc_errors", "volatile"]),
                "single_bit",
                "double_bit",
            ),
            aggregate: ecc_scope(
                g.at(&["ecc_errors", "aggregate"]),
                "single_bit",
                "double_bit",
            ),
        },
        retired_pages: RetiredPages {
            single_bit: retired("multiple_single_bit_retirement"),
            double_bit: retired("double_bit_retirement"),
            pending: g
                .first(&[
                    &["retired_pages", "pending_retirement"],
                    &["retired_pages", "pending_blacklist"],
                ])
                .and_then(yes_no),
        },
        remapped_rows: RemappedRows {
            correctable: row("remapped_row_corr").and_then(|v| count(v, "")),
            uncorrectable: row("remapped_row_unc").and_then(|v| count(v, "")),
            pending: row("remapped_row_pending").and_then(yes_no),
            failure: row("remapped_row_failure").and_then(yes_no),
        },
        pcie: PcieState {
            gen_current: link(&["pcie_gen", "current_link_gen"]),
            gen_max: link(&["pcie_gen", "max_link_gen"]),
            width_current: link(&["link_widths", "current_link_width"]),
            width_max: link(&["link_widths", "max_link_width"]),
            gen_max_device: link(&["pcie_gen", "max_device_link_gen"]),
            gen_max_host: link(&["pcie_gen", "max_host_link_gen"]),
        },
        temperature_c: g
            .get(&["temperature", "gpu_temp"])
            .and_then(|v| number(v, "C")),
        power_w: g
            .first(&[
                &["gpu_power_readings", "power_draw"],
                &["gpu_power_readings", "instant_power_draw"],
                &["gpu_power_readings", "average_power_draw"],
                &["power_readings", "power_draw"],
                &["power_readings", "instant_power_draw"],
                &["power_readings", "average_power_draw"],
            ])
            .and_then(|v| number(v, "W")),
        clocks: Clocks {
            sm_mhz: mhz(g.get(&["clocks", "sm_clock"])),
            sm_max_mhz: mhz(g.get(&["max_clocks", "sm_clock"])),
            thermal_slowdown: thermal_slowdown(
                reason(g, "hw_thermal_slowdown"),
                reason(g, "sw_thermal_slowdown"),
            ),
        },
        health: None,
    }
}

fn mhz(v: Option<&str>) -> Option<u32> {
    v.and_then(|v| count(v, "MHz"))
        .and_then(|v| u32::try_from(v).ok())
}

/// `clocks_event_reasons/clocks_event_reason_X` (v12 and later) or
/// `clocks_throttle_reasons/clocks_throttle_reason_X`.
fn reason(g: &Node, which: &str) -> Option<bool> {
    g.first(&[
        &[
            "clocks_event_reasons",
            &format!("clocks_event_reason_{which}"),
        ],
        &[
            "clocks_throttle_reasons",
            &format!("clocks_throttle_reason_{which}"),
        ],
    ])
    .and_then(active)
}
