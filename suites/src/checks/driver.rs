//! Driver suite: NIC link against what both ends advertise, and the driver
//! and firmware versions of NICs and NVMe controllers.

use certlab_lab::target::shell_quote;

use crate::checks::ethtool::{self, LinkSettings};
use crate::checks::smartctl;
use crate::context::{CaseCtx, CaseError, CaseOutcome};
use crate::plan::Check;
use crate::requires::Requires;
use crate::walk;

/// The physical NICs (a `device` link in sysfs, not under `virtual/`) of a
/// [`walk::NET_WALK`], with their bound driver; `Err` is the skip reason.
fn physical_nics(ctx: &CaseCtx<'_>) -> Result<Result<Vec<String>, String>, CaseError> {
    let out = ctx.run(walk::NET_WALK)?;
    let recs = walk::parse_records(&out.stdout_str());
    let nics: Vec<String> = recs
        .iter()
        .filter(|(_, a)| a.contains_key("has_device") && !a.contains_key("virtual"))
        .map(|(n, _)| n.clone())
        .collect();
    if nics.is_empty() {
        return Ok(Err(format!(
            "no physical network interfaces (sysfs lists {}: none has a device link)",
            recs.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(Ok(nics))
}

/// What one NIC's link settings say against the rule "the link runs at the
/// fastest mode both ends advertise".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkJudgement {
    Ok(String),
    Bad(String),
    /// Cannot be judged, with why.
    Unknown(String),
}

/// Judges `ethtool IFACE` of one NIC.
pub fn judge_link(iface: &str, s: &LinkSettings) -> LinkJudgement {
    if s.link_detected == Some(false) {
        return LinkJudgement::Bad(format!("{iface}: no link detected"));
    }
    let Some(speed) = s.speed_mbps else {
        return LinkJudgement::Unknown(format!(
            "{iface}: the driver reports no speed (Speed: Unknown, as virtual NICs such as virtio_net do)"
        ));
    };
    let Some(best) = s.best_common_mode() else {
        let why = if s.advertised.is_empty() {
            "it advertises no link modes"
        } else {
            "it and its link partner advertise no mode in common"
        };
        return LinkJudgement::Unknown(format!("{iface}: {speed} Mb/s, but {why}"));
    };
    let duplex = s.duplex.as_deref().unwrap_or("unknown");
    let full = duplex == "Full";
    let whose = if s.partner_advertised.is_some() {
        "both ends advertise"
    } else {
        "it advertises (partner's modes not reported)"
    };
    let facts = format!(
        "{iface}: {speed} Mb/s {duplex} duplex; best mode {whose}: {}",
        best.name
    );
    if speed < best.speed_mbps
        || (speed == best.speed_mbps && best.full_duplex == Some(true) && !full)
    {
        LinkJudgement::Bad(format!("{facts} — link below the best common mode"))
    } else {
        LinkJudgement::Ok(facts)
    }
}

/// Every physical NIC has link at the fastest mode both ends advertise.
pub struct NicLink;

impl Check for NicLink {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let nics = match physical_nics(ctx)? {
            Ok(n) => n,
            Err(why) => return Ok(CaseOutcome::skip(why)),
        };
        if !ctx.has_command("ethtool")? {
            return Ok(CaseOutcome::skip(
                "ethtool is not installed on the target, so link modes cannot be read",
            ));
        }
        let (mut ok, mut bad, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
        for nic in &nics {
            let out = ctx.run(&format!("ethtool {}", shell_quote(nic)))?;
            let text = out.stdout_str();
            let settings = match ethtool::parse_settings(&text) {
                Ok(s) => s,
                Err(e) => {
                    unknown.push(format!("{nic}: ethtool exited {:?}: {e}", out.exit));
                    continue;
                }
            };
            match judge_link(nic, &settings) {
                LinkJudgement::Ok(s) => ok.push(s),
                LinkJudgement::Bad(s) => bad.push(s),
                LinkJudgement::Unknown(s) => unknown.push(s),
            }
        }
        let mut parts = Vec::new();
        for (label, v) in [
            ("failing", &bad),
            ("at full speed", &ok),
            ("not judged", &unknown),
        ] {
            if !v.is_empty() {
                parts.push(format!("{label}: {}", v.join("; ")));
            }
        }
        let reason = parts.join(" | ");
        Ok(if !bad.is_empty() {
            CaseOutcome::fail(reason)
        } else if !ok.is_empty() {
            CaseOutcome::pass(reason)
        } else {
            CaseOutcome::skip(reason)
        })
    }
}

/// Records the driver and firmware version of every physical NIC
/// (`ethtool -i`) and NVMe controller (sysfs `firmware_rev`, `model`).
pub struct Versions;

const NVME_CLASS: &str = "/sys/class/nvme";

impl Check for Versions {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        let mut found = Vec::new();
        let mut unreadable = Vec::new();
        match physical_nics(ctx)? {
            Ok(nics) if ctx.has_command("ethtool")? => {
                for nic in &nics {
                    let out = ctx.run(&format!("ethtool -i {}", shell_quote(nic)))?;
                    match ethtool::parse_driver_info(&out.stdout_str()) {
                        Ok(i) => found.push(format!(
                            "{nic}: driver {} {}, firmware {}, bus {}",
                            i.driver,
                            i.version.as_deref().unwrap_or("(no version)"),
                            i.firmware_version.as_deref().unwrap_or("(none reported)"),
                            i.bus_info.as_deref().unwrap_or("(none)")
                        )),
                        Err(e) => unreadable.push(format!("{nic}: {e}")),
                    }
                }
            }
            Ok(_) => unreadable.push("NICs: ethtool is not installed".to_string()),
            Err(why) => unreadable.push(why),
        }
        match ctx.list_dir(NVME_CLASS)? {
            Some(entries) => {
                for e in entries.iter().filter(|e| e.name.starts_with("nvme")) {
                    let base = format!("{NVME_CLASS}/{}", e.name);
                    let model = ctx.read(&format!("{base}/model"))?;
                    let fw = ctx.read(&format!("{base}/firmware_rev"))?;
                    match (model, fw) {
                        (Some(m), Some(f)) => {
                            found.push(format!("{}: {} firmware {}", e.name, m.trim(), f.trim()))
                        }
                        _ => {
                            unreadable.push(format!("{}: model or firmware_rev unreadable", e.name))
                        }
                    }
                }
            }
            None => unreadable.push(format!("no NVMe controllers ({NVME_CLASS} absent)")),
        }
        let mut reason = found.join("; ");
        if !unreadable.is_empty() {
            if !reason.is_empty() {
                reason.push_str(" | ");
            }
            reason.push_str("not recorded: ");
            reason.push_str(&unreadable.join("; "));
        }
        Ok(if found.is_empty() {
            CaseOutcome::skip(reason)
        } else {
            CaseOutcome::pass(reason)
        })
    }
}

/// Every SMART-capable disk says it is healthy (`smartctl --json -i -H -A`).
pub struct StorageHealth;

/// Emulated disks, by the model strings hypervisors give them.
fn is_virtual_model(model: &str) -> bool {
    model.starts_with("QEMU") || model.contains("Virtual disk") || model.starts_with("VBOX")
}

impl Check for StorageHealth {
    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        if !ctx.has_command("smartctl")? {
            return Ok(CaseOutcome::skip(
                "smartctl (smartmontools) is not installed on the target",
            ));
        }
        let scan = ctx.run("smartctl --scan-open --json")?;
        let devices = match smartctl::parse_scan(&scan.stdout_str()) {
            Ok(d) => d,
            Err(e) => {
                return Ok(CaseOutcome::skip(format!(
                    "smartctl --scan-open gave no device list (exit {:?}): {e}",
                    scan.exit
                )))
            }
        };
        if devices.is_empty() {
            return Ok(CaseOutcome::skip(
                "smartctl --scan-open found no SMART devices (virtio disks such as vda have none)",
            ));
        }
        let (mut failing, mut degraded, mut healthy, mut unjudged) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for d in &devices {
            let dtype = d
                .device_type
                .as_deref()
                .map(|t| format!(" -d {}", shell_quote(t)))
                .unwrap_or_default();
            let cmd = format!("smartctl --json -i -H -A{dtype} {}", shell_quote(&d.name));
            let out = ctx.run(&cmd)?;
            let r = match smartctl::parse_report(&out.stdout_str()) {
                Ok(r) => r,
                Err(e) => {
                    unjudged.push(format!("{}: {e}", d.name));
                    continue;
                }
            };
            let model = r.model.clone().unwrap_or_else(|| "unknown model".into());
            let who = format!("{} ({model})", d.name);
            if is_virtual_model(&model) {
                unjudged.push(format!("{who}: emulated disk, no SMART data"));
                continue;
            }
            if let Some(f) = r.failure() {
                failing.push(format!("{who}: {f}"));
                continue;
            }
            if r.passed.is_none() {
                let why = r
                    .messages
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "no SMART health status reported".into());
                unjudged.push(format!("{who}: {why}"));
                continue;
            }
            let notes = r.degraded();
            if notes.is_empty() {
                healthy.push(format!("{who}: PASSED"));
            } else {
                degraded.push(format!("{who}: PASSED but {}", notes.join(", ")));
            }
        }
        let mut parts = Vec::new();
        for (label, v) in [
            ("failing", &failing),
            ("degraded (warning)", &degraded),
            ("healthy", &healthy),
            ("not judged", &unjudged),
        ] {
            if !v.is_empty() {
                parts.push(format!("{label}: {}", v.join("; ")));
            }
        }
        let reason = parts.join(" | ");
        Ok(if !failing.is_empty() {
            CaseOutcome::fail(reason)
        } else if healthy.is_empty() && degraded.is_empty() {
            CaseOutcome::skip(reason)
        } else {
            CaseOutcome::pass(reason)
        })
    }
}

/// Prints `boot=DRIVER` for every driver on the sysfs path of the disk that
/// holds `/` (through one level of dm/md slaves), and `mgmt=DRIVER` for the
/// driver of each interface that carries a default route (`/proc/net/route`
/// destination 00000000).
pub const PROTECTED_WALK: &str = r#": certlab protected-drivers; drivers() { d=$(readlink -f "$1"); while [ -n "$d" ] && [ "$d" != / ]; do [ -L "$d/driver" ] && l=$(readlink "$d/driver") && printf '%s=%s\n' "$2" "${l##*/}"; d=${d%/*}; done; }; dev=$(awk '$2=="/"{print $1}' /proc/mounts | tail -n 1); dev=$(readlink -f "$dev" 2>/dev/null || echo "$dev"); n=${dev##*/}; p=$(readlink -f "/sys/class/block/$n" 2>/dev/null); if [ -n "$p" ]; then [ -e "$p/partition" ] && p=${p%/*}; for b in "$p" "$p"/slaves/*; do [ -e "$b" ] || continue; b=$(readlink -f "$b"); [ -e "$b/partition" ] && b=${b%/*}; [ -e "$b/device" ] && drivers "$b/device" boot; done; fi; for i in $(awk 'NR>1 && $2=="00000000"{print $1}' /proc/net/route | sort -u); do [ -e "/sys/class/net/$i/device" ] && drivers "/sys/class/net/$i/device" mgmt; done; true"#;

/// The drivers a reload must never touch, from a [`PROTECTED_WALK`] output:
/// `(driver, why)`.
pub fn protected_drivers(text: &str) -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for line in text.lines() {
        let (why, drv) = match line.split_once('=') {
            Some(("boot", d)) => ("drives the boot disk", d),
            Some(("mgmt", d)) => ("drives the management NIC (default route)", d),
            _ => continue,
        };
        let drv = drv.trim();
        if !drv.is_empty() && !out.iter().any(|(d, _)| d == drv) {
            out.push((drv.to_string(), why));
        }
    }
    out
}

/// Unloads and reloads driver modules, checking the kernel log and that the
/// driver is loaded again; only when the plan sets `allow_reload = true`,
/// and never for the boot disk's or the management NIC's driver.
///
/// Params: `allow_reload` (bool, default false), `modules` (the modules to
/// reload; default: the loadable drivers bound to the profile's PCI devices).
pub struct Reload;

impl Check for Reload {
    /// `modprobe -r` and `modprobe` are for root only.
    fn requires(&self) -> Requires {
        Requires::root()
    }

    fn run(&self, ctx: &CaseCtx<'_>) -> Result<CaseOutcome, CaseError> {
        // Evidence first: what is loaded, and which drivers are protected.
        let loaded = ctx.read("/proc/modules")?.unwrap_or_default();
        let loaded: Vec<&str> = loaded
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        let protected = protected_drivers(&ctx.run(PROTECTED_WALK)?.stdout_str());
        if !ctx.param_bool("allow_reload", false) {
            return Ok(CaseOutcome::skip(
                "the plan does not allow module reloads (set param allow_reload = true)",
            ));
        }
        let mut wanted = ctx.param_strings("modules", &[]);
        if wanted.is_empty() {
            for d in &ctx.profile.pci_devices {
                if let Some(b) = &d.driver_bound {
                    if !wanted.contains(b) {
                        wanted.push(b.clone());
                    }
                }
            }
        }
        let mut refused = Vec::new();
        let mut todo = Vec::new();
        for m in &wanted {
            // /proc/modules spells modules with `_` where drivers may use `-`.
            let module = m.replace('-', "_");
            if let Some((_, why)) = protected
                .iter()
                .find(|(d, _)| d.replace('-', "_") == module)
            {
                refused.push(format!("{m}: not reloaded, it {why}"));
            } else if !loaded.contains(&module.as_str()) {
                refused.push(format!("{m}: not a loaded module (built in or absent)"));
            } else {
                todo.push(module);
            }
        }
        if todo.is_empty() {
            return Ok(CaseOutcome::skip(format!(
                "no module to reload: {}",
                if refused.is_empty() {
                    "none named and no PCI device has a driver bound".to_string()
                } else {
                    refused.join("; ")
                }
            )));
        }
        let mut bad = Vec::new();
        let mut ok = Vec::new();
        for m in &todo {
            // Without the kernel log the reload could not be judged: do not
            // take the driver away at all.
            let count = ctx.run(DMESG_COUNT)?;
            let before: usize = match count.stdout_str().trim().parse() {
                Ok(n) if count.success() => n,
                _ => {
                    refused.push(format!(
                        "{m}: not reloaded, the kernel log is unreadable (exit {:?}: {})",
                        count.exit,
                        count.stderr_str().trim()
                    ));
                    continue;
                }
            };
            let q = shell_quote(m);
            let out = ctx.run(&format!("modprobe -r {q} && modprobe {q}"))?;
            if !out.success() {
                bad.push(format!(
                    "{m}: reload failed (exit {:?}): {}",
                    out.exit,
                    out.stderr_str().trim()
                ));
                continue;
            }
            let after = ctx.read("/proc/modules")?.unwrap_or_default();
            if !after
                .lines()
                .any(|l| l.split_whitespace().next() == Some(m.as_str()))
            {
                bad.push(format!("{m}: not loaded after the reload"));
                continue;
            }
            let tail = ctx.run(&format!(
                "dmesg >/dev/null && dmesg | tail -n +{}",
                before + 1
            ))?;
            if !tail.success() {
                bad.push(format!(
                    "{m}: reloaded, but the kernel log could not be read afterwards (exit {:?})",
                    tail.exit
                ));
                continue;
            }
            let new = tail.stdout_str();
            let events = crate::kernlog::scan(&new);
            if events.is_empty() {
                ok.push(format!("{m}: reloaded, kernel log clean"));
            } else {
                bad.push(format!(
                    "{m}: kernel log after the reload: {}",
                    events
                        .iter()
                        .map(|e| format!("{} `{}`", e.kind.as_str(), e.text))
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        }
        let mut parts = Vec::new();
        for (label, v) in [("failing", &bad), ("ok", &ok), ("left alone", &refused)] {
            if !v.is_empty() {
                parts.push(format!("{label}: {}", v.join("; ")));
            }
        }
        let reason = parts.join(" | ");
        Ok(if !bad.is_empty() {
            CaseOutcome::fail(reason)
        } else if ok.is_empty() {
            CaseOutcome::skip(reason)
        } else {
            CaseOutcome::pass(reason)
        })
    }
}

/// The kernel log's line count, failing when `dmesg` may not be read
/// (`kernel.dmesg_restrict`) rather than counting nothing.
const DMESG_COUNT: &str = "dmesg >/dev/null && dmesg | wc -l";
