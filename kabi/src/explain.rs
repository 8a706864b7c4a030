//! `explain`: the type-level reason a symbol's CRC changed between two
//! kernels, from their BTF. A modversions CRC covers the symbol's
//! declaration with every struct, union, enum and typedef reachable from
//! it expanded (through pointers too), so the reason is the set of named
//! types reachable from the symbol's prototype (a FUNC) or type (a VAR)
//! whose definition differs: members added, removed, retyped or moved,
//! size changed, enumerators changed, typedef target changed.
//!
//! The whole-kernel comparison ([`TypeDiff::new`]) is done once; each
//! symbol is then a walk of the new kernel's type graph.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use rayon::prelude::*;
use serde::Serialize;

use crate::btf::{Btf, Kind, NameSpace, TypeId};

/// How one member changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum MemberChange {
    Added {
        member: String,
        ty: String,
        bit_offset: u32,
    },
    Removed {
        member: String,
        ty: String,
        bit_offset: u32,
    },
    Retyped {
        member: String,
        old: String,
        new: String,
    },
    Moved {
        member: String,
        old_bit_offset: u32,
        new_bit_offset: u32,
    },
}

/// How one named type changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TypeChange {
    /// `struct sock`, `union bpf_attr`, `enum foo`, `typedef u32`.
    pub ty: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_size: Option<u32>,
    pub members: Vec<MemberChange>,
    /// Enumerators added, removed or revalued (`NAME=old→new`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enumerators: Vec<String>,
    /// A typedef's target, or a kind change (`struct` → `union`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<(String, String)>,
}

impl TypeChange {
    /// One line per change, for humans.
    pub fn lines(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.old_size != self.new_size {
            if let (Some(o), Some(n)) = (self.old_size, self.new_size) {
                v.push(format!("size {o} → {n} bytes"));
            }
        }
        let moved = self
            .members
            .iter()
            .filter(|m| matches!(m, MemberChange::Moved { .. }))
            .count();
        for m in &self.members {
            if moved > 3 {
                if let MemberChange::Moved { .. } = m {
                    continue;
                }
            }
            v.push(match m {
                MemberChange::Added {
                    member,
                    ty,
                    bit_offset,
                } => {
                    format!("member added: {ty} {member} (at byte {})", bit_offset / 8)
                }
                MemberChange::Removed { member, ty, .. } => {
                    format!("member removed: {ty} {member}")
                }
                MemberChange::Retyped { member, old, new } => {
                    format!("member retyped: {member}: {old} → {new}")
                }
                MemberChange::Moved {
                    member,
                    old_bit_offset,
                    new_bit_offset,
                } => format!(
                    "member moved: {member}: byte {} → {}",
                    old_bit_offset / 8,
                    new_bit_offset / 8
                ),
            });
        }
        if moved > 3 {
            let first = self.members.iter().find_map(|m| match m {
                MemberChange::Moved {
                    member,
                    old_bit_offset,
                    new_bit_offset,
                } => Some(format!(
                    "{member}: byte {} → {}",
                    old_bit_offset / 8,
                    new_bit_offset / 8
                )),
                _ => None,
            });
            v.push(format!(
                "{moved} members moved (first {})",
                first.unwrap_or_default()
            ));
        }
        for e in &self.enumerators {
            v.push(format!("enumerator {e}"));
        }
        if let Some((o, n)) = &self.target {
            v.push(format!("{o} → {n}"));
        }
        v
    }
}

/// Why one symbol's CRC changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub symbol: String,
    /// `func`, `var`, or `missing` when a kernel's BTF does not describe it.
    pub kind: &'static str,
    /// The declaration in each kernel, spelled as C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_decl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_decl: Option<String>,
    /// Changed types reachable from the symbol, nearest first.
    pub changed: Vec<ReachedChange>,
    /// Named types reachable only in the new (or only in the old) kernel.
    pub newly_reachable: usize,
    pub no_longer_reachable: usize,
    /// How many named types are reachable from the symbol in the new kernel.
    pub reachable: usize,
}

/// A changed type and how the symbol reaches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReachedChange {
    #[serde(flatten)]
    pub change: TypeChange,
    /// Named types from the symbol to this one (excluded).
    pub via: Vec<String>,
}

/// The comparison of every named type of two kernels' BTF.
pub struct TypeDiff<'a> {
    pub old: &'a Btf,
    pub new: &'a Btf,
    /// By type key (`struct sock`).
    pub changes: BTreeMap<String, TypeChange>,
    old_graph: Graph,
    new_graph: Graph,
}

impl<'a> TypeDiff<'a> {
    /// Compares every named struct, union, enum and typedef of `old` and
    /// `new` (the first full definition of each name).
    pub fn new(old: &'a Btf, new: &'a Btf) -> Self {
        let old_keys = named(old);
        let new_keys = named(new);
        let changes: BTreeMap<String, TypeChange> = new_keys
            .par_iter()
            .filter_map(|(key, &nid)| {
                let oid = *old_keys.get(key)?;
                let c = compare(old, oid, new, nid, key)?;
                Some((key.clone(), c))
            })
            .collect();
        TypeDiff {
            old,
            new,
            changes,
            old_graph: Graph::new(old),
            new_graph: Graph::new(new),
        }
    }

    /// Explains many symbols, in parallel; results in input order.
    pub fn explain_many<S: AsRef<str> + Sync>(&self, symbols: &[S]) -> Vec<Explanation> {
        symbols
            .par_iter()
            .map(|s| self.explain(s.as_ref()))
            .collect()
    }

    /// Explains one symbol (a FUNC or VAR in both kernels' BTF).
    pub fn explain(&self, symbol: &str) -> Explanation {
        let find = |b: &Btf| {
            b.find(NameSpace::Func, symbol)
                .map(|id| ("func", id))
                .or_else(|| b.find(NameSpace::Var, symbol).map(|id| ("var", id)))
        };
        let (o, n) = (find(self.old), find(self.new));
        let decl = |b: &Btf, f: Option<(&str, TypeId)>| f.map(|(_, id)| declaration(b, id, symbol));
        let mut e = Explanation {
            symbol: symbol.to_string(),
            kind: n.or(o).map(|x| x.0).unwrap_or("missing"),
            old_decl: decl(self.old, o),
            new_decl: decl(self.new, n),
            changed: Vec::new(),
            newly_reachable: 0,
            no_longer_reachable: 0,
            reachable: 0,
        };
        let (Some((_, oid)), Some((_, nid))) = (o, n) else {
            e.kind = "missing";
            return e;
        };
        let old_reach = self.old_graph.reach(self.old, oid);
        let new_reach = self.new_graph.reach(self.new, nid);
        e.reachable = new_reach.len();
        let old_keys: HashSet<&str> = old_reach.iter().map(|(k, _)| k.as_str()).collect();
        let new_keys: HashSet<&str> = new_reach.iter().map(|(k, _)| k.as_str()).collect();
        e.newly_reachable = new_keys.difference(&old_keys).count();
        e.no_longer_reachable = old_keys.difference(&new_keys).count();
        for (key, via) in new_reach {
            if let Some(c) = self.changes.get(&key) {
                e.changed.push(ReachedChange {
                    change: c.clone(),
                    via,
                });
            }
        }
        e
    }
}

/// The first full definition of every named aggregate, enum and typedef.
fn named(b: &Btf) -> HashMap<String, TypeId> {
    let mut m = HashMap::new();
    for (id, t) in b.types() {
        if let Some(k) = key(b, id) {
            if !matches!(t.kind, Kind::Fwd { .. }) {
                m.entry(k).or_insert(id);
            }
        }
    }
    m
}

/// `struct sock` for a named struct, union, enum (64), typedef or fwd.
fn key(b: &Btf, id: TypeId) -> Option<String> {
    let t = b.get(id)?;
    let name = b.str(t.name);
    if name.is_empty() {
        return None;
    }
    let tag = match t.kind {
        Kind::Struct { .. } | Kind::Fwd { union: false } => "struct",
        Kind::Union { .. } | Kind::Fwd { union: true } => "union",
        Kind::Enum { .. } | Kind::Enum64 { .. } => "enum",
        Kind::Typedef(_) => "typedef",
        _ => return None,
    };
    Some(format!("{tag} {name}"))
}

/// The type graph: for each type, the types its definition mentions.
struct Graph {
    edges: Vec<Vec<TypeId>>,
}

impl Graph {
    fn new(b: &Btf) -> Self {
        let edges = b
            .types()
            .map(|(_, t)| match &t.kind {
                Kind::Ptr(x)
                | Kind::Typedef(x)
                | Kind::Volatile(x)
                | Kind::Const(x)
                | Kind::Restrict(x)
                | Kind::TypeTag(x) => vec![*x],
                Kind::Array { elem, .. } => vec![*elem],
                Kind::Struct { members, .. } | Kind::Union { members, .. } => {
                    members.iter().map(|m| m.ty).collect()
                }
                Kind::Func { proto, .. } => vec![*proto],
                Kind::FuncProto { ret, params } => std::iter::once(*ret)
                    .chain(params.iter().map(|p| p.ty))
                    .collect(),
                Kind::Var { ty, .. } => vec![*ty],
                _ => Vec::new(),
            })
            .collect();
        Graph { edges }
    }

    /// Named types reachable from `start` (breadth first), each with the
    /// named types on the way to it.
    fn reach(&self, b: &Btf, start: TypeId) -> Vec<(String, Vec<String>)> {
        let n = self.edges.len();
        let mut seen = vec![false; n];
        // For each visited type: the nearest named ancestor's index in `out`.
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        let mut q: VecDeque<(TypeId, Option<usize>)> = VecDeque::new();
        q.push_back((start, None));
        while let Some((id, parent)) = q.pop_front() {
            let Some(s) = seen.get_mut(id as usize) else {
                continue;
            };
            if *s {
                continue;
            }
            *s = true;
            let mut here = parent;
            if let Some(k) = key(b, id) {
                let via = match parent {
                    Some(p) => {
                        let (pk, pv) = &out[p];
                        let mut v = pv.clone();
                        v.push(pk.clone());
                        v
                    }
                    None => Vec::new(),
                };
                out.push((k, via));
                here = Some(out.len() - 1);
            }
            for &next in self.edges.get(id as usize).into_iter().flatten() {
                if !seen.get(next as usize).copied().unwrap_or(true) {
                    q.push_back((next, here));
                }
            }
        }
        out
    }
}

/// A member as compared: its (flattened) name, type as spelled, offset.
struct Flat {
    name: String,
    ty: String,
    bit_offset: u32,
}

/// Members of a struct or union, anonymous struct/union members flattened
/// into their parent with absolute offsets.
///
/// Each anonymous member's type is expanded once: C refuses a struct that
/// declares the same field names twice (or contains itself), so a type met
/// again comes from a malformed blob, and expanding it again would only
/// repeat (or, for a cycle or a fan-out, multiply) the same fields.
fn flatten(b: &Btf, id: TypeId, prefix: &str, base: u32, out: &mut Vec<Flat>, depth: u32) {
    flatten_once(b, id, prefix, base, out, depth, &mut HashSet::from([id]));
}

fn flatten_once(
    b: &Btf,
    id: TypeId,
    prefix: &str,
    base: u32,
    out: &mut Vec<Flat>,
    depth: u32,
    expanded: &mut HashSet<TypeId>,
) {
    let Some(t) = b.get(id) else { return };
    let (Kind::Struct { members, .. } | Kind::Union { members, .. }) = &t.kind else {
        return;
    };
    for m in members {
        let name = b.str(m.name);
        let off = base.saturating_add(m.bit_offset);
        let target = b.get(m.ty).map(|t| &t.kind);
        if name.is_empty()
            && depth < 16
            && matches!(target, Some(Kind::Struct { .. } | Kind::Union { .. }))
        {
            // C reaches an anonymous member's fields by their own names.
            if expanded.insert(m.ty) {
                flatten_once(b, m.ty, prefix, off, out, depth + 1, expanded);
            }
            continue;
        }
        let mut ty = spell(b, m.ty, 0);
        if m.bitfield_size > 0 {
            ty = format!("{ty}:{}", m.bitfield_size);
        }
        out.push(Flat {
            name: format!("{prefix}{name}"),
            ty,
            bit_offset: off,
        });
    }
}

fn size_of(b: &Btf, id: TypeId) -> Option<u32> {
    match b.get(id)?.kind {
        Kind::Struct { size, .. }
        | Kind::Union { size, .. }
        | Kind::Enum { size, .. }
        | Kind::Enum64 { size, .. } => Some(size),
        _ => None,
    }
}

/// Compares the definitions of one named type; `None` when equal.
fn compare(old: &Btf, oid: TypeId, new: &Btf, nid: TypeId, key: &str) -> Option<TypeChange> {
    let (ot, nt) = (old.get(oid)?, new.get(nid)?);
    let mut c = TypeChange {
        ty: key.to_string(),
        old_size: size_of(old, oid),
        new_size: size_of(new, nid),
        members: Vec::new(),
        enumerators: Vec::new(),
        target: None,
    };
    match (&ot.kind, &nt.kind) {
        (Kind::Struct { .. }, Kind::Struct { .. }) | (Kind::Union { .. }, Kind::Union { .. }) => {
            let (mut om, mut nm) = (Vec::new(), Vec::new());
            flatten(old, oid, "", 0, &mut om, 0);
            flatten(new, nid, "", 0, &mut nm, 0);
            let oidx: HashMap<&str, &Flat> = om.iter().map(|f| (f.name.as_str(), f)).collect();
            let nidx: HashMap<&str, &Flat> = nm.iter().map(|f| (f.name.as_str(), f)).collect();
            for f in &nm {
                match oidx.get(f.name.as_str()) {
                    None => c.members.push(MemberChange::Added {
                        member: f.name.clone(),
                        ty: f.ty.clone(),
                        bit_offset: f.bit_offset,
                    }),
                    Some(o) if o.ty != f.ty => c.members.push(MemberChange::Retyped {
                        member: f.name.clone(),
                        old: o.ty.clone(),
                        new: f.ty.clone(),
                    }),
                    Some(o) if o.bit_offset != f.bit_offset => {
                        c.members.push(MemberChange::Moved {
                            member: f.name.clone(),
                            old_bit_offset: o.bit_offset,
                            new_bit_offset: f.bit_offset,
                        })
                    }
                    Some(_) => {}
                }
            }
            for f in &om {
                if !nidx.contains_key(f.name.as_str()) {
                    c.members.push(MemberChange::Removed {
                        member: f.name.clone(),
                        ty: f.ty.clone(),
                        bit_offset: f.bit_offset,
                    });
                }
            }
        }
        (
            Kind::Enum { values: ov, .. } | Kind::Enum64 { values: ov, .. },
            Kind::Enum { values: nv, .. } | Kind::Enum64 { values: nv, .. },
        ) => {
            let o: HashMap<&str, i64> = ov.iter().map(|e| (old.str(e.name), e.value)).collect();
            let n: HashMap<&str, i64> = nv.iter().map(|e| (new.str(e.name), e.value)).collect();
            for e in nv {
                let name = new.str(e.name);
                match o.get(name) {
                    None => c.enumerators.push(format!("added: {name}={}", e.value)),
                    Some(&v) if v != e.value => c
                        .enumerators
                        .push(format!("revalued: {name}={v} → {}", e.value)),
                    Some(_) => {}
                }
            }
            for e in ov {
                let name = old.str(e.name);
                if !n.contains_key(name) {
                    c.enumerators.push(format!("removed: {name}={}", e.value));
                }
            }
        }
        (Kind::Typedef(o), Kind::Typedef(n)) => {
            let (o, n) = (spell(old, *o, 0), spell(new, *n, 0));
            if o != n {
                c.target = Some((o, n));
            }
        }
        (o, n) => {
            if o.name() != n.name() {
                c.target = Some((o.name().to_string(), n.name().to_string()));
            }
        }
    }
    let unchanged = c.old_size == c.new_size
        && c.members.is_empty()
        && c.enumerators.is_empty()
        && c.target.is_none();
    (!unchanged).then_some(c)
}

/// How many types one [`spell`] may visit. A real declaration needs a few
/// dozen; anonymous types shared by many members (or, in a malformed blob,
/// cycles among them) would otherwise make the spelling grow exponentially
/// with the depth. Beyond it the rest is spelled `…`.
const SPELL_BUDGET: usize = 4096;

/// A type as C would spell it in a declaration (named types by name,
/// anonymous ones inline).
pub fn spell(b: &Btf, id: TypeId, depth: u32) -> String {
    let mut budget = SPELL_BUDGET;
    spell_in(b, id, depth, &mut budget)
}

fn spell_in(b: &Btf, id: TypeId, depth: u32, budget: &mut usize) -> String {
    if depth > 8 || *budget == 0 {
        return "…".to_string();
    }
    *budget -= 1;
    let Some(t) = b.get(id) else {
        return format!("<bad type {id}>");
    };
    let name = b.str(t.name);
    let inline = |tag: &str, members: &[crate::btf::Member], budget: &mut usize| {
        let body: Vec<String> = members
            .iter()
            .map(|m| {
                format!(
                    "{} {};",
                    spell_in(b, m.ty, depth + 1, budget),
                    b.str(m.name)
                )
            })
            .collect();
        format!("{tag} {{ {} }}", body.join(" "))
    };
    match &t.kind {
        Kind::Void => "void".into(),
        Kind::Int { .. } | Kind::Float { .. } => name.into(),
        Kind::Ptr(x) => match b.get(*x).map(|t| &t.kind) {
            Some(Kind::FuncProto { ret, params }) => {
                format!(
                    "{} (*)({})",
                    spell_in(b, *ret, depth + 1, budget),
                    params_of(b, params, depth, budget)
                )
            }
            _ => format!("{} *", spell_in(b, *x, depth + 1, budget)),
        },
        Kind::Array { elem, nelems, .. } => {
            format!("{}[{nelems}]", spell_in(b, *elem, depth + 1, budget))
        }
        Kind::Struct { members, .. } if name.is_empty() => inline("struct", members, budget),
        Kind::Union { members, .. } if name.is_empty() => inline("union", members, budget),
        Kind::Struct { .. } | Kind::Fwd { union: false } => format!("struct {name}"),
        Kind::Union { .. } | Kind::Fwd { union: true } => format!("union {name}"),
        Kind::Enum { values, .. } | Kind::Enum64 { values, .. } if name.is_empty() => {
            let v: Vec<String> = values
                .iter()
                .map(|e| format!("{}={}", b.str(e.name), e.value))
                .collect();
            format!("enum {{ {} }}", v.join(", "))
        }
        Kind::Enum { .. } | Kind::Enum64 { .. } => format!("enum {name}"),
        Kind::Typedef(_) => name.into(),
        Kind::Const(x) => format!("const {}", spell_in(b, *x, depth + 1, budget)),
        Kind::Volatile(x) => format!("volatile {}", spell_in(b, *x, depth + 1, budget)),
        Kind::Restrict(x) => format!("{} restrict", spell_in(b, *x, depth + 1, budget)),
        Kind::TypeTag(x) => spell_in(b, *x, depth + 1, budget),
        Kind::FuncProto { ret, params } => {
            format!(
                "{} ({})",
                spell_in(b, *ret, depth + 1, budget),
                params_of(b, params, depth, budget)
            )
        }
        Kind::Func { proto, .. } => spell_in(b, *proto, depth + 1, budget),
        Kind::Var { ty, .. } => spell_in(b, *ty, depth + 1, budget),
        Kind::Datasec { .. } => format!("datasec {name}"),
        Kind::DeclTag { ty, .. } => spell_in(b, *ty, depth + 1, budget),
    }
}

fn params_of(b: &Btf, params: &[crate::btf::Param], depth: u32, budget: &mut usize) -> String {
    params
        .iter()
        .map(|p| {
            if p.ty == 0 && p.name == 0 {
                "...".to_string()
            } else {
                spell_in(b, p.ty, depth + 1, budget)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `int tcp_sendmsg(struct sock *sk, struct msghdr *msg, size_t size)`.
fn declaration(b: &Btf, id: TypeId, symbol: &str) -> String {
    let Some(t) = b.get(id) else {
        return symbol.to_string();
    };
    match &t.kind {
        Kind::Func { proto, .. } => match b.get(*proto).map(|t| &t.kind) {
            Some(Kind::FuncProto { ret, params }) => {
                let ps: Vec<String> = params
                    .iter()
                    .map(|p| {
                        if p.ty == 0 && p.name == 0 {
                            "...".to_string()
                        } else {
                            format!("{} {}", spell(b, p.ty, 0), b.str(p.name))
                                .trim_end()
                                .to_string()
                        }
                    })
                    .collect();
                format!("{} {symbol}({})", spell(b, *ret, 0), ps.join(", "))
            }
            _ => symbol.to_string(),
        },
        Kind::Var { ty, .. } => format!("{} {symbol}", spell(b, *ty, 0)),
        _ => symbol.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn info(kind: u32, vlen: u32) -> u32 {
        (kind << 24) | vlen
    }

    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for w in types {
            t.extend(w.to_le_bytes());
        }
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ] {
            b.extend(w.to_le_bytes());
        }
        b.extend(t);
        b.extend(strings);
        b
    }

    /// int; struct s { int a; [int b;] }; struct s *; int (struct s *); func f.
    fn kernel(with_b: bool) -> Btf {
        // 0 "" 1 int 5 s 7 a 9 b 11 f 13 p
        let s = b"\0int\0s\0a\0b\0f\0p\0";
        let mut t = vec![1, info(1, 0), 4, 32];
        if with_b {
            t.extend([5, info(4, 2), 8, 7, 1, 0, 9, 1, 32]);
        } else {
            t.extend([5, info(4, 1), 4, 7, 1, 0]);
        }
        t.extend([
            0,
            info(2, 0),
            2,
            0,
            info(13, 1),
            1,
            13,
            3,
            11,
            info(12, 0) | 1,
            4,
        ]);
        Btf::parse(&blob(&t, s), "t").unwrap()
    }

    /// Found by fuzzing (fuzz/ `btf` target: a timeout, then an OOM): an
    /// anonymous struct whose anonymous members are of its own type made
    /// flattening and spelling grow as fan-out^depth. Each anonymous type is
    /// now expanded once per flattening and a spelling visits at most
    /// `SPELL_BUDGET` types.
    #[test]
    fn anonymous_types_that_contain_themselves_stay_bounded() {
        // 1 int; 2 struct s { 8 × anonymous member of type 3 }; 3 an
        // anonymous struct { 8 × anonymous member of type 3 }.
        let s = b"\0int\0s\0";
        let mut t = vec![1, info(1, 0), 4, 32];
        for (name, id) in [(5u32, 2), (0, 3)] {
            let _ = id;
            t.extend([name, info(4, 8), 64]);
            for i in 0..8 {
                t.extend([0, 3, i * 8]);
            }
        }
        let b = Btf::parse(&blob(&t, s), "cycle").unwrap();
        let spelled = spell(&b, 3, 0);
        // Unbounded it would be 8^8 inline structs (hundreds of MiB).
        assert!(spelled.len() < 1 << 20, "{} bytes", spelled.len());
        assert!(spelled.contains('…'));
        let (mut flat, mut expanded) = (Vec::new(), HashSet::from([2]));
        flatten_once(&b, 2, "", 0, &mut flat, 0, &mut expanded);
        assert!(flat.is_empty(), "{} members", flat.len());
        assert_eq!(expanded, HashSet::from([2, 3]));
        assert!(TypeDiff::new(&b, &b).explain("s").changed.is_empty());
    }

    #[test]
    fn member_added_is_the_reason() {
        let (old, new) = (kernel(false), kernel(true));
        let d = TypeDiff::new(&old, &new);
        let e = d.explain("f");
        assert_eq!(e.kind, "func");
        assert_eq!(e.new_decl.as_deref(), Some("int f(struct s * p)"));
        assert_eq!(e.changed.len(), 1);
        let c = &e.changed[0].change;
        assert_eq!(c.ty, "struct s");
        assert_eq!((c.old_size, c.new_size), (Some(4), Some(8)));
        assert_eq!(
            c.members,
            vec![MemberChange::Added {
                member: "b".into(),
                ty: "int".into(),
                bit_offset: 32
            }]
        );
        assert!(d.explain("nope").kind == "missing");
        assert!(TypeDiff::new(&old, &old).explain("f").changed.is_empty());
    }
}
