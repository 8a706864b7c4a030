//! The running system of a simulated machine: its files and the output of
//! the commands the checks run, built once per (profile, defect) and
//! shared by every machine that is that profile with that defect.
//!
//! Everything here is derived from the [`Profile`]: `/sys` is laid out as
//! Linux lays it out for the profile's CPUs, memory and PCI functions, and
//! the sysfs walks that suites run as one shell command each (marked
//! `: certlab pci-walk` and so on) are answered with what that shell
//! command prints on such a tree. A [`Defect`] changes the system, never
//! the answers alone: an offline CPU is gone from `/proc/cpuinfo` and from
//! `online`, an unbound function loses its `driver` link.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use crate::inventory::Arch;
use crate::scripted::Scripted;
use crate::sim::profile::{is_module, Profile};
use crate::sim::Defect;

/// Simulated seconds from power-on complete to SSH answering.
pub const BOOT_SECS: f64 = 45.0;
/// Simulated seconds from `reboot` to the firmware starting the OS again
/// (no power-on self test).
pub const WARM_REBOOT_SECS: f64 = 5.0;
/// Simulated seconds of a command's round trip.
pub const COMMAND_SECS: f64 = 0.004;
/// Simulated seconds of the memory test.
pub const MEMTEST_SECS: f64 = 1.2;
/// Simulated seconds of the sequential-read test.
pub const SEQREAD_SECS: f64 = 0.6;
/// The sequential-read rate a simulated disk reaches, MiB/s.
pub const SEQREAD_MIB_S: f64 = 2400.0;
/// Simulated seconds the crash kernel takes to save a dump and reboot.
pub const KDUMP_SECS: f64 = 30.0;
/// The simulated hardware watchdog's timeout, seconds.
pub const WATCHDOG_TIMEOUT_S: u64 = 30;
/// Where the crash kernel leaves its dumps.
pub const CRASH_DIR: &str = "/var/crash";

/// Whether the profile's OS is Debian's (kdump-tools) rather than a RHEL
/// relative (kexec-tools' kdumpctl).
fn debian(profile: &Profile) -> bool {
    profile
        .def
        .os_release
        .lines()
        .any(|l| l == "ID=debian" || l == "ID=ubuntu")
}

/// The name of the next dump directory: Debian's `YYYYMMDDHHMM`, RHEL's
/// `<ip>-YYYY-MM-DD-HH:MM:SS`, one not taken yet.
pub fn dump_name(profile: &Profile, taken: &[String]) -> String {
    let mut t = time::OffsetDateTime::now_utc();
    loop {
        let name = if debian(profile) {
            format!(
                "{:04}{:02}{:02}{:02}{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        } else {
            format!(
                "127.0.0.1-{:04}-{:02}-{:02}-{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        };
        if !taken.contains(&name) {
            return name;
        }
        t += time::Duration::minutes(1);
    }
}

/// The kernel's last words after `echo c > /proc/sysrq-trigger`.
fn sysrq_lines(profile: &Profile, uptime_s: u64) -> Vec<String> {
    let k = profile.def.kernel;
    [
        "sysrq: Trigger a crash".to_string(),
        "Kernel panic - not syncing: sysrq triggered crash".to_string(),
        format!("CPU: 2 PID: 4242 Comm: sh Not tainted {k} #1"),
        "Call Trace:".to_string(),
        " panic+0x10c/0x2d8".to_string(),
        " sysrq_handle_crash+0x1a/0x20".to_string(),
        "Kernel Offset: disabled".to_string(),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, l)| format!("[{uptime_s:5}.{:06}] {l}", 123_456 + i))
    .collect()
}

/// What the console shows when the kernel panics on a sysrq crash and
/// the crash kernel takes over.
pub fn sysrq_console(profile: &Profile, uptime_s: u64) -> String {
    let mut out = String::from("\r\n");
    for l in sysrq_lines(profile, uptime_s) {
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out.push_str("[    0.000000] Linux version (crash kernel) #1 SMP\r\n");
    out
}

/// What the console shows as the crash kernel saves the dump `name`.
pub fn kdump_console(profile: &Profile, name: &str) -> String {
    if debian(profile) {
        format!("\r\n * kdump-tools: saving vmcore from kernel crash\r\n * kdump-tools: saved vmcore in {CRASH_DIR}/{name}\r\nreboot: Restarting system\r\n")
    } else {
        format!("\r\nkdump: saving vmcore to {CRASH_DIR}/{name}\r\nkdump: saving vmcore complete\r\nreboot: Restarting system\r\n")
    }
}

/// The files of the dump directory `name`: (file name, content).
pub fn dump_files(profile: &Profile, name: &str) -> Vec<(String, String)> {
    let dmesg: String = sysrq_lines(profile, 3600)
        .into_iter()
        .map(|l| l + "\n")
        .collect();
    // The dump itself stands in as a makedumpfile header line.
    let dump = "KDUMP   \n".to_string();
    if debian(profile) {
        vec![
            (format!("dmesg.{name}"), dmesg),
            (format!("dump.{name}"), dump),
        ]
    } else {
        vec![
            ("vmcore".to_string(), dump),
            ("vmcore-dmesg.txt".to_string(), dmesg),
        ]
    }
}

/// The watchdog the profile's platform has: its driver's identity.
fn watchdog_identity(profile: &Profile) -> &'static str {
    match (profile.def.arch, profile.def.name) {
        (Arch::X86_64, n) if n.starts_with("intel") => "iTCO_wdt",
        (Arch::X86_64, n) if n.starts_with("amd") => "SP5100 TCO timer",
        (Arch::Aarch64, _) => "SBSA Generic Watchdog",
        // Hygon, LoongArch, RISC-V servers: the BMC's (ipmi_watchdog).
        _ => "IPMI",
    }
}

/// The programs a simulated system has on its `PATH`.
pub fn installed(profile: &Profile) -> Vec<&'static str> {
    let mut p = vec![
        "dd",
        "df",
        "memtester",
        "timedatectl",
        "dmesg",
        "uname",
        "lspci",
    ];
    if profile.def.lscpu.is_some() {
        p.push("lscpu");
    }
    if profile.dmidecode.is_some() {
        p.push("dmidecode");
    }
    p.push(if debian(profile) {
        "kdump-config"
    } else {
        "kdumpctl"
    });
    p
}

/// The shared system of `profile` with `defect`.
pub fn shared(profile: &Arc<Profile>, defect: Option<Defect>) -> Arc<Scripted> {
    type Cache = Mutex<HashMap<(&'static str, Option<Defect>), Arc<Scripted>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry((profile.def.name, defect))
        .or_insert_with(|| Arc::new(build(profile, defect)))
        .clone()
}

/// The module a driver is the driver of (what `modules.alias` names).
fn module_of(driver: &str) -> String {
    match driver {
        "xhci_hcd" => "xhci_pci".to_string(),
        d => d.replace('-', "_"),
    }
}

struct Nic {
    name: String,
    /// PCI address, or a platform device name.
    device: String,
    driver: String,
    speed: u32,
}

struct Disk {
    name: String,
    bytes: u64,
    model: String,
}

fn nic(profile: &Profile) -> Nic {
    match profile.nic_function() {
        Some(f) => {
            let mut parts = f.address.split([':', '.']);
            let (_, bus, dev, func) = (
                parts.next(),
                parts.next().unwrap_or("0"),
                parts.next().unwrap_or("0"),
                parts.next().unwrap_or("0"),
            );
            let n = |s: &str| u32::from_str_radix(s, 16).unwrap_or(0);
            Nic {
                name: format!("enp{}s{}f{}", n(bus), n(dev), n(func)),
                device: f.address.clone(),
                driver: f.driver.clone().unwrap_or_default(),
                // The link speed the NIC's family negotiates.
                speed: match f.driver.as_deref() {
                    Some("mlx5_core") => 100_000,
                    Some("hns3" | "ixgbe" | "i40e" | "bnxt_en") => 25_000,
                    _ => 1000,
                },
            }
        }
        None => Nic {
            name: "eth0".to_string(),
            device: "platform-eth0".to_string(),
            driver: "stmmaceth".to_string(),
            speed: 1000,
        },
    }
}

fn disk(profile: &Profile) -> Disk {
    let nvme = profile
        .disk_controller()
        .is_some_and(|f| f.class >> 8 == 0x0108);
    Disk {
        name: if nvme { "nvme0n1" } else { "sda" }.to_string(),
        bytes: 1_920_383_410_176,
        model: if nvme {
            "SAMSUNG MZQL21T9HCJR-00A07"
        } else {
            "INTEL SSDSC2KB019T8"
        }
        .to_string(),
    }
}

fn cpu_list(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "0".to_string(),
        n => format!("0-{}", n - 1),
    }
}

/// `/sys/devices/pciDDDD:BB/ADDR` of a function.
fn pci_dir(address: &str) -> String {
    let root = address.get(..7).unwrap_or("0000:00");
    format!("/sys/devices/pci{root}/{address}")
}

fn build(profile: &Profile, defect: Option<Defect>) -> Scripted {
    let def = profile.def;
    let kernel = def.kernel;
    let online = match defect {
        Some(Defect::OfflineCpu) => profile.cpus.saturating_sub(1),
        _ => profile.cpus,
    };
    let cpuinfo: String = profile.stanzas[..online.min(profile.stanzas.len())].concat();
    let mem_kb = profile.mem_bytes / 1024 * 97 / 100;
    let meminfo = format!(
        "MemTotal:       {mem_kb} kB\nMemFree:        {} kB\nMemAvailable:   {} kB\nBuffers:          204800 kB\nCached:          4194304 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
        mem_kb * 9 / 10,
        mem_kb * 9 / 10
    );
    let unbound = match defect {
        Some(Defect::UnboundDevice) => profile.unbindable().map(|f| f.address.clone()),
        _ => None,
    };
    let nic = nic(profile);
    let disk = disk(profile);

    let mut m = Scripted::new(def.name)
        .file("/proc/cpuinfo", cpuinfo)
        .file("/proc/meminfo", meminfo)
        .file("/etc/os-release", def.os_release)
        .file("/proc/sys/kernel/osrelease", format!("{kernel}\n"))
        .file(
            "/proc/cmdline",
            format!("BOOT_IMAGE=/vmlinuz-{kernel} root=/dev/mapper/vg-root ro quiet crashkernel=1G-4G:192M,4G-64G:256M,64G-:512M\n"),
        )
        // kdump: 256 MiB reserved, the crash kernel loaded.
        .file("/sys/kernel/kexec_crash_size", "268435456\n")
        .file("/sys/kernel/kexec_crash_loaded", "1\n")
        .file(&format!("{CRASH_DIR}/kexec_cmd"), format!("/sbin/kexec -p --command-line=\"BOOT_IMAGE=/vmlinuz-{kernel} root=/dev/mapper/vg-root ro reset_devices nr_cpus=1 irqpoll\"\n"))
        .file("/etc/kdump.conf", "path /var/crash\ncore_collector makedumpfile -l --message-level 7 -d 31\n")
        .command(
            "kdump-config show",
            0,
            &format!("DUMP_MODE:              kdump\nUSE_KDUMP:              1\nKDUMP_COREDIR:          {CRASH_DIR}\ncrashkernel addr: 0x2f000000\n   /var/lib/kdump/vmlinuz: symbolic link to /boot/vmlinuz-{kernel}\nkdump initrd:\n   /var/lib/kdump/initrd.img: symbolic link to /var/lib/kdump/initrd.img-{kernel}\ncurrent state:    ready to kdump\n\nkexec command:\n  /sbin/kexec -p --command-line=\"BOOT_IMAGE=/vmlinuz-{kernel} root=/dev/mapper/vg-root ro reset_devices nr_cpus=1 irqpoll\" --initrd=/var/lib/kdump/initrd.img /var/lib/kdump/vmlinuz\n"),
            "",
        )
        .command("kdumpctl status", 0, "", "kdump: Kdump is operational\n")
        // A hardware watchdog nobody feeds yet.
        .file("/dev/watchdog", "")
        .file("/dev/watchdog0", "")
        .file("/sys/class/watchdog/watchdog0/identity", format!("{}\n", watchdog_identity(profile)))
        .file("/sys/class/watchdog/watchdog0/timeout", format!("{WATCHDOG_TIMEOUT_S}\n"))
        .file("/sys/class/watchdog/watchdog0/state", "inactive\n")
        .file("/sys/class/watchdog/watchdog0/nowayout", "0\n")
        .file(
            "/sys/devices/system/cpu/present",
            format!("{}\n", cpu_list(profile.cpus)),
        )
        .file(
            "/sys/devices/system/cpu/possible",
            format!("{}\n", cpu_list(profile.cpus)),
        )
        .file(
            "/sys/devices/system/cpu/online",
            format!("{}\n", cpu_list(online)),
        )
        .file(
            "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            format!("{}\n", def.clocksource.0),
        )
        .file(
            "/sys/devices/system/clocksource/clocksource0/available_clocksource",
            format!("{}\n", def.clocksource.1),
        );

    // Taint and modules.
    let taint = match defect {
        Some(Defect::KernelTaint) => 1u64 << 13,
        _ => 0,
    };
    m = m.file("/proc/sys/kernel/tainted", format!("{taint}\n"));
    let mut modules: BTreeSet<String> = profile
        .pci
        .iter()
        .filter_map(|f| f.driver.as_deref())
        .filter(|d| is_module(d))
        .map(module_of)
        .collect();
    modules.extend(["ext4", "dm_mod", "sd_mod"].map(str::to_string));
    let mut proc_modules = String::new();
    for (i, name) in modules.iter().enumerate() {
        let _ = writeln!(
            proc_modules,
            "{name} {} 1 - Live 0x0000000000000000",
            65536 + i * 4096
        );
    }
    if defect == Some(Defect::KernelTaint) {
        proc_modules.push_str("diag_mod 16384 0 - Live 0x0000000000000000 (E)\n");
    }
    m = m.file("/proc/modules", proc_modules);

    // modules.alias: every module that drives a function, for its ids.
    let mut alias = String::from("# Aliases extracted from modules themselves.\n");
    let mut seen = BTreeSet::new();
    for f in &profile.pci {
        let Some(d) = f.driver.as_deref().filter(|d| is_module(d)) else {
            continue;
        };
        if seen.insert((f.vendor, f.device, d)) {
            let _ = writeln!(
                alias,
                "alias pci:v0000{:04X}d0000{:04X}sv*sd*bc*sc*i* {}",
                f.vendor,
                f.device,
                module_of(d)
            );
        }
    }
    m = m.file(&format!("/lib/modules/{kernel}/modules.alias"), alias);

    // CPU vulnerabilities, as the kernel reports them on these parts.
    let vulns: &[(&str, &str)] = match def.arch {
        Arch::X86_64 => &[
            ("gather_data_sampling", "Not affected"),
            ("itlb_multihit", "Not affected"),
            ("l1tf", "Not affected"),
            ("mds", "Not affected"),
            ("meltdown", "Not affected"),
            ("mmio_stale_data", "Not affected"),
            ("retbleed", "Not affected"),
            ("spec_store_bypass", "Mitigation: Speculative Store Bypass disabled via prctl"),
            ("spectre_v1", "Mitigation: usercopy/swapgs barriers and __user pointer sanitization"),
            ("spectre_v2", "Mitigation: Enhanced / Automatic IBRS; IBPB: conditional; RSB filling; PBRSB-eIBRS: SW sequence; BHI: BHI_DIS_S"),
            ("srbds", "Not affected"),
            ("tsx_async_abort", "Not affected"),
        ],
        Arch::Aarch64 => &[
            ("meltdown", "Not affected"),
            ("spec_store_bypass", "Mitigation: Speculative Store Bypass disabled via prctl"),
            ("spectre_v1", "Mitigation: __user pointer sanitization"),
            ("spectre_v2", "Not affected"),
        ],
        Arch::Loongarch64 | Arch::Riscv64 => &[],
    };
    for (name, state) in vulns {
        m = m.file(
            &format!("/sys/devices/system/cpu/vulnerabilities/{name}"),
            format!("{state}\n"),
        );
    }

    // EDAC: one memory controller on servers with ECC memory.
    let mc_name = match (def.arch, def.name) {
        (Arch::X86_64, n) if n.starts_with("intel") => Some("i10nm_edac"),
        (Arch::X86_64, _) => Some("F19h_M10h"),
        (Arch::Aarch64, _) => Some("ghes_edac"),
        _ => None,
    };
    if let Some(mc) = mc_name {
        let base = "/sys/devices/system/edac/mc/mc0";
        for (f, v) in [
            ("ce_count", "0"),
            ("ue_count", "0"),
            ("ce_noinfo_count", "0"),
            ("ue_noinfo_count", "0"),
            ("mc_name", mc),
        ] {
            m = m.file(&format!("{base}/{f}"), format!("{v}\n"));
        }
    }

    // DMI.
    let mut dmi_walk = String::new();
    for (k, v) in &profile.dmi {
        m = m.file(&format!("/sys/class/dmi/id/{k}"), format!("{v}\n"));
        let _ = writeln!(dmi_walk, "{k}={v}");
    }
    if profile.dmidecode.is_some() {
        m = m.file("/sys/firmware/dmi/tables/DMI", "SMBIOS");
    }

    // Memory blocks.
    let block: u64 = if profile.mem_bytes >= 64 << 30 {
        2 << 30
    } else {
        128 << 20
    };
    m = m.file(
        "/sys/devices/system/memory/block_size_bytes",
        format!("{block:x}\n"),
    );
    let mut blocks = String::new();
    for i in 0..profile.mem_bytes.div_ceil(block) {
        let _ = writeln!(blocks, "memory{i} online");
    }

    // PCI.
    let mut pci_walk = String::new();
    for f in &profile.pci {
        let dir = pci_dir(&f.address);
        let driver = f
            .driver
            .as_deref()
            .filter(|_| unbound.as_deref() != Some(f.address.as_str()));
        let _ = writeln!(pci_walk, "@ {}", f.address);
        let mut attrs: Vec<(&str, String)> = vec![
            ("vendor", format!("0x{:04x}", f.vendor)),
            ("device", format!("0x{:04x}", f.device)),
            ("subsystem_vendor", format!("0x{:04x}", f.vendor)),
            ("subsystem_device", "0x0000".to_string()),
            ("class", format!("0x{:06x}", f.class)),
            ("revision", format!("0x{:02x}", f.revision)),
        ];
        if let Some((cur, max)) = &f.speed {
            attrs.push(("current_link_speed", format!("{} PCIe", speed_text(cur))));
            attrs.push(("max_link_speed", format!("{} PCIe", speed_text(max))));
        }
        if let Some((cur, max)) = f.width {
            attrs.push(("current_link_width", cur.to_string()));
            attrs.push(("max_link_width", max.to_string()));
        }
        attrs.push(("numa_node", "0".to_string()));
        attrs.push(("enable", "1".to_string()));
        for (k, v) in &attrs {
            let _ = writeln!(pci_walk, "{k}={v}");
            m = m.file(&format!("{dir}/{k}"), format!("{v}\n"));
        }
        m = m.link(
            &format!("/sys/bus/pci/devices/{}", f.address),
            &format!("../../..{}", dir.trim_start_matches("/sys")),
        );
        if let Some(d) = driver {
            let _ = writeln!(pci_walk, "driver={d}");
            m = m
                .link(
                    &format!("{dir}/driver"),
                    &format!("../../../bus/pci/drivers/{d}"),
                )
                .file(&format!("/sys/bus/pci/drivers/{d}/bind"), "");
        }
    }

    let lspci = lspci(profile, unbound.as_deref());

    // Block devices: the system disk, and a loop device.
    let block_walk = format!(
        "@ loop0\nsize=0\nro=0\nremovable=0\nqueue/rotational=0\nvirtual=1\n@ {}\nsize={}\nro=0\nremovable=0\ndevice/model={}\nqueue/rotational=0\nhas_device=1\n",
        disk.name,
        disk.bytes / 512,
        disk.model
    );
    m = m
        .file(
            &format!("/sys/block/{}/size", disk.name),
            format!("{}\n", disk.bytes / 512),
        )
        .file(
            &format!("/sys/block/{}/device/model", disk.name),
            format!("{}\n", disk.model),
        );

    // Network: the NIC and lo.
    let net_walk = format!(
        "@ {}\noperstate=up\ncarrier=1\nspeed={}\nduplex=full\ntype=1\naddress=52:54:00:{:02x}:{:02x}:{:02x}\nhas_device=1\ndevice={}\ndriver={}\n@ lo\noperstate=unknown\ncarrier=1\ntype=772\naddress=00:00:00:00:00:00\nvirtual=1\n",
        nic.name,
        nic.speed,
        profile.cpus & 0xff,
        profile.pci.len() & 0xff,
        def.name.len() & 0xff,
        nic.device,
        nic.driver
    );
    m = m.file(&format!("/sys/class/net/{}/operstate", nic.name), "up\n");

    let dmesg = dmesg(profile, defect, online, &nic);

    m = m
        .command(": certlab pci-walk", 0, &pci_walk, "")
        .command(": certlab dmi-walk", 0, &dmi_walk, "")
        .command(": certlab block-walk", 0, &block_walk, "")
        .command(": certlab net-walk", 0, &net_walk, "")
        .command(": certlab memory-blocks", 0, &blocks, "")
        .command("uname -r", 0, &format!("{kernel}\n"), "")
        .command("uname -m", 0, &format!("{}\n", def.arch.as_str()), "")
        .command("dmesg", 0, &dmesg, "")
        .command(
            "timedatectl show -p NTPSynchronized --value",
            0,
            "yes\n",
            "",
        )
        .command(
            "df -Pk",
            0,
            "/dev/mapper/vg-root 1844284128 96173012 1654345836   6% /\n",
            "",
        )
        .command("dd if=/dev/", 0, "", "")
        .command("lspci -nn -k", 0, &lspci, "");
    if let Some(l) = def.lscpu {
        let text = match defect {
            Some(Defect::OfflineCpu) => {
                l.1.lines()
                    .map(|line| {
                        if line.starts_with("On-line CPU(s) list:") {
                            format!(
                                "On-line CPU(s) list: {}\nOff-line CPU(s) list: {}",
                                cpu_list(online),
                                online
                            )
                        } else {
                            line.to_string()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            _ => l.1.to_string(),
        };
        m = m.command("lscpu", 0, &text, "");
    }
    if let Some(d) = profile.dmidecode {
        m = m.command("dmidecode", 0, d, "");
    }
    m
}

/// `lspci -nn -k` of the profile's functions, named through the embedded
/// `pci.ids` as lspci names them.
fn lspci(profile: &Profile, unbound: Option<&str>) -> String {
    let ids = certlab_hwdb::PciIds::embedded();
    let mut out = String::new();
    for f in &profile.pci {
        // lspci leaves out domain 0000 unless asked (-D).
        let addr = f.address.strip_prefix("0000:").unwrap_or(&f.address);
        let class = ids.class_name(f.class).unwrap_or("Class");
        let vendor = ids
            .vendor_name(f.vendor)
            .map_or_else(|| format!("Vendor {:04x}", f.vendor), str::to_string);
        let device = ids
            .device_name(f.vendor, f.device)
            .map_or_else(|| format!("Device {:04x}", f.device), str::to_string);
        let _ = write!(
            out,
            "{addr} {class} [{:04x}]: {vendor} {device} [{:04x}:{:04x}]",
            f.class >> 8,
            f.vendor,
            f.device
        );
        if f.revision != 0 {
            let _ = write!(out, " (rev {:02x})", f.revision);
        }
        out.push('\n');
        if let Some(d) = f
            .driver
            .as_deref()
            .filter(|_| unbound != Some(f.address.as_str()))
        {
            let _ = writeln!(out, "\tKernel driver in use: {d}");
        }
        if let Some(d) = f.driver.as_deref().filter(|d| is_module(d)) {
            let _ = writeln!(out, "\tKernel modules: {}", module_of(d));
        }
    }
    out
}

/// `8GT/s` → `8.0 GT/s` as sysfs prints link speeds.
fn speed_text(s: &str) -> String {
    let n = s.trim_end_matches("GT/s");
    if n.contains('.') {
        format!("{n} GT/s")
    } else {
        format!("{n}.0 GT/s")
    }
}

fn dmesg(profile: &Profile, defect: Option<Defect>, online: usize, nic: &Nic) -> String {
    let def = profile.def;
    let mut log = BTreeMap::new();
    let mut at = |t: f64, line: String| {
        log.insert((t * 1e6) as u64, line);
    };
    at(
        0.0,
        format!("Linux version {} (builder@certlab-sim) #1 SMP", def.kernel),
    );
    at(
        0.000001,
        format!(
            "Command line: BOOT_IMAGE=/vmlinuz-{} root=/dev/mapper/vg-root ro quiet",
            def.kernel
        ),
    );
    at(
        0.2,
        format!("smp: Brought up 1 node, {} CPUs", profile.cpus),
    );
    at(
        0.3,
        format!("Memory: {}K available", profile.mem_bytes / 1024 * 97 / 100),
    );
    at(
        0.4,
        format!("clocksource: Switched to clocksource {}", def.clocksource.0),
    );
    at(1.1, "EDAC MC: Ver: 3.0.0".to_string());
    if def.arch == Arch::X86_64 {
        at(
            0.5,
            "mce: CPU0: Thermal monitoring enabled (TM1)".to_string(),
        );
        at(0.51, "MCE: In-kernel MCE decoding enabled.".to_string());
    }
    for (i, f) in profile.pci.iter().enumerate() {
        at(
            0.6 + i as f64 * 0.0001,
            format!(
                "pci {}: [{:04x}:{:04x}] type 00 class 0x{:06x}",
                f.address, f.vendor, f.device, f.class
            ),
        );
    }
    at(
        2.0,
        format!("{} {}: renamed from eth0", nic.driver, nic.name),
    );
    at(
        9.0,
        format!(
            "{} {}: Link is Up - {}Mbps/Full",
            nic.driver, nic.name, nic.speed
        ),
    );
    match defect {
        Some(Defect::OfflineCpu) => {
            at(30.0, format!("smpboot: CPU {online} is now offline"));
        }
        Some(Defect::KernelTaint) => {
            at(
                40.0,
                "diag_mod: module verification failed: signature and/or required key missing - tainting kernel".to_string(),
            );
        }
        Some(Defect::MceLog) => {
            if def.arch == Arch::X86_64 {
                at(
                    3600.0,
                    "mce: [Hardware Error]: Machine check events logged".to_string(),
                );
                at(
                    3600.000004,
                    "mce: [Hardware Error]: CPU 2: Machine Check: 0 Bank 1: 9400000000000151"
                        .to_string(),
                );
            } else {
                at(
                    3600.0,
                    "{1}[Hardware Error]: Hardware error from APEI Generic Hardware Error Source: 0".to_string(),
                );
                at(
                    3600.000004,
                    "{1}[Hardware Error]: event severity: corrected".to_string(),
                );
            }
        }
        _ => {}
    }
    log.into_iter()
        .map(|(us, line)| format!("[{:5}.{:06}] {line}\n", us / 1_000_000, us % 1_000_000))
        .collect()
}

/// What the console shows while the machine boots.
pub fn boot_console(profile: &Profile, name: &str) -> String {
    let def = profile.def;
    format!(
        "\r\nBooting `{os}'\r\n\r\nLoading Linux {k} ...\r\n[    0.000000] Linux version {k} (builder@certlab-sim) #1 SMP\r\n\r\n{os_short} {name} ttyS0\r\n\r\n{name} login: ",
        os = def.os_release.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).unwrap_or("Linux").trim_matches('"'),
        os_short = def.os_release.lines().find_map(|l| l.strip_prefix("NAME=")).unwrap_or("Linux").trim_matches('"'),
        k = def.kernel,
    )
}

/// What the console shows when the kernel panics.
pub fn panic_console(profile: &Profile, uptime_s: u64) -> String {
    let def = profile.def;
    format!(
        "\r\n[{uptime_s:5}.123456] Kernel panic - not syncing: Fatal hardware error!\r\n[{uptime_s:5}.123460] CPU: 3 PID: 0 Comm: swapper/3 Not tainted {k} #1\r\n[{uptime_s:5}.123462] Call Trace:\r\n[{uptime_s:5}.123470]  panic+0x10c/0x2d8\r\n[{uptime_s:5}.123480] ---[ end Kernel panic - not syncing: Fatal hardware error! ]---\r\n",
        k = def.kernel
    )
}
