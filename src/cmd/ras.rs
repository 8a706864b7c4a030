//! `certlab ras …`: the RAS suite's command-line tools.
//!
//! `ras scan` classifies a kernel log (a file, or this machine's) into
//! hardware-error and kernel-failure events with
//! [`certlab_suites::kernlog::scan`]. Exit codes: 0 when the log was scanned,
//! whatever it holds; 2 when this machine's log cannot be read; 3 when the
//! given file cannot be read (the message names it).

use std::io::Read;
use std::path::{Path, PathBuf};

use certlab_suites::kernlog::{scan, KernelEvent};
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
    }
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
