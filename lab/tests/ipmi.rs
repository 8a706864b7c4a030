//! The IPMI driver against a real OpenIPMI `ipmi_sim`, each answer checked
//! against what `ipmitool -I lanplus -C 3` reports for the same BMC.
//!
//! Every test starts its own `ipmi_sim` (`common/ipmi_sim.rs`) on 127.0.0.1
//! at a free UDP port, with `lan.conf`, the emulator command file and
//! compiled SDRs in a tempdir, and kills it on drop. The tests fail (not
//! skip) when `ipmi_sim`, `sdrcomp` or `ipmitool` are missing:
//! `apt-get install openipmi ipmitool`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use certlab_lab::bmc::ipmi::{CipherSuite, Ipmi};
use certlab_lab::bmc::{
    Bmc, BmcError, BootDevice, BootOverride, Guarded, Health, MemoryLog, PowerAction, PowerState,
    RetryPolicy,
};
use certlab_lab::inventory::Secret;
use common::ipmi_sim::Sim;

#[tokio::test]
async fn power_on_off_cycle_reset_agree_with_ipmitool() {
    let sim = Sim::start();
    let bmc = sim.bmc();
    assert_eq!(bmc.power_status().await.unwrap(), PowerState::Off);
    assert!(sim.ipmitool(&["power", "status"]).contains("is off"));

    bmc.power(PowerAction::On).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    assert_eq!(
        bmc.wait_for(PowerState::On, deadline).await.unwrap(),
        PowerState::On
    );
    assert!(sim.ipmitool(&["power", "status"]).contains("is on"));

    bmc.power(PowerAction::Off).await.unwrap(); // graceful: ACPI soft off
    bmc.wait_for(PowerState::Off, Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    assert!(sim.ipmitool(&["power", "status"]).contains("is off"));

    bmc.power(PowerAction::On).await.unwrap();
    bmc.wait_for(PowerState::On, Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    bmc.power(PowerAction::ForceOff).await.unwrap();
    assert_eq!(bmc.power_status().await.unwrap(), PowerState::Off);
    assert!(sim.ipmitool(&["power", "status"]).contains("is off"));

    // Power cycle round trip: on → cycle → seen off → on again.
    bmc.power(PowerAction::On).await.unwrap();
    bmc.wait_for(PowerState::On, Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    let started = Instant::now();
    bmc.power(PowerAction::Cycle).await.unwrap();
    let mut saw_off = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match bmc.power_status().await.unwrap() {
            PowerState::Off => saw_off = true,
            PowerState::On if saw_off => break,
            _ => {}
        }
        assert!(Instant::now() < deadline, "power cycle did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cycle = started.elapsed();
    eprintln!("MEASURE ipmi_sim power cycle round trip: {cycle:?}");
    assert!(sim.ipmitool(&["power", "status"]).contains("is on"));

    bmc.power(PowerAction::Reset).await.unwrap();
    let resets = std::fs::read_to_string(sim.dir.path().join("chassis/resets")).unwrap();
    assert_eq!(resets.lines().count(), 1);
    bmc.close().await;
}

#[tokio::test]
async fn boot_override_agrees_with_ipmitool() {
    let sim = Sim::start();
    let bmc = sim.bmc();
    for (device, once, ipmitool_says) in [
        (BootDevice::Pxe, true, "Force PXE"),
        (
            BootDevice::Disk,
            false,
            "Force Boot from default Hard-Drive",
        ),
        (BootDevice::BiosSetup, true, "Force Boot into BIOS Setup"),
    ] {
        bmc.set_boot(BootOverride { device, once }).await.unwrap();
        assert_eq!(bmc.boot_device().await.unwrap(), Some(device));
        let shown = sim.ipmitool(&["chassis", "bootparam", "get", "5"]);
        assert!(shown.contains(ipmitool_says), "{device}: {shown}");
    }
    // And the other way round: set by ipmitool, read by us.
    sim.ipmitool(&["chassis", "bootdev", "pxe"]);
    assert_eq!(bmc.boot_device().await.unwrap(), Some(BootDevice::Pxe));
}

/// `ipmitool sel list` lines: (id, rest).
fn ipmitool_sel(sim: &Sim) -> Vec<(u16, String)> {
    sim.ipmitool(&["sel", "list"])
        .lines()
        .filter_map(|l| {
            let (id, rest) = l.split_once('|')?;
            Some((u16::from_str_radix(id.trim(), 16).ok()?, rest.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn sel_since_cursor_and_clear_agree_with_ipmitool() {
    let mut sim = Sim::start();
    let bmc = sim.bmc();
    let started = Instant::now();
    let page = bmc.sel_since(None).await.unwrap();
    eprintln!(
        "MEASURE ipmi_sim SEL read ({} entries, new session included): {:?}",
        page.entries.len(),
        started.elapsed()
    );
    let theirs = ipmitool_sel(&sim);
    assert_eq!(page.entries.len(), 2);
    assert_eq!(
        page.entries
            .iter()
            .map(|e| e.id.parse::<u16>().unwrap())
            .collect::<Vec<_>>(),
        theirs.iter().map(|(id, _)| *id).collect::<Vec<_>>()
    );
    let temp = &page.entries[0];
    assert_eq!(temp.sensor_type.as_deref(), Some("Temperature"));
    assert_eq!(temp.severity, Health::Critical);
    assert!(
        temp.message.contains("Upper Critical going high"),
        "{}",
        temp.message
    );
    assert!(theirs[0].1.contains("Upper Critical going high"));
    assert_eq!(
        temp.timestamp, None,
        "ipmitool says Pre-Init: {}",
        theirs[0].1
    );
    let ecc = &page.entries[1];
    assert_eq!(ecc.sensor_type.as_deref(), Some("Memory"));
    assert!(ecc.message.contains("Uncorrectable ECC") && theirs[1].1.contains("Uncorrectable ECC"));

    // Nothing new since the cursor.
    let again = bmc.sel_since(Some(page.cursor.clone())).await.unwrap();
    assert!(again.entries.is_empty(), "{:?}", again.entries);

    // An event injected while running: only it comes back.
    sim.emu("sel_add 0x20 0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 0x04 0x02 0x01 0x02 0x05 0x0a");
    let started = Instant::now();
    let new = bmc.sel_since(Some(again.cursor.clone())).await.unwrap();
    eprintln!(
        "MEASURE ipmi_sim SEL read since cursor (warm session): {:?}",
        started.elapsed()
    );
    assert_eq!(new.entries.len(), 1, "{:?}", new.entries);
    assert_eq!(new.entries[0].sensor_type.as_deref(), Some("Fan"));
    assert!(new.entries[0].message.contains("Lower Critical going low"));
    assert_eq!(ipmitool_sel(&sim).len(), 3);

    // Clear: empty for us and for ipmitool.
    bmc.sel_clear().await.unwrap();
    assert!(bmc.sel_since(None).await.unwrap().entries.is_empty());
    assert!(sim
        .ipmitool(&["sel", "info"])
        .contains("Entries          : 0"));
    // A record added after the clear is new for the old cursor too.
    sim.emu("sel_add 0x20 0x02 0x00 0x00 0x00 0x00 0x20 0x00 0x04 0x0c 0x05 0x6f 0x00 0xff 0xff");
    let after = bmc.sel_since(Some(new.cursor.clone())).await.unwrap();
    assert_eq!(
        after.entries.len(),
        1,
        "{:?} (cursor {})",
        after.entries,
        new.cursor
    );
    assert_eq!(after.entries[0].severity, Health::Warning);
}

/// One `ipmitool sensor list` line: name, reading, status, thresholds
/// (lnr, lcr, lnc, unc, ucr, unr).
type IpmitoolSensor = (String, Option<f64>, String, [Option<f64>; 6]);

fn ipmitool_sensors(sim: &Sim) -> Vec<IpmitoolSensor> {
    sim.ipmitool(&["sensor", "list"])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').map(str::trim).collect();
            let num = |s: &str| s.parse::<f64>().ok();
            (
                f[0].to_string(),
                num(f[1]),
                f[3].to_string(),
                [
                    num(f[4]),
                    num(f[5]),
                    num(f[6]),
                    num(f[7]),
                    num(f[8]),
                    num(f[9]),
                ],
            )
        })
        .collect()
}

#[tokio::test]
async fn sensors_agree_with_ipmitool() {
    let mut sim = Sim::start();
    let bmc = sim.bmc();
    let ours = bmc.sensors().await.unwrap();
    let theirs = ipmitool_sensors(&sim);
    assert_eq!(ours.len(), theirs.len(), "{ours:?}");
    for (name, reading, _status, [lnr, lcr, lnc, unc, ucr, unr]) in &theirs {
        let s = ours
            .iter()
            .find(|s| &s.name == name)
            .unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(s.reading, *reading, "{name}");
        let t = s.thresholds;
        assert_eq!(t.lower_fatal, *lnr, "{name} lnr");
        assert_eq!(t.lower_critical, *lcr, "{name} lcr");
        assert_eq!(t.lower_caution, *lnc, "{name} lnc");
        assert_eq!(t.upper_caution, *unc, "{name} unc");
        assert_eq!(t.upper_critical, *ucr, "{name} ucr");
        assert_eq!(t.upper_fatal, *unr, "{name} unr");
    }
    let cpu = ours.iter().find(|s| s.name == "CPU Temp").unwrap();
    assert_eq!(
        (
            cpu.sensor_type.as_str(),
            cpu.unit.as_deref(),
            cpu.reading,
            cpu.status
        ),
        ("Temperature", Some("Cel"), Some(45.0), Health::Ok)
    );
    let fan = ours.iter().find(|s| s.name == "Fan 1").unwrap();
    assert_eq!(
        (fan.unit.as_deref(), fan.reading, fan.status),
        (Some("RPM"), Some(3000.0), Health::Ok)
    );
    assert_eq!(fan.thresholds.lower_critical, Some(500.0));

    // Past a threshold while running: both see it.
    sim.emu("sensor_set_value 0x20 0 1 95 1");
    let cpu = bmc
        .sensors()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.name == "CPU Temp")
        .unwrap();
    assert_eq!((cpu.reading, cpu.status), (Some(95.0), Health::Critical));
    let theirs = ipmitool_sensors(&sim);
    let t = theirs.iter().find(|s| s.0 == "CPU Temp").unwrap();
    assert_eq!((t.1, t.2.as_str()), (Some(95.0), "cr"));
}

#[tokio::test]
async fn identity_agrees_with_ipmitool() {
    let sim = Sim::start();
    let bmc = sim.bmc();
    let id = bmc.identity().await.unwrap();
    let mc = sim.ipmitool(&["mc", "info"]);
    let field = |text: &str, key: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(key))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    assert_eq!(id.bmc_firmware, field(&mc, "Firmware Revision"));
    let fru = sim.ipmitool(&["fru", "print", "0"]);
    assert_eq!(id.manufacturer, field(&fru, "Product Manufacturer"));
    assert_eq!(id.model, field(&fru, "Product Name"));
    assert_eq!(id.serial, field(&fru, "Product Serial"));
    assert_eq!(
        (
            id.manufacturer.as_deref(),
            id.model.as_deref(),
            id.serial.as_deref()
        ),
        (Some("Acme"), Some("Server 9K"), Some("SN-42"))
    );
    assert_eq!(id.firmware.len(), 1);
}

#[tokio::test]
async fn console_capture_through_sol() {
    let sim = Sim::start();
    let bmc = sim.bmc();
    let out = sim.dir.path().join("console.log");
    let cap = bmc
        .console(out.clone(), Some(Duration::from_secs(2)))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(cap.bytes > 0 && cap.bytes == text.len() as u64, "{cap:?}");
    assert!(text.contains("certlab-sut console line"), "{text:?}");
    // The payload was released: a second capture works.
    let cap2 = bmc
        .console(out, Some(Duration::from_secs(1)))
        .await
        .unwrap();
    assert!(cap2.bytes > 0);
}

#[tokio::test]
async fn cipher_suite_17_falls_back_to_3_on_ipmi_sim() {
    let sim = Sim::start();
    // ipmi_sim offers no suite 17: with only 17 allowed, a fatal error.
    let mut only17 = sim.config();
    only17.cipher_suites = vec![CipherSuite::Cs17];
    let err = Ipmi::new(only17).power_status().await.unwrap_err();
    assert!(matches!(err, BmcError::Unsupported { .. }), "{err}");
    assert!(!err.is_retryable());
    // The default (17, then 3) settles on 3.
    let bmc = sim.bmc();
    bmc.power_status().await.unwrap();
    assert_eq!(bmc.cipher_suite().await, Some(CipherSuite::Cs3));
}

fn policy(deadline: Duration) -> RetryPolicy {
    RetryPolicy {
        deadline,
        attempt_timeout: Duration::from_secs(1),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        min_gap: Duration::from_millis(0),
        breaker_threshold: 100,
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn wrong_password_is_fatal_and_not_retried() {
    let sim = Sim::start();
    let mut cfg = sim.config();
    cfg.password = Secret::new("not-the-password");
    let log = MemoryLog::new();
    let bmc = Guarded::new(Ipmi::new(cfg), policy(Duration::from_secs(10)), log.clone());
    let started = Instant::now();
    let err = bmc.power_status().await.unwrap_err();
    assert_eq!(err.root().kind(), "auth", "{err}");
    assert!(!err.is_retryable());
    assert!(!err.to_string().contains("not-the-password"));
    // Not retried: one call on record.
    assert_eq!(log.records().len(), 1, "{:?}", log.records());
    eprintln!(
        "MEASURE wrong password refused after {:?}",
        started.elapsed()
    );
    // ipmitool agrees the password is wrong.
    let out = Command::new("ipmitool")
        .args([
            "-I",
            "lanplus",
            "-C",
            "3",
            "-H",
            "127.0.0.1",
            "-U",
            "admin",
            "-P",
            "nope",
        ])
        .args(["-p", &sim.port.to_string(), "power", "status"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn stopped_bmc_is_a_retryable_timeout_until_the_deadline() {
    let mut sim = Sim::start();
    let log = MemoryLog::new();
    let bmc = Guarded::new(sim.bmc(), policy(Duration::from_secs(3)), log.clone());
    assert_eq!(bmc.power_status().await.unwrap(), PowerState::Off);
    sim.stop();
    let started = Instant::now();
    let err = bmc.power_status().await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, BmcError::GaveUp { .. }), "{err}");
    assert_eq!(err.root().kind(), "timeout", "{err}");
    assert!(err.root().is_retryable());
    assert!(log.records().len() >= 3, "{:?}", log.records());
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_millis(4500),
        "gave up after {took:?}, deadline 3 s"
    );
    // And when the BMC comes back, the next call opens a new session.
    sim.spawn();
    assert_eq!(bmc.power_status().await.unwrap(), PowerState::Off);
}
