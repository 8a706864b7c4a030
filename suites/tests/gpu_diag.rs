//! The GPU suite's active cases on real outputs (`fixtures/dcgm`,
//! `fixtures/gpuburn`, see their PROVENANCE.tsv): `dcgmi diag -j` of every
//! DCGM layout found (2.x, 4.2.3, 4.5.2) parsed and judged, and `gpu_burn`
//! runs (an 8×A100 pass, a FAULTY run, runs that never burned) judged with
//! the kernel log and `nvidia-smi -q` around them. No GPU machine was lent
//! to the session that wrote these; every case runs on Scripted targets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use certlab_hwdb::{Accelerator, HardwareProfile};
use certlab_lab::{DirEntry, ExecOutput, Scripted, Target, TargetError};
use certlab_reports::{Evidence, Verdict};
use certlab_suites::checks::dcgm::{self, Status};
use certlab_suites::checks::gpu_burn;
use certlab_suites::CaseOutcome;

use common::commands;

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn accel_fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hwdb/tests/fixtures/accel")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn nvidia_profile() -> HardwareProfile {
    let mut p = HardwareProfile::default();
    p.accelerators.push(Accelerator {
        address: "0000:07:00.0".into(),
        vendor_id: 0x10de,
        device_id: 0x2236,
        vendor: "NVIDIA".into(),
        model: "model".into(),
        link_speed: None,
        link_width: None,
        max_link_speed: None,
        max_link_width: None,
    });
    p
}

fn run(
    name: &str,
    target: &dyn Target,
    params: &str,
    timeout_s: u64,
) -> (CaseOutcome, Vec<Evidence>) {
    common::check_with(
        name,
        target,
        &nvidia_profile(),
        params,
        Duration::from_secs(timeout_s),
    )
}

// ---- dcgmi diag -j ----------------------------------------------------

/// (file, DCGM version, driver, results, pass, fail, skip)
type Expect = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    usize,
    usize,
    usize,
    usize,
);

const DCGM_FILES: &[Expect] = &[
    ("virtualclient-dcgmi-diag-r2.json", None, None, 11, 11, 0, 0),
    ("virtualclient-dcgmi-diag-r3.json", None, None, 16, 15, 0, 1),
    (
        "glimmer-burnin-gb10-level1.json",
        Some("4.2.3"),
        Some("580.82.09"),
        1,
        0,
        1,
        0,
    ),
    (
        "glimmer-burnin-gb10-level2-partial-skip.json",
        Some("4.2.3"),
        Some("580.82.09"),
        3,
        0,
        1,
        2,
    ),
    (
        "glimmer-burnin-gb10-level2-plugins-gated.json",
        Some("4.5.2"),
        Some("580.82.09"),
        3,
        0,
        1,
        2,
    ),
    (
        "glimmer-burnin-gb10-level2-plugins-allowed.json",
        Some("4.5.2"),
        Some("580.82.09"),
        3,
        2,
        1,
        0,
    ),
];

#[test]
fn every_real_dcgm_output_parses_to_its_counts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dcgm");
    let prov = fixture("dcgm/PROVENANCE.tsv");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    on_disk.sort();
    for n in &on_disk {
        assert!(
            prov.lines().any(|l| l.starts_with(&format!("{n}\t"))),
            "{n}: no PROVENANCE line"
        );
    }
    // Every real output is written down below; the malformed one is refused.
    assert_eq!(on_disk.len(), DCGM_FILES.len() + 1);
    for (file, version, driver, n, pass, fail, skip) in DCGM_FILES {
        let d = dcgm::parse(&fixture(&format!("dcgm/{file}")))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(d.version.as_deref(), *version, "{file}");
        assert_eq!(d.driver_version.as_deref(), *driver, "{file}");
        assert_eq!(d.runtime_error, None, "{file}");
        assert_eq!(d.results.len(), *n, "{file}: {:#?}", d.results);
        let count = |s: Status| d.results.iter().filter(|r| r.status == s).count();
        assert_eq!(count(Status::Pass), *pass, "{file}");
        assert_eq!(count(Status::Fail), *fail, "{file}");
        assert_eq!(count(Status::Skip), *skip, "{file}");
    }
}

#[test]
fn dcgm_2x_layout_entities_and_info() {
    let d = dcgm::parse(&fixture("dcgm/virtualclient-dcgmi-diag-r3.json")).unwrap();
    // Deployment checks name no GPU: they are the system's.
    let deny = &d.results[0];
    assert_eq!(
        (
            deny.category.as_str(),
            deny.test.as_str(),
            deny.entity.as_deref()
        ),
        ("Deployment", "Denylist", None)
    );
    let power = d
        .results
        .iter()
        .find(|r| r.test == "Targeted Power")
        .unwrap();
    assert_eq!(power.category, "Stress");
    assert_eq!(power.entity.as_deref(), Some("GPU 0"));
    assert_eq!(
        power.info,
        vec!["GPU 0 GPU 0 power average:\t70 W".to_string()]
    );
    let eud = d.results.iter().find(|r| r.test == "EUD Test").unwrap();
    assert_eq!(eud.status, Status::Skip);
    let j = dcgm::judge(&d);
    assert_eq!(j.passed, 15);
    assert_eq!(j.skipped, vec!["GPU 0: EUD Test (Hardware)".to_string()]);
    assert!(j.failed.is_empty() && j.warned.is_empty() && j.unknown.is_empty());
}

#[test]
fn dcgm_4x_layout_errors_with_code_and_severity() {
    let d = dcgm::parse(&fixture(
        "dcgm/glimmer-burnin-gb10-level2-plugins-allowed.json",
    ))
    .unwrap();
    let sw = &d.results[0];
    assert_eq!(sw.test, "software");
    assert_eq!(sw.entity.as_deref(), Some("GPU 0"));
    assert_eq!(sw.status, Status::Fail);
    assert_eq!(sw.warnings.len(), 1);
    let w = &sw.warnings[0];
    assert_eq!(
        (w.error_id, w.category, w.severity),
        (Some(29), Some(8), Some(5))
    );
    assert!(w
        .text
        .starts_with("Persistence Mode: Persistence mode for GPU 0 is disabled."));
    let pcie = d.results.iter().find(|r| r.test == "pcie").unwrap();
    assert_eq!(pcie.info.len(), 6);
    assert_eq!(pcie.info[0], "GPU to Host bandwidth:\t\t58.62 GB/s");
    let j = dcgm::judge(&d);
    assert_eq!(j.failed.len(), 1);
    assert!(
        j.failed[0].starts_with("GPU 0: software (Deployment): Persistence Mode:"),
        "{}",
        j.failed[0]
    );
    assert!(
        j.failed[0].contains("[DCGM error 29, severity CONFIG (a setting to change)]"),
        "{}",
        j.failed[0]
    );
    assert_eq!(
        j.passed_tests,
        vec!["memory".to_string(), "pcie".to_string()]
    );
}

#[test]
fn what_is_not_a_dcgm_document_is_refused_with_the_reason() {
    let e = dcgm::parse(&fixture("dcgm/virtualclient-dcgmi-incorrect.json")).unwrap_err();
    assert!(
        e.contains("\"DCGM GPU Diagnostic\" is not an object"),
        "{e}"
    );
    for (text, why) in [
        ("", "no JSON object"),
        ("Error: unable to initialize DCGM\n", "no JSON object"),
        ("{\"diag\": {}}", "neither"),
        (
            "{ \"DCGM Diagnostic\" : { \"version\" : \"4.2.3\" } }",
            "neither test_categories nor runtime_error",
        ),
    ] {
        let e = dcgm::parse(text).unwrap_err();
        assert!(e.contains(why), "{text:?}: {e}");
    }
}

/// No real output of a run DCGM refused was found; this one is in the
/// layout of `Diag::HelperDisplayFailureMessage` (DCGM 4.6.0 source), after
/// the line dcgmi's `Command.cpp` prints when no host engine answers.
#[test]
fn a_run_dcgm_could_not_start_is_its_runtime_error() {
    let text = "Error: unable to establish a connection to the specified host: localhost\n{\n\t\"DCGM Diagnostic\" : \n\t{\n\t\t\"runtime_error\" : \"Error: Unable to start an embedded host engine. Host engine connection invalid/disconnected.\",\n\t\t\"version\" : \"4.6.0\"\n\t}\n}\n";
    let d = dcgm::parse(text).unwrap();
    assert_eq!(d.version.as_deref(), Some("4.6.0"));
    assert!(d.runtime_error.unwrap().contains("embedded host engine"));
    assert!(d.results.is_empty());
    let m = Scripted::new("gpu-sut")
        .command("command -v dcgmi", 0, "/usr/bin/dcgmi\n", "")
        .command("dcgmi diag -r 1 -j", 255, text, "");
    let (o, _) = run("gpu-dcgm-diag", &m, "", 60);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains(
            "DCGM could not run the diagnostic: Error: Unable to start an embedded host engine"
        ),
        "{}",
        o.reason
    );
}

fn dcgmi(json: &str, exit: i32, level: u64) -> Scripted {
    Scripted::new("gpu-sut")
        .command("command -v dcgmi", 0, "/usr/bin/dcgmi\n", "")
        .command(&format!("dcgmi diag -r {level} -j"), exit, json, "")
}

/// The real GB10 level-1 run: DCGM fails its software test (persistence
/// mode off) and dcgmi exits 226 (the DCGM 4 status of a failed test, as
/// the capture's notes say). The case fails naming GPU, test and message.
#[test]
fn dcgm_diag_fails_on_the_real_gb10_run_naming_gpu_test_and_message() {
    let m = dcgmi(&fixture("dcgm/glimmer-burnin-gb10-level1.json"), 226, 1);
    let (o, ev) = run("gpu-dcgm-diag", &m, "", 60);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(!o.warning);
    assert!(o.reason.starts_with("DCGM 4.2.3, driver 580.82.09, level 1: 1 failed: GPU 0: software (Deployment): Persistence Mode: Persistence mode for GPU 0 is disabled."), "{}", o.reason);
    assert!(
        o.reason.contains("[DCGM error 29, severity CONFIG"),
        "{}",
        o.reason
    );
    assert_eq!(
        commands(&ev),
        vec![
            "command -v dcgmi".to_string(),
            "dcgmi diag -r 1 -j".to_string()
        ]
    );
    // The raw JSON is the evidence.
    assert!(ev
        .iter()
        .any(|e| matches!(e, Evidence::Command { cmd, .. } if cmd == "dcgmi diag -r 1 -j")));
    // DCGM 4.5.2, level 2 with the plugins allowed: the same failure, and
    // the memory and PCIe passes reported beside it are not a pass.
    let m = dcgmi(
        &fixture("dcgm/glimmer-burnin-gb10-level2-plugins-allowed.json"),
        226,
        2,
    );
    let (o, _) = run("gpu-dcgm-diag", &m, "level = 2", 60);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .starts_with("DCGM 4.5.2, driver 580.82.09, level 2: 1 failed: GPU 0: software"),
        "{}",
        o.reason
    );
}

#[test]
fn dcgm_diag_passes_on_the_real_level_3_run() {
    let m = dcgmi(&fixture("dcgm/virtualclient-dcgmi-diag-r3.json"), 0, 3);
    let (o, ev) = run("gpu-dcgm-diag", &m, "level = 3", 60);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("level 3: 15 results passed"),
        "{}",
        o.reason
    );
    assert!(o.reason.contains("Targeted Stress"), "{}", o.reason);
    assert!(
        o.reason
            .contains("skipped by DCGM: GPU 0: EUD Test (Hardware)"),
        "{}",
        o.reason
    );
    assert!(commands(&ev).contains(&"dcgmi diag -r 3 -j".to_string()));
    let m = dcgmi(&fixture("dcgm/virtualclient-dcgmi-diag-r2.json"), 0, 1);
    assert_eq!(run("gpu-dcgm-diag", &m, "", 60).0.verdict, Verdict::Pass);
}

/// No real output with a Warn was found: the real GB10 4.5.2 run with its
/// software status `Fail` changed to `Warn` (result and summary, the only
/// edits) is a warning, not a failure, naming DCGM's message.
#[test]
fn a_dcgm_warning_is_a_warning() {
    let warned = fixture("dcgm/glimmer-burnin-gb10-level2-plugins-allowed.json")
        .replace("\"status\" : \"Fail\"", "\"status\" : \"Warn\"");
    let m = dcgmi(&warned, 0, 1);
    let (o, _) = run("gpu-dcgm-diag", &m, "", 60);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.warning, "a DCGM warning must not block");
    assert!(
        o.reason
            .contains("warnings (not failures): GPU 0: software (Deployment): Persistence Mode"),
        "{}",
        o.reason
    );
}

/// DCGM skipped every hardware test and failed the configuration one: the
/// failure stands; with the failure gone (the status `Fail` set to `Pass`,
/// the only edit) nothing was tested, which is a skip, not a pass.
#[test]
fn a_run_that_tested_nothing_is_no_pass() {
    let gated = fixture("dcgm/glimmer-burnin-gb10-level2-plugins-gated.json");
    let (o, _) = run("gpu-dcgm-diag", &dcgmi(&gated, 226, 2), "level = 2", 60);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("skipped by DCGM: GPU 0: memory (Hardware), GPU 0: pcie (Integration)"),
        "{}",
        o.reason
    );
    // Only the deployment check passing: one pass, the hardware skipped.
    let clean = gated.replace("\"status\" : \"Fail\"", "\"status\" : \"Pass\"");
    let (o, _) = run("gpu-dcgm-diag", &dcgmi(&clean, 0, 2), "level = 2", 60);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(
        o.reason.contains("1 results passed (software)"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("skipped by DCGM: GPU 0: memory (Hardware)"),
        "{}",
        o.reason
    );
    let all_skip = gated.replace("\"status\" : \"Fail\"", "\"status\" : \"Skip\"");
    let (o, _) = run("gpu-dcgm-diag", &dcgmi(&all_skip, 0, 2), "level = 2", 60);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("DCGM passed no test here (3 results)"),
        "{}",
        o.reason
    );
}

#[test]
fn dcgm_diag_skips_without_dcgmi_or_host_engine() {
    let (o, ev) = run("gpu-dcgm-diag", &Scripted::new("gpu-sut"), "", 60);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason.contains("dcgmi (NVIDIA DCGM) is not installed"),
        "{}",
        o.reason
    );
    assert_eq!(commands(&ev), vec!["command -v dcgmi".to_string()]);
    // dcgmi present but printing no document: its words, as a skip.
    let m = dcgmi("Error: unable to initialize DCGM\n", 255, 1);
    let (o, _) = run("gpu-dcgm-diag", &m, "", 60);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason
            .contains("(exit 255) could not run the diagnostic: Error: unable to initialize DCGM"),
        "{}",
        o.reason
    );
    // Exit 0 and no document: the target answered, not usably.
    let m = dcgmi("Successfully ran diagnostic for group.\n", 0, 1);
    let e = common::try_check_with(
        "gpu-dcgm-diag",
        &m,
        &nvidia_profile(),
        "",
        Duration::from_secs(60),
    )
    .unwrap_err();
    assert!(e.to_string().contains("printed what it should not"), "{e}");
    // A level DCGM does not have is the plan's mistake.
    let e = common::try_check_with(
        "gpu-dcgm-diag",
        &dcgmi("", 0, 7),
        &nvidia_profile(),
        "level = 7",
        Duration::from_secs(60),
    );
    assert!(e.is_err());
}

// ---- gpu_burn ---------------------------------------------------------

#[test]
fn gpu_burn_outputs_parse_per_gpu() {
    let b = gpu_burn::parse(&fixture("gpuburn/superbenchmark-gpu_burn-8xa100.log"));
    assert_eq!(b.tested, Some(8));
    assert_eq!(b.gpus.len(), 8);
    assert!(b.errors.is_empty(), "{:?}", b.errors);
    let g0 = &b.gpus[0];
    assert_eq!(g0.name.as_deref(), Some("NVIDIA A100-SXM4-80GB"));
    assert_eq!(g0.iterations, Some(6783));
    assert_eq!(g0.gflops, Some(16942));
    assert_eq!((g0.temp_first_c, g0.temp_last_c), (Some(38), Some(62)));
    assert_eq!(b.gpus[7].iterations, Some(4522));
    for g in &b.gpus {
        assert_eq!(g.faulty, Some(false));
        assert!(!g.warned && !g.died && g.max_errors == 0);
        assert_eq!(gpu_burn::gpu_problem(g), None, "GPU {}", g.index);
    }
    // The \r-separated progress reports, each counted.
    assert_eq!(b.progress_lines, 196);

    let f = gpu_burn::parse(&fixture("gpuburn/wilicc-issue12-16gpu-faulty.txt"));
    assert_eq!(f.tested, Some(16));
    assert_eq!(f.gpus.len(), 16);
    assert!(f.gpus.iter().all(|g| g.faulty == Some(true)));
    // Errors reported in the last progress line: GPUs 1-4, 9, 11, 14.
    let warned: Vec<usize> = f
        .gpus
        .iter()
        .filter(|g| g.warned)
        .map(|g| g.index)
        .collect();
    assert_eq!(warned, vec![1, 2, 3, 4, 9, 11, 14]);
    assert_eq!(f.gpus[1].max_errors, 524_288_000);
    assert_eq!(f.gpus[15].temp_last_c, Some(52));

    let a2000 = gpu_burn::parse(&fixture("gpuburn/wilicc-issue124-a2000-no-progress.txt"));
    assert_eq!(a2000.tested, Some(1));
    assert_eq!(a2000.gpus[0].faulty, Some(false));
    assert_eq!(a2000.gpus[0].iterations, None);
    assert!(gpu_burn::gpu_problem(&a2000.gpus[0])
        .unwrap()
        .contains("never ran"));

    let a500 = gpu_burn::parse(&fixture("gpuburn/wilicc-issue124-a500-no-summary.txt"));
    assert_eq!(a500.tested, None);
    assert_eq!(a500.progress_lines, 3);
    assert_eq!(a500.gpus[0].iterations, Some(30));
    assert_eq!(a500.gpus[0].temp_max_c, Some(53));
}

/// A machine that is one Scripted target until the burn command runs and
/// another after it (the GPUs warm, the kernel log grown).
struct Burning {
    before: Scripted,
    after: Scripted,
    fired: AtomicBool,
}

impl Burning {
    fn now(&self) -> &Scripted {
        if self.fired.load(Ordering::SeqCst) {
            &self.after
        } else {
            &self.before
        }
    }
}

impl Target for Burning {
    fn name(&self) -> &str {
        "gpu-sut"
    }
    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        let out = self.now().exec(command, timeout);
        if command.starts_with("cd /opt/gpu-burn && ") {
            self.fired.store(true, Ordering::SeqCst);
        }
        out
    }
    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        self.now().read_file(path)
    }
    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        self.now().list_dir(path)
    }
    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        self.now().read_link(path)
    }
    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError> {
        self.now().put_file(path, data, mode)
    }
}

const H100: &str = "nvidia-smi-q/gpud-nvidia-smi-query.535.161.08.out.0.valid.txt";
const BURN: &str = "cd /opt/gpu-burn && /opt/gpu-burn/gpu_burn 60 2>&1";

/// A machine with gpu_burn in /opt/gpu-burn and nvidia-smi; the burn
/// prints `burn`, nvidia-smi -q `smi` (before) and `smi_after`, the kernel
/// log gains `new_log` during the burn.
fn burner(burn: &str, smi: &str, smi_after: &str, new_log: &str) -> Burning {
    let base = |smi: &str| {
        Scripted::new("gpu-sut")
            .command("command -v gpu_burn", 0, "/opt/gpu-burn/gpu_burn\n", "")
            .command("command -v nvidia-smi", 0, "/usr/bin/nvidia-smi\n", "")
            .command("nvidia-smi -q", 0, smi, "")
            .command("dmesg >/dev/null && dmesg | wc -l", 0, "1234\n", "")
            .command(BURN, 0, burn, "")
    };
    Burning {
        before: base(smi),
        after: base(smi_after).command("dmesg >/dev/null && dmesg | tail -n +1235", 0, new_log, ""),
        fired: AtomicBool::new(false),
    }
}

#[test]
fn burn_is_skipped_unless_the_plan_allows_it() {
    let m = burner("", "", "", "");
    let (o, ev) = run("gpu-burn", &m, "", 300);
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason
            .contains("the plan does not allow a burn (set param allow_burn = true"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("/opt/gpu-burn/gpu_burn is installed"),
        "{}",
        o.reason
    );
    assert_eq!(commands(&ev), vec!["command -v gpu_burn".to_string()]);
    // Allowed, but no burn tool: both names probed, a skip saying where
    // DCGM's stress tests are.
    let (o, ev) = run(
        "gpu-burn",
        &Scripted::new("gpu-sut"),
        "allow_burn = true",
        300,
    );
    assert_eq!(o.verdict, Verdict::Skip, "{}", o.reason);
    assert!(
        o.reason
            .contains("gpu_burn (github.com/wilicc/gpu-burn) is not installed"),
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains("gpu.dcgm-diag with level = 2 or 3"),
        "{}",
        o.reason
    );
    assert_eq!(
        commands(&ev),
        vec![
            "command -v gpu_burn".to_string(),
            "command -v gpu-burn".to_string()
        ]
    );
    // A burn longer than the case may run is the plan's mistake.
    let e = common::try_check_with(
        "gpu-burn",
        &burner("", "", "", ""),
        &nvidia_profile(),
        "allow_burn = true\nduration_s = 600",
        Duration::from_secs(300),
    );
    assert!(e
        .unwrap_err()
        .to_string()
        .contains("must exceed duration_s"));
}

#[test]
fn burn_passes_on_the_real_8xa100_run() {
    let smi = accel_fixture(H100);
    let m = burner(
        &fixture("gpuburn/superbenchmark-gpu_burn-8xa100.log"),
        &smi,
        &smi,
        "",
    );
    let (o, ev) = run("gpu-burn", &m, "allow_burn = true", 300);
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(o.reason.starts_with("60 s burn with /opt/gpu-burn/gpu_burn: GPU 0 (NVIDIA A100-SXM4-80GB): 6783 multiplications, 16942 Gflop/s, no errors, 38→62 °C"), "{}", o.reason);
    assert_eq!(o.reason.matches("no errors").count(), 8, "{}", o.reason);
    // nvidia-smi before and after: temperatures and SM clocks reported.
    assert!(
        o.reason
            .contains("0000:19:00.0: 29 °C before, 29 °C after, SM 86 of 1980 MHz"),
        "{}",
        o.reason
    );
    let cmds = commands(&ev);
    assert_eq!(
        cmds,
        vec![
            "command -v gpu_burn",
            "command -v nvidia-smi",
            "nvidia-smi -q",
            "dmesg >/dev/null && dmesg | wc -l",
            BURN,
            "command -v nvidia-smi",
            "nvidia-smi -q",
            "dmesg >/dev/null && dmesg | tail -n +1235",
        ]
    );
}

#[test]
fn burn_fails_on_faulty_gpus_and_on_gpus_that_never_burned() {
    let smi = accel_fixture(H100);
    let m = burner(
        &fixture("gpuburn/wilicc-issue12-16gpu-faulty.txt"),
        &smi,
        &smi,
        "",
    );
    let (o, _) = run("gpu-burn", &m, "allow_burn = true", 300);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert_eq!(
        o.reason.matches(": FAULTY: wrong results").count(),
        16,
        "{}",
        o.reason
    );
    assert!(
        o.reason.contains(
            "GPU 1: FAULTY: wrong results in the comparison (up to 524288000 errors in one report)"
        ),
        "{}",
        o.reason
    );
    // gpu_burn said OK, but no progress report ever named the GPU.
    let m = burner(
        &fixture("gpuburn/wilicc-issue124-a2000-no-progress.txt"),
        &smi,
        &smi,
        "",
    );
    let (o, _) = run("gpu-burn", &m, "allow_burn = true", 300);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("GPU 0 (NVIDIA RTX A2000 Embedded GPU): no progress report named it"),
        "{}",
        o.reason
    );
    // A run that did not get to its summary.
    let m = burner(
        &fixture("gpuburn/wilicc-issue124-a500-no-summary.txt"),
        &smi,
        &smi,
        "",
    );
    let (o, _) = run("gpu-burn", &m, "allow_burn = true", 300);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("no `Tested N GPUs` summary: it did not finish (3 progress reports)"),
        "{}",
        o.reason
    );
}

/// The real 8×A100 pass, with the real GSP-timeout kernel log (Xid 119)
/// appearing during the burn: the tool's OK does not save it.
#[test]
fn burn_fails_on_an_xid_during_the_burn() {
    let smi = accel_fixture(H100);
    let log = fixture("kernlog/gpud-dmesg-with-xid-119.log");
    let m = burner(
        &fixture("gpuburn/superbenchmark-gpu_burn-8xa100.log"),
        &smi,
        &smi,
        &log,
    );
    let (o, _) = run("gpu-burn", &m, "allow_burn = true", 300);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(
        o.reason
            .contains("Xid 119 during the burn (GSP RPC Timeout)"),
        "{}",
        o.reason
    );
}

/// After the burn the first H100 slows down for heat (the real log with
/// its first `SW Thermal Slowdown` set to Active, the only edit): a
/// warning, the burn itself passed.
#[test]
fn a_thermal_slowdown_after_the_burn_is_a_warning() {
    let smi = accel_fixture(H100);
    let hot = smi.replacen(
        "SW Thermal Slowdown               : Not Active",
        "SW Thermal Slowdown               : Active",
        1,
    );
    assert_ne!(hot, smi);
    let m = burner(
        &fixture("gpuburn/superbenchmark-gpu_burn-8xa100.log"),
        &smi,
        &hot,
        "",
    );
    let (o, _) = run("gpu-burn", &m, "allow_burn = true", 300);
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.warning, "{}", o.reason);
    assert!(
        o.reason
            .contains("passed, but 0000:19:00.0: slowing down for heat after the burn (29 °C)"),
        "{}",
        o.reason
    );
}
