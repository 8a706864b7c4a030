//! `certlab lab sim generate` and `certify --machine` on a simulated lab,
//! through the binary: the generated file loads, states every machine's
//! profile, faults and defect, and each machine's verdicts are the ones it
//! states.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use certlab_lab::Lab;

fn certlab(args: &[&str], data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .env("CERTLAB_DATA_DIR", data)
        .output()
        .unwrap()
}

fn certify(dir: &Path, lab: &Path, machine: &str) -> (i32, serde_json::Value, String) {
    let db = format!("sqlite://{}", dir.join("lab.db").display());
    let out = dir.join(format!("out-{machine}"));
    let o = certlab(
        &[
            "certify",
            "--machine",
            machine,
            "--lab",
            lab.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--db",
            &db,
            "--format",
            "json",
        ],
        dir,
    );
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let v = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("certify {machine}: no JSON ({e}): {stderr}"));
    (o.status.code().unwrap(), v, stderr)
}

fn failed(record: &serde_json::Value) -> Vec<String> {
    record["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] == "fail" || c["verdict"] == "error")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn generated_lab_loads_and_certifies_as_it_states() {
    let dir = tempfile::tempdir().unwrap();
    let o = certlab(
        &[
            "lab",
            "sim",
            "generate",
            "--machines",
            "14",
            "--seed",
            "1",
            "--defective",
            "4",
            "--time-scale",
            "0.001",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lab_path = dir.path().join("lab.toml");
    std::fs::write(&lab_path, &o.stdout).unwrap();
    let lab = Lab::load(&lab_path).unwrap();
    assert_eq!(lab.machines.len(), 14);
    assert!(lab
        .machines
        .iter()
        .all(|m| m.pool.as_deref() == Some("sim")));

    let v = certlab(
        &["lab", "validate", "--lab", lab_path.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );

    // sim-0003, and the first defective machine: each as the file says.
    let healthy = lab.machine("sim-0003").unwrap();
    assert!(healthy.sim.as_ref().unwrap().defect.is_none());
    let (code, record, stderr) = certify(dir.path(), &lab_path, "sim-0003");
    assert_eq!(code, 0, "{stderr}\n{record:#}");
    assert!(failed(&record).is_empty(), "{record:#}");
    assert_eq!(record["host"]["hostname"], "sim-0003");

    let sick = lab
        .machines
        .iter()
        .find(|m| m.sim.as_ref().unwrap().defect.is_some())
        .unwrap();
    let defect = sick.sim.as_ref().unwrap().defect.unwrap();
    let (code, record, stderr) = certify(dir.path(), &lab_path, &sick.name);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        failed(&record),
        vec![defect.fails_case().to_string()],
        "{record:#}"
    );
}

#[test]
fn profiles_lists_each_machine_kind_with_its_sources() {
    let dir = tempfile::tempdir().unwrap();
    let o = certlab(&["lab", "sim", "profiles", "--format", "json"], dir.path());
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let families: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["family"].as_str().unwrap())
        .collect();
    for f in [
        "kunpeng", "phytium", "hygon", "loongson", "riscv", "intel", "amd",
    ] {
        assert!(families.contains(&f), "{families:?}");
    }
    for p in v.as_array().unwrap() {
        assert!(!p["sources"].as_array().unwrap().is_empty(), "{p}");
    }
}

#[test]
fn generate_refuses_more_defective_machines_than_machines() {
    let dir = tempfile::tempdir().unwrap();
    let o = certlab(
        &[
            "lab",
            "sim",
            "generate",
            "--machines",
            "3",
            "--defective",
            "5",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--defective 5"));
}

#[test]
fn an_unknown_profile_is_bad_input_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.toml");
    std::fs::write(
        &lab,
        "[[machine]]\nname = \"s1\"\narch = \"x86_64\"\n\n[machine.sim]\nprofile = \"pdp-11\"\n",
    )
    .unwrap();
    let o = certlab(
        &["lab", "validate", "--lab", lab.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(text.contains(":6:") && text.contains("pdp-11"), "{text}");
    assert!(text.contains("kunpeng-920"), "{text}");
}

/// The daemon this test started: killed when the test ends, also when it fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the daemon on a generated lab, one job per machine, and returns
/// each machine's (job state, failed-or-errored cases, failed cases).
fn daemon_lab(args: &[&str]) -> Vec<(String, String, Vec<String>, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let mut gen = vec!["lab", "sim", "generate"];
    gen.extend_from_slice(args);
    let o = certlab(&gen, data);
    assert_eq!(o.status.code(), Some(0));
    let lab_path = data.join("lab.toml");
    std::fs::write(&lab_path, &o.stdout).unwrap();
    let lab = Lab::load(&lab_path).unwrap();
    let db = format!("sqlite://{}", data.join("lab.db").display());
    let daemon = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args([
            "lab",
            "daemon",
            "--lab",
            lab_path.to_str().unwrap(),
            "--db",
            &db,
        ])
        .env("CERTLAB_DATA_DIR", data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let daemon = KillOnDrop(daemon);
    for m in &lab.machines {
        let o = certlab(
            &[
                "job",
                "submit",
                "--plan",
                "server-basic",
                "--machine",
                &m.name,
                "--db",
                &db,
            ],
            data,
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let w = certlab(
        &["job", "wait", "--all", "--timeout", "240", "--db", &db],
        data,
    );
    let list = certlab(&["job", "list", "--db", &db, "--format", "json"], data);
    drop(daemon);
    assert_ne!(
        w.status.code(),
        None,
        "job wait: {}",
        String::from_utf8_lossy(&w.stderr)
    );
    let jobs: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let mut out = Vec::new();
    for j in jobs.as_array().unwrap() {
        let machine = j["machine"].as_str().unwrap_or("").to_string();
        let state = j["state"].as_str().unwrap().to_string();
        let (mut bad, mut failed) = (Vec::new(), Vec::new());
        if let Some(run) = j["run_id"].as_str().filter(|_| state == "finished") {
            let o = certlab(
                &["runs", "show", run, "--db", &db, "--format", "json"],
                data,
            );
            let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            for c in r["cases"].as_array().unwrap() {
                let id = c["id"].as_str().unwrap().to_string();
                match c["verdict"].as_str().unwrap() {
                    "fail" => {
                        failed.push(id.clone());
                        bad.push(id);
                    }
                    "pass" | "skip" => {}
                    _ => bad.push(id),
                }
            }
        }
        out.push((machine, state, bad, failed));
    }
    assert_eq!(out.len(), lab.machines.len());
    out
}

fn stated_defect(args: &[&str], machine: &str) -> Option<&'static str> {
    let dir = tempfile::tempdir().unwrap();
    let mut gen = vec!["lab", "sim", "generate"];
    gen.extend_from_slice(args);
    let o = certlab(&gen, dir.path());
    let lab = Lab::parse(&String::from_utf8_lossy(&o.stdout), "lab.toml").unwrap();
    lab.machine(machine)
        .unwrap()
        .sim
        .as_ref()
        .unwrap()
        .defect
        .map(|d| d.fails_case())
}

#[test]
fn the_daemon_on_a_sim_lab_gives_the_verdicts_the_file_states() {
    let args = [
        "--machines",
        "14",
        "--seed",
        "4",
        "--defective",
        "6",
        "--time-scale",
        "0.001",
    ];
    for (machine, state, bad, failed) in daemon_lab(&args) {
        assert_eq!(state, "finished", "{machine}");
        match stated_defect(&args, &machine) {
            None => assert!(bad.is_empty(), "{machine}: {bad:?}"),
            Some(case) => assert_eq!(bad, vec![case.to_string()], "{machine}"),
        }
        let _ = failed;
    }
}

#[test]
fn under_heavy_faults_the_daemon_never_turns_a_fault_into_a_product_failure() {
    let args = [
        "--machines",
        "14",
        "--seed",
        "9",
        "--faults",
        "heavy",
        "--defective",
        "6",
        "--time-scale",
        "0.001",
    ];
    let (mut finished, mut faulted) = (0, 0);
    for (machine, state, bad, failed) in daemon_lab(&args) {
        if state != "finished" {
            faulted += 1;
            continue;
        }
        finished += 1;
        if bad.len() > failed.len() {
            faulted += 1;
        }
        match stated_defect(&args, &machine) {
            None => assert!(failed.is_empty(), "{machine}: {failed:?}"),
            Some(case) => assert!(
                failed.iter().all(|f| f == case),
                "{machine}: {failed:?}, its defect concerns {case}"
            ),
        }
    }
    assert!(finished > 0, "no job finished");
    eprintln!("heavy faults: {finished} jobs finished, {faulted} met an infrastructure fault");
    assert!(faulted > 0, "heavy faults never showed");
}
