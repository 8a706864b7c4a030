//! Redfish JSON as a BMC (or a recorded tree) serves it: power state, log services and entries, sensors (Thermal/Power and the
//! Sensors collection), error bodies.
#![no_main]
use certlab_lab::bmc::redfish::decode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = decode::error_message(text);
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let _ = decode::power_state(&v);
    let _ = decode::log_entry(&v);
    let _ = decode::sensors_from_thermal(&v);
    let _ = decode::sensors_from_power(&v);
    let _ = decode::sensor(&v);
    if let Some(members) = v.get("Members").and_then(|m| m.as_array()) {
        let _ = decode::pick_sel(members);
        for m in members {
            let _ = decode::log_entry(m);
            let _ = decode::sensor(m);
        }
    }
});
