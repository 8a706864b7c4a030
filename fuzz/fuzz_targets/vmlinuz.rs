//! A kernel image (bzImage, arm64 Image(.gz), EFI zboot, …): unpacking,
//! then the exports and BTF of the vmlinux inside.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = certlab_kabi::vmlinuz::looks_like_image(data);
    if let Ok(v) = certlab_kabi::vmlinuz::unpack(data, "fuzz/vmlinuz") {
        let _ = certlab_kabi::vmlinuz::exports(&v.data, "fuzz/vmlinux");
        let _ = certlab_kabi::vmlinuz::btf_section(&v.data, "fuzz/vmlinux");
    }
    let _ = certlab_kabi::vmlinuz::exports(data, "fuzz/vmlinux");
    let _ = certlab_kabi::vmlinuz::symvers_from_image(data, "fuzz/vmlinuz");
});
