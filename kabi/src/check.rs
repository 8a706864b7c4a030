//! `check`: will this module load on that kernel? Decided offline, the way
//! the kernel's loader decides at `insmod` time (kernel/module/main.c and
//! version.c): `module_layout` first, then for every undefined symbol —
//! present, CRC equal, GPL-only vs license, namespace imported — and the
//! vermagic. A missing `__versions` entry is a warning (the loader warns and
//! loads), not a refusal.
//!
//! A set of modules (a vendor package, a directory, `--with` dependencies) is
//! judged as the loader sees it when the set is loaded in dependency order:
//! a module of the set replaces the kernel's module of the same name (`-`
//! and `_` equal), whose exports are then gone; a refused module exports
//! nothing, so a module that imports a symbol only a refused module of the
//! set provides is refused too ([`ProblemKind::Dependency`]), and so on to a
//! fixpoint — a worklist over the reverse dependencies, each edge visited
//! once.

use std::collections::VecDeque;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use rayon::prelude::*;
use serde::Serialize;

use crate::allowlist::Allowlist;
use crate::kernel::Kernel;
use crate::module::{Module, NameId, Names};
use crate::symvers::{module_name_of, ExportRef};

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
    /// The symbol comes only from a module of the checked set that is itself
    /// refused: not loaded, it exports nothing ("Unknown symbol").
    Dependency,
}

impl ProblemKind {
    /// Whether the loader refuses the module for it (the allowlist is a
    /// certification policy: the loader would load the module).
    pub fn refuses(self) -> bool {
        self != ProblemKind::Allowlist
    }
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
    /// For [`ProblemKind::Dependency`]: the refused module of the set that
    /// exports the symbol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// For [`ProblemKind::Dependency`]: the provider's own first problem,
    /// `kind: symbol: message`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Problem {
    /// `kind: symbol: message` (`kind: message` without a symbol).
    pub fn summary(&self) -> String {
        let kind = self.kind.as_str();
        if self.symbol.is_empty() {
            format!("{kind}: {}", self.message)
        } else {
            format!("{kind}: {}: {}", self.symbol, self.message)
        }
    }
}

impl ProblemKind {
    /// The name JSON, JUnit and the human output use.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Crc => "crc",
            ProblemKind::Namespace => "namespace",
            ProblemKind::Gpl => "gpl",
            ProblemKind::Allowlist => "allowlist",
            ProblemKind::Vermagic => "vermagic",
            ProblemKind::Dependency => "dependency",
        }
    }
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

/// Checks modules against one kernel, optionally with a set of modules
/// loaded alongside (their exports resolve, under the loader's rules for a
/// set: see the module documentation) and an allowlist.
pub struct Checker<'a> {
    kernel: &'a Kernel,
    /// The set, in the order given.
    set: Vec<&'a Module>,
    /// Symbol → the first module of the set that exports it.
    providers: HashMap<&'a str, (usize, ExportRef<'a>)>,
    /// `Export::module` values of the kernel's modules that a module of the
    /// set replaces (same name): their exports are gone.
    replaced: HashSet<&'a str>,
    allowlist: Option<&'a Allowlist>,
}

/// Where an import resolves.
#[derive(Clone, Copy)]
enum Resolved<'a> {
    /// vmlinux or one of the kernel's own modules.
    Kernel(ExportRef<'a>),
    /// Module `.0` of the set.
    Set(usize, ExportRef<'a>),
    /// Nobody; `Some(module)` when the kernel's module that exported it is
    /// replaced by the set's module of that name.
    Unresolved(Option<&'a str>),
}

/// Where every name of one name table resolves, computed once for all the
/// modules that share the table.
struct Table<'a> {
    resolved: Vec<Resolved<'a>>,
    /// The id of `module_layout`, when the table has it.
    layout: Option<NameId>,
}

/// The tables of the modules being checked, by [`Module::names_key`].
type Tables<'a> = HashMap<usize, Table<'a>>;

/// An import of a module resolved from module `provider` of the set.
#[derive(Clone, Copy)]
struct Edge {
    provider: u32,
    import: u32,
}

/// The reverse: import `import` of module `module` of the set comes from
/// the module whose list this is in.
#[derive(Clone, Copy)]
struct Dependant {
    module: u32,
    import: u32,
}

impl<'a> Checker<'a> {
    pub fn new(kernel: &'a Kernel) -> Self {
        Checker {
            kernel,
            set: Vec::new(),
            providers: HashMap::default(),
            replaced: HashSet::default(),
            allowlist: None,
        }
    }

    /// Adds modules to the set loaded alongside (a vendor package, `--with`
    /// deps): their exports resolve imports as if they were loaded first,
    /// they replace the kernel's modules of the same name, and a module of
    /// the set that the loader refuses provides nothing.
    pub fn with_modules(mut self, modules: &'a [Module]) -> Self {
        self.providers
            .reserve(modules.iter().map(|m| m.exports.len()).sum());
        for m in modules {
            let i = self.set.len();
            self.set.push(m);
            for e in &m.exports {
                self.providers
                    .entry(e.name.as_str())
                    .or_insert((i, e.borrowed()));
            }
        }
        let names: HashSet<String> = self.set.iter().map(|m| m.name.replace('-', "_")).collect();
        let mut seen: HashSet<&'a str> = HashSet::default();
        for e in self.kernel.symvers.exports() {
            if !e.is_vmlinux() && seen.insert(e.module) && names.contains(&module_name_of(e.module))
            {
                self.replaced.insert(e.module);
            }
        }
        self
    }

    /// Every import resolved from the kernel must also be on `allowlist`.
    pub fn with_allowlist(mut self, allowlist: &'a Allowlist) -> Self {
        self.allowlist = Some(allowlist);
        self
    }

    /// Checks many modules in parallel; reports are in input order. A
    /// module that is also in the set (same path) gets the set's verdict;
    /// the others are checked one by one against the kernel and the set.
    pub fn check_all(&self, modules: &[Module]) -> Vec<ModuleReport> {
        let tables = self.tables(self.set.iter().copied().chain(modules));
        let mut set = self.set_verdicts(&tables);
        let member: Vec<Option<usize>> = modules
            .iter()
            .map(|m| set.by_path.get(m.path.as_str()).copied())
            .collect();
        let mut uses = vec![0u32; set.reports.len()];
        for &i in member.iter().flatten() {
            uses[i] += 1;
        }
        let outside: Vec<Option<ModuleReport>> = modules
            .par_iter()
            .zip(&member)
            .map(|(m, i)| i.is_none().then(|| self.report_outside(&tables, &set, m)))
            .collect();
        // A member's report moves out on its last use (cloned before that):
        // reports of refused sets can hold many problems each.
        let mut reports: Vec<Option<ModuleReport>> = set.reports.drain(..).map(Some).collect();
        outside
            .into_iter()
            .zip(member)
            .filter_map(|(report, i)| match (report, i) {
                (Some(r), _) => Some(r),
                (None, Some(i)) => {
                    uses[i] -= 1;
                    if uses[i] == 0 {
                        reports[i].take()
                    } else {
                        reports[i].clone()
                    }
                }
                (None, None) => None,
            })
            .collect()
    }

    /// Checks one module (against the kernel and the set, as `check_all`).
    /// Each call judges the whole set again: for many modules of one set,
    /// use `check_all`.
    pub fn check(&self, module: &Module) -> ModuleReport {
        let tables = self.tables(self.set.iter().copied().chain([module]));
        let set = self.set_verdicts(&tables);
        match set.by_path.get(module.path.as_str()) {
            Some(&i) => set.reports[i].clone(),
            None => self.report_outside(&tables, &set, module),
        }
    }

    /// Resolves every name of every distinct name table of `modules` once
    /// (the modules read back from one cache file share one table).
    fn tables<'m>(&self, modules: impl Iterator<Item = &'m Module>) -> Tables<'a> {
        let mut distinct: HashMap<usize, &Names> = HashMap::default();
        for m in modules {
            distinct.entry(m.names_key()).or_insert(m.names());
        }
        let distinct: Vec<(usize, &Names)> = distinct.into_iter().collect();
        distinct
            .into_par_iter()
            .map(|(key, names)| {
                let resolved = if names.len() > 4096 {
                    (0..names.len() as NameId)
                        .into_par_iter()
                        .map(|i| self.resolve(names.get(i)))
                        .collect()
                } else {
                    names.iter().map(|n| self.resolve(n)).collect()
                };
                let layout = names
                    .iter()
                    .position(|n| n == "module_layout")
                    .map(|i| i as NameId);
                (key, Table { resolved, layout })
            })
            .collect()
    }

    /// A module that is not in the set, checked against the kernel and the
    /// set's verdicts.
    fn report_outside(
        &self,
        tables: &Tables<'a>,
        set: &SetVerdicts<'_>,
        module: &Module,
    ) -> ModuleReport {
        let (mut report, edges) = self.check_one(tables, module);
        let mut refusals: HashMap<usize, Option<Refusal>> = HashMap::default();
        for e in edges {
            let p = e.provider as usize;
            if set.refused[p] {
                let refusal = refusals
                    .entry(p)
                    .or_insert_with(|| Refusal::of(&set.reports[p]));
                if let Some(r) = refusal {
                    depends_on_refused(&mut report, module, e.import as usize, r);
                }
            }
        }
        report.compatible = report.problems.is_empty();
        report
    }

    /// The verdict on every module of the set: each checked on its own, then
    /// the refusals propagated to the modules that import from them, until
    /// nothing changes.
    fn set_verdicts(&self, tables: &Tables<'a>) -> SetVerdicts<'a> {
        let checked: Vec<(ModuleReport, Vec<Edge>)> = self
            .set
            .par_iter()
            .map(|m| self.check_one(tables, m))
            .collect();
        let mut reports = Vec::with_capacity(checked.len());
        // Reverse dependencies: provider → (dependant, import).
        let mut dependants: Vec<Vec<Dependant>> = vec![Vec::new(); checked.len()];
        for (i, (report, edges)) in checked.into_iter().enumerate() {
            for e in edges {
                dependants[e.provider as usize].push(Dependant {
                    module: i as u32,
                    import: e.import,
                });
            }
            reports.push(report);
        }
        let mut refused: Vec<bool> = reports
            .iter()
            .map(|r| r.problems.iter().any(|p| p.kind.refuses()))
            .collect();
        let mut work: VecDeque<usize> = (0..reports.len()).filter(|&i| refused[i]).collect();
        while let Some(p) = work.pop_front() {
            let edges = std::mem::take(&mut dependants[p]);
            let Some(refusal) = edges.first().and_then(|_| Refusal::of(&reports[p])) else {
                continue;
            };
            for e in edges {
                let d = e.module as usize;
                if d == p {
                    continue;
                }
                if depends_on_refused(&mut reports[d], self.set[d], e.import as usize, &refusal)
                    && !refused[d]
                {
                    refused[d] = true;
                    work.push_back(d);
                }
            }
        }
        for r in &mut reports {
            r.compatible = r.problems.is_empty();
        }
        let mut by_path = HashMap::default();
        for (i, m) in self.set.iter().enumerate() {
            by_path.entry(m.path.as_str()).or_insert(i);
        }
        SetVerdicts {
            reports,
            refused,
            by_path,
        }
    }

    /// Resolves a symbol as the loader would: vmlinux first, then the set,
    /// then the kernel's own modules that the set does not replace.
    fn resolve(&self, symbol: &str) -> Resolved<'a> {
        let k = self.kernel.symvers.get_with_origin(symbol);
        if let Some((e, true)) = k {
            return Resolved::Kernel(e);
        }
        if let Some(&(i, e)) = self.providers.get(symbol) {
            return Resolved::Set(i, e);
        }
        match k.map(|(e, _)| e) {
            Some(e) if self.replaced.contains(e.module) => Resolved::Unresolved(Some(e.module)),
            Some(e) => Resolved::Kernel(e),
            None => Resolved::Unresolved(None),
        }
    }

    /// Checks one module on its own: the set's modules count as loaded.
    /// Also returns the imports resolved from the set.
    fn check_one(&self, tables: &Tables<'a>, module: &Module) -> (ModuleReport, Vec<Edge>) {
        let Some(table) = tables.get(&module.names_key()) else {
            // Not reached: `tables` holds every module's table.
            let own = self.tables(std::iter::once(module));
            return self.check_one(&own, module);
        };
        let names = module.names();
        let kernel = self.kernel;
        let kname = kernel.name.as_str();
        let modversions = kernel.modversions();
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        // By name id: the last record of a name counts, as before.
        let versions: Option<HashMap<NameId, u64>> =
            module.version_refs().map(|v| v.iter().copied().collect());
        let gpl_ok = module.gpl_compatible();
        let imported_ns: Vec<&str> = module.modinfo.import_ns().collect();
        let self_name = module.name.replace('-', "_");
        let mut edges = Vec::new();

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
                match (table.layout.and_then(|id| v.get(&id)), e.crc) {
                    (Some(&found), Some(want)) if found != u64::from(want) => {
                        problems.push(Problem {
                            symbol: "module_layout".to_string(),
                            kind: ProblemKind::Crc,
                            message: "disagrees about version of symbol module_layout: built for another kernel ABI".to_string(),
                            fix: format!("rebuild the module against the headers of {kname}"),
                            expected: Some(format!("0x{want:08x}")),
                            found: Some(format!("0x{found:08x}")),
                            provider: None,
                            cause: None,
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

        for (n, &import) in module.import_refs().iter().enumerate() {
            let id = import.id();
            let sym = names.get(id);
            let resolved = table
                .resolved
                .get(id as usize)
                .copied()
                .unwrap_or(Resolved::Unresolved(None));
            let (export, from_kernel) = match resolved {
                Resolved::Kernel(e) => (e, true),
                Resolved::Set(i, e) => {
                    edges.push(Edge {
                        provider: i as u32,
                        import: n as u32,
                    });
                    (e, false)
                }
                Resolved::Unresolved(replaced) => {
                    let gone = replaced.map(|m| {
                        format!(
                            " (the kernel's {} exported it, but the checked set replaces that module)",
                            module_name_of(m)
                        )
                    });
                    let gone = gone.as_deref().unwrap_or("");
                    if import.weak() {
                        warnings.push(Warning {
                            symbol: sym.to_string(),
                            kind: WarningKind::WeakUnresolved,
                            message: format!(
                                "weak symbol {sym} is not exported{gone}: resolves to 0"
                            ),
                        });
                    } else {
                        problems.push(Problem {
                            symbol: sym.to_string(),
                            kind: ProblemKind::Missing,
                            message: format!("unknown symbol {sym}: not exported by {kname}{gone}"),
                            fix: format!(
                                "ship (or pass with --with) the module that exports {sym}, or stop using it: it is not part of {kname}'s ABI"
                            ),
                            expected: None,
                            found: None,
                            provider: None,
                            cause: None,
                        });
                    }
                    continue;
                }
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
                    provider: None,
                    cause: None,
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
                            provider: None,
                            cause: None,
                        }),
                        Some(v) => match v.get(&id) {
                            Some(&found) if found != u64::from(want) => problems.push(Problem {
                                symbol: sym.to_string(),
                                kind: ProblemKind::Crc,
                                message: format!("disagrees about version of symbol {sym}"),
                                fix: format!(
                                    "rebuild the module against the headers (Module.symvers) of {kname}; {sym} changed its type signature"
                                ),
                                expected: Some(format!("0x{want:08x}")),
                                found: Some(format!("0x{found:08x}")),
                                provider: None,
                                cause: None,
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
            if let Some(ns) = export.namespace {
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
                            provider: None,
                            cause: None,
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
                        provider: None,
                        cause: None,
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
                        provider: None,
                        cause: None,
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
                    provider: None,
                    cause: None,
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
                        provider: None,
                        cause: None,
                    });
                }
                Some(_) => {}
            }
        }

        let report = ModuleReport {
            path: module.path.clone(),
            name: module.name.clone(),
            kernel: kname.to_string(),
            compatible: problems.is_empty(),
            problems,
            warnings,
        };
        (report, edges)
    }
}

/// The set's verdicts (see [`Checker::set_verdicts`]).
struct SetVerdicts<'a> {
    reports: Vec<ModuleReport>,
    /// Whether the loader refuses module `i` (an allowlist problem alone
    /// does not keep it from loading).
    refused: Vec<bool>,
    /// A module's index in the set by its path (the first one).
    by_path: HashMap<&'a str, usize>,
}

/// What every importer of a refused provider's symbols is told, formatted
/// once per provider.
struct Refusal {
    provider: String,
    /// The provider's first problem, `kind: symbol: message`.
    cause: String,
    fix: String,
}

impl Refusal {
    /// `None` when the loader would load the provider.
    fn of(provider: &ModuleReport) -> Option<Refusal> {
        let first = provider.problems.iter().find(|p| p.kind.refuses())?;
        Some(Refusal {
            provider: provider.name.clone(),
            cause: first.summary(),
            fix: format!("make {} loadable first: {}", provider.name, first.fix),
        })
    }
}

/// Import `import` of `module` comes from a provider the loader refuses: a
/// `dependency` problem (a warning for a weak import, which resolves to 0).
/// Returns whether a problem was added.
fn depends_on_refused(
    report: &mut ModuleReport,
    module: &Module,
    import: usize,
    refusal: &Refusal,
) -> bool {
    let Some(import) = module.import(import) else {
        return false;
    };
    let sym = import.name;
    let prov = refusal.provider.as_str();
    if import.weak {
        report.warnings.push(Warning {
            symbol: sym.to_string(),
            kind: WarningKind::WeakUnresolved,
            message: format!(
                "weak symbol {sym} comes from {prov}, which is refused: resolves to 0"
            ),
        });
        return false;
    }
    report.problems.push(Problem {
        symbol: sym.to_string(),
        kind: ProblemKind::Dependency,
        message: format!(
            "unknown symbol {sym}: only {prov} of the checked set exports it, and the loader refuses {prov} ({})",
            refusal.cause
        ),
        fix: refusal.fix.clone(),
        expected: None,
        found: None,
        provider: Some(refusal.provider.clone()),
        cause: Some(refusal.cause.clone()),
    });
    report.compatible = false;
    true
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
