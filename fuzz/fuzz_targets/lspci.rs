//! `lspci` output (`-nn -k`, `-vmm`) and `/proc/bus/pci/devices`, parsed alone and then identified as the only fact a machine gave.
#![no_main]
use certlab_hwdb::{identify, Fact, Inventory, PciIds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Dumps are read as identification reads them: lossy UTF-8.
    let text = String::from_utf8_lossy(data);
    let _ = certlab_hwdb::lspci::parse_proc_bus_pci_devices(&text);
    for d in certlab_hwdb::lspci::parse_lspci(&text) {
        for l in [&d.link_cap, &d.link_sta].into_iter().flatten() {
            if let Some(s) = &l.speed {
                let _ = certlab_hwdb::normalize_link_speed(s);
            }
        }
    }
    let inv = Inventory {
        lspci: Some(Fact::new("lspci -nn -k", text.into_owned())),
        ..Inventory::default()
    };
    let _ = identify(&inv, PciIds::embedded());
});
