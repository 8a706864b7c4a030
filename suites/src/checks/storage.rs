//! Storage checks: every disk readable, sequential-read throughput.

use certlab_lab::target::shell_quote;
use certlab_reports::{Better, Metric};

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;
use crate::walk::{self, Record};

/// Block devices backed by hardware (or a virtual disk controller) with media.
fn disks(records: &[Record]) -> (Vec<(String, u64)>, Vec<String>) {
    let mut disks = Vec::new();
    let mut empty = Vec::new();
    for (name, a) in records {
        if a.get("virtual").is_some() || a.get("has_device").is_none() {
            continue; // loop, ram, zram, device-mapper, md: not hardware
        }
        let sectors: u64 = a.get("size").and_then(|s| s.parse().ok()).unwrap_or(0);
        if sectors == 0 {
            empty.push(name.clone());
        } else {
            disks.push((name.clone(), sectors * 512));
        }
    }
    (disks, empty)
}

/// Every block device reads its first MiB.
pub struct Readable;

impl Check for Readable {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let out = ctx.run(walk::BLOCK_WALK)?;
        let (disks, empty) = disks(&walk::parse_records(&out.stdout_str()));
        if disks.is_empty() {
            return Ok(CaseOutcome::skip(
                "no hardware block devices with media (only virtual devices such as loop or zram)",
            ));
        }
        let mut failed = Vec::new();
        let mut denied = Vec::new();
        for (name, _) in &disks {
            let dev = shell_quote(&format!("/dev/{name}"));
            // O_DIRECT bypasses the page cache; devices that refuse it are read buffered.
            let cmd = format!(
                "dd if={dev} of=/dev/null bs=1M count=1 iflag=direct status=none 2>&1 || dd if={dev} of=/dev/null bs=1M count=1 status=none"
            );
            let o = ctx.run(&cmd)?;
            if o.success() {
                continue;
            }
            let msg = format!("{}{}", o.stdout_str(), o.stderr_str());
            // EACCES (not root) and EPERM (a container without device access)
            // say nothing about the disk.
            if msg.contains("Permission denied") || msg.contains("Operation not permitted") {
                denied.push(name.clone());
            } else {
                failed.push(format!(
                    "{name}: {}",
                    msg.lines().last().unwrap_or("").trim()
                ));
            }
        }
        if !failed.is_empty() {
            return Ok(CaseOutcome::fail(format!(
                "read errors on {} of {} disks: {}",
                failed.len(),
                disks.len(),
                failed.join("; ")
            )));
        }
        if !denied.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "not permitted to read {} (run certlab as root, outside a container that hides the devices)",
                denied.join(", ")
            )));
        }
        let mut reason = format!(
            "read the first MiB of {}: {}",
            disks.len(),
            disks
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if !empty.is_empty() {
            reason.push_str(&format!("; no media in {}", empty.join(", ")));
        }
        Ok(CaseOutcome::pass(reason))
    }
}

/// Bytes and seconds from dd's summary line
/// (`268435456 bytes (268 MB, 256 MiB) copied, 0.0891 s, 3.0 GB/s`).
pub fn parse_dd_summary(text: &str) -> Option<(u64, f64)> {
    let line = text.lines().rev().find(|l| l.contains(" copied, "))?;
    let bytes: u64 = line.split_whitespace().next()?.parse().ok()?;
    let after = line.split(" copied, ").nth(1)?;
    let secs: f64 = after
        .split_whitespace()
        .next()?
        .replace(',', ".")
        .parse()
        .ok()?;
    Some((bytes, secs))
}

/// File systems kept in memory (`stat -f -c %T` names).
const MEMORY_FILE_SYSTEMS: &[&str] = &["tmpfs", "ramfs", "hugetlbfs"];

/// Sequential-read throughput of a file on local storage.
pub struct SeqRead;

impl Check for SeqRead {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let mib = ctx.param_u64("mib", 256);
        let min = ctx.param_f64("min_mib_s", 50.0);
        let dir = ctx.param_str("dir", "/var/tmp");
        let df = ctx.run(&format!(
            "df -Pk {q} | tail -n 1; stat -f -c fstype=%T {q}",
            q = shell_quote(&dir)
        ))?;
        let df_text = df.stdout_str();
        let free_kib: Option<u64> = df_text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok());
        let fstype = df_text
            .lines()
            .find_map(|l| l.strip_prefix("fstype="))
            .map(str::trim);
        // A file system in memory has no device: even O_DIRECT (which tmpfs
        // accepts since Linux 6.6) reads memory.
        if let Some(fs) = fstype.filter(|fs| MEMORY_FILE_SYSTEMS.contains(fs)) {
            return Ok(CaseOutcome::skip(format!(
                "{dir} is on {fs}, a file system in memory: there is no disk to measure (set the case's `dir` to a directory on a disk)"
            )));
        }
        if let Some(free) = free_kib {
            if free / 1024 < mib * 2 {
                return Ok(CaseOutcome::skip(format!(
                    "{dir} has {} MiB free; the test needs {} MiB",
                    free / 1024,
                    mib * 2
                )));
            }
        }
        // Write the file, then read it with O_DIRECT (or after dropping the
        // page cache where O_DIRECT is refused, e.g. tmpfs) so the figure is
        // the device's, not the cache's.
        let script = format!(
            r#"set -e; d=$(mktemp -d {dir}/certlab-seqread.XXXXXX); trap 'rm -rf "$d"' EXIT; dd if=/dev/zero of="$d/f" bs=1M count={mib} conv=fsync status=none; if dd if="$d/f" of=/dev/null bs=1M iflag=direct 2>"$d/err"; then cat "$d/err" >&2; echo mode=direct; else sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && echo mode=dropped-caches || echo mode=cached; dd if="$d/f" of=/dev/null bs=1M; fi"#,
            dir = shell_quote(&dir),
        );
        let o = ctx.run(&script)?;
        if !o.success() {
            let err = o.stderr_str();
            if err.contains("Permission denied") || err.contains("Read-only file system") {
                return Ok(CaseOutcome::skip(format!(
                    "cannot write a test file in {dir}: {}",
                    err.lines().next().unwrap_or("").trim()
                )));
            }
            return Err(CaseError::Infra(format!(
                "the read test exited {:?}: {}",
                o.exit,
                err.trim()
            )));
        }
        let mode = o
            .stdout_str()
            .lines()
            .find_map(|l| l.strip_prefix("mode=").map(str::to_string))
            .unwrap_or_default();
        let Some((bytes, secs)) = parse_dd_summary(&o.stderr_str()) else {
            return Err(CaseError::Infra(format!(
                "dd printed no summary: {}",
                o.stderr_str().trim()
            )));
        };
        let rate = if secs > 0.0 {
            bytes as f64 / (1024.0 * 1024.0) / secs
        } else {
            f64::INFINITY
        };
        let metric = Metric {
            name: "seq_read".to_string(),
            value: (rate * 10.0).round() / 10.0,
            unit: "MiB/s".to_string(),
            better: Better::Higher,
        };
        let how = match mode.as_str() {
            "direct" => "O_DIRECT",
            "dropped-caches" => "after dropping the page cache",
            // The file just written is still in the page cache: the figure
            // is memory bandwidth, and judging it would pass a slow disk.
            "cached" => {
                return Ok(CaseOutcome::skip(format!(
                    "no device figure: {dir} refuses O_DIRECT and the page cache could not be dropped (run certlab as root, or set `dir` to a disk file system); the {} MiB read at {rate:.1} MiB/s came from memory",
                    bytes / (1024 * 1024)
                )));
            }
            other => {
                return Err(CaseError::Infra(format!(
                    "the read test reported no known mode (`{other}`): {}",
                    o.stdout_str().trim()
                )))
            }
        };
        let reason = format!(
            "read {} MiB in {dir} at {rate:.1} MiB/s ({how}); the floor is {min} MiB/s",
            bytes / (1024 * 1024)
        );
        Ok(if rate >= min {
            CaseOutcome::pass(reason)
        } else {
            CaseOutcome::fail(reason)
        }
        .metric(metric))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dd_summaries_of_several_versions() {
        let coreutils9 = "268435456 bytes (268 MB, 256 MiB) copied, 0.0891 s, 3.0 GB/s\n";
        assert_eq!(parse_dd_summary(coreutils9), Some((268435456, 0.0891)));
        let busybox_style = "256+0 records in\n256+0 records out\n268435456 bytes (256.0MB) copied, 0.121 seconds, 2.1GB/s\n";
        assert_eq!(parse_dd_summary(busybox_style), Some((268435456, 0.121)));
        assert_eq!(parse_dd_summary("dd: error reading"), None);
    }

    #[test]
    fn only_hardware_disks_with_media() {
        let recs = walk::parse_records(
            "@ loop0\nsize=0\nvirtual=1\n@ vda\nsize=2048\nhas_device=1\n@ sr0\nsize=0\nhas_device=1\n@ dm-0\nsize=100\nvirtual=1\n",
        );
        let (d, e) = disks(&recs);
        assert_eq!(d, vec![("vda".to_string(), 2048 * 512)]);
        assert_eq!(e, vec!["sr0".to_string()]);
    }
}
