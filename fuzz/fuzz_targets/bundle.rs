//! A signed result bundle (`bundle.tar`) as `certlab bundle verify` reads
//! it: the streamed two-pass verification, and member extraction.
#![no_main]
use std::io::Cursor;

use certlab_reports::{read_bundle_member, verify_bundle_reader, Trust, VerifyLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits so that sizes claimed by a header are refused, not read.
    let limits = VerifyLimits {
        max_bundle_bytes: 1 << 20,
        max_member_bytes: 1 << 20,
        max_members: 1024,
        max_manifest_bytes: 1 << 20,
    };
    let _ = verify_bundle_reader(Cursor::new(data), Trust::AnyKey, &limits);
    let _ = read_bundle_member(data, "manifest.json");
    let _ = read_bundle_member(data, "results.json");
});
