//! `certlab hwdb accel`: accelerators as their vendors' tools report them
//! (ECC, retired pages, remapped rows, PCIe link, temperature, power), from
//! a saved output or by running the tools on this machine.
//!
//! Exit codes: 0 when the output was read (whatever it says about the
//! devices); 3 when the given file cannot be read or is not that tool's
//! output (the message names the file and the line); 2 when a tool on this
//! machine prints something that is not its output format.
//!
//! JSON: `{"devices": [...]}` (fields as [`certlab_hwdb::AccelDevice`]; a
//! value the tool does not report is `null`, never 0); with no file, also
//! `"absent"` (the tools not installed here) and `"failed"` (tools that ran
//! and exited non-zero, with their message).

use std::path::{Path, PathBuf};
use std::time::Duration;

use certlab_hwdb::accel::{self, AccelDevice, Tool};
use serde_json::json;

use crate::error::{CliError, Result};
use crate::exit;
use crate::format::{text_format, Format};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("input").multiple(false)))]
pub struct AccelArgs {
    /// `nvidia-smi -q -x` output.
    #[arg(long, value_name = "FILE", group = "input")]
    nvidia_smi_xml: Option<PathBuf>,
    /// `nvidia-smi -q` output.
    #[arg(long, value_name = "FILE", group = "input")]
    nvidia_smi_q: Option<PathBuf>,
    /// `rocm-smi --json` output (`--showallinfo` or any subset).
    #[arg(long, value_name = "FILE", group = "input")]
    rocm_smi_json: Option<PathBuf>,
    /// Hygon DCU `hy-smi` output.
    #[arg(long, value_name = "FILE", group = "input")]
    hy_smi: Option<PathBuf>,
    /// Ascend `npu-smi info` output.
    #[arg(long, value_name = "FILE", group = "input")]
    npu_smi: Option<PathBuf>,
    #[arg(long, default_value = "human", value_parser = text_format())]
    format: Format,
}

/// The tools run on this machine when no file is given: one command per
/// program (`nvidia-smi` as XML).
const LOCAL_TOOLS: [Tool; 4] = [
    Tool::NvidiaSmiXml,
    Tool::RocmSmiJson,
    Tool::HySmi,
    Tool::NpuSmi,
];

/// Runs `hwdb accel`.
pub fn run(a: AccelArgs) -> Result<i32> {
    let file = [
        (a.nvidia_smi_xml, Tool::NvidiaSmiXml),
        (a.nvidia_smi_q, Tool::NvidiaSmiQ),
        (a.rocm_smi_json, Tool::RocmSmiJson),
        (a.hy_smi, Tool::HySmi),
        (a.npu_smi, Tool::NpuSmi),
    ]
    .into_iter()
    .find_map(|(p, t)| p.map(|p| (p, t)));
    let (devices, local) = match file {
        Some((path, tool)) => (from_file(&path, tool)?, None),
        None => {
            let l = from_this_machine()?;
            (l.devices.clone(), Some(l))
        }
    };
    match a.format {
        Format::Json => {
            let mut v = json!({ "devices": devices });
            if let Some(l) = &local {
                v["absent"] = json!(l.absent);
                v["failed"] = json!(l
                    .failed
                    .iter()
                    .map(|(c, m)| json!({"command": c, "message": m}))
                    .collect::<Vec<_>>());
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(CliError::infra)?
            );
        }
        Format::Human | Format::Junit => {
            if let Some(l) = &local {
                if !l.absent.is_empty() {
                    eprintln!("hwdb accel: not installed here: {}", l.absent.join(", "));
                }
                for (c, m) in &l.failed {
                    eprintln!("hwdb accel: `{c}` failed: {m}");
                }
            }
            print!("{}", human(&devices));
        }
    }
    Ok(exit::OK)
}

fn from_file(path: &Path, tool: Tool) -> Result<Vec<AccelDevice>> {
    let bytes = std::fs::read(path).map_err(|e| {
        CliError::bad_input(anyhow::anyhow!(
            "cannot read {} file {}: {e}",
            tool.command(),
            path.display()
        ))
    })?;
    let text = String::from_utf8_lossy(&bytes);
    accel::parse(tool, &text)
        .map_err(|e| CliError::bad_input(anyhow::anyhow!("{}: {e}", path.display())))
}

struct Local {
    devices: Vec<AccelDevice>,
    absent: Vec<&'static str>,
    failed: Vec<(&'static str, String)>,
}

/// Runs each tool present here through the `Local` target and the same
/// recorder the checks use.
fn from_this_machine() -> Result<Local> {
    let target = certlab_lab::Local::default();
    let sink = certlab_suites::MemorySink::default();
    let rec = certlab_suites::Recorder::new(&target, &sink, Duration::from_secs(120));
    let mut l = Local {
        devices: Vec::new(),
        absent: Vec::new(),
        failed: Vec::new(),
    };
    let infra = |e: certlab_suites::CaseError| CliError::infra(anyhow::anyhow!("{e}"));
    for tool in LOCAL_TOOLS {
        if !rec.has_command(tool.program()).map_err(infra)? {
            l.absent.push(tool.program());
            continue;
        }
        let o = rec.run(tool.command()).map_err(infra)?;
        if !o.success() {
            let msg = if o.stderr.is_empty() {
                o.stdout_str()
            } else {
                o.stderr_str()
            };
            l.failed.push((tool.command(), msg.trim().to_string()));
            continue;
        }
        let devs = accel::parse(tool, &o.stdout_str()).map_err(|e| {
            CliError::infra(anyhow::anyhow!("`{}` on this machine: {e}", tool.command()))
        })?;
        l.devices.extend(devs);
    }
    Ok(l)
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or("-".into(), ToString::to_string)
}

fn human(devs: &[AccelDevice]) -> String {
    let mut s = format!("{} accelerators\n", devs.len());
    if devs.is_empty() {
        return s;
    }
    s.push_str(&format!(
        "{:<14} {:<7} {:<34} {:<9} {:>7} {:>7} {:<16} {:<14} {:>6} {:>8}\n",
        "BUS_ID",
        "VENDOR",
        "MODEL",
        "ECC",
        "UE(vol)",
        "CE(vol)",
        "REMAP unc/pend",
        "PCIe gen/width",
        "TEMP",
        "POWER"
    ));
    for d in devs {
        let model: String = opt(&d.model).chars().take(34).collect();
        let remap = format!(
            "{}/{}",
            opt(&d.remapped_rows.uncorrectable),
            d.remapped_rows
                .pending
                .map_or("-", |p| if p { "yes" } else { "no" })
        );
        let p = &d.pcie;
        let link = format!(
            "{}/{} x{}/{}",
            opt(&p.gen_current),
            opt(&p.gen_max),
            opt(&p.width_current),
            opt(&p.width_max)
        );
        s.push_str(&format!(
            "{:<14} {:<7} {:<34} {:<9} {:>7} {:>7} {:<16} {:<14} {:>6} {:>8}\n",
            opt(&d.bus_id),
            d.vendor,
            model,
            opt(&d.ecc_mode),
            opt(&d.ecc.volatile.uncorrected),
            opt(&d.ecc.volatile.corrected),
            remap,
            link,
            d.temperature_c.map_or("-".into(), |t| format!("{t}C")),
            d.power_w.map_or("-".into(), |w| format!("{w}W")),
        ));
    }
    s
}
