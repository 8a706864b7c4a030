//! The KABI case: every loaded out-of-tree module (taint flag `O` in
//! `/proc/modules`) checked against the running kernel's Module.symvers the
//! way the kernel's loader would (`certlab_kabi::Checker`), and, when the
//! plan names them, against the OS release's KABI allowlists. The modules
//! are one set, as in `certlab kabi check` (`Checker::with_modules`): each
//! replaces the kernel's module of its name, and one that imports a symbol
//! only a refused module of the set exports is refused too (`dependency`).
//!
//! Everything is read through the target, so the check runs unchanged over
//! SSH, locally and on a scripted machine:
//! - the module's file: `modinfo -n NAME`, else the module's line in
//!   `/lib/modules/RELEASE/modules.dep`; its bytes are read with
//!   `Recorder::read_digested`, which runs `sha256sum FILE` so the evidence
//!   names exactly the file that was checked (the digest is also in the reason);
//! - Module.symvers: the first of `/lib/modules/RELEASE/build/Module.symvers`,
//!   `/usr/src/linux-headers-RELEASE/Module.symvers` (Debian, Ubuntu),
//!   `/usr/src/kernels/RELEASE/Module.symvers` (RHEL, Fedora kernel-devel),
//!   `/boot/symvers-RELEASE.gz` and `/lib/modules/RELEASE/symvers.gz`;
//! - the kernel's vermagic: `modinfo -F vermagic` of a loaded in-tree module
//!   (not compared when there is none);
//! - the allowlists (plan parameter `allowlist`, a list of paths): files on
//!   the SUT, because an OS release installs its own list there (RHEL's
//!   `kabi-stablelists` package puts `kabi_stablelist_<arch>` under
//!   `/lib/modules/kabi-current/`) and because a check reaches only the
//!   target, never the orchestrator's disk. `{release}` and `{machine}` in a
//!   path become `uname -r` and `uname -m`. Several lists are merged; any
//!   format `certlab kabi allowlist import` reads is accepted. A list the plan
//!   names but the SUT lacks is an infrastructure error, not a product failure.
//!
//! Verdicts: skip when no out-of-tree module is loaded or no Module.symvers
//! for the running kernel is installed; fail listing every problem of every
//! module (and modules whose file cannot be found, since they cannot be
//! vouched for); pass otherwise.

use certlab_kabi::{Allowlist, Checker, Kernel, ListFormat, Module, ModuleReport, Symvers};
use certlab_lab::target::shell_quote;

use crate::checks::kernel::tainting_modules;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

/// Where distributions install the running kernel's Module.symvers;
/// `{r}` is the release. Plain text first, then gzip'ed.
pub const SYMVERS_PATHS: &[&str] = &[
    "/lib/modules/{r}/build/Module.symvers",
    "/usr/src/linux-headers-{r}/Module.symvers",
    "/usr/src/kernels/{r}/Module.symvers",
    "/boot/symvers-{r}.gz",
    "/lib/modules/{r}/symvers.gz",
];

/// Loaded modules that carry the out-of-tree taint flag `O`, in
/// `/proc/modules` order.
pub fn out_of_tree_modules(proc_modules: &str) -> Vec<String> {
    tainting_modules(proc_modules)
        .into_iter()
        .filter(|(_, flags)| flags.contains('O'))
        .map(|(name, _)| name)
        .collect()
}

/// Loaded modules without any taint flag (in-tree, signed), in order.
pub fn in_tree_modules(proc_modules: &str) -> Vec<String> {
    proc_modules
        .lines()
        .filter(|l| !l.trim_end().ends_with(')'))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// The path of module `name` in a `modules.dep` (relative paths are under
/// `/lib/modules/RELEASE`); `-` and `_` are the same to the loader.
pub fn find_in_modules_dep(modules_dep: &str, name: &str, release: &str) -> Option<String> {
    let want = name.replace('-', "_");
    modules_dep.lines().find_map(|l| {
        let path = l.split(':').next()?.trim();
        let file = path.rsplit('/').next()?;
        let stem = file.split(".ko").next()?;
        (stem.replace('-', "_") == want).then(|| {
            if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/lib/modules/{release}/{path}")
            }
        })
    })
}

/// Every loaded out-of-tree module loads on the running kernel (KABI).
pub struct OutOfTree;

impl Check for OutOfTree {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let Some(proc_modules) = ctx.read("/proc/modules")? else {
            return Ok(CaseOutcome::skip("/proc/modules is absent"));
        };
        let names = out_of_tree_modules(&proc_modules);
        if names.is_empty() {
            return Ok(CaseOutcome::skip(
                "no out-of-tree module is loaded (no taint flag O in /proc/modules)",
            ));
        }
        let release = match ctx.read("/proc/sys/kernel/osrelease")? {
            Some(r) if !r.trim().is_empty() => r.trim().to_string(),
            _ => {
                let o = ctx.run("uname -r")?;
                let r = o.stdout_str().trim().to_string();
                if !o.success() || r.is_empty() {
                    return Err(CaseError::Infra(
                        "cannot tell the running kernel's release (/proc/sys/kernel/osrelease, uname -r)"
                            .to_string(),
                    ));
                }
                r
            }
        };

        let Some((symvers_path, symvers)) = read_symvers(ctx, &release)? else {
            let looked: Vec<String> = SYMVERS_PATHS
                .iter()
                .map(|p| p.replace("{r}", &release))
                .collect();
            return Ok(CaseOutcome::skip(format!(
                "no Module.symvers for the running kernel {release} is installed (install its headers, e.g. linux-headers-{release} or kernel-devel); looked in {}",
                looked.join(", ")
            )));
        };
        let mut kernel = Kernel::from_symvers(release.clone(), symvers);
        kernel.release = Some(release.clone());
        kernel.sources = vec![symvers_path.clone()];
        kernel.vermagic = kernel_vermagic(ctx, &proc_modules)?;

        let allowlist = read_allowlists(ctx, &release)?;

        // Locate and read every out-of-tree module.
        let mut modules_dep: Option<Option<String>> = None;
        let mut modules: Vec<Module> = Vec::new();
        let mut digests: Vec<(String, String)> = Vec::new();
        let mut unlocated: Vec<String> = Vec::new();
        for name in &names {
            let o = ctx.run(&format!("modinfo -n {}", shell_quote(name)))?;
            let found = o.stdout_str().trim().to_string();
            let path = if o.success() && found.starts_with('/') {
                Some(found)
            } else {
                if modules_dep.is_none() {
                    modules_dep = Some(ctx.read(&format!("/lib/modules/{release}/modules.dep"))?);
                }
                modules_dep
                    .as_ref()
                    .and_then(Option::as_deref)
                    .and_then(|d| find_in_modules_dep(d, name, &release))
            };
            let Some(path) = path else {
                unlocated.push(format!(
                    "{name}: its file is not found (modinfo -n, modules.dep): it cannot be checked"
                ));
                continue;
            };
            let Some((bytes, sha)) = ctx.read_digested(&path)? else {
                unlocated.push(format!(
                    "{name}: {path} cannot be read: it cannot be checked"
                ));
                continue;
            };
            match Module::parse(&bytes, &path) {
                Ok(m) => {
                    digests.push((path.clone(), sha));
                    modules.push(m);
                }
                Err(e) => unlocated.push(format!("{name}: {e}")),
            }
        }

        let mut checker = Checker::new(&kernel).with_modules(&modules);
        if let Some(list) = &allowlist {
            checker = checker.with_allowlist(list);
        }
        let reports = checker.check_all(&modules);
        Ok(verdict(
            &release,
            &symvers_path,
            &kernel,
            &reports,
            &digests,
            &unlocated,
            allowlist.is_some(),
        ))
    }
}

fn verdict(
    release: &str,
    symvers_path: &str,
    kernel: &Kernel,
    reports: &[ModuleReport],
    digests: &[(String, String)],
    unlocated: &[String],
    with_allowlist: bool,
) -> CaseOutcome {
    let mut notes = Vec::new();
    if !kernel.modversions() {
        notes.push(format!(
            "{release} was built without modversions: presence-only checking"
        ));
    }
    if kernel.vermagic.is_none() {
        notes.push("vermagic not compared (no in-tree module loaded to read it from)".to_string());
    }
    if with_allowlist {
        notes.push("imports checked against the KABI allowlist".to_string());
    }
    let checked: Vec<String> = reports
        .iter()
        .map(|r| {
            let sha = digests
                .iter()
                .find(|(p, _)| *p == r.path)
                .map(|(_, s)| s.get(..16).unwrap_or(s))
                .unwrap_or("?");
            format!("{} ({}, sha256 {sha}…)", r.name, r.path)
        })
        .collect();
    let bad: Vec<&ModuleReport> = reports.iter().filter(|r| !r.compatible).collect();
    let tail = if notes.is_empty() {
        String::new()
    } else {
        format!("; {}", notes.join("; "))
    };
    if bad.is_empty() && unlocated.is_empty() {
        return CaseOutcome::pass(format!(
            "{} out-of-tree module{} load on {release} per {symvers_path}: {}{tail}",
            reports.len(),
            if reports.len() == 1 { "" } else { "s" },
            checked.join(", ")
        ));
    }
    let mut lines = vec![format!(
        "{} of {} out-of-tree modules would be refused by {release} (per {symvers_path}){tail}",
        bad.len() + unlocated.len(),
        reports.len() + unlocated.len()
    )];
    lines.extend(unlocated.iter().cloned());
    for r in &bad {
        let mut problems = Vec::new();
        for p in &r.problems {
            let kind = serde_json::to_value(p.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let mut s = if p.symbol.is_empty() {
                format!("{kind}: {}", p.message)
            } else {
                format!("{kind} {}: {}", p.symbol, p.message)
            };
            match (&p.expected, &p.found) {
                (Some(e), Some(f)) => s.push_str(&format!(" (kernel {e}, module {f})")),
                (Some(e), None) => s.push_str(&format!(" (kernel {e})")),
                _ => {}
            }
            problems.push(s);
        }
        let fix = r.problems.first().map(|p| p.fix.as_str()).unwrap_or("");
        lines.push(format!(
            "{} ({}): {} problem{}: {}; fix: {fix}",
            r.name,
            r.path,
            r.problems.len(),
            if r.problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        ));
    }
    CaseOutcome::fail(lines.join("\n"))
}

/// The running kernel's Module.symvers: (path, table), or `None` when none
/// of [`SYMVERS_PATHS`] exists. Every place looked at is evidence.
fn read_symvers(ctx: &CaseCtx<'_>, release: &str) -> Result<Option<(String, Symvers)>, CaseError> {
    for pattern in SYMVERS_PATHS {
        let path = pattern.replace("{r}", release);
        let bytes = if path.ends_with(".gz") {
            match ctx.read_digested(&path)? {
                Some((b, _)) => b,
                None => continue,
            }
        } else {
            match ctx.read(&path)? {
                Some(t) => t.into_bytes(),
                None => continue,
            }
        };
        let symvers = Symvers::parse_bytes(&bytes, &path).map_err(|e| {
            CaseError::Infra(format!("the kernel's Module.symvers is unreadable: {e}"))
        })?;
        return Ok(Some((path, symvers)));
    }
    Ok(None)
}

/// The running kernel's vermagic, from the first loaded in-tree module.
fn kernel_vermagic(ctx: &CaseCtx<'_>, proc_modules: &str) -> Result<Option<String>, CaseError> {
    let Some(name) = in_tree_modules(proc_modules).into_iter().next() else {
        return Ok(None);
    };
    let o = ctx.run(&format!("modinfo -F vermagic {}", shell_quote(&name)))?;
    let v = o.stdout_str();
    let v = v.trim_end_matches('\n');
    Ok((o.success() && !v.trim().is_empty()).then(|| v.to_string()))
}

/// The allowlists the plan names (`allowlist`: paths on the SUT), merged.
fn read_allowlists(ctx: &CaseCtx<'_>, release: &str) -> Result<Option<Allowlist>, CaseError> {
    let paths = ctx.param_strings("allowlist", &[]);
    if paths.is_empty() {
        return Ok(None);
    }
    let mut machine: Option<String> = None;
    let mut merged: Option<Allowlist> = None;
    for p in paths {
        let mut path = p.replace("{release}", release);
        if path.contains("{machine}") {
            if machine.is_none() {
                let o = ctx.run("uname -m")?;
                if !o.success() {
                    return Err(CaseError::Infra(format!(
                        "allowlist {p}: `uname -m` failed on the target"
                    )));
                }
                machine = Some(o.stdout_str().trim().to_string());
            }
            path = path.replace("{machine}", machine.as_deref().unwrap_or_default());
        }
        let Some(text) = ctx.read(&path)? else {
            return Err(CaseError::Infra(format!(
                "the KABI allowlist {path} named by the plan is not on the target"
            )));
        };
        let name = path.rsplit('/').next().unwrap_or(&path);
        let list = Allowlist::import(&text, ListFormat::sniff(name, &text), &path)
            .map_err(|e| CaseError::Infra(format!("the KABI allowlist is unreadable: {e}")))?;
        match merged.as_mut() {
            Some(m) => m.merge(list),
            None => merged = Some(list),
        }
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC: &str = "nvidia_uvm 1363968 0 - Live 0x0000000000000000 (POE)\nnvidia 56512512 1 nvidia_uvm, Live 0x0000000000000000 (POE)\next4 1007616 1 - Live 0x0000000000000000\nzfs 3735552 6 - Live 0x0000000000000000 (PO)\n";

    #[test]
    fn out_of_tree_and_in_tree_modules() {
        assert_eq!(out_of_tree_modules(PROC), ["nvidia_uvm", "nvidia", "zfs"]);
        assert_eq!(in_tree_modules(PROC), ["ext4"]);
        assert!(out_of_tree_modules("ext4 1 0 - Live 0x0\n").is_empty());
    }

    #[test]
    fn modules_dep_lookup() {
        let dep = "kernel/fs/ext4/ext4.ko.xz: kernel/fs/jbd2/jbd2.ko.xz\nupdates/dkms/nvidia-uvm.ko: updates/dkms/nvidia.ko\n/opt/x/zfs.ko:\n";
        assert_eq!(
            find_in_modules_dep(dep, "nvidia_uvm", "6.1.0-56-amd64").as_deref(),
            Some("/lib/modules/6.1.0-56-amd64/updates/dkms/nvidia-uvm.ko")
        );
        assert_eq!(
            find_in_modules_dep(dep, "zfs", "r").as_deref(),
            Some("/opt/x/zfs.ko")
        );
        assert_eq!(find_in_modules_dep(dep, "nvidia_drm", "r"), None);
    }
}
