//! `/etc/os-release` (freedesktop os-release(5)): `KEY=value` lines with
//! shell-style quoting. Double-quoted values honour the escapes
//! `\"`, `\\`, `` \` ``, `\$`; single-quoted values are literal.

use std::collections::BTreeMap;

/// A parsed os-release file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub fields: BTreeMap<String, String>,
}

impl OsRelease {
    pub fn parse(text: &str) -> OsRelease {
        let mut fields = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            let k = k.trim();
            if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            fields.insert(k.to_string(), unquote(v.trim()));
        }
        OsRelease { fields }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// `ID` (defaults to `linux` per os-release(5)).
    pub fn id(&self) -> &str {
        self.get("ID").unwrap_or("linux")
    }

    pub fn version_id(&self) -> Option<&str> {
        self.get("VERSION_ID")
    }

    /// `PRETTY_NAME` (defaults to `Linux`).
    pub fn pretty_name(&self) -> &str {
        self.get("PRETTY_NAME").unwrap_or("Linux")
    }

    /// `ID_LIKE`, split.
    pub fn id_like(&self) -> Vec<&str> {
        self.get("ID_LIKE")
            .map(|s| s.split_whitespace().collect())
            .unwrap_or_default()
    }
}

fn unquote(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&n @ ('"' | '\\' | '`' | '$')) => {
                                out.push(n);
                                chars.next();
                            }
                            _ => out.push('\\'),
                        },
                        c => out.push(c),
                    }
                }
            }
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '#' if out.is_empty() => break,
            c if c.is_whitespace() => break,
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_rules() {
        assert_eq!(
            unquote(r#""Debian GNU/Linux 12 (bookworm)""#),
            "Debian GNU/Linux 12 (bookworm)"
        );
        assert_eq!(unquote(r#""a \"b\" \$c \\ d""#), r#"a "b" $c \ d"#);
        assert_eq!(unquote("'x\\y'"), "x\\y");
        assert_eq!(unquote("12"), "12");
    }
}
