//! BTF of the real Debian bookworm kernels (vmlinux's `.BTF`, reached
//! through the bzImage in linux-image; modules' split `.BTF`), and what
//! `explain` finds behind the 6.1.0-50 → 6.1.0-56 CRC cascade. Needs
//! scripts/fetch-kabi-data.
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

mod common;

use std::sync::OnceLock;
use std::time::Instant;

use certlab_kabi::btf::{Btf, Kind, NameSpace};
use certlab_kabi::explain::TypeDiff;
use certlab_kabi::vmlinuz;

const NEW: &str = "6.1.0-56-amd64";
const OLD: &str = "6.1.0-50-amd64";

fn btf(abi: &'static str) -> &'static Btf {
    static B56: OnceLock<Btf> = OnceLock::new();
    static B50: OnceLock<Btf> = OnceLock::new();
    let cell = if abi == NEW { &B56 } else { &B50 };
    cell.get_or_init(|| {
        let p = common::data_dir().join(abi).join("vmlinuz");
        assert!(
            p.is_file(),
            "{} missing: run scripts/fetch-kabi-data",
            p.display()
        );
        let bytes = std::fs::read(&p).unwrap();
        let v = vmlinuz::unpack(&bytes, abi).unwrap();
        let raw = vmlinuz::btf_section(&v.data, abi)
            .unwrap()
            .expect(".BTF in vmlinux");
        Btf::parse(raw, abi).unwrap()
    })
}

#[test]
fn vmlinux_btf_of_6_1_0_56() {
    let b = btf(NEW);
    println!("{NEW}: {} types", b.len());
    assert!(b.len() > 100_000);
    let sock = b.find(NameSpace::Type, "sock").unwrap();
    assert!(matches!(b.get(sock).unwrap().kind, Kind::Struct { .. }));
    assert!(b.find(NameSpace::Func, "tcp_sendmsg").is_some());
    // Every kind the kernel emits parses; count them.
    let mut kinds = std::collections::BTreeMap::new();
    for (_, t) in b.types() {
        *kinds.entry(t.kind.name()).or_insert(0usize) += 1;
    }
    println!("{kinds:?}");
}

#[test]
fn module_split_btf_continues_vmlinux() {
    let base = btf(NEW);
    let ko = common::modules(NEW).join("kernel/net/ipv4/tcp_bbr.ko");
    let bytes = std::fs::read(&ko).unwrap();
    let raw = certlab_kabi::module::btf_section(&bytes, "tcp_bbr.ko")
        .unwrap()
        .expect(".BTF");
    let raw = &*raw;
    let m = Btf::parse_split(raw, base, "tcp_bbr.ko").unwrap();
    assert_eq!(m.split_start() as usize, base.len());
    assert!(m.len() > base.len());
    let f = m.find(NameSpace::Func, "bbr_main").unwrap();
    assert!(f >= m.split_start());
}

#[test]
fn explain_names_the_types_behind_the_cascade() {
    let (old, new) = (btf(OLD), btf(NEW));
    let t = Instant::now();
    let d = TypeDiff::new(old, new);
    println!(
        "whole-kernel type diff: {} changed types in {:?}",
        d.changes.len(),
        t.elapsed()
    );
    // The four the issue names, each with its real change.
    let lines = |ty: &str| {
        d.changes
            .get(ty)
            .unwrap_or_else(|| panic!("{ty} unchanged"))
            .lines()
    };
    assert!(lines("struct sock")
        .iter()
        .any(|l| l.contains("sk_use_task_frag")));
    assert!(lines("struct net_device")
        .iter()
        .any(|l| l.contains("watchdog_ref_held")));
    assert!(lines("struct mm_struct")
        .iter()
        .any(|l| l.contains("futex_unique_id")));
    assert!(lines("struct request_queue").contains(&"size 936 → 968 bytes".to_string()));
    // struct sock's sk_timer moved into an anonymous union at the same
    // offset: not a change (anonymous members are flattened).
    assert!(!lines("struct sock").iter().any(|l| l.contains("removed")));

    for (sym, nearest) in [
        ("tcp_sendmsg", "struct sock"),
        ("register_netdev", "struct net_device"),
        ("blk_mq_run_hw_queue", "struct request_queue"),
    ] {
        let e = d.explain(sym);
        let names: Vec<_> = e.changed.iter().map(|c| c.change.ty.as_str()).collect();
        println!(
            "{sym}: {} reachable, {} changed: {:?}",
            e.reachable,
            names.len(),
            &names[..names.len().min(8)]
        );
        assert_eq!(e.kind, "func");
        assert_eq!(names.first(), Some(&nearest), "{sym}");
        for ty in [
            "struct sock",
            "struct net_device",
            "struct mm_struct",
            "struct request_queue",
        ] {
            assert!(names.contains(&ty), "{sym}: {ty}");
        }
    }
    let e = d.explain("tcp_sendmsg");
    assert_eq!(
        e.new_decl.as_deref(),
        Some("int tcp_sendmsg(struct sock * sk, struct msghdr * msg, size_t size)")
    );
    assert_eq!(d.explain("no_such_symbol").kind, "missing");
}
