//! Firmware check: BIOS and BMC versions recorded, SMBIOS identity filled in.

use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

/// Placeholder strings that firmware vendors leave in SMBIOS when the
/// system integrator did not fill the field.
const PLACEHOLDERS: &[&str] = &[
    "to be filled by o.e.m.",
    "default string",
    "system product name",
    "system manufacturer",
    "not specified",
    "not applicable",
    "none",
    "oem",
    "o.e.m.",
    "0123456789",
    "1234567890",
    "xxxxx",
    "type1productconfigid",
];

/// Whether an SMBIOS string is empty or a known placeholder.
pub fn is_placeholder(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    v.is_empty() || PLACEHOLDERS.contains(&v.as_str())
}

/// BIOS (and BMC, when visible) versions are recorded, and the system
/// identifies itself in SMBIOS.
pub struct Versions;

impl Check for Versions {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let dmi = "/sys/class/dmi/id";
        if ctx.list_dir(dmi)?.is_none() {
            return Ok(CaseOutcome::skip(
                "the firmware publishes no SMBIOS/DMI tables (/sys/class/dmi/id is absent)",
            ));
        }
        let mut facts = Vec::new();
        let mut problems = Vec::new();
        for (field, label, required) in [
            ("sys_vendor", "system vendor", true),
            ("product_name", "product", true),
            ("bios_vendor", "BIOS vendor", false),
            ("bios_version", "BIOS version", true),
            ("bios_date", "BIOS date", false),
            ("board_name", "board", false),
        ] {
            match ctx.read(&format!("{dmi}/{field}"))? {
                Some(v) if !is_placeholder(&v) => facts.push(format!("{label} `{}`", v.trim())),
                Some(v) if required => problems.push(format!(
                    "{label} is a placeholder (`{}`): SMBIOS does not identify the system",
                    v.trim()
                )),
                None if required => problems.push(format!("{label} is not published")),
                _ => {}
            }
        }
        if ctx.exists("/dev/ipmi0")? && ctx.has_command("ipmitool")? {
            let o = ctx.run("ipmitool mc info")?;
            if o.success() {
                let text = o.stdout_str();
                let get = |k: &str| {
                    text.lines().find_map(|l| {
                        let (a, b) = l.split_once(':')?;
                        (a.trim() == k).then(|| b.trim().to_string())
                    })
                };
                facts.push(format!(
                    "BMC firmware {} (manufacturer id {})",
                    get("Firmware Revision").unwrap_or_else(|| "?".into()),
                    get("Manufacturer ID").unwrap_or_else(|| "?".into())
                ));
            } else {
                facts.push(format!(
                    "BMC present but not answering: {}",
                    o.stderr_str().trim()
                ));
            }
        } else {
            facts.push("no in-band BMC interface (/dev/ipmi0)".to_string());
        }
        if problems.is_empty() {
            Ok(CaseOutcome::pass(facts.join("; ")))
        } else {
            Ok(CaseOutcome::fail(format!(
                "{}; {}",
                problems.join("; "),
                facts.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        assert!(is_placeholder("To Be Filled By O.E.M.\n"));
        assert!(is_placeholder(""));
        assert!(!is_placeholder("PowerEdge R750"));
    }
}
