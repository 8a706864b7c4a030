//! Decoding of IPMI command data: Get Device ID, SEL records, FRU inventory,
//! SDR sensor records and sensor readings. Pure functions, no I/O.

use super::super::{Health, SelEntry, Thresholds};

/// What Get Device ID says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceId {
    pub device_id: u8,
    pub revision: u8,
    /// "major.minor" as ipmitool prints it (minor is BCD).
    pub firmware: String,
    pub ipmi_version: String,
    pub manufacturer_id: u32,
    pub product_id: u16,
}

pub fn device_id(d: &[u8]) -> Result<DeviceId, String> {
    if d.len() < 11 {
        return Err(format!("get device id: {} bytes, need 11", d.len()));
    }
    Ok(DeviceId {
        device_id: d[0],
        revision: d[1] & 0x0F,
        firmware: format!("{}.{:02x}", d[2] & 0x7F, d[3]),
        ipmi_version: format!("{}.{}", d[4] & 0x0F, d[4] >> 4),
        manufacturer_id: u32::from_le_bytes([d[6], d[7], d[8] & 0x0F, 0]),
        product_id: u16::from_le_bytes([d[9], d[10]]),
    })
}

/// IPMI sensor type names (IPMI 2.0 table 42-3), as ipmitool prints them.
pub fn sensor_type_name(code: u8) -> String {
    let s = match code {
        0x01 => "Temperature",
        0x02 => "Voltage",
        0x03 => "Current",
        0x04 => "Fan",
        0x05 => "Physical Security",
        0x06 => "Platform Security",
        0x07 => "Processor",
        0x08 => "Power Supply",
        0x09 => "Power Unit",
        0x0A => "Cooling Device",
        0x0B => "Other",
        0x0C => "Memory",
        0x0D => "Drive Slot / Bay",
        0x0E => "POST Memory Resize",
        0x0F => "System Firmwares",
        0x10 => "Event Logging Disabled",
        0x11 => "Watchdog1",
        0x12 => "System Event",
        0x13 => "Critical Interrupt",
        0x14 => "Button",
        0x15 => "Module / Board",
        0x16 => "Microcontroller",
        0x17 => "Add-in Card",
        0x18 => "Chassis",
        0x19 => "Chip Set",
        0x1A => "Other FRU",
        0x1B => "Cable / Interconnect",
        0x1C => "Terminator",
        0x1D => "System Boot Initiated",
        0x1E => "Boot Error",
        0x1F => "OS Boot",
        0x20 => "OS Critical Stop",
        0x21 => "Slot / Connector",
        0x22 => "System ACPI Power State",
        0x23 => "Watchdog2",
        0x24 => "Platform Alert",
        0x25 => "Entity Presence",
        0x26 => "Monitor ASIC",
        0x27 => "LAN",
        0x28 => "Management Subsys Health",
        0x29 => "Battery",
        0x2A => "Session Audit",
        0x2B => "Version Change",
        0x2C => "FRU State",
        0xC0..=0xFF => return format!("OEM {code:#04x}"),
        _ => return format!("Unknown {code:#04x}"),
    };
    s.to_string()
}

const THRESHOLD_EVENTS: [(&str, Health); 12] = [
    ("Lower Non-critical going low", Health::Warning),
    ("Lower Non-critical going high", Health::Warning),
    ("Lower Critical going low", Health::Critical),
    ("Lower Critical going high", Health::Critical),
    ("Lower Non-recoverable going low", Health::Critical),
    ("Lower Non-recoverable going high", Health::Critical),
    ("Upper Non-critical going low", Health::Warning),
    ("Upper Non-critical going high", Health::Warning),
    ("Upper Critical going low", Health::Critical),
    ("Upper Critical going high", Health::Critical),
    ("Upper Non-recoverable going low", Health::Critical),
    ("Upper Non-recoverable going high", Health::Critical),
];

/// Sensor-specific event offsets worth naming (IPMI 2.0 table 42-3).
fn sensor_specific(sensor_type: u8, offset: u8) -> Option<(&'static str, Health)> {
    use Health::{Critical, Ok, Warning};
    Some(match (sensor_type, offset) {
        (0x05, 0) => ("General Chassis intrusion", Warning),
        (0x07, 0) => ("IERR", Critical),
        (0x07, 1) => ("Thermal Trip", Critical),
        (0x07, 2) => ("FRB1/BIST failure", Critical),
        (0x07, 5) => ("Configuration Error", Critical),
        (0x07, 7) => ("Presence detected", Ok),
        (0x07, 8) => ("Disabled", Warning),
        (0x07, 10) => ("Throttled", Warning),
        (0x07, 11) => ("Uncorrectable machine check exception", Critical),
        (0x07, 12) => ("Correctable machine check error", Warning),
        (0x08, 0) => ("Presence detected", Ok),
        (0x08, 1) => ("Failure detected", Critical),
        (0x08, 2) => ("Predictive failure", Warning),
        (0x08, 3) => ("Power Supply AC lost", Critical),
        (0x09, 0) => ("Power off/down", Ok),
        (0x09, 4) => ("AC lost", Critical),
        (0x0C, 0) => ("Correctable ECC", Warning),
        (0x0C, 1) => ("Uncorrectable ECC", Critical),
        (0x0C, 2) => ("Parity", Critical),
        (0x0C, 3) => ("Memory Scrub Failed", Critical),
        (0x0C, 4) => ("Memory Device Disabled", Warning),
        (0x0C, 5) => ("Correctable ECC logging limit reached", Warning),
        (0x0C, 6) => ("Presence Detected", Ok),
        (0x0C, 8) => ("Spare", Warning),
        (0x0C, 10) => ("Critical Overtemperature", Critical),
        (0x0D, 0) => ("Drive Present", Ok),
        (0x0D, 1) => ("Drive Fault", Critical),
        (0x0D, 2) => ("Predictive Failure", Warning),
        (0x10, 0) => ("Correctable memory error logging disabled", Warning),
        (0x10, 2) => ("Log area reset/cleared", Ok),
        (0x10, 4) => ("Log full", Warning),
        (0x12, 0) => ("System Reconfigured", Ok),
        (0x12, 1) => ("OEM System boot event", Ok),
        (0x12, 5) => ("Timestamp Clock Sync", Ok),
        (0x13, 0) => ("Front Panel NMI", Critical),
        (0x13, 4) => ("PCI PERR", Critical),
        (0x13, 5) => ("PCI SERR", Critical),
        (0x13, 7) => ("Bus Correctable error", Warning),
        (0x13, 8) => ("Bus Uncorrectable error", Critical),
        (0x13, 9) => ("Fatal NMI", Critical),
        (0x13, 10) => ("Bus Fatal Error", Critical),
        (0x1D, 0) => ("Initiated by power up", Ok),
        (0x1D, 1) => ("Initiated by hard reset", Ok),
        (0x1D, 2) => ("Initiated by warm reset", Ok),
        (0x1F, 1) => ("C: boot completed", Ok),
        (0x20, 0) => ("Critical stop during OS load", Critical),
        (0x20, 1) => ("Run-time critical stop", Critical),
        (0x20, 2) => ("OS graceful stop", Ok),
        (0x23, 0) => ("Timer expired", Warning),
        (0x23, 1) => ("Hard reset", Critical),
        (0x23, 2) => ("Power down", Critical),
        (0x23, 3) => ("Power cycle", Critical),
        _ => return None,
    })
}

/// Decodes one 16-byte SEL record.
pub fn sel_entry(r: &[u8]) -> Result<(u16, SelEntry), String> {
    if r.len() < 16 {
        return Err(format!("sel record of {} bytes, need 16", r.len()));
    }
    let id = u16::from_le_bytes([r[0], r[1]]);
    let rtype = r[2];
    let ts = u32::from_le_bytes([r[3], r[4], r[5], r[6]]);
    let timestamp = if (0xC0..=0xDF).contains(&rtype) || rtype == 0x02 {
        sel_time(ts)
    } else {
        None
    };
    let entry = if rtype == 0x02 {
        let sensor_type = r[10];
        let sensor_num = r[11];
        let deassert = r[12] & 0x80 != 0;
        let event_type = r[12] & 0x7F;
        let data1 = r[13];
        let offset = data1 & 0x0F;
        let (what, severity) = match event_type {
            0x01 => THRESHOLD_EVENTS
                .get(usize::from(offset))
                .map(|(t, s)| (t.to_string(), *s))
                .unwrap_or_else(|| (format!("threshold offset {offset}"), Health::Unknown)),
            0x6F => sensor_specific(sensor_type, offset)
                .map(|(t, s)| (t.to_string(), s))
                .unwrap_or_else(|| (format!("sensor-specific offset {offset}"), Health::Unknown)),
            0x02..=0x0C => (
                format!("generic event type {event_type:#04x} offset {offset}"),
                Health::Unknown,
            ),
            _ => (
                format!("event type {event_type:#04x} offset {offset}"),
                Health::Unknown,
            ),
        };
        // A deasserted problem is the problem going away.
        let severity = if deassert && severity != Health::Unknown {
            Health::Ok
        } else {
            severity
        };
        let mut message = format!(
            "{} #{sensor_num:#04x} | {what} | {}",
            sensor_type_name(sensor_type),
            if deassert { "Deasserted" } else { "Asserted" }
        );
        if event_type == 0x01 && data1 & 0x30 == 0x10 {
            message.push_str(&format!(" | reading {:#04x}", r[14]));
        }
        SelEntry {
            id: id.to_string(),
            timestamp,
            sensor_type: Some(sensor_type_name(sensor_type)),
            severity,
            message,
        }
    } else if (0xC0..=0xDF).contains(&rtype) {
        SelEntry {
            id: id.to_string(),
            timestamp,
            sensor_type: None,
            severity: Health::Unknown,
            message: format!(
                "OEM record {rtype:#04x} manufacturer {:#08x} data {}",
                u32::from_le_bytes([r[7], r[8], r[9], 0]),
                hex::encode(&r[10..16])
            ),
        }
    } else {
        SelEntry {
            id: id.to_string(),
            timestamp: None,
            sensor_type: None,
            severity: Health::Unknown,
            message: format!("OEM record {rtype:#04x} data {}", hex::encode(&r[3..16])),
        }
    };
    Ok((id, entry))
}

/// SEL/SDR timestamps: seconds since 1970; values up to 0x20000000 count
/// from BMC initialisation ("Pre-Init"), 0xFFFFFFFF is "unspecified".
pub fn sel_time(ts: u32) -> Option<time::OffsetDateTime> {
    if ts <= 0x2000_0000 || ts == 0xFFFF_FFFF {
        return None;
    }
    time::OffsetDateTime::from_unix_timestamp(i64::from(ts)).ok()
}

/// Product identity read from FRU inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fru {
    pub board_manufacturer: Option<String>,
    pub board_product: Option<String>,
    pub board_serial: Option<String>,
    pub product_manufacturer: Option<String>,
    pub product_name: Option<String>,
    pub product_version: Option<String>,
    pub product_serial: Option<String>,
}

/// Decodes the board and product areas of a FRU inventory image.
pub fn fru(data: &[u8]) -> Result<Fru, String> {
    if data.len() < 8 {
        return Err("fru image shorter than its common header".into());
    }
    if data[0] & 0x0F != 0x01 {
        return Err(format!("fru common header version {:#04x}", data[0]));
    }
    if !checksum_ok(&data[..8]) {
        return Err("fru common header checksum mismatch".into());
    }
    let mut out = Fru::default();
    let board = usize::from(data[3]) * 8;
    if board != 0 {
        // version, length, language, mfg date (3), then type/length fields.
        let fields = area_fields(data, board, 6)?;
        let mut it = fields.into_iter();
        out.board_manufacturer = it.next().flatten();
        out.board_product = it.next().flatten();
        out.board_serial = it.next().flatten();
    }
    let product = usize::from(data[4]) * 8;
    if product != 0 {
        // version, length, language, then manufacturer, name, part/model,
        // version, serial, asset tag, fru file id.
        let fields = area_fields(data, product, 3)?;
        let mut it = fields.into_iter();
        out.product_manufacturer = it.next().flatten();
        out.product_name = it.next().flatten();
        let _part = it.next();
        out.product_version = it.next().flatten();
        out.product_serial = it.next().flatten();
    }
    Ok(out)
}

fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |a, b| a.wrapping_add(*b)) == 0
}

/// The type/length fields of an area starting at `start`, after `skip`
/// fixed bytes, until the 0xC1 end marker.
fn area_fields(data: &[u8], start: usize, skip: usize) -> Result<Vec<Option<String>>, String> {
    let len = usize::from(*data.get(start + 1).ok_or("fru area beyond the image")?) * 8;
    let area = data
        .get(start..start + len)
        .ok_or("fru area beyond the image")?;
    let mut pos = skip;
    let mut out = Vec::new();
    while let Some(&tl) = area.get(pos) {
        if tl == 0xC1 {
            break;
        }
        let n = usize::from(tl & 0x3F);
        let bytes = area
            .get(pos + 1..pos + 1 + n)
            .ok_or("fru field beyond its area")?;
        out.push(decode_field(tl >> 6, bytes));
        pos += 1 + n;
    }
    Ok(out)
}

/// A FRU/SDR type/length field's value.
fn decode_field(kind: u8, bytes: &[u8]) -> Option<String> {
    let s = match kind {
        0b11 => bytes.iter().map(|&b| char::from(b)).collect::<String>(),
        0b10 => unpack_6bit(bytes),
        0b01 => bytes
            .iter()
            .flat_map(|b| [b & 0x0F, b >> 4])
            .map(|n| match n {
                0..=9 => char::from(b'0' + n),
                0xA => ' ',
                0xB => '-',
                0xC => '.',
                _ => '?',
            })
            .collect(),
        _ => hex::encode(bytes),
    };
    let s = s.trim_end_matches(['\0', ' ']).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn unpack_6bit(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        acc |= u32::from(b) << bits;
        bits += 8;
        while bits >= 6 {
            out.push(char::from(0x20 + (acc & 0x3F) as u8));
            acc >>= 6;
            bits -= 6;
        }
    }
    out
}

/// What a sensor's SDR says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorRecord {
    pub record_id: u16,
    pub owner: u8,
    pub lun: u8,
    pub number: u8,
    pub name: String,
    pub sensor_type: u8,
    pub event_type: u8,
    pub unit: Option<String>,
    /// Full sensor records only: how raw readings become values.
    pub conversion: Option<Conversion>,
}

/// The linear conversion of a full sensor record:
/// `y = L[(M·x + B·10^K1) · 10^K2]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conversion {
    pub m: i16,
    pub b: i16,
    /// B exponent.
    pub k1: i8,
    /// Result exponent.
    pub k2: i8,
    /// 0 unsigned, 1 one's complement, 2 two's complement, 3 no reading.
    pub format: u8,
    pub linearization: u8,
}

fn sign_extend(v: u16, bits: u32) -> i16 {
    let shift = 16 - bits;
    ((v << shift) as i16) >> shift
}

/// Parses an SDR (header included). `None` for records that are not
/// sensors (locators, OEM records).
pub fn sensor_record(r: &[u8]) -> Result<Option<SensorRecord>, String> {
    if r.len() < 5 {
        return Err("sdr shorter than its header".into());
    }
    let record_id = u16::from_le_bytes([r[0], r[1]]);
    let rtype = r[3];
    let (id_at, conversion) = match rtype {
        0x01 => {
            if r.len() < 48 {
                return Err(format!(
                    "full sensor record {record_id} of {} bytes",
                    r.len()
                ));
            }
            let m = sign_extend(u16::from(r[24]) | (u16::from(r[25] & 0xC0) << 2), 10);
            let b = sign_extend(u16::from(r[26]) | (u16::from(r[27] & 0xC0) << 2), 10);
            let k2 = (((r[29] >> 4) as i8) << 4) >> 4;
            let k1 = (((r[29] & 0x0F) as i8) << 4) >> 4;
            (
                47,
                Some(Conversion {
                    m,
                    b,
                    k1,
                    k2,
                    format: r[20] >> 6,
                    linearization: r[23] & 0x7F,
                }),
            )
        }
        0x02 => {
            if r.len() < 32 {
                return Err(format!(
                    "compact sensor record {record_id} of {} bytes",
                    r.len()
                ));
            }
            (31, None)
        }
        _ => return Ok(None),
    };
    let name = match r.get(id_at) {
        Some(&tl) => {
            let n = usize::from(tl & 0x1F);
            let bytes = r
                .get(id_at + 1..(id_at + 1 + n).min(r.len()))
                .unwrap_or(&[]);
            decode_field(tl >> 6, bytes).unwrap_or_default()
        }
        None => String::new(),
    };
    let units1 = r[20];
    let unit = if units1 & 0x01 != 0 {
        Some("%".to_string())
    } else {
        unit_name(r[21])
    };
    Ok(Some(SensorRecord {
        record_id,
        owner: r[5],
        lun: r[6] & 0x03,
        number: r[7],
        name,
        sensor_type: r[12],
        event_type: r[13],
        unit,
        conversion,
    }))
}

/// IPMI base unit codes as UCUM (what Redfish uses).
fn unit_name(code: u8) -> Option<String> {
    let s = match code {
        0 => return None,
        1 => "Cel",
        2 => "[degF]",
        3 => "K",
        4 => "V",
        5 => "A",
        6 => "W",
        7 => "J",
        18 => "RPM",
        19 => "Hz",
        20 => "us",
        21 => "ms",
        22 => "s",
        _ => return Some(format!("ipmi-unit-{code}")),
    };
    Some(s.to_string())
}

impl Conversion {
    /// Converts a raw reading; `None` for readings without an analog format
    /// or a non-finite result.
    pub fn value(&self, raw: u8) -> Option<f64> {
        let x = match self.format {
            0 => f64::from(raw),
            1 => {
                let v = raw as i8;
                f64::from(if v < 0 { v + 1 } else { v })
            }
            2 => f64::from(raw as i8),
            _ => return None,
        };
        let y = (f64::from(self.m) * x + f64::from(self.b) * 10f64.powi(i32::from(self.k1)))
            * 10f64.powi(i32::from(self.k2));
        let y = match self.linearization {
            0 => y,
            1 => y.ln(),
            2 => y.log10(),
            3 => y.log2(),
            4 => y.exp(),
            5 => 10f64.powf(y),
            6 => 2f64.powf(y),
            7 => 1.0 / y,
            8 => y * y,
            9 => y * y * y,
            10 => y.sqrt(),
            11 => y.cbrt(),
            _ => return None,
        };
        // Round away binary noise (ipmitool prints 3 decimals).
        y.is_finite().then(|| (y * 1000.0).round() / 1000.0)
    }
}

/// A Get Sensor Reading answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reading {
    pub raw: u8,
    /// Scanning disabled or reading unavailable.
    pub unavailable: bool,
    /// Threshold comparison bits (lnc, lc, lnr, unc, uc, unr), when sent.
    pub state: Option<u8>,
}

pub fn reading(d: &[u8]) -> Result<Reading, String> {
    if d.len() < 2 {
        return Err(format!("get sensor reading: {} bytes, need 2", d.len()));
    }
    Ok(Reading {
        raw: d[0],
        unavailable: d[1] & 0x20 != 0 || d[1] & 0x40 == 0,
        state: d.get(2).copied(),
    })
}

/// Status from the threshold comparison bits of a reading.
pub fn threshold_status(state: u8) -> Health {
    if state & 0b0011_0110 != 0 {
        Health::Critical
    } else if state & 0b0000_1001 != 0 {
        Health::Warning
    } else {
        Health::Ok
    }
}

/// Get Sensor Thresholds answer converted with the sensor's factors.
pub fn thresholds(d: &[u8], conv: &Conversion) -> Thresholds {
    let mut t = Thresholds::default();
    if d.len() < 7 {
        return t;
    }
    let mask = d[0];
    let get = |bit: u8, raw: u8| (mask & (1 << bit) != 0).then(|| conv.value(raw)).flatten();
    t.lower_caution = get(0, d[1]);
    t.lower_critical = get(1, d[2]);
    t.lower_fatal = get(2, d[3]);
    t.upper_caution = get(3, d[4]);
    t.upper_critical = get(4, d[5]);
    t.upper_fatal = get(5, d[6]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_id_as_ipmitool_prints_it() {
        let d = [
            0x00, 0x03, 0x09, 0x08, 0x02, 0x9f, 0x91, 0x12, 0x00, 0x02, 0x0f, 0, 0, 0, 0,
        ];
        let id = device_id(&d).map_err(|e| e.to_string());
        let id = id.as_ref().map(|i| {
            (
                i.firmware.as_str(),
                i.ipmi_version.as_str(),
                i.manufacturer_id,
                i.product_id,
            )
        });
        assert_eq!(id, Ok(("9.08", "2.0", 4753, 0x0f02)));
    }

    #[test]
    fn threshold_sel_record() {
        // id 3, system event, ts, generator 0x20, evm 4, temperature #2,
        // threshold assert, upper critical going high, reading 0x5a.
        let r = [
            0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x60, 0x20, 0x00, 0x04, 0x01, 0x02, 0x01, 0x59,
            0x5a, 0x50,
        ];
        let (id, e) = sel_entry(&r)
            .map_err(|e| e.to_string())
            .unwrap_or_default_entry();
        assert_eq!(id, 3);
        assert_eq!(e.severity, Health::Critical);
        assert_eq!(e.sensor_type.as_deref(), Some("Temperature"));
        assert!(
            e.message.contains("Upper Critical going high"),
            "{}",
            e.message
        );
        assert!(e.timestamp.is_some());
    }

    #[test]
    fn pre_init_timestamps_are_none() {
        assert_eq!(sel_time(0x100), None);
        assert_eq!(sel_time(0xFFFF_FFFF), None);
        assert!(sel_time(1_700_000_000).is_some());
    }

    #[test]
    fn memory_ecc_is_critical_and_deassert_is_ok() {
        let mut r = [0u8; 16];
        r[2] = 0x02;
        r[10] = 0x0C;
        r[12] = 0x6F;
        r[13] = 0x01;
        let (_, e) = sel_entry(&r)
            .map_err(|e| e.to_string())
            .unwrap_or_default_entry();
        assert_eq!(e.severity, Health::Critical);
        assert!(e.message.contains("Uncorrectable ECC"));
        assert_eq!(e.timestamp, None);
        r[12] |= 0x80;
        let (_, e) = sel_entry(&r)
            .map_err(|e| e.to_string())
            .unwrap_or_default_entry();
        assert_eq!(e.severity, Health::Ok);
    }

    trait OrDefault {
        fn unwrap_or_default_entry(self) -> (u16, SelEntry);
    }
    impl OrDefault for Result<(u16, SelEntry), String> {
        fn unwrap_or_default_entry(self) -> (u16, SelEntry) {
            match self {
                Ok(v) => v,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn tl(s: &str) -> Vec<u8> {
        let mut v = vec![0xC0 | s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn area(fixed: &[u8], fields: &[&str]) -> Vec<u8> {
        let mut a = fixed.to_vec();
        for f in fields {
            a.extend(tl(f));
        }
        a.push(0xC1);
        while (a.len() + 1) % 8 != 0 {
            a.push(0);
        }
        a.push(0);
        a[1] = (a.len() / 8) as u8;
        let c = a.iter().fold(0u8, |x, y| x.wrapping_add(*y)).wrapping_neg();
        let n = a.len();
        a[n - 1] = c;
        a
    }

    #[test]
    fn fru_board_and_product_areas() {
        let board = area(
            &[1, 0, 0, 0, 0, 0],
            &["Acme", "Mainboard X", "BRD123", "PN1", ""],
        );
        let product = area(
            &[1, 0, 0],
            &["Acme Corp", "Server 9000", "M9000", "1.2", "SN-42", "", ""],
        );
        let mut hdr = vec![1, 0, 0, 1, (1 + board.len() / 8) as u8, 0, 0];
        hdr.push(
            hdr.iter()
                .fold(0u8, |x, y| x.wrapping_add(*y))
                .wrapping_neg(),
        );
        let mut img = hdr;
        img.extend(&board);
        img.extend(&product);
        let f = fru(&img);
        assert_eq!(
            f,
            Ok(Fru {
                board_manufacturer: Some("Acme".into()),
                board_product: Some("Mainboard X".into()),
                board_serial: Some("BRD123".into()),
                product_manufacturer: Some("Acme Corp".into()),
                product_name: Some("Server 9000".into()),
                product_version: Some("1.2".into()),
                product_serial: Some("SN-42".into()),
            })
        );
    }

    #[test]
    fn six_bit_ascii() {
        // "IPMI" packed: I=0x29 P=0x30 M=0x2D I=0x29
        assert_eq!(
            unpack_6bit(&[
                0x29 | (0x30 << 6) as u8,
                (0x30 >> 2) | (0x2D << 4) as u8,
                (0x2D >> 4) | (0x29 << 2)
            ]),
            "IPMI"
        );
    }

    #[test]
    fn linear_conversion_with_exponents_and_signs() {
        // M=2, B=-5, K1=1, K2=-1: (2x - 50) / 10.
        let c = Conversion {
            m: 2,
            b: -5,
            k1: 1,
            k2: -1,
            format: 0,
            linearization: 0,
        };
        assert_eq!(c.value(100), Some(15.0));
        let c2 = Conversion { format: 2, ..c };
        assert_eq!(c2.value(0xFF), Some(-5.2));
        assert_eq!(Conversion { format: 3, ..c }.value(1), None);
        assert_eq!(sign_extend(0x3FF, 10), -1);
        assert_eq!(sign_extend(0x1FF, 10), 511);
    }

    #[test]
    fn full_sensor_record_fields() {
        let mut r = vec![0u8; 47];
        r[0] = 5; // record id
        r[2] = 0x51;
        r[3] = 0x01;
        r[5] = 0x20;
        r[7] = 0x02;
        r[12] = 0x01;
        r[13] = 0x01;
        r[21] = 1; // degrees C
        r[24] = 0xFF; // M low
        r[25] = 0xC0; // M high bits: M = -1
        r[26] = 10; // B
        r[29] = 0xF2; // K2 = -1, K1 = 2
        r.extend(tl("CPU Temp"));
        r[4] = (r.len() - 5) as u8;
        let s = sensor_record(&r);
        let s = match s {
            Ok(Some(s)) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(s.name, "CPU Temp");
        assert_eq!(s.unit.as_deref(), Some("Cel"));
        assert_eq!(
            s.conversion,
            Some(Conversion {
                m: -1,
                b: 10,
                k1: 2,
                k2: -1,
                format: 0,
                linearization: 0
            })
        );
    }

    #[test]
    fn threshold_bits() {
        assert_eq!(threshold_status(0), Health::Ok);
        assert_eq!(threshold_status(0b1000), Health::Warning);
        assert_eq!(threshold_status(0b1_0000), Health::Critical);
    }
}
