//! The loader's rules, one at a time, on small synthetic modules of every
//! ELF class and endianness.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use certlab_kabi::check::WarningKind;
use certlab_kabi::{AllowedSymbol, Allowlist, Checker, Kernel, Module, ProblemKind, Symvers};
use common::elf::Spec;
use object::{Architecture, Endianness};

const MAGIC: &str = "6.1.0-56-amd64 SMP preempt mod_unload modversions ";
const SYMVERS: &str = "\
0x9060323f\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t
0x11111111\tprintk\tvmlinux\tEXPORT_SYMBOL\t
0x22222222\tgpl_thing\tvmlinux\tEXPORT_SYMBOL_GPL\t
0x33333333\tns_thing\tvmlinux\tEXPORT_SYMBOL_GPL\tDMA_BUF
0x44444444\tprivate_thing\tvmlinux\tEXPORT_SYMBOL_GPL\tmodule:kvm,kvm-intel
0x55555555\tmii_link_ok\tdrivers/net/mii\tEXPORT_SYMBOL\t
0x66666666\tphy_thing\tdrivers/net/vendor-phy\tEXPORT_SYMBOL\t
";

fn kernel() -> Kernel {
    let mut k = Kernel::from_symvers("test-kernel", Symvers::parse(SYMVERS, "symvers").unwrap());
    k.vermagic = Some(MAGIC.to_string());
    k
}

fn base(name: &str) -> Spec {
    let mut s = Spec::new(name, MAGIC);
    s.versions = Some(vec![("module_layout".into(), 0x9060_323f)]);
    s
}

fn check(spec: &Spec) -> certlab_kabi::ModuleReport {
    let k = kernel();
    let m = Module::parse(&spec.build(), "test.ko").unwrap();
    Checker::new(&k).check(&m)
}

fn kinds(r: &certlab_kabi::ModuleReport) -> Vec<(String, ProblemKind)> {
    r.problems
        .iter()
        .map(|p| (p.symbol.clone(), p.kind))
        .collect()
}

#[test]
fn clean_module_in_every_elf_flavour() {
    for (arch, endian) in [
        (Architecture::X86_64, Endianness::Little),
        (Architecture::I386, Endianness::Little),
        (Architecture::Aarch64, Endianness::Little),
        (Architecture::PowerPc64, Endianness::Big),
        (Architecture::PowerPc, Endianness::Big),
        (Architecture::Mips, Endianness::Big),
    ] {
        let mut s = base("good")
            .import("printk", 0x1111_1111)
            .import("mii_link_ok", 0x5555_5555);
        s.arch = arch;
        s.endian = endian;
        s.signed = true;
        let m = Module::parse(&s.build(), "good.ko").unwrap();
        assert_eq!(m.elf.big_endian, endian == Endianness::Big, "{arch:?}");
        assert!(m.signed);
        assert_eq!(m.version_of("printk"), Some(0x1111_1111), "{arch:?}");
        assert_eq!(m.imports().len(), 2, "{arch:?}");
        let r = Checker::new(&kernel()).check(&m);
        assert!(r.compatible, "{arch:?}: {:?}", r.problems);
    }
}

#[test]
fn missing_symbol_is_refused_weak_one_is_not() {
    let mut s = base("m").import("printk", 0x1111_1111);
    s.imports.push(("no_such_symbol".into(), false));
    s.imports.push(("weak_optional".into(), true));
    let r = check(&s);
    assert_eq!(
        kinds(&r),
        vec![("no_such_symbol".into(), ProblemKind::Missing)]
    );
    assert!(r
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::WeakUnresolved));
}

#[test]
fn crc_mismatch_and_module_layout() {
    let r = check(&base("m").import("printk", 0xdead_beef));
    assert_eq!(kinds(&r), vec![("printk".into(), ProblemKind::Crc)]);
    assert_eq!(r.problems[0].expected.as_deref(), Some("0x11111111"));
    assert_eq!(r.problems[0].found.as_deref(), Some("0xdeadbeef"));

    let mut s = base("m").import("printk", 0x1111_1111);
    s.versions.as_mut().unwrap()[0].1 = 0xbce1_a965;
    let r = check(&s);
    assert_eq!(kinds(&r), vec![("module_layout".into(), ProblemKind::Crc)]);
}

#[test]
fn missing_versions_entry_is_a_warning_not_a_refusal() {
    let mut s = base("m");
    s.imports.push(("printk".into(), false));
    let r = check(&s);
    assert!(r.compatible, "{:?}", r.problems);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::NoSymbolVersion && w.symbol == "printk"));
}

#[test]
fn extended_modversions_supply_long_names() {
    let long = "_RNvNtCs1234567890abcdef_6kernel5print11call_printk_with_a_very_long_rust_name";
    assert!(long.len() > 55);
    let symvers = format!("{SYMVERS}0x66666666\t{long}\tvmlinux\tEXPORT_SYMBOL_GPL\t\n");
    let mut k = Kernel::from_symvers("k", Symvers::parse(&symvers, "s").unwrap());
    k.vermagic = Some(MAGIC.into());
    let mut s = base("rust_mod");
    s.imports.push((long.into(), false));
    s.ext = vec![(long.into(), 0x6666_6666)];
    let m = Module::parse(&s.build(), "rust_mod.ko").unwrap();
    assert_eq!(m.version_of(long), Some(0x6666_6666));
    assert!(Checker::new(&k).check(&m).compatible);
    s.ext[0].1 = 1;
    let m = Module::parse(&s.build(), "rust_mod.ko").unwrap();
    assert_eq!(
        kinds(&Checker::new(&k).check(&m)),
        vec![(long.to_string(), ProblemKind::Crc)]
    );
}

#[test]
fn gpl_only_symbols_need_a_gpl_compatible_license() {
    let s = base("m").import("gpl_thing", 0x2222_2222);
    assert!(check(&s).compatible);
    assert!(check(&s.clone().modinfo("license=Dual MIT/GPL")).compatible);
    let r = check(&s.clone().modinfo("license=Proprietary"));
    assert_eq!(kinds(&r), vec![("gpl_thing".into(), ProblemKind::Gpl)]);
    let mut none = s;
    none.modinfo.retain(|e| !e.starts_with("license="));
    assert_eq!(
        kinds(&check(&none)),
        vec![("gpl_thing".into(), ProblemKind::Gpl)]
    );
}

#[test]
fn namespaces_and_module_restrictions() {
    let s = base("m").import("ns_thing", 0x3333_3333);
    let r = check(&s);
    assert_eq!(kinds(&r), vec![("ns_thing".into(), ProblemKind::Namespace)]);
    assert!(r.problems[0].fix.contains("MODULE_IMPORT_NS(DMA_BUF)"));
    assert!(check(&s.modinfo("import_ns=DMA_BUF")).compatible);

    let s = base("kvm_intel").import("private_thing", 0x4444_4444);
    assert!(
        check(&s).compatible,
        "kvm-intel is kvm_intel after mapping - to _"
    );
    let s = base("vendor").import("private_thing", 0x4444_4444);
    assert_eq!(
        kinds(&check(&s)),
        vec![("private_thing".into(), ProblemKind::Namespace)]
    );
}

#[test]
fn vermagic_release_may_differ_with_modversions_only() {
    let s = base("m").modinfo("vermagic=6.1.0-50-amd64 SMP preempt mod_unload modversions ");
    assert!(check(&s).compatible);
    let s = base("m").modinfo("vermagic=6.1.0-56-amd64 SMP mod_unload modversions ");
    assert_eq!(
        kinds(&check(&s)),
        vec![(String::new(), ProblemKind::Vermagic)]
    );
}

#[test]
fn modules_shipped_alongside_resolve_with_their_crcs() {
    let mut dep = base("vendor_core");
    dep.exports = vec![
        ("vendor_core_op".into(), false, 0x7777_7777, String::new()),
        ("vendor_private".into(), true, 0x8888_8888, "VENDOR".into()),
    ];
    let dep = Module::parse(&dep.build(), "vendor_core.ko").unwrap();
    assert_eq!(dep.exports.len(), 2);
    assert_eq!(dep.exports[1].namespace.as_deref(), Some("VENDOR"));
    assert_eq!(dep.exports[1].crc, Some(0x8888_8888));
    let user = base("vendor_net")
        .import("vendor_core_op", 0x7777_7777)
        .import("vendor_private", 0x8888_8888)
        .modinfo("import_ns=VENDOR");
    let user = Module::parse(&user.build(), "vendor_net.ko").unwrap();
    let k = kernel();
    assert_eq!(
        Checker::new(&k).check(&user).problems.len(),
        2,
        "unresolved without the dependency"
    );
    let deps = [dep];
    let r = Checker::new(&k).with_modules(&deps).check(&user);
    assert!(r.compatible, "{:?}", r.problems);

    // With an allowlist, only kernel symbols must be on it.
    let mut al = Allowlist::default();
    al.insert(AllowedSymbol::named("module_layout"));
    let user2 = base("vendor_net2")
        .import("vendor_core_op", 0x7777_7777)
        .import("printk", 0x1111_1111);
    let user2 = Module::parse(&user2.build(), "v.ko").unwrap();
    let r = Checker::new(&k)
        .with_modules(&deps)
        .with_allowlist(&al)
        .check(&user2);
    assert_eq!(kinds(&r), vec![("printk".into(), ProblemKind::Allowlist)]);
}

fn module(spec: &Spec, path: &str) -> Module {
    Module::parse(&spec.build(), path).unwrap()
}

#[test]
fn a_set_module_replaces_the_kernels_module_of_its_name() {
    let k = kernel();
    let user = module(
        &base("user")
            .import("phy_thing", 0x6666_6666)
            .import("mii_link_ok", 0x5555_5555),
        "user.ko",
    );
    // Against the kernel alone, both come from its modules.
    assert!(Checker::new(&k).check(&user).compatible);
    // The set's vendor_phy (`-` and `_` are one) replaces the kernel's
    // vendor-phy: its export is gone, mii's stays.
    let mut phy = base("vendor_phy");
    phy.exports = vec![("phy_other".into(), false, 0x1234_5678, String::new())];
    let set = [module(&phy, "vendor_phy.ko"), user.clone()];
    let reports = Checker::new(&k).with_modules(&set).check_all(&set);
    assert!(reports[0].compatible, "{:?}", reports[0].problems);
    assert_eq!(
        kinds(&reports[1]),
        vec![("phy_thing".into(), ProblemKind::Missing)]
    );
    assert!(
        reports[1].problems[0].message.contains(
            "the kernel's vendor_phy exported it, but the checked set replaces that module"
        ),
        "{}",
        reports[1].problems[0].message
    );
    // The replacement's own export of the symbol takes its place, CRC and all.
    phy.exports = vec![("phy_thing".into(), false, 0x6666_0000, String::new())];
    let set = [module(&phy, "vendor_phy.ko"), user];
    let r = Checker::new(&k).with_modules(&set).check_all(&set);
    assert_eq!(kinds(&r[1]), vec![("phy_thing".into(), ProblemKind::Crc)]);
    assert_eq!(r[1].problems[0].expected.as_deref(), Some("0x66660000"));
}

#[test]
fn refusal_propagates_through_the_set_to_a_fixpoint() {
    let k = kernel();
    // a is refused (printk's CRC); b needs a; c needs b; w imports a weakly.
    let mut a = base("a").import("printk", 0x1111_0000);
    a.exports = vec![("a_op".into(), false, 0xa, String::new())];
    let mut b = base("b").import("a_op", 0xa);
    b.exports = vec![("b_op".into(), false, 0xb, String::new())];
    let c = base("c").import("b_op", 0xb).import("printk", 0x1111_1111);
    let mut w = base("w");
    w.imports.push(("a_op".into(), true));
    w.versions.as_mut().unwrap().push(("a_op".into(), 0xa));
    // Listed dependants first: the order of the set does not matter.
    let set = [
        module(&c, "c.ko"),
        module(&w, "w.ko"),
        module(&b, "b.ko"),
        module(&a, "a.ko"),
    ];
    let r = Checker::new(&k).with_modules(&set).check_all(&set);
    let [rc, rw, rb, ra] = [&r[0], &r[1], &r[2], &r[3]];
    assert_eq!(kinds(ra), vec![("printk".into(), ProblemKind::Crc)]);
    assert_eq!(kinds(rb), vec![("a_op".into(), ProblemKind::Dependency)]);
    let p = &rb.problems[0];
    assert_eq!(p.provider.as_deref(), Some("a"));
    assert_eq!(
        p.cause.as_deref(),
        Some("crc: printk: disagrees about version of symbol printk")
    );
    assert!(
        p.message.contains("only a of the checked set exports it"),
        "{}",
        p.message
    );
    assert!(!rb.compatible);
    // Two steps away: the cause is b's own first problem.
    assert_eq!(kinds(rc), vec![("b_op".into(), ProblemKind::Dependency)]);
    assert_eq!(rc.problems[0].provider.as_deref(), Some("b"));
    assert!(rc.problems[0]
        .cause
        .as_deref()
        .is_some_and(|c| c.starts_with("dependency: a_op: unknown symbol a_op")));
    // A weak import of a refused module's symbol resolves to 0.
    assert!(rw.compatible, "{:?}", rw.problems);
    assert!(rw
        .warnings
        .iter()
        .any(|x| x.symbol == "a_op" && x.kind == WarningKind::WeakUnresolved));
    let json = serde_json::to_value(&rb.problems[0]).unwrap();
    assert_eq!(json["kind"], "dependency");
    assert_eq!(json["provider"], "a");

    // Checked alone (not in the set), c still sees b refused.
    let alone = Checker::new(&k)
        .with_modules(&set[1..])
        .check(&module(&c, "c.ko"));
    assert_eq!(
        kinds(&alone),
        vec![("b_op".into(), ProblemKind::Dependency)]
    );

    // With a loadable, the whole chain loads.
    let a_ok = base("a").import("printk", 0x1111_1111);
    let mut a_ok = a_ok;
    a_ok.exports = a.exports.clone();
    let set = [
        module(&c, "c.ko"),
        module(&b, "b.ko"),
        module(&a_ok, "a.ko"),
    ];
    let r = Checker::new(&k).with_modules(&set).check_all(&set);
    assert!(r.iter().all(|r| r.compatible), "{r:#?}");
}

#[test]
fn an_allowlist_refusal_does_not_propagate() {
    // The allowlist is policy: the loader would still load the provider.
    let k = kernel();
    let mut lib = base("lib").import("printk", 0x1111_1111);
    lib.exports = vec![("lib_op".into(), false, 0x10, String::new())];
    let user = base("user").import("lib_op", 0x10);
    let set = [module(&lib, "lib.ko"), module(&user, "user.ko")];
    let mut al = Allowlist::default();
    al.insert(AllowedSymbol::named("module_layout"));
    let r = Checker::new(&k)
        .with_modules(&set)
        .with_allowlist(&al)
        .check_all(&set);
    assert_eq!(
        kinds(&r[0]),
        vec![("printk".into(), ProblemKind::Allowlist)]
    );
    assert!(r[1].compatible, "{:?}", r[1].problems);
}

#[test]
fn kernel_without_modversions_checks_presence_only() {
    let zero = SYMVERS
        .lines()
        .map(|l| format!("0x00000000{}\n", &l[10..]))
        .collect::<String>();
    let k = Kernel::from_symvers("nomodversions", Symvers::parse(&zero, "s").unwrap());
    assert!(!k.modversions());
    let m = Module::parse(&base("m").import("printk", 0xdead_beef).build(), "m.ko").unwrap();
    let r = Checker::new(&k).check(&m);
    assert!(r.compatible);
    assert!(r
        .warnings
        .iter()
        .any(|w| w.kind == WarningKind::NoModversions));
}

#[test]
fn corrupt_inputs_are_errors_not_panics() {
    let good = base("m").import("printk", 0x1111_1111).build();
    for cut in [0, 4, 16, 63, 64, 200, good.len() / 2, good.len() - 1] {
        let _ = Module::parse(&good[..cut], "cut.ko");
    }
    // Flip bytes everywhere: must never panic.
    let mut state = 0x1234_5678_u32;
    for _ in 0..2000 {
        let mut bad = good.clone();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let i = state as usize % bad.len();
            bad[i] = (state >> 8) as u8;
        }
        let _ = Module::parse(&bad, "fuzz.ko");
    }
    let e = Module::parse(b"\x7fELF\x02\x01\x01", "short.ko")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("short.ko: not a valid kernel module"), "{e}");
    let e = Module::parse(b"hello", "text.ko").unwrap_err().to_string();
    assert!(e.contains("text.ko"), "{e}");
}

#[test]
fn compressed_modules() {
    use std::io::Write;
    let raw = base("m").import("printk", 0x1111_1111).build();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let m = Module::parse(&gz.finish().unwrap(), "m.ko.gz").unwrap();
    assert_eq!(m.imports().len(), 1);
}
