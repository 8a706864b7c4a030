//! The kernel-log classifier on real kernel logs (fixtures/kernlog, provenance
//! in its PROVENANCE.tsv) and on lines we wrote in the kernel's own message
//! formats (the `constructed-*` files, labelled so there).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::Path;

use certlab_suites::kernlog::{scan, EventKind, KernelEvent};
use proptest::prelude::*;

fn fixture(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kernlog")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn summary(events: &[KernelEvent]) -> Vec<(&'static str, usize, Option<&str>)> {
    events
        .iter()
        .map(|e| (e.kind.as_str(), e.line, e.detail.as_deref()))
        .collect()
}

#[test]
fn every_fixture_has_a_provenance_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kernlog");
    let prov = std::fs::read_to_string(dir.join("PROVENANCE.tsv")).unwrap();
    let listed: Vec<&str> = prov
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .collect();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "PROVENANCE.tsv" {
            assert!(
                listed.contains(&name.as_str()),
                "{name} has no PROVENANCE.tsv line"
            );
        }
    }
}

/// abrt's mce1: an old-format MCE report (no timestamps) followed by a panic.
#[test]
fn real_mce_exception_then_panic() {
    let ev = scan(&fixture("abrt-mce1.txt"));
    assert_eq!(
        summary(&ev),
        vec![("mce", 3, None), ("panic", 5, Some("Unable to continue"))]
    );
    assert_eq!(
        ev[0].text,
        "CPU 0: Machine Check Exception: 0000000000000007"
    );
}

/// abrt's mce2 (dmesg with timestamps, mce-inject) and two syslog/journal
/// forms: one MCE each, the mcelog daemon's own lines ignored.
#[test]
fn real_mce_logged_in_dmesg_and_syslog_forms() {
    assert_eq!(
        summary(&scan(&fixture("abrt-mce2.txt"))),
        vec![("mce", 12, None)]
    );
    assert_eq!(
        summary(&scan(&fixture("abrt-oops_full_hostname.txt"))),
        vec![("mce", 1, None)]
    );
    assert_eq!(
        summary(&scan(&fixture("abrt-oops-non-fatal-mce.txt"))),
        vec![("mce", 3, None)]
    );
}

/// The kernel documentation's AER example (old format, no "error received"
/// line): one fatal event on its first line, with the device.
#[test]
fn real_aer_example_is_one_fatal_event() {
    let ev = scan(&fixture("pcieaer-howto.example.txt"));
    assert_eq!(
        summary(&ev),
        vec![("aer_fatal", 1, Some("0000:50:00.0 Uncorrected (Fatal)"))]
    );
}

/// A multi-line AER report is one event on its first line, per severity.
#[test]
fn multi_line_aer_reports_are_one_event_each() {
    let ev = scan(&fixture("constructed-aer.dmesg"));
    assert_eq!(
        summary(&ev),
        vec![
            ("aer_corrected", 2, Some("0000:02:00.0 Corrected")),
            (
                "aer_uncorrected_nonfatal",
                6,
                Some("0000:3b:00.0 Uncorrected (Non-Fatal)")
            ),
            ("aer_fatal", 11, Some("0000:5e:00.0 Uncorrected (Fatal)")),
        ]
    );
}

/// gpud's XE9680 log (dmesg -T): five Xid 119 with the code in detail; the
/// NVRM RPC dump and the stack dump around it are no events.
#[test]
fn real_xid_119_with_code() {
    let ev = scan(&fixture("gpud-dmesg-with-xid-119.log"));
    assert_eq!(ev.len(), 5, "{ev:#?}");
    assert!(ev
        .iter()
        .all(|e| e.kind == EventKind::Xid && e.detail.as_deref() == Some("119")));
    assert_eq!(ev[0].line, 3);
}

/// gpud's `dmesg --decode --time-format iso` log: Xid 13 and 43, no OOM noise.
#[test]
fn real_xid_in_decoded_iso_dmesg() {
    let ev = scan(&fixture("gpud-memory-dmesg.decode.iso.log"));
    let codes: Vec<&str> = ev.iter().filter_map(|e| e.detail.as_deref()).collect();
    assert_eq!(ev.len(), 17);
    assert_eq!(codes.iter().filter(|c| **c == "13").count(), 16);
    assert_eq!(ev[16].detail.as_deref(), Some("43"));
    assert_eq!(ev[16].line, 17);
}

/// A real oops from pstore/ERST (`<N>[ts]` records): one event on the
/// "BUG: unable to handle" line, however many lines the report spans.
#[test]
fn real_oops_is_one_event() {
    let ev = scan(&fixture("gpud-pstore-dmesg-erst.txt"));
    assert_eq!(summary(&ev), vec![("oops", 2, None)]);
}

/// A real /dev/kmsg dump of a healthy node: nothing.
#[test]
fn real_healthy_kmsg_has_no_events() {
    assert_eq!(scan(&fixture("gpud-kmsg.1.log")), vec![]);
}

/// A real panic from pstore (`<N>[ts]`): one event with its reason; its
/// call trace is no event.
#[test]
fn real_panic_from_pstore() {
    let ev = scan(&fixture("gpud-pstore-panic-dmesg.txt"));
    assert_eq!(
        summary(&ev),
        vec![(
            "panic",
            383,
            Some("Test panic triggered by crash_test module")
        )]
    );
}

/// A real 2381-line boot log of a GPU server (`dmesg --decode --time-format
/// iso`, _OSC lines naming AER included): nothing.
#[test]
fn real_boot_log_has_no_events() {
    let log = fixture("gpud-boot-dmesg.decode.iso.log");
    assert!(log.lines().count() > 2000);
    assert_eq!(scan(&log), vec![]);
}

#[test]
fn benign_lines_are_not_events() {
    assert_eq!(scan(&fixture("constructed-benign.dmesg")), vec![]);
}

/// Every other kind, in the kernel's formats; GHES's six lines are one event.
#[test]
fn edac_ghes_lockups_hung_task_amdgpu_xid_panic() {
    let ev = scan(&fixture("constructed-ras.dmesg"));
    assert_eq!(
        summary(&ev),
        vec![
            ("edac_ce", 5, Some("MC0: 1")),
            ("edac_ue", 6, Some("MC1: 1")),
            ("ghes", 7, None),
            ("soft_lockup", 13, Some("CPU#12 23s")),
            ("hard_lockup", 14, Some("cpu 7")),
            ("hung_task", 15, Some("jbd2/nvme0n1p2-:812")),
            ("amdgpu_ras", 18, Some("3 uncorrectable in umc")),
            ("xid", 19, Some("79")),
            ("panic", 20, Some("Hard LOCKUP")),
        ]
    );
}

/// `journalctl -k` short format: kernel lines only, one AER, one Xid 48.
#[test]
fn journal_format() {
    let ev = scan(&fixture("constructed-journal.txt"));
    assert_eq!(
        summary(&ev),
        vec![
            ("aer_corrected", 3, Some("0000:21:00.0 Corrected")),
            ("xid", 7, Some("48")),
        ]
    );
}

/// The same report with and without dmesg timestamps gives the same events.
#[test]
fn timestamps_do_not_matter() {
    let with = fixture("constructed-ras.dmesg");
    let without: String = with
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, m)| m).to_string() + "\n")
        .collect();
    let a: Vec<_> = scan(&with)
        .into_iter()
        .map(|e| (e.kind, e.line, e.detail))
        .collect();
    let b: Vec<_> = scan(&without)
        .into_iter()
        .map(|e| (e.kind, e.line, e.detail))
        .collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 9);
}

proptest! {
    #[test]
    fn never_panics_and_lines_are_in_range(s in "(\\PC{0,80}\n?){0,20}") {
        let n = s.lines().count();
        for e in scan(&s) {
            prop_assert!(e.line >= 1 && e.line <= n);
        }
    }

    #[test]
    fn never_panics_on_near_misses(
        parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "[ 1.0] ", "<4>", "kern  :warn  : ", "Dec 06 10:01:02 h kernel: ",
                "AER: Corrected error received: ", "PCIe Bus Error: severity=",
                "NVRM: Xid (PCI:", "EDAC MC0: ", "{1}[Hardware Error]: ", "mce: ",
                "Oops: ", "---[ end trace", "Kernel panic - not syncing: ", "0000:00:1c.0 ",
                "\n", "79, ", "CE ", "UE ", "BUG: soft lockup - CPU#",
            ]),
            0..40,
        )
    ) {
        let s: String = parts.concat();
        let n = s.lines().count();
        for e in scan(&s) {
            prop_assert!(e.line >= 1 && e.line <= n);
        }
    }
}
