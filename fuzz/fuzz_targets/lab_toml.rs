//! A lab inventory (`lab.toml`): machines, SSH and BMC endpoints, secrets.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match certlab_lab::Lab::parse(text, "fuzz/lab.toml") {
        Ok(lab) => {
            for m in &lab.machines {
                if let Ok(b) = m.bmc() {
                    let _ = b.exposure_warnings();
                }
                let _ = m.ssh();
            }
        }
        Err(e) => {
            let _ = e.problems();
            let _ = e.to_string();
        }
    }
});
