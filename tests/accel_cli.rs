//! End-to-end tests of `certlab hwdb accel`: the real binary on real tool
//! outputs (hwdb/tests/fixtures/accel, provenance in
//! hwdb/tests/fixtures/PROVENANCE.tsv) and on this machine.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(rel: &str) -> String {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "hwdb/tests/fixtures/accel", rel]
        .iter()
        .collect();
    assert!(
        p.is_file(),
        "{} missing (see hwdb/tests/fixtures/PROVENANCE.tsv)",
        p.display()
    );
    p.to_str().unwrap().to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(args)
        .output()
        .expect("run certlab")
}

fn json(args: &[&str]) -> Value {
    let out = run(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn the_a10_text_log_gives_its_remapped_rows_and_nulls_for_what_it_lacks() {
    let f = fixture("nvidia-smi-q/gpud-nvidia-smi-query.535.129.03.out.0.valid.a10.txt");
    let v = json(&["hwdb", "accel", "--nvidia-smi-q", &f, "--format", "json"]);
    let d = &v["devices"].as_array().unwrap()[0];
    assert_eq!(d["vendor"], "NVIDIA");
    assert_eq!(d["model"], "NVIDIA A10");
    assert_eq!(d["bus_id"], "0000:07:00.0");
    assert_eq!(d["serial"], "1324521052681");
    assert_eq!(d["driver_version"], "535.129.03");
    assert_eq!(d["vbios"], "94.02.5C.00.04");
    assert_eq!(d["memory_total_mib"], 23028);
    assert_eq!(d["ecc_mode"], "enabled");
    assert_eq!(d["ecc"]["volatile"]["uncorrected"], 0);
    assert_eq!(d["remapped_rows"]["correctable"], 0);
    assert_eq!(d["remapped_rows"]["uncorrectable"], 4);
    assert_eq!(d["remapped_rows"]["pending"], true);
    assert_eq!(d["remapped_rows"]["failure"], false);
    // "Single Bit ECC : N/A": null, not 0.
    assert!(d["retired_pages"]["single_bit"].is_null());
    assert!(d["retired_pages"]["pending"].is_null());
    assert_eq!(d["pcie"]["gen_max"], 4);
    assert_eq!(d["temperature_c"], 33.0);
    assert_eq!(d["power_w"], 43.89);
}

#[test]
fn the_xml_log_gives_every_field_of_the_contract() {
    let f = fixture("nvidia-smi-xml/telegraf-a10g.xml");
    let v = json(&["hwdb", "accel", "--nvidia-smi-xml", &f, "--format", "json"]);
    let d = &v["devices"][0];
    for k in [
        "vendor",
        "model",
        "bus_id",
        "serial",
        "driver_version",
        "vbios",
        "memory_total_mib",
        "ecc_mode",
        "ecc",
        "retired_pages",
        "remapped_rows",
        "pcie",
        "temperature_c",
        "power_w",
    ] {
        assert!(d.get(k).is_some(), "no {k} in {d}");
    }
    // nvidia-smi's 8-digit domain and upper-case hex, made canonical.
    assert_eq!(d["bus_id"], "0000:00:1e.0");
    assert_eq!(d["pcie"]["width_current"], 8);
    assert_eq!(d["pcie"]["width_max"], 16);
    assert!(d["retired_pages"]["double_bit"].is_null());
    assert!(
        v.get("absent").is_none(),
        "a file run says nothing of local tools"
    );
}

#[test]
fn every_other_format_reads() {
    let v = json(&[
        "hwdb",
        "accel",
        "--rocm-smi-json",
        &fixture("rocm-smi-json/telegraf-mi100_rocm571.json"),
        "--format",
        "json",
    ]);
    assert_eq!(v["devices"].as_array().unwrap().len(), 6);
    assert_eq!(v["devices"][5]["bus_id"], "0000:49:00.0");
    assert!(v["devices"][0]["ecc"]["volatile"]["uncorrected"].is_null());
    let v = json(&[
        "hwdb",
        "accel",
        "--hy-smi",
        &fixture("hy-smi/paddlenlp-hy-smi.K100_AI.txt"),
        "--format",
        "json",
    ]);
    assert_eq!(v["devices"].as_array().unwrap().len(), 4);
    assert_eq!(v["devices"][2]["temperature_c"], 53.0);
    let v = json(&[
        "hwdb",
        "accel",
        "--npu-smi",
        &fixture("npu-smi/nputop-npusmi_nohbm.npu-smi-info.txt"),
        "--format",
        "json",
    ]);
    assert_eq!(v["devices"][0]["health"], "Alarm");
    assert!(v["devices"][0]["bus_id"].is_null());
}

#[test]
fn human_output_is_a_table() {
    let f = fixture("nvidia-smi-q/gpud-nvidia-smi-query.535.161.08.out.0.valid.txt");
    let out = run(&["hwdb", "accel", "--nvidia-smi-q", &f]);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.starts_with("8 accelerators\n"), "{s}");
    assert!(s.contains("0000:19:00.0"), "{s}");
    assert!(s.contains("NVIDIA H100 80GB HBM3"), "{s}");
}

#[test]
fn bad_inputs_are_named_with_a_distinct_exit_code() {
    let out = run(&["hwdb", "accel", "--nvidia-smi-xml", "/nonexistent/x.xml"]);
    assert_eq!(out.status.code(), Some(3));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("/nonexistent/x.xml"), "{e}");
    // A JSON file given as nvidia-smi XML: the file and the format named.
    let f = fixture("rocm-smi-json/telegraf-vega-10-XT.json");
    let out = run(&["hwdb", "accel", "--nvidia-smi-xml", &f]);
    assert_eq!(out.status.code(), Some(3));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains(&f) && e.contains("nvidia-smi -q -x"), "{e}");
    // One input at a time.
    let out = run(&["hwdb", "accel", "--hy-smi", &f, "--npu-smi", &f]);
    assert_eq!(out.status.code(), Some(2));
}

/// With no file, each tool installed here runs; the others are named absent.
#[test]
fn this_machine_says_which_tools_are_absent() {
    let v = json(&["hwdb", "accel", "--format", "json"]);
    let absent: Vec<&str> = v["absent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for tool in ["nvidia-smi", "rocm-smi", "hy-smi", "npu-smi"] {
        let here = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap()
            .status
            .success();
        assert_eq!(
            !here,
            absent.contains(&tool),
            "{tool}: installed {here}, absent list {absent:?}"
        );
    }
    assert!(v["devices"].is_array());
    let out = run(&["hwdb", "accel"]);
    assert_eq!(out.status.code(), Some(0));
}

/// The local path with a tool on PATH: a stand-in `nvidia-smi` that prints
/// a real `nvidia-smi -q -x` output (this machine has no NVIDIA GPU), then
/// one that prints garbage (exit 2, the command named).
#[test]
fn a_tool_on_path_is_run_and_its_output_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let tool = dir.path().join("nvidia-smi");
    let xml = fixture("nvidia-smi-xml/netdata-tesla-p100.xml");
    std::fs::write(
        &tool,
        format!("#!/bin/sh\n[ \"$1 $2\" = \"-q -x\" ] || exit 7\nexec cat '{xml}'\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(["hwdb", "accel", "--format", "json"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!v["absent"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "nvidia-smi"));
    assert_eq!(v["devices"][0]["model"], "Tesla P100-PCIE-16GB");
    assert_eq!(v["devices"][0]["ecc"]["aggregate"]["corrected"], 3);
    std::fs::write(&tool, "#!/bin/sh\necho 'not xml at all'\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(["hwdb", "accel"])
        .env("PATH", &path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nvidia-smi -q -x"));
}

/// `certify --local --plan gpu-cert` on this machine: every case passes,
/// or is skipped with its reason (selection skips carry none, run verdicts
/// carry evidence); without an accelerator here, all six are skips.
#[test]
fn gpu_cert_on_this_machine_passes_or_skips_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    let out = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args([
            "certify",
            "--local",
            "--plan",
            "gpu-cert",
            "--out",
            out_dir.to_str().unwrap(),
            "--db",
            &db,
            "--format",
            "json",
        ])
        .env("CERTLAB_DATA_DIR", dir.path().join("data"))
        .env_remove("CERTLAB_DB")
        .env_remove("CERTLAB_KEY")
        .env_remove("CERTLAB_PLAN")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let cases = v["cases"].as_array().unwrap();
    let ids: Vec<&str> = cases.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "gpu.ecc",
            "gpu.memory-retirement",
            "gpu.pcie-link",
            "gpu.xid",
            "gpu.dcgm-diag",
            "gpu.burn"
        ]
    );
    for c in cases {
        let verdict = c["verdict"].as_str().unwrap();
        assert!(["pass", "skip"].contains(&verdict), "{c}");
        assert!(!c["reason"].as_str().unwrap().is_empty(), "{c}");
    }
    let accel_here = std::fs::read_dir("/sys/bus/pci/devices")
        .map(|d| {
            d.flatten().any(|e| {
                let v = std::fs::read_to_string(e.path().join("vendor")).unwrap_or_default();
                let c = std::fs::read_to_string(e.path().join("class")).unwrap_or_default();
                ["0x10de", "0x1002", "0x1d94", "0x19e5"].contains(&v.trim())
                    && (c.starts_with("0x03") || c.starts_with("0x12") || c.starts_with("0x0b40"))
            })
        })
        .unwrap_or(false);
    if !accel_here {
        assert!(cases.iter().all(|c| c["verdict"] == "skip"));
        assert_eq!(out.status.code(), Some(0));
    }
}
