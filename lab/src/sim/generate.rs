//! `certlab lab sim generate`: a `lab.toml` of simulated machines.
//!
//! Machines are `sim-0001`…, pool `sim`, profiles in turn through
//! [`PROFILES`]. `defective` of them carry a product defect: spread evenly
//! over the lab (the seed shifts where), the defects in turn through
//! [`Defect::ALL`]. Every `[machine.sim]` table states its profile, fault
//! level, seed and defect, so each verdict can be predicted from the file.

use std::fmt::Write as _;

use crate::sim::{Defect, FaultLevel, PROFILES};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    pub machines: u32,
    pub seed: u64,
    pub faults: FaultLevel,
    pub defective: u32,
    pub time_scale: f64,
}

/// The defect of machine `i` (0-based) of a lab generated with `o`.
pub fn defect_of(o: &Options, i: u32) -> Option<Defect> {
    if o.defective == 0 || o.machines == 0 {
        return None;
    }
    let stride = u64::from(o.machines) / u64::from(o.defective.min(o.machines));
    let offset = o.seed % stride;
    let i = u64::from(i);
    if i < offset || (i - offset) % stride != 0 {
        return None;
    }
    let j = (i - offset) / stride;
    (j < u64::from(o.defective)).then(|| Defect::ALL[((j + o.seed) % 4) as usize])
}

/// The text of the lab.
pub fn lab_toml(o: &Options) -> String {
    let mut s = format!(
        "# A simulated lab: certlab lab sim generate --machines {} --seed {} --faults {} --defective {} --time-scale {}\n# Each machine is simulated in-process from a real machine's evidence (certlab lab sim profiles).\n# A machine without a defect passes every case of server-basic (skips allowed); a machine with one fails exactly its case:\n# offline-cpu: cpu.online, kernel-taint: kernel.taint, mce-log: kernel.log, unbound-device: pci.drivers.\n\nversion = 1\n",
        o.machines, o.seed, o.faults, o.defective, o.time_scale
    );
    for i in 0..o.machines {
        let def = &PROFILES[i as usize % PROFILES.len()];
        let defect = defect_of(o, i).map_or("none", Defect::as_str);
        let _ = write!(
            s,
            "\n[[machine]]\nname = \"sim-{:04}\"\narch = \"{}\"\npool = \"sim\"\ntags = [\"sim\", \"{}\"]\n\n[machine.sim]\nprofile = \"{}\"\nfaults = \"{}\"\nseed = {}\ndefect = \"{}\"\ntime_scale = {:?}\n",
            i + 1,
            def.arch,
            def.name,
            def.name,
            o.faults,
            o.seed,
            defect,
            o.time_scale
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Lab;

    #[test]
    fn generated_lab_loads_and_states_its_defects() {
        let o = Options {
            machines: 40,
            seed: 3,
            faults: FaultLevel::Heavy,
            defective: 8,
            time_scale: 0.01,
        };
        let lab = Lab::parse(&lab_toml(&o), "gen.toml").unwrap();
        assert_eq!(lab.machines.len(), 40);
        assert_eq!(lab.machines[0].name, "sim-0001");
        let defective: Vec<_> = lab
            .machines
            .iter()
            .filter_map(|m| m.sim.as_ref()?.defect)
            .collect();
        assert_eq!(defective.len(), 8);
        for d in Defect::ALL {
            assert_eq!(defective.iter().filter(|x| **x == d).count(), 2);
        }
        for m in &lab.machines {
            let s = m.sim.as_ref().unwrap();
            assert_eq!(s.faults, FaultLevel::Heavy);
            assert_eq!(m.pool.as_deref(), Some("sim"));
            assert_eq!(s.time_scale, 0.01);
        }
        let all = Options {
            defective: 40,
            ..o.clone()
        };
        let n = (0..40).filter(|i| defect_of(&all, *i).is_some()).count();
        assert_eq!(n, 40);
    }
}
