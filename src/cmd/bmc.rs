//! `certlab lab power|boot|sel|sensors|info|console|health|replay-bmc`:
//! a lab machine's BMC, over IPMI or Redfish as `lab.toml` says.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use certlab_harness::{BmcCallStats, Store};
use certlab_lab::bmc::{
    replay, Bmc, BmcError, BootDevice, BootOverride, CallRecord, CallSink, Guarded, Health,
    LogService, MemoryLog, PowerAction, PowerState, RetryPolicy, SelCursor,
};
use certlab_lab::inventory::{Lab, Machine};
use certlab_lab::ssh::HostKeyPolicy;
use serde_json::json;

use crate::cmd::lab::LabFile;
use crate::common::{db_url, DbArg};
use crate::error::{failure, CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PowerArg {
    Status,
    On,
    Off,
    Cycle,
    Reset,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum BootArg {
    Pxe,
    Disk,
    Bios,
}

#[derive(Debug, clap::Subcommand)]
pub enum BmcCmd {
    /// Power status or control through the BMC.
    Power {
        name: String,
        action: PowerArg,
        /// `off` without a graceful shutdown.
        #[arg(long)]
        force: bool,
        /// Wait up to SECS for the machine to reach the new state.
        #[arg(long, value_name = "SECS")]
        wait: Option<u64>,
        #[command(flatten)]
        lab: LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Boot device override.
    Boot {
        name: String,
        device: BootArg,
        /// Next boot only (default: persistent).
        #[arg(long)]
        once: bool,
        #[command(flatten)]
        lab: LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// The system event log; `--since` a cursor printed by an earlier call.
    /// Says which log service it read and lists the others with their
    /// entry counts.
    Sel {
        name: String,
        #[arg(long, value_name = "CURSOR")]
        since: Option<String>,
        /// Read this log service (its Redfish Id, e.g. EventLog, or its URI)
        /// instead of the system event log (SEL).
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Clear the log after reading it.
        #[arg(long)]
        clear: bool,
        #[command(flatten)]
        lab: LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Sensor readings with their thresholds.
    Sensors {
        name: String,
        #[command(flatten)]
        lab: LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// BMC and BIOS firmware, manufacturer, model, serial.
    Info {
        name: String,
        #[command(flatten)]
        lab: LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Capture the serial console to a file (IPMI SOL).
    Console {
        name: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_name = "SECS")]
        duration: Option<u64>,
        #[command(flatten)]
        lab: LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Is each machine usable: BMC and SSH reachable, no critical SEL entry,
    /// no sensor out of range. Exit 1 when one is not.
    Health {
        /// Machines to check (default: all).
        names: Vec<String>,
        /// Count a BMC whose last N recorded calls all failed as unhealthy.
        #[arg(long, value_name = "N", default_value_t = 3,
              value_parser = clap::value_parser!(u64).range(1..))]
        failed_calls: u64,
        #[command(flatten)]
        lab: LabFile,
        #[command(flatten)]
        db: DbArg,
        #[arg(long, default_value = "human", value_parser = text_format())]
        format: Format,
    },
    /// Serve a recorded Redfish tree (DMTF mockup layout) as a live BMC.
    ReplayBmc {
        #[arg(long)]
        tree: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: String,
        /// HTTPS with a self-signed certificate (its sha256 pin is printed).
        #[arg(long)]
        tls: bool,
        #[arg(long, requires = "password_env")]
        user: Option<String>,
        /// Environment variable holding the password.
        #[arg(long, requires = "user")]
        password_env: Option<String>,
        /// Delay before a reset changes PowerState.
        #[arg(long, default_value_t = 2000, value_name = "MS")]
        power_delay_ms: u64,
    },
}

/// The machine's BMC under the lab's retry policy, its calls recorded to `sink`.
fn connect(m: &Machine, sink: Arc<dyn CallSink>) -> Result<Box<dyn Bmc>> {
    if let Some(spec) = &m.sim {
        // A simulated machine's BMC, made afresh in this process (powered
        // on, its boot in the SEL).
        let sim = certlab_lab::sim::SimMachine::new(&m.name, spec.clone())
            .map_err(CliError::bad_input)?;
        return Ok(Box::new(Guarded::new(
            sim.bmc(),
            RetryPolicy::default(),
            sink,
        )));
    }
    m.bmc()?; // a missing [machine.bmc] table is the inventory's error
    certlab_lab::bmc::open(m, sink).map_err(bmc_failure)
}

fn bmc_failure(e: BmcError) -> CliError {
    e.into()
}

fn load(lab: &LabFile) -> Result<Lab> {
    Lab::load(&lab.lab).map_err(CliError::bad_input)
}

fn machine<'a>(lab: &'a Lab, name: &str) -> Result<&'a Machine> {
    Ok(lab.machine(name)?)
}

fn print(format: Format, v: serde_json::Value, human: impl FnOnce()) -> Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Human | Format::Junit => human(),
    }
    Ok(())
}

pub fn run(cmd: BmcCmd) -> Result<i32> {
    let rt = crate::common::runtime()?;
    rt.block_on(run_async(cmd))
}

async fn run_async(cmd: BmcCmd) -> Result<i32> {
    let url = match &cmd {
        BmcCmd::Health {
            names,
            failed_calls,
            lab,
            db,
            format,
        } => return health(&load(lab)?, names, db, *failed_calls, *format).await,
        BmcCmd::ReplayBmc { .. } => None,
        BmcCmd::Power { db, .. }
        | BmcCmd::Boot { db, .. }
        | BmcCmd::Sel { db, .. }
        | BmcCmd::Sensors { db, .. }
        | BmcCmd::Info { db, .. }
        | BmcCmd::Console { db, .. } => Some(db_url(db)),
    };
    let calls = MemoryLog::new();
    let result = run_bmc(cmd, calls.clone()).await;
    // Also, above all, when the command failed: a failed call is what tells
    // a BMC's health.
    if let Some(url) = url {
        if let Some(store) = record_calls(url, &calls.records()).await {
            store.close().await;
        }
    }
    result
}

/// Opens the lab store, or says on stderr why not: the BMC command's own
/// outcome stands either way.
async fn open_store(url: Result<String>) -> Option<Store> {
    let opened = match url {
        Ok(url) => Store::open(&url).await.map_err(CliError::from),
        Err(e) => Err(e),
    };
    match opened {
        Ok(store) => Some(store),
        Err(e) => {
            // Not the cause chain: a driver's error may quote the URL.
            eprintln!("warning: BMC calls not recorded: {e}");
            None
        }
    }
}

/// Writes a command's BMC call records to the lab store (opened only when
/// there is something to write) and returns the store.
async fn record_calls(url: Result<String>, records: &[CallRecord]) -> Option<Store> {
    if records.is_empty() {
        return None;
    }
    let store = open_store(url).await?;
    if let Err(e) = store.record_bmc_calls(records).await {
        eprintln!("warning: BMC calls not recorded: {}", CliError::from(e));
    }
    Some(store)
}

/// The BMC of machine `name` of the lab file, its calls logged to `calls`.
fn open(lab: &LabFile, name: &str, calls: &Arc<MemoryLog>) -> Result<Box<dyn Bmc>> {
    let lab = load(lab)?;
    connect(machine(&lab, name)?, calls.clone())
}

async fn run_bmc(cmd: BmcCmd, calls: Arc<MemoryLog>) -> Result<i32> {
    match cmd {
        BmcCmd::Power {
            name,
            action,
            force,
            wait,
            lab,
            format,
            ..
        } => {
            let bmc = open(&lab, &name, &calls)?;
            let act = match action {
                PowerArg::Status => None,
                PowerArg::On => Some(PowerAction::On),
                PowerArg::Off if force => Some(PowerAction::ForceOff),
                PowerArg::Off => Some(PowerAction::Off),
                PowerArg::Cycle => Some(PowerAction::Cycle),
                PowerArg::Reset => Some(PowerAction::Reset),
            };
            let t0 = Instant::now();
            if let Some(a) = act {
                bmc.power(a).await.map_err(bmc_failure)?;
            }
            let state = match (act, wait) {
                (Some(a), Some(secs)) => bmc
                    .wait_for(a.final_state(), Instant::now() + Duration::from_secs(secs))
                    .await
                    .map_err(bmc_failure)?,
                _ => bmc.power_status().await.map_err(bmc_failure)?,
            };
            let v = json!({
                "machine": name,
                "power": state.as_str(),
                "action": act.map(|a| a.as_str()),
                "elapsed_ms": t0.elapsed().as_millis() as u64,
            });
            print(format, v, || match act {
                Some(a) => println!("{name}: {} requested; power is {state}", a.as_str()),
                None => println!("{name}: power is {state}"),
            })?;
            Ok(exit::OK)
        }
        BmcCmd::Boot {
            name,
            device,
            once,
            lab,
            format,
            ..
        } => {
            let bmc = open(&lab, &name, &calls)?;
            let device = match device {
                BootArg::Pxe => BootDevice::Pxe,
                BootArg::Disk => BootDevice::Disk,
                BootArg::Bios => BootDevice::BiosSetup,
            };
            bmc.set_boot(BootOverride { device, once })
                .await
                .map_err(bmc_failure)?;
            let v = json!({"machine": name, "boot": device.as_str(), "once": once});
            print(format, v, || {
                println!(
                    "{name}: boot from {device} {}",
                    if once {
                        "on the next boot"
                    } else {
                        "until changed"
                    }
                )
            })?;
            Ok(exit::OK)
        }
        BmcCmd::Sel {
            name,
            since,
            service,
            clear,
            lab,
            format,
            ..
        } => {
            let bmc = open(&lab, &name, &calls)?;
            let services = bmc.log_services().await.map_err(bmc_failure)?;
            let chosen = choose_log_service(&name, &services, service.as_deref())?;
            if clear && !chosen.default {
                return Err(failure(
                    exit::BAD_INPUT,
                    format!(
                        "{name}: --clear clears the system event log only, not log service {}",
                        chosen.id
                    ),
                ));
            }
            let cursor = since.map(SelCursor);
            let page = if chosen.default {
                bmc.sel_since(cursor).await
            } else {
                bmc.log_since(chosen.key(), cursor).await
            }
            .map_err(bmc_failure)?;
            if clear {
                bmc.sel_clear().await.map_err(bmc_failure)?;
            }
            let others: Vec<&LogService> = services
                .iter()
                .filter(|s| s.key() != chosen.key())
                .collect();
            match format {
                Format::Json => {
                    let v = json!({
                        "machine": name,
                        "service": chosen,
                        "other_services": others,
                        "entries": page.entries,
                        "cursor": page.cursor,
                        "cleared": clear,
                    });
                    println!("{}", serde_json::to_string_pretty(&v)?);
                }
                Format::Human | Format::Junit => {
                    for e in &page.entries {
                        let ts = e
                            .timestamp
                            .and_then(|t| {
                                t.format(&time::format_description::well_known::Rfc3339)
                                    .ok()
                            })
                            .unwrap_or_else(|| "pre-init".to_string());
                        println!(
                            "{:>6} {ts:<25} {:<8} {:<16} {}",
                            e.id,
                            e.severity.as_str(),
                            e.sensor_type.as_deref().unwrap_or("-"),
                            e.message
                        );
                    }
                    println!(
                        "{} entries from log service {}; cursor {}",
                        page.entries.len(),
                        describe_service(&chosen),
                        page.cursor
                    );
                    if !others.is_empty() {
                        let list: Vec<String> = others
                            .iter()
                            .map(|s| {
                                format!(
                                    "{} ({} entries)",
                                    describe_service(s),
                                    s.entries.map_or("?".to_string(), |n| n.to_string())
                                )
                            })
                            .collect();
                        println!("other log services: {}", list.join(", "));
                    }
                    if clear {
                        println!("log cleared");
                    }
                }
            }
            Ok(exit::OK)
        }
        BmcCmd::Sensors {
            name, lab, format, ..
        } => {
            let bmc = open(&lab, &name, &calls)?;
            let sensors = bmc.sensors().await.map_err(bmc_failure)?;
            match format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&sensors)?),
                Format::Human | Format::Junit => {
                    for s in &sensors {
                        let reading = s
                            .reading
                            .map(|r| format!("{r:.2} {}", s.unit.as_deref().unwrap_or("")))
                            .unwrap_or_else(|| "-".to_string());
                        println!(
                            "{:<28} {:<12} {:>14}  {}",
                            s.name,
                            s.sensor_type,
                            reading,
                            s.status.as_str()
                        );
                    }
                }
            }
            Ok(exit::OK)
        }
        BmcCmd::Info {
            name, lab, format, ..
        } => {
            let bmc = open(&lab, &name, &calls)?;
            let id = bmc.identity().await.map_err(bmc_failure)?;
            let v = serde_json::to_value(&id)?;
            print(format, v, || {
                let f = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".to_string());
                println!("manufacturer  {}", f(&id.manufacturer));
                println!("model         {}", f(&id.model));
                println!("serial        {}", f(&id.serial));
                println!("BMC firmware  {}", f(&id.bmc_firmware));
                println!("BIOS          {}", f(&id.bios_version));
                for fw in &id.firmware {
                    println!("  {:<30} {}", fw.name, fw.version.as_deref().unwrap_or("-"));
                }
            })?;
            Ok(exit::OK)
        }
        BmcCmd::Console {
            name,
            out,
            duration,
            lab,
            format,
            ..
        } => {
            let bmc = open(&lab, &name, &calls)?;
            let cap = bmc
                .console(out.clone(), duration.map(Duration::from_secs))
                .await
                .map_err(bmc_failure)?;
            let v = json!({"machine": name, "path": cap.path, "bytes": cap.bytes});
            print(format, v, || {
                println!(
                    "{name}: {} bytes of console in {}",
                    cap.bytes,
                    cap.path.display()
                )
            })?;
            Ok(exit::OK)
        }
        // run_async runs it: it reads the store after recording.
        BmcCmd::Health { .. } => Err(failure(exit::INFRA, "internal: health runs apart")),
        BmcCmd::ReplayBmc {
            tree,
            listen,
            tls,
            user,
            password_env,
            power_delay_ms,
        } => {
            let auth = match (user, password_env) {
                (Some(u), Some(var)) => {
                    let pw = std::env::var(&var).map_err(|_| {
                        failure(
                            exit::INFRA,
                            format!("environment variable {var} is not set"),
                        )
                    })?;
                    Some((u, certlab_lab::inventory::Secret::new(pw)))
                }
                _ => None,
            };
            let opts = replay::ReplayOptions {
                power_delay: Duration::from_millis(power_delay_ms),
                auth,
                tls,
            };
            let server = replay::Replay::load(&tree, opts).map_err(CliError::bad_input)?;
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| failure(exit::INFRA, format!("listening on {listen}: {e}")))?;
            let addr = listener.local_addr()?;
            let scheme = if tls { "https" } else { "http" };
            println!("serving {} at {scheme}://{addr}/redfish/v1", tree.display());
            if let Some(pin) = server.cert_sha256() {
                println!("certificate pin_sha256 = \"{}\"", hex::encode(pin));
            }
            tokio::select! {
                r = server.run(listener) => r.map_err(CliError::infra)?,
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(exit::OK)
        }
    }
}

/// `SEL (/redfish/v1/Managers/1/LogServices/SEL)`, or the id alone.
fn describe_service(s: &LogService) -> String {
    match &s.uri {
        Some(u) => format!("{} ({u})", s.id),
        None => s.id.clone(),
    }
}

/// The log service `lab sel` reads: the one named by `--service` (its id,
/// case-insensitive, or its URI), else the system event log.
fn choose_log_service(
    machine: &str,
    services: &[LogService],
    wanted: Option<&str>,
) -> Result<LogService> {
    let all = || {
        let names: Vec<String> = services.iter().map(describe_service).collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    let Some(want) = wanted else {
        return services
            .iter()
            .find(|s| s.default)
            .cloned()
            .ok_or_else(|| {
                failure(
                    exit::INFRA,
                    format!(
                        "{machine}: no system event log among its log services: {}; name one with --service",
                        all()
                    ),
                )
            });
    };
    let by_uri = services.iter().find(|s| {
        s.uri.as_deref().map(|u| u.trim_end_matches('/')) == Some(want.trim_end_matches('/'))
    });
    if let Some(s) = by_uri {
        return Ok(s.clone());
    }
    let by_id: Vec<&LogService> = services
        .iter()
        .filter(|s| s.id.eq_ignore_ascii_case(want))
        .collect();
    match by_id.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(failure(
            exit::BAD_INPUT,
            format!("{machine}: no log service {want:?}; it has: {}", all()),
        )),
        many => Err(failure(
            exit::BAD_INPUT,
            format!(
                "{machine}: several log services are named {want:?}: {}; give its URI",
                many.iter()
                    .map(|s| describe_service(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// One machine's health: each probe and what it found. SSH is probed
/// under the host-key policy; without a lab store it cannot be.
async fn health_of(
    m: &Machine,
    calls: Arc<dyn CallSink>,
    policy: Option<&HostKeyPolicy>,
) -> (bool, serde_json::Value) {
    let mut problems: Vec<String> = Vec::new();
    let mut bmc_state = serde_json::Value::Null;
    if m.bmc.is_some() || m.sim.is_some() {
        match connect(m, calls) {
            Err(e) => problems.push(format!("BMC: {e}")),
            Ok(bmc) => {
                match bmc.power_status().await {
                    Ok(p) => bmc_state = json!(p.as_str()),
                    Err(e) => problems.push(format!("BMC unreachable: {e}")),
                }
                if let Ok(page) = bmc.sel_since(None).await {
                    let critical = page
                        .entries
                        .iter()
                        .filter(|e| e.severity == Health::Critical)
                        .count();
                    if critical > 0 {
                        problems.push(format!("{critical} critical SEL entries"));
                    }
                }
                if let Ok(sensors) = bmc.sensors().await {
                    let bad: Vec<String> = sensors
                        .iter()
                        .filter(|s| matches!(s.status, Health::Critical | Health::Warning))
                        .map(|s| format!("{} {}", s.name, s.status.as_str()))
                        .collect();
                    if !bad.is_empty() {
                        problems.push(format!("sensors out of range: {}", bad.join(", ")));
                    }
                }
            }
        }
    }
    let mut ssh_ok = serde_json::Value::Null;
    if let Ok(ep) = m.ssh() {
        // Off machines are not expected to answer SSH.
        if bmc_state != json!(PowerState::Off.as_str()) {
            let ep = ep.clone();
            let name = m.name.clone();
            let policy = policy.cloned();
            let r = tokio::task::spawn_blocking(move || {
                let Some(policy) = policy else {
                    return Err("no lab store to check its host key against".to_string());
                };
                let mut cfg = policy.config(&name, &ep).map_err(|e| e.to_string())?;
                cfg.connect_timeout = Duration::from_secs(10);
                let ssh = certlab_lab::Ssh::new(&name, cfg);
                let r = ssh.connect().map_err(|e| e.to_string());
                ssh.disconnect();
                r
            })
            .await;
            match r {
                Ok(Ok(())) => ssh_ok = json!(true),
                Ok(Err(e)) => {
                    ssh_ok = json!(false);
                    problems.push(format!("SSH: {e}"));
                }
                Err(e) => problems.push(format!("SSH probe: {e}")),
            }
        }
    }
    let healthy = problems.is_empty();
    (
        healthy,
        json!({"machine": m.name, "healthy": healthy, "power": bmc_state, "ssh": ssh_ok, "problems": problems}),
    )
}

/// How far back `lab health` looks at a BMC's recorded calls.
const CALL_WINDOW: time::Duration = time::Duration::hours(24);

/// A BMC's recent record as `lab health` shows it.
fn calls_json(s: &BmcCallStats) -> serde_json::Value {
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    };
    json!({
        "window_hours": CALL_WINDOW.whole_hours(),
        "calls": s.calls,
        "failures": s.failures,
        "retryable_failures": s.retryable_failures,
        "fatal_failures": s.fatal_failures,
        "circuit_open": s.circuit_open,
        "failure_rate": s.failure_rate(),
        "p50_ms": s.p50_ms,
        "p95_ms": s.p95_ms,
        "failure_streak": s.failure_streak,
        "last_call": s.last_call.and_then(rfc3339),
        "last_error": s.last_error.as_ref().map(|e| json!({
            "at": rfc3339(e.at),
            "operation": e.operation,
            "outcome": e.outcome,
            "kind": e.kind,
            "message": e.message,
        })),
    })
}

/// `bmc 24h: 12 calls, 8% failed, p95 40 ms` for the human health line.
fn calls_human(v: &serde_json::Value) -> String {
    let Some(calls) = v["calls"].as_u64() else {
        return String::new();
    };
    let rate = v["failure_rate"]
        .as_f64()
        .map_or("-".to_string(), |r| format!("{:.0}%", r * 100.0));
    let p95 = v["p95_ms"]
        .as_u64()
        .map_or("-".to_string(), |p| format!("{p} ms"));
    format!(
        "bmc {}h: {calls} calls, {rate} failed, p95 {p95}",
        v["window_hours"]
    )
}

async fn health(
    lab: &Lab,
    names: &[String],
    db: &DbArg,
    failed_calls: u64,
    format: Format,
) -> Result<i32> {
    let machines: Vec<&Machine> = if names.is_empty() {
        lab.machines.iter().collect()
    } else {
        names
            .iter()
            .map(|n| machine(lab, n))
            .collect::<Result<_>>()?
    };
    let calls = MemoryLog::new();
    // One store for the host keys of the SSH probes and the BMC call record.
    let store = if machines.iter().any(|m| m.bmc.is_some() || m.ssh.is_some()) {
        open_store(db_url(db)).await
    } else {
        None
    };
    let policy = store.as_ref().map(crate::targets::host_key_policy);
    let mut probed = Vec::new();
    for m in &machines {
        probed.push(health_of(m, calls.clone(), policy.as_ref()).await);
    }
    // The probes' own calls are recorded first, so the record includes them.
    let records = calls.records();
    if let (Some(store), false) = (&store, records.is_empty()) {
        if let Err(e) = store.record_bmc_calls(&records).await {
            eprintln!("warning: BMC calls not recorded: {e:#}");
        }
    }
    let since = time::OffsetDateTime::now_utc() - CALL_WINDOW;
    let mut all = true;
    let mut out = Vec::new();
    for (m, (mut ok, mut v)) in machines.iter().zip(probed) {
        let mut record = serde_json::Value::Null;
        if let (Some(store), Some(_)) = (&store, &m.bmc) {
            match store.bmc_call_stats(&m.name, since).await {
                Ok(s) => {
                    if s.failure_streak >= failed_calls {
                        ok = false;
                        let last = s
                            .last_error
                            .as_ref()
                            .map(|e| format!(" (last: {} {}: {})", e.operation, e.kind, e.message))
                            .unwrap_or_default();
                        if let Some(p) = v["problems"].as_array_mut() {
                            p.push(json!(format!(
                                "BMC's last {} calls all failed{last}",
                                s.failure_streak
                            )));
                        }
                    }
                    record = calls_json(&s);
                }
                Err(e) => eprintln!(
                    "warning: {}: BMC call record: {}",
                    m.name,
                    CliError::from(e)
                ),
            }
        }
        v["healthy"] = json!(ok);
        v["bmc_calls"] = record;
        all &= ok;
        out.push(v);
    }
    if let Some(store) = store {
        store.close().await;
    }
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&out)?),
        Format::Human | Format::Junit => {
            for v in &out {
                println!(
                    "{:<16} {:<9} power {:<5} {:<40} {}",
                    v["machine"].as_str().unwrap_or(""),
                    if v["healthy"] == json!(true) {
                        "healthy"
                    } else {
                        "UNHEALTHY"
                    },
                    v["power"].as_str().unwrap_or("-"),
                    calls_human(&v["bmc_calls"]),
                    v["problems"]
                        .as_array()
                        .map(|p| p
                            .iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join("; "))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(if all { exit::OK } else { exit::TEST_FAILURE })
}
