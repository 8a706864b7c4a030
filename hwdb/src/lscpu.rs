//! `lscpu` output (human format, any util-linux version).
//!
//! Keys are kept in order because heterogeneous ARM systems print one
//! `Vendor ID`/`Model name` group per core type. Newer util-linux indents
//! sub-keys (`  Model name:`); indentation is ignored. The parsable trailer
//! (`# CPU,Core,...`) is skipped.

use crate::text::{parse_int_u64, split_kv};

/// A parsed `lscpu` output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lscpu {
    pub fields: Vec<(String, String)>,
}

impl Lscpu {
    pub fn parse(text: &str) -> Lscpu {
        let mut fields = Vec::new();
        for line in text.lines() {
            let t = line.trim_start();
            if t.starts_with('#') {
                continue;
            }
            // The parsable trailer is comma separated with no colon.
            if let Some((k, v)) = split_kv(line) {
                fields.push((k.to_string(), v.to_string()));
            }
        }
        Lscpu { fields }
    }

    /// First value of `key` (case-insensitive).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty() && *v != "-")
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn get_u32(&self, key: &str) -> Option<u32> {
        self.get(key)
            .and_then(parse_int_u64)
            .and_then(|n| u32::try_from(n).ok())
    }

    /// `CPU(s)`.
    pub fn cpus(&self) -> Option<u32> {
        self.get_u32("CPU(s)")
    }

    /// `Socket(s)`, summed over core types when there are several.
    pub fn sockets(&self) -> Option<u32> {
        let v: Vec<u32> = self
            .all("Socket(s)")
            .iter()
            .filter_map(|s| parse_int_u64(s).and_then(|n| u32::try_from(n).ok()))
            .collect();
        v.into_iter().max()
    }

    /// Physical cores: Σ over core-type groups of `Core(s) per socket` ×
    /// `Socket(s)` (or `Core(s) per cluster` × `Cluster(s)`).
    pub fn cores(&self) -> Option<u32> {
        // Walk fields in order, pairing per-group counts.
        let mut total: Option<u32> = None;
        let mut per: Option<(u32, bool)> = None; // (count, is_cluster)
        for (k, v) in &self.fields {
            let n = parse_int_u64(v).and_then(|n| u32::try_from(n).ok());
            let k = k.to_ascii_lowercase();
            match (k.as_str(), n) {
                ("core(s) per socket", Some(n)) => per = Some((n, false)),
                ("core(s) per cluster", Some(n)) => per = Some((n, true)),
                ("socket(s)", Some(s)) => {
                    if let Some((c, false)) = per.take() {
                        total = Some(total.unwrap_or(0) + c * s);
                    }
                }
                ("cluster(s)", Some(s)) => {
                    if let Some((c, true)) = per.take() {
                        total = Some(total.unwrap_or(0) + c * s);
                    }
                }
                _ => {}
            }
        }
        total
    }
}
