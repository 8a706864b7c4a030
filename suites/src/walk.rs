//! Walks of sysfs done as one shell command each, and their parsers.
//!
//! One command per walk keeps a remote target to one round trip and leaves
//! one piece of evidence (the command and its output) instead of hundreds of
//! tiny file reads. Every script is POSIX sh and prints records:
//!
//! ```text
//! @ <name>
//! key=value
//! ```

use std::collections::BTreeMap;

/// One record of a walk: the object's name and its attributes.
pub type Record = (String, BTreeMap<String, String>);

/// PCI functions: ids, class, link state, bound driver.
pub const PCI_WALK: &str = r#": certlab pci-walk; for d in /sys/bus/pci/devices/*; do [ -e "$d" ] || continue; echo "@ ${d##*/}"; for a in vendor device subsystem_vendor subsystem_device class revision current_link_speed max_link_speed current_link_width max_link_width numa_node enable; do [ -r "$d/$a" ] && v=$(cat "$d/$a" 2>/dev/null) && printf '%s=%s\n' "$a" "$v"; done; [ -L "$d/driver" ] && l=$(readlink "$d/driver") && printf 'driver=%s\n' "${l##*/}"; done; true"#;

/// DMI identification strings readable by the caller.
pub const DMI_WALK: &str = r#": certlab dmi-walk; for f in /sys/class/dmi/id/*; do n=${f##*/}; case "$n" in uevent|modalias|power|subsystem) continue;; esac; [ -f "$f" ] && [ -r "$f" ] && v=$(cat "$f" 2>/dev/null) && printf '%s=%s\n' "$n" "$v"; done; true"#;

/// Block devices: size, model, rotational, read-only, whether backed by hardware.
pub const BLOCK_WALK: &str = r#": certlab block-walk; for b in /sys/block/*; do [ -e "$b" ] || continue; echo "@ ${b##*/}"; for a in size ro removable device/model device/vendor queue/rotational dm/name; do [ -r "$b/$a" ] && v=$(cat "$b/$a" 2>/dev/null) && printf '%s=%s\n' "$a" "$v"; done; [ -e "$b/device" ] && echo "has_device=1"; case "$(readlink -f "$b")" in */virtual/*) echo "virtual=1";; esac; done; true"#;

/// Network interfaces: link state, speed, driver, whether backed by hardware.
pub const NET_WALK: &str = r#": certlab net-walk; for n in /sys/class/net/*; do [ -e "$n" ] || continue; echo "@ ${n##*/}"; for a in operstate carrier speed duplex type address; do [ -r "$n/$a" ] && v=$(cat "$n/$a" 2>/dev/null) && printf '%s=%s\n' "$a" "$v"; done; if [ -e "$n/device" ]; then echo "has_device=1"; d=$(readlink -f "$n/device"); printf 'device=%s\n' "${d##*/}"; [ -L "$n/device/driver" ] && l=$(readlink "$n/device/driver") && printf 'driver=%s\n' "${l##*/}"; fi; case "$(readlink -f "$n")" in */virtual/*) echo "virtual=1";; esac; done; true"#;

/// The PCI functions of a [`PCI_WALK`] output, with their bound driver.
pub fn pci_devices(text: &str) -> Vec<certlab_hwdb::SysfsPciDevice> {
    parse_records(text)
        .into_iter()
        .map(|(address, mut attrs)| {
            let driver = attrs.remove("driver");
            certlab_hwdb::SysfsPciDevice {
                address,
                attrs,
                driver,
            }
        })
        .collect()
}

/// Parses `@ name` / `key=value` records. Lines before the first `@` are
/// gathered in a record with an empty name (the DMI walk has no headers).
pub fn parse_records(text: &str) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("@ ") {
            out.push((name.trim().to_string(), BTreeMap::new()));
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if out.is_empty() {
            out.push((String::new(), BTreeMap::new()));
        }
        if let Some((_, attrs)) = out.last_mut() {
            attrs.insert(k.trim().to_string(), v.trim().to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use certlab_lab::{Local, Target};
    use std::time::Duration;

    #[test]
    fn parses_records_and_headerless_lines() {
        let r = parse_records("bios_vendor=SeaBIOS\n@ vda\nsize=100\nro=0\n@ loop0\n");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].1["bios_vendor"], "SeaBIOS");
        assert_eq!(r[1].0, "vda");
        assert_eq!(r[1].1["size"], "100");
        assert!(r[2].1.is_empty());
    }

    #[test]
    fn walks_run_on_this_machine() {
        let t = Local::default();
        for script in [PCI_WALK, DMI_WALK, BLOCK_WALK, NET_WALK] {
            let o = t.exec(script, Duration::from_secs(30)).unwrap();
            assert!(o.success(), "{script}: {}", o.stderr_str());
        }
        let o = t.exec(NET_WALK, Duration::from_secs(30)).unwrap();
        let recs = parse_records(&o.stdout_str());
        let lo = recs.iter().find(|(n, _)| n == "lo").expect("lo is listed");
        assert_eq!(lo.1.get("virtual").map(String::as_str), Some("1"));
        assert!(!lo.1.contains_key("has_device"));
    }
}
