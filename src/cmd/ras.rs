//! `certlab ras …`: the RAS suite's command-line tools.
//!
//! `ras scan` classifies a kernel log (a file, or this machine's) into
//! hardware-error and kernel-failure events with
//! [`certlab_suites::kernlog::scan`]. Exit codes: 0 when the log was scanned,
//! whatever it holds; 2 when this machine's log cannot be read; 3 when the
//! given file cannot be read (the message names it).
//!
//! `ras db` prints the events rasdaemon recorded in its SQLite database, per
//! table, classified ([`certlab_suites::rasdb`]). Exit codes: 0 when the
//! database was read, whatever it holds; 3 when it cannot be read or is not
//! an SQLite database.

use std::io::Read;
use std::path::{Path, PathBuf};

use certlab_suites::checks::rasdaemon::parse_btime;
use certlab_suites::kernlog::{scan, KernelEvent};
use certlab_suites::rasdb::{self, EventClass, OpenMode, RasDb, Tally};
use serde_json::json;

use crate::error::{CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Subcommand)]
pub enum RasCmd {
    /// Classify a kernel log into RAS events (MCE, EDAC, AER, GHES, Xid,
    /// amdgpu RAS, oops, panic, lockups, hung tasks), one per report.
    /// With no file, reads this machine's log (`dmesg`, else /dev/kmsg) and
    /// says on stderr which it read.
    Scan {
        /// `dmesg` output (with or without timestamps; -T, --decode and iso forms too).
        #[arg(long, value_name = "FILE", conflicts_with = "journal")]
        dmesg: Option<PathBuf>,
        /// `journalctl -k` output (short format, `Mon DD HH:MM:SS host kernel: …`).
        #[arg(long, value_name = "FILE")]
        journal: Option<PathBuf>,
        /// Output format.
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Print the events rasdaemon recorded (`rasdaemon --record`) in its
    /// database, per table (mc_event, aer_event, mce_record, extlog_event,
    /// arm_event, devlink_event, disk_errors, the CXL and HiSilicon
    /// tables, …), each classified corrected, uncorrected, informational or
    /// unclassified. The file is opened read-only; rasdaemon may keep
    /// running.
    Db {
        /// The database.
        #[arg(long, value_name = "FILE", default_value = rasdb::DEFAULT_DB)]
        db: PathBuf,
        /// `all` events, or only those since this machine booted (`boot`).
        #[arg(long, default_value = "all", value_parser = ["all", "boot"])]
        since: String,
        /// Output format.
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

/// Runs a `ras` subcommand.
pub fn run(cmd: RasCmd) -> Result<i32> {
    match cmd {
        RasCmd::Scan {
            dmesg,
            journal,
            format,
        } => {
            let (text, source) = match dmesg.or(journal) {
                Some(p) => (read_file(&p)?, p.display().to_string()),
                None => local_log()?,
            };
            let events = scan(&text);
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "events": events }))
                        .map_err(CliError::infra)?
                ),
                Format::Human | Format::Junit => print!("{}", human(&events, &source)),
            }
            Ok(exit::OK)
        }
        RasCmd::Db { db, since, format } => {
            let since = match since.as_str() {
                "boot" => {
                    let stat = std::fs::read_to_string("/proc/stat").map_err(|e| {
                        CliError::infra(anyhow::anyhow!(
                            "reading /proc/stat for the boot time: {e}"
                        ))
                    })?;
                    Some(parse_btime(&stat).ok_or_else(|| {
                        CliError::infra(anyhow::anyhow!("no btime line in /proc/stat"))
                    })?)
                }
                _ => None,
            };
            let read = rasdb::read_db(&db, OpenMode::ReadOnly)
                .map_err(|e| CliError::bad_input(anyhow::anyhow!("{e}")))?;
            let shown = db.display().to_string();
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&read.to_json(&shown, since))
                        .map_err(CliError::infra)?
                ),
                Format::Human | Format::Junit => print!("{}", db_human(&read, &shown, since)),
            }
            Ok(exit::OK)
        }
    }
}

fn db_human(db: &RasDb, source: &str, since: Option<time::OffsetDateTime>) -> String {
    let mut all = Tally::default();
    let mut rows = String::new();
    let mut list = String::new();
    for t in &db.tables {
        let mut tally = Tally::default();
        for e in t.events.iter().filter(|e| match (since, e.at) {
            (Some(s), Some(at)) => at >= s,
            _ => true,
        }) {
            tally.add(e);
            all.add(e);
            list.push_str(&format!(
                "  {} #{} {} {}: {}\n",
                t.name,
                e.id,
                e.timestamp.as_deref().unwrap_or("-"),
                e.class.as_str(),
                e.what
            ));
        }
        rows.push_str(&format!(
            "{:<28} {:>7} {:>10} {:>12} {:>6} {:>13}\n",
            t.name,
            tally.events,
            tally.of(EventClass::Corrected),
            tally.of(EventClass::Uncorrected),
            tally.of(EventClass::Informational),
            tally.of(EventClass::Unclassified),
        ));
    }
    let mut s = format!(
        "{source}: {} tables, {} events{} ({} uncorrected, {} corrected errors)\n",
        db.tables.len(),
        all.events,
        if since.is_some() { " since boot" } else { "" },
        all.of(EventClass::Uncorrected),
        all.of(EventClass::Corrected),
    );
    s.push_str(&format!(
        "{:<28} {:>7} {:>10} {:>12} {:>6} {:>13}\n",
        "TABLE", "EVENTS", "CORRECTED", "UNCORRECTED", "INFO", "UNCLASSIFIED"
    ));
    s.push_str(&rows);
    if !list.is_empty() {
        s.push_str("events (errors counted per event; mc_event rows may hold several):\n");
        s.push_str(&list);
    }
    let missing = db.missing_tables();
    if !missing.is_empty() {
        s.push_str(&format!(
            "tables of rasdaemon 0.8.5 not in this file: {}\n",
            missing.join(", ")
        ));
    }
    s
}

fn read_file(p: &Path) -> Result<String> {
    let bytes = std::fs::read(p).map_err(|e| {
        CliError::bad_input(anyhow::anyhow!(
            "cannot read kernel log file {}: {e}",
            p.display()
        ))
    })?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// This machine's kernel log: `dmesg`, else /dev/kmsg read without blocking.
fn local_log() -> Result<(String, String)> {
    let mut why = Vec::new();
    match std::process::Command::new("dmesg").output() {
        Ok(o) if o.status.success() => {
            eprintln!("ras scan: read this machine's kernel log with `dmesg`");
            return Ok((
                String::from_utf8_lossy(&o.stdout).into_owned(),
                "dmesg".into(),
            ));
        }
        Ok(o) => why.push(format!(
            "dmesg: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => why.push(format!("dmesg: {e}")),
    }
    match read_kmsg() {
        Ok(t) => {
            eprintln!("ras scan: read this machine's kernel log from /dev/kmsg (non-blocking)");
            Ok((t, "/dev/kmsg".into()))
        }
        Err(e) => {
            why.push(format!("/dev/kmsg: {e}"));
            Err(CliError::infra(anyhow::anyhow!(
                "cannot read this machine's kernel log (kernel.dmesg_restrict? run as root, or pass --dmesg FILE): {}",
                why.join("; ")
            )))
        }
    }
}

/// Every record /dev/kmsg still holds, one per line, until it would block.
fn read_kmsg() -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")?;
    let mut out = String::new();
    let mut buf = vec![0u8; 8192];
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let rec = String::from_utf8_lossy(&buf[..n]);
                // The first line is the record; lines after it starting with a
                // space are its dictionary (SUBSYSTEM=…, DEVICE=…).
                if let Some(first) = rec.lines().next() {
                    out.push_str(first);
                    out.push('\n');
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            // EPIPE: a record was overwritten before we read it; go on.
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn human(events: &[KernelEvent], source: &str) -> String {
    let mut s = format!("{} events in {source}\n", events.len());
    if events.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "{:>7}  {:<25} {:<28} TEXT\n",
        "LINE", "KIND", "DETAIL"
    ));
    for e in events {
        let text: String = e.text.chars().take(120).collect();
        s.push_str(&format!(
            "{:>7}  {:<25} {:<28} {}\n",
            e.line,
            e.kind.as_str(),
            e.detail.as_deref().unwrap_or("-"),
            text
        ));
    }
    s
}
