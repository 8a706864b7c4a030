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

#[cfg(test)]
mod tests {
    use crate::inventory::Lab;
    use crate::sim::{Defect, FaultLevel};

    fn lab(sim: &str, extra: &str) -> Result<Lab, String> {
        let text = format!(
            "[[machine]]\nname = \"s1\"\narch = \"aarch64\"\n{extra}\n[machine.sim]\n{sim}\n"
        );
        Lab::parse(&text, "lab.toml").map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_key_with_defaults() {
        let l = lab("profile = \"kunpeng-920\"", "").unwrap();
        let s = l.machines[0].sim.clone().unwrap();
        assert_eq!(s.faults, FaultLevel::None);
        assert_eq!((s.seed, s.defect, s.time_scale), (0, None, 1.0));
        let l = lab(
            "profile = \"kunpeng-920\"\nfaults = \"heavy\"\nseed = 9\ndefect = \"mce-log\"\ntime_scale = 0.5",
            "",
        )
        .unwrap();
        let s = l.machines[0].sim.clone().unwrap();
        assert_eq!(s.faults, FaultLevel::Heavy);
        assert_eq!(
            (s.seed, s.defect, s.time_scale),
            (9, Some(Defect::MceLog), 0.5)
        );
        let l = lab(
            "profile = \"kunpeng-920\"\ndefect = \"none\"\ntime_scale = 2",
            "",
        )
        .unwrap();
        assert_eq!(l.machines[0].sim.as_ref().unwrap().time_scale, 2.0);
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        for (sim, extra, line, words) in [
            ("profile = \"pdp-11\"", "", 6, "unknown profile `pdp-11`"),
            (
                "profile = \"kunpeng-920\"\nfaults = \"mild\"",
                "",
                7,
                "unknown fault level",
            ),
            (
                "profile = \"kunpeng-920\"\nseed = -1",
                "",
                7,
                "non-negative",
            ),
            (
                "profile = \"kunpeng-920\"\ndefect = \"fan\"",
                "",
                7,
                "unknown defect `fan`",
            ),
            (
                "profile = \"kunpeng-920\"\ntime_scale = -1.0",
                "",
                7,
                "time_scale",
            ),
            ("profile = \"kunpeng-920\"\ncolour = 1", "", 7, "colour"),
            ("faults = \"light\"", "", 5, "profile"),
            (
                "profile = \"hygon-dhyana\"",
                "",
                3,
                "does not match sim profile",
            ),
            (
                "profile = \"kunpeng-920\"",
                "[machine.ssh]\naddress = \"10.0.0.1\"\n",
                4,
                "has no [machine.ssh]",
            ),
        ] {
            let e = lab(sim, extra).unwrap_err();
            assert!(
                e.contains(&format!("lab.toml:{line}:")) && e.contains(words),
                "{sim:?}: {e}"
            );
        }
    }
}
