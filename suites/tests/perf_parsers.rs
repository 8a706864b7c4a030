//! The performance suite's parsers on real tool output
//! (`fixtures/perf/…`, provenance in `fixtures/perf/PROVENANCE.tsv`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::PathBuf;

use certlab_suites::perf::{fio, iperf3, stressng, Better, Metric, ParseError};

fn fixture(rel: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests/fixtures/perf", rel]
        .iter()
        .collect();
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (a checked-in fixture; see suites/tests/fixtures/perf/PROVENANCE.tsv)",
            p.display()
        )
    })
}

fn get<'a>(ms: &'a [Metric], name: &str) -> &'a Metric {
    ms.iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric `{name}` in {:?}", names(ms)))
}

fn names(ms: &[Metric]) -> Vec<&str> {
    ms.iter().map(|m| m.name.as_str()).collect()
}

fn assert_metric(ms: &[Metric], name: &str, value: f64, unit: &str, better: Better) {
    let m = get(ms, name);
    let tol = value.abs() * 1e-12;
    assert!(
        (m.value - value).abs() <= tol,
        "{name}: {} != {value}",
        m.value
    );
    assert_eq!(m.unit, unit, "{name}");
    assert_eq!(m.better, better, "{name}");
}

// ---- fio -------------------------------------------------------------------

#[test]
fn fio_2_1_4_old_layout_usec_and_kib() {
    let ms = fio::parse(&fixture("fio/fio-2.1.4-pkb-sample.json")).unwrap();
    // Five jobs, each moving data one way only: 5 × (bw, iops, mean, 4 percentiles).
    assert_eq!(ms.len(), 5 * 7, "{:?}", names(&ms));
    assert_metric(
        &ms,
        "sequential_read.read.bw",
        129_836.0 * 1024.0,
        "B/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        "sequential_read.read.iops",
        253.0,
        "IO/s",
        Better::Higher,
    );
    // clat in µs before fio 3.0: normalised to ns.
    assert_metric(
        &ms,
        "sequential_read.read.clat_mean",
        250_667.06 * 1000.0,
        "ns",
        Better::Lower,
    );
    assert_metric(
        &ms,
        "random_write_test.write.clat_p99",
        1_688_000.0,
        "ns",
        Better::Lower,
    );
    assert_metric(
        &ms,
        "random_write_test.write.clat_p99.9",
        3_216_000.0,
        "ns",
        Better::Lower,
    );
    // The directions without I/O are not figures.
    assert!(ms
        .iter()
        .all(|m| !m.name.starts_with("sequential_read.write")));
    assert!(ms.iter().all(|m| !m.name.contains(".trim.")));
}

#[test]
fn fio_2_17() {
    let ms = fio::parse(&fixture("fio/fio-2.17-pkb-gce.json")).unwrap();
    let r = "rand_16k_read_100%-io-depth-1-num-jobs-2.read";
    assert_metric(
        &ms,
        &format!("{r}.bw"),
        129_386.0 * 1024.0,
        "B/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        &format!("{r}.iops"),
        8_086.673_998,
        "IO/s",
        Better::Higher,
    );
    assert_metric(&ms, &format!("{r}.clat_p50"), 96_000.0, "ns", Better::Lower);
    let w = "rand_16k_write_100%-io-depth-1-num-jobs-2.write";
    assert_metric(
        &ms,
        &format!("{w}.iops"),
        2_457.017_193,
        "IO/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        &format!("{w}.clat_mean"),
        800_193.694,
        "ns",
        Better::Lower,
    );
}

#[test]
fn fio_3_1_ns_layout_without_bw_bytes() {
    let ms = fio::parse(&fixture("fio/fio-3.1-floppy-randread.json")).unwrap();
    assert_eq!(ms.len(), 7, "{:?}", names(&ms));
    assert_metric(&ms, "iotest.read.bw", 10.0 * 1024.0, "B/s", Better::Higher);
    assert_metric(&ms, "iotest.read.iops", 2.657_297, "IO/s", Better::Higher);
    assert_metric(
        &ms,
        "iotest.read.clat_mean",
        376_086_538.913_889,
        "ns",
        Better::Lower,
    );
    assert_metric(
        &ms,
        "iotest.read.clat_p95",
        574_619_648.0,
        "ns",
        Better::Lower,
    );

    let ms = fio::parse(&fixture("fio/fio-3.1-s4610-randwrite.json")).unwrap();
    assert_metric(
        &ms,
        "random-read.write.iops",
        47_219.026_032,
        "IO/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        "random-read.write.clat_p99",
        432_128.0,
        "ns",
        Better::Lower,
    );
}

#[test]
fn fio_3_16_and_3_33_bw_bytes_both_directions() {
    let ms = fio::parse(&fixture("fio/fio-3.16-highpoint-randrw.json")).unwrap();
    assert_eq!(ms.len(), 14, "{:?}", names(&ms));
    // bw_bytes (bytes/s) wins over bw (KiB/s, rounded).
    assert_metric(&ms, "iotest.read.bw", 481_257.0, "B/s", Better::Higher);
    assert_metric(&ms, "iotest.write.bw", 472_547.0, "B/s", Better::Higher);
    assert_metric(
        &ms,
        "iotest.write.iops",
        115.368_001,
        "IO/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        "iotest.read.clat_p99.9",
        1_484_783_616.0,
        "ns",
        Better::Lower,
    );

    let ms = fio::parse(&fixture("fio/fio-3.33-randrw.json")).unwrap();
    assert_metric(&ms, "randrw.read.bw", 35_751_000.0, "B/s", Better::Higher);
    assert_metric(&ms, "randrw.write.clat_p50", 2_320.0, "ns", Better::Lower);
    let ms = fio::parse(&fixture("fio/fio-3.33-seqread.json")).unwrap();
    assert_metric(
        &ms,
        "seqread.read.bw",
        1_677_002_501.0,
        "B/s",
        Better::Higher,
    );
}

#[test]
fn fio_job_error_fails_the_parse() {
    let e = fio::parse(&fixture("fio/fio-3.33-write-error.json")).unwrap_err();
    assert!(matches!(e, ParseError::ToolFailed { .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "fio reported a failure: job `badwrite` ended with error 1"
    );
}

#[test]
fn fio_jobs_of_one_name_are_told_apart() {
    // Two jobs named alike (numjobs=2 without group_reporting): built from
    // the real 3.33 report by repeating its job.
    let text = fixture("fio/fio-3.33-randrw.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let job = v["jobs"][0].clone();
    v["jobs"].as_array_mut().unwrap().push(job);
    let ms = fio::parse(&v.to_string()).unwrap();
    assert!(ms.iter().any(|m| m.name == "randrw#1.read.bw"));
    assert!(ms.iter().any(|m| m.name == "randrw#2.read.bw"));
    assert!(ms.iter().all(|m| !m.name.starts_with("randrw.")));
}

#[test]
fn fio_notes_before_the_report_are_skipped() {
    // fio prints some notes on stdout ahead of the JSON (this one is its
    // text for a synchronous engine with iodepth > 1).
    let text = format!(
        "note: both iodepth >= 1 and synchronous I/O engine are selected, queue depth will be capped at 1\n{}",
        fixture("fio/fio-3.33-randrw.json")
    );
    let ms = fio::parse(&text).unwrap();
    assert_metric(&ms, "randrw.read.bw", 35_751_000.0, "B/s", Better::Higher);
}

#[test]
fn fio_refuses_what_is_not_its_report() {
    assert!(matches!(fio::parse("{"), Err(ParseError::Json(_))));
    let e = fio::parse(&fixture("iperf3/iperf3-3.12-tcp-loopback.json")).unwrap_err();
    assert!(e.to_string().contains("no `jobs` array"), "{e}");
}

// ---- iperf3 ----------------------------------------------------------------

#[test]
fn iperf3_tcp_all_versions() {
    let ms = iperf3::parse(&fixture("iperf3/iperf3-3.0.11-tcp.json")).unwrap();
    assert_eq!(ms.len(), 3, "{:?}", names(&ms));
    assert_metric(
        &ms,
        "sent.bits_per_second",
        935_992_000.0,
        "bit/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        "received.bits_per_second",
        934_268_000.0,
        "bit/s",
        Better::Higher,
    );
    assert_metric(&ms, "sent.retransmits", 0.0, "count", Better::Lower);

    let ms = iperf3::parse(&fixture("iperf3/iperf3-3.6-tcp-4streams.json")).unwrap();
    assert_metric(
        &ms,
        "sent.bits_per_second",
        17_544_772_693.368_183,
        "bit/s",
        Better::Higher,
    );
    assert_metric(&ms, "sent.retransmits", 2.0, "count", Better::Lower);

    let ms = iperf3::parse(&fixture("iperf3/iperf3-3.12-tcp-loopback.json")).unwrap();
    assert_eq!(
        names(&ms),
        [
            "sent.bits_per_second",
            "received.bits_per_second",
            "sent.retransmits"
        ]
    );
    assert!(get(&ms, "received.bits_per_second").value > 1e9);
}

#[test]
fn iperf3_udp_loss_and_jitter() {
    let ms = iperf3::parse(&fixture("iperf3/iperf3-3.12-udp-loopback.json")).unwrap();
    assert_metric(
        &ms,
        "lost_percent",
        0.262_123_197_903_014_4,
        "%",
        Better::Lower,
    );
    assert_metric(
        &ms,
        "jitter",
        0.003_459_092_374_869_372_5,
        "ms",
        Better::Lower,
    );
    assert_eq!(get(&ms, "sent.bits_per_second").unit, "bit/s");
    assert!(
        ms.iter().all(|m| m.name != "sent.retransmits"),
        "UDP has none"
    );
}

#[test]
fn iperf3_error_fails_the_parse() {
    let e = iperf3::parse(&fixture("iperf3/iperf3-3.12-refused.json")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "iperf3 reported a failure: unable to connect to server: Connection refused"
    );
}

// ---- stress-ng -------------------------------------------------------------

#[test]
fn stress_ng_metrics_brief_old_release() {
    let ms = stressng::parse_text(&fixture("stress-ng/pkb-context-metrics-brief.txt")).unwrap();
    assert_eq!(ms.len(), 2, "{:?}", names(&ms));
    assert_metric(
        &ms,
        "context.bogo_ops_per_sec_real",
        4485.82,
        "bogo-ops/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        "context.bogo_ops_per_sec_usr_sys",
        2249.65,
        "bogo-ops/s",
        Better::Higher,
    );
}

#[test]
fn stress_ng_metrics_table_with_cpu_and_rss_columns() {
    let ms = stressng::parse_text(&fixture("stress-ng/stress-ng-cpu-metrics.stdout")).unwrap();
    assert_eq!(ms.len(), 2, "{:?}", names(&ms));
    assert_metric(
        &ms,
        "cpu.bogo_ops_per_sec_real",
        1671.90,
        "bogo-ops/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        "cpu.bogo_ops_per_sec_usr_sys",
        3703.50,
        "bogo-ops/s",
        Better::Higher,
    );
}

#[test]
fn stress_ng_yaml() {
    let ms = stressng::parse_yaml(&fixture("stress-ng/stress-ng-cpu-metrics.yaml")).unwrap();
    assert_eq!(ms.len(), 2, "{:?}", names(&ms));
    assert_metric(
        &ms,
        "cpu.bogo_ops_per_sec_real",
        1_671.895_182,
        "bogo-ops/s",
        Better::Higher,
    );
    assert_metric(
        &ms,
        "cpu.bogo_ops_per_sec_usr_sys",
        3_703.504_476,
        "bogo-ops/s",
        Better::Higher,
    );
}

#[test]
fn stress_ng_text_and_yaml_of_one_run_agree() {
    let mut text =
        stressng::parse_text(&fixture("stress-ng/stress-ng-matrix-vm-brief.stdout")).unwrap();
    let mut yaml =
        stressng::parse_yaml(&fixture("stress-ng/stress-ng-matrix-vm-brief.yaml")).unwrap();
    text.sort_by(|a, b| a.name.cmp(&b.name));
    yaml.sort_by(|a, b| a.name.cmp(&b.name));
    // matrix: 2 bogo rates + 14 per-method rates; vm: 2 bogo rates.
    assert_eq!(yaml.len(), 18, "{:?}", names(&yaml));
    assert_eq!(names(&text), names(&yaml));
    for (t, y) in text.iter().zip(&yaml) {
        assert_eq!((&t.unit, t.better), (&y.unit, y.better), "{}", t.name);
        // The console rounds to two decimals.
        assert!(
            (t.value - y.value).abs() <= 0.006,
            "{}: {} vs {}",
            t.name,
            t.value,
            y.value
        );
    }
    assert_metric(
        &yaml,
        "vm.bogo_ops_per_sec_real",
        7_814.023_821,
        "bogo-ops/s",
        Better::Higher,
    );
    assert_metric(
        &yaml,
        "matrix.add-matrix-ops-per-sec",
        21_360.531_133,
        "ops/s",
        Better::Higher,
    );
}

#[test]
fn stress_ng_refuses_output_without_metrics() {
    let e = stressng::parse_text("stress-ng: info:  [1] dispatching hogs: 1 cpu\n").unwrap_err();
    assert!(matches!(e, ParseError::NoMetrics { .. }));
    let e = stressng::parse_yaml(&fixture("stress-ng/pkb-context-metrics-brief.txt")).unwrap_err();
    assert!(matches!(e, ParseError::NoMetrics { .. }));
}
