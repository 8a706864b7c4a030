//! The `ras.sel` case: the BMC's event log over the run, handed to the case
//! by the orchestrator (harness/tests/crash.rs runs it through the daemon on
//! the simulated lab). Here the entries are IPMI SEL records decoded by
//! `lab`'s codec, as the orchestrator's IPMI BMC decodes them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::bmc::ipmi::codec::sel_entry;
use certlab_lab::bmc::{Health, SelEntry};
use certlab_lab::Scripted;
use certlab_reports::{Evidence, Verdict};
use certlab_suites::{checks, CaseCtx, CaseError, CaseOutcome, MemorySink};

fn run(
    sel: Option<Result<Vec<SelEntry>, String>>,
    params: &str,
) -> Result<(CaseOutcome, Vec<Evidence>), CaseError> {
    let check = checks::lookup("ras-sel").unwrap();
    assert!(check.needs_bmc_sel());
    let target = Scripted::new("sut");
    let profile = HardwareProfile::default();
    let inv = Inventory::default();
    let params: toml::Table = toml::from_str(params).unwrap();
    let sink = MemorySink::default();
    let ctx = CaseCtx::new(
        &target,
        &profile,
        &inv,
        &params,
        &sink,
        Duration::from_secs(10),
    );
    let ctx = match sel {
        Some(s) => ctx.with_bmc_sel(s),
        None => ctx,
    };
    let out = check.run(&ctx)?;
    let ev = ctx.take_evidence();
    assert!(ev
        .iter()
        .any(|e| matches!(e, Evidence::Bmc { source, .. } if source == "sel")));
    Ok((out, ev))
}

/// A system event record (IPMI 2.0 section 32.1): record type 0x02, BMC
/// as generator, event message revision 0x04.
fn record(id: u16, ts: u32, sensor_type: u8, sensor: u8, dir_type: u8, data1: u8) -> SelEntry {
    let mut r = vec![];
    r.extend_from_slice(&id.to_le_bytes());
    r.push(0x02);
    r.extend_from_slice(&ts.to_le_bytes());
    r.extend_from_slice(&[
        0x20,
        0x00,
        0x04,
        sensor_type,
        sensor,
        dir_type,
        data1,
        0xff,
        0xff,
    ]);
    sel_entry(&r).unwrap().1
}

#[test]
fn a_run_without_a_bmc_connection_skips_with_the_reason() {
    let (o, _) = run(None, "").unwrap();
    assert_eq!(o.verdict, Verdict::Skip);
    assert!(o.reason.contains("orchestrator"), "{}", o.reason);
    assert!(o.reason.contains("no BMC connection"), "{}", o.reason);
}

#[test]
fn a_correctable_ecc_record_is_a_warning_that_fails_only_when_the_plan_says() {
    // Real: ipmitool-issue385 (QuantaPlex T22HF-1U, ipmitool 1.8.19):
    //   3a | 12/14/22 | 23:09:44 CET | Memory #0x88 | Correctable ECC (CPU0_G1) | Asserted
    // The record it was printed from: id 0x3a, Memory (0x0c) sensor 0x88,
    // sensor-specific (0x6f) offset 0, OEM data in bytes 2-3 (the label).
    let line = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/sel/ipmitool-issue385.sel-elist.QuantaPlex_T22HF-1U.txt"
    ))
    .unwrap();
    let e = record(0x3a, 1671055784, 0x0c, 0x88, 0x6f, 0xa0);
    assert_eq!(e.severity, Health::Warning);
    // lab decodes it as ipmitool printed it (but for the OEM label).
    for part in e.message.split(" | ") {
        assert!(line.contains(part), "{part} not in {line}");
    }
    let (o, _) = run(Some(Ok(vec![e.clone()])), "").unwrap();
    assert_eq!(o.verdict, Verdict::Pass, "{}", o.reason);
    assert!(o.reason.contains("1 warning"), "{}", o.reason);
    assert!(o.reason.contains("memory 1"), "{}", o.reason);
    let (o, _) = run(Some(Ok(vec![e])), "fail_on = \"warning\"").unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("Correctable ECC"), "{}", o.reason);
}

#[test]
fn uncorrectable_memory_and_bus_errors_fail_and_a_deasserted_one_does_not() {
    let entries = vec![
        record(1, 0, 0x12, 0x01, 0x6f, 0x01), // System Event: OEM boot event (ok)
        record(2, 0, 0x0c, 0x05, 0x6f, 0x01), // Memory: Uncorrectable ECC
        record(3, 0, 0x13, 0x21, 0x6f, 0x08), // Critical Interrupt: Bus Uncorrectable error
        record(4, 0, 0x0c, 0x05, 0xef, 0x01), // the same memory event deasserted
    ];
    assert_eq!(entries[3].severity, Health::Ok);
    let (o, ev) = run(Some(Ok(entries)), "").unwrap();
    assert_eq!(o.verdict, Verdict::Fail, "{}", o.reason);
    assert!(o.reason.contains("record 2 [memory]"), "{}", o.reason);
    assert!(o.reason.contains("Uncorrectable ECC"), "{}", o.reason);
    assert!(
        o.reason
            .contains("record 3 [PCIe/bus (critical interrupt)]"),
        "{}",
        o.reason
    );
    assert!(!o.reason.contains("record 4 ["), "{}", o.reason);
    assert!(
        o.reason
            .contains("4 SEL entries since the run began: 2 critical"),
        "{}",
        o.reason
    );
    let critical = o.metrics.iter().find(|m| m.name == "sel.critical").unwrap();
    assert_eq!(critical.value, 2.0);
    assert_eq!(ev.len(), 1);
}

#[test]
fn a_bmc_that_does_not_answer_is_an_error_not_a_failure() {
    let e = run(Some(Err("the SEL could not be read: timed out".into())), "").unwrap_err();
    assert!(!matches!(e, CaseError::Target(_)));
    assert!(e.to_string().contains("timed out"), "{e}");
}
