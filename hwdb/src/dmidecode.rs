//! `dmidecode` text output, and the `/sys/class/dmi/id` fallback.
//!
//! A record starts at `Handle 0x…, DMI type N, M bytes`, the next line is
//! its name, then tab-indented `Key: Value` lines; deeper-indented lines
//! are list items of the last key (`Characteristics:`, `Features:`).

use std::collections::BTreeMap;

use crate::profile::{MemoryDevice, SystemProfile};
use crate::text::{parse_hex_u64, parse_int_u64, real_value};

/// One SMBIOS structure as dmidecode printed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmiRecord {
    pub handle: u16,
    pub dmi_type: u8,
    /// `System Information`, `Processor Information`, …
    pub name: String,
    pub fields: Vec<(String, String)>,
    /// Multi-line lists, by key.
    pub lists: BTreeMap<String, Vec<String>>,
}

impl DmiRecord {
    /// Value of `key`, placeholders included.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Value of `key` unless it is a placeholder (`Not Specified`, `To be filled by O.E.M.`, …).
    pub fn get(&self, key: &str) -> Option<String> {
        self.raw(key).and_then(real_value)
    }
}

/// SMBIOS type 4, the fields identification uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DmiProcessor {
    pub socket: Option<String>,
    pub family: Option<String>,
    pub manufacturer: Option<String>,
    pub version: Option<String>,
    /// The 8 `ID:` bytes in the order printed.
    pub id: Option<[u8; 8]>,
    /// `Signature:` as printed (`Implementor 0x48, Variant 0x1, …, Part 0xd01, …`
    /// on ARM; `Type 0, Family 6, Model 85, Stepping 4` on x86).
    pub signature: Option<String>,
    pub core_count: Option<u32>,
    pub thread_count: Option<u32>,
    pub populated: bool,
}

impl DmiProcessor {
    /// ARM `(implementer, part)`: from the `Signature:` line dmidecode
    /// decoded, else from `ID:` read as MIDR_EL1 (SMBIOS 3.x, §7.5.3.3:
    /// on ARM64 the low 32 bits of Processor ID are MIDR_EL1) when the
    /// upper half is zero.
    pub fn arm_midr(&self) -> Option<(u8, u16)> {
        if let Some(sig) = &self.signature {
            let imp = field_after(sig, "Implementor ").and_then(parse_hex_u64);
            let part = field_after(sig, "Part ").and_then(parse_hex_u64);
            if let (Some(i), Some(p)) = (imp, part) {
                return Some((u8::try_from(i).ok()?, u16::try_from(p).ok()?));
            }
        }
        let id = self.id?;
        if id[4..].iter().any(|b| *b != 0) || id[..4].iter().all(|b| *b == 0) {
            return None;
        }
        let midr = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
        let imp = (midr >> 24) as u8;
        let part = ((midr >> 4) & 0xfff) as u16;
        Some((imp, part))
    }

    /// x86 `(family, model, stepping)` from `ID:` (bytes 0..4 = CPUID leaf 1 EAX).
    pub fn x86_signature(&self) -> Option<(u32, u32, u32)> {
        let id = self.id?;
        let eax = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
        (eax != 0 && eax != u32::MAX).then(|| crate::cpuid::decode_x86_signature(eax))
    }
}

fn field_after<'a>(s: &'a str, label: &str) -> Option<&'a str> {
    let i = s.find(label)?;
    let rest = &s[i + label.len()..];
    Some(rest.split([',', ' ']).next().unwrap_or(rest))
}

/// A parsed dmidecode output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dmi {
    pub records: Vec<DmiRecord>,
}

impl Dmi {
    pub fn parse(text: &str) -> Dmi {
        let mut records: Vec<DmiRecord> = Vec::new();
        let mut cur: Option<DmiRecord> = None;
        let mut key_indent = usize::MAX;
        let mut last_key: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("Handle ") {
                if let Some(r) = cur.take() {
                    records.push(r);
                }
                let mut parts = rest.split(',').map(str::trim);
                let handle = parts
                    .next()
                    .and_then(parse_hex_u64)
                    .and_then(|h| u16::try_from(h).ok())
                    .unwrap_or(0);
                let dmi_type = parts
                    .next()
                    .and_then(|t| t.strip_prefix("DMI type "))
                    .and_then(|t| t.trim().parse::<u8>().ok());
                if let Some(dmi_type) = dmi_type {
                    cur = Some(DmiRecord {
                        handle,
                        dmi_type,
                        ..DmiRecord::default()
                    });
                }
                key_indent = usize::MAX;
                last_key = None;
                continue;
            }
            let Some(rec) = cur.as_mut() else { continue };
            if line.trim().is_empty() {
                continue;
            }
            let indent = line.len() - line.trim_start().len();
            if indent == 0 {
                if rec.name.is_empty() {
                    rec.name = line.trim().to_string();
                }
                continue;
            }
            if indent > key_indent {
                if let Some(k) = &last_key {
                    rec.lists
                        .entry(k.clone())
                        .or_default()
                        .push(line.trim().to_string());
                }
                continue;
            }
            key_indent = indent;
            let t = line.trim();
            match t.split_once(':') {
                Some((k, v)) => {
                    let k = k.trim().to_string();
                    rec.fields.push((k.clone(), v.trim().to_string()));
                    last_key = Some(k);
                }
                None => last_key = None,
            }
        }
        if let Some(r) = cur {
            records.push(r);
        }
        Dmi { records }
    }

    pub fn of_type(&self, t: u8) -> impl Iterator<Item = &DmiRecord> {
        self.records.iter().filter(move |r| r.dmi_type == t)
    }

    fn first(&self, t: u8, key: &str) -> Option<String> {
        self.of_type(t).find_map(|r| r.get(key))
    }

    /// System, board, BIOS and chassis (types 1, 2, 0, 3) and BMC (38/42).
    pub fn system_profile(&self) -> SystemProfile {
        let has_any = !self.records.is_empty();
        let bmc = if self.of_type(38).next().is_some() || self.of_type(42).next().is_some() {
            Some(true)
        } else if self.of_type(1).next().is_some() {
            Some(false)
        } else {
            None
        };
        SystemProfile {
            vendor: self.first(1, "Manufacturer"),
            product: self.first(1, "Product Name"),
            sku: self.first(1, "SKU Number"),
            family: self.first(1, "Family"),
            serial: self.first(1, "Serial Number"),
            board_vendor: self.first(2, "Manufacturer"),
            board_name: self.first(2, "Product Name"),
            bios_vendor: self.first(0, "Vendor"),
            bios_version: self.first(0, "Version"),
            bios_date: self.first(0, "Release Date"),
            chassis_type: self.first(3, "Type"),
            bmc_present: if has_any { bmc } else { None },
            ..SystemProfile::default()
        }
    }

    /// Processor records (type 4) that are CPUs (not empty sockets of other kinds).
    pub fn processors(&self) -> Vec<DmiProcessor> {
        self.of_type(4)
            .filter(|r| {
                r.raw("Type")
                    .is_none_or(|t| t.eq_ignore_ascii_case("Central Processor"))
            })
            .map(|r| DmiProcessor {
                socket: r.get("Socket Designation"),
                family: r.get("Family"),
                manufacturer: r.get("Manufacturer"),
                version: r.get("Version"),
                id: r.raw("ID").and_then(parse_id_bytes),
                signature: r.get("Signature"),
                core_count: r
                    .raw("Core Count")
                    .and_then(parse_int_u64)
                    .and_then(|n| u32::try_from(n).ok()),
                thread_count: r
                    .raw("Thread Count")
                    .and_then(parse_int_u64)
                    .and_then(|n| u32::try_from(n).ok()),
                populated: r.raw("Status").is_none_or(|s| s.starts_with("Populated")),
            })
            .collect()
    }

    /// Installed memory devices (type 17 with a size).
    pub fn memory_devices(&self) -> Vec<MemoryDevice> {
        self.of_type(17)
            .filter_map(|r| {
                let size = r.raw("Size").and_then(parse_size)?;
                if size == 0 {
                    return None;
                }
                Some(MemoryDevice {
                    locator: r.get("Locator").unwrap_or_default(),
                    size_bytes: size,
                    speed_mts: r.raw("Speed").and_then(parse_speed),
                    part_number: r.get("Part Number"),
                    manufacturer: r.get("Manufacturer"),
                })
            })
            .collect()
    }
}

fn parse_id_bytes(s: &str) -> Option<[u8; 8]> {
    let v: Vec<u8> = s
        .split_whitespace()
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    <[u8; 8]>::try_from(v.as_slice()).ok()
}

/// `16 GB`, `16384 MB`, `1 TB`, `512 kB` → bytes; `No Module Installed`,
/// `Not Installed`, `Unknown` → `None`.
pub fn parse_size(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let mult: u64 = match it.next()?.to_ascii_lowercase().as_str() {
        "bytes" | "b" => 1,
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `2933 MT/s` or `2400 MHz` → 2933 / 2400.
fn parse_speed(s: &str) -> Option<u32> {
    let mut it = s.split_whitespace();
    let n: u32 = it.next()?.parse().ok()?;
    matches!(it.next()?, "MT/s" | "MHz").then_some(n)
}

/// SMBIOS chassis type (DSP0134 §7.4.1) → the name dmidecode prints.
pub fn chassis_type_name(code: u8) -> Option<&'static str> {
    const NAMES: [&str; 36] = [
        "Other",
        "Unknown",
        "Desktop",
        "Low Profile Desktop",
        "Pizza Box",
        "Mini Tower",
        "Tower",
        "Portable",
        "Laptop",
        "Notebook",
        "Hand Held",
        "Docking Station",
        "All In One",
        "Sub Notebook",
        "Space-saving",
        "Lunch Box",
        "Main Server Chassis",
        "Expansion Chassis",
        "Sub Chassis",
        "Bus Expansion Chassis",
        "Peripheral Chassis",
        "RAID Chassis",
        "Rack Mount Chassis",
        "Sealed-case PC",
        "Multi-system",
        "CompactPCI",
        "AdvancedTCA",
        "Blade",
        "Blade Enclosing",
        "Tablet",
        "Convertible",
        "Detachable",
        "IoT Gateway",
        "Embedded PC",
        "Mini PC",
        "Stick PC",
    ];
    // Bit 7 is the chassis-lock flag.
    let code = usize::from(code & 0x7f);
    code.checked_sub(1).and_then(|i| NAMES.get(i)).copied()
}

/// `/sys/class/dmi/id/<attr>` map → system profile. `chassis_type` is numeric there.
pub fn system_from_sysfs(map: &BTreeMap<String, String>) -> SystemProfile {
    let g = |k: &str| map.get(k).and_then(|v| real_value(v));
    SystemProfile {
        vendor: g("sys_vendor"),
        product: g("product_name"),
        sku: g("product_sku"),
        family: g("product_family"),
        serial: g("product_serial"),
        board_vendor: g("board_vendor"),
        board_name: g("board_name"),
        bios_vendor: g("bios_vendor"),
        bios_version: g("bios_version"),
        bios_date: g("bios_date"),
        chassis_type: map.get("chassis_type").and_then(|v| {
            v.trim()
                .parse::<u8>()
                .ok()
                .and_then(chassis_type_name)
                .map(str::to_string)
        }),
        ..SystemProfile::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_chassis() {
        assert_eq!(parse_size("16 GB"), Some(16 << 30));
        assert_eq!(parse_size("16384 MB"), Some(16 << 30));
        assert_eq!(parse_size("No Module Installed"), None);
        assert_eq!(chassis_type_name(17), Some("Main Server Chassis"));
        assert_eq!(chassis_type_name(23 | 0x80), Some("Rack Mount Chassis"));
        assert_eq!(chassis_type_name(0), None);
    }

    #[test]
    fn midr_from_id() {
        let p = DmiProcessor {
            id: parse_id_bytes("20 86 0F 70 00 00 00 00"),
            ..DmiProcessor::default()
        };
        assert_eq!(p.arm_midr(), Some((0x70, 0x862)));
    }
}
