//! A bounded, pattern-verifying memory test.
//!
//! It runs on the system under test as `certlab agent memtest` (the
//! `mem-pattern` check starts it there), so it tests the SUT's memory, not
//! the orchestrator's. Each pattern is written over the whole buffer, then
//! read back and compared; the buffer passes through
//! [`std::hint::black_box`] between the two so the compiler cannot fold the
//! write into the read.

use std::fmt::Write as _;
use std::time::Instant;

/// The result of one pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternResult {
    pub name: &'static str,
    pub errors: u64,
    /// Byte offset, expected and found word of the first mismatch.
    pub first_error: Option<(usize, u64, u64)>,
}

/// The whole test's result.
#[derive(Debug, Clone)]
pub struct MemtestReport {
    pub bytes: usize,
    pub patterns: Vec<PatternResult>,
    pub seconds: f64,
}

impl MemtestReport {
    pub fn errors(&self) -> u64 {
        self.patterns.iter().map(|p| p.errors).sum()
    }

    /// The report in the line format the `mem-pattern` check parses.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for p in &self.patterns {
            let _ = write!(s, "pattern {} errors={}", p.name, p.errors);
            if let Some((off, want, got)) = p.first_error {
                let _ = write!(
                    s,
                    " first=0x{off:x} expected=0x{want:016x} found=0x{got:016x}"
                );
            }
            s.push('\n');
        }
        let mib = self.bytes as f64 / (1024.0 * 1024.0);
        let passes = self.patterns.len() as f64 * 2.0;
        let _ = writeln!(
            s,
            "result {} bytes={} seconds={:.3} mib_s={:.1}",
            if self.errors() == 0 { "pass" } else { "fail" },
            self.bytes,
            self.seconds,
            if self.seconds > 0.0 {
                mib * passes / self.seconds
            } else {
                0.0
            }
        );
        s
    }
}

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

type Gen = fn(usize, u64) -> u64;

const PATTERNS: &[(&str, Gen)] = &[
    ("zeros", |_, _| 0),
    ("ones", |_, _| u64::MAX),
    ("checkerboard", |i, _| {
        if i % 2 == 0 {
            0xAAAA_AAAA_AAAA_AAAA
        } else {
            0x5555_5555_5555_5555
        }
    }),
    ("walking-ones", |i, _| 1u64 << (i % 64)),
    ("walking-zeros", |i, _| !(1u64 << (i % 64))),
    ("address", |i, _| (i as u64).wrapping_mul(8)),
    ("address-inverted", |i, _| !(i as u64).wrapping_mul(8)),
    ("random", |i, seed| {
        xorshift(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }),
];

/// Tests `mib` MiB of memory with every pattern. Errors only when the
/// memory cannot be allocated.
pub fn run(mib: usize, seed: u64) -> Result<MemtestReport, String> {
    let words = mib
        .checked_mul(1024 * 1024 / 8)
        .ok_or_else(|| format!("{mib} MiB is too large"))?;
    let mut buf: Vec<u64> = Vec::new();
    buf.try_reserve_exact(words)
        .map_err(|e| format!("cannot allocate {mib} MiB: {e}"))?;
    buf.resize(words, 0);
    let start = Instant::now();
    let mut patterns = Vec::new();
    for (name, gen) in PATTERNS {
        for (i, w) in buf.iter_mut().enumerate() {
            *w = gen(i, seed);
        }
        let view = std::hint::black_box(&mut buf);
        let mut errors = 0u64;
        let mut first_error = None;
        for (i, w) in view.iter().enumerate() {
            let want = gen(i, seed);
            if *w != want {
                errors += 1;
                first_error.get_or_insert((i * 8, want, *w));
            }
        }
        patterns.push(PatternResult {
            name,
            errors,
            first_error,
        });
    }
    Ok(MemtestReport {
        bytes: words * 8,
        patterns,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Reads back what [`MemtestReport::to_text`] wrote: (passed, bytes, MiB/s,
/// failing pattern lines).
pub fn parse_report(text: &str) -> Option<(bool, u64, f64, Vec<String>)> {
    let mut failing = Vec::new();
    let mut result = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("pattern ") {
            if !rest.contains("errors=0") || rest.contains("first=") {
                failing.push(rest.to_string());
            }
        } else if let Some(rest) = line.strip_prefix("result ") {
            let mut it = rest.split_whitespace();
            let verdict = it.next()?;
            let mut bytes = None;
            let mut rate = None;
            for kv in it {
                match kv.split_once('=') {
                    Some(("bytes", v)) => bytes = v.parse().ok(),
                    Some(("mib_s", v)) => rate = v.parse().ok(),
                    _ => {}
                }
            }
            result = Some((verdict == "pass", bytes?, rate?));
        }
    }
    let (pass, bytes, rate) = result?;
    Some((pass && failing.is_empty(), bytes, rate, failing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_memory_passes_and_report_round_trips() {
        let r = run(1, 42).unwrap();
        assert_eq!(r.bytes, 1 << 20);
        assert_eq!(r.errors(), 0);
        assert_eq!(r.patterns.len(), PATTERNS.len());
        let (pass, bytes, _, failing) = parse_report(&r.to_text()).unwrap();
        assert!(pass);
        assert_eq!(bytes, 1 << 20);
        assert!(failing.is_empty());
    }

    #[test]
    fn a_reported_mismatch_fails() {
        let text = "pattern zeros errors=0\npattern ones errors=3 first=0x40 expected=0xffffffffffffffff found=0xfffffffffffffffe\nresult fail bytes=1048576 seconds=0.010 mib_s=1600.0\n";
        let (pass, _, _, failing) = parse_report(text).unwrap();
        assert!(!pass);
        assert_eq!(failing.len(), 1);
        assert!(failing[0].starts_with("ones errors=3"));
        assert!(parse_report("garbage").is_none());
    }

    #[test]
    fn patterns_differ_between_neighbours() {
        // A stuck or shorted bit must show in at least one pattern: every
        // bit position takes both values across the pattern set.
        for bit in 0..64 {
            let mut seen = [false, false];
            for (_, g) in PATTERNS {
                for i in 0..128 {
                    seen[((g(i, 7) >> bit) & 1) as usize] = true;
                }
            }
            assert_eq!(seen, [true, true], "bit {bit}");
        }
    }
}
