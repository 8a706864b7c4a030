//! A kernel's `modules.alias`, parsed alone and then identified as the only fact a machine gave.
#![no_main]
use certlab_hwdb::{identify, Fact, Inventory, PciIds};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Dumps are read as identification reads them: lossy UTF-8.
    let text = String::from_utf8_lossy(data);
    let aliases = certlab_hwdb::ModulesAlias::parse(&text);
    // Look up keys spelled by the fuzzer too: the first line is a modalias.
    if let Some(first) = text.lines().next() {
        let _ = aliases.modules_for(first);
    }
    let _ = aliases.modules_for("pci:v00008086d00001572sv00008086sd00000000bc02sc00i00");
    let inv = Inventory {
        modules_alias: Some(Fact::new(
            "/lib/modules/fuzz/modules.alias",
            text.into_owned(),
        )),
        ..Inventory::default()
    };
    let _ = identify(&inv, PciIds::embedded());
});
