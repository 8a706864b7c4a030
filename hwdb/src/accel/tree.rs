//! The shape both `nvidia-smi` outputs share: a tree of named nodes, each
//! with a value (an element's text, a `Label : value` line's value).

/// Nesting deeper than this is refused (XML) or flattened (text): real
/// outputs nest five levels, and a bounded depth keeps recursion bounded.
pub(crate) const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub name: String,
    pub value: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn new(name: &str, value: &str) -> Node {
        Node {
            name: name.to_string(),
            value: value.to_string(),
            children: Vec::new(),
        }
    }

    /// The first child named `name` (ASCII case-insensitive).
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The node at `path`.
    pub fn at(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, p| n.child(p))
    }

    /// The value of the node at `path` (`""` for a section node).
    pub fn get(&self, path: &[&str]) -> Option<&str> {
        self.at(path).map(|n| n.value.as_str())
    }

    /// The value at the first of `paths` that is present and reported.
    pub fn first(&self, paths: &[&[&str]]) -> Option<&str> {
        paths
            .iter()
            .filter_map(|p| self.get(p))
            .find(|v| super::reported(v).is_some())
    }
}

/// ECC counters of one scope (`volatile`/`aggregate`): the old layout's
/// single-/double-bit totals (their parts summed when the total is not
/// reported), or the newer per-memory counters summed by kind (a name with
/// `uncorrectable` is uncorrected, else one with `correctable` is corrected).
pub(crate) fn ecc_scope(scope: Option<&Node>, single: &str, double: &str) -> super::EccCounts {
    use super::{count, sum};
    let Some(scope) = scope else {
        return super::EccCounts::default();
    };
    let total = |n: &Node| -> Option<u64> {
        match n.child("total").and_then(|t| count(&t.value, "")) {
            Some(t) => Some(t),
            None => sum(n
                .children
                .iter()
                .filter(|c| !c.name.eq_ignore_ascii_case("total"))
                .map(|c| count(&c.value, ""))),
        }
    };
    if scope.child(single).is_some() || scope.child(double).is_some() {
        return super::EccCounts {
            corrected: scope.child(single).and_then(total),
            uncorrected: scope.child(double).and_then(total),
        };
    }
    let of = |unc: bool| {
        sum(scope
            .children
            .iter()
            .filter(|c| {
                let l = c.name.to_ascii_lowercase();
                if unc {
                    l.contains("uncorrectable")
                } else {
                    l.contains("correctable") && !l.contains("uncorrectable")
                }
            })
            .map(|c| count(&c.value, "")))
    };
    super::EccCounts {
        corrected: of(false),
        uncorrected: of(true),
    }
}
