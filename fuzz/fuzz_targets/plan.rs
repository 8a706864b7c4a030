//! A certification plan file (TOML): cases, checks, applicability rules.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(plan) = certlab_suites::Plan::parse("fuzz/plan.toml", text) {
        let profile = certlab_hwdb::HardwareProfile::default();
        let inv = certlab_hwdb::Inventory::default();
        let _ = plan.select(&profile, &inv);
    }
});
