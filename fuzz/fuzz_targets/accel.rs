//! Accelerator tools' outputs (`nvidia-smi -q -x`, `nvidia-smi -q`,
//! `rocm-smi --json`, `hy-smi`, `npu-smi info`): every parser on every input,
//! and every bus id it gives must be canonical.
#![no_main]
use certlab_hwdb::accel::{self, Tool};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for tool in Tool::ALL {
        if let Ok(devs) = accel::parse(tool, &text) {
            for d in devs {
                if let Some(b) = &d.bus_id {
                    assert_eq!(accel::canonical_bus_id(b).as_ref(), Some(b));
                }
            }
        }
    }
    let _ = accel::canonical_bus_id(&text);
});
