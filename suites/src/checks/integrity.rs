//! System integrity: the running kernel's package files unmodified, module
//! signature enforcement, and Secure Boot.

use crate::checks::kernel::tainting_modules;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;

/// One line of `dpkg --verify` or `rpm -V`: a file that failed a check.
///
/// Both tools print the same layout ("rpm" format in dpkg's terms): nine
/// check characters (`.` passed, `?` could not be checked, a letter or digit
/// failed; the third is the content digest, `5`), a space, an attribute
/// (`c` configuration file; rpm also `d` doc, `g` ghost, `l` licence,
/// `r` readme) or a space, a space, the path. A file that is gone is
/// `missing` in place of the nine characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyLine {
    /// The nine check characters, or `None` for a missing file.
    pub checks: Option<String>,
    /// The attribute character, if any.
    pub attribute: Option<char>,
    pub path: String,
}

impl VerifyLine {
    pub fn missing(&self) -> bool {
        self.checks.is_none()
    }

    /// The content digest differs (`5` in the third position).
    pub fn content_changed(&self) -> bool {
        self.checks
            .as_deref()
            .is_some_and(|c| c.chars().nth(2) == Some('5'))
    }

    /// The content digest could not be checked (`?` in the third position).
    pub fn content_unverified(&self) -> bool {
        self.checks
            .as_deref()
            .is_some_and(|c| c.chars().nth(2) == Some('?'))
    }

    /// A configuration file, which an administrator may change.
    pub fn config(&self) -> bool {
        self.attribute == Some('c')
    }

    /// A file the package marks as not essential (`d` doc, `g` ghost,
    /// `l` licence, `r` readme): missing or changed, it says nothing about
    /// the code that runs.
    pub fn inessential(&self) -> bool {
        matches!(self.attribute, Some('d' | 'g' | 'l' | 'r'))
    }
}

/// Parses the output of `dpkg --verify` or `rpm -V`. Lines that are not in
/// the format (rpm's "Unsatisfied dependencies" notes, dpkg warnings) are
/// returned as the second element.
pub fn parse_verify(text: &str) -> (Vec<VerifyLine>, Vec<String>) {
    let mut lines = Vec::new();
    let mut other = Vec::new();
    for raw in text.lines() {
        if raw.trim().is_empty() {
            continue;
        }
        match parse_verify_line(raw) {
            Some(l) => lines.push(l),
            None => other.push(raw.to_string()),
        }
    }
    (lines, other)
}

fn parse_verify_line(raw: &str) -> Option<VerifyLine> {
    let (checks, rest) = if let Some(rest) = raw.strip_prefix("missing") {
        (None, rest)
    } else {
        let head = raw.get(..9)?;
        if !head
            .chars()
            .all(|c| c == '.' || c == '?' || c.is_ascii_alphanumeric())
        {
            return None;
        }
        (Some(head.to_string()), raw.get(9..)?)
    };
    // Then: spaces, an optional attribute letter followed by a space, the path.
    let rest = rest.trim_start_matches(' ');
    let (attribute, path) = match rest.split_once(' ') {
        Some((a, p)) if a.len() == 1 && !a.starts_with('/') => (a.chars().next(), p.trim_start()),
        _ => (None, rest),
    };
    if !path.starts_with('/') {
        return None;
    }
    Some(VerifyLine {
        checks,
        attribute,
        path: path.to_string(),
    })
}

/// The package manager a target uses, by the program present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackageTool {
    Dpkg,
    Rpm,
}

impl PackageTool {
    fn owner_command(self, path: &str) -> String {
        match self {
            PackageTool::Dpkg => format!("dpkg -S {path}"),
            PackageTool::Rpm => {
                format!("rpm -qf --qf '%{{NAME}}-%{{VERSION}}-%{{RELEASE}}.%{{ARCH}}\\n' {path}")
            }
        }
    }

    fn verify_command(self, package: &str) -> String {
        match self {
            PackageTool::Dpkg => format!("dpkg --verify {package}"),
            PackageTool::Rpm => format!("rpm -V {package}"),
        }
    }

    /// Package names from the owner query's output.
    fn owners(self, stdout: &str) -> Vec<String> {
        let mut out = Vec::new();
        for line in stdout.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let names: Vec<&str> = match self {
                // `pkg1, pkg2: /path` (diversions print `diversion by …`).
                PackageTool::Dpkg => match line.split_once(": ") {
                    Some((pkgs, _)) if !line.starts_with("diversion ") => {
                        pkgs.split(", ").map(str::trim).collect()
                    }
                    _ => Vec::new(),
                },
                PackageTool::Rpm if line.contains(' ') => Vec::new(),
                PackageTool::Rpm => vec![line],
            };
            for n in names {
                if is_package_name(n) && !out.iter().any(|o| o == n) {
                    out.push(n.to_string());
                }
            }
        }
        out
    }
}

/// A package name (with dpkg's `:arch` or rpm's NVRA) safe to put on a
/// command line.
fn is_package_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.:_~^".contains(c))
}

/// The running kernel's packages (image and modules) verify against the
/// package database: no file missing, no file whose content changed
/// (configuration files may change).
pub struct Packages;

impl Check for Packages {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let tool = if ctx.has_command("dpkg")? {
            PackageTool::Dpkg
        } else if ctx.has_command("rpm")? {
            PackageTool::Rpm
        } else {
            return Ok(CaseOutcome::skip(
                "neither dpkg nor rpm is installed: no package database to verify against",
            ));
        };
        let uname = ctx.run("uname -r")?;
        let release = uname.stdout_str().trim().to_string();
        if release.is_empty() || !is_package_name(&release) {
            return Err(CaseError::Infra(format!(
                "`uname -r` printed `{release}`, not a kernel release"
            )));
        }
        // The kernel image (Debian: /boot; Red Hat family: also under
        // /lib/modules) and the directory of its modules.
        let candidates = [
            format!("/boot/vmlinuz-{release}"),
            format!("/lib/modules/{release}/vmlinuz"),
            format!("/lib/modules/{release}/modules.order"),
            format!("/lib/modules/{release}/kernel"),
        ];
        let mut packages: Vec<String> = Vec::new();
        for path in &candidates {
            let out = ctx.run(&tool.owner_command(path))?;
            if out.success() {
                for p in tool.owners(&out.stdout_str()) {
                    if !packages.contains(&p) {
                        packages.push(p);
                    }
                }
            }
        }
        for extra in ctx.param_strings("packages", &[]) {
            if is_package_name(&extra) && !packages.contains(&extra) {
                packages.push(extra);
            }
        }
        if packages.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "no package owns the running kernel {release} (its image and modules were not installed by {}): nothing to verify",
                match tool {
                    PackageTool::Dpkg => "dpkg",
                    PackageTool::Rpm => "rpm",
                }
            )));
        }
        let mut changed = Vec::new();
        let mut unverified = Vec::new();
        let mut config = Vec::new();
        for package in &packages {
            let out = ctx.run(&tool.verify_command(package))?;
            let (lines, other) = parse_verify(&out.stdout_str());
            // Both tools exit non-zero when a file fails; a non-zero exit
            // with nothing parsed is the tool failing (unknown package …).
            if !out.success() && lines.is_empty() {
                let why = out.stderr_str();
                let why = why.lines().chain(other.iter().map(String::as_str)).next();
                return Err(CaseError::Infra(format!(
                    "`{}` failed (exit {:?}) without a verify line: {}",
                    tool.verify_command(package),
                    out.exit,
                    why.unwrap_or("no output")
                )));
            }
            for l in lines {
                let what = format!("{package}: {}", l.path);
                if l.config() || l.inessential() {
                    config.push(what);
                } else if l.missing() {
                    changed.push(format!("{what} (missing)"));
                } else if l.content_changed() {
                    changed.push(format!("{what} (content changed)"));
                } else if l.content_unverified() {
                    unverified.push(what);
                } else if let Some(c) = &l.checks {
                    // Metadata only (mode, owner, mtime): noted.
                    config.push(format!("{what} ({c})"));
                }
            }
        }
        let list = packages.join(", ");
        if !changed.is_empty() {
            let mut reason = format!(
                "{} file(s) of the kernel's packages differ from what was installed: {}",
                changed.len(),
                changed
                    .iter()
                    .take(10)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            if changed.len() > 10 {
                reason.push_str(&format!("; and {} more", changed.len() - 10));
            }
            return Ok(CaseOutcome::fail(reason));
        }
        if !unverified.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "the content of {} file(s) of {list} could not be checked (no permission?): {}",
                unverified.len(),
                unverified
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let mut reason = format!("{list} verified: every file present and unchanged");
        if !config.is_empty() {
            reason.push_str(&format!(
                " ({} configuration or metadata difference(s) allowed: {})",
                config.len(),
                config
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        Ok(CaseOutcome::pass(reason))
    }
}

/// The kernel's lockdown mode from `/sys/kernel/security/lockdown`
/// (`none [integrity] confidentiality`: the bracketed one is in force).
pub fn lockdown_mode(text: &str) -> Option<String> {
    let open = text.find('[')?;
    let close = text[open..].find(']')? + open;
    Some(text[open + 1..close].trim().to_string())
}

/// Taint bit 13, `E`: an unsigned module was loaded into a kernel that
/// supports module signatures.
const TAINT_UNSIGNED_MODULE: u64 = 1 << 13;

/// No unsigned module is loaded, and the module signature state is recorded
/// (enforcement, lockdown).
pub struct ModuleSigning;

impl Check for ModuleSigning {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let enforce = ctx.read("/sys/module/module/parameters/sig_enforce")?;
        let Some(enforce) = enforce else {
            return Ok(CaseOutcome::skip(
                "the kernel has no module signature support (no /sys/module/module/parameters/sig_enforce: built without CONFIG_MODULE_SIG)",
            ));
        };
        let enforced = enforce.trim() == "Y";
        let lockdown = ctx
            .read("/sys/kernel/security/lockdown")?
            .as_deref()
            .and_then(lockdown_mode);
        let tainted = ctx
            .read("/proc/sys/kernel/tainted")?
            .and_then(|t| t.trim().parse::<u64>().ok());
        let Some(tainted) = tainted else {
            return Err(CaseError::Infra(
                "/proc/sys/kernel/tainted is missing or not a number".into(),
            ));
        };
        let state = format!(
            "signature enforcement {}, lockdown {}",
            if enforced { "on" } else { "off" },
            lockdown.as_deref().unwrap_or("not available")
        );
        if tainted & TAINT_UNSIGNED_MODULE != 0 {
            let unsigned: Vec<String> = ctx
                .read("/proc/modules")?
                .map(|m| tainting_modules(&m))
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, flags)| flags.contains('E'))
                .map(|(name, _)| name)
                .collect();
            let who = if unsigned.is_empty() {
                "a module since unloaded".to_string()
            } else {
                unsigned.join(", ")
            };
            return Ok(CaseOutcome::fail(format!(
                "an unsigned module was loaded (taint E): {who}; {state}"
            )));
        }
        Ok(CaseOutcome::pass(format!(
            "no unsigned module loaded; {state}"
        )))
    }
}

/// The EFI global variable GUID (UEFI specification, EFI_GLOBAL_VARIABLE).
const EFI_GLOBAL: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

/// The value of a boolean EFI variable as efivarfs shows it: four bytes of
/// attributes, then the data. `None` when the data byte is missing.
pub fn efivar_bool(bytes: &[u8]) -> Option<bool> {
    bytes.get(4).map(|b| *b == 1)
}

/// What `mokutil --sb-state` says: `Some(true)` enabled, `Some(false)`
/// disabled, `None` when it cannot tell (no EFI variables).
pub fn mokutil_sb_state(text: &str) -> Option<bool> {
    text.lines().find_map(|l| {
        let l = l.trim();
        if l.eq_ignore_ascii_case("SecureBoot enabled") {
            Some(true)
        } else if l.eq_ignore_ascii_case("SecureBoot disabled") {
            Some(false)
        } else {
            None
        }
    })
}

/// UEFI Secure Boot is enabled and the platform is not in setup mode.
pub struct SecureBoot;

impl Check for SecureBoot {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        if !ctx.exists("/sys/firmware/efi")? {
            return Ok(CaseOutcome::skip(
                "booted through legacy BIOS or a firmware without UEFI (no /sys/firmware/efi): Secure Boot does not apply",
            ));
        }
        let var = |name: &str| -> Result<Option<bool>, CaseError> {
            let path = format!("/sys/firmware/efi/efivars/{name}-{EFI_GLOBAL}");
            Ok(ctx
                .read_digested(&path)?
                .and_then(|(bytes, _)| efivar_bool(&bytes)))
        };
        let mut enabled = var("SecureBoot")?;
        if enabled.is_none() {
            if let Some(out) = ctx.run_if_present("mokutil", "mokutil --sb-state")? {
                enabled = mokutil_sb_state(&format!("{}{}", out.stdout_str(), out.stderr_str()));
            }
        }
        let Some(enabled) = enabled else {
            return Ok(CaseOutcome::skip(
                "UEFI boot, but neither the SecureBoot EFI variable nor mokutil tells the Secure Boot state",
            ));
        };
        let setup = var("SetupMode")?.unwrap_or(false);
        if setup {
            return Ok(CaseOutcome::fail(
                "the firmware is in Setup Mode: no platform key is enrolled, so nothing is verified at boot",
            ));
        }
        if enabled {
            Ok(CaseOutcome::pass("UEFI Secure Boot is enabled"))
        } else {
            Ok(CaseOutcome::fail("UEFI Secure Boot is disabled"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_lines_of_both_tools() {
        let (lines, other) = parse_verify(
            "??5??????   /boot/vmlinuz-6.1.0-18-amd64\n\
             missing     /lib/modules/6.1.0-18-amd64/kernel/drivers/net/e1000/e1000.ko\n\
             ??5?????? c /etc/kernel/postinst.d/zz-update-grub\n\
             S.5....T.  c /etc/sysconfig/kernel\n\
             missing   d /usr/share/doc/kernel/README\n\
             .M.......    /lib/modules/5.14.0/vmlinuz\n\
             Unsatisfied dependencies for kernel-core: foo\n",
        );
        assert_eq!(other, vec!["Unsatisfied dependencies for kernel-core: foo"]);
        assert_eq!(lines.len(), 6);
        assert!(lines[0].content_changed() && !lines[0].config());
        assert!(lines[1].missing() && lines[1].attribute.is_none());
        assert!(lines[2].config() && lines[2].content_changed());
        assert_eq!(lines[3].attribute, Some('c'));
        assert_eq!(lines[3].path, "/etc/sysconfig/kernel");
        assert!(lines[4].missing() && lines[4].inessential());
        assert!(!lines[5].content_changed() && lines[5].attribute.is_none());
    }

    #[test]
    fn owners_of_a_path() {
        assert_eq!(
            PackageTool::Dpkg.owners("linux-image-6.1.0-18-amd64: /boot/vmlinuz-6.1.0-18-amd64\n"),
            vec!["linux-image-6.1.0-18-amd64"]
        );
        assert_eq!(
            PackageTool::Dpkg.owners(
                "diversion by foo from: /x\nlinux-modules-6.1, linux-image-6.1: /lib/modules/6.1\n"
            ),
            vec!["linux-modules-6.1", "linux-image-6.1"]
        );
        assert_eq!(
            PackageTool::Rpm.owners("kernel-core-5.14.0-362.8.1.el9_3.x86_64\n"),
            vec!["kernel-core-5.14.0-362.8.1.el9_3.x86_64"]
        );
        assert!(PackageTool::Rpm
            .owners("file /boot/x is not owned by any package\n")
            .is_empty());
    }

    #[test]
    fn lockdown_and_secure_boot_encodings() {
        assert_eq!(
            lockdown_mode("none [integrity] confidentiality\n").as_deref(),
            Some("integrity")
        );
        assert_eq!(
            lockdown_mode("[none] integrity confidentiality").as_deref(),
            Some("none")
        );
        assert_eq!(lockdown_mode("garbage"), None);
        assert_eq!(efivar_bool(&[6, 0, 0, 0, 1]), Some(true));
        assert_eq!(efivar_bool(&[6, 0, 0, 0, 0]), Some(false));
        assert_eq!(efivar_bool(&[6, 0, 0]), None);
        assert_eq!(mokutil_sb_state("SecureBoot enabled\n"), Some(true));
        assert_eq!(
            mokutil_sb_state("SecureBoot disabled\nPlatform is in Setup Mode\n"),
            Some(false)
        );
        assert_eq!(
            mokutil_sb_state("EFI variables are not supported on this system\n"),
            None
        );
    }
}
