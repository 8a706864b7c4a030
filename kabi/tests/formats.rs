//! Input formats: gzip'ed symvers, kernels from directories, and parsers
//! that never panic on truncated or corrupt input.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::io::Write;

use certlab_kabi::{Allowlist, Kernel, ListFormat, Symvers};

const SYMVERS: &str = "0x9060323f\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n0x11111111\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n0x33333333\tns_thing\tdrivers/dma-buf/x\tEXPORT_SYMBOL_GPL\tDMA_BUF\n";

fn xorshift(state: &mut u32) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 17;
    *state ^= *state << 5;
    *state
}

#[test]
fn gzipped_symvers_as_boot_ships_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("symvers-6.1.0-56-amd64.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(SYMVERS.as_bytes()).unwrap();
    std::fs::write(&p, gz.finish().unwrap()).unwrap();
    let k = Kernel::load(&[&p]).unwrap();
    assert_eq!(k.symvers.len(), 3);
    assert!(k.modversions());
    // The same found inside a directory.
    let k = Kernel::load(&[dir.path()]).unwrap();
    assert_eq!(k.symvers.len(), 3);
}

#[test]
fn kernel_without_symvers_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Kernel::load(&[dir.path()]).unwrap_err().to_string();
    assert!(e.contains("no Module.symvers"), "{e}");
    let e = Kernel::load(&[dir.path().join("absent")]).unwrap_err();
    assert!(!e.is_bad_input());
}

#[test]
fn corrupt_symvers_and_allowlists_never_panic() {
    let samples: Vec<(String, Option<ListFormat>)> = vec![
        (SYMVERS.to_string(), None),
        (
            "[rhel9_kabi_stablelist_x86_64]\n\tprintk\n\tkfree\n".into(),
            Some(ListFormat::Rhel),
        ),
        (
            "[abi_symbol_list]\n  printk\n".into(),
            Some(ListFormat::Android),
        ),
        (
            Allowlist::import(SYMVERS, ListFormat::Symvers, "s")
                .unwrap()
                .export(ListFormat::Json),
            Some(ListFormat::Json),
        ),
        (
            Allowlist::import(SYMVERS, ListFormat::Symvers, "s")
                .unwrap()
                .export(ListFormat::Toml),
            Some(ListFormat::Toml),
        ),
    ];
    let mut state = 0x9e37_79b9_u32;
    for (text, fmt) in &samples {
        let bytes = text.as_bytes();
        for i in 0..=bytes.len() {
            let cut = String::from_utf8_lossy(&bytes[..i]);
            match fmt {
                None => drop(Symvers::parse(&cut, "cut")),
                Some(f) => drop(Allowlist::import(&cut, *f, "cut")),
            }
        }
        for _ in 0..500 {
            let mut b = bytes.to_vec();
            for _ in 0..3 {
                let i = xorshift(&mut state) as usize % b.len();
                b[i] = (xorshift(&mut state) % 128) as u8;
            }
            let t = String::from_utf8_lossy(&b);
            let _ = Symvers::parse_bytes(&b, "fuzz");
            for f in [
                ListFormat::Rhel,
                ListFormat::Android,
                ListFormat::Json,
                ListFormat::Toml,
                ListFormat::Symvers,
            ] {
                let _ = Allowlist::import(&t, f, "fuzz");
            }
        }
    }
}

#[test]
fn every_list_format_round_trips_a_generated_list() {
    let base = Allowlist::import(SYMVERS, ListFormat::Symvers, "s").unwrap();
    for f in [ListFormat::Json, ListFormat::Toml, ListFormat::Symvers] {
        let back = Allowlist::import(&base.export(f), f, "x").unwrap();
        assert_eq!(back.export(f), base.export(f), "{f:?}");
        assert_eq!(back.symbols.len(), 3);
    }
    for f in [ListFormat::Rhel, ListFormat::OpenEuler, ListFormat::Android] {
        let text = base.export(f);
        let back = Allowlist::import(&text, f, "x").unwrap();
        assert_eq!(back.export(f), text, "{f:?}");
        let names: Vec<_> = back.symbols.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["module_layout", "ns_thing", "printk"]);
        assert_eq!(ListFormat::sniff("list", &text), f);
    }
}
