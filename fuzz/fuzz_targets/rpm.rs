//! An RPM package: lead, signature and main headers, the compressed cpio
//! payload, its members and the tar stream `kabi` makes of them.
#![no_main]
use std::io::Read;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if !certlab_kabi::rpm::is_rpm(data) {
        return;
    }
    let _ = certlab_kabi::rpm::members(data, "fuzz.rpm", &|_| true);
    if let Ok(mut r) = certlab_kabi::rpm::tar_stream(data, "fuzz.rpm") {
        let mut sink = Vec::new();
        let _ = r.by_ref().take(64 << 20).read_to_end(&mut sink);
    }
    let _ = certlab_kabi::Kernel::from_file_bytes(data, "fuzz.rpm");
});
