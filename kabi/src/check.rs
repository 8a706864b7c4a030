//! `check`: will this module load on that kernel? Decided offline, the way
//! the kernel's loader decides at `insmod` time (kernel/module/main.c and
//! version.c): `module_layout` first, then for every undefined symbol —
//! present, CRC equal, GPL-only vs license, namespace imported — and the
//! vermagic. A missing `__versions` entry is a warning (the loader warns and
//! loads), not a refusal.

use rustc_hash::FxHashMap as HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::allowlist::Allowlist;
use crate::kernel::Kernel;
use crate::module::Module;
use crate::symvers::Export;

/// Why the loader (or the allowlist) refuses a module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProblemKind {
    /// No one exports the symbol ("Unknown symbol").
    Missing,
    /// The module was built against another version of the symbol
    /// ("disagrees about version of symbol"), `module_layout` included.
    Crc,
    /// The symbol's namespace is not imported, or a `module:` namespace
    /// does not list this module.
    Namespace,
    /// A GPL-only symbol used by a module whose license is not GPL-compatible.
    Gpl,
    /// The symbol is not on the KABI allowlist.
    Allowlist,
    /// The module's vermagic does not match the kernel's.
    Vermagic,
}

/// One reason a module would be refused, with a suggested fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub symbol: String,
    pub kind: ProblemKind,
    pub message: String,
    pub fix: String,
    /// What the kernel has (its CRC, namespace, vermagic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// What the module has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
}

/// Things the loader accepts with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The module has `__versions` but no entry for this import
    /// ("no symbol version for"): loaded anyway.
    NoSymbolVersion,
    /// The kernel was built without modversions: only presence is checked.
    NoModversions,
    /// A weak import nobody exports: resolved to 0.
    WeakUnresolved,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub symbol: String,
    pub kind: WarningKind,
    pub message: String,
}

/// The verdict on one module against one kernel.
#[derive(Debug, Clone, Serialize)]
pub struct ModuleReport {
    pub path: String,
    pub name: String,
    pub kernel: String,
    pub compatible: bool,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
}

/// Checks modules against one kernel, optionally with modules shipped
/// alongside (their exports resolve) and an allowlist.
pub struct Checker<'a> {
    kernel: &'a Kernel,
    alongside: HashMap<&'a str, &'a Export>,
    allowlist: Option<&'a Allowlist>,
}

impl<'a> Checker<'a> {
    pub fn new(kernel: &'a Kernel) -> Self {
        Checker {
            kernel,
            alongside: HashMap::default(),
            allowlist: None,
        }
    }

    /// Symbols exported by these modules (a vendor package, `--with` deps)
    /// resolve imports as if the modules were loaded first.
    pub fn with_modules(mut self, modules: &'a [Module]) -> Self {
        for m in modules {
            for e in &m.exports {
                self.alongside.entry(e.name.as_str()).or_insert(e);
            }
        }
        self
    }

    /// Every import resolved from the kernel must also be on `allowlist`.
    pub fn with_allowlist(mut self, allowlist: &'a Allowlist) -> Self {
        self.allowlist = Some(allowlist);
        self
    }

    /// Checks many modules in parallel; reports are in input order.
    pub fn check_all(&self, modules: &[Module]) -> Vec<ModuleReport> {
        modules.par_iter().map(|m| self.check(m)).collect()
    }

    /// Resolves a symbol as the loader would: vmlinux first, then modules
    /// shipped alongside, then the kernel's own modules. The flag says
    /// whether it came from the kernel (vmlinux or an in-tree module).
    fn resolve(&self, symbol: &str) -> Option<(&'a Export, bool)> {
        let k = self.kernel.export(symbol);
        if let Some(e) = k.filter(|e| e.is_vmlinux()) {
            return Some((e, true));
        }
        if let Some(e) = self.alongside.get(symbol) {
            return Some((e, false));
        }
        k.map(|e| (e, true))
    }

    /// Checks one module.
    pub fn check(&self, module: &Module) -> ModuleReport {
        let kernel = self.kernel;
        let kname = kernel.name.as_str();
        let modversions = kernel.modversions();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let versions: Option<HashMap<&str, u64>> = module
            .versions
            .as_ref()
            .map(|v| v.iter().map(|v| (v.name.as_str(), v.crc)).collect());
        let gpl_ok = module.gpl_compatible();
        let imported_ns: Vec<&str> = module.modinfo.import_ns().collect();
        let self_name = module.name.replace('-', "_");

        if !modversions {
            warnings.push(Warning {
                symbol: String::new(),
                kind: WarningKind::NoModversions,
                message: format!(
                    "{kname} was built without modversions (all CRCs are 0): only presence is checked"
                ),
            });
        }

        // check_modstruct_version: module_layout first.
        if modversions {
            if let (Some(v), Some(e)) = (&versions, kernel.export("module_layout")) {
                match (v.get("module_layout"), e.crc) {
                    (Some(&found), Some(want)) if found != u64::from(want) => {
                        problems.push(Problem {
                            symbol: "module_layout".to_string(),
                            kind: ProblemKind::Crc,
                            message: "disagrees about version of symbol module_layout: built for another kernel ABI".to_string(),
                            fix: format!("rebuild the module against the headers of {kname}"),
                            expected: Some(format!("0x{want:08x}")),
                            found: Some(format!("0x{found:08x}")),
                        });
                    }
                    (None, Some(_)) => warnings.push(Warning {
                        symbol: "module_layout".to_string(),
                        kind: WarningKind::NoSymbolVersion,
                        message: "no symbol version for module_layout".to_string(),
                    }),
                    _ => {}
                }
            }
        }

        for import in &module.imports {
            let sym = import.name.as_str();
            let Some((export, from_kernel)) = self.resolve(sym) else {
                if import.weak {
                    warnings.push(Warning {
                        symbol: sym.to_string(),
                        kind: WarningKind::WeakUnresolved,
                        message: format!("weak symbol {sym} is not exported: resolves to 0"),
                    });
                } else {
                    problems.push(Problem {
                        symbol: sym.to_string(),
                        kind: ProblemKind::Missing,
                        message: format!("unknown symbol {sym}: not exported by {kname}"),
                        fix: format!(
                            "ship (or pass with --with) the module that exports {sym}, or stop using it: it is not part of {kname}'s ABI"
                        ),
                        expected: None,
                        found: None,
                    });
                }
                continue;
            };
            // GPL-only symbols are invisible to modules with a proprietary license.
            if export.export_type.gpl_only() && !gpl_ok {
                let lic = module.modinfo.license().unwrap_or("(none)");
                problems.push(Problem {
                    symbol: sym.to_string(),
                    kind: ProblemKind::Gpl,
                    message: format!(
                        "{sym} is {} but the module's license {lic:?} is not GPL-compatible",
                        export.export_type
                    ),
                    fix: format!(
                        "use a non-GPL-only alternative to {sym}, or license the module under a GPL-compatible license"
                    ),
                    expected: Some(export.export_type.to_string()),
                    found: Some(lic.to_string()),
                });
                continue;
            }
            // check_version.
            if modversions {
                if let Some(want) = export.crc {
                    match &versions {
                        None => problems.push(Problem {
                            symbol: sym.to_string(),
                            kind: ProblemKind::Crc,
                            message: format!(
                                "the module has no __versions (built without modversions) but {kname} checks them"
                            ),
                            fix: format!("rebuild the module with CONFIG_MODVERSIONS against {kname}"),
                            expected: Some(format!("0x{want:08x}")),
                            found: None,
                        }),
                        Some(v) => match v.get(sym) {
                            Some(&found) if found != u64::from(want) => problems.push(Problem {
                                symbol: sym.to_string(),
                                kind: ProblemKind::Crc,
                                message: format!("disagrees about version of symbol {sym}"),
                                fix: format!(
                                    "rebuild the module against the headers (Module.symvers) of {kname}; {sym} changed its type signature"
                                ),
                                expected: Some(format!("0x{want:08x}")),
                                found: Some(format!("0x{found:08x}")),
                            }),
                            Some(_) => {}
                            None => warnings.push(Warning {
                                symbol: sym.to_string(),
                                kind: WarningKind::NoSymbolVersion,
                                message: format!("no symbol version for {sym}"),
                            }),
                        },
                    }
                }
            }
            // verify_namespace_is_imported.
            if let Some(ns) = export.namespace.as_deref() {
                if let Some(list) = ns.strip_prefix("module:") {
                    let allowed = list
                        .split(',')
                        .any(|m| m.trim().replace('-', "_") == self_name);
                    if !allowed {
                        problems.push(Problem {
                            symbol: sym.to_string(),
                            kind: ProblemKind::Namespace,
                            message: format!(
                                "{sym} is exported only to the modules {list}, not to {}",
                                module.name
                            ),
                            fix: format!("{sym} is private to {list}: do not use it"),
                            expected: Some(ns.to_string()),
                            found: Some(module.name.clone()),
                        });
                    }
                } else if !imported_ns.contains(&ns) {
                    problems.push(Problem {
                        symbol: sym.to_string(),
                        kind: ProblemKind::Namespace,
                        message: format!(
                            "module uses symbol {sym} from namespace {ns}, but does not import it"
                        ),
                        fix: format!("add MODULE_IMPORT_NS({ns}); to the module source"),
                        expected: Some(ns.to_string()),
                        found: (!imported_ns.is_empty()).then(|| imported_ns.join(",")),
                    });
                }
            }
            if let (Some(list), true) = (self.allowlist, from_kernel) {
                if !list.contains(sym) {
                    problems.push(Problem {
                        symbol: sym.to_string(),
                        kind: ProblemKind::Allowlist,
                        message: format!("{sym} is not on the KABI allowlist"),
                        fix: format!(
                            "stop using {sym} or ask for it to be added to the allowlist: it may change in any update of {kname}"
                        ),
                        expected: None,
                        found: None,
                    });
                }
            }
        }

        // check_modinfo: vermagic.
        if let Some(kmagic) = kernel.vermagic.as_deref() {
            match module.modinfo.vermagic() {
                None => problems.push(Problem {
                    symbol: String::new(),
                    kind: ProblemKind::Vermagic,
                    message: "no version magic".to_string(),
                    fix: format!("build the module with kbuild against {kname}"),
                    expected: Some(kmagic.to_string()),
                    found: None,
                }),
                Some(m) if !same_magic(m, kmagic, versions.is_some() && modversions) => {
                    problems.push(Problem {
                        symbol: String::new(),
                        kind: ProblemKind::Vermagic,
                        message: format!("version magic {m:?} should be {kmagic:?}"),
                        fix: format!(
                            "rebuild the module against {kname} with the same configuration"
                        ),
                        expected: Some(kmagic.to_string()),
                        found: Some(m.to_string()),
                    });
                }
                Some(_) => {}
            }
        }

        ModuleReport {
            path: module.path.clone(),
            name: module.name.clone(),
            kernel: kname.to_string(),
            compatible: problems.is_empty(),
            problems,
            warnings,
        }
    }
}

/// `same_magic`: with CRCs the kernel release (first word) may differ,
/// since the CRCs already vouch for the ABI; without, all must match.
pub fn same_magic(module: &str, kernel: &str, has_crcs: bool) -> bool {
    if has_crcs {
        let skip = |s: &str| s.find(' ').map(|i| s[i..].to_string()).unwrap_or_default();
        skip(module) == skip(kernel)
    } else {
        module == kernel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vermagic_rules() {
        let a = "6.1.0-50-amd64 SMP preempt mod_unload modversions ";
        let b = "6.1.0-56-amd64 SMP preempt mod_unload modversions ";
        assert!(same_magic(a, b, true));
        assert!(!same_magic(a, b, false));
        assert!(!same_magic("6.1.0-56-amd64 SMP mod_unload ", b, true));
    }
}
