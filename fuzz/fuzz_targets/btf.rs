//! BTF type information (a vmlinux's `.BTF`, or a module's split BTF),
//! and the type walk `kabi explain` does over two of them.
#![no_main]
use certlab_kabi::btf::{Btf, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(b) = Btf::parse(data, "fuzz.btf") else {
        // Maybe a base followed by split BTF: the first byte says where.
        if let Some((&cut, rest)) = data.split_first() {
            let at = rest.len() * usize::from(cut) / 256;
            if let Ok(base) = Btf::parse(&rest[..at], "fuzz-base.btf") {
                let _ = Btf::parse_split(&rest[at..], &base, "fuzz-split.btf");
            }
        }
        return;
    };
    let mut funcs = Vec::new();
    for (id, t) in b.types().take(4096) {
        let _ = b.resolve(id);
        let _ = certlab_kabi::explain::spell(&b, id, 0);
        if matches!(t.kind, Kind::Func { .. }) {
            funcs.push(b.name_of(id).to_string());
        }
    }
    let diff = certlab_kabi::explain::TypeDiff::new(&b, &b);
    for f in funcs.iter().take(64) {
        let _ = diff.explain(f);
    }
});
