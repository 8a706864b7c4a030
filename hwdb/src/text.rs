//! Small text helpers shared by the parsers.

/// Split `key : value` (any run of spaces/tabs around the first colon).
/// Returns `None` for lines without a colon or with an empty key.
pub(crate) fn split_kv(line: &str) -> Option<(&str, &str)> {
    let (k, v) = line.split_once(':')?;
    let k = k.trim();
    if k.is_empty() {
        return None;
    }
    Some((k, v.trim()))
}

/// Parse `0x1f`, `1f` as hexadecimal.
pub(crate) fn parse_hex_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

/// Parse `0x1f` as hexadecimal and `31` as decimal.
pub(crate) fn parse_int_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else {
        s.parse().ok()
    }
}

/// Values vendors leave in firmware fields instead of data.
pub(crate) fn is_placeholder(v: &str) -> bool {
    let l = v.trim().to_ascii_lowercase();
    l.is_empty()
        || l == "-"
        || l == "--"
        || l == "none"
        || l == "n/a"
        || l == "na"
        || l == "unknown"
        || l == "default string"
        || l == "not specified"
        || l == "not applicable"
        || l == "not provided"
        || l == "to be filled by o.e.m."
        || l == "to be filled by o.e.m"
        || l == "system product name"
        || l == "system manufacturer"
        || l == "<bad index>"
        || l == "<out of spec>"
        || l == "0123456789"
        || l.chars().all(|c| c == '.' || c == ' ')
}

/// `Some(trimmed)` unless it is a placeholder.
pub(crate) fn real_value(v: &str) -> Option<String> {
    if is_placeholder(v) {
        None
    } else {
        Some(v.trim().to_string())
    }
}
