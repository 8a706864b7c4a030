//! Discovery: collect the raw facts about a machine through its target.

use std::time::Duration;

use certlab_hwdb::{Fact, Inventory, OsRelease};
use certlab_lab::Target;
use certlab_reports::{Evidence, Host};

use crate::context::{ArtifactSink, CaseError, Recorder};
use crate::walk;

/// What discovery found: raw facts for identification, the host identity,
/// and every raw output as evidence.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub inventory: Inventory,
    pub host: Host,
    pub evidence: Vec<Evidence>,
    /// Facts that could not be collected and why (not errors: a VM has no
    /// DMI, a container no `lspci`).
    pub notes: Vec<String>,
}

/// How long any one discovery command may run.
pub const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

fn text_fact(rec: &Recorder<'_>, path: &str) -> Result<Option<Fact>, CaseError> {
    Ok(rec.read(path)?.map(|t| Fact::new(path, t)))
}

fn cmd_fact(
    rec: &Recorder<'_>,
    program: &str,
    command: &str,
    notes: &mut Vec<String>,
) -> Result<Option<Fact>, CaseError> {
    match rec.run_if_present(program, command)? {
        None => {
            notes.push(format!("`{program}` is not installed"));
            Ok(None)
        }
        Some(o) if o.success() => Ok(Some(Fact::new(command, o.stdout_str()))),
        Some(o) => {
            notes.push(format!(
                "`{command}` exited with {}: {}",
                o.exit.map_or("a signal".to_string(), |c| c.to_string()),
                o.stderr_str().lines().next().unwrap_or("").trim()
            ));
            Ok(None)
        }
    }
}

/// Collects an inventory of `target`. Only infrastructure failures (the
/// target cannot run commands at all, storing evidence fails) are errors.
pub fn discover(target: &dyn Target, sink: &dyn ArtifactSink) -> Result<Discovery, CaseError> {
    let rec = Recorder::new(target, sink, DISCOVERY_TIMEOUT);
    let mut notes = Vec::new();
    let mut inv = Inventory::default();

    let uname = rec.run("uname -n -r -m")?;
    if !uname.success() {
        return Err(CaseError::Infra(format!(
            "{}: `uname` failed: {}",
            target.name(),
            uname.stderr_str().trim()
        )));
    }
    let uname_text = uname.stdout_str();
    let mut parts = uname_text.split_whitespace();
    let hostname = parts.next().unwrap_or_default().to_string();
    let kernel = parts.next().unwrap_or_default().to_string();
    let arch = parts.next().unwrap_or_default().to_string();
    inv.kernel_release = Some(kernel.clone());
    inv.machine = Some(arch.clone());

    inv.cpuinfo = text_fact(&rec, "/proc/cpuinfo")?;
    inv.meminfo = text_fact(&rec, "/proc/meminfo")?;
    inv.os_release = match text_fact(&rec, "/etc/os-release")? {
        Some(f) => Some(f),
        None => text_fact(&rec, "/usr/lib/os-release")?,
    };
    inv.lscpu = cmd_fact(&rec, "lscpu", "lscpu", &mut notes)?;

    let dmi = rec.run(walk::DMI_WALK)?;
    if let Some((_, attrs)) = walk::parse_records(&dmi.stdout_str()).into_iter().next() {
        inv.dmi_sysfs = attrs;
    }
    if inv.dmi_sysfs.is_empty() {
        notes.push("no DMI/SMBIOS tables in /sys/class/dmi/id".to_string());
    }
    // dmidecode needs root and /dev/mem or the sysfs SMBIOS tables.
    if rec.exists("/sys/firmware/dmi/tables/DMI")? || rec.exists("/dev/mem")? {
        inv.dmidecode = cmd_fact(&rec, "dmidecode", "dmidecode", &mut notes)?;
    } else {
        notes.push("no SMBIOS tables for dmidecode to read".to_string());
    }

    let pci = rec.run(walk::PCI_WALK)?;
    inv.sysfs_pci = walk::pci_devices(&pci.stdout_str());
    inv.lspci = cmd_fact(&rec, "lspci", "lspci -nn -k", &mut notes)?;
    inv.modules_alias = text_fact(&rec, &format!("/lib/modules/{kernel}/modules.alias"))?;
    if inv.modules_alias.is_none() {
        notes.push(format!("no /lib/modules/{kernel}/modules.alias"));
    }
    // Drivers built into the kernel, which modules.alias never names.
    inv.modules_builtin = text_fact(&rec, &format!("/lib/modules/{kernel}/modules.builtin"))?;

    // Facts the checks judge later, kept here so the inventory is complete
    // evidence of the machine as it was found.
    rec.run(walk::BLOCK_WALK)?;
    rec.run(walk::NET_WALK)?;
    rec.read("/proc/modules")?;
    rec.read("/proc/sys/kernel/tainted")?;
    rec.read("/proc/cmdline")?;
    let log = rec.run("dmesg")?;
    if !log.success() {
        notes.push(format!(
            "kernel log not readable: {}",
            log.stderr_str().lines().next().unwrap_or("").trim()
        ));
    }

    let machine_id = rec
        .read("/etc/machine-id")?
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let os = OsRelease::parse(
        inv.os_release
            .as_ref()
            .map(|f| f.text.as_str())
            .unwrap_or(""),
    );
    let host = Host {
        hostname,
        machine_id,
        arch,
        kernel,
        os_name: os.pretty_name().to_string(),
        os_id: os.id().to_string(),
        os_version: os.version_id().unwrap_or_default().to_string(),
    };

    Ok(Discovery {
        inventory: inv,
        host,
        evidence: rec.take_evidence(),
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::MemorySink;
    use certlab_lab::Local;

    #[test]
    fn discovers_this_machine() {
        let sink = MemorySink::default();
        let d = discover(&Local::default(), &sink).unwrap();
        assert!(!d.host.kernel.is_empty());
        assert!(!d.host.arch.is_empty());
        assert!(d.inventory.cpuinfo.is_some());
        assert!(d.inventory.meminfo.is_some());
        assert!(!d.evidence.is_empty());
        // Every command and file became evidence with stored content.
        for e in &d.evidence {
            if let Evidence::Command { stdout, .. } = e {
                assert!(sink.get(stdout).is_some());
            }
        }
    }

    #[test]
    fn uname_failure_is_an_infrastructure_error() {
        let t = certlab_lab::Scripted::new("broken");
        let e = discover(&t, &MemorySink::default()).unwrap_err();
        assert!(e.to_string().contains("uname"), "{e}");
    }
}
