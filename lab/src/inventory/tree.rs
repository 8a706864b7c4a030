//! A TOML tree that keeps the span of every key and value, and the
//! helpers that walk it collecting problems with their lines.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::{expand_home, Problem, Severity};

pub(super) struct Node {
    pub(super) span: Range<usize>,
    pub(super) kind: Kind,
}

pub(super) enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool,
    Array(Vec<Node>),
    Table(Vec<(Spanned<String>, Node)>),
}

impl Kind {
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool => "a boolean",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        let s = Spanned::<Kind>::deserialize(d)?;
        Ok(Node {
            span: s.span(),
            kind: s.into_inner(),
        })
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = Kind;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, _v: bool) -> Result<Kind, E> {
        Ok(Kind::Bool)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        Ok(Kind::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        i64::try_from(v)
            .map(Kind::Int)
            .map_err(|_| E::custom("integer out of range"))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        Ok(Kind::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        Ok(Kind::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Kind, E> {
        Ok(Kind::Str(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        let mut items = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            items.push(n);
        }
        Ok(Kind::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<Spanned<String>>()? {
            let v = map.next_value::<Node>()?;
            entries.push((k, v));
        }
        Ok(Kind::Table(entries))
    }
}

// ---------------------------------------------------------------------------
// Validation: walk the tree, collect every problem.

pub(super) struct Cx<'a> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    pub(super) base: Option<&'a Path>,
    pub(super) problems: Vec<Problem>,
    /// Every machine name seen, with the span of its `[[machine]]` table.
    pub(super) names: Vec<(String, Range<usize>)>,
}

impl Cx<'_> {
    pub(super) fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let before = self.text.get(..offset).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
        (line, column)
    }

    pub(super) fn push(&mut self, severity: Severity, span: Range<usize>, message: String) {
        let (line, column) = self.line_col(span.start);
        self.problems.push(Problem {
            severity,
            file: self.file.to_string(),
            line,
            column,
            message,
        });
    }

    pub(super) fn error(&mut self, span: Range<usize>, message: String) {
        self.push(Severity::Error, span, message);
    }

    pub(super) fn warn(&mut self, span: Range<usize>, message: String) {
        self.push(Severity::Warning, span, message);
    }

    pub(super) fn path(&self, p: &str) -> PathBuf {
        let expanded = expand_home(p);
        match self.base {
            Some(b) if expanded.is_relative() => b.join(expanded),
            _ => expanded,
        }
    }
}

/// Reads the keys of one table, remembering which were used so that the
/// rest can be reported as unknown.
pub(super) struct Table<'a> {
    pub(super) what: String,
    pub(super) span: Range<usize>,
    entries: &'a [(Spanned<String>, Node)],
    used: Vec<bool>,
}

impl<'a> Table<'a> {
    pub(super) fn new(
        what: impl Into<String>,
        span: Range<usize>,
        entries: &'a [(Spanned<String>, Node)],
    ) -> Self {
        Table {
            what: what.into(),
            span,
            entries,
            used: vec![false; entries.len()],
        }
    }

    pub(super) fn get(&mut self, key: &str) -> Option<&'a Node> {
        let i = self.entries.iter().position(|(k, _)| k.get_ref() == key)?;
        self.used[i] = true;
        Some(&self.entries[i].1)
    }

    pub(super) fn key_span(&self, key: &str) -> Range<usize> {
        self.entries
            .iter()
            .find(|(k, _)| k.get_ref() == key)
            .map_or(self.span.clone(), |(k, _)| k.span())
    }

    pub(super) fn str(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<(String, Range<usize>)> {
        let n = self.get(key)?;
        match &n.kind {
            Kind::Str(s) => Some((s.clone(), n.span.clone())),
            other => {
                cx.error(
                    n.span.clone(),
                    format!(
                        "{}: `{key}` must be a string, not {}",
                        self.what,
                        other.type_name()
                    ),
                );
                None
            }
        }
    }

    pub(super) fn nonempty_str(
        &mut self,
        cx: &mut Cx<'_>,
        key: &str,
    ) -> Option<(String, Range<usize>)> {
        let (s, span) = self.str(cx, key)?;
        if s.trim().is_empty() {
            cx.error(span, format!("{}: `{key}` must not be empty", self.what));
            return None;
        }
        Some((s, span))
    }

    pub(super) fn required_str(
        &mut self,
        cx: &mut Cx<'_>,
        key: &str,
    ) -> Option<(String, Range<usize>)> {
        if self.get(key).is_none() {
            cx.error(
                self.span.clone(),
                format!("{}: missing required key `{key}`", self.what),
            );
            return None;
        }
        self.nonempty_str(cx, key)
    }

    pub(super) fn port(&mut self, cx: &mut Cx<'_>, key: &str) -> Option<u16> {
        let n = self.get(key)?;
        match n.kind {
            Kind::Int(p) if (1..=65535).contains(&p) => u16::try_from(p).ok(),
            Kind::Int(p) => {
                cx.error(
                    n.span.clone(),
                    format!("{}: `{key}` {p} is not a port (1-65535)", self.what),
                );
                None
            }
            ref other => {
                cx.error(
                    n.span.clone(),
                    format!(
                        "{}: `{key}` must be an integer, not {}",
                        self.what,
                        other.type_name()
                    ),
                );
                None
            }
        }
    }

    /// Reports keys that nobody asked for; `hint` explains special cases.
    pub(super) fn finish(
        self,
        cx: &mut Cx<'_>,
        allowed: &[&str],
        hint: impl Fn(&str) -> Option<String>,
    ) {
        for ((k, _), used) in self.entries.iter().zip(&self.used) {
            if *used {
                continue;
            }
            let msg = match hint(k.get_ref()) {
                Some(h) => format!("{}: {h}", self.what),
                None => format!(
                    "{}: unknown key `{}` (expected one of: {})",
                    self.what,
                    k.get_ref(),
                    allowed.join(", ")
                ),
            };
            cx.error(k.span(), msg);
        }
    }
}
