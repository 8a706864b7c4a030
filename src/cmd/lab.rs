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
    /// The daemons that drive the lab store: host, pid, when each started,
    /// its last heartbeat and whether it is running, stopped or silent
    /// (no heartbeat for a minute: killed, or its host is gone).
    Daemons {
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
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
    /// The simulated lab: machines that live in the certlab process.
    #[command(subcommand)]
    Sim(SimCmd),
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

/// `certlab lab sim …`
#[derive(Debug, clap::Subcommand)]
pub enum SimCmd {
    /// Write a lab.toml of simulated machines to stdout: sim-0001…, pool
    /// "sim", each with its profile, fault level, seed and defect stated.
    Generate {
        /// How many machines.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10000))]
        machines: u32,
        /// Seed of every machine's fault stream, and of which machines are
        /// defective.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// How faulty the BMCs and SSH connections are.
        #[arg(long, default_value = "none", value_parser = ["none", "light", "heavy"])]
        faults: String,
        /// How many machines carry a product defect (each fails exactly
        /// one case of server-basic).
        #[arg(long, default_value_t = 0)]
        defective: u32,
        /// Multiplies every simulated delay (1.0: realistic).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
    },
    /// List the machine profiles the simulator knows, with their sources.
    Profiles {
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
}

pub fn run(cmd: LabCmd) -> Result<i32> {
    match cmd {
        LabCmd::Sim(SimCmd::Generate {
            machines,
            seed,
            faults,
            defective,
            time_scale,
        }) => sim_generate(machines, seed, &faults, defective, time_scale),
        LabCmd::Sim(SimCmd::Profiles { format }) => sim_profiles(format),
        LabCmd::Bmc(c) => crate::cmd::bmc::run(c),
        LabCmd::Daemon(a) => crate::cmd::daemon::run(a),
        LabCmd::Daemons { db, format } => crate::cmd::daemon::list(db, format),
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

fn sim_generate(n: u32, seed: u64, faults: &str, defective: u32, time_scale: f64) -> Result<i32> {
    if defective > n {
        return Err(failure(
            exit::INFRA,
            format!("--defective {defective} is more than --machines {n}"),
        ));
    }
    if !time_scale.is_finite() || time_scale < 0.0 {
        return Err(failure(
            exit::INFRA,
            format!("--time-scale {time_scale}: must be a number ≥ 0"),
        ));
    }
    let text = certlab_lab::sim::generate::lab_toml(&certlab_lab::sim::generate::Options {
        machines: n,
        seed,
        faults: certlab_lab::sim::FaultLevel::parse(faults).unwrap_or_default(),
        defective,
        time_scale,
    });
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(exit::OK)
}

fn sim_profiles(format: Format) -> Result<i32> {
    use certlab_lab::sim::{Profile, PROFILES};
    let rows: Vec<Value> = PROFILES
        .iter()
        .filter_map(|d| Profile::get(d.name))
        .map(|p| {
            json!({
                "name": p.def.name,
                "arch": p.def.arch.as_str(),
                "family": p.family,
                "title": p.def.title,
                "cpus": p.cpus,
                "memory_gib": p.mem_bytes >> 30,
                "pci_functions": p.pci.len(),
                "kernel": p.def.kernel,
                "sources": p.sources,
                "note": p.def.note,
            })
        })
        .collect();
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(exit::OK);
    }
    for r in &rows {
        println!(
            "{:<16} {:<12} {:<10} {}",
            r["name"].as_str().unwrap_or(""),
            r["arch"].as_str().unwrap_or(""),
            r["family"].as_str().unwrap_or(""),
            r["title"].as_str().unwrap_or("")
        );
        println!("    {}", r["note"].as_str().unwrap_or(""));
    }
    Ok(exit::OK)
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
        "sim": m.sim.as_ref().map(|s| json!({
            "profile": s.profile,
            "faults": s.faults.as_str(),
            "seed": s.seed,
            "defect": s.defect.map(|d| d.as_str()),
            "time_scale": s.time_scale,
        })),
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
        let (bmc, ssh) = match &m.sim {
            Some(s) => (
                format!("sim {}", s.profile),
                format!(
                    "sim faults={} defect={}",
                    s.faults,
                    s.defect.map_or("none", |d| d.as_str())
                ),
            ),
            None => (bmc, ssh),
        };
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
