//! `lspci` outputs and `/proc/bus/pci/devices`.
//!
//! Accepted: `lspci`, `lspci -nn`, `-nn -k`, `-v`/`-vv`/`-vvv` (with or
//! without `-nn`: `Kernel driver in use`, `Kernel modules`, `Subsystem`,
//! `LnkCap`/`LnkSta`), `lspci -vmm -nn` and `-vmm -nnk`, and the kernel's
//! `/proc/bus/pci/devices` table. Addresses are normalised to
//! `dddd:bb:dd.f` (`00:1f.2` → `0000:00:1f.2`).

use crate::text::parse_hex_u64;

/// A PCIe link as `lspci -vv` prints it (`Speed 8GT/s, Width x16`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PciLink {
    /// `8GT/s`, `2.5GT/s`, … ([`normalize_link_speed`])
    pub speed: Option<String>,
    /// `x16`, …
    pub width: Option<String>,
}

/// One function as one of the inputs describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LspciDevice {
    /// `dddd:bb:dd.f`
    pub address: String,
    /// 24-bit class when known (`[0302]` + prog-if).
    pub class: Option<u32>,
    /// Class name as printed (`3D controller`).
    pub class_name: Option<String>,
    pub vendor_id: Option<u16>,
    pub device_id: Option<u16>,
    pub subvendor_id: Option<u16>,
    pub subdevice_id: Option<u16>,
    pub revision: Option<u8>,
    /// `-vmm` prints vendor and device names apart.
    pub vendor_name: Option<String>,
    pub device_name: Option<String>,
    /// Without `-vmm`: vendor and device names as one text (`NVIDIA Corporation GA100 [A100 SXM4 80GB]`).
    pub description: Option<String>,
    /// `Kernel driver in use` / `Driver:` / the driver column of `/proc/bus/pci/devices`.
    pub driver: Option<String>,
    /// `Kernel modules` / `Module:` (lspci's own modules.alias lookup).
    pub modules: Vec<String>,
    /// Whether the input shows bindings at all (`-k`, `-v`, `-vmm -k`, `/proc`):
    /// then `driver == None` means "not bound" rather than "not shown".
    pub binding_known: bool,
    /// Whether `class`'s low byte is the real programming interface: `-v`
    /// and `-vmm` print it when non-zero, plain `lspci -nn [-k]` never does
    /// (then the low byte is 0 and means "not shown").
    pub prog_if_known: bool,
    /// The programming interface when printed (`(prog-if 30 [XHCI])`,
    /// `ProgIf:`), kept apart for inputs without numeric class ids.
    pub prog_if: Option<u8>,
    /// Whether `subvendor_id`/`subdevice_id` being `None` means "none" (the
    /// input prints `Subsystem`/`SVendor` lines: `-k`, `-v`, `-vmm`) rather
    /// than "not shown".
    pub subsystem_known: bool,
    pub link_cap: Option<PciLink>,
    pub link_sta: Option<PciLink>,
}

/// Normalise a PCI address: add the `0000:` domain when absent, lowercase.
pub fn normalize_address(a: &str) -> String {
    let a = a.trim().to_ascii_lowercase();
    if a.matches(':').count() == 1 {
        format!("0000:{a}")
    } else {
        a
    }
}

fn is_address(tok: &str) -> bool {
    let Some((head, func)) = tok.rsplit_once('.') else {
        return false;
    };
    func.len() == 1
        && func.chars().all(|c| c.is_ascii_digit())
        && head.split(':').count() >= 2
        && head
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Parse any `lspci` text output (format detected).
pub fn parse_lspci(text: &str) -> Vec<LspciDevice> {
    let vmm = text.lines().any(|l| l.starts_with("Slot:"));
    if vmm {
        parse_vmm(text)
    } else {
        parse_default(text)
    }
}

/// `[name] [hhhh]` at the end → (name, hex).
fn trailing_bracket_hex(s: &str) -> (String, Option<u64>) {
    let s = s.trim();
    if let Some(open) = s.rfind(" [").or_else(|| s.starts_with('[').then_some(0)) {
        let inner = s[open..].trim_start();
        if let Some(inner) = inner.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
            if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_hexdigit()) {
                return (s[..open].trim().to_string(), parse_hex_u64(inner));
            }
        }
    }
    (s.to_string(), None)
}

fn parse_vmm(text: &str) -> Vec<LspciDevice> {
    let binding_known = text
        .lines()
        .any(|l| l.starts_with("Driver:") || l.starts_with("Module:"));
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut d = LspciDevice {
            binding_known,
            prog_if_known: true,
            subsystem_known: true,
            ..LspciDevice::default()
        };
        let mut prog_if: Option<u32> = None;
        let mut class16: Option<u32> = None;
        for line in block.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            // `Slot:` values contain colons; split only at the first.
            let v = v.trim();
            match k {
                "Slot" => d.address = normalize_address(v),
                "Class" => {
                    let (name, id) = trailing_bracket_hex(v);
                    d.class_name = Some(name);
                    class16 = id.map(|c| c as u32);
                }
                "Vendor" => {
                    let (name, id) = trailing_bracket_hex(v);
                    d.vendor_name = Some(name);
                    d.vendor_id = id.and_then(|x| u16::try_from(x).ok());
                }
                "Device" => {
                    let (name, id) = trailing_bracket_hex(v);
                    d.device_name = Some(name);
                    d.device_id = id.and_then(|x| u16::try_from(x).ok());
                }
                "SVendor" => {
                    d.subvendor_id = trailing_bracket_hex(v)
                        .1
                        .and_then(|x| u16::try_from(x).ok())
                }
                "SDevice" => {
                    d.subdevice_id = trailing_bracket_hex(v)
                        .1
                        .and_then(|x| u16::try_from(x).ok())
                }
                "Rev" => d.revision = parse_hex_u64(v).and_then(|x| u8::try_from(x).ok()),
                "ProgIf" => prog_if = parse_hex_u64(v).map(|x| x as u32),
                "Driver" => d.driver = Some(v.to_string()),
                "Module" => d.modules.push(v.to_string()),
                _ => {}
            }
        }
        if let Some(c) = class16 {
            d.class = Some((c << 8) | prog_if.unwrap_or(0));
        }
        d.prog_if = prog_if.and_then(|p| u8::try_from(p).ok());
        if !d.address.is_empty() {
            out.push(d);
        }
    }
    out
}

fn parse_default(text: &str) -> Vec<LspciDevice> {
    let binding_known = text
        .lines()
        .any(|l| l.contains("Kernel driver in use:") || l.contains("Kernel modules:"));
    // `-v` prints `Flags:`, `-vv` `Control:`/`Status:` under every function;
    // then an absent `(prog-if …)` means prog-if 0.
    let verbose = text.lines().any(|l| {
        let t = l.trim_start();
        l.starts_with('\t')
            && (t.starts_with("Flags:") || t.starts_with("Control:") || t.starts_with("Status:"))
    });
    let mut out: Vec<LspciDevice> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            if let Some(d) = parse_header(line) {
                out.push(LspciDevice {
                    binding_known,
                    prog_if_known: verbose || d.prog_if_known,
                    subsystem_known: verbose || binding_known,
                    ..d
                });
            }
            continue;
        }
        let Some(d) = out.last_mut() else { continue };
        let t = line.trim();
        if let Some(v) = t.strip_prefix("Kernel driver in use:") {
            d.driver = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("Kernel modules:") {
            d.modules = v
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
        } else if let Some(v) = t.strip_prefix("Subsystem:") {
            if let Some((sv, sd)) = trailing_id_pair(v) {
                d.subvendor_id = Some(sv);
                d.subdevice_id = Some(sd);
            }
        } else if let Some(v) = t.strip_prefix("LnkCap:") {
            d.link_cap = Some(parse_link(v));
        } else if let Some(v) = t.strip_prefix("LnkSta:") {
            d.link_sta = Some(parse_link(v));
        }
    }
    out
}

/// `... [vvvv:dddd]` at the end of a text.
fn trailing_id_pair(s: &str) -> Option<(u16, u16)> {
    let s = s.trim();
    let open = s.rfind('[')?;
    let inner = s[open + 1..].strip_suffix(']')?;
    let (a, b) = inner.split_once(':')?;
    if a.len() != 4 || b.len() != 4 {
        return None;
    }
    Some((
        u16::from_str_radix(a, 16).ok()?,
        u16::from_str_radix(b, 16).ok()?,
    ))
}

/// One spelling for a PCIe link speed: sysfs `current_link_speed` prints
/// `8.0 GT/s PCIe` (kernels since 4.13: `PCIE_SPEED2STR`, with `PCIe`
/// since 5.x), older kernels `5 GT/s`; `lspci -vv` prints `8GT/s` (and
/// `2.5GT/s`). All become the lspci form: the number without a trailing
/// `.0`, then `GT/s`. `Unknown`/`unknown` (link down) and anything that is
/// not a number of GT/s give `None`.
pub fn normalize_link_speed(s: &str) -> Option<String> {
    let t = s.trim();
    let t = t.strip_suffix("PCIe").unwrap_or(t).trim_end();
    let num = t.strip_suffix("GT/s")?.trim_end();
    if num.is_empty()
        || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || !num.bytes().next().is_some_and(|b| b.is_ascii_digit())
    {
        return None;
    }
    let num = match num.split_once('.') {
        Some((int, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                int.to_string()
            } else {
                format!("{int}.{frac}")
            }
        }
        None => num.to_string(),
    };
    Some(format!("{num}GT/s"))
}

fn parse_link(v: &str) -> PciLink {
    let mut l = PciLink::default();
    for part in v.split(',') {
        let p = part.trim();
        if let Some(s) = p.strip_prefix("Speed ") {
            l.speed = s.split_whitespace().next().and_then(normalize_link_speed);
        } else if let Some(w) = p.strip_prefix("Width ") {
            l.width = w.split_whitespace().next().map(str::to_string);
        }
    }
    l
}

fn parse_header(line: &str) -> Option<LspciDevice> {
    let (addr, rest) = line.split_once(' ')?;
    if !is_address(addr) {
        return None;
    }
    let mut d = LspciDevice {
        address: normalize_address(addr),
        ..LspciDevice::default()
    };
    let (class_part, mut desc) = rest.split_once(": ")?;
    let (class_name, class16) = trailing_bracket_hex(class_part);
    d.class_name = Some(class_name);
    let mut prog_if: Option<u32> = None;
    // Trailing "(prog-if 02 [NVM Express])" and "(rev a1)", in that order.
    if let Some(i) = desc.rfind(" (prog-if ") {
        prog_if = desc[i + 10..]
            .split([' ', ')'])
            .next()
            .and_then(parse_hex_u64)
            .map(|x| x as u32);
        desc = &desc[..i];
    }
    if let Some(i) = desc.rfind(" (rev ") {
        d.revision = desc[i + 6..]
            .trim_end_matches(')')
            .trim()
            .split(')')
            .next()
            .and_then(parse_hex_u64)
            .and_then(|x| u8::try_from(x).ok());
        desc = &desc[..i];
    }
    let mut desc = desc.trim().to_string();
    if let Some((v, dv)) = trailing_id_pair(&desc) {
        d.vendor_id = Some(v);
        d.device_id = Some(dv);
        if let Some(open) = desc.rfind(" [") {
            desc.truncate(open);
        }
    }
    if let Some(c) = class16 {
        d.class = Some(((c as u32) << 8) | prog_if.unwrap_or(0));
    }
    d.prog_if_known = prog_if.is_some();
    d.prog_if = prog_if.and_then(|p| u8::try_from(p).ok());
    d.description = Some(desc);
    Some(d)
}

/// `/proc/bus/pci/devices`: `BBDF\tVVVVDDDD\tIRQ\t7 bases\t7 sizes[\tdriver]`.
/// No class and no domain are in this table (domain 0000 assumed).
pub fn parse_proc_bus_pci_devices(text: &str) -> Vec<LspciDevice> {
    text.lines()
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let bdf = u16::from_str_radix(cols.first()?.trim(), 16).ok()?;
            let vd = u32::from_str_radix(cols.get(1)?.trim(), 16).ok()?;
            let bus = bdf >> 8;
            let dev = (bdf >> 3) & 0x1f;
            let func = bdf & 0x7;
            let driver = cols
                .get(17)
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            Some(LspciDevice {
                address: format!("0000:{bus:02x}:{dev:02x}.{func}"),
                vendor_id: Some((vd >> 16) as u16),
                device_id: Some(vd as u16),
                driver,
                binding_known: true,
                ..LspciDevice::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_speeds_have_one_spelling() {
        for (raw, want) in [
            ("8.0 GT/s PCIe", Some("8GT/s")),
            ("2.5 GT/s PCIe", Some("2.5GT/s")),
            ("32.0 GT/s PCIe", Some("32GT/s")),
            ("5 GT/s", Some("5GT/s")),
            ("8GT/s", Some("8GT/s")),
            ("2.5GT/s", Some("2.5GT/s")),
            ("16GT/s", Some("16GT/s")),
            ("Unknown", None),
            ("Unknown speed", None),
            ("", None),
            (".5GT/s", None),
        ] {
            assert_eq!(normalize_link_speed(raw).as_deref(), want, "{raw:?}");
        }
        let l = parse_link(" Speed 16GT/s (downgraded), Width x8 (downgraded)");
        assert_eq!(l.speed.as_deref(), Some("16GT/s"));
        assert_eq!(l.width.as_deref(), Some("x8"));
    }

    #[test]
    fn prog_if_shown_only_with_verbose() {
        let nnk = "00:14.0 USB controller [0c03]: Intel Corporation Device [8086:1bcd] (rev 11)\n\tKernel driver in use: xhci_hcd\n";
        let d = &parse_lspci(nnk)[0];
        assert_eq!(d.class, Some(0x0c0300));
        assert!(!d.prog_if_known && d.subsystem_known && d.binding_known);
        let v = "00:14.0 USB controller [0c03]: Intel Corporation Device [8086:1bcd] (rev 11) (prog-if 30 [XHCI])\n\tFlags: bus master, medium devsel, latency 0\n";
        let d = &parse_lspci(v)[0];
        assert_eq!(d.class, Some(0x0c0330));
        assert!(d.prog_if_known);
        let nn = "00:14.0 USB controller [0c03]: Intel Corporation Device [8086:1bcd] (rev 11)\n";
        let d = &parse_lspci(nn)[0];
        assert!(!d.prog_if_known && !d.subsystem_known && !d.binding_known);
    }
}
