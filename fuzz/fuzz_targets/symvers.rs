//! `Module.symvers` in any of its layouts, gzip'ed or not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = certlab_kabi::Symvers::parse_bytes(data, "fuzz/Module.symvers") {
        // What was parsed prints and parses back to the same rows.
        let text = s.to_text();
        let again = certlab_kabi::Symvers::parse(&text, "fuzz/again");
        assert!(again.is_ok(), "to_text output does not parse: {again:?}");
        for e in s.exports() {
            let _ = s.get(e.name);
            let _ = e.module_name();
        }
    }
});
