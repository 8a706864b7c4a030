//! NVIDIA Xid codes: what each means and whether it points at the GPU,
//! its memory, its link or its firmware (a certification failure) or most
//! often at the application that ran (reported, not failed).
//!
//! Source: NVIDIA, "XID Errors" (GPU Deployment and Management
//! Documentation, docs.nvidia.com/deploy/xid-errors), the catalogue of Xid
//! numbers with their names and possible causes. The names below are that
//! catalogue's; `cause` condenses its "possible causes" columns.

/// Where an Xid most often comes from, per NVIDIA's catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XidCause {
    /// GPU hardware: memory (ECC, retirement/remapping), link, bus.
    Hardware,
    /// Driver or GPU firmware (GSP, internal micro-controller).
    DriverFirmware,
    /// Usually the application (bad memory access, illegal instruction);
    /// hardware only among other causes.
    Application,
}

/// One Xid code.
#[derive(Debug, Clone, Copy)]
pub struct Xid {
    pub code: u32,
    pub name: &'static str,
    pub cause: XidCause,
}

impl Xid {
    /// Whether a certification run fails on it: everything not usually the
    /// application's doing.
    pub fn fails(&self) -> bool {
        self.cause != XidCause::Application
    }
}

use XidCause::*;

/// The table (NVIDIA Xid catalogue).
#[rustfmt::skip]
pub const XIDS: &[Xid] = &[
    Xid { code: 13, name: "Graphics Engine Exception", cause: Application },
    Xid { code: 31, name: "GPU memory page fault", cause: Application },
    Xid { code: 32, name: "Invalid or corrupted push buffer stream", cause: DriverFirmware },
    Xid { code: 38, name: "Driver firmware error", cause: DriverFirmware },
    Xid { code: 43, name: "GPU stopped processing", cause: Application },
    Xid { code: 45, name: "Preemptive cleanup, due to previous errors", cause: Application },
    Xid { code: 48, name: "Double Bit ECC Error (DBE)", cause: Hardware },
    Xid { code: 56, name: "Display Engine error", cause: DriverFirmware },
    Xid { code: 57, name: "Error programming video memory interface", cause: Hardware },
    Xid { code: 58, name: "Unstable video memory interface detected", cause: Hardware },
    Xid { code: 61, name: "Internal micro-controller breakpoint/warning", cause: DriverFirmware },
    Xid { code: 62, name: "Internal micro-controller halt", cause: DriverFirmware },
    Xid { code: 63, name: "ECC page retirement or row remapping recording event", cause: Hardware },
    Xid { code: 64, name: "ECC page retirement or row remapper recording failure", cause: Hardware },
    Xid { code: 68, name: "NVDEC0 Exception (video processor exception)", cause: DriverFirmware },
    Xid { code: 69, name: "Graphics Engine class error", cause: DriverFirmware },
    Xid { code: 74, name: "NVLINK Error", cause: Hardware },
    Xid { code: 79, name: "GPU has fallen off the bus", cause: Hardware },
    Xid { code: 92, name: "High single-bit ECC error rate", cause: Hardware },
    Xid { code: 94, name: "Contained ECC error", cause: Hardware },
    Xid { code: 95, name: "Uncontained ECC error", cause: Hardware },
    Xid { code: 119, name: "GSP RPC Timeout", cause: DriverFirmware },
    Xid { code: 120, name: "GSP Error", cause: DriverFirmware },
];

/// The table entry of `code`.
pub fn lookup(code: u32) -> Option<&'static Xid> {
    XIDS.iter().find(|x| x.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_sorted() {
        assert!(XIDS.windows(2).all(|w| w[0].code < w[1].code));
        assert!(lookup(79).is_some_and(Xid::fails));
        assert!(lookup(13).is_some_and(|x| !x.fails()));
        assert!(lookup(7).is_none());
    }
}
