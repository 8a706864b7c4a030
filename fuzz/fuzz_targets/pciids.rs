//! A `pci.ids` database (the system's, which may be newer than ours).
#![no_main]
use certlab_hwdb::PciIds;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(ids) = PciIds::parse(&text) else {
        return;
    };
    for (v, name) in ids.vendors().take(64) {
        let _ = ids.vendor_by_name(name);
        let _ = ids.vendor_prefix_of(name);
        for (d, dname) in ids.devices_of(v).take(64) {
            let _ = ids.device_name(v, d);
            let _ = ids.device_by_name(v, dname);
        }
    }
    let _ = PciIds::newer_of(&text, PciIds::embedded());
});
