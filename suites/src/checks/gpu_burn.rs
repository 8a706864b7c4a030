//! `gpu_burn` (github.com/wilicc/gpu-burn): what its output says of each
//! GPU (a pure function of the text).
//!
//! Its progress line (rewritten in place with `\r`, so a captured output
//! holds many on one line) is `50.0%  proc'd: 2261 (7150 Gflop/s) - 0 (0
//! Gflop/s)   errors: 0 - 0   temps: 38 C - 36 C`: per GPU, the
//! multiplications done (`-1` once its process died), the rate, the
//! comparison errors since the last summary (`(WARNING!)` when not 0,
//! `(DIED!)` when the process is gone) and the temperature (`--` unknown).
//! At the end it prints `Tested N GPUs:` and `GPU i: OK` or `FAULTY` (any
//! comparison error during the run). It exits 0 even when a GPU is FAULTY
//! (wilicc/gpu-burn issue 12), and prints `OK` for a GPU that never
//! reported a result (issues 14, 124): the summary alone is not a pass.

use std::sync::OnceLock;

use regex::Regex;

/// One GPU as the output reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BurnGpu {
    pub index: usize,
    /// From the `GPU i: NAME (UUID: …)` lines `nvidia-smi -L` prints first.
    pub name: Option<String>,
    /// The multiplications of the last progress line; `None`: no progress
    /// line named this GPU.
    pub iterations: Option<i64>,
    pub gflops: Option<u64>,
    /// The most comparison errors one progress line reported.
    pub max_errors: i64,
    /// Any progress line marked `(WARNING!)` (errors) for this GPU.
    pub warned: bool,
    /// Its process died (`(DIED!)`, or `-1` multiplications).
    pub died: bool,
    pub temp_first_c: Option<u32>,
    pub temp_last_c: Option<u32>,
    pub temp_max_c: Option<u32>,
    /// The final summary's word: `Some(true)` FAULTY, `Some(false)` OK.
    pub faulty: Option<bool>,
}

/// What one `gpu_burn` run printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Burn {
    pub gpus: Vec<BurnGpu>,
    /// `Tested N GPUs:`: the run got to its end.
    pub tested: Option<usize>,
    /// `Couldn't init a GPU test: …`, `Failure during compute: …`,
    /// `No clients are alive!  Aborting`.
    pub errors: Vec<String>,
    pub progress_lines: usize,
}

fn re(cell: &'static OnceLock<Option<Regex>>, pat: &str) -> Option<&'static Regex> {
    cell.get_or_init(|| Regex::new(pat).ok()).as_ref()
}

fn proc_re() -> Option<&'static Regex> {
    static C: OnceLock<Option<Regex>> = OnceLock::new();
    re(&C, r"(-?\d+) \((\d+) Gflop/s\)")
}
fn err_re() -> Option<&'static Regex> {
    static C: OnceLock<Option<Regex>> = OnceLock::new();
    re(&C, r"(-?\d+)\s*(?:\((WARNING|DIED)!\))?")
}
fn temp_re() -> Option<&'static Regex> {
    static C: OnceLock<Option<Regex>> = OnceLock::new();
    re(&C, r"(\d+) C|--")
}
fn name_re() -> Option<&'static Regex> {
    static C: OnceLock<Option<Regex>> = OnceLock::new();
    re(&C, r"^GPU (\d+): (.+?) \(UUID: [^)]*\)\s*$")
}
fn summary_re() -> Option<&'static Regex> {
    static C: OnceLock<Option<Regex>> = OnceLock::new();
    re(&C, r"^\s*GPU (\d+): (OK|FAULTY)\s*$")
}
fn tested_re() -> Option<&'static Regex> {
    static C: OnceLock<Option<Regex>> = OnceLock::new();
    re(&C, r"^\s*Tested (\d+) GPUs:")
}

fn gpu(b: &mut Burn, i: usize) -> &mut BurnGpu {
    while b.gpus.len() <= i {
        let index = b.gpus.len();
        b.gpus.push(BurnGpu {
            index,
            ..BurnGpu::default()
        });
    }
    &mut b.gpus[i]
}

fn progress(b: &mut Burn, line: &str) {
    let Some(at) = line.find("proc'd:") else {
        return;
    };
    let rest = &line[at + "proc'd:".len()..];
    let (procs, rest) = rest.split_once("errors:").unwrap_or((rest, ""));
    let (errs, temps) = rest.split_once("temps:").unwrap_or((rest, ""));
    b.progress_lines += 1;
    if let Some(r) = proc_re() {
        for (i, c) in r.captures_iter(procs).enumerate() {
            let n = c[1].parse::<i64>().ok();
            let g = gpu(b, i);
            g.iterations = n;
            g.gflops = c[2].parse().ok();
            if n == Some(-1) {
                g.died = true;
            }
        }
    }
    if let Some(r) = err_re() {
        for (i, c) in r.captures_iter(errs).enumerate() {
            let n = c[1].parse::<i64>().unwrap_or(0);
            let mark = c.get(2).map(|m| m.as_str());
            let g = gpu(b, i);
            // A count that wrapped negative is still errors (issue 12).
            if n != 0 || mark == Some("WARNING") {
                g.warned = true;
            }
            g.max_errors = g.max_errors.max(n.saturating_abs());
            if mark == Some("DIED") {
                g.died = true;
            }
        }
    }
    if let Some(r) = temp_re() {
        for (i, c) in r.captures_iter(temps).enumerate() {
            let t = c.get(1).and_then(|m| m.as_str().parse::<u32>().ok());
            let g = gpu(b, i);
            if let Some(t) = t {
                g.temp_first_c.get_or_insert(t);
                g.temp_last_c = Some(t);
                g.temp_max_c = Some(g.temp_max_c.map_or(t, |m| m.max(t)));
            }
        }
    }
}

/// Parses a `gpu_burn` run's output (stdout and stderr together or apart).
pub fn parse(text: &str) -> Burn {
    let mut b = Burn::default();
    let mut in_summary = false;
    for line in text.split(['\n', '\r']) {
        if line.contains("proc'd:") {
            progress(&mut b, line);
            continue;
        }
        let t = line.trim();
        for what in [
            "Couldn't init a GPU test:",
            "Failure during compute:",
            "No clients are alive!",
            "No CUDA devices",
        ] {
            if let Some(at) = t.find(what) {
                b.errors.push(t[at..].to_string());
            }
        }
        if let Some(c) = tested_re().and_then(|r| r.captures(line)) {
            b.tested = c[1].parse().ok();
            in_summary = true;
            continue;
        }
        if in_summary {
            if let Some(c) = summary_re().and_then(|r| r.captures(line)) {
                if let Ok(i) = c[1].parse::<usize>() {
                    gpu(&mut b, i).faulty = Some(&c[2] == "FAULTY");
                }
            }
            continue;
        }
        if let Some(c) = name_re().and_then(|r| r.captures(t)) {
            if let Ok(i) = c[1].parse::<usize>() {
                gpu(&mut b, i).name = Some(c[2].to_string());
            }
        }
    }
    b
}

/// Why a GPU did not pass the burn; `None`: it passed.
pub fn gpu_problem(g: &BurnGpu) -> Option<String> {
    if g.died {
        return Some("its burn process died".into());
    }
    if g.faulty == Some(true) || g.warned {
        return Some(format!(
            "FAULTY: wrong results in the comparison (up to {} errors in one report)",
            g.max_errors
        ));
    }
    match g.iterations {
        None => Some("no progress report named it: the burn never ran on it".into()),
        Some(n) if n <= 0 => Some(format!(
            "{n} multiplications done: the burn never ran on it"
        )),
        _ if g.faulty.is_none() => Some("absent from the final summary".into()),
        _ => None,
    }
}
