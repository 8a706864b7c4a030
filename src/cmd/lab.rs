//! `certlab lab …`: the lab inventory (`lab.toml`) and its machines.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use certlab_lab::inventory::{BmcProtocol, Lab, Machine, Problem, SecretSource, TlsMode};
use certlab_lab::ssh::{HostKey, Stream};
use serde_json::{json, Value};

use crate::common::{db_url, runtime, DbArg};
use crate::error::{failure, Result};
use crate::exit;
use crate::format::{text_format, Format};

/// `lab exec`'s status when certlab could not run the command or could not
/// see it finish (connection, host key, authentication, timeout, signal),
/// as ssh does; otherwise the remote command's own status.
pub const EXEC_FAILED: i32 = 255;

#[derive(Debug, clap::Args)]
pub struct LabFile {
    /// The lab inventory.
    #[arg(
        long = "lab",
        value_name = "FILE",
        env = "CERTLAB_LAB",
        hide_env_values = true,
        default_value = "lab.toml"
    )]
    pub lab: PathBuf,
}

#[derive(Debug, clap::Subcommand)]
pub enum LabCmd {
    #[command(flatten)]
    Bmc(crate::cmd::bmc::BmcCmd),
    /// The orchestrator: carry out queued jobs on the lab's machines until
    /// SIGTERM/SIGINT (see `certlab job`).
    Daemon(crate::cmd::daemon::DaemonArgs),
    /// Check lab.toml and report every problem with its file and line.
    Validate {
        #[command(flatten)]
        lab: LabFile,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// List the machines of the lab.
    List {
        #[command(flatten)]
        lab: LabFile,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Run a command on a machine over SSH; exits with the command's status,
    /// or 255 when it could not be run or did not finish (as ssh does).
    Exec {
        /// The machine's name in lab.toml.
        name: String,
        /// The command, after `--` (joined with spaces and run by /bin/sh, as ssh does).
        #[arg(last = true, required = true, value_name = "CMD")]
        cmd: Vec<String>,
        /// Kill the command after this many seconds.
        #[arg(long, default_value_t = 600, value_name = "SECS")]
        timeout: u64,
        #[command(flatten)]
        lab: LabFile,
        /// The lab store keeps the host keys trusted on first use.
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

pub fn run(cmd: LabCmd) -> Result<i32> {
    match cmd {
        LabCmd::Bmc(c) => crate::cmd::bmc::run(c),
        LabCmd::Daemon(a) => crate::cmd::daemon::run(a),
        LabCmd::Validate { lab, format } => validate(&lab, format),
        LabCmd::List { lab, format } => list(&lab, format),
        LabCmd::Exec {
            name,
            cmd,
            timeout,
            lab,
            db,
            format,
        } => exec(
            &lab,
            &db,
            &name,
            &cmd.join(" "),
            Duration::from_secs(timeout),
            format,
        ),
    }
}

fn problem_json(p: &Problem) -> Value {
    json!({
        "severity": p.severity.as_str(),
        "file": p.file,
        "line": p.line,
        "column": p.column,
        "message": p.message,
    })
}

fn validate(f: &LabFile, format: Format) -> Result<i32> {
    let file = f.lab.display().to_string();
    let (valid, machines, problems) = match Lab::load(&f.lab) {
        Ok(lab) => (true, lab.machines.len(), lab.warnings),
        Err(e @ certlab_lab::inventory::InventoryError::Invalid { .. }) => {
            (false, 0, e.problems().to_vec())
        }
        Err(e @ certlab_lab::inventory::InventoryError::TooLarge { .. }) => {
            return Err(failure(exit::BAD_INPUT, e.to_string()))
        }
        Err(e) => return Err(e.into()),
    };
    if format == Format::Json {
        let v = json!({
            "file": file,
            "valid": valid,
            "machines": machines,
            "problems": problems.iter().map(problem_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        for p in &problems {
            println!("{p}");
        }
        if valid {
            println!(
                "{file}: ok, {machines} machine{}",
                if machines == 1 { "" } else { "s" }
            );
        } else {
            let n = problems
                .iter()
                .filter(|p| p.severity == certlab_lab::inventory::Severity::Error)
                .count();
            println!(
                "{file}: invalid, {n} error{}",
                if n == 1 { "" } else { "s" }
            );
        }
    }
    Ok(if valid { exit::OK } else { exit::BAD_INPUT })
}

/// Loads the inventory; its warnings are for `lab validate` to show. An
/// invalid file is bad input (exit 3), as for the BMC commands.
fn load(f: &LabFile) -> Result<Lab> {
    Ok(Lab::load(&f.lab)?)
}

fn password_json(s: &SecretSource) -> Value {
    match s {
        SecretSource::Env(v) => json!({ "password_env": v }),
        SecretSource::File(p) => json!({ "password_file": p.display().to_string() }),
    }
}

fn machine_json(m: &Machine) -> Value {
    let bmc = m.bmc.as_ref().map(|b| {
        let mut v = json!({
            "protocol": b.protocol.as_str(),
            "address": b.address,
            "port": b.port,
            "username": b.username,
        });
        if let (Some(o), Value::Object(p)) = (v.as_object_mut(), password_json(&b.password)) {
            o.extend(p);
            if let BmcProtocol::Redfish(r) = &b.protocol {
                o.insert("scheme".into(), r.scheme.as_str().into());
                let tls = match &r.tls {
                    TlsMode::Verify => json!("verify"),
                    TlsMode::Insecure => json!("insecure"),
                    TlsMode::CaFile(p) => json!({ "ca_file": p.display().to_string() }),
                    TlsMode::PinSha256(d) => {
                        json!({ "pin_sha256": d.iter().map(|b| format!("{b:02x}")).collect::<String>() })
                    }
                };
                o.insert("tls".into(), tls);
                o.insert("system_id".into(), json!(r.system_id));
            }
        }
        v
    });
    let ssh = m.ssh.as_ref().map(|s| {
        json!({
            "address": s.address,
            "port": s.port,
            "user": s.user,
            "key_file": s.key_file.display().to_string(),
            "host_key": s.host_key.as_ref().map(|k| k.to_string()),
            "host_key_fingerprint": s.host_key.as_ref().map(HostKey::fingerprint),
        })
    });
    json!({
        "name": m.name,
        "arch": m.arch.as_str(),
        "tags": m.tags,
        "pool": m.pool,
        "bmc": bmc,
        "ssh": ssh,
    })
}

fn list(f: &LabFile, format: Format) -> Result<i32> {
    let lab = load(f)?;
    if format == Format::Json {
        let v: Vec<Value> = lab.machines.iter().map(machine_json).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(exit::OK);
    }
    println!(
        "{:<16} {:<12} {:<10} {:<28} {:<28} tags",
        "name", "arch", "pool", "bmc", "ssh"
    );
    for m in &lab.machines {
        let bmc = m.bmc.as_ref().map_or("-".to_string(), |b| {
            format!("{} {}:{}", b.protocol.as_str(), b.address, b.port)
        });
        let ssh = m.ssh.as_ref().map_or("-".to_string(), |s| {
            format!(
                "{}@{}:{}{}",
                s.user,
                s.address,
                s.port,
                if s.host_key.is_some() { "" } else { " (tofu)" }
            )
        });
        println!(
            "{:<16} {:<12} {:<10} {:<28} {:<28} {}",
            m.name,
            m.arch.as_str(),
            m.pool.as_deref().unwrap_or("-"),
            bmc,
            ssh,
            m.tags.join(",")
        );
    }
    Ok(exit::OK)
}

/// Runs `command` on machine `name`; its exit status, or [`EXEC_FAILED`]
/// (reported on stderr) when certlab could not run it or see it finish.
fn exec(
    f: &LabFile,
    db: &DbArg,
    name: &str,
    command: &str,
    timeout: Duration,
    format: Format,
) -> Result<i32> {
    if command.trim().is_empty() {
        return Err(failure(
            exit::INFRA,
            format!("lab exec {name}: empty command"),
        ));
    }
    let lab = load(f)?;
    let machine = lab
        .machine(name)
        .map_err(|e| failure(exit::INFRA, e.to_string()))?;
    let ep = machine
        .ssh()
        .map_err(|e| failure(exit::INFRA, e.to_string()))?;
    let rt = runtime()?;
    let store = rt
        .block_on(certlab_harness::Store::open(&db_url(db)?))
        .map_err(|e| failure(EXEC_FAILED, format!("lab exec {name}: lab store: {e}")))?;
    // The policy blocks on the store: used here, outside the runtime.
    let policy = {
        let _guard = rt.enter();
        crate::targets::host_key_policy(&store)
    };
    let could_not =
        |e: &dyn std::fmt::Display| failure(EXEC_FAILED, format!("lab exec {name}: {e}"));
    let target = policy.ssh(&machine.name, ep).map_err(|e| could_not(&e))?;
    let human = format == Format::Human;
    let out = target
        .exec_streaming(command, timeout, &mut |stream, chunk| {
            if human {
                let _ = match stream {
                    Stream::Stdout => std::io::stdout().write_all(chunk),
                    Stream::Stderr => std::io::stderr().write_all(chunk),
                };
            }
        })
        .map_err(|e| could_not(&e))?;
    target.disconnect();
    rt.block_on(store.close());
    if !human {
        let v = json!({
            "machine": machine.name,
            "command": command,
            "exit": out.exit,
            "timed_out": out.timed_out,
            "duration_ms": u64::try_from(out.duration.as_millis()).unwrap_or(u64::MAX),
            "stdout": out.stdout_str(),
            "stderr": out.stderr_str(),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    let _ = std::io::stdout().flush();
    if out.timed_out {
        return Err(could_not(&format!(
            "`{command}` timed out after {}s and was killed",
            timeout.as_secs()
        )));
    }
    out.exit
        .ok_or_else(|| could_not(&format!("`{command}` was killed by a signal")))
}
