//! The lab inventory: `lab.toml`, the machines of a lab and how to reach them.
//!
//! ```toml
//! [[machine]]
//! name = "node1"
//! arch = "x86_64"
//! tags = ["gpu"]
//! pool = "nightly"
//!
//! [machine.bmc]
//! protocol = "redfish"
//! address = "10.0.0.101"
//! username = "admin"
//! password_env = "NODE1_BMC_PASSWORD"
//! tls = { pin_sha256 = "…" }
//!
//! [machine.ssh]
//! address = "10.0.0.11"
//! key_file = "~/.ssh/id_ed25519"
//! host_key = "ssh-ed25519 AAAA…"
//! ```
//!
//! A `[machine.sim]` table instead of `bmc` and `ssh` makes a simulated
//! machine (see `inventory/sim.rs` and [`crate::sim`]).
//!
//! Parsing reports every problem of a file at once, each with its file and
//! line, rather than stopping at the first. Unknown keys are errors. Secrets
//! are never written in the file: a BMC password comes from an environment
//! variable or a file, and is read only when a driver needs it.

mod sim;
mod tree;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

use crate::ssh::HostKey;
use tree::{Cx, Kind};
use validate::read_lab;

/// The version of the `lab.toml` format this build reads and writes.
pub const LAB_FORMAT_VERSION: i64 = 1;

/// Default IPMI RMCP+ port.
pub const DEFAULT_IPMI_PORT: u16 = 623;
/// Default Redfish (HTTPS) port.
pub const DEFAULT_REDFISH_PORT: u16 = 443;
/// Default SSH port.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// SSH key used when a machine names none.
pub const DEFAULT_KEY_FILE: &str = "~/.ssh/id_ed25519";

/// The machines of a lab, as read from `lab.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lab {
    /// Where the inventory was read from (as given to [`Lab::parse`]).
    pub file: String,
    pub machines: Vec<Machine>,
    /// Things that do not stop the file from loading but will fail later
    /// (an unset password variable, a missing key file).
    pub warnings: Vec<Problem>,
}

/// One machine of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    pub name: String,
    pub arch: Arch,
    pub tags: Vec<String>,
    pub pool: Option<String>,
    pub bmc: Option<BmcEndpoint>,
    pub ssh: Option<SshEndpoint>,
    /// A machine simulated in-process (`[machine.sim]`), instead of `bmc`
    /// and `ssh`.
    pub sim: Option<crate::sim::SimSpec>,
    /// What the orchestrator does with the machine's power after a job
    /// (`power_policy`; default `keep`).
    pub power_policy: PowerPolicy,
    /// A command the orchestrator runs before each job on the machine
    /// (`[machine.provision]`): re-imaging through PXE, MAAS, Ironic…
    pub provision: Option<Provision>,
    /// Line of the machine's `[[machine]]` table in the file.
    pub line: usize,
}

/// `power_policy`: the machine's power when a job on it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PowerPolicy {
    /// Left as the job left it.
    #[default]
    Keep,
    /// Powered off through its BMC after every job.
    Off,
    /// Powered off through its BMC after a job when no other job is
    /// queued for it.
    OffWhenIdle,
}

impl PowerPolicy {
    pub const ALL: [PowerPolicy; 3] = [
        PowerPolicy::Keep,
        PowerPolicy::Off,
        PowerPolicy::OffWhenIdle,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PowerPolicy::Keep => "keep",
            PowerPolicy::Off => "off",
            PowerPolicy::OffWhenIdle => "off-when-idle",
        }
    }

    pub fn parse(s: &str) -> Option<PowerPolicy> {
        PowerPolicy::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// `[machine.provision]`: an optional one-time boot override (`boot =
/// "pxe"|"disk"|"bios"`, set through the BMC), then a command run on the orchestrator's host (with
/// `sh -c`) before each job on the machine, with `CERTLAB_MACHINE`,
/// `CERTLAB_BMC_HOST` and `CERTLAB_SSH_HOST` in its environment (never a
/// password). A non-zero exit is an infrastructure error of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provision {
    pub command: String,
    /// A one-time boot override set through the BMC first (`boot`).
    pub boot: Option<crate::bmc::BootDevice>,
    /// At most this long (`timeout_s`, default 1800).
    pub timeout: std::time::Duration,
}

/// CPU architecture of a machine (`uname -m` spelling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
    Loongarch64,
    Riscv64,
}

impl Arch {
    pub const ALL: [Arch; 4] = [
        Arch::X86_64,
        Arch::Aarch64,
        Arch::Loongarch64,
        Arch::Riscv64,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Loongarch64 => "loongarch64",
            Arch::Riscv64 => "riscv64",
        }
    }

    pub fn parse(s: &str) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to reach a machine's BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BmcEndpoint {
    pub protocol: BmcProtocol,
    pub address: String,
    pub port: u16,
    pub username: String,
    /// Where the password comes from; never the password itself.
    pub password: SecretSource,
}

impl BmcEndpoint {
    /// What about this endpoint puts its password at risk, one sentence
    /// each (never the password): sent over plain `http`, sent under
    /// `tls = "insecure"` (to whoever answers), a `password_file` readable
    /// by group or others (as ssh refuses an unprotected private key).
    pub fn exposure_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let BmcProtocol::Redfish(r) = &self.protocol {
            if r.scheme == Scheme::Http {
                out.push(
                    "the BMC password is sent over plain http (scheme = \"http\"): anyone on the path can read it; use https".to_string(),
                );
            } else if r.tls == TlsMode::Insecure {
                out.push(
                    "the BMC password is sent with tls = \"insecure\": the certificate is not checked, so an impostor gets it; use ca_file or pin_sha256".to_string(),
                );
            }
        }
        if let SecretSource::File(p) = &self.password {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = std::fs::metadata(p) {
                let mode = m.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    out.push(format!(
                        "password_file {} is readable by group or others (mode {mode:04o}); run chmod 600 on it",
                        p.display()
                    ));
                }
            }
        }
        out
    }
}

/// The BMC's management protocol and its protocol-specific settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BmcProtocol {
    /// IPMI 2.0 RMCP+ ("lanplus").
    Ipmi,
    Redfish(RedfishOptions),
}

impl BmcProtocol {
    pub fn as_str(&self) -> &'static str {
        match self {
            BmcProtocol::Ipmi => "ipmi",
            BmcProtocol::Redfish(_) => "redfish",
        }
    }
}

/// Redfish-only settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedfishOptions {
    pub scheme: Scheme,
    pub tls: TlsMode,
    /// The ComputerSystem to drive; `None`: the only one there is.
    pub system_id: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }
}

/// How a Redfish BMC's TLS certificate is checked.
#[derive(Clone, PartialEq, Eq)]
pub enum TlsMode {
    /// Against the system's trusted CAs.
    Verify,
    /// Not at all (self-signed lab BMCs).
    Insecure,
    /// Against this CA certificate (PEM).
    CaFile(PathBuf),
    /// The certificate's SHA-256 digest (DER) must be this one.
    PinSha256([u8; 32]),
}

impl fmt::Debug for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::Verify => f.write_str("Verify"),
            TlsMode::Insecure => f.write_str("Insecure"),
            TlsMode::CaFile(p) => f.debug_tuple("CaFile").field(p).finish(),
            TlsMode::PinSha256(d) => write!(f, "PinSha256({})", hex::encode(d)),
        }
    }
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsMode::Verify => f.write_str("verify"),
            TlsMode::Insecure => f.write_str("insecure"),
            TlsMode::CaFile(p) => write!(f, "ca_file {}", p.display()),
            TlsMode::PinSha256(d) => write!(f, "pin_sha256 {}", hex::encode(d)),
        }
    }
}

/// Where a secret is kept. Printing it shows the variable or file name only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable of the certlab process.
    Env(String),
    /// A file whose content (trailing newline removed) is the secret.
    File(PathBuf),
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(v) => write!(f, "environment variable {v}"),
            SecretSource::File(p) => write!(f, "file {}", p.display()),
        }
    }
}

impl SecretSource {
    /// Reads the secret. `machine` names the machine in the error.
    pub fn resolve(&self, machine: &str) -> Result<Secret, InventoryError> {
        match self {
            SecretSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                Ok(_) => Err(InventoryError::Secret {
                    machine: machine.to_string(),
                    source_desc: self.to_string(),
                    reason: "it is empty".to_string(),
                }),
                Err(_) => Err(InventoryError::Secret {
                    machine: machine.to_string(),
                    source_desc: self.to_string(),
                    reason: "it is not set".to_string(),
                }),
            },
            SecretSource::File(p) => match std::fs::read_to_string(p) {
                Ok(s) => {
                    let s = s.trim_end_matches(['\n', '\r']).to_string();
                    if s.is_empty() {
                        Err(InventoryError::Secret {
                            machine: machine.to_string(),
                            source_desc: self.to_string(),
                            reason: "it is empty".to_string(),
                        })
                    } else {
                        Ok(Secret(s))
                    }
                }
                Err(e) => Err(InventoryError::Secret {
                    machine: machine.to_string(),
                    source_desc: self.to_string(),
                    reason: e.to_string(),
                }),
            },
        }
    }
}

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one call that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to reach a machine over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key (ed25519 recommended); `~/` already expanded.
    pub key_file: PathBuf,
    /// Pinned host key; `None`: trust on first use.
    pub host_key: Option<HostKey>,
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One problem found in an inventory file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub severity: Severity,
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (characters).
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file,
            self.line,
            self.column,
            self.severity.as_str(),
            self.message
        )
    }
}

/// Why an inventory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("lab inventory {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("lab inventory {file}: {}", summarize(.problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
    /// The file is larger than [`MAX_INVENTORY_BYTES`]: not read.
    #[error("lab inventory {path}: larger than the limit of {limit} bytes; not read")]
    TooLarge { path: String, limit: u64 },
    #[error("lab inventory: no machine named `{name}`")]
    UnknownMachine { name: String },
    #[error("machine {machine}: has no [machine.{what}] section")]
    NoEndpoint { machine: String, what: &'static str },
    #[error("machine {machine}: cannot read the secret from {source_desc}: {reason}")]
    Secret {
        machine: String,
        source_desc: String,
        reason: String,
    },
}

/// The largest `lab.toml` read: a lab of thousands of machines fits in a
/// fraction of it.
pub const MAX_INVENTORY_BYTES: u64 = 4 << 20;

/// Reads `path` as text, refusing it when its size says it is over `limit`
/// (before reading) or when more than `limit` bytes come out of it (a
/// growing file, a device).
fn read_bounded(path: &Path, limit: u64) -> Result<String, InventoryError> {
    use std::io::Read;
    let read_err = |source| InventoryError::Read {
        path: path.display().to_string(),
        source,
    };
    let too_large = || InventoryError::TooLarge {
        path: path.display().to_string(),
        limit,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    if file.metadata().map_err(read_err)?.len() > limit {
        return Err(too_large());
    }
    let mut text = String::new();
    file.take(limit + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(text)
}

fn summarize(problems: &[Problem]) -> String {
    let errors: Vec<&Problem> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    let mut s = format!(
        "{} problem{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for p in errors {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s
}

impl InventoryError {
    /// Every problem, when the file was read but is invalid.
    pub fn problems(&self) -> &[Problem] {
        match self {
            InventoryError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

impl Lab {
    /// Reads and validates `path`; relative paths in it are taken relative
    /// to the file's directory.
    pub fn load(path: &Path) -> Result<Lab, InventoryError> {
        let text = read_bounded(path, MAX_INVENTORY_BYTES)?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        Lab::parse_with_base(&text, &path.display().to_string(), base)
    }

    /// Parses an inventory; `file` is the name used in messages. Relative
    /// paths stay as written.
    pub fn parse(text: &str, file: &str) -> Result<Lab, InventoryError> {
        Lab::parse_with_base(text, file, None)
    }

    /// Parses an inventory, resolving relative paths against `base`.
    pub fn parse_with_base(
        text: &str,
        file: &str,
        base: Option<&Path>,
    ) -> Result<Lab, InventoryError> {
        let mut cx = Cx {
            file,
            text,
            base,
            problems: Vec::new(),
            names: Vec::new(),
        };
        let machines = match toml::from_str::<Kind>(text) {
            Ok(Kind::Table(entries)) => read_lab(&mut cx, &entries),
            Ok(_) => {
                cx.error(0..0, "expected a TOML table at the top level".to_string());
                Vec::new()
            }
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                cx.error(span, e.message().trim().to_string());
                Vec::new()
            }
        };
        cx.problems.sort_by_key(|p| (p.line, p.column));
        let has_errors = cx.problems.iter().any(|p| p.severity == Severity::Error);
        if has_errors {
            return Err(InventoryError::Invalid {
                file: file.to_string(),
                problems: cx.problems,
            });
        }
        Ok(Lab {
            file: file.to_string(),
            machines,
            warnings: cx.problems,
        })
    }

    pub fn machine(&self, name: &str) -> Result<&Machine, InventoryError> {
        self.machines
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| InventoryError::UnknownMachine {
                name: name.to_string(),
            })
    }
}

impl Machine {
    pub fn ssh(&self) -> Result<&SshEndpoint, InventoryError> {
        self.ssh.as_ref().ok_or_else(|| InventoryError::NoEndpoint {
            machine: self.name.clone(),
            what: "ssh",
        })
    }

    pub fn bmc(&self) -> Result<&BmcEndpoint, InventoryError> {
        self.bmc.as_ref().ok_or_else(|| InventoryError::NoEndpoint {
            machine: self.name.clone(),
            what: "bmc",
        })
    }
}

/// Expands a leading `~/` to `$HOME`.
pub fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    PathBuf::from(p)
}

/// Parses a SHA-256 pin written as hex, with or without colons.
pub fn parse_pin(s: &str) -> Option<[u8; 32]> {
    let clean: String = s.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(clean.trim()).ok()?;
    bytes.try_into().ok()
}
