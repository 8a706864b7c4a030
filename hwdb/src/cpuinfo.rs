//! `/proc/cpuinfo` of any architecture, as blocks of `key : value` lines.
//!
//! The parser is deliberately shallow: it keeps every key of every block in
//! order and leaves meaning to [`crate::cpu`]. It accepts spaces instead of
//! tabs before the colon, files that hold only the first CPU, lines a vendor
//! kernel added, and elision lines (`...`) that people put in pasted dumps.

use crate::text::{parse_int_u64, split_kv};

/// A parsed `/proc/cpuinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuInfo {
    /// Blank-line separated blocks, each a list of `(key, value)` in order.
    pub blocks: Vec<Vec<(String, String)>>,
    /// The text had lines without a colon (`...`, prose): it was cut or
    /// edited, so counting its processors would be wrong.
    pub elided: bool,
}

impl CpuInfo {
    pub fn parse(text: &str) -> CpuInfo {
        let mut blocks = Vec::new();
        let mut cur: Vec<(String, String)> = Vec::new();
        let mut elided = false;
        for line in text.lines() {
            let t = line.trim();
            if t.is_empty() {
                if !cur.is_empty() {
                    blocks.push(std::mem::take(&mut cur));
                }
                continue;
            }
            match split_kv(line) {
                Some((k, v)) => cur.push((k.to_string(), v.to_string())),
                None => elided = true,
            }
        }
        if !cur.is_empty() {
            blocks.push(cur);
        }
        CpuInfo { blocks, elided }
    }

    /// The first value of `key` (exact key) in any block.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.blocks
            .iter()
            .flat_map(|b| b.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of any of `keys`.
    pub fn get_any(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// Blocks that describe one logical CPU (`processor : <n>`).
    pub fn processors(&self) -> impl Iterator<Item = &Vec<(String, String)>> {
        self.blocks.iter().filter(|b| {
            b.iter()
                .any(|(k, v)| k == "processor" && parse_int_u64(v).is_some())
        })
    }

    /// `key` of each processor block that has it, in CPU order.
    pub fn per_processor(&self, key: &str) -> Vec<&str> {
        self.processors()
            .filter_map(|b| b.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()))
            .collect()
    }

    /// Number of logical CPUs, only when the file visibly holds all of them:
    /// processor numbers are exactly `0..n` and nothing was elided. A file
    /// that holds only the first CPU of a bigger machine cannot be told apart
    /// from a one-CPU machine here; callers cross-check (x86 `siblings`).
    pub fn complete_processor_count(&self) -> Option<u32> {
        if self.elided {
            return None;
        }
        if let Some(n) = self.get("# processors").and_then(parse_int_u64) {
            return u32::try_from(n).ok();
        }
        let mut ids: Vec<u64> = self
            .processors()
            .filter_map(|b| {
                b.iter()
                    .find(|(k, _)| k == "processor")
                    .and_then(|(_, v)| parse_int_u64(v))
            })
            .collect();
        if ids.is_empty() {
            return None;
        }
        ids.sort_unstable();
        ids.dedup();
        let n = ids.len() as u64;
        if ids.first() == Some(&0) && ids.last() == Some(&(n - 1)) {
            u32::try_from(n).ok()
        } else {
            None
        }
    }
}
