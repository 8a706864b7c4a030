//! Seeded, deterministic faults of a simulated machine.
//!
//! Each machine draws from its own stream: the n-th draw of a machine is a
//! function of (seed, machine name, n) only (SplitMix64 over those), so a
//! lab file names every machine's fate and a rerun meets the same faults
//! in the same order.

use std::fmt;

/// How faulty a simulated machine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FaultLevel {
    #[default]
    None,
    Light,
    Heavy,
}

impl FaultLevel {
    pub const ALL: [FaultLevel; 3] = [FaultLevel::None, FaultLevel::Light, FaultLevel::Heavy];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultLevel::None => "none",
            FaultLevel::Light => "light",
            FaultLevel::Heavy => "heavy",
        }
    }

    pub fn parse(s: &str) -> Option<FaultLevel> {
        FaultLevel::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// Probabilities of each fault per operation.
    pub fn rates(self) -> Rates {
        match self {
            FaultLevel::None => Rates::default(),
            FaultLevel::Light => Rates {
                crash: 0.001,
                ssh_drop: 0.003,
                slow: 0.01,
                bmc_timeout: 0.01,
                bmc_5xx: 0.02,
                bmc_busy: 0.01,
                power_slowdown: 1.0,
            },
            FaultLevel::Heavy => Rates {
                crash: 0.004,
                ssh_drop: 0.01,
                slow: 0.05,
                bmc_timeout: 0.05,
                bmc_5xx: 0.10,
                bmc_busy: 0.05,
                power_slowdown: 3.0,
            },
        }
    }
}

impl fmt::Display for FaultLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Probability of each fault per operation (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// A command makes the kernel panic.
    pub crash: f64,
    /// The SSH connection drops in the middle of a command.
    pub ssh_drop: f64,
    /// A command takes 20 times as long.
    pub slow: f64,
    pub bmc_timeout: f64,
    pub bmc_5xx: f64,
    pub bmc_busy: f64,
    /// Transitional power states last this many times their usual time.
    pub power_slowdown: f64,
}

/// What happens to one target operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetFault {
    None,
    Slow,
    Drop,
    Crash,
}

/// What happens to one BMC call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BmcFault {
    None,
    Timeout,
    Server5xx,
    Busy,
}

/// A machine's fault stream.
#[derive(Debug, Clone)]
pub struct Faults {
    level: FaultLevel,
    rates: Rates,
    key: u64,
}

/// SplitMix64's output function.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a of a name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Faults {
    pub fn new(level: FaultLevel, seed: u64, machine: &str) -> Faults {
        Faults {
            level,
            rates: level.rates(),
            key: mix(seed ^ mix(fnv(machine))),
        }
    }

    pub fn level(&self) -> FaultLevel {
        self.level
    }

    pub fn rates(&self) -> Rates {
        self.rates
    }

    /// A uniform draw in [0, 1) for operation `n` of stream `stream`.
    pub fn draw(&self, stream: u64, n: u64) -> f64 {
        let z = mix(self.key ^ mix(stream.wrapping_mul(0x1000_0000_01b3) ^ n));
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A 64-bit value for operation `n` of `stream` (ids, readings).
    pub fn value(&self, stream: u64, n: u64) -> u64 {
        mix(self.key ^ mix(stream.wrapping_mul(0x1000_0000_01b3) ^ n))
    }

    /// The fate of target operation `n`.
    pub fn target(&self, n: u64) -> TargetFault {
        if self.level == FaultLevel::None {
            return TargetFault::None;
        }
        let r = self.draw(1, n);
        let Rates {
            crash,
            ssh_drop,
            slow,
            ..
        } = self.rates;
        if r < crash {
            TargetFault::Crash
        } else if r < crash + ssh_drop {
            TargetFault::Drop
        } else if r < crash + ssh_drop + slow {
            TargetFault::Slow
        } else {
            TargetFault::None
        }
    }

    /// The fate of BMC call `n`.
    pub fn bmc(&self, n: u64) -> BmcFault {
        if self.level == FaultLevel::None {
            return BmcFault::None;
        }
        let r = self.draw(2, n);
        let Rates {
            bmc_timeout,
            bmc_5xx,
            bmc_busy,
            ..
        } = self.rates;
        if r < bmc_timeout {
            BmcFault::Timeout
        } else if r < bmc_timeout + bmc_5xx {
            BmcFault::Server5xx
        } else if r < bmc_timeout + bmc_5xx + bmc_busy {
            BmcFault::Busy
        } else {
            BmcFault::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_fate_other_seed_other_fate() {
        let a = Faults::new(FaultLevel::Heavy, 7, "sim-0001");
        let b = Faults::new(FaultLevel::Heavy, 7, "sim-0001");
        let c = Faults::new(FaultLevel::Heavy, 8, "sim-0001");
        let fa: Vec<_> = (0..2000).map(|n| a.target(n)).collect();
        let fb: Vec<_> = (0..2000).map(|n| b.target(n)).collect();
        let fc: Vec<_> = (0..2000).map(|n| c.target(n)).collect();
        assert_eq!(fa, fb);
        assert_ne!(fa, fc);
    }

    #[test]
    fn rates_show_in_the_stream() {
        let f = Faults::new(FaultLevel::Heavy, 1, "m");
        let n = 100_000;
        let drops = (0..n).filter(|i| f.target(*i) == TargetFault::Drop).count();
        let expect = (FaultLevel::Heavy.rates().ssh_drop * n as f64) as usize;
        assert!(
            drops > expect / 2 && drops < expect * 2,
            "{drops} vs {expect}"
        );
        let none = Faults::new(FaultLevel::None, 1, "m");
        assert!((0..n).all(|i| none.target(i) == TargetFault::None));
        assert!((0..n).all(|i| none.bmc(i) == BmcFault::None));
    }

    #[test]
    fn levels_parse() {
        for l in FaultLevel::ALL {
            assert_eq!(FaultLevel::parse(l.as_str()), Some(l));
        }
        assert_eq!(FaultLevel::parse("medium"), None);
    }
}
