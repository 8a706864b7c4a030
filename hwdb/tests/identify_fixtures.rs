//! Data-driven identification of every real machine in `tests/fixtures/machines`
//! against `tests/fixtures/expected.tsv` (machine, index_family, family,
//! vendor, core, model, note).

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::collections::BTreeMap;

use certlab_hwdb::{identify, Family, PciIds};

struct Row {
    index_family: String,
    family: String,
    vendor: String,
    core: String,
    model: String,
    note: String,
}

fn expected() -> BTreeMap<String, Row> {
    let text =
        std::fs::read_to_string(common::fixtures().join("expected.tsv")).expect("expected.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            let g = |i: usize| c.get(i).copied().unwrap_or("").to_string();
            (
                g(0),
                Row {
                    index_family: g(1),
                    family: g(2),
                    vendor: g(3),
                    core: g(4),
                    model: g(5),
                    note: g(6),
                },
            )
        })
        .collect()
}

fn actual_row(dir: &std::path::Path) -> (String, String, String, String) {
    let inv = common::load_inventory(dir);
    let p = identify(&inv, PciIds::embedded());
    (
        p.cpu.family.as_str().to_string(),
        p.cpu.vendor.clone(),
        p.cpu.core.clone().unwrap_or_default(),
        p.cpu.model_name.clone(),
    )
}

#[test]
fn every_fixture_machine_is_identified_as_expected() {
    let exp = expected();
    let mut failures = Vec::new();
    let mut table = String::from("machine\tfamily\tvendor\tcore\tmodel\n");
    for dir in common::machine_dirs() {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (family, vendor, core, model) = actual_row(&dir);
        table.push_str(&format!("{name}\t{family}\t{vendor}\t{core}\t{model}\n"));
        match exp.get(&name) {
            None => failures.push(format!("{name}: no row in expected.tsv")),
            Some(r) => {
                let got = (&family, &vendor, &core, &model);
                let want = (&r.family, &r.vendor, &r.core, &r.model);
                if got != want {
                    failures.push(format!("{name}: got {got:?}, want {want:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nactual:\n{table}",
        failures.join("\n")
    );
    assert_eq!(
        exp.len(),
        common::machine_dirs().len(),
        "expected.tsv has rows without fixtures"
    );
}

/// The data collector's family label must be what we identify, for every
/// label in our vocabulary, unless expected.tsv documents why the dump
/// lacks the evidence (note column starts with `evidence:`).
#[test]
fn index_families_in_vocabulary_are_honoured() {
    let vocab = [
        Family::Hygon,
        Family::Kunpeng,
        Family::Phytium,
        Family::Loongson,
        Family::Riscv,
        Family::Intel,
        Family::Amd,
        Family::Zhaoxin,
        Family::Ampere,
        Family::NvidiaGrace,
        Family::ArmOther,
        Family::Power,
        Family::S390,
    ];
    let server = [
        "hygon",
        "kunpeng",
        "phytium",
        "loongson",
        "ampere",
        "nvidia-grace",
        "amd",
        "intel",
        "zhaoxin",
    ];
    for (m, r) in expected() {
        let in_vocab = vocab.iter().any(|f| f.as_str() == r.index_family);
        if in_vocab {
            if r.family != r.index_family {
                assert!(
                    r.note.starts_with("evidence:"),
                    "{m}: index says {}, expected.tsv says {} without an evidence note",
                    r.index_family,
                    r.family
                );
            }
        } else {
            // Negatives (kirin laptops, sparc, Ascend SoC, x86 VMs): never a
            // server family other than the CPU vendor's own.
            if server.contains(&r.family.as_str()) {
                assert!(
                    r.note.starts_with("negative:"),
                    "{m}: {} identified as {}",
                    r.index_family,
                    r.family
                );
            }
        }
    }
}
