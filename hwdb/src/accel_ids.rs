//! Accelerators that `pci.ids` lacks or names poorly (Ascend NPUs, Chinese
//! GPU/GPGPU vendors). Each entry says where its ids come from and how
//! sure we are. Used beside `pci.ids`, never instead of it.
//!
//! Which PCI functions count as accelerators ([`is_accelerator`]): class
//! 0x03xx (display), 0x1200 (processing accelerator), 0x0b40
//! (co-processor), and any function this table names (device entries
//! always; vendor-wide entries only for functions whose class is not one a
//! GPU card's companion functions use: audio, bridges, USB, storage, network).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccelKind {
    Gpu,
    Npu,
    Dcu,
    Gpgpu,
}

/// How sure the entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// Vendor or vendor documentation not confirmed against hardware.
    Low,
    /// Vendor documentation/driver sources, or `pci.ids` vendor line only.
    Medium,
    /// Listed in `pci.ids` or seen on real hardware dumps.
    High,
}

/// One supplementary entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccelEntry {
    pub vendor_id: u16,
    /// `None`: any function of the vendor (see module docs for the class rule).
    pub device_id: Option<u16>,
    pub vendor: &'static str,
    pub model: &'static str,
    pub kind: AccelKind,
    /// Vendor-wide entry that only applies to accelerator classes (the
    /// vendor also makes non-accelerator functions, e.g. Hygon on-die devices).
    pub accel_class_only: bool,
    pub source: &'static str,
    pub confidence: Confidence,
}

const PCI_IDS_2026: &str = "pci.ids 2026.08.22 vendor line (data/pci.ids)";

/// The table.
pub const ACCEL_IDS: &[AccelEntry] = &[
    // Huawei Ascend NPUs: absent from both pci.ids copies (see
    // shared/data/ids/PCI_VENDORS.md); ids as given in Huawei Ascend
    // driver/npu-smi documentation.
    AccelEntry {
        vendor_id: 0x19e5,
        device_id: Some(0xd100),
        vendor: "Huawei",
        model: "Ascend 310",
        kind: AccelKind::Npu,
        accel_class_only: false,
        source: "Huawei Ascend driver documentation (device id list); not in pci.ids",
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x19e5,
        device_id: Some(0xd500),
        vendor: "Huawei",
        model: "Ascend 310P",
        kind: AccelKind::Npu,
        accel_class_only: false,
        source: "Huawei Ascend driver documentation (device id list); not in pci.ids",
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x19e5,
        device_id: Some(0xd801),
        vendor: "Huawei",
        model: "Ascend 910",
        kind: AccelKind::Npu,
        accel_class_only: false,
        source: "Huawei Ascend driver documentation (device id list); not in pci.ids",
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x19e5,
        device_id: Some(0xd802),
        vendor: "Huawei",
        model: "Ascend 910B",
        kind: AccelKind::Npu,
        accel_class_only: false,
        source: "Huawei Ascend driver documentation (device id list); not in pci.ids",
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x19e5,
        device_id: Some(0xd803),
        vendor: "Huawei",
        model: "Ascend 910 series (d803)",
        kind: AccelKind::Npu,
        accel_class_only: false,
        source: "certlab requirements list; model not confirmed by a public document here",
        confidence: Confidence::Low,
    },
    // Hygon DCU: the vendor also makes CPU on-die functions, so only
    // accelerator classes count; pci.ids names only 6211 K100_AI.
    AccelEntry {
        vendor_id: 0x1d94,
        device_id: None,
        vendor: "Hygon",
        model: "DCU",
        kind: AccelKind::Dcu,
        accel_class_only: true,
        source: PCI_IDS_2026,
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x1e3e,
        device_id: None,
        vendor: "Iluvatar CoreX",
        model: "GPGPU",
        kind: AccelKind::Gpgpu,
        accel_class_only: false,
        source: PCI_IDS_2026,
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x9999,
        device_id: None,
        vendor: "MetaX",
        model: "GPU",
        kind: AccelKind::Gpgpu,
        accel_class_only: false,
        source: PCI_IDS_2026,
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x1ee0,
        device_id: None,
        vendor: "Biren",
        model: "GPGPU",
        kind: AccelKind::Gpgpu,
        accel_class_only: false,
        source: "certlab requirements list; no Biren vendor line in pci.ids",
        confidence: Confidence::Low,
    },
    AccelEntry {
        vendor_id: 0xcabc,
        device_id: None,
        vendor: "Cambricon",
        model: "MLU",
        kind: AccelKind::Npu,
        accel_class_only: false,
        source: PCI_IDS_2026,
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x1ed5,
        device_id: None,
        vendor: "Moore Threads",
        model: "MTT GPU",
        kind: AccelKind::Gpu,
        accel_class_only: false,
        source: PCI_IDS_2026,
        confidence: Confidence::Medium,
    },
    AccelEntry {
        vendor_id: 0x1e36,
        device_id: None,
        vendor: "Enflame",
        model: "GCU",
        kind: AccelKind::Npu,
        accel_class_only: false,
        source: PCI_IDS_2026,
        confidence: Confidence::Medium,
    },
];

/// Classes that are accelerators by themselves.
pub fn is_accelerator_class(class: u32) -> bool {
    let base = class >> 16;
    let sub = (class >> 8) & 0xff;
    base == 0x03 || (base == 0x12 && sub == 0x00) || (base == 0x0b && sub == 0x40)
}

/// Companion-function classes vendor-wide entries do not claim: storage,
/// network, multimedia (HDMI audio), bridges, system peripherals, serial
/// bus (USB), encryption.
fn companion_class(class: u32) -> bool {
    matches!(class >> 16, 0x01 | 0x02 | 0x04 | 0x06 | 0x08 | 0x0c | 0x10)
}

/// The table entry for a function, device entries first.
pub fn lookup(vendor: u16, device: u16, class: u32) -> Option<&'static AccelEntry> {
    ACCEL_IDS
        .iter()
        .find(|e| e.vendor_id == vendor && e.device_id == Some(device))
        .or_else(|| {
            ACCEL_IDS.iter().find(|e| {
                e.vendor_id == vendor
                    && e.device_id.is_none()
                    && if e.accel_class_only {
                        is_accelerator_class(class)
                    } else {
                        !companion_class(class)
                    }
            })
        })
}

/// Whether a function is an accelerator (see module docs).
pub fn is_accelerator(vendor: u16, device: u16, class: u32) -> bool {
    is_accelerator_class(class) || lookup(vendor, device, class).is_some()
}
