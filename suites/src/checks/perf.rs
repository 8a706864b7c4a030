//! Performance cases (fio, stress-ng, iperf3): a benchmark run again and again until its figure
//! settles (the coefficient of variation under a threshold, after a minimum
//! number of runs) or a cap is reached — the Phoronix Test Suite's rule —
//! every run kept: each run's report is evidence, and each of its figures a
//! sample (one [`Metric`] per run, under one name) for `perf compare`.
//!
//! Given a stored baseline (the runner finds one for the machine, else its
//! platform, and passes it in the case's spec), a case whose figure settled
//! compares its key figure's samples with the baseline's
//! ([`crate::perf::judge`]): a regression fails (or, with `regression =
//! "warn"`, is a warning), an improvement or no change passes, a comparison
//! that cannot tell is a warning. The comparison is recorded in the result.

use std::time::Duration;

use certlab_lab::target::shell_quote;
use certlab_reports::Metric;

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::perf::baseline::{describe, judge};
use crate::perf::stats::{Verdict as PerfVerdict, DEFAULT_THRESHOLD_PCT};
use crate::perf::{fio, iperf3, stats::cv_pct, stressng, ParseError};
use crate::plan::Check;
use crate::requires::Requires;

/// File systems kept in memory (`stat -f -c %T` names): no device to measure.
const MEMORY_FILE_SYSTEMS: &[&str] = &["tmpfs", "ramfs", "hugetlbfs"];
/// errno values a fio job reports: EINVAL when the file system refuses
/// O_DIRECT; EPERM, EACCES, EROFS when the test file cannot be written.
const EINVAL: i64 = 22;
const CANNOT_WRITE: [i64; 3] = [1, 13, 30];

/// The repeat-until-settled rule: at least `min_runs` (3), at most
/// `max_runs` (10), stopping once the key figure's coefficient of variation
/// is at most `max_cv_pct` (3.0).
struct Settle {
    min_runs: u64,
    max_runs: u64,
    max_cv: f64,
    values: Vec<f64>,
}

impl Settle {
    fn from_params(ctx: &CaseCtx<'_>) -> Settle {
        let min_runs = ctx.param_u64("min_runs", 3).max(2);
        Settle {
            min_runs,
            max_runs: ctx.param_u64("max_runs", 10).max(min_runs),
            max_cv: ctx.param_f64("max_cv_pct", 3.0),
            values: Vec::new(),
        }
    }

    /// Records one run's key figure; `true` when no further run is needed.
    fn push(&mut self, v: f64) -> bool {
        self.values.push(v);
        let n = self.values.len() as u64;
        n >= self.max_runs || (n >= self.min_runs && self.settled())
    }

    fn cv(&self) -> f64 {
        cv_pct(&self.values).unwrap_or(f64::NAN)
    }

    fn settled(&self) -> bool {
        self.cv() <= self.max_cv
    }

    fn mean(&self) -> f64 {
        self.values.iter().sum::<f64>() / self.values.len().max(1) as f64
    }

    /// Pass when settled, else fail; `what` says what ran and its figures.
    /// With a baseline, a settled figure is judged against it: `key`'s
    /// samples in `metrics` against the baseline's (plan parameters
    /// `threshold_pct`, 5.0, and `regression`, `fail` or `warn`).
    fn outcome(
        &self,
        ctx: &CaseCtx<'_>,
        key: &str,
        what: String,
        metrics: Vec<Metric>,
    ) -> Result<CaseOutcome, CaseError> {
        let mut outcome = if self.settled() {
            CaseOutcome::pass(format!("{what} ≤ {} %", self.max_cv))
        } else {
            CaseOutcome::fail(format!(
                "{what} > {} % after the cap of {} runs: the figure does not settle",
                self.max_cv, self.max_runs
            ))
        };
        if let Some(baseline) = ctx.baseline() {
            let warn_on_regression = match ctx.param_str("regression", "fail").as_str() {
                "fail" => false,
                "warn" => true,
                other => {
                    return Err(CaseError::Infra(format!(
                        "the plan's `regression` is `{other}`: it must be `fail` or `warn`"
                    )))
                }
            };
            let threshold = ctx.param_f64("threshold_pct", DEFAULT_THRESHOLD_PCT);
            let cmp = judge(baseline, &[key], &metrics, threshold);
            if let Some(m) = cmp.metrics.first() {
                let said = describe(&cmp, m);
                if self.settled() {
                    outcome = match m.verdict {
                        PerfVerdict::Regression => {
                            let mut o = CaseOutcome::fail(format!("{what}; {key} {said}"));
                            o.warning = warn_on_regression;
                            o
                        }
                        PerfVerdict::Improvement | PerfVerdict::NoChange => {
                            CaseOutcome::pass(format!("{what}; {key} {said}"))
                        }
                        PerfVerdict::Inconclusive => {
                            let mut o = CaseOutcome::fail(format!(
                                "{what}; {key} {said}: the comparison cannot tell (a warning)"
                            ));
                            o.warning = true;
                            o
                        }
                    };
                } else {
                    outcome.reason = format!("{}; {key} {said}", outcome.reason);
                }
            }
            outcome.baseline = Some(cmp);
        }
        outcome.metrics = metrics;
        Ok(outcome)
    }
}

/// Storage throughput with fio (`--direct=1`, so the device's figure and not
/// the page cache's), repeated until the bandwidth settles.
///
/// Parameters: `dir` (`/var/tmp`), `rw` (`read`; any fio `rw=` mode), `bs`
/// (`1M`), `size_mib` (256), `runtime_s` per run (5), `min_runs` (3),
/// `max_runs` (10), `max_cv_pct` (3.0). Pass when the bandwidth's CV
/// settles under `max_cv_pct`; fail when it has not by `max_runs` (the
/// figure is too unsteady to be a baseline — a warning unless the plan makes
/// the case a blocker); skip when fio is missing, the directory is in memory
/// or too small, or O_DIRECT is refused.
pub struct Fio;

impl Check for Fio {
    fn requires(&self) -> Requires {
        Requires::tool("fio")
    }

    fn compares_with_baseline(&self) -> bool {
        true
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let dir = ctx.param_str("dir", "/var/tmp");
        let rw = ctx.param_str("rw", "read");
        let bs = ctx.param_str("bs", "1M");
        let size_mib = ctx.param_u64("size_mib", 256).max(1);
        let runtime_s = ctx.param_u64("runtime_s", 5).max(1);

        let q = shell_quote(&dir);
        let df = ctx.run(&format!("df -Pk {q} | tail -n 1; stat -f -c fstype=%T {q}"))?;
        let df_text = df.stdout_str();
        if let Some(fs) = df_text
            .lines()
            .find_map(|l| l.strip_prefix("fstype="))
            .map(str::trim)
            .filter(|fs| MEMORY_FILE_SYSTEMS.contains(fs))
        {
            return Ok(CaseOutcome::skip(format!(
                "{dir} is on {fs}, a file system in memory: there is no disk to measure (set the case's `dir` to a directory on a disk)"
            )));
        }
        let free_kib: Option<u64> = df_text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok());
        if let Some(free) = free_kib.filter(|f| f / 1024 < size_mib * 2) {
            return Ok(CaseOutcome::skip(format!(
                "{dir} has {} MiB free; the test needs {} MiB",
                free / 1024,
                size_mib * 2
            )));
        }
        let made = ctx.run(&format!("mktemp -d {q}/certlab-fio.XXXXXX"))?;
        let work = made.stdout_str().trim().to_string();
        if !made.success() || work.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "cannot make a working directory in {dir}: {}",
                made.stderr_str().trim()
            )));
        }
        let outcome = fio_runs(ctx, &work, &rw, &bs, size_mib, runtime_s);
        // The test file goes whatever happened; a failure to remove it is
        // recorded as evidence and does not change the verdict.
        let _ = ctx.run(&format!("rm -rf {}", shell_quote(&work)));
        outcome
    }
}

fn fio_runs(
    ctx: &CaseCtx<'_>,
    work: &str,
    rw: &str,
    bs: &str,
    size_mib: u64,
    runtime_s: u64,
) -> Result<CaseOutcome, CaseError> {
    let cmd = format!(
        "fio --name=certlab --filename={} --rw={} --bs={} --size={size_mib}M --direct=1 --ioengine=psync --runtime={runtime_s} --time_based --output-format=json",
        shell_quote(&format!("{work}/f")),
        shell_quote(rw),
        shell_quote(bs),
    );
    // Laying the file out comes before the timed part.
    let timeout = Duration::from_secs(runtime_s + 120);
    let mut settle = Settle::from_params(ctx);
    let mut metrics: Vec<Metric> = Vec::new();
    let mut key: Option<String> = None;
    for run in 1.. {
        let out = ctx.run_with_timeout(&cmd, timeout)?;
        let parsed = match fio::parse(&out.stdout_str()) {
            Ok(m) => m,
            Err(ParseError::ToolFailed { why, .. }) => {
                return Ok(job_failed(&out.stdout_str(), &why, work));
            }
            Err(e) => {
                return Err(CaseError::Infra(format!(
                    "fio run {run} (exit {:?}) gave no report: {e}: {}",
                    out.exit,
                    out.stderr_str().trim()
                )))
            }
        };
        // One job: drop its name, keep DIRECTION.FIGURE.
        let this_run: Vec<Metric> = parsed
            .into_iter()
            .map(|m| Metric {
                name: m
                    .name
                    .split_once('.')
                    .map_or(m.name.clone(), |(_, rest)| rest.to_string()),
                ..m
            })
            .collect();
        let k = key.get_or_insert_with(|| {
            // The bandwidth of the direction that moved the most data.
            this_run
                .iter()
                .filter(|m| m.name.ends_with(".bw"))
                .max_by(|a, b| a.value.total_cmp(&b.value))
                .map(|m| m.name.clone())
                .unwrap_or_default()
        });
        let Some(v) = this_run.iter().find(|m| m.name == *k).map(|m| m.value) else {
            return Err(CaseError::Infra(format!(
                "fio run {run} reported no `{k}`: {}",
                out.stdout_str().chars().take(200).collect::<String>()
            )));
        };
        metrics.extend(this_run);
        if settle.push(v) {
            break;
        }
    }
    let key = key.unwrap_or_default();
    let what = format!(
        "{} runs of fio rw={rw} bs={bs} O_DIRECT, {runtime_s} s each: {key} mean {:.1} MiB/s, coefficient of variation {:.2} %",
        settle.values.len(),
        settle.mean() / (1024.0 * 1024.0),
        settle.cv()
    );
    settle.outcome(ctx, &key, what, metrics)
}

/// A fio job that ended with an error: O_DIRECT refused or no right to write
/// is a skip (no device figure can be had here), anything else — EIO above
/// all — a failure of the storage.
fn job_failed(report: &str, why: &str, work: &str) -> CaseOutcome {
    let errno = serde_json::from_str::<serde_json::Value>(report)
        .ok()
        .and_then(|v| v["jobs"][0]["error"].as_i64());
    if errno == Some(EINVAL) {
        return CaseOutcome::skip(format!(
            "the file system of {work} refuses O_DIRECT (fio: {why}): no device figure can be measured there"
        ));
    }
    if errno.is_some_and(|e| CANNOT_WRITE.contains(&e)) {
        return CaseOutcome::skip(format!(
            "cannot use a test file in {work} (fio: {why}): run certlab with the right to write there, or set `dir`"
        ));
    }
    CaseOutcome::fail(format!("fio could not do its I/O in {work}: {why}"))
}

/// CPU (or another stressor's) throughput with stress-ng's bogo operations,
/// repeated until the rate settles.
///
/// Parameters: `stressor` (`cpu`), `instances` (1), `timeout_s` per run (5),
/// and the rule's `min_runs`, `max_runs`, `max_cv_pct`. The key figure is
/// `STRESSOR.bogo_ops_per_sec_real`. stress-ng's own exit status decides
/// what a run that did not finish means: 2 (a stressor failed) is a fail,
/// 3 (no resources for it) and 4 (not implemented here) are skips.
pub struct StressNg;

impl Check for StressNg {
    fn requires(&self) -> Requires {
        Requires::tool("stress-ng")
    }

    fn compares_with_baseline(&self) -> bool {
        true
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let stressor = ctx.param_str("stressor", "cpu");
        if stressor.is_empty()
            || !stressor
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(CaseError::Infra(format!(
                "the plan names no stress-ng stressor this case can run: `{stressor}`"
            )));
        }
        let instances = ctx.param_u64("instances", 1);
        let timeout_s = ctx.param_u64("timeout_s", 5).max(1);
        let cmd = format!(
            "stress-ng --{stressor} {instances} --timeout {timeout_s}s --metrics-brief 2>&1"
        );
        let key = format!("{stressor}.bogo_ops_per_sec_real");
        let mut settle = Settle::from_params(ctx);
        let mut metrics = Vec::new();
        loop {
            let out = ctx.run_with_timeout(&cmd, Duration::from_secs(timeout_s + 60))?;
            let text = out.stdout_str();
            let tail = || text.lines().rev().take(3).collect::<Vec<_>>().join(" / ");
            match out.exit {
                Some(0) => {}
                Some(2) => {
                    return Ok(CaseOutcome::fail(format!(
                        "the {stressor} stressor failed (stress-ng exit 2): {}",
                        tail()
                    )))
                }
                Some(3) => {
                    return Ok(CaseOutcome::skip(format!(
                        "the {stressor} stressor lacks the resources it needs here (stress-ng exit 3): {}",
                        tail()
                    )))
                }
                Some(4) => {
                    return Ok(CaseOutcome::skip(format!(
                        "the {stressor} stressor is not implemented on this system (stress-ng exit 4)"
                    )))
                }
                other => {
                    return Err(CaseError::Infra(format!(
                        "stress-ng exited {other:?}: {}",
                        tail()
                    )))
                }
            }
            let run = stressng::parse_text(&text)
                .map_err(|e| CaseError::Infra(format!("stress-ng: {e}: {}", tail())))?;
            let Some(v) = run.iter().find(|m| m.name == key).map(|m| m.value) else {
                return Err(CaseError::Infra(format!(
                    "stress-ng reported no `{key}`: {}",
                    tail()
                )));
            };
            metrics.extend(run);
            if settle.push(v) {
                break;
            }
        }
        let what = format!(
            "{} runs of stress-ng --{stressor} {instances} for {timeout_s} s: {key} mean {:.1} bogo-ops/s, coefficient of variation {:.2} %",
            settle.values.len(),
            settle.mean(),
            settle.cv()
        );
        settle.outcome(ctx, &key, what, metrics)
    }
}

/// Network throughput with iperf3 (`-J`), repeated until the received rate
/// settles: against `peer` (a lab machine running `iperf3 -s`) when the plan
/// names one, else over loopback with a one-off server the case starts on a
/// port it picks and stops when the run ends.
///
/// Parameters: `peer` (none: loopback), `duration_s` per run (5),
/// `parallel` streams (1), and the rule's `min_runs`, `max_runs`,
/// `max_cv_pct`. The key figure is `received.bits_per_second`. A test that
/// iperf3 reports as failed (no server, a refused connection) is an
/// infrastructure error: the network path of the lab, not the product.
pub struct Iperf3;

/// Exit status of the loopback script when no port among those tried was free.
const NO_FREE_PORT: i32 = 98;

impl Check for Iperf3 {
    fn requires(&self) -> Requires {
        Requires::tool("iperf3")
    }

    fn compares_with_baseline(&self) -> bool {
        true
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let peer = ctx.param_str("peer", "");
        let duration_s = ctx.param_u64("duration_s", 5).max(1);
        let parallel = ctx.param_u64("parallel", 1).max(1);
        let client = |host: &str, port: Option<u16>| {
            let port = port.map_or(String::new(), |p| format!(" -p {p}"));
            format!(
                "iperf3 -c {}{port} -t {duration_s} -P {parallel} -J",
                shell_quote(host)
            )
        };
        let timeout = Duration::from_secs(duration_s + 60);
        let mut settle = Settle::from_params(ctx);
        let mut metrics = Vec::new();
        let key = "received.bits_per_second";
        loop {
            let cmd = if peer.is_empty() {
                loopback_script(&client("127.0.0.1", None), &free_port_guesses())
            } else {
                client(&peer, None)
            };
            let out = ctx.run_with_timeout(&cmd, timeout)?;
            if out.exit == Some(NO_FREE_PORT) {
                return Err(CaseError::Infra(format!(
                    "no free port for a loopback iperf3 server: {}",
                    out.stderr_str().trim()
                )));
            }
            let run = iperf3::parse(&out.stdout_str()).map_err(|e| {
                CaseError::Infra(format!(
                    "iperf3 (exit {:?}): {e}: {}",
                    out.exit,
                    out.stderr_str().trim()
                ))
            })?;
            let Some(v) = run.iter().find(|m| m.name == key).map(|m| m.value) else {
                return Err(CaseError::Infra(format!("iperf3 reported no `{key}`")));
            };
            metrics.extend(run);
            if settle.push(v) {
                break;
            }
        }
        let path = if peer.is_empty() {
            "loopback".to_string()
        } else {
            format!("to {peer}")
        };
        let what = format!(
            "{} runs of iperf3 {path}, {parallel} stream(s) for {duration_s} s: {key} mean {:.1} Mbit/s, coefficient of variation {:.2} %",
            settle.values.len(),
            settle.mean() / 1e6,
            settle.cv()
        );
        settle.outcome(ctx, key, what, metrics)
    }
}

/// Eight ports in the dynamic range, different on every call.
fn free_port_guesses() -> Vec<u16> {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    let seed = h.finish();
    (0..8u64)
        .map(|i| {
            let x = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            49_152 + u16::try_from((x >> 17) % 16_000).unwrap_or(0)
        })
        .collect()
}

/// One loopback run as one POSIX-sh command: a one-off server (`-1`) on the
/// first port that takes it, the client against it, the server stopped
/// whatever happens.
fn loopback_script(client: &str, ports: &[u16]) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    format!(
        "s=; d=$(mktemp -d); trap 'if [ -n \"$s\" ]; then kill $s 2>/dev/null; fi; rm -rf \"$d\"' EXIT; \
         for p in {ports}; do iperf3 -s -1 -p $p >\"$d/server\" 2>&1 & s=$!; sleep 0.5; \
         if kill -0 $s 2>/dev/null; then {client} -p $p; rc=$?; kill $s 2>/dev/null; wait $s 2>/dev/null; s=; exit $rc; fi; s=; done; \
         echo \"no free port among {ports}\" >&2; exit {NO_FREE_PORT}",
        ports = ports.join(" "),
    )
}
