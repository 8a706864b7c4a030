//! Inputs the fuzz targets (`fuzz/`) found crashing, hanging or exhausting
//! memory, run through what their target does; each must now finish with a
//! bounded result. The files and their findings: `tests/fixtures/fuzz/`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

use std::path::Path;

use certlab_kabi::btf::{Btf, Kind};
use certlab_kabi::explain::{spell, TypeDiff};

fn input(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Timeout, then OOM: anonymous members whose types fan out.
#[test]
fn btf_anonymous_fanout_is_explained_in_bounded_space() {
    let b = Btf::parse(&input("btf-anonymous-fanout.btf"), "fanout.btf").unwrap();
    let mut funcs = Vec::new();
    let mut longest = 0;
    for (id, t) in b.types().take(4096) {
        longest = longest.max(spell(&b, id, 0).len());
        if matches!(t.kind, Kind::Func { .. }) {
            funcs.push(b.name_of(id).to_string());
        }
    }
    assert!(longest < 1 << 20, "a spelling of {longest} bytes");
    let diff = TypeDiff::new(&b, &b);
    for f in funcs.iter().take(64) {
        // The same blob on both sides: nothing changed.
        assert!(diff.explain(f).changed.is_empty(), "{f}");
    }
}
