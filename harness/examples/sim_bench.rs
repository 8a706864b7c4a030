//! Figures of the simulated lab, printed as `MEASURE name value unit`:
//!
//! - one `server-basic` run per profile with realistic delays
//!   (`time_scale` 1.0): the wall time a sim run costs;
//! - the resident memory of a lab of N simulated machines (default 1000),
//!   made from a generated lab.toml and each touched once;
//! - N `server-basic` runs at `time_scale` 0 (no simulated delays), K at a
//!   time (default 8): runs per second, peak RSS of the process.
//!
//! `cargo run -p certlab-harness --example sim_bench [-- N K]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use certlab_harness::{certify, RunSpec, Store};
use certlab_lab::sim::generate::{lab_toml, Options};
use certlab_lab::sim::{FaultLevel, SimLab, SimMachine, SimSpec, PROFILES};
use certlab_lab::{Lab, Target};
use certlab_suites::Plan;
use ed25519_dalek::SigningKey;

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

async fn one_run(
    store: &Store,
    dir: &std::path::Path,
    m: &Arc<SimMachine>,
    id: &str,
) -> Result<()> {
    let spec = RunSpec {
        run_id: id.to_string(),
        plan: Plan::load("server-basic")?,
        target: Arc::new(m.target()),
        out_dir: dir.join(id),
        signer: SigningKey::from_bytes(&[3u8; 32]),
        tool_version: "bench".into(),
        case_retries: None,
        sut: None,
    };
    certify(spec, store, &mut |_| {}).await?;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let n: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let k: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let dir = tempfile::tempdir()?;
    let store = Store::open(&format!("sqlite:{}/bench.db", dir.path().display())).await?;

    for def in PROFILES {
        let m = SimMachine::new(&format!("real-{}", def.name), SimSpec::new(def.name))?;
        let t = Instant::now();
        one_run(&store, dir.path(), &m, &format!("real-{}", def.name))
            .await
            .context(def.name)?;
        println!(
            "MEASURE sim_run_time_scale_1.{} {:.2} s",
            def.name,
            t.elapsed().as_secs_f64()
        );
    }

    let before = status_kib("VmRSS:");
    let text = lab_toml(&Options {
        machines: n,
        seed: 1,
        faults: FaultLevel::None,
        defective: 0,
        time_scale: 0.0,
    });
    let lab = Lab::parse(&text, "bench.toml")?;
    let sims = SimLab::from_lab(&lab)?;
    for m in lab.machines.iter().filter_map(|m| sims.get(&m.name)) {
        m.target().exec("uname -n -r -m", Duration::from_secs(5))?;
    }
    let after = status_kib("VmRSS:");
    println!("MEASURE sim_machines {n} machines");
    println!(
        "MEASURE sim_lab_rss_growth {:.1} MiB",
        after.saturating_sub(before) as f64 / 1024.0
    );
    println!(
        "MEASURE sim_machine_rss {:.1} KiB/machine",
        after.saturating_sub(before) as f64 / f64::from(n)
    );

    let machines: Vec<Arc<SimMachine>> = lab
        .machines
        .iter()
        .filter_map(|m| sims.get(&m.name).cloned())
        .collect();
    let t = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(k));
    let store = Arc::new(store);
    let root = Arc::new(dir.path().to_path_buf());
    let mut tasks = Vec::new();
    for m in machines {
        let permit = sem.clone().acquire_owned().await?;
        let (store, root) = (store.clone(), root.clone());
        tasks.push(tokio::spawn(async move {
            let id = format!("bench-{}", m.name());
            let r = one_run(&store, &root, &m, &id).await;
            // Evidence of a finished run is not what is measured: drop it.
            let _ = std::fs::remove_dir_all(root.join(&id));
            drop(permit);
            r
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = t.elapsed().as_secs_f64();
    println!("MEASURE sim_runs {n} runs, {k} at a time");
    println!("MEASURE sim_runs_per_s {:.1} runs/s", f64::from(n) / secs);
    println!(
        "MEASURE peak_rss {:.1} MiB",
        status_kib("VmHWM:") as f64 / 1024.0
    );
    Ok(())
}
