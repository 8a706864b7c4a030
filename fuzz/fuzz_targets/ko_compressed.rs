//! A compressed kernel module (`.ko.gz`, `.ko.xz`, `.ko.zst`): the
//! decoders, then the ELF reader on what they produce.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certlab_kabi::compress::decompress(data, "fuzz.ko.x");
    if let Ok(m) = certlab_kabi::Module::parse(data, "fuzz.ko.x") {
        let _ = m.gpl_compatible();
    }
});
