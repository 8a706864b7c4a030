//! `certlab portal seed-demo --certifications N`: realistic demo
//! certifications for demos and benchmarks, drawn from the hwdb fixtures —
//! systems (vendor, product, firmware) from real dmidecode dumps, CPUs
//! (vendor, family, model) from the machines' identified CPUs, components
//! (PCI id, name, bound driver) from real `/proc/bus/pci/devices` tables
//! named through the embedded pci.ids — crossed with a list of OS releases.
//! Deterministic: the same N gives the same records (ids and times aside).

use certlab_hwdb::lspci::parse_proc_bus_pci_devices;
use certlab_hwdb::pciids::PciIds;
use certlab_hwdb::Dmi;
use certlab_web::store::{Component, DemoCertification};
use certlab_web::PortalStore;
use time::OffsetDateTime;

use crate::error::{failure, Result};
use crate::exit;

#[path = "portal_seed_fixtures.rs"]
mod fixtures;

/// Real releases: (os_id, version, name, kernel without its arch suffix, rpm-style).
const RELEASES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "openEuler",
        "22.03",
        "openEuler 22.03 (LTS-SP4)",
        "5.10.0-216.0.0.115.oe2203sp4",
        true,
    ),
    (
        "openEuler",
        "24.03",
        "openEuler 24.03 (LTS-SP1)",
        "6.6.0-72.0.0.76.oe2403sp1",
        true,
    ),
    (
        "debian",
        "12",
        "Debian GNU/Linux 12 (bookworm)",
        "6.1.0-28",
        false,
    ),
    ("ubuntu", "22.04", "Ubuntu 22.04.5 LTS", "5.15.0-126", false),
    ("ubuntu", "24.04", "Ubuntu 24.04.1 LTS", "6.8.0-51", false),
    (
        "rhel",
        "9.4",
        "Red Hat Enterprise Linux 9.4 (Plow)",
        "5.14.0-427.13.1.el9_4",
        true,
    ),
    (
        "rocky",
        "9.5",
        "Rocky Linux 9.5 (Blue Onyx)",
        "5.14.0-503.14.1.el9_5",
        true,
    ),
    (
        "kylin",
        "V10",
        "Kylin Linux Advanced Server V10 (Halberd)",
        "4.19.90-89.11.v2401.ky10",
        true,
    ),
    ("anolis", "8.9", "Anolis OS 8.9", "5.10.134-16.3.an8", true),
];

/// The architecture a CPU family of `expected.tsv` runs.
fn arch_of(index_family: &str) -> Option<&'static str> {
    Some(match index_family {
        "amd" | "intel" | "hygon" | "zhaoxin" | "x86-virt" => "x86_64",
        "ampere" | "arm-other" | "hisilicon-kirin" | "kunpeng" | "kunpeng-related"
        | "nvidia-grace" | "phytium" => "aarch64",
        "loongson" => "loongarch64",
        "power" => "ppc64le",
        "riscv" => "riscv64",
        "s390" => "s390x",
        _ => return None,
    })
}

struct Cpu {
    family: String,
    vendor: String,
    model: String,
    arch: &'static str,
}

struct System {
    arch: &'static str,
    vendor: String,
    product: String,
    firmware: String,
}

/// A placeholder some firmware leaves in DMI strings.
fn placeholder(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.is_empty()
        || l.contains("to be filled")
        || l.contains("not specified")
        || l.contains("default string")
        || l == "system manufacturer"
        || l == "system product name"
}

fn cpus() -> Vec<Cpu> {
    fixtures::EXPECTED_TSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let arch = arch_of(cols.get(1)?)?;
            let model = cols.get(5)?.trim();
            (!model.is_empty()).then(|| Cpu {
                family: cols[2].to_string(),
                vendor: cols[3].to_string(),
                model: model.to_string(),
                arch,
            })
        })
        .collect()
}

fn systems() -> Vec<System> {
    let mut out: Vec<System> = Vec::new();
    for (machine, text) in fixtures::DMIDECODE {
        let Some(arch) = machine_arch(machine) else {
            continue;
        };
        let p = Dmi::parse(text).system_profile();
        let (Some(vendor), Some(product)) = (p.vendor, p.product) else {
            continue;
        };
        if placeholder(&vendor) || placeholder(&product) {
            continue;
        }
        let firmware = p.bios_version.unwrap_or_default();
        if !out
            .iter()
            .any(|s| s.vendor == vendor && s.product == product)
        {
            out.push(System {
                arch,
                vendor,
                product,
                firmware,
            });
        }
    }
    out
}

/// The architecture of a fixture machine, by its folder's family prefix.
fn machine_arch(machine: &str) -> Option<&'static str> {
    machine
        .split_once("--")
        .and_then(|(family, _)| arch_of(family))
}

/// Each machine's PCI functions with a bound driver, named by pci.ids,
/// with the machine's architecture.
fn component_sets() -> Vec<(Option<&'static str>, Vec<Component>)> {
    let ids = PciIds::embedded();
    fixtures::PROC_BUS_PCI_DEVICES
        .iter()
        .map(|(machine, text)| {
            let mut set: Vec<Component> = Vec::new();
            for d in parse_proc_bus_pci_devices(text) {
                let (Some(v), Some(dev)) = (d.vendor_id, d.device_id) else {
                    continue;
                };
                let Some(driver) = d.driver.filter(|x| !x.is_empty()) else {
                    continue;
                };
                let pci_id = format!("{v:04x}:{dev:04x}");
                if set.iter().any(|c| c.pci_id == pci_id && c.driver == driver) {
                    continue;
                }
                let name = match (ids.vendor_name(v), ids.device_name(v, dev)) {
                    (Some(vn), Some(dn)) => format!("{vn} {dn}"),
                    (Some(vn), None) => format!("{vn} device {dev:04x}"),
                    _ => String::new(),
                };
                set.push(Component {
                    pci_id,
                    class: String::new(),
                    name,
                    driver,
                });
            }
            (machine_arch(machine), set)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

/// A small deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let n = u64::try_from(n.max(1)).unwrap_or(u64::MAX);
        usize::try_from((self.0 >> 33) % n).unwrap_or(0)
    }
}

/// `n` demo certifications, published over the three years before `now`.
pub fn demo_certifications(n: u64, now: OffsetDateTime) -> Result<Vec<DemoCertification>> {
    let (cpus, systems, sets) = (cpus(), systems(), component_sets());
    if cpus.is_empty() || systems.is_empty() || sets.is_empty() {
        return Err(failure(
            exit::INFRA,
            "seed-demo: the hwdb fixtures built into this binary hold no CPUs, systems or components",
        ));
    }
    let mut rng = Lcg(0x5eed_de30);
    let span = 3 * 365 * 24 * 3600;
    let mut out = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
    for i in 0..n {
        // a system, a CPU of its architecture, components of a machine of
        // that architecture (of any when none)
        let sys = &systems[rng.below(systems.len())];
        let same: Vec<&Cpu> = cpus.iter().filter(|c| c.arch == sys.arch).collect();
        let cpu = match same.len() {
            0 => &cpus[rng.below(cpus.len())],
            k => same[rng.below(k)],
        };
        let own: Vec<&Vec<Component>> = sets
            .iter()
            .filter(|(a, _)| *a == Some(cpu.arch))
            .map(|(_, s)| s)
            .collect();
        let set = match own.len() {
            0 => &sets[rng.below(sets.len())].1,
            k => own[rng.below(k)],
        };
        let (os_id, version, os_name, kernel, rpm) = RELEASES[rng.below(RELEASES.len())];
        let kernel = if rpm {
            format!("{kernel}.{}", cpu.arch)
        } else {
            let deb = match cpu.arch {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                "loongarch64" => "loong64",
                "ppc64le" => "powerpc64le",
                other => other,
            };
            format!("{kernel}-{deb}")
        };
        // up to 8 of the machine's components, a different window each time
        let take = 3 + rng.below(6);
        let start = rng.below(set.len());
        let components: Vec<Component> = (0..take.min(set.len()))
            .map(|k| set[(start + k) % set.len()].clone())
            .collect();
        let outcome = if rng.below(20) == 0 { "fail" } else { "pass" };
        let age = i64::try_from(rng.below(span)).unwrap_or(0);
        out.push(DemoCertification {
            vendor: sys.vendor.clone(),
            product: format!("{} #{}", sys.product, i % 50),
            firmware: sys.firmware.clone(),
            cpu_family: cpu.family.clone(),
            cpu_vendor: cpu.vendor.clone(),
            cpu_model: cpu.model.clone(),
            arch: cpu.arch.to_string(),
            os_id: os_id.to_string(),
            os_version: version.to_string(),
            os_name: os_name.to_string(),
            kernel,
            plan_id: "server-basic".to_string(),
            plan_version: "1".to_string(),
            outcome: outcome.to_string(),
            published: now - time::Duration::seconds(age),
            components,
        });
    }
    Ok(out)
}

/// Seeds `n` certifications: the JSON and the human line of the answer.
pub async fn seed(
    store: &PortalStore,
    n: u64,
    now: OffsetDateTime,
) -> Result<(serde_json::Value, String)> {
    let started = std::time::Instant::now();
    let certs = demo_certifications(n, now)?;
    let seeded = store.seed_demo(&certs, now).await?;
    let secs = started.elapsed().as_secs_f64();
    Ok((
        serde_json::json!({
            "certifications": seeded.certifications,
            "orgs": seeded.orgs,
            "components": seeded.components,
            "seconds": (secs * 1000.0).round() / 1000.0,
        }),
        format!(
            "seeded {} demo certifications ({} components, {} new organisations) in {secs:.1} s",
            seeded.certifications, seeded.components, seeded.orgs
        ),
    ))
}
