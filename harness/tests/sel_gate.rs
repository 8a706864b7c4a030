//! The prepare step's health gate against a real IPMI BMC (OpenIPMI
//! `ipmi_sim`) and a real OpenSSH server: the first reading of the SEL is
//! the machine's baseline; an OS critical stop after it (a crash, which
//! its run already recorded) does not count against the machine; a
//! critical hardware event does — the daemon takes the machine out of
//! service with a reason that names the record, and a job for it waits,
//! saying so; once the SEL is cleared the machine passes again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../../lab/tests/common/ipmi_sim.rs"]
mod ipmi_sim;
#[path = "../../lab/tests/common/sshd.rs"]
mod sshd;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use certlab_harness::access::LabAccess;
use certlab_harness::daemon::{self, MachineAccess, PrepareError};
use certlab_harness::lifecycle::Health;
use certlab_harness::Store;
use certlab_lab::bmc::Bmc;
use certlab_lab::Lab;
use ed25519_dalek::SigningKey;
use time::OffsetDateTime;
use tokio::sync::watch;

const PW_VAR: &str = "CERTLAB_TEST_SEL_GATE_PW";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_sel_entry_since_the_last_job_takes_the_machine_out_of_service() -> Result<()> {
    let mut bmc_sim = tokio::task::spawn_blocking(ipmi_sim::Sim::start).await?;
    let server = tokio::task::spawn_blocking(sshd::Sshd::start).await?;
    let dir = tempfile::tempdir()?;
    let lab_file = dir.path().join("lab.toml");
    std::fs::write(
        &lab_file,
        format!(
            "version = 1\n\n[[machine]]\nname = \"m1\"\narch = \"{arch}\"\n\n\
             [machine.bmc]\nprotocol = \"ipmi\"\naddress = \"127.0.0.1\"\nport = {port}\n\
             username = \"{user}\"\npassword_env = \"{PW_VAR}\"\n\n\
             [machine.ssh]\naddress = \"127.0.0.1\"\nport = {ssh}\nuser = \"{me}\"\n\
             key_file = \"{key}\"\nhost_key = \"{hk}\"\n",
            arch = std::env::consts::ARCH,
            port = bmc_sim.port,
            user = ipmi_sim::USER,
            ssh = server.port,
            me = sshd::whoami(),
            key = server.client_key.display(),
            hk = server.host_key,
        ),
    )?;
    // The variable is this test's own; the lab file names it.
    std::env::set_var(PW_VAR, ipmi_sim::PASSWORD);
    let lab = Lab::load(&lab_file)?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    let access = Arc::new(LabAccess::new(lab, &store));
    store
        .sync_machines(&access.facts(), OffsetDateTime::now_utc())
        .await?;

    // The emulator starts with two critical events: the baseline.
    let bmc = bmc_sim.bmc();
    let before = bmc.sel_since(None).await?;
    ensure!(before.entries.len() == 2, "{:?}", before.entries);
    let note = access.prepare("m1").await?;
    ensure!(note == "SSH answers", "{note}");
    ensure!(store.sel_cursor("m1").await?.is_some(), "no baseline");

    // An OS crash (sensor type 0x20, run-time critical stop): not held
    // against the machine.
    let emu = |sim: &mut ipmi_sim::Sim, sensor_type: u8, data: u8| {
        sim.emu(&format!(
            "sel_add 0x20 0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 {sensor_type:#04x} 0x07 0x6f {data:#04x} 0xff 0xff"
        ))
    };
    let mut sim = tokio::task::spawn_blocking(move || {
        emu(&mut bmc_sim, 0x20, 0x01);
        bmc_sim
    })
    .await?;
    access.prepare("m1").await?;

    // An uncorrectable memory error: the gate refuses, naming the record.
    sim = tokio::task::spawn_blocking(move || {
        emu(&mut sim, 0x0c, 0x01);
        sim
    })
    .await?;
    let page = bmc.sel_since(None).await?;
    let ecc = page.entries.last().context("the new entry")?;
    let refused = access.prepare("m1").await;
    let Err(PrepareError::Unhealthy(reason)) = &refused else {
        anyhow::bail!("{refused:?}")
    };
    ensure!(
        reason.contains(&format!("record {}", ecc.id)) && reason.contains(&ecc.message),
        "{reason} / {ecc:?}"
    );

    // The daemon: its health check takes the machine out of service with
    // that reason, and a job for it waits, naming it.
    store
        .submit_job(
            &common::test_job("j1", "server-basic", None, "name=m1")?,
            OffsetDateTime::now_utc(),
        )
        .await?;
    let config = common::daemon_config(&dir.path().join("runs"), 1, 1);
    let (stop, stopped) = watch::channel(false);
    let d = tokio::spawn(daemon::run(
        store.clone(),
        access.clone() as Arc<dyn MachineAccess>,
        SigningKey::from_bytes(&[5u8; 32]),
        config,
        stopped,
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let waiting = loop {
        let j = store.job("j1").await?.context("job")?;
        if let Some(w) = j
            .waiting_reason
            .filter(|w| w.contains("critical SEL entry"))
        {
            break w;
        }
        ensure!(tokio::time::Instant::now() < deadline, "{:?}", j.state);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    stop.send(true)?;
    d.await??;
    ensure!(waiting.contains(&format!("record {}", ecc.id)), "{waiting}");
    let m = store.machines().await?.remove(0);
    let Health::Bad { reason, .. } = &m.health else {
        anyhow::bail!("{:?}", m.health)
    };
    ensure!(reason.contains(&ecc.message), "{reason}");

    // Dealt with: the SEL cleared, the machine passes its gate again.
    bmc.sel_clear().await?;
    access
        .health_check("m1")
        .await
        .map_err(anyhow::Error::msg)?;
    store.close().await;
    drop(sim);
    drop(server);
    Ok(())
}
