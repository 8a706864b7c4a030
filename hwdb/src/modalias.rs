//! `modules.alias` matching for PCI functions.
//!
//! The kernel exports a PCI function's modalias as
//! `pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X` (drivers/pci/pci-driver.c,
//! `pci_uevent`); `modprobe` matches it against `alias` patterns with
//! `fnmatch(3)` (no flags): `*`, `?` and `[...]` classes with ranges and
//! `!`/`^` negation. Only `pci:` aliases are kept (`vfio_pci:` and other
//! buses are ignored).
//!
//! Patterns written by `file2alias` (scripts/mod/file2alias.c,
//! `do_pci_entry`) put each of the seven fields either as literal upper-case
//! hex or as `*`, and end with a `*` after the prog-if field; such patterns
//! are split into fields and matched field by field ([`FieldPat`]), and
//! indexed by their literal vendor and device so a full `modules.alias`
//! (~9k PCI lines of ~26k) × hundreds of devices is a few hash lookups per
//! device, not a scan of every glob. Any other pattern (hand-written
//! `MODULE_ALIAS`) is kept whole and matched with [`fnmatch`].
//!
//! # Fields the evidence does not show
//!
//! Not every input shows every field of the modalias ([`PciMatchKey`] holds
//! `None` for those):
//! - `lspci -nn [-k]` prints the class as `[ccss]`; the programming
//!   interface appears only with `-v` (`(prog-if 30 [XHCI])`, printed when
//!   non-zero) or `-vmm` (`ProgIf:`, likewise). Without `-v` the prog-if is
//!   unknown, not zero: `xhci_pci` is `bc0Csc03i30`, `ehci_pci` `bc0Csc03i20`,
//!   `ahci` `bc01sc06i01`, `nvme` `bc01sc08i02`.
//! - subsystem ids are shown by `-k`, `-v`, `-vmm` and sysfs only;
//! - `/proc/bus/pci/devices` has neither class nor subsystem.
//!
//! A pattern *may* match when every field the evidence shows matches and
//! the fields that make the pattern specific are shown:
//! - a pattern with a literal device id names one device; unknown
//!   subsystem, class or prog-if only narrow it within that device, so they
//!   are tolerated;
//! - a pattern without one (`v*d*…bc0Csc03i30*`, or a vendor's
//!   `v00008086d*…bc01sc04i*`) is a class match: it may match only when the
//!   fields it constrains are shown, except the prog-if.
//!
//! So with prog-if unknown, a USB controller `[0c03]` may be claimed by any
//! of `uhci_hcd`, `ohci_pci`, `ehci_pci`, `xhci_pci`, while a function whose
//! class is unknown (`/proc/bus/pci/devices`) gets only its device-specific
//! modules; identification then reports an empty expected list as
//! [`DriverMatch::Unknown`], not as "no driver".
//!
//! Bound driver vs expected module ([`driver_match`]): names are compared
//! after `-` → `_`. A bound driver is *expected* when it equals an expected
//! module; or when an expected module is a `<x>_pci` bus wrapper and the
//! driver is `<x>` or `<x>_hcd` (`xhci_pci` binds as `xhci_hcd`,
//! `intel_lpss_pci` as `intel-lpss`); or when the pair is in
//! [`MODULE_DRIVER_NAMES`], modules whose `pci_driver.name` is a different
//! string altogether. Built-in drivers (`pcieport`: drivers/pci/pcie/portdrv.c,
//! `CONFIG_PCIEPORTBUS` is a bool) have no `modules.alias` line at all, so
//! they compare as [`DriverMatch::Other`] with no expected module.

use std::collections::HashMap;

use crate::profile::{DriverMatch, PciDevice};

/// Modules whose PCI driver registers under another name
/// (`struct pci_driver .name` in the module's source).
pub const MODULE_DRIVER_NAMES: &[(&str, &str)] = &[
    // drivers/i2c/busses/i2c-i801.c: .name = "i801_smbus"
    ("i2c_i801", "i801_smbus"),
    // drivers/i2c/busses/i2c-piix4.c: .name = "piix4_smbus"
    ("i2c_piix4", "piix4_smbus"),
    // drivers/i2c/busses/i2c-ismt.c: .name = "ismt_smbus" (seen in the H100 node's lspci -k)
    ("i2c_ismt", "ismt_smbus"),
    // NVIDIA's nvidia.ko registers a second pci_driver for NVSwitch
    // functions, named "nvidia-nvswitch" (open-gpu-kernel-modules,
    // kernel-open/nvidia/linux_nvswitch.c; seen in the H100 node's lspci -k)
    ("nvidia", "nvidia-nvswitch"),
    // drivers/usb/host/xhci-pci.c: .name = "xhci_hcd" (also covered by the _pci rule)
    ("xhci_pci", "xhci_hcd"),
    // The pairs below were read from the string tables of the modules in
    // Debian's linux-image-6.1.0 (the driver name beside the module's own):
    // drivers/platform/x86/intel/speed_select_if/isst_if_mmio.c: .name = "isst_if_pci"
    ("isst_if_mmio", "isst_if_pci"),
    // drivers/thermal/intel/int340x_thermal/processor_thermal_device_pci_legacy.c: .name = "proc_thermal"
    ("processor_thermal_device_pci_legacy", "proc_thermal"),
    // sound/soc/sof/intel/pci-tgl.c: .name = "sof-audio-pci-intel-tgl"
    ("snd_sof_pci_intel_tgl", "sof-audio-pci-intel-tgl"),
    // drivers/platform/x86/intel_ips.c: .name = "intel ips"
    ("intel_ips", "intel ips"),
    // drivers/watchdog/i6300esb.c: .name = ESB_MODULE_NAME = "i6300ESB timer"
    ("i6300esb", "i6300ESB timer"),
    // drivers/gpu/drm/tiny/bochs.c: .name = "bochs-drm"
    ("bochs", "bochs-drm"),
    // drivers/virtio/virtio_pci_common.c: module virtio_pci, .name = "virtio-pci"
    ("virtio_pci", "virtio-pci"),
    // drivers/char/agp/intel-agp.c: module intel_agp, .name = "agpgart-intel"
    ("intel_agp", "agpgart-intel"),
    // drivers/char/agp/amd64-agp.c: module amd64_agp, .name = "agpgart-amd64"
    ("amd64_agp", "agpgart-amd64"),
];

/// The modalias fields of one PCI function as the evidence shows them;
/// `None` is "not shown by the evidence", not zero (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PciMatchKey {
    pub vendor: u16,
    pub device: u16,
    pub subvendor: Option<u16>,
    pub subdevice: Option<u16>,
    pub base_class: Option<u8>,
    pub sub_class: Option<u8>,
    pub prog_if: Option<u8>,
}

impl PciMatchKey {
    /// Every field known: the key of a [`PciDevice`] whose 24-bit `class`
    /// is trusted, with absent subsystem ids as unknown.
    pub fn of_device(dev: &PciDevice) -> PciMatchKey {
        PciMatchKey {
            vendor: dev.vendor_id,
            device: dev.device_id,
            subvendor: dev.subvendor_id,
            subdevice: dev.subdevice_id,
            base_class: Some((dev.class >> 16) as u8),
            sub_class: Some((dev.class >> 8) as u8),
            prog_if: Some(dev.class as u8),
        }
    }

    /// The kernel's modalias string when every field is known.
    pub fn modalias(&self) -> Option<String> {
        Some(format!(
            "pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}",
            self.vendor,
            self.device,
            self.subvendor?,
            self.subdevice?,
            self.base_class?,
            self.sub_class?,
            self.prog_if?
        ))
    }

    fn fields(&self) -> [Option<u32>; 7] {
        [
            Some(u32::from(self.vendor)),
            Some(u32::from(self.device)),
            self.subvendor.map(u32::from),
            self.subdevice.map(u32::from),
            self.base_class.map(u32::from),
            self.sub_class.map(u32::from),
            self.prog_if.map(u32::from),
        ]
    }
}

/// One field of a split pattern.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FieldPat {
    /// `*`
    #[default]
    Any,
    /// Literal hex.
    Lit(u32),
    /// Anything else (`?`, `[...]`, partial `*`): matched with [`fnmatch`]
    /// against the field printed as the kernel prints it.
    Glob(String),
}

/// The seven modalias fields: marker and printed width.
const FIELDS: [(&str, usize); 7] = [
    ("v", 8),
    ("d", 8),
    ("sv", 8),
    ("sd", 8),
    ("bc", 2),
    ("sc", 2),
    ("i", 2),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Fields(Box<[FieldPat; 7]>),
    /// Not in `file2alias` shape: whole-string `fnmatch`.
    Raw(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Alias {
    pattern: Pattern,
    module: String,
}

/// PCI aliases of a `modules.alias`, indexed by literal vendor and device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModulesAlias {
    aliases: Vec<Alias>,
    by_vendor_device: HashMap<(u16, u16), Vec<usize>>,
    by_vendor: HashMap<u16, Vec<usize>>,
    by_device: HashMap<u16, Vec<usize>>,
    rest: Vec<usize>,
}

/// Split a `file2alias`-shaped pattern (without `pci:`) into its fields.
fn split_pattern(p: &str) -> Option<[FieldPat; 7]> {
    let mut rest = p;
    let mut out: [FieldPat; 7] = Default::default();
    for (n, (marker, width)) in FIELDS.iter().enumerate() {
        rest = rest.strip_prefix(marker)?;
        // Field content runs to the next lower-case marker letter.
        let end = rest
            .find(|c: char| c.is_ascii_lowercase())
            .unwrap_or(rest.len());
        let mut f = &rest[..end];
        rest = &rest[end..];
        if n == 6 {
            // file2alias ends every pattern with `*` after the prog-if.
            if f != "*" {
                f = f.strip_suffix('*').unwrap_or(f);
            }
            if !rest.is_empty() {
                return None;
            }
        }
        out[n] = if f == "*" {
            FieldPat::Any
        } else if f.len() == *width && f.bytes().all(|b| b.is_ascii_hexdigit()) {
            FieldPat::Lit(u32::from_str_radix(f, 16).ok()?)
        } else if f.is_empty() {
            return None;
        } else {
            FieldPat::Glob(f.to_string())
        };
    }
    Some(out)
}

impl ModulesAlias {
    pub fn parse(text: &str) -> ModulesAlias {
        let mut m = ModulesAlias::default();
        for line in text.lines() {
            let mut it = line.split_whitespace();
            if it.next() != Some("alias") {
                continue;
            }
            let (Some(pat), Some(module)) = (it.next(), it.next()) else {
                continue;
            };
            let Some(pat) = pat.strip_prefix("pci:") else {
                continue;
            };
            let pattern = match split_pattern(pat) {
                Some(f) => Pattern::Fields(Box::new(f)),
                None => Pattern::Raw(pat.to_string()),
            };
            let idx = m.aliases.len();
            let lit16 = |f: &FieldPat| match f {
                FieldPat::Lit(x) => u16::try_from(*x).ok(),
                _ => None,
            };
            match &pattern {
                Pattern::Fields(f) => match (lit16(&f[0]), lit16(&f[1])) {
                    (Some(v), Some(d)) => m.by_vendor_device.entry((v, d)).or_default().push(idx),
                    (Some(v), None) => m.by_vendor.entry(v).or_default().push(idx),
                    (None, Some(d)) => m.by_device.entry(d).or_default().push(idx),
                    (None, None) => m.rest.push(idx),
                },
                Pattern::Raw(_) => m.rest.push(idx),
            }
            m.aliases.push(Alias {
                pattern,
                module: module.to_string(),
            });
        }
        m
    }

    /// Number of PCI aliases kept.
    pub fn len(&self) -> usize {
        self.aliases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.aliases.is_empty()
    }

    /// Modules whose aliases match a full modalias (`pci:v…`), in file
    /// order, deduplicated.
    pub fn modules_for(&self, modalias: &str) -> Vec<String> {
        match parse_modalias(modalias) {
            Some(key) => self.modules_for_key(&key),
            None => Vec::new(),
        }
    }

    /// Modules whose aliases may match `key` (unknown fields: see the
    /// module docs), in file order, deduplicated.
    pub fn modules_for_key(&self, key: &PciMatchKey) -> Vec<String> {
        let mut idx: Vec<usize> = Vec::new();
        for bucket in [
            self.by_vendor_device.get(&(key.vendor, key.device)),
            self.by_vendor.get(&key.vendor),
            self.by_device.get(&key.device),
        ]
        .into_iter()
        .flatten()
        {
            idx.extend(bucket);
        }
        idx.extend(&self.rest);
        idx.sort_unstable();
        let fields = key.fields();
        let full = key.modalias();
        let mut out: Vec<String> = Vec::new();
        for i in idx {
            let Some(a) = self.aliases.get(i) else {
                continue;
            };
            let hit = match &a.pattern {
                Pattern::Fields(f) => fields_match(f, &fields),
                Pattern::Raw(p) => full.as_deref().is_some_and(|m| {
                    fnmatch(p.as_bytes(), m.strip_prefix("pci:").unwrap_or(m).as_bytes())
                }),
            };
            if hit && !out.contains(&a.module) {
                out.push(a.module.clone());
            }
        }
        out
    }

    /// Modules that would claim `dev` (its class taken as complete).
    pub fn modules_for_device(&self, dev: &PciDevice) -> Vec<String> {
        self.modules_for_key(&PciMatchKey::of_device(dev))
    }
}

fn fields_match(pat: &[FieldPat; 7], val: &[Option<u32>; 7]) -> bool {
    let device_specific = matches!(pat[1], FieldPat::Lit(_));
    for (n, (p, v)) in pat.iter().zip(val).enumerate() {
        if matches!(p, FieldPat::Any) {
            continue;
        }
        let Some(v) = v else {
            if device_specific || n == 6 {
                continue;
            }
            return false;
        };
        let ok = match p {
            FieldPat::Any => true,
            FieldPat::Lit(x) => x == v,
            FieldPat::Glob(g) => {
                let w = FIELDS[n].1;
                fnmatch(g.as_bytes(), format!("{v:0w$X}").as_bytes())
            }
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `pci:v…d…sv…sd…bc…sc…i…` → key (every field known).
fn parse_modalias(s: &str) -> Option<PciMatchKey> {
    let f = split_pattern(s.strip_prefix("pci:")?)?;
    let lit = |n: usize| match f.get(n) {
        Some(FieldPat::Lit(x)) => Some(*x),
        _ => None,
    };
    Some(PciMatchKey {
        vendor: u16::try_from(lit(0)?).ok()?,
        device: u16::try_from(lit(1)?).ok()?,
        subvendor: Some(u16::try_from(lit(2)?).ok()?),
        subdevice: Some(u16::try_from(lit(3)?).ok()?),
        base_class: Some(u8::try_from(lit(4)?).ok()?),
        sub_class: Some(u8::try_from(lit(5)?).ok()?),
        prog_if: Some(u8::try_from(lit(6)?).ok()?),
    })
}

/// The kernel's modalias of a PCI function (absent subsystem ids print as 0).
pub fn pci_modalias(dev: &PciDevice) -> String {
    format!(
        "pci:v{:08X}d{:08X}sv{:08X}sd{:08X}bc{:02X}sc{:02X}i{:02X}",
        dev.vendor_id,
        dev.device_id,
        dev.subvendor_id.unwrap_or(0),
        dev.subdevice_id.unwrap_or(0),
        (dev.class >> 16) & 0xff,
        (dev.class >> 8) & 0xff,
        dev.class & 0xff
    )
}

/// `fnmatch(3)` without flags: `*`, `?`, `[...]` (ranges, `!`/`^` negation,
/// `]` first is literal), `\` escapes the next character.
pub fn fnmatch(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() {
            match pat[p] {
                b'*' => {
                    star = Some((p, i));
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    i += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class_match(pat, p, s[i]) {
                        if matched {
                            p = next;
                            i += 1;
                            continue;
                        }
                    } else if s[i] == b'[' {
                        // Unterminated class: '[' is literal.
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pat.len() => {
                    if pat[p + 1] == s[i] {
                        p += 2;
                        i += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[i] {
                        p += 1;
                        i += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, si)) => {
                p = sp + 1;
                i = si + 1;
                star = Some((sp, si + 1));
            }
            None => return false,
        }
    }
    while p < pat.len() && pat[p] == b'*' {
        p += 1;
    }
    p == pat.len()
}

/// Match `c` against the class starting at `pat[start] == '['`.
/// Returns (matched, index after `]`), or `None` when unterminated.
fn class_match(pat: &[u8], start: usize, c: u8) -> Option<(bool, usize)> {
    let mut j = start + 1;
    let negate = matches!(pat.get(j), Some(b'!') | Some(b'^'));
    if negate {
        j += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &b = pat.get(j)?;
        if b == b']' && !first {
            return Some((matched != negate, j + 1));
        }
        first = false;
        if pat.get(j + 1) == Some(&b'-') && pat.get(j + 2).is_some_and(|e| *e != b']') {
            let e = pat[j + 2];
            if b <= c && c <= e {
                matched = true;
            }
            j += 3;
        } else {
            if b == c {
                matched = true;
            }
            j += 1;
        }
    }
}

fn norm(s: &str) -> String {
    s.replace('-', "_")
}

/// Whether bound driver `driver` is the driver of module `module` (see module docs).
pub fn driver_is_module(driver: &str, module: &str) -> bool {
    let (d, m) = (norm(driver), norm(module));
    if d == m {
        return true;
    }
    if let Some(x) = m.strip_suffix("_pci") {
        if d == x || d == format!("{x}_hcd") {
            return true;
        }
    }
    MODULE_DRIVER_NAMES
        .iter()
        .any(|(mm, dd)| norm(mm) == m && norm(dd) == d)
}

/// The module names of a kernel's `modules.builtin` (one path per line,
/// `kernel/drivers/ata/ahci.ko`), `-` written `_` as the kernel does.
pub fn builtin_modules(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.rsplit('/').next())
        .map(|f| norm(f.strip_suffix(".ko").unwrap_or(f)))
        .collect()
}

/// Compare the bound driver with the expected modules.
/// `alias_known`: a `modules.alias` was available; `binding_known`: the
/// input shows bindings (so `bound == None` means unbound).
pub fn driver_match(
    expected: &[String],
    bound: Option<&str>,
    alias_known: bool,
    binding_known: bool,
) -> DriverMatch {
    if !alias_known || !binding_known {
        return DriverMatch::Unknown;
    }
    match bound {
        Some(d) if expected.iter().any(|m| driver_is_module(d, m)) => DriverMatch::Expected,
        Some(_) => DriverMatch::Other,
        None if expected.is_empty() => DriverMatch::NoDriver,
        None => DriverMatch::UnboundDriverExists,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_semantics() {
        assert!(fnmatch(
            b"v000010DEd*sv*sd*bc03sc*i*",
            b"v000010DEd00002330sv000010DEsd000016C1bc03sc02i00"
        ));
        assert!(!fnmatch(
            b"v000010DEd*sv*sd*bc03sc00i*",
            b"v000010DEd00002330sv000010DEsd000016C1bc03sc02i00"
        ));
        assert!(fnmatch(b"v*d*bc0[1-3]sc*i*", b"v1d2bc02sc00i00"));
        assert!(!fnmatch(b"v*d*bc0[!1-3]sc*i*", b"v1d2bc02sc00i00"));
        assert!(fnmatch(b"a?c", b"abc"));
        assert!(fnmatch(b"[]]", b"]"));
    }

    const ALIAS: &str = "\
alias pci:v*d*sv*sd*bc0Csc03i30* xhci_pci
alias pci:v*d*sv*sd*bc0Csc03i20* ehci_pci
alias pci:v00008086d*sv*sd*bc01sc04i* ahci
alias pci:v000015B3d00001021sv*sd*bc*sc*i* mlx5_core
alias pci:v000010DEd*sv*sd*bc03sc*i* nouveau
alias pci:v0000AAAAd0000BBBBsv0000CCCCsd*bc*sc*i* subsys_only
alias pci:v0000AAAAd0000BB[0-9]?sv*sd*bc*sc*i* hand_written
alias vfio_pci:v000015B3d00001021sv*sd*bc*sc*i* vfio_pci
alias usb:v1D6Bp0003d*dc*dsc*dp*ic09isc*ip*in* hub
";

    fn key(v: u16, d: u16) -> PciMatchKey {
        PciMatchKey {
            vendor: v,
            device: d,
            ..PciMatchKey::default()
        }
    }

    #[test]
    fn full_modalias_and_buses() {
        let m = ModulesAlias::parse(ALIAS);
        assert_eq!(m.len(), 7, "vfio_pci: and usb: aliases are not kept");
        assert_eq!(
            m.modules_for("pci:v00008086d00001BCDsv00000000sd00000000bc0Csc03i30"),
            vec!["xhci_pci"]
        );
        assert_eq!(
            m.modules_for("pci:v000015B3d00001021sv000015B3sd00000041bc02sc00i00"),
            vec!["mlx5_core"]
        );
        assert_eq!(
            m.modules_for("pci:v0000AAAAd0000BB17sv00000000sd00000000bc00sc00i00"),
            vec!["hand_written"]
        );
        assert!(m.modules_for("garbage").is_empty());
    }

    #[test]
    fn unknown_prog_if_allows_every_interface_of_the_class() {
        let m = ModulesAlias::parse(ALIAS);
        let k = PciMatchKey {
            base_class: Some(0x0c),
            sub_class: Some(0x03),
            ..key(0x8086, 0x1bcd)
        };
        assert_eq!(m.modules_for_key(&k), vec!["xhci_pci", "ehci_pci"]);
        let k = PciMatchKey {
            prog_if: Some(0x30),
            ..k
        };
        assert_eq!(m.modules_for_key(&k), vec!["xhci_pci"]);
    }

    #[test]
    fn unknown_class_keeps_device_specific_aliases_only() {
        let m = ModulesAlias::parse(ALIAS);
        // /proc/bus/pci/devices: no class, no subsystem.
        assert!(m.modules_for_key(&key(0x8086, 0x1bcd)).is_empty());
        assert_eq!(m.modules_for_key(&key(0x15b3, 0x1021)), vec!["mlx5_core"]);
        assert!(m.modules_for_key(&key(0x10de, 0x2330)).is_empty());
        // Unknown subsystem: a subsystem-specific alias of the device may match.
        assert_eq!(m.modules_for_key(&key(0xaaaa, 0xbbbb)), vec!["subsys_only"]);
        let k = PciMatchKey {
            subvendor: Some(0x1111),
            subdevice: Some(0),
            ..key(0xaaaa, 0xbbbb)
        };
        assert!(m.modules_for_key(&k).is_empty());
    }

    #[test]
    fn module_vs_driver_names() {
        assert!(driver_is_module("xhci_hcd", "xhci_pci"));
        assert!(driver_is_module("ehci-pci", "ehci_pci"));
        assert!(driver_is_module("i801_smbus", "i2c_i801"));
        assert!(!driver_is_module("vfio-pci", "nvidia"));
        assert!(driver_is_module("isst_if_pci", "isst_if_mmio"));
        assert!(driver_is_module("intel ips", "intel_ips"));
    }
}
