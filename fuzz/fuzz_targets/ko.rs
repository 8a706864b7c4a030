//! A kernel module's ELF (ELF32/64, either byte order), uncompressed.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = certlab_kabi::Module::parse(data, "fuzz.ko") {
        let _ = m.gpl_compatible();
        let _ = m.modinfo.depends();
        let _ = m.modinfo.import_ns().count();
        for i in m.imports() {
            let _ = m.version_of(i.name);
        }
    }
    let _ = certlab_kabi::module::btf_section(data, "fuzz.ko");
});
