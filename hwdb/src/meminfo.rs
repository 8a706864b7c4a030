//! `/proc/meminfo`: every `Key: N kB` line, in bytes.

use std::collections::BTreeMap;

/// A parsed `/proc/meminfo`; values in bytes (`HugePages_*` counts stay counts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemInfo {
    pub entries: BTreeMap<String, u64>,
}

impl MemInfo {
    pub fn parse(text: &str) -> MemInfo {
        let mut entries = BTreeMap::new();
        for line in text.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let mut it = v.split_whitespace();
            let Some(n) = it.next().and_then(|n| n.parse::<u64>().ok()) else {
                continue;
            };
            let mult = match it.next() {
                Some("kB") | Some("KB") | Some("kiB") => 1024,
                Some("MB") => 1 << 20,
                Some("GB") => 1 << 30,
                None => 1,
                Some(_) => continue,
            };
            entries.insert(k.trim().to_string(), n.saturating_mul(mult));
        }
        MemInfo { entries }
    }

    pub fn get(&self, key: &str) -> Option<u64> {
        self.entries.get(key).copied()
    }

    pub fn mem_total_bytes(&self) -> Option<u64> {
        self.get("MemTotal")
    }
}
