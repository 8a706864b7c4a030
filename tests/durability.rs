//! The durability script (`scripts/durability`) on a small simulated lab:
//! the daemon is SIGKILLed at random instants and restarted; afterwards
//! every job finished, every run has exactly one result per case, nothing
//! is left running, and defective machines failed exactly their case. The
//! full run (20 SIGKILLs, 60 jobs) is the script's default; its figures are
//! in BENCHMARKS.md.

use std::process::Command;

#[test]
fn the_orchestrator_survives_sigkills_at_random_instants() {
    let o = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/durability"))
        .args([
            "--kills",
            "4",
            "--machines",
            "4",
            "--jobs",
            "8",
            "--defective",
            "1",
            "--bin",
            env!("CARGO_BIN_EXE_certlab"),
        ])
        .env_remove("CERTLAB_DB")
        .output()
        .expect("run scripts/durability");
    let err = String::from_utf8_lossy(&o.stderr);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success()
            && out.contains("durability: OK — 4 SIGKILLs survived (")
            && out.contains("8 jobs finished"),
        "exit {:?}\n{out}\n{err}",
        o.status.code()
    );
}
