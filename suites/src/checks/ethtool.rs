//! Parsers for `ethtool IFACE` (link settings) and `ethtool -i IFACE`
//! (driver information). Pure text in, values out; no I/O.
//!
//! Both outputs are `Key: value` lines; link-mode lists continue on
//! indented lines without a key. Lines that are not part of the format
//! (a `netlink error: …` from an unprivileged run, a `# ethtool …` comment)
//! are ignored.

/// One link mode as ethtool names it (`1000baseT/Full`), with the speed and
/// duplex its name encodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMode {
    pub name: String,
    /// Mb/s, from the leading digits of the name.
    pub speed_mbps: u64,
    /// `Some(true)` for `/Full`, `Some(false)` for `/Half`, `None` when the
    /// name has no duplex suffix.
    pub full_duplex: Option<bool>,
}

impl LinkMode {
    /// Parses a mode name; `None` when it does not start with a speed
    /// (`Not reported`, `Autoneg`).
    pub fn parse(name: &str) -> Option<LinkMode> {
        let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
        let speed_mbps = digits.parse().ok()?;
        if !name[digits.len()..].starts_with("base") {
            return None;
        }
        let full_duplex = match name.rsplit_once('/').map(|(_, d)| d) {
            Some("Full") => Some(true),
            Some("Half") => Some(false),
            _ => None,
        };
        Some(LinkMode {
            name: name.to_string(),
            speed_mbps,
            full_duplex,
        })
    }

    /// Ordering key: faster first, then full duplex over half.
    fn rank(&self) -> (u64, bool) {
        (self.speed_mbps, self.full_duplex.unwrap_or(true))
    }
}

/// `ethtool IFACE`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkSettings {
    pub iface: Option<String>,
    pub supported: Vec<LinkMode>,
    pub advertised: Vec<LinkMode>,
    /// `None` when the output has no `Link partner advertised link modes`
    /// line (the driver does not report it, or auto-negotiation is off).
    pub partner_advertised: Option<Vec<LinkMode>>,
    /// `None` for `Unknown!` or an absent line.
    pub speed_mbps: Option<u64>,
    /// `Full`, `Half`, or the raw text (`Unknown! (255)`).
    pub duplex: Option<String>,
    pub auto_negotiation: Option<bool>,
    pub link_detected: Option<bool>,
}

impl LinkSettings {
    /// The fastest mode both ends advertise: the intersection of our
    /// advertised modes with the partner's when the partner's are reported,
    /// else our advertised modes alone.
    pub fn best_common_mode(&self) -> Option<&LinkMode> {
        self.advertised
            .iter()
            .filter(|m| match &self.partner_advertised {
                Some(p) => p.iter().any(|q| q.name == m.name),
                None => true,
            })
            // Among equals, the first listed.
            .rev()
            .max_by_key(|m| m.rank())
    }
}

/// Why an `ethtool` output could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EthtoolError {
    #[error("not an `ethtool IFACE` output: no `Settings for IFACE:` line")]
    NoSettingsHeader,
    #[error("not an `ethtool -i IFACE` output: no `driver:` line")]
    NoDriverLine,
    #[error("`ethtool` line {line}: speed `{value}` is not `<N>Mb/s` or `Unknown!`")]
    BadSpeed { line: usize, value: String },
}

fn modes(text: &str) -> Vec<LinkMode> {
    text.split_whitespace()
        .filter_map(LinkMode::parse)
        .collect()
}

/// Parses `ethtool IFACE`.
pub fn parse_settings(text: &str) -> Result<LinkSettings, EthtoolError> {
    let mut s = LinkSettings::default();
    let mut seen_header = false;
    // Which mode list an indented continuation line belongs to.
    #[derive(Clone, Copy)]
    enum List {
        None,
        Supported,
        Advertised,
        Partner,
    }
    let mut list = List::None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("Settings for ") {
            seen_header = true;
            s.iface = Some(rest.trim_end_matches(':').to_string());
            list = List::None;
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            // A continuation of a mode list: only mode names, no colon.
            let more = modes(line);
            match list {
                List::Supported => s.supported.extend(more),
                List::Advertised => s.advertised.extend(more),
                List::Partner => s
                    .partner_advertised
                    .get_or_insert_with(Vec::new)
                    .extend(more),
                List::None => {}
            }
            continue;
        };
        let value = value.trim();
        list = List::None;
        match key.trim() {
            "Supported link modes" => {
                s.supported = modes(value);
                list = List::Supported;
            }
            "Advertised link modes" => {
                s.advertised = modes(value);
                list = List::Advertised;
            }
            "Link partner advertised link modes" => {
                s.partner_advertised = Some(modes(value));
                list = List::Partner;
            }
            "Speed" => {
                s.speed_mbps = if value.starts_with("Unknown") {
                    None
                } else {
                    Some(
                        value
                            .strip_suffix("Mb/s")
                            .and_then(|v| v.trim().parse().ok())
                            .ok_or_else(|| EthtoolError::BadSpeed {
                                line: i + 1,
                                value: value.to_string(),
                            })?,
                    )
                };
            }
            "Duplex" => s.duplex = Some(value.to_string()),
            "Auto-negotiation" => s.auto_negotiation = Some(value == "on"),
            "Link detected" => s.link_detected = Some(value == "yes"),
            _ => {}
        }
    }
    if !seen_header {
        return Err(EthtoolError::NoSettingsHeader);
    }
    Ok(s)
}

/// `ethtool -i IFACE`. Empty values are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DriverInfo {
    pub driver: String,
    pub version: Option<String>,
    pub firmware_version: Option<String>,
    pub bus_info: Option<String>,
}

/// Parses `ethtool -i IFACE`.
pub fn parse_driver_info(text: &str) -> Result<DriverInfo, EthtoolError> {
    let mut driver = None;
    let mut info = DriverInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let v = (!value.is_empty()).then(|| value.to_string());
        match key.trim() {
            "driver" => driver = v,
            "version" => info.version = v,
            "firmware-version" => info.firmware_version = v,
            "bus-info" => info.bus_info = v,
            _ => {}
        }
    }
    info.driver = driver.ok_or(EthtoolError::NoDriverLine)?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_carry_speed_and_duplex() {
        let m = LinkMode::parse("40000baseCR4/Full").unwrap();
        assert_eq!((m.speed_mbps, m.full_duplex), (40000, Some(true)));
        assert_eq!(
            LinkMode::parse("10baseT/Half").unwrap().full_duplex,
            Some(false)
        );
        assert!(LinkMode::parse("Not").is_none());
        assert!(LinkMode::parse("1000").is_none());
    }

    #[test]
    fn no_header_is_an_error() {
        assert_eq!(
            parse_settings("driver: e1000e\n"),
            Err(EthtoolError::NoSettingsHeader)
        );
        assert_eq!(
            parse_driver_info("Speed: 1\n"),
            Err(EthtoolError::NoDriverLine)
        );
        assert_eq!(
            parse_settings("Settings for x:\n\tSpeed: fast\n"),
            Err(EthtoolError::BadSpeed {
                line: 2,
                value: "fast".into()
            })
        );
    }
}
