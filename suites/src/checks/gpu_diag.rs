//! The GPU suite's active cases: NVIDIA DCGM's diagnostic
//! (`gpu.dcgm-diag`) and a short burn (`gpu.burn`, only when the plan
//! allows it). Parsers: [`super::dcgm`], [`super::gpu_burn`].

use std::fmt::Write as _;

use certlab_hwdb::accel::{self, AccelDevice, Tool};
use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::target::shell_quote;

use super::{dcgm, gpu_burn, gpu_xid};
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::kernlog::{self, EventKind};
use crate::plan::{Applies, Check};

fn applies_nvidia(profile: &HardwareProfile, what: &str) -> Applies {
    if profile.accelerators.iter().any(|a| a.vendor_id == 0x10de) {
        Applies::Yes
    } else {
        Applies::No(format!("no NVIDIA GPU in the hardware profile: {what}"))
    }
}

fn first_line(o: &certlab_lab::ExecOutput) -> String {
    let s = if o.stderr.iter().any(|b| !b.is_ascii_whitespace()) {
        o.stderr_str()
    } else {
        o.stdout_str()
    };
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}

fn exit_of(o: &certlab_lab::ExecOutput) -> String {
    o.exit
        .map_or("without a status".into(), |c| format!("exit {c}"))
}

/// NVIDIA DCGM's diagnostic, `dcgmi diag -r LEVEL -j`, judged test by test:
/// any test that DCGM fails on any GPU fails the case, naming the GPU, the
/// test and DCGM's message (error code and severity where DCGM gives
/// them); a warning is a warning; a run where DCGM passed nothing is a
/// skip. DCGM not installed, or unable to run (no host engine), is a skip
/// with its words. The JSON is the evidence.
///
/// Params: `level` (1–4, default 1: the deployment checks and a short
/// memory and PCIe test; 2 and 3 add the targeted stress, power and
/// memory-bandwidth tests and take minutes to half an hour — raise the
/// case's `timeout_s` with it).
pub struct DcgmDiag;

impl Check for DcgmDiag {
    fn applies(&self, profile: &HardwareProfile, _: &Inventory) -> Applies {
        applies_nvidia(profile, "DCGM diagnoses NVIDIA data-centre GPUs")
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let level = ctx.param_u64("level", 1);
        if !(1..=4).contains(&level) {
            return Err(CaseError::Infra(format!(
                "plan parameter `level` = {level}: dcgmi diag runs levels 1 to 4"
            )));
        }
        if !ctx.has_command("dcgmi")? {
            return Ok(CaseOutcome::skip(
                "dcgmi (NVIDIA DCGM) is not installed: the DCGM diagnostic cannot run",
            ));
        }
        let cmd = format!("dcgmi diag -r {level} -j");
        let o = ctx.run(&cmd)?;
        let out = o.stdout_str();
        // dcgmi exits non-zero when a test fails (226 on DCGM 4): the
        // document decides, the exit status only when there is none.
        let diag = match dcgm::parse(&out) {
            Ok(d) => d,
            Err(e) if !o.success() => {
                return Ok(CaseOutcome::skip(format!(
                    "`{cmd}` ({}) could not run the diagnostic: {} ({e})",
                    exit_of(&o),
                    first_line(&o)
                )))
            }
            Err(e) => {
                return Err(CaseError::Infra(format!(
                    "`{cmd}` printed what it should not: {e}"
                )))
            }
        };
        let who = format!(
            "DCGM {}{} level {level}",
            diag.version.as_deref().unwrap_or("(version not reported)"),
            diag.driver_version
                .as_deref()
                .map_or(String::new(), |d| format!(", driver {d},"))
        );
        if let Some(e) = &diag.runtime_error {
            return Ok(CaseOutcome::skip(format!(
                "{who}: DCGM could not run the diagnostic: {e}"
            )));
        }
        let j = dcgm::judge(&diag);
        let mut tail = String::new();
        if !j.warned.is_empty() && !j.failed.is_empty() {
            let _ = write!(tail, "; warnings: {}", j.warned.join("; "));
        }
        if !j.unknown.is_empty() {
            let _ = write!(tail, "; not judged: {}", j.unknown.join("; "));
        }
        if !j.skipped.is_empty() {
            let _ = write!(tail, "; skipped by DCGM: {}", j.skipped.join(", "));
        }
        if !j.failed.is_empty() {
            return Ok(CaseOutcome::fail(format!(
                "{who}: {} failed: {}{tail}",
                j.failed.len(),
                j.failed.join("; ")
            )));
        }
        if !j.warned.is_empty() {
            let mut o = CaseOutcome::fail(format!(
                "{who}: warnings (not failures): {}{tail}",
                j.warned.join("; ")
            ));
            o.warning = true;
            return Ok(o);
        }
        if j.passed == 0 {
            return Ok(CaseOutcome::skip(format!(
                "{who}: DCGM passed no test here ({} results){tail}",
                diag.results.len()
            )));
        }
        Ok(CaseOutcome::pass(format!(
            "{who}: {} results passed ({}){tail}",
            j.passed,
            j.passed_tests.join(", ")
        )))
    }
}

const DMESG_COUNT: &str = "dmesg >/dev/null && dmesg | wc -l";

/// The programs tried for the burn, in order (`gpu_burn` from a source
/// build, `gpu-burn` as the snap and distribution packages name it).
const BURN_PROGRAMS: [&str; 2] = ["gpu_burn", "gpu-burn"];

fn nvidia_state(ctx: &CaseCtx<'_>) -> Result<Result<Vec<AccelDevice>, String>, CaseError> {
    if !ctx.has_command("nvidia-smi")? {
        return Ok(Err("nvidia-smi is not installed".into()));
    }
    let o = ctx.run(Tool::NvidiaSmiQ.command())?;
    if !o.success() {
        return Ok(Err(format!(
            "`nvidia-smi -q` {}: {}",
            exit_of(&o),
            first_line(&o)
        )));
    }
    Ok(accel::parse(Tool::NvidiaSmiQ, &o.stdout_str()).map_err(|e| e.to_string()))
}

fn temp(d: &AccelDevice) -> String {
    d.temperature_c.map_or("?".into(), |t| format!("{t} °C"))
}

/// A short burn of every NVIDIA GPU with `gpu_burn`, only when the plan
/// sets `allow_burn = true` (it runs the GPUs at full power). Judged on what
/// the tool reports per GPU (a FAULTY comparison, a dead process, a GPU
/// that never ran — `gpu_burn` prints OK for those and exits 0), on the
/// kernel log written during the burn (any NVIDIA Xid, an uncorrected
/// AER/MCE/EDAC report, an oops: fail; corrected errors noted) and on
/// `nvidia-smi -q` before and after (temperatures and SM clocks reported;
/// a thermal slowdown after the burn is a warning: the cooling does not
/// keep up).
///
/// Params: `allow_burn` (bool, default false), `duration_s` (10–3600,
/// default 60; the case's `timeout_s` must exceed it by 60 s).
/// DCGM's own stress tests (targeted stress and power, memory bandwidth)
/// are `gpu.dcgm-diag` at `level = 2` or `3`.
pub struct Burn;

impl Check for Burn {
    fn applies(&self, profile: &HardwareProfile, _: &Inventory) -> Applies {
        applies_nvidia(profile, "gpu_burn is a CUDA program")
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        // Evidence first: which burn tool the machine has.
        let mut program = None;
        for p in BURN_PROGRAMS {
            let o = ctx.run(&format!("command -v {}", shell_quote(p)))?;
            let path = o.stdout_str().trim().to_string();
            if o.success() && !path.is_empty() {
                program = Some(path);
                break;
            }
        }
        if !ctx.param_bool("allow_burn", false) {
            return Ok(CaseOutcome::skip(format!(
                "the plan does not allow a burn (set param allow_burn = true, duration_s default 60){}",
                program
                    .as_deref()
                    .map_or(String::new(), |p| format!("; {p} is installed"))
            )));
        }
        let Some(program) = program else {
            return Ok(CaseOutcome::skip(
                "gpu_burn (github.com/wilicc/gpu-burn) is not installed; DCGM's stress tests run in gpu.dcgm-diag with level = 2 or 3",
            ));
        };
        let duration = ctx.param_u64("duration_s", 60);
        if !(10..=3600).contains(&duration) {
            return Err(CaseError::Infra(format!(
                "plan parameter `duration_s` = {duration}: a short burn is 10 to 3600 s"
            )));
        }
        if ctx.timeout.as_secs() < duration + 60 {
            return Err(CaseError::Infra(format!(
                "the case's timeout_s ({} s) must exceed duration_s ({duration} s) by 60 s",
                ctx.timeout.as_secs()
            )));
        }
        let before = nvidia_state(ctx)?;
        let count = ctx.run(DMESG_COUNT)?;
        let log_from = match count.stdout_str().trim().parse::<usize>() {
            Ok(n) if count.success() => Ok(n),
            _ => Err(format!(
                "the kernel log is not readable here ({}: {}): Xids during the burn not judged",
                exit_of(&count),
                first_line(&count)
            )),
        };
        // gpu_burn loads compare.ptx from its working directory: run it
        // where it is installed.
        let dir = match program.rfind('/') {
            Some(0) => "/".to_string(),
            Some(i) => program[..i].to_string(),
            None => ".".to_string(),
        };
        let cmd = format!(
            "cd {} && {} {duration} 2>&1",
            shell_quote(&dir),
            shell_quote(&program)
        );
        let o = ctx.run(&cmd)?;
        let burn = gpu_burn::parse(&o.stdout_str());
        let after = nvidia_state(ctx)?;
        let log = match &log_from {
            Ok(n) => {
                let t = ctx.run(&format!("dmesg >/dev/null && dmesg | tail -n +{}", n + 1))?;
                if t.success() {
                    Ok(t.stdout_str())
                } else {
                    Err(format!(
                        "the kernel log could not be read after the burn ({})",
                        exit_of(&t)
                    ))
                }
            }
            Err(e) => Err(e.clone()),
        };

        let mut bad = Vec::new();
        let mut warn = Vec::new();
        let mut notes = Vec::new();
        if !o.success() {
            bad.push(format!("`{cmd}` {}: {}", exit_of(&o), first_line(&o)));
        }
        bad.extend(burn.errors.iter().map(|e| format!("gpu_burn: {e}")));
        if burn.tested.is_none() {
            bad.push(format!(
                "gpu_burn's output has no `Tested N GPUs` summary: it did not finish ({} progress reports)",
                burn.progress_lines
            ));
        }
        let mut ok = Vec::new();
        for g in &burn.gpus {
            let name = format!(
                "GPU {}{}",
                g.index,
                g.name
                    .as_deref()
                    .map_or(String::new(), |n| format!(" ({n})"))
            );
            match gpu_burn::gpu_problem(g) {
                Some(p) => bad.push(format!("{name}: {p}")),
                None => ok.push(format!(
                    "{name}: {} multiplications, {} Gflop/s, no errors, {}",
                    g.iterations.unwrap_or(0),
                    g.gflops.unwrap_or(0),
                    match (g.temp_first_c, g.temp_max_c) {
                        (Some(a), Some(m)) => format!("{a}→{m} °C"),
                        _ => "temperature not reported".into(),
                    }
                )),
            }
        }
        if burn.gpus.is_empty() && burn.tested.is_some() {
            bad.push("gpu_burn tested no GPU".into());
        }
        match &log {
            Ok(text) => {
                for e in kernlog::scan(text) {
                    let what = match e.kind {
                        EventKind::Xid => {
                            let code = e.detail.as_deref().and_then(|d| d.parse::<u32>().ok());
                            let meaning = code
                                .and_then(gpu_xid::lookup)
                                .map_or("not in certlab's table", |x| x.name);
                            // The burn is a known-good program: even an Xid
                            // usually blamed on applications points at the
                            // GPU or driver here.
                            bad.push(format!(
                                "Xid {} during the burn ({meaning}): {}",
                                code.map_or("?".into(), |c| c.to_string()),
                                e.text.trim()
                            ));
                            continue;
                        }
                        k => k,
                    };
                    let line = format!("{} during the burn: {}", what.as_str(), e.text.trim());
                    match what {
                        EventKind::AerCorrected | EventKind::EdacCe => notes.push(line),
                        _ => bad.push(line),
                    }
                }
            }
            Err(why) => notes.push(why.clone()),
        }
        match (&before, &after) {
            (Ok(b), Ok(a)) => {
                for d in a {
                    let id = d.bus_id.clone().unwrap_or_else(|| "?".into());
                    let was = b.iter().find(|x| x.bus_id == d.bus_id);
                    let clocks = match (d.clocks.sm_mhz, d.clocks.sm_max_mhz) {
                        (Some(c), Some(m)) => format!(", SM {c} of {m} MHz"),
                        _ => String::new(),
                    };
                    notes.push(format!(
                        "{id}: {} before, {} after{clocks}",
                        was.map_or("?".into(), temp),
                        temp(d)
                    ));
                    if d.clocks.thermal_slowdown == Some(true) {
                        warn.push(format!(
                            "{id}: slowing down for heat after the burn ({}): the cooling does not keep up",
                            temp(d)
                        ));
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                notes.push(format!("temperatures and clocks not read: {e}"))
            }
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!("; {}", notes.join("; "))
        };
        if !bad.is_empty() {
            return Ok(CaseOutcome::fail(format!(
                "{duration} s burn with {program}: {}{notes}",
                bad.join("; ")
            )));
        }
        if !warn.is_empty() {
            let mut o = CaseOutcome::fail(format!(
                "{duration} s burn with {program} passed, but {}{notes}",
                warn.join("; ")
            ));
            o.warning = true;
            return Ok(o);
        }
        Ok(CaseOutcome::pass(format!(
            "{duration} s burn with {program}: {}{notes}",
            ok.join("; ")
        )))
    }
}
