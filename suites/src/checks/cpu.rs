//! CPU checks: identity agrees across sources, all CPUs online, one
//! microcode revision, no unmitigated vulnerabilities.

use std::collections::BTreeSet;

use certlab_hwdb::{CpuInfo, Lscpu};

use crate::checks::{format_cpu_list, parse_cpu_list};
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

/// CPU identity is consistent between `/proc/cpuinfo`, `lscpu` and sysfs.
pub struct Identity;

impl Check for Identity {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let Some(cpuinfo) = ctx.read("/proc/cpuinfo")? else {
            return Ok(CaseOutcome::skip(
                "/proc/cpuinfo is not readable on this target",
            ));
        };
        let online = ctx
            .read("/sys/devices/system/cpu/online")?
            .and_then(|s| parse_cpu_list(&s));
        let present = ctx
            .read("/sys/devices/system/cpu/present")?
            .and_then(|s| parse_cpu_list(&s));
        let lscpu = ctx
            .run_if_present("lscpu", "lscpu")?
            .filter(|o| o.success());

        let mut problems = Vec::new();
        let mut facts = Vec::new();
        let parsed = CpuInfo::parse(&cpuinfo);
        let n_cpuinfo = parsed.processors().count();
        facts.push(format!("{n_cpuinfo} CPUs in /proc/cpuinfo"));
        if let Some(online) = &online {
            if online.len() != n_cpuinfo && n_cpuinfo > 0 {
                problems.push(format!(
                    "/proc/cpuinfo lists {n_cpuinfo} CPUs but {} are online",
                    online.len()
                ));
            }
        }
        // Every CPU reports the same model; mixed models mean mixed parts in
        // one machine, which no platform certification allows (hybrid cores
        // report one model name, so they pass).
        let models: BTreeSet<&str> = parsed.per_processor("model name").into_iter().collect();
        if models.len() > 1 {
            problems.push(format!(
                "CPUs report different models: {}",
                models.iter().copied().collect::<Vec<_>>().join(" / ")
            ));
        }
        let vendors: BTreeSet<&str> = parsed.per_processor("vendor_id").into_iter().collect();
        if vendors.len() > 1 {
            problems.push(format!(
                "CPUs report different vendors: {}",
                vendors.iter().copied().collect::<Vec<_>>().join(" / ")
            ));
        }
        if let Some(o) = &lscpu {
            let lscpu = Lscpu::parse(&o.stdout_str());
            if let (Some(n), Some(present)) = (lscpu.cpus().map(|n| n as usize), &present) {
                facts.push(format!("lscpu: {n} CPUs"));
                if n != present.len() {
                    problems.push(format!(
                        "lscpu counts {n} CPUs but sysfs has {} present",
                        present.len()
                    ));
                }
            }
            // lscpu copies x86's model name from cpuinfo; on other
            // architectures it derives its own from tables, so only x86's
            // two strings must agree.
            if let (Some(lm), Some(cm), false) = (
                lscpu.get("Model name"),
                models.iter().next(),
                vendors.is_empty(),
            ) {
                if models.len() == 1 && lm != *cm {
                    problems.push(format!("lscpu says model `{lm}`, /proc/cpuinfo `{cm}`"));
                }
            }
            if let (Some(lv), Some(cv)) = (lscpu.get("Vendor ID"), vendors.iter().next()) {
                if vendors.len() == 1 && lv != *cv {
                    problems.push(format!("lscpu says vendor `{lv}`, /proc/cpuinfo `{cv}`"));
                }
            }
        } else {
            facts.push("lscpu not available".to_string());
        }
        let p = &ctx.profile.cpu;
        if !p.model_name.is_empty() {
            facts.push(format!(
                "identified as {} `{}`",
                p.family.as_str(),
                p.model_name
            ));
        }
        if problems.is_empty() {
            Ok(CaseOutcome::pass(format!(
                "consistent: {}",
                facts.join("; ")
            )))
        } else {
            Ok(CaseOutcome::fail(problems.join("; ")))
        }
    }
}

/// Every present CPU is online.
pub struct Online;

impl Check for Online {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let (Some(present), Some(online)) = (
            ctx.read("/sys/devices/system/cpu/present")?,
            ctx.read("/sys/devices/system/cpu/online")?,
        ) else {
            return Ok(CaseOutcome::skip(
                "the kernel exposes no /sys/devices/system/cpu/{present,online}",
            ));
        };
        let (Some(present), Some(online)) = (parse_cpu_list(&present), parse_cpu_list(&online))
        else {
            return Err(CaseError::Infra(format!(
                "unparseable CPU lists: present `{}`, online `{}`",
                present.trim(),
                online.trim()
            )));
        };
        let online_set: BTreeSet<u32> = online.iter().copied().collect();
        let offline: Vec<u32> = present
            .iter()
            .copied()
            .filter(|c| !online_set.contains(c))
            .collect();
        if offline.is_empty() {
            Ok(CaseOutcome::pass(format!(
                "all {} present CPUs are online",
                present.len()
            )))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{} of {} present CPUs are offline: {}",
                offline.len(),
                present.len(),
                format_cpu_list(&offline)
            )))
        }
    }
}

/// All CPUs run the same microcode revision.
pub struct Microcode;

impl Check for Microcode {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let Some(cpuinfo) = ctx.read("/proc/cpuinfo")? else {
            return Ok(CaseOutcome::skip(
                "/proc/cpuinfo is not readable on this target",
            ));
        };
        let parsed = CpuInfo::parse(&cpuinfo);
        let revs = parsed.per_processor("microcode");
        if revs.is_empty() {
            return Ok(CaseOutcome::skip(
                "the CPUs report no microcode revision in /proc/cpuinfo (only x86 does)",
            ));
        }
        let distinct: BTreeSet<&&str> = revs.iter().collect();
        if distinct.len() == 1 {
            Ok(CaseOutcome::pass(format!(
                "all {} CPUs run microcode {}",
                revs.len(),
                revs[0]
            )))
        } else {
            let per: Vec<String> = revs
                .iter()
                .enumerate()
                .map(|(i, r)| format!("cpu{i}={r}"))
                .collect();
            Ok(CaseOutcome::fail(format!(
                "CPUs run different microcode revisions ({}): the update did not reach every CPU",
                per.join(", ")
            )))
        }
    }
}

/// No CPU vulnerability the kernel knows of is left without mitigation.
pub struct Vulnerabilities;

impl Check for Vulnerabilities {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let dir = "/sys/devices/system/cpu/vulnerabilities";
        let Some(entries) = ctx.list_dir(dir)? else {
            return Ok(CaseOutcome::skip(format!(
                "this kernel does not report CPU vulnerabilities ({dir} is absent or not listable)"
            )));
        };
        let mut vulnerable = Vec::new();
        let mut n = 0;
        for e in entries.iter().filter(|e| !e.is_dir) {
            let Some(state) = ctx.read(&format!("{dir}/{}", e.name))? else {
                continue;
            };
            n += 1;
            if state.trim_start().starts_with("Vulnerable") {
                vulnerable.push(format!("{}: {}", e.name, state.trim()));
            }
        }
        if vulnerable.is_empty() {
            Ok(CaseOutcome::pass(format!(
                "{n} known CPU vulnerabilities: each not affected or mitigated"
            )))
        } else {
            Ok(CaseOutcome::fail(format!(
                "unmitigated: {}",
                vulnerable.join("; ")
            )))
        }
    }
}
