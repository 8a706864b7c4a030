//! `/proc/cpuinfo` of any architecture, parsed alone and then identified as the only fact a machine gave.
#![no_main]
use certlab_hwdb::{identify, Fact, Inventory, PciIds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Dumps are read as identification reads them: lossy UTF-8.
    let text = String::from_utf8_lossy(data);
    let _ = certlab_hwdb::CpuInfo::parse(&text);
    let inv = Inventory {
        cpuinfo: Some(Fact::new("/proc/cpuinfo", text.into_owned())),
        ..Inventory::default()
    };
    let _ = identify(&inv, PciIds::embedded());
});
