//! `diff`: what changed in the exported ABI between two kernels — added,
//! removed, CRC-changed, export-type-changed (GPL ↔ non-GPL),
//! namespace-changed and moved-module symbols. With an allowlist, a break
//! of an allowlisted symbol (removed, CRC, export type or namespace changed)
//! is release-blocking; a move to another module is not, since importers
//! still load.

use serde::Serialize;

use crate::allowlist::Allowlist;
use crate::kernel::Kernel;
use crate::symvers::ExportRef;

/// A symbol present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub symbol: String,
    pub module: String,
    pub export_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc: Option<String>,
    pub allowlisted: bool,
}

/// A property of a symbol that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub symbol: String,
    pub old: String,
    pub new: String,
    /// The exporter in the new kernel.
    pub module: String,
    pub allowlisted: bool,
}

/// The difference between two kernels' exports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KernelDiff {
    pub old: String,
    pub new: String,
    /// False when either kernel was built without modversions: CRCs not compared.
    pub crcs_compared: bool,
    pub added: Vec<Entry>,
    pub removed: Vec<Entry>,
    pub crc_changed: Vec<Change>,
    pub export_type_changed: Vec<Change>,
    pub namespace_changed: Vec<Change>,
    pub module_changed: Vec<Change>,
    /// Allowlisted symbols that broke: the release must not ship (needs an allowlist).
    pub blocking: Vec<String>,
}

impl KernelDiff {
    /// Whether there is any change at all.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.crc_changed.is_empty()
            && self.export_type_changed.is_empty()
            && self.namespace_changed.is_empty()
            && self.module_changed.is_empty()
    }
}

fn entry(e: ExportRef<'_>, allowlisted: bool) -> Entry {
    Entry {
        symbol: e.name.to_string(),
        module: e.module.to_string(),
        export_type: e.export_type.to_string(),
        namespace: e.namespace.map(str::to_string),
        crc: e.crc.map(|c| format!("0x{c:08x}")),
        allowlisted,
    }
}

/// Compares the exports of `old` and `new`.
pub fn diff(old: &Kernel, new: &Kernel, allowlist: Option<&Allowlist>) -> KernelDiff {
    let listed = |s: &str| allowlist.is_some_and(|a| a.contains(s));
    let crcs = old.modversions() && new.modversions();
    let mut d = KernelDiff {
        old: old.name.clone(),
        new: new.name.clone(),
        crcs_compared: crcs,
        ..KernelDiff::default()
    };
    for n in new.symvers.exports() {
        let Some(o) = old.export(n.name) else {
            d.added.push(entry(n, listed(n.name)));
            continue;
        };
        let al = listed(n.name);
        let change = |old: String, new: String| Change {
            symbol: n.name.to_string(),
            old,
            new,
            module: n.module.to_string(),
            allowlisted: al,
        };
        let mut broke = false;
        if crcs && o.crc != n.crc {
            let f = |c: Option<u32>| c.map(|c| format!("0x{c:08x}")).unwrap_or_default();
            d.crc_changed.push(change(f(o.crc), f(n.crc)));
            broke = true;
        }
        if o.export_type != n.export_type {
            d.export_type_changed
                .push(change(o.export_type.to_string(), n.export_type.to_string()));
            broke = true;
        }
        if o.namespace != n.namespace {
            d.namespace_changed.push(change(
                o.namespace.unwrap_or_default().to_string(),
                n.namespace.unwrap_or_default().to_string(),
            ));
            broke = true;
        }
        if o.module != n.module {
            d.module_changed
                .push(change(o.module.to_string(), n.module.to_string()));
        }
        if broke && al {
            d.blocking.push(n.name.to_string());
        }
    }
    for o in old.symvers.exports() {
        if new.export(o.name).is_none() {
            let al = listed(o.name);
            d.removed.push(entry(o, al));
            if al {
                d.blocking.push(o.name.to_string());
            }
        }
    }
    d.added.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    d.removed.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    for v in [
        &mut d.crc_changed,
        &mut d.export_type_changed,
        &mut d.namespace_changed,
        &mut d.module_changed,
    ] {
        v.sort_by(|a, b| a.symbol.cmp(&b.symbol));
    }
    d.blocking.sort();
    d
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::allowlist::AllowedSymbol;
    use crate::symvers::Symvers;

    fn k(text: &str) -> Kernel {
        Kernel::from_symvers("k", Symvers::parse(text, "t").unwrap())
    }

    #[test]
    fn every_kind_of_change() {
        let old = k("0x1\ta\tvmlinux\tEXPORT_SYMBOL\t\n0x2\tb\tvmlinux\tEXPORT_SYMBOL\t\n0x3\tc\tvmlinux\tEXPORT_SYMBOL\t\n0x4\td\tvmlinux\tEXPORT_SYMBOL\t\n0x5\te\tdrivers/x\tEXPORT_SYMBOL\t\n");
        let new = k("0x1\ta\tvmlinux\tEXPORT_SYMBOL\t\n0x9\tb\tvmlinux\tEXPORT_SYMBOL\t\n0x3\tc\tvmlinux\tEXPORT_SYMBOL_GPL\t\n0x4\td\tvmlinux\tEXPORT_SYMBOL\tNS\n0x5\te\tdrivers/y\tEXPORT_SYMBOL\t\n0x6\tf\tvmlinux\tEXPORT_SYMBOL\t\n");
        let mut al = Allowlist::default();
        al.insert(AllowedSymbol::named("b"));
        al.insert(AllowedSymbol::named("e"));
        let d = diff(&old, &new, Some(&al));
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.crc_changed[0].symbol, "b");
        assert_eq!(d.export_type_changed[0].symbol, "c");
        assert_eq!(d.namespace_changed[0].new, "NS");
        assert_eq!(d.module_changed[0].symbol, "e");
        assert_eq!(d.blocking, vec!["b"]);
        let back = diff(&new, &old, None);
        assert_eq!(back.removed[0].symbol, "f");
        assert!(back.blocking.is_empty());
    }
}
