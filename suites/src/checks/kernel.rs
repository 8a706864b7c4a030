//! Kernel health checks: taint, the kernel log, EDAC error counters.

use std::sync::OnceLock;

use regex::Regex;

use crate::checks::ras_delta::counter;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;
use certlab_reports::Metric;

/// One taint flag: bit, letter, meaning, and whether it fails certification.
pub struct TaintFlag {
    pub bit: u32,
    pub letter: char,
    pub meaning: &'static str,
    pub fails: bool,
}

/// The kernel's taint flags (Documentation/admin-guide/tainted-kernels.rst).
/// Flags that record a build choice or a benign fact (firmware workaround,
/// live patch, distro auxiliary, struct randomization) do not fail.
pub const TAINT_FLAGS: &[TaintFlag] = &[
    TaintFlag {
        bit: 0,
        letter: 'P',
        meaning: "proprietary module loaded",
        fails: true,
    },
    TaintFlag {
        bit: 1,
        letter: 'F',
        meaning: "module force-loaded",
        fails: true,
    },
    TaintFlag {
        bit: 2,
        letter: 'S',
        meaning: "kernel running on an out-of-specification system",
        fails: true,
    },
    TaintFlag {
        bit: 3,
        letter: 'R',
        meaning: "module force-unloaded",
        fails: true,
    },
    TaintFlag {
        bit: 4,
        letter: 'M',
        meaning: "machine check exception occurred",
        fails: true,
    },
    TaintFlag {
        bit: 5,
        letter: 'B',
        meaning: "bad page referenced or unexpected page flags",
        fails: true,
    },
    TaintFlag {
        bit: 6,
        letter: 'U',
        meaning: "taint requested by userspace",
        fails: true,
    },
    TaintFlag {
        bit: 7,
        letter: 'D',
        meaning: "kernel died recently (oops or BUG)",
        fails: true,
    },
    TaintFlag {
        bit: 8,
        letter: 'A',
        meaning: "ACPI table overridden by user",
        fails: false,
    },
    TaintFlag {
        bit: 9,
        letter: 'W',
        meaning: "kernel issued a warning",
        fails: true,
    },
    TaintFlag {
        bit: 10,
        letter: 'C',
        meaning: "staging driver loaded",
        fails: true,
    },
    TaintFlag {
        bit: 11,
        letter: 'I',
        meaning: "workaround for a platform firmware bug applied",
        fails: false,
    },
    TaintFlag {
        bit: 12,
        letter: 'O',
        meaning: "externally-built (out-of-tree) module loaded",
        fails: true,
    },
    TaintFlag {
        bit: 13,
        letter: 'E',
        meaning: "unsigned module loaded",
        fails: true,
    },
    TaintFlag {
        bit: 14,
        letter: 'L',
        meaning: "soft lockup occurred",
        fails: true,
    },
    TaintFlag {
        bit: 15,
        letter: 'K',
        meaning: "kernel live-patched",
        fails: false,
    },
    TaintFlag {
        bit: 16,
        letter: 'X',
        meaning: "auxiliary taint (distribution-defined)",
        fails: false,
    },
    TaintFlag {
        bit: 17,
        letter: 'T',
        meaning: "kernel built with the struct randomization plugin",
        fails: false,
    },
    TaintFlag {
        bit: 18,
        letter: 'N',
        meaning: "an in-kernel test has been run",
        fails: true,
    },
    TaintFlag {
        bit: 19,
        letter: 'J',
        meaning: "userspace used a mutating debug operation in fwctl",
        fails: false,
    },
];

/// Modules carrying taint flags, from `/proc/modules` (`name … (POE)`).
pub fn tainting_modules(proc_modules: &str) -> Vec<(String, String)> {
    proc_modules
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let open = l.rfind('(')?;
            let close = l.rfind(')')?;
            (close > open).then(|| (name.to_string(), l[open + 1..close].to_string()))
        })
        .filter(|(_, f)| !f.is_empty() && f.chars().all(|c| c.is_ascii_uppercase()))
        .collect()
}

/// The kernel is not tainted by anything that voids a certification.
pub struct Taint;

impl Check for Taint {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let Some(text) = ctx.read("/proc/sys/kernel/tainted")? else {
            return Ok(CaseOutcome::skip("/proc/sys/kernel/tainted is absent"));
        };
        let Ok(value) = text.trim().parse::<u64>() else {
            return Err(CaseError::Infra(format!(
                "unparseable taint value `{}`",
                text.trim()
            )));
        };
        let allowed = ctx.param_strings("allow", &[]);
        let modules = ctx
            .read("/proc/modules")?
            .map(|m| tainting_modules(&m))
            .unwrap_or_default();
        let mut failing = Vec::new();
        let mut noted = Vec::new();
        for bit in 0..64u32 {
            if value & (1 << bit) == 0 {
                continue;
            }
            let flag = TAINT_FLAGS.iter().find(|f| f.bit == bit);
            let (letter, meaning, fails) = match flag {
                Some(f) => (f.letter, f.meaning, f.fails),
                None => ('?', "unknown taint bit", true),
            };
            let culprits: Vec<&str> = modules
                .iter()
                .filter(|(_, f)| f.contains(letter))
                .map(|(m, _)| m.as_str())
                .collect();
            let mut s = format!("{letter} (bit {bit}): {meaning}");
            if !culprits.is_empty() {
                s.push_str(&format!(" [{}]", culprits.join(", ")));
            }
            if fails && !allowed.iter().any(|a| a.starts_with(letter)) {
                failing.push(s);
            } else {
                noted.push(s);
            }
        }
        if value == 0 {
            return Ok(CaseOutcome::pass("the kernel is not tainted (0)"));
        }
        if failing.is_empty() {
            Ok(CaseOutcome::pass(format!(
                "tainted {value}, with flags that do not void certification: {}",
                noted.join("; ")
            )))
        } else {
            let mut r = format!("tainted {value}: {}", failing.join("; "));
            if !noted.is_empty() {
                r.push_str(&format!("; also {}", noted.join("; ")));
            }
            Ok(CaseOutcome::fail(r))
        }
    }
}

/// Kernel-log trouble that is not a RAS report of [`crate::kernlog`]:
/// (category, regex). A call trace outside an oops (a `WARNING:`), an RCU
/// stall, a block-device I/O error.
pub const LOG_PATTERNS: &[(&str, &str)] = &[
    ("call-trace", r"Call Trace:"),
    ("rcu-stall", r"rcu_(sched|preempt) (self-)?detected stall"),
    ("io-error", r"I/O error, dev \w+|critical medium error"),
];

fn compiled() -> &'static Vec<(&'static str, Regex)> {
    static CELL: OnceLock<Vec<(&'static str, Regex)>> = OnceLock::new();
    CELL.get_or_init(|| {
        LOG_PATTERNS
            .iter()
            .filter_map(|(n, p)| Regex::new(p).ok().map(|r| (*n, r)))
            .collect()
    })
}

/// The trouble in a kernel log, in line order: (category, line). Every
/// report the classifier [`crate::kernlog::scan`] finds (one per report,
/// its kind as the category), then each other line matching
/// [`LOG_PATTERNS`]; a line matching an `ignore` pattern counts for nothing.
pub fn scan_log<'a>(log: &'a str, ignore: &[Regex]) -> Vec<(&'static str, &'a str)> {
    let lines: Vec<&str> = log.lines().collect();
    let ignored = |l: &str| ignore.iter().any(|r| r.is_match(l));
    let mut hits: Vec<(usize, &'static str, &'a str)> = crate::kernlog::scan(log)
        .into_iter()
        .filter_map(|e| {
            let l = lines.get(e.line - 1)?.trim_end();
            (!ignored(l)).then_some((e.line, e.kind.as_str(), l))
        })
        .collect();
    for (i, l) in lines.iter().enumerate() {
        if ignored(l) || hits.iter().any(|(n, _, _)| *n == i + 1) {
            continue;
        }
        if let Some((n, _)) = compiled().iter().find(|(_, r)| r.is_match(l)) {
            hits.push((i + 1, n, l.trim_end()));
        }
    }
    hits.sort_by_key(|(n, _, _)| *n);
    hits.into_iter().map(|(_, c, l)| (c, l)).collect()
}

/// The kernel log and the command that gave it, or why it cannot be read.
pub type KernelLog = Result<(String, &'static str), String>;

/// The kernel log since boot and the command that gave it: `dmesg`, else
/// `journalctl -k -b`; `Ok(Err(reason))` when neither may be read here.
pub fn read_kernel_log(ctx: &CaseCtx<'_>) -> Result<KernelLog, CaseError> {
    let mut why = Vec::new();
    let o = ctx.run("dmesg")?;
    if o.success() {
        return Ok(Ok((o.stdout_str(), "dmesg")));
    }
    why.push(format!("dmesg: {}", o.stderr_str().trim()));
    if ctx.has_command("journalctl")? {
        let j = ctx.run("journalctl -k -b --no-pager -q")?;
        if j.success() && !j.stdout.is_empty() {
            return Ok(Ok((j.stdout_str(), "journalctl -k -b")));
        }
        why.push(format!("journalctl: {}", j.stderr_str().trim()));
    }
    Ok(Err(format!(
        "the kernel log is not readable here (kernel.dmesg_restrict; run as root): {}",
        why.join("; ")
    )))
}

/// The kernel log since boot is free of RAS reports (`crate::kernlog`: MCE,
/// EDAC, AER, GHES, Xid, amdgpu RAS, oops, panic, lockups, hung tasks), call
/// traces, RCU stalls and I/O errors.
pub struct Log;

impl Check for Log {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let mut ignore = Vec::new();
        for p in ctx.param_strings("ignore", &[]) {
            ignore.push(Regex::new(&p).map_err(|e| {
                CaseError::Infra(format!("plan parameter `ignore`: bad regex `{p}`: {e}"))
            })?);
        }
        let (log, source) = match read_kernel_log(ctx)? {
            Ok(l) => l,
            Err(why) => return Ok(CaseOutcome::skip(why)),
        };
        let hits = scan_log(&log, &ignore);
        if hits.is_empty() {
            return Ok(CaseOutcome::pass(format!(
                "{} lines of {source} free of MCE, EDAC, AER, GHES, Xid, amdgpu RAS, oops, panic, lockup, hung-task, call-trace, RCU-stall and I/O-error messages",
                log.lines().count()
            )));
        }
        let mut cats: Vec<&str> = hits.iter().map(|(c, _)| *c).collect();
        cats.sort();
        cats.dedup();
        let quoted: Vec<String> = hits
            .iter()
            .take(20)
            .map(|(c, l)| format!("[{c}] {l}"))
            .collect();
        let more = if hits.len() > 20 {
            format!(" … and {} more", hits.len() - 20)
        } else {
            String::new()
        };
        Ok(CaseOutcome::fail(format!(
            "{} matching lines in {source} ({}): {}{more}",
            hits.len(),
            cats.join(", "),
            quoted.join(" | ")
        )))
    }
}

/// EDAC memory-controller error counters are zero.
pub struct Edac;

impl Check for Edac {
    fn compares_with_baseline(&self) -> bool {
        true
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let today = edac_since_boot(ctx)?;
        let today = crate::checks::ras_delta::with_uptime(ctx, today)?;
        crate::checks::ras_delta::against_baseline(ctx, today, &|n: &str| n.starts_with("edac."))
    }
}

/// The counters of the DIMMs (`dimmN`/`rankN`: `dimm_ce_count`,
/// `dimm_ue_count`) or chip-select rows (legacy `csrowN`: `chK_ce_count`
/// per channel, `ue_count` per row) of controller `mc`, as metrics
/// `edac.MC.DIMM.ce|ue` (`edac.mc0.csrow1.ch0.ce`). A counter that cannot
/// be read is left out (the controller's totals are judged).
fn edac_dimm_counters(ctx: &CaseCtx<'_>, base: &str, mc: &str) -> Result<Vec<Metric>, CaseError> {
    let num = |path: &str| -> Result<Option<u64>, CaseError> {
        Ok(ctx
            .read_or_why(path)?
            .ok()
            .and_then(|v| v.trim().parse().ok()))
    };
    let is_numbered = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    let mut out = Vec::new();
    let entries = ctx.list_dir(&format!("{base}/{mc}"))?.unwrap_or_default();
    for e in entries.iter().filter(|e| e.is_dir) {
        let dir = format!("{base}/{mc}/{}", e.name);
        if is_numbered(&e.name, "dimm") || is_numbered(&e.name, "rank") {
            for (file, kind) in [("dimm_ce_count", "ce"), ("dimm_ue_count", "ue")] {
                if let Some(n) = num(&format!("{dir}/{file}"))? {
                    out.push(counter(format!("edac.{mc}.{}.{kind}", e.name), n));
                }
            }
        } else if is_numbered(&e.name, "csrow") {
            let files = ctx.list_dir(&dir)?.unwrap_or_default();
            for f in &files {
                let Some(ch) = f.name.strip_suffix("_ce_count") else {
                    continue;
                };
                if !is_numbered(ch, "ch") {
                    continue;
                }
                if let Some(n) = num(&format!("{dir}/{}", f.name))? {
                    out.push(counter(format!("edac.{mc}.{}.{ch}.ce", e.name), n));
                }
            }
            if let Some(n) = num(&format!("{dir}/ue_count"))? {
                out.push(counter(format!("edac.{mc}.{}.ue", e.name), n));
            }
        }
    }
    Ok(out)
}

/// EDAC's counts since boot, judged against `max_ce` (and any UE), with
/// every counter read as a metric.
fn edac_since_boot(ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
    let base = "/sys/devices/system/edac/mc";
    let mcs: Vec<String> = ctx
        .list_dir(base)?
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.name.starts_with("mc") && e.name[2..].chars().all(|c| c.is_ascii_digit()))
        .map(|e| e.name)
        .collect();
    if mcs.is_empty() {
        return Ok(CaseOutcome::skip(
            "no EDAC memory controller is registered (a VM, or no EDAC driver for this platform)",
        ));
    }
    let max_ce = ctx.param_u64("max_ce", 0);
    let mut problems = Vec::new();
    let mut counts = Vec::new();
    let mut unreadable = Vec::new();
    let mut metrics = Vec::new();
    for mc in &mcs {
        // A counter that cannot be read is not zero: the case cannot be
        // judged (skip, with the file and the error), and one that reads
        // as something other than a number is an error.
        let mut get = |f: &str| -> Result<Option<u64>, CaseError> {
            let path = format!("{base}/{mc}/{f}");
            match ctx.read_or_why(&path)? {
                Ok(v) => v.trim().parse().map(Some).map_err(|_| {
                    CaseError::Infra(format!(
                        "{path}: not a counter: `{}`",
                        v.trim().chars().take(40).collect::<String>()
                    ))
                }),
                Err(why) => {
                    unreadable.push(why.error);
                    Ok(None)
                }
            }
        };
        let (Some(ce), Some(ue), Some(ce_n), Some(ue_n)) = (
            get("ce_count")?,
            get("ue_count")?,
            get("ce_noinfo_count")?,
            get("ue_noinfo_count")?,
        ) else {
            continue;
        };
        let name = ctx
            .read(&format!("{base}/{mc}/mc_name"))?
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        counts.push(format!("{mc} ({name}): CE {ce}, UE {ue}"));
        for (kind, n) in [
            ("ce", ce),
            ("ce_noinfo", ce_n),
            ("ue", ue),
            ("ue_noinfo", ue_n),
        ] {
            metrics.push(counter(format!("edac.{mc}.{kind}"), n));
        }
        metrics.extend(edac_dimm_counters(ctx, base, mc)?);
        if ue + ue_n > 0 {
            problems.push(format!("{mc}: {} uncorrected errors", ue + ue_n));
        }
        if ce + ce_n > max_ce {
            problems.push(format!(
                "{mc}: {} corrected errors (limit {max_ce})",
                ce + ce_n
            ));
        }
    }
    // Errors counted on a readable controller fail whatever another
    // controller hides; otherwise an unreadable counter leaves nothing to judge.
    if problems.is_empty() && !unreadable.is_empty() {
        return Ok(CaseOutcome::skip(format!(
            "EDAC error counters could not be read, so the errors cannot be counted: {}{}",
            unreadable.join("; "),
            if counts.is_empty() {
                String::new()
            } else {
                format!("; read: {}", counts.join("; "))
            }
        )));
    }
    if !unreadable.is_empty() {
        counts.push(format!("not readable: {}", unreadable.join("; ")));
    }
    let mut outcome = if problems.is_empty() {
        CaseOutcome::pass(counts.join("; "))
    } else {
        CaseOutcome::fail(format!("{}; {}", problems.join("; "), counts.join("; ")))
    };
    outcome.metrics = metrics;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(compiled().len(), LOG_PATTERNS.len());
    }

    #[test]
    fn scans_real_trouble_and_not_boot_chatter() {
        let log = "\
[    0.000000] Linux version 6.1.0-27-amd64
[    0.512000] mce: CPU0: Thermal monitoring enabled (TM1)
[    1.200000] EDAC MC: Ver: 3.0.0
[    1.300000] EDAC amd64: F19h detected (node 0).
[    2.100000] pcieport 0000:00:01.1: AER: enabled with IRQ 28
[  100.000000] mce: [Hardware Error]: Machine check events logged
[  200.000000] EDAC MC0: 1 CE on DIMM_A1 (channel:0 slot:0 page:0x1234 offset:0x0 grain:64 syndrome:0x0)
[  300.000000] pcieport 0000:00:01.1: AER: Corrected error received: 0000:01:00.0
[  400.000000] NVRM: Xid (PCI:0000:3b:00): 79, pid=1234, GPU has fallen off the bus.
[  500.000000] BUG: unable to handle page fault for address: ffff
[  500.000001] Call Trace:
[  600.000000] watchdog: BUG: soft lockup - CPU#3 stuck for 22s!
";
        let hits = scan_log(log, &[]);
        let cats: Vec<&str> = hits.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            cats,
            vec![
                "mce",
                "edac_ce",
                "aer_corrected",
                "xid",
                "oops",
                "call-trace",
                "soft_lockup"
            ]
        );
        let ignore = [Regex::new("NVRM").unwrap()];
        assert_eq!(scan_log(log, &ignore).len(), 6);
    }

    #[test]
    fn module_taint_flags() {
        let m = "nvidia 56512512 1 nvidia_modeset, Live 0x0000000000000000 (POE)\next4 1007616 1 - Live 0x0000000000000000\nvboxdrv 1 0 - Live 0x0 (OE)\n";
        assert_eq!(
            tainting_modules(m),
            vec![
                ("nvidia".into(), "POE".into()),
                ("vboxdrv".into(), "OE".into())
            ]
        );
    }
}
