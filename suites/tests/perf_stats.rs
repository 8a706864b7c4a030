//! The simulation behind `perf compare`'s choice of test (see
//! `suites/src/perf/stats.rs`): seeded, deterministic, thousands of trials.
//!
//! Five samples a side, 2 % Gaussian noise; "nothing changed" and "a 5 %
//! regression"; clean, and with outliers 20 % off. The goal: at most 1 %
//! false alarms (a regression *or* an improvement reported when nothing
//! changed), at least 60 % of the regressions detected without outliers and
//! at least 45 % with one sample in five 20 % off.
//!
//! `cargo test -p certlab-suites --release --test perf_stats -- --nocapture`
//! prints the table that BENCHMARKS.md quotes; `--ignored` adds the rejected
//! methods' rates.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use certlab_suites::perf::dist::{t_two_sided_p, Rng};
use certlab_suites::perf::stats::{mean, median, screen, DEFAULT_THRESHOLD_PCT};
use certlab_suites::perf::{compare, Better, Verdict};

const TRIALS: usize = 50_000;
const N: usize = 5;
const NOISE: f64 = 0.02;
const SHIFT: f64 = 0.05;
const OUTLIER: f64 = 0.20;

/// How outliers enter a side's samples.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outliers {
    None,
    /// One sample of each side 20 % off, up or down at random.
    OnePerSide,
    /// One sample of one side (at random) 20 % off, up or down at random.
    OneSideOnly,
    /// Each sample 20 % off with probability 1/5, up or down at random.
    EachOneInFive,
}

fn side(r: &mut Rng, loc: f64, outliers: Outliers, this_side_gets_one: bool) -> Vec<f64> {
    let mut v: Vec<f64> = (0..N).map(|_| loc * (1.0 + NOISE * r.normal())).collect();
    let off = |r: &mut Rng| {
        if r.uniform() < 0.5 {
            1.0 + OUTLIER
        } else {
            1.0 - OUTLIER
        }
    };
    match outliers {
        Outliers::None => {}
        Outliers::OnePerSide | Outliers::OneSideOnly => {
            if this_side_gets_one {
                let i = r.below(N);
                v[i] *= off(r);
            }
        }
        Outliers::EachOneInFive => {
            for x in v.iter_mut() {
                if r.uniform() < 0.2 {
                    *x *= off(r);
                }
            }
        }
    }
    v
}

/// A baseline and a candidate whose true level is `change` away (a fraction,
/// signed) from the baseline's 100.
fn pair(r: &mut Rng, change: f64, outliers: Outliers) -> (Vec<f64>, Vec<f64>) {
    let (b_gets, c_gets) = match outliers {
        Outliers::OneSideOnly => {
            let b = r.uniform() < 0.5;
            (b, !b)
        }
        _ => (true, true),
    };
    let b = side(r, 100.0, outliers, b_gets);
    let c = side(r, 100.0 * (1.0 + change), outliers, c_gets);
    (b, c)
}

#[derive(Debug)]
struct Rates {
    false_alarm_pct: f64,
    no_change_pct: f64,
    detected_pct: f64,
}

/// A decision: (`Some(true)` regression, `Some(false)` improvement, `None`
/// neither; whether it said `no_change`).
type Decide<'a> = dyn Fn(&[f64], &[f64], Better) -> (Option<bool>, bool) + 'a;

/// Runs `TRIALS` null and `TRIALS` regressed comparisons with `decide`
/// (`Some(true)` = regression reported, `Some(false)` = improvement,
/// `None` = neither).
fn rates(seed: u64, outliers: Outliers, direction: Better, decide: &Decide) -> Rates {
    let mut r = Rng::new(seed);
    let worse = match direction {
        Better::Higher => -SHIFT,
        Better::Lower => SHIFT,
    };
    let (mut alarms, mut no_change, mut detected) = (0usize, 0usize, 0usize);
    for _ in 0..TRIALS {
        let (b, c) = pair(&mut r, 0.0, outliers);
        let (verdict, unchanged) = decide(&b, &c, direction);
        alarms += usize::from(verdict.is_some());
        no_change += usize::from(unchanged);
        let (b, c) = pair(&mut r, worse, outliers);
        detected += usize::from(decide(&b, &c, direction).0 == Some(true));
    }
    let pct = |n: usize| 100.0 * n as f64 / TRIALS as f64;
    Rates {
        false_alarm_pct: pct(alarms),
        no_change_pct: pct(no_change),
        detected_pct: pct(detected),
    }
}

fn chosen(b: &[f64], c: &[f64], d: Better) -> (Option<bool>, bool) {
    let r = compare(b, c, d, DEFAULT_THRESHOLD_PCT);
    let v = match r.verdict {
        Verdict::Regression => Some(true),
        Verdict::Improvement => Some(false),
        Verdict::NoChange | Verdict::Inconclusive => None,
    };
    (v, r.verdict == Verdict::NoChange)
}

const SEED: u64 = 0x5EED_2026_1206;

fn row(name: &str, r: &Rates) {
    println!(
        "| {name:<46} | {:>6.2} % | {:>6.1} % | {:>6.1} % |",
        r.false_alarm_pct, r.detected_pct, r.no_change_pct
    );
}

#[test]
fn the_chosen_test_meets_the_goal() {
    println!("| scenario (5 + 5 samples, 2 % noise, 5 % regression, {TRIALS} trials) | false alarms | detected | no_change when unchanged |");
    println!("|---|---|---|---|");

    let clean = rates(SEED, Outliers::None, Better::Higher, &chosen);
    row("no outliers, higher is better", &clean);
    assert!(clean.false_alarm_pct <= 1.0, "{clean:?}");
    assert!(clean.detected_pct >= 60.0, "{clean:?}");
    // Unchanged and tight: mostly said so, not left inconclusive.
    assert!(clean.no_change_pct >= 80.0, "{clean:?}");

    let lower = rates(SEED + 1, Outliers::None, Better::Lower, &chosen);
    row("no outliers, lower is better (+5 % latency)", &lower);
    assert!(lower.false_alarm_pct <= 1.0, "{lower:?}");
    // A +5 % latency is a touch harder than a −5 % throughput: the slower
    // candidate's noise, 2 % of a higher level, is wider.
    assert!(lower.detected_pct >= 55.0, "{lower:?}");

    let one_each = rates(SEED + 2, Outliers::OnePerSide, Better::Higher, &chosen);
    row("one sample in five 20 % off, on each side", &one_each);
    assert!(one_each.false_alarm_pct <= 1.0, "{one_each:?}");
    assert!(one_each.detected_pct >= 45.0, "{one_each:?}");

    let one_side = rates(SEED + 3, Outliers::OneSideOnly, Better::Higher, &chosen);
    row("one sample 20 % off, on one side", &one_side);
    assert!(one_side.false_alarm_pct <= 1.0, "{one_side:?}");
    assert!(one_side.detected_pct >= 45.0, "{one_side:?}");

    // Reported, not a goal: with independent 1-in-5 outliers a side may
    // hold two, and only one is set aside.
    let random = rates(SEED + 4, Outliers::EachOneInFive, Better::Higher, &chosen);
    row("each sample 20 % off with probability 1/5", &random);
    assert!(random.false_alarm_pct <= 1.0, "{random:?}");
}

#[test]
fn honest_samples_are_rarely_set_aside() {
    let mut r = Rng::new(SEED + 5);
    let mut set_aside = 0usize;
    for _ in 0..TRIALS {
        let (b, c) = pair(&mut r, 0.0, Outliers::None);
        let s = screen(&b, &c);
        set_aside +=
            usize::from(!s.baseline_outliers.is_empty() || !s.candidate_outliers.is_empty());
    }
    let pct = 100.0 * set_aside as f64 / TRIALS as f64;
    println!("| comparisons of honest noise with a sample set aside | {pct:.2} % |");
    assert!(pct < 1.0, "{pct}");
    // And the real outliers are found: each side's 20 % excursion.
    let mut found = 0usize;
    for _ in 0..TRIALS {
        let (b, c) = pair(&mut r, 0.0, Outliers::OnePerSide);
        let s = screen(&b, &c);
        found += s.baseline_outliers.len() + s.candidate_outliers.len();
    }
    let pct = 100.0 * found as f64 / (2 * TRIALS) as f64;
    println!("| 20 % outliers set aside (one per side) | {pct:.1} % |");
    assert!(pct > 85.0, "{pct}");
}

/// Welch's t-test at the nominal 1 %: the reference the goal was set by.
fn welch(b: &[f64], c: &[f64]) -> f64 {
    let var = |x: &[f64]| {
        let m = mean(x).unwrap();
        x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)
    };
    let (vb, vc) = (var(b) / b.len() as f64, var(c) / c.len() as f64);
    let t = (mean(c).unwrap() - mean(b).unwrap()) / (vb + vc).sqrt();
    let df =
        (vb + vc).powi(2) / (vb * vb / (b.len() as f64 - 1.0) + vc * vc / (c.len() as f64 - 1.0));
    t_two_sided_p(t, df)
}

fn by_p(p: f64, b: &[f64], c: &[f64], d: Better) -> (Option<bool>, bool) {
    if p > 0.01 {
        return (None, false);
    }
    let down = median(c) < median(b);
    (Some(down == (d == Better::Higher)), false)
}

#[test]
fn welch_alone_is_blinded_by_one_outlier() {
    let w = |b: &[f64], c: &[f64], d: Better| by_p(welch(b, c), b, c, d);
    let clean = rates(SEED, Outliers::None, Better::Higher, &w);
    row("Welch, no outliers", &clean);
    assert!(
        clean.false_alarm_pct <= 1.2 && clean.detected_pct >= 60.0,
        "{clean:?}"
    );
    let one_each = rates(SEED + 2, Outliers::OnePerSide, Better::Higher, &w);
    row("Welch, one sample in five 20 % off on each side", &one_each);
    assert!(one_each.detected_pct < 5.0, "{one_each:?}");
}

// ---- the rejected methods, for the record ----------------------------------
//
// `cargo test -p certlab-suites --release --test perf_stats -- --ignored --nocapture`

fn sorted(x: &[f64]) -> Vec<f64> {
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn sample_var(x: &[f64]) -> f64 {
    let m = mean(x).unwrap();
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// Exact two-sided Mann–Whitney p (no ties in continuous data).
fn mann_whitney(b: &[f64], c: &[f64]) -> f64 {
    let (n, m) = (b.len(), c.len());
    let u: usize = b.iter().map(|x| c.iter().filter(|y| *y < x).count()).sum();
    // counts[i][j][k]: arrangements of i b's and j c's with U = k.
    let max = n * m;
    let mut counts = vec![vec![vec![0f64; max + 1]; m + 1]; n + 1];
    for i in 0..=n {
        for j in 0..=m {
            if i == 0 || j == 0 {
                counts[i][j][0] = 1.0;
                continue;
            }
            for k in 0..=max {
                let mut s = counts[i][j - 1][k];
                if k >= j {
                    s += counts[i - 1][j][k - j];
                }
                counts[i][j][k] = s;
            }
        }
    }
    let total: f64 = counts[n][m].iter().sum();
    let mid = max as f64 / 2.0;
    let d = (u as f64 - mid).abs();
    let tail: f64 = (0..=max)
        .filter(|k| (*k as f64 - mid).abs() >= d - 1e-9)
        .map(|k| counts[n][m][k])
        .sum();
    tail / total
}

/// Yuen's test with 20 % trimming.
fn yuen(b: &[f64], c: &[f64]) -> f64 {
    let part = |x: &[f64]| {
        let v = sorted(x);
        let n = v.len();
        let g = (0.2 * n as f64).floor() as usize;
        let h = (n - 2 * g) as f64;
        let trimmed = mean(&v[g..n - g]).unwrap();
        let mut w = v.clone();
        for i in 0..g {
            w[i] = v[g];
            w[n - 1 - i] = v[n - 1 - g];
        }
        let d = (n as f64 - 1.0) * sample_var(&w) / (h * (h - 1.0));
        (trimmed, d, h)
    };
    let (tb, db, hb) = part(b);
    let (tc, dc, hc) = part(c);
    let t = (tc - tb) / (db + dc).sqrt();
    let df = (db + dc).powi(2) / (db * db / (hb - 1.0) + dc * dc / (hc - 1.0));
    t_two_sided_p(t, df)
}

/// Exact permutation p of |statistic| over every split of the pooled samples.
fn permutation(b: &[f64], c: &[f64], stat: &dyn Fn(&[f64], &[f64]) -> f64) -> f64 {
    let all: Vec<f64> = b.iter().chain(c).copied().collect();
    let (n, k) = (all.len(), b.len());
    let observed = stat(b, c).abs();
    let (mut hits, mut total) = (0usize, 0usize);
    for mask in 0u32..(1 << n) {
        if mask.count_ones() as usize != k {
            continue;
        }
        let (x, y): (Vec<f64>, Vec<f64>) = {
            let mut x = Vec::with_capacity(k);
            let mut y = Vec::with_capacity(n - k);
            for (i, v) in all.iter().enumerate() {
                if mask & (1 << i) != 0 {
                    x.push(*v);
                } else {
                    y.push(*v);
                }
            }
            (x, y)
        };
        total += 1;
        hits += usize::from(stat(&x, &y).abs() >= observed - 1e-12);
    }
    hits as f64 / total as f64
}

fn hodges_lehmann(b: &[f64], c: &[f64]) -> f64 {
    let d: Vec<f64> = b
        .iter()
        .flat_map(|x| c.iter().map(move |y| y - x))
        .collect();
    median(&d)
}

fn mad(x: &[f64]) -> f64 {
    let m = median(x);
    median(&x.iter().map(|v| (v - m).abs()).collect::<Vec<_>>())
}

/// Drops a side's sample whose modified z-score (0.6745 |x − median| / MAD)
/// is over 3.5, the farthest one only.
fn mad_screen(x: &[f64]) -> Vec<f64> {
    let (m, s) = (median(x), mad(x));
    if s == 0.0 {
        return x.to_vec();
    }
    let far = (0..x.len())
        .max_by(|&i, &j| (x[i] - m).abs().total_cmp(&(x[j] - m).abs()))
        .unwrap();
    if 0.6745 * (x[far] - m).abs() / s > 3.5 {
        x.iter()
            .enumerate()
            .filter(|(i, _)| *i != far)
            .map(|(_, v)| *v)
            .collect()
    } else {
        x.to_vec()
    }
}

/// A 99 % percentile-bootstrap interval of the difference of medians
/// (1,000 resamples); "significant" when it excludes 0.
fn bootstrap_excludes_zero(b: &[f64], c: &[f64], r: &mut Rng) -> bool {
    let mut d: Vec<f64> = (0..1000)
        .map(|_| {
            let x: Vec<f64> = (0..b.len()).map(|_| b[r.below(b.len())]).collect();
            let y: Vec<f64> = (0..c.len()).map(|_| c[r.below(c.len())]).collect();
            median(&y) - median(&x)
        })
        .collect();
    d.sort_by(f64::total_cmp);
    d[5] > 0.0 || d[994] < 0.0
}

#[test]
#[ignore = "minutes in a debug build; prints the rejected methods' rates for ARCHITECTURE.md"]
fn rejected_methods_rates() {
    type PValue = Box<dyn Fn(&[f64], &[f64]) -> f64>;
    let methods: Vec<(&str, PValue)> = vec![
        ("Welch", Box::new(welch)),
        ("Mann-Whitney, exact", Box::new(mann_whitney)),
        ("Yuen, 20 % trimmed", Box::new(yuen)),
        (
            "permutation, difference of medians",
            Box::new(|b, c| permutation(b, c, &|x, y| median(y) - median(x))),
        ),
        (
            "permutation, Hodges-Lehmann shift",
            Box::new(|b, c| permutation(b, c, &hodges_lehmann)),
        ),
        (
            "permutation, H-L shift / pooled MAD",
            Box::new(|b, c| {
                permutation(b, c, &|x, y| {
                    let s = ((mad(x).powi(2) + mad(y).powi(2)) / 2.0).sqrt().max(1e-12);
                    hodges_lehmann(x, y) / s
                })
            }),
        ),
        (
            "MAD rule (modified z > 3.5) per side, then Welch",
            Box::new(|b, c| welch(&mad_screen(b), &mad_screen(c))),
        ),
    ];
    for (outliers, label) in [
        (Outliers::None, "clean"),
        (Outliers::OnePerSide, "one outlier a side"),
    ] {
        for (name, p) in &methods {
            let f = |b: &[f64], c: &[f64], d: Better| by_p(p(b, c), b, c, d);
            row(
                &format!("{name}, {label}"),
                &rates(SEED, outliers, Better::Higher, &f),
            );
        }
        let boot = std::cell::RefCell::new(Rng::new(SEED ^ 0xB007));
        let f = |b: &[f64], c: &[f64], d: Better| {
            let p = if bootstrap_excludes_zero(b, c, &mut boot.borrow_mut()) {
                0.0
            } else {
                1.0
            };
            by_p(p, b, c, d)
        };
        row(
            &format!("bootstrap 99 % of median difference, {label}"),
            &rates(SEED, outliers, Better::Higher, &f),
        );
    }
}
