//! Memory checks: size agrees between the kernel and the firmware, and a
//! pattern test over a bounded size.

use certlab_hwdb::MemInfo;
use certlab_lab::target::shell_quote;
use certlab_reports::{Better, Metric};

use crate::checks::memtest;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

const MIB: u64 = 1024 * 1024;

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1024.0 * MIB as f64))
}

/// Online memory per the kernel's memory blocks: (online bytes, offline block names).
fn sysfs_memory(ctx: &CaseCtx<'_>) -> Result<Option<(u64, Vec<String>)>, CaseError> {
    let Some(bs) = ctx.read("/sys/devices/system/memory/block_size_bytes")? else {
        return Ok(None);
    };
    let Ok(block) = u64::from_str_radix(bs.trim().trim_start_matches("0x"), 16) else {
        return Err(CaseError::Infra(format!(
            "unparseable block_size_bytes `{}`",
            bs.trim()
        )));
    };
    let out = ctx.run(
        r#": certlab memory-blocks; for m in /sys/devices/system/memory/memory*; do [ -r "$m/state" ] && printf '%s %s\n' "${m##*/}" "$(cat "$m/state")"; done; true"#,
    )?;
    let mut online = 0u64;
    let mut offline = Vec::new();
    for line in out.stdout_str().lines() {
        match line.split_once(' ') {
            Some((name, "online")) => {
                let _ = name;
                online += block;
            }
            Some((name, _)) => offline.push(name.to_string()),
            None => {}
        }
    }
    Ok((online > 0).then_some((online, offline)))
}

/// `MemTotal` agrees with the memory the firmware reports installed.
pub struct Size;

impl Check for Size {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let Some(meminfo) = ctx.read("/proc/meminfo")? else {
            return Ok(CaseOutcome::skip(
                "/proc/meminfo is not readable on this target",
            ));
        };
        let Some(total) = MemInfo::parse(&meminfo).mem_total_bytes() else {
            return Err(CaseError::Infra(
                "/proc/meminfo has no MemTotal".to_string(),
            ));
        };
        let pct = ctx.param_f64("max_missing_pct", 10.0);
        let floor = ctx.param_u64("max_missing_floor_mib", 1536) * MIB;
        let blocks = sysfs_memory(ctx)?;
        let (reference, source) = match (ctx.profile.memory.installed_bytes, &blocks) {
            (Some(dimms), _) if dimms > 0 => (dimms, "installed DIMMs (SMBIOS type 17)"),
            (_, Some((online, _))) => (*online, "online memory blocks in sysfs"),
            _ => {
                return Ok(CaseOutcome::skip(
                    "no second source of the memory size: no SMBIOS memory devices and no sysfs memory blocks",
                ))
            }
        };
        let allowed = ((reference as f64 * pct / 100.0) as u64).max(floor);
        let metric = Metric {
            name: "mem_total".to_string(),
            value: total as f64 / MIB as f64,
            unit: "MiB".to_string(),
            better: Better::Higher,
        };
        let mut problems = Vec::new();
        if total > reference + 128 * MIB {
            problems.push(format!(
                "the kernel sees {} but {source} add up to only {}",
                gib(total),
                gib(reference)
            ));
        }
        let missing = reference.saturating_sub(total);
        if missing > allowed {
            problems.push(format!(
                "MemTotal {} is {} short of {} from {source}; at most {} (max of {pct}% and {} MiB, for firmware and kernel reservations) is expected",
                gib(total),
                gib(missing),
                gib(reference),
                gib(allowed),
                floor / MIB
            ));
        }
        if let Some((_, offline)) = &blocks {
            if !offline.is_empty() {
                problems.push(format!(
                    "{} memory blocks are not online: {}",
                    offline.len(),
                    offline.join(", ")
                ));
            }
        }
        let outcome = if problems.is_empty() {
            CaseOutcome::pass(format!(
                "MemTotal {} against {} from {source}: {} reserved, within the {} allowed",
                gib(total),
                gib(reference),
                gib(missing),
                gib(allowed)
            ))
        } else {
            CaseOutcome::fail(problems.join("; "))
        };
        Ok(outcome.metric(metric))
    }
}

/// A pattern-verifying memory test over a bounded size.
pub struct Pattern;

impl Check for Pattern {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let available = ctx
            .read("/proc/meminfo")?
            .and_then(|m| MemInfo::parse(&m).get("MemAvailable"));
        let want = ctx.param_u64("mib", 256);
        let cap_pct = ctx.param_u64("max_available_pct", 10);
        let mib = match available {
            Some(a) => want.min(a / MIB * cap_pct / 100),
            None => want,
        };
        if mib < 16 {
            return Ok(CaseOutcome::skip(format!(
                "only {} MiB of memory is available; a meaningful test needs 16",
                available.map_or(0, |a| a / MIB)
            )));
        }
        if let Some(agent) = ctx.agent_path() {
            let cmd = format!("{} agent memtest --mib {mib} --seed 1", shell_quote(&agent));
            let out = ctx.run(&cmd)?;
            let text = out.stdout_str();
            let Some((pass, bytes, rate, failing)) = memtest::parse_report(&text) else {
                return Err(CaseError::Infra(format!(
                    "`{cmd}` exited {:?} without a report: {}",
                    out.exit,
                    out.stderr_str().trim()
                )));
            };
            let metric = Metric {
                name: "memtest_throughput".to_string(),
                value: rate,
                unit: "MiB/s".to_string(),
                better: Better::Higher,
            };
            let outcome = if pass {
                CaseOutcome::pass(format!(
                    "{} MiB verified with 8 patterns, no mismatch",
                    bytes / MIB
                ))
            } else {
                CaseOutcome::fail(format!("memory mismatches: {}", failing.join("; ")))
            };
            return Ok(outcome.metric(metric));
        }
        if ctx.has_command("memtester")? {
            let out = ctx.run(&format!("memtester {mib}M 1"))?;
            return Ok(match out.exit {
                Some(0) => CaseOutcome::pass(format!("memtester verified {mib} MiB")),
                Some(1) => {
                    return Err(CaseError::Infra(format!(
                        "memtester could not lock or allocate {mib} MiB"
                    )))
                }
                Some(code) => CaseOutcome::fail(format!(
                    "memtester found errors (exit status {code}: 2 = stuck address, 4 = pattern mismatch)"
                )),
                None => return Err(CaseError::Infra("memtester was killed".to_string())),
            });
        }
        Ok(CaseOutcome::skip(
            "no memory tester on the target: neither a certlab agent nor memtester is installed",
        ))
    }
}
