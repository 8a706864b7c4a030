//! The simulated lab under the real `server-basic` plan: every healthy
//! profile passes every case (skips allowed), every defect fails exactly
//! its case on every profile and nothing else, and heavy faults never turn
//! into a product failure.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use certlab_harness::access::LabAccess;
use certlab_harness::daemon::MachineAccess;
use certlab_harness::{certify, RunSpec, Store};
use certlab_lab::sim::generate::{lab_toml, Options};
use certlab_lab::sim::{Defect, FaultLevel, SimMachine, SimSpec, PROFILES};
use certlab_lab::Lab;
use certlab_reports::{RunRecord, Verdict};
use certlab_suites::Plan;
use ed25519_dalek::SigningKey;

async fn run(store: &Store, dir: &std::path::Path, name: &str, spec: SimSpec) -> Result<RunRecord> {
    let machine = SimMachine::new(name, spec)?;
    let run_id = format!("run-{name}");
    let spec = RunSpec {
        run_id: run_id.clone(),
        plan: Plan::load("server-basic")?,
        target: Arc::new(machine.target()),
        out_dir: dir.join(&run_id),
        signer: SigningKey::from_bytes(&[9u8; 32]),
        tool_version: "test".into(),
        case_retries: None,
        sut: None,
    };
    let (record, _) = certify(spec, store, &mut |_| {}).await?;
    Ok(record)
}

fn verdicts(r: &RunRecord) -> BTreeMap<String, (Verdict, String)> {
    r.cases
        .iter()
        .map(|c| (c.id.clone(), (c.verdict, c.reason.clone())))
        .collect()
}

fn quiet(profile: &str) -> SimSpec {
    SimSpec {
        time_scale: 0.0,
        ..SimSpec::new(profile)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_healthy_profile_passes_server_basic() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    for def in PROFILES {
        let r = run(&store, dir.path(), def.name, quiet(def.name))
            .await
            .with_context(|| def.name)?;
        let v = verdicts(&r);
        let bad: Vec<_> = v
            .iter()
            .filter(|(_, (verdict, _))| !matches!(verdict, Verdict::Pass | Verdict::Skip))
            .collect();
        ensure!(bad.is_empty(), "{}: {bad:#?}", def.name);
        let passed = v.values().filter(|(x, _)| *x == Verdict::Pass).count();
        // The cases every profile has what it takes to pass.
        for case in [
            "cpu.identity",
            "cpu.online",
            "mem.size",
            "mem.pattern",
            "storage.readable",
            "storage.seqread",
            "pci.drivers",
            "net.nics",
            "kernel.taint",
            "kernel.log",
            "time.clock",
        ] {
            ensure!(
                v.get(case).is_some_and(|(x, _)| *x == Verdict::Pass),
                "{}: {case} did not pass: {:?}",
                def.name,
                v.get(case)
            );
        }
        ensure!(passed >= 11, "{}: only {passed} passed", def.name);
        ensure!(
            r.host.hostname == def.name,
            "{}: hostname {}",
            def.name,
            r.host.hostname
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_defect_fails_exactly_its_case_on_every_profile() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    for def in PROFILES {
        for defect in Defect::ALL {
            let name = format!("{}-{}", def.name, defect);
            let spec = SimSpec {
                defect: Some(defect),
                ..quiet(def.name)
            };
            let r = run(&store, dir.path(), &name, spec)
                .await
                .with_context(|| name.clone())?;
            let v = verdicts(&r);
            let failed: Vec<&String> = v
                .iter()
                .filter(|(_, (x, _))| *x == Verdict::Fail)
                .map(|(id, _)| id)
                .collect();
            ensure!(
                failed == vec![defect.fails_case()],
                "{name}: expected only {} to fail, got {failed:?}: {v:#?}",
                defect.fails_case()
            );
            let others: Vec<_> = v
                .iter()
                .filter(|(_, (x, _))| matches!(x, Verdict::Error | Verdict::Crash))
                .collect();
            ensure!(others.is_empty(), "{name}: {others:#?}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_faults_are_never_a_product_failure() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let mut errors = 0;
    let mut infra = 0;
    for seed in 0..24u64 {
        let def = &PROFILES[seed as usize % PROFILES.len()];
        let spec = SimSpec {
            faults: FaultLevel::Heavy,
            seed,
            ..quiet(def.name)
        };
        let name = format!("heavy-{seed}");
        match run(&store, dir.path(), &name, spec).await {
            // Discovery itself met the fault: the run could not be carried out.
            Err(_) => infra += 1,
            Ok(r) => {
                for c in &r.cases {
                    ensure!(
                        c.verdict != Verdict::Fail,
                        "{name} ({}): {} failed under faults: {}",
                        def.name,
                        c.id,
                        c.reason
                    );
                    if c.verdict == Verdict::Error {
                        errors += 1;
                    }
                }
            }
        }
    }
    ensure!(
        errors + infra > 0,
        "24 heavy-fault runs met no fault at all"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_access_reaches_sim_machines_and_brings_a_crashed_one_back() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let text = lab_toml(&Options {
        machines: 7,
        seed: 2,
        faults: FaultLevel::Heavy,
        defective: 0,
        time_scale: 0.0002,
    });
    let lab = Lab::parse(&text, "sim.toml")?;
    let access = LabAccess::new(lab, &store);
    let facts = access.facts();
    ensure!(facts.len() == 7);
    ensure!(
        facts[0].family.as_deref() == Some("kunpeng"),
        "{:?}",
        facts[0]
    );
    for f in &facts {
        access
            .health_check(&f.name)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    // Crash sim-0002 by running commands until its fault stream says so.
    let t = access
        .target("sim-0002")
        .await
        .map_err(anyhow::Error::msg)?;
    let m = access.sims().get("sim-0002").context("sim-0002")?.clone();
    for _ in 0..50_000 {
        let _ = t.exec("uname -r", std::time::Duration::from_secs(1));
        if m.is_crashed() {
            break;
        }
    }
    ensure!(
        m.is_crashed(),
        "no crash in 50000 commands under heavy faults"
    );
    ensure!(t
        .exec("uname -r", std::time::Duration::from_secs(1))
        .is_err());
    access
        .health_check("sim-0002")
        .await
        .map_err(anyhow::Error::msg)?;
    ensure!(!m.is_crashed());
    // It answers again (a few tries: heavy faults still drop connections).
    let answers = (0..20).any(|_| {
        t.exec("uname -r", std::time::Duration::from_secs(1))
            .is_ok()
    });
    ensure!(answers, "sim-0002 does not answer after its health check");
    Ok(())
}
