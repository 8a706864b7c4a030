//! A compressed kernel module (`.ko.gz`, `.ko.xz`, `.ko.zst`): the
//! decoders, then the ELF reader on what they produce.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // 64 MiB out: a bomb is refused (Error::TooLarge) without exhausting
    // the fuzzer's memory limit.
    let _ = certlab_kabi::compress::decompress(
        data,
        "fuzz.ko.x",
        certlab_kabi::compress::Bounded::Module,
        64 << 20,
    );
    if let Ok(m) = certlab_kabi::Module::parse(data, "fuzz.ko.x") {
        let _ = m.gpl_compatible();
    }
});
