//! A network namespace SUT's network: a namespace with a veth pair to the
//! root namespace, on a private /24 that overlaps nothing the host routes
//! or has (checked with `ip route` and `ip addr` first). Shared by
//! `tests/netns_sut.rs` and `tests/netns_lab.rs`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub fn ip(args: &[&str]) -> Output {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `ip` ({e}): the namespace SUT needs iproute2 (apt-get install iproute2, or scripts/bootstrap --test)")
        })
}

pub fn ip_ok(args: &[&str]) -> String {
    let o = ip(args);
    assert!(
        o.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// An IPv4 prefix.
#[derive(Debug, Clone, Copy)]
struct Net(u32, u8);

impl Net {
    fn parse(s: &str) -> Option<Net> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, l.parse().ok()?),
            None => (s, 32),
        };
        let a: Ipv4Addr = a.parse().ok()?;
        Some(Net(u32::from(a), len))
    }

    fn mask(len: u8) -> u32 {
        if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        }
    }

    fn overlaps(self, o: Net) -> bool {
        let m = Net::mask(self.1.min(o.1));
        self.0 & m == o.0 & m
    }
}

/// Every prefix the host routes (all tables; the default route aside, as
/// it "overlaps" everything by definition) and every address it has.
fn host_prefixes() -> Vec<Net> {
    const TYPES: &[&str] = &[
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "throw",
        "unreachable",
        "prohibit",
        "blackhole",
        "nat",
        "anycast",
    ];
    let mut out = Vec::new();
    for line in ip_ok(&["-4", "route", "show", "table", "all"]).lines() {
        let mut t = line.split_whitespace();
        let mut first = t.next().unwrap_or("");
        if TYPES.contains(&first) {
            first = t.next().unwrap_or("");
        }
        if first == "default" {
            continue;
        }
        if let Some(n) = Net::parse(first) {
            out.push(n);
        }
    }
    for line in ip_ok(&["-4", "-o", "addr", "show"]).lines() {
        let mut t = line.split_whitespace();
        while let Some(w) = t.next() {
            if w == "inet" {
                if let Some(n) = t.next().and_then(Net::parse) {
                    out.push(n);
                }
            }
        }
    }
    out
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace with a veth pair to the root namespace, on a /24
/// that overlaps nothing the host routes. Torn down on drop: every process
/// in it killed, the veth and the namespace deleted.
pub struct Netns {
    pub name: String,
    pub veth_host: String,
    pub host_addr: Ipv4Addr,
    pub sut_addr: Ipv4Addr,
}

impl Netns {
    pub fn create() -> Netns {
        assert!(
            Path::new("/usr/sbin/ip").exists() || Path::new("/sbin/ip").exists() || Path::new("/bin/ip").exists(),
            "`ip` is missing: the namespace SUT needs iproute2 (apt-get install iproute2, or scripts/bootstrap --test)"
        );
        let taken = host_prefixes();
        let pid = std::process::id();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        // Candidates: 10.213.x.0/24 then 172.31.x.0/24, starting at a spot
        // that depends on the pid so concurrent runs tend to differ.
        let start = (pid + seq * 37) % 250;
        let subnet = (0..250u32)
            .map(|i| (start + i) % 250 + 1)
            .flat_map(|x| [[10u8, 213, x as u8, 0], [172, 31, x as u8, 0]])
            .map(|o| Net(u32::from(Ipv4Addr::from(o)), 24))
            .find(|n| !taken.iter().any(|t| t.overlaps(*n)))
            .unwrap_or_else(|| {
                panic!("every candidate subnet (10.213.x.0/24, 172.31.x.0/24) overlaps a host route: {taken:?}; refusing to create the namespace SUT")
            });
        let ns = Netns {
            name: format!("certlab-sut-{pid}-{seq}"),
            veth_host: format!("clh{}{seq}", pid % 100_000),
            host_addr: Ipv4Addr::from(subnet.0 + 1),
            sut_addr: Ipv4Addr::from(subnet.0 + 2),
        };
        let o = ip(&["netns", "add", &ns.name]);
        assert!(
            o.status.success(),
            "`ip netns add` is not permitted here ({}): the namespace SUT needs root or CAP_SYS_ADMIN and CAP_NET_ADMIN, a writable /run/netns, and iproute2",
            String::from_utf8_lossy(&o.stderr).trim()
        );
        // From here on, the guard cleans up whatever was made.
        let veth_sut = format!("cls{}{seq}", pid % 100_000);
        ip_ok(&[
            "link",
            "add",
            &ns.veth_host,
            "type",
            "veth",
            "peer",
            "name",
            &veth_sut,
        ]);
        ip_ok(&["link", "set", &veth_sut, "netns", &ns.name]);
        ip_ok(&[
            "addr",
            "add",
            &format!("{}/24", ns.host_addr),
            "dev",
            &ns.veth_host,
        ]);
        ip_ok(&["link", "set", &ns.veth_host, "up"]);
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns.exec_ok(&[
            "ip",
            "addr",
            "add",
            &format!("{}/24", ns.sut_addr),
            "dev",
            &veth_sut,
        ]);
        ns.exec_ok(&["ip", "link", "set", &veth_sut, "up"]);
        ns
    }

    pub fn exec_ok(&self, cmd: &[&str]) -> String {
        let mut a = vec!["netns", "exec", &self.name];
        a.extend_from_slice(cmd);
        ip_ok(&a)
    }

    pub fn pids(&self) -> Vec<String> {
        String::from_utf8_lossy(&ip(&["netns", "pids", &self.name]).stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for _ in 0..3 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg("-9")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = ip(&["link", "del", &self.veth_host]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}
