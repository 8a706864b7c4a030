//! Parser for `smartctl --json` (`-i -H -A`, `-a`, `-x`) and
//! `smartctl --scan[-open] --json`. Pure JSON in, values out; no I/O.
//!
//! Field names follow smartmontools' JSON output (`smart_status.passed`,
//! `nvme_smart_health_information_log`, `ata_smart_attributes.table[].raw.value`,
//! `scsi_grown_defect_list`, `smartctl.exit_status`). A field the device
//! type does not report stays `None`, never 0.

use serde_json::Value;

/// `smartctl.exit_status` bits, from smartctl(8) "RETURN VALUES".
pub const EXIT_BITS: [&str; 8] = [
    "command line did not parse",
    "device open failed",
    "SMART or other ATA command failed",
    "SMART status: disk failing",
    "prefail attributes at or below threshold",
    "attributes at or below threshold in the past",
    "device error log has entries",
    "self-test log has errors",
];

/// One device's report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmartReport {
    /// `device.name` (`/dev/sda`).
    pub device: Option<String>,
    /// `device.type` (`sat`, `nvme`, `scsi`, `sat+megaraid,0`).
    pub device_type: Option<String>,
    /// `device.protocol` (`ATA`, `NVMe`, `SCSI`).
    pub protocol: Option<String>,
    /// `model_name`, else SCSI `vendor` + `product`.
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub exit_status: Option<u8>,
    /// `smartctl.messages[].string`.
    pub messages: Vec<String>,
    /// `smart_status.passed`; `None` when not reported (`-A` only, open failed).
    pub passed: Option<bool>,
    pub nvme_critical_warning: Option<u64>,
    pub nvme_media_errors: Option<u64>,
    /// ATA attribute 5 (Reallocated_Sector_Ct), raw.
    pub ata_reallocated: Option<u64>,
    /// ATA attribute 197 (Current_Pending_Sector), raw.
    pub ata_pending: Option<u64>,
    /// ATA attribute 198 (Offline_Uncorrectable), raw.
    pub ata_offline_uncorrectable: Option<u64>,
    pub scsi_grown_defects: Option<u64>,
}

/// Why a `smartctl --json` output could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum SmartctlError {
    #[error("smartctl --json output is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("smartctl --json output is not a JSON object")]
    NotObject,
}

fn u64_at(v: &Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    let s = path.iter().try_fold(v, |v, k| v.get(k))?.as_str()?.trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl SmartReport {
    /// Names of the set `exit_status` bits.
    pub fn exit_bits(&self) -> Vec<&'static str> {
        let s = self.exit_status.unwrap_or(0);
        (0..8)
            .filter(|b| s & (1 << b) != 0)
            .map(|b| EXIT_BITS[b])
            .collect()
    }

    /// The failure this report shows: SMART says failing (status or exit
    /// bit 3) or an NVMe critical warning is raised.
    pub fn failure(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.passed == Some(false) {
            why.push("SMART overall-health self-assessment FAILED".to_string());
        } else if self.exit_status.is_some_and(|s| s & 0x08 != 0) {
            why.push("smartctl exit status says the disk is failing".to_string());
        }
        if let Some(w) = self.nvme_critical_warning.filter(|w| *w != 0) {
            why.push(format!("NVMe critical_warning=0x{w:02x}"));
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    /// Counters and exit bits that show wear or past trouble, not failure.
    pub fn degraded(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, v) in [
            ("reallocated sectors", self.ata_reallocated),
            ("pending sectors", self.ata_pending),
            ("offline uncorrectable", self.ata_offline_uncorrectable),
            ("NVMe media errors", self.nvme_media_errors),
            ("SCSI grown defects", self.scsi_grown_defects),
        ] {
            if let Some(n) = v.filter(|n| *n > 0) {
                out.push(format!("{name} {n}"));
            }
        }
        let s = self.exit_status.unwrap_or(0);
        for b in [2usize, 4, 5, 6, 7] {
            if s & (1 << b) != 0 {
                out.push(format!("exit bit {b}: {}", EXIT_BITS[b]));
            }
        }
        out
    }
}

/// Parses one device's `smartctl --json` output.
pub fn parse_report(text: &str) -> Result<SmartReport, SmartctlError> {
    let v: Value = serde_json::from_str(text)?;
    if !v.is_object() {
        return Err(SmartctlError::NotObject);
    }
    let ata_raw = |id: u64| {
        v.get("ata_smart_attributes")?
            .get("table")?
            .as_array()?
            .iter()
            .find(|a| a.get("id").and_then(Value::as_u64) == Some(id))
            .and_then(|a| u64_at(a, &["raw", "value"]))
    };
    let model = str_at(&v, &["model_name"]).or_else(|| {
        match (str_at(&v, &["vendor"]), str_at(&v, &["product"])) {
            (Some(a), Some(b)) => Some(format!("{a} {b}")),
            (a, b) => a.or(b),
        }
    });
    Ok(SmartReport {
        device: str_at(&v, &["device", "name"]),
        device_type: str_at(&v, &["device", "type"]),
        protocol: str_at(&v, &["device", "protocol"]),
        model,
        firmware: str_at(&v, &["firmware_version"]).or_else(|| str_at(&v, &["revision"])),
        exit_status: u64_at(&v, &["smartctl", "exit_status"]).and_then(|s| u8::try_from(s).ok()),
        messages: v
            .get("smartctl")
            .and_then(|s| s.get("messages"))
            .and_then(Value::as_array)
            .map(|m| {
                m.iter()
                    .filter_map(|m| m.get("string").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        passed: v
            .get("smart_status")
            .and_then(|s| s.get("passed"))
            .and_then(Value::as_bool),
        nvme_critical_warning: u64_at(
            &v,
            &["nvme_smart_health_information_log", "critical_warning"],
        ),
        nvme_media_errors: u64_at(&v, &["nvme_smart_health_information_log", "media_errors"]),
        ata_reallocated: ata_raw(5),
        ata_pending: ata_raw(197),
        ata_offline_uncorrectable: ata_raw(198),
        scsi_grown_defects: u64_at(&v, &["scsi_grown_defect_list"]),
    })
}

/// One device of `smartctl --scan[-open] --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedDevice {
    pub name: String,
    /// The `-d` type to pass back (`sat`, `nvme`, `megaraid,14`).
    pub device_type: Option<String>,
    pub protocol: Option<String>,
}

/// Parses `smartctl --scan[-open] --json`.
pub fn parse_scan(text: &str) -> Result<Vec<ScannedDevice>, SmartctlError> {
    let v: Value = serde_json::from_str(text)?;
    if !v.is_object() {
        return Err(SmartctlError::NotObject);
    }
    Ok(v.get("devices")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(|d| {
                    Some(ScannedDevice {
                        name: str_at(d, &["name"])?,
                        device_type: str_at(d, &["type"]),
                        protocol: str_at(d, &["protocol"]),
                    })
                })
                .collect()
        })
        .unwrap_or_default())
}
