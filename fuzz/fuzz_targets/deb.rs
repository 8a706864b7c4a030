//! A Debian kernel package (`ar` archive, compressed `data.tar`) read as
//! `kabi check --kernel PKG.deb` reads it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certlab_kabi::Kernel::from_file_bytes(data, "fuzz.deb");
});
