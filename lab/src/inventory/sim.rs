//! `[machine.sim]`: a machine simulated in-process (see [`crate::sim`]).
//!
//! ```toml
//! [[machine]]
//! name = "sim-0001"
//! arch = "aarch64"
//! pool = "sim"
//!
//! [machine.sim]
//! profile = "kunpeng-920"   # one of crate::sim::PROFILES
//! faults = "light"          # none (default) | light | heavy
//! seed = 42                 # the fault stream's seed (default 0)
//! defect = "offline-cpu"    # none (default) | offline-cpu | kernel-taint | mce-log | unbound-device
//! time_scale = 0.01         # multiplies every simulated delay (default 1.0)
//! ```

use std::ops::Range;

use toml::Spanned;

use super::tree::{Cx, Kind, Node, Table};
use crate::sim::{profile, Defect, FaultLevel, Profile, SimSpec};

/// The keys of `[machine.sim]`.
pub(super) const SIM_KEYS: &[&str] = &["profile", "faults", "seed", "defect", "time_scale"];

pub(super) fn read_sim(
    cx: &mut Cx<'_>,
    machine: &str,
    span: Range<usize>,
    entries: &[(Spanned<String>, Node)],
) -> Option<SimSpec> {
    let what = format!("{machine} [machine.sim]");
    let mut t = Table::new(what.clone(), span, entries);
    let mut ok = true;
    let profile = match t.required_str(cx, "profile") {
        Some((p, pspan)) => {
            if Profile::get(&p).is_none() {
                cx.error(
                    pspan,
                    format!(
                        "{what}: unknown profile `{p}` (expected one of: {})",
                        profile::names().join(", ")
                    ),
                );
                ok = false;
            }
            Some(p)
        }
        None => None,
    };
    let faults = match t.str(cx, "faults") {
        None => FaultLevel::None,
        Some((f, fspan)) => FaultLevel::parse(&f).unwrap_or_else(|| {
            cx.error(
                fspan,
                format!("{what}: unknown fault level `{f}` (expected none, light or heavy)"),
            );
            ok = false;
            FaultLevel::None
        }),
    };
    let seed = match t.get("seed") {
        None => 0,
        Some(Node {
            kind: Kind::Int(v), ..
        }) if *v >= 0 => *v as u64,
        Some(n) => {
            cx.error(
                n.span.clone(),
                format!("{what}: `seed` must be a non-negative integer"),
            );
            ok = false;
            0
        }
    };
    let defect = match t.str(cx, "defect") {
        None => None,
        Some((d, _)) if d == "none" => None,
        Some((d, dspan)) => match Defect::parse(&d) {
            Some(d) => Some(d),
            None => {
                cx.error(
                    dspan,
                    format!(
                        "{what}: unknown defect `{d}` (expected none, {})",
                        Defect::ALL.map(Defect::as_str).join(", ")
                    ),
                );
                ok = false;
                None
            }
        },
    };
    let time_scale = match t.get("time_scale") {
        None => 1.0,
        Some(Node {
            kind: Kind::Float(v),
            ..
        }) if v.is_finite() && *v >= 0.0 => *v,
        Some(Node {
            kind: Kind::Int(v), ..
        }) if *v >= 0 => *v as f64,
        Some(n) => {
            cx.error(
                n.span.clone(),
                format!("{what}: `time_scale` must be a number ≥ 0 (1.0: realistic delays)"),
            );
            ok = false;
            1.0
        }
    };
    t.finish(cx, SIM_KEYS, |_| None);
    if !ok {
        return None;
    }
    Some(SimSpec {
        profile: profile?,
        faults,
        seed,
        defect,
        time_scale,
    })
}
