//! The few distribution functions the comparison needs: Student's t (its
//! CDF and quantile) through the regularised incomplete beta function, and
//! a seeded normal generator for the simulation. Pure arithmetic, tested
//! against published table values.

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, nine terms; relative
/// error below 1e-13 over the range used here).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = C[0];
    for (i, c) in C.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The regularised incomplete beta function I_x(a, b), a, b > 0, 0 ≤ x ≤ 1.
pub fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    // The continued fraction converges fast for x < (a+1)/(a+b+2); use the
    // symmetry I_x(a,b) = 1 − I_{1−x}(b,a) on the other side.
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - inc_beta(1.0 - x, b, a);
    }
    let ln_front = a * x.ln() + b * (1.0 - x).ln() - (ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b));
    ln_front.exp() * beta_fraction(x, a, b) / a
}

/// The continued fraction of I_x(a, b) (terms d_1, d_2, …), evaluated by
/// the modified Lentz method.
fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let guard = |v: f64| if v.abs() < TINY { TINY } else { v };
    let mut c = 1.0;
    let mut d = 1.0 / guard(1.0 - (a + b) * x / (a + 1.0));
    let mut h = d;
    for m in 1..500 {
        let m = f64::from(m);
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        d = 1.0 / guard(1.0 + even * d);
        c = guard(1.0 + even / c);
        h *= d * c;
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        d = 1.0 / guard(1.0 + odd * d);
        c = guard(1.0 + odd / c);
        let step = d * c;
        h *= step;
        if (step - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

/// P(T ≤ t) for Student's t with `df` > 0 degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return if t > 0.0 { 1.0 } else { 0.0 };
    }
    let tail = 0.5 * inc_beta(df / (df + t * t), df / 2.0, 0.5);
    if t > 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The two-sided p-value of `t` under Student's t with `df` degrees of freedom.
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() {
        return f64::NAN;
    }
    if t.is_infinite() {
        return 0.0;
    }
    inc_beta(df / (df + t * t), df / 2.0, 0.5).clamp(0.0, 1.0)
}

/// The density of Student's t with `df` degrees of freedom at `t`.
pub fn t_pdf(t: f64, df: f64) -> f64 {
    let ln_c =
        ln_gamma((df + 1.0) / 2.0) - ln_gamma(df / 2.0) - 0.5 * (df * std::f64::consts::PI).ln();
    (ln_c - (df + 1.0) / 2.0 * (1.0 + t * t / df).ln()).exp()
}

/// The `q` quantile (0 < q < 1) of Student's t with `df` degrees of freedom:
/// Newton's method on the CDF, kept inside a bracket that bisection narrows
/// whenever a Newton step would leave it.
pub fn t_quantile(q: f64, df: f64) -> f64 {
    if !(q > 0.0 && q < 1.0) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if q < 0.5 {
        return -t_quantile(1.0 - q, df);
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    while t_cdf(hi, df) < q {
        lo = hi;
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    let mut t = 0.5 * (lo + hi);
    for _ in 0..200 {
        let f = t_cdf(t, df) - q;
        if f == 0.0 {
            return t;
        }
        if f < 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        let mut next = t - f / t_pdf(t, df);
        if !(next > lo && next < hi) {
            next = 0.5 * (lo + hi);
        }
        if (next - t).abs() <= 1e-13 * t.abs().max(1.0) {
            return next;
        }
        t = next;
    }
    t
}

/// A seeded SplitMix64 generator with standard normal draws (Box–Muller):
/// deterministic, so the simulation gives the same rates on every machine.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: seed,
            spare: None,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// A standard normal draw.
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (u, v) = (self.uniform(), self.uniform());
        let r = (-2.0 * u.ln()).sqrt();
        let th = 2.0 * std::f64::consts::PI * v;
        self.spare = Some(r * th.sin());
        r * th.cos()
    }

    /// An index in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn gamma_at_known_points() {
        // Γ(1) = Γ(2) = 1, Γ(5) = 24, Γ(1/2) = √π.
        assert!(close(ln_gamma(1.0), 0.0, 1e-13));
        assert!(close(ln_gamma(2.0), 0.0, 1e-13));
        assert!(close(ln_gamma(5.0), 24f64.ln(), 1e-12));
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
        assert!(close(ln_gamma(0.25), 3.625_609_908_221_908_f64.ln(), 1e-12));
    }

    #[test]
    fn incomplete_beta_closed_forms() {
        // I_x(1, 1) = x; I_x(a, 1) = x^a; I_x(1, b) = 1 − (1−x)^b.
        assert!(close(inc_beta(0.3, 1.0, 1.0), 0.3, 1e-14));
        assert!(close(inc_beta(0.3, 2.5, 1.0), 0.3f64.powf(2.5), 1e-13));
        assert!(close(inc_beta(0.7, 1.0, 3.0), 1.0 - 0.3f64.powi(3), 1e-13));
        assert_eq!(inc_beta(0.0, 2.0, 3.0), 0.0);
        assert_eq!(inc_beta(1.0, 2.0, 3.0), 1.0);
    }

    /// Two-sided critical values of Student's t, from the standard table
    /// (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
    #[test]
    fn t_quantiles_match_the_table() {
        let table = [
            (0.975, 1.0, 12.706),
            (0.975, 2.0, 4.303),
            (0.975, 5.0, 2.571),
            (0.975, 8.0, 2.306),
            (0.975, 30.0, 2.042),
            (0.995, 4.0, 4.604),
            (0.995, 6.0, 3.707),
            (0.995, 8.0, 3.355),
            (0.995, 100.0, 2.626),
            (0.95, 10.0, 1.812),
            (0.999, 20.0, 3.552),
        ];
        for (q, df, want) in table {
            let got = t_quantile(q, df);
            assert!(close(got, want, 6e-4), "t({q}, {df}) = {got}, table {want}");
            assert!(
                close(t_cdf(got, df), q, 1e-12),
                "cdf(quantile) at {q}, {df}"
            );
            assert!(close(t_quantile(1.0 - q, df), -got, 1e-9));
        }
        // Towards the normal: z(0.975) = 1.959964.
        assert!(close(t_quantile(0.975, 1e7), 1.959_964, 1e-5));
    }

    #[test]
    fn t_cdf_and_p_values() {
        // t = 2.0 with 10 df: P(T ≤ 2) = 0.963306.
        assert!(close(t_cdf(2.0, 10.0), 0.963_306, 1e-6));
        assert!(close(t_cdf(-2.0, 10.0), 1.0 - 0.963_306, 1e-6));
        assert!(close(t_cdf(0.0, 3.0), 0.5, 1e-15));
        // With 1 df the t is Cauchy: P(T ≤ 1) = 3/4.
        assert!(close(t_cdf(1.0, 1.0), 0.75, 1e-13));
        assert!(close(
            t_two_sided_p(2.0, 10.0),
            2.0 * (1.0 - 0.963_306),
            2e-6
        ));
        assert_eq!(t_two_sided_p(f64::INFINITY, 4.0), 0.0);
        // The density integrates to the CDF (midpoint rule on [0, 2]).
        let n = 20_000;
        let h = 2.0 / f64::from(n);
        let area: f64 = (0..n)
            .map(|i| t_pdf((f64::from(i) + 0.5) * h, 5.0) * h)
            .sum();
        assert!(close(0.5 + area, t_cdf(2.0, 5.0), 1e-8));
    }

    #[test]
    fn the_generator_is_seeded_and_normal() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let xs: Vec<f64> = (0..100_000).map(|_| a.normal()).collect();
        let ys: Vec<f64> = (0..100_000).map(|_| b.normal()).collect();
        assert_eq!(xs, ys);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        assert!(mean.abs() < 0.01, "{mean}");
        assert!((var - 1.0).abs() < 0.02, "{var}");
        // About 95 % within ±1.96.
        let inside = xs.iter().filter(|x| x.abs() < 1.96).count() as f64 / n;
        assert!((inside - 0.95).abs() < 0.005, "{inside}");
    }
}
