//! What every check test does: run one check on a target and insist that
//! its verdict rests on evidence (only a selection skip, decided before the
//! machine is touched, may come without).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::Target;
use certlab_reports::Evidence;
use certlab_suites::{checks, CaseCtx, CaseError, CaseOutcome, MemorySink};

/// Runs check `name` on `target` for `profile` with the case parameters
/// `params` (TOML text); `Err` is the infrastructure error it returned.
pub fn try_check_with(
    name: &str,
    target: &dyn Target,
    profile: &HardwareProfile,
    params: &str,
    timeout: Duration,
) -> Result<(CaseOutcome, Vec<Evidence>), CaseError> {
    try_check_in(
        name,
        target,
        &Inventory::default(),
        profile,
        params,
        timeout,
    )
}

/// [`try_check_with`] with discovery's inventory of the machine.
pub fn try_check_in(
    name: &str,
    target: &dyn Target,
    inv: &Inventory,
    profile: &HardwareProfile,
    params: &str,
    timeout: Duration,
) -> Result<(CaseOutcome, Vec<Evidence>), CaseError> {
    let check = checks::lookup(name).unwrap_or_else(|| panic!("no check {name}"));
    let params: toml::Table =
        toml::from_str(params).unwrap_or_else(|e| panic!("{name}: parameters: {e}"));
    let sink = MemorySink::default();
    let ctx = CaseCtx::new(target, profile, inv, &params, &sink, timeout);
    // As the runner does: the check's declared software needs first.
    let requires = [check.requires()];
    let out = ctx.params_checked(certlab_suites::run_checked(check, &ctx, &requires))?;
    let evidence = ctx.take_evidence();
    assert!(
        !evidence.is_empty(),
        "{name}: {} without evidence: {}",
        out.verdict,
        out.reason
    );
    Ok((out, evidence))
}

/// [`try_check_with`] for a check that must reach a verdict.
pub fn check_with(
    name: &str,
    target: &dyn Target,
    profile: &HardwareProfile,
    params: &str,
    timeout: Duration,
) -> (CaseOutcome, Vec<Evidence>) {
    try_check_with(name, target, profile, params, timeout)
        .unwrap_or_else(|e| panic!("{name}: infrastructure error {e}"))
}

/// A check with no parameters on an unidentified machine, 30 s.
pub fn check(name: &str, target: &dyn Target) -> (CaseOutcome, Vec<Evidence>) {
    check_with(
        name,
        target,
        &HardwareProfile::default(),
        "",
        Duration::from_secs(30),
    )
}

/// The commands a check ran, in order.
pub fn commands(evidence: &[Evidence]) -> Vec<String> {
    evidence
        .iter()
        .filter_map(|e| match e {
            Evidence::Command { cmd, .. } => Some(cmd.clone()),
            _ => None,
        })
        .collect()
}

/// A fixture tree of `tests/fixtures/aer` (see its PROVENANCE.tsv).
pub fn aer_fixture(rel: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aer")
        .join(rel);
    assert!(
        p.is_dir(),
        "{}: missing (copied from /work/shared/data, see tests/fixtures/aer/PROVENANCE.tsv)",
        p.display()
    );
    p
}

/// A `bus/pci/devices` directory whose entries link to every function of
/// the fixture tree that has AER files, as in sysfs.
pub fn aer_bus_tree(devices: &std::path::Path) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let bus = tmp.path().join("bus/pci/devices");
    std::fs::create_dir_all(&bus).unwrap();
    let mut stack = vec![devices.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if !p.is_dir() {
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("pci") {
                std::os::unix::fs::symlink(&p, bus.join(&name)).unwrap();
            }
            stack.push(p);
        }
    }
    tmp
}

/// The AER walk's output over fixture tree `rel` of `tests/fixtures/aer`,
/// run by this machine's `sh`.
pub fn aer_walk_output(rel: &str) -> String {
    let tree = aer_bus_tree(&aer_fixture(rel));
    let devices = tree.path().join("bus/pci/devices");
    let o = certlab_lab::Local::default()
        .exec(
            &certlab_suites::checks::ras::aer_walk_at(devices.to_str().unwrap()),
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(o.success(), "{}", o.stderr_str());
    o.stdout_str()
}
