//! Baseboard management controllers: one [`Bmc`] trait, two protocols.
//!
//! [`ipmi`] speaks IPMI 2.0 RMCP+ ("lanplus"), [`redfish`] speaks Redfish over
//! HTTP(S). Both return the same types and the same classified [`BmcError`]s,
//! so the orchestrator neither knows nor cares which protocol a machine uses.
//!
//! A raw driver makes exactly one attempt per call. Wrap it in
//! [`retry::Guarded`] to get the lab's one retry policy (jittered exponential
//! backoff bounded by a deadline, a minimum gap between commands, a circuit
//! breaker) and a [`retry::CallRecord`] for every call.
//!
//! [`replay`] serves recorded Redfish trees of real BMCs as a live BMC, for
//! tests, demos and training.

pub mod ipmi;
pub mod redfish;
pub mod replay;
pub mod retry;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use retry::{CallOutcome, CallRecord, CallSink, Guarded, MemoryLog, RetryPolicy};

/// The future every [`Bmc`] operation returns: boxed, `Send`, so that
/// `Box<dyn Bmc>` works and calls can run on any runtime thread.
pub type BmcFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BmcError>> + Send + 'a>>;

/// A machine's baseboard management controller.
///
/// Every call is a single attempt bounded by the driver's own I/O timeout;
/// retries belong to [`retry::Guarded`]. Implementations must never put a
/// password in an error, a log line or a `Debug` output.
pub trait Bmc: Send + Sync {
    /// What errors and call records name this BMC by (machine name or
    /// address; never credentials).
    fn name(&self) -> &str;

    /// The chassis power state as the BMC reports it now.
    fn power_status(&self) -> BmcFuture<'_, PowerState>;

    /// Asks for a power change. Returns once the BMC accepted the request,
    /// which is usually before the state changed: use [`Bmc::wait_for`].
    fn power(&self, action: PowerAction) -> BmcFuture<'_, ()>;

    /// Polls [`Bmc::power_status`] until it reports `want` (only
    /// [`PowerState::On`] or [`PowerState::Off`] make sense), passing through
    /// transitional states and retryable errors, until `deadline`.
    ///
    /// Fails with the first fatal error, or with [`BmcError::Timeout`] naming
    /// the last state seen when the deadline passes.
    fn wait_for(&self, want: PowerState, deadline: Instant) -> BmcFuture<'_, PowerState> {
        Box::pin(async move {
            let started = Instant::now();
            let mut interval = Duration::from_millis(250);
            let mut last: Option<PowerState> = None;
            let mut last_err: Option<String> = None;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    let seen = match (last, last_err) {
                        (Some(s), _) => format!("last state {s}"),
                        (None, Some(e)) => format!("last error: {e}"),
                        (None, None) => "no answer".to_string(),
                    };
                    return Err(BmcError::Timeout {
                        bmc: self.name().to_string(),
                        what: format!("waiting for power {want} ({seen})"),
                        after: started.elapsed(),
                    });
                }
                let remaining = deadline - now;
                match tokio::time::timeout(remaining, self.power_status()).await {
                    Ok(Ok(state)) if state == want => return Ok(state),
                    Ok(Ok(state)) => last = Some(state),
                    Ok(Err(e)) if e.is_retryable() => last_err = Some(e.to_string()),
                    Ok(Err(e)) => return Err(e),
                    Err(_) => continue,
                }
                let now = Instant::now();
                if now >= deadline {
                    continue;
                }
                tokio::time::sleep(interval.min(deadline - now)).await;
                interval = (interval * 3 / 2).min(Duration::from_secs(2));
            }
        })
    }

    /// Sets the next boot device.
    fn set_boot(&self, boot: BootOverride) -> BmcFuture<'_, ()>;

    /// System event log entries newer than `cursor` (all of them when
    /// `None`), oldest first, and the cursor to pass next time.
    fn sel_since(&self, cursor: Option<SelCursor>) -> BmcFuture<'_, SelPage>;

    /// Clears the system event log.
    fn sel_clear(&self) -> BmcFuture<'_, ()>;

    /// The event log services the BMC offers, with their entry counts; the
    /// one [`Bmc::sel_since`] reads is marked `default`. The default: one
    /// `SEL` (IPMI has exactly one).
    fn log_services(&self) -> BmcFuture<'_, Vec<LogService>> {
        Box::pin(async move {
            Ok(vec![LogService {
                id: "SEL".to_string(),
                name: Some("System Event Log".to_string()),
                uri: None,
                entries: None,
                default: true,
            }])
        })
    }

    /// Entries of the log service `key` (a [`LogService::key`]) newer than
    /// `cursor`. The default knows only `SEL`, read by [`Bmc::sel_since`].
    fn log_since(&self, key: &str, cursor: Option<SelCursor>) -> BmcFuture<'_, SelPage> {
        let key = key.to_string();
        Box::pin(async move {
            if key.eq_ignore_ascii_case("SEL") {
                self.sel_since(cursor).await
            } else {
                Err(BmcError::NotFound {
                    bmc: self.name().to_string(),
                    what: format!("log service {key:?} (this bmc has one log: SEL)"),
                })
            }
        })
    }

    /// Every sensor the BMC reports. Sensors it cannot read come back with
    /// `reading: None` rather than failing the whole list.
    fn sensors(&self) -> BmcFuture<'_, Vec<Sensor>>;

    /// Firmware versions and the system's identity.
    fn identity(&self) -> BmcFuture<'_, Identity>;

    /// Copies the serial console to `out` (appending) until `duration` has
    /// passed, or until the future is dropped when `duration` is `None`.
    /// Returns how many bytes were written. The default says
    /// [`BmcError::Unsupported`].
    fn console(&self, out: PathBuf, duration: Option<Duration>) -> BmcFuture<'_, ConsoleCapture> {
        let _ = (out, duration);
        Box::pin(async move {
            Err(BmcError::Unsupported {
                bmc: self.name().to_string(),
                what: "serial console capture".to_string(),
            })
        })
    }
}

/// Chassis power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerState {
    On,
    Off,
    /// Transitional: the BMC is switching the machine on.
    PoweringOn,
    /// Transitional: the BMC is switching the machine off.
    PoweringOff,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "on",
            PowerState::Off => "off",
            PowerState::PoweringOn => "powering_on",
            PowerState::PoweringOff => "powering_off",
        }
    }

    /// `PoweringOn` or `PoweringOff`.
    pub fn is_transitional(self) -> bool {
        matches!(self, PowerState::PoweringOn | PowerState::PoweringOff)
    }
}

impl std::fmt::Display for PowerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A power change to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    On,
    /// Graceful shutdown (ACPI power button; the OS shuts down).
    Off,
    /// Immediate power off.
    ForceOff,
    /// Off, then on again.
    Cycle,
    /// Hard reset without removing power.
    Reset,
}

impl PowerAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::ForceOff => "force_off",
            PowerAction::Cycle => "cycle",
            PowerAction::Reset => "reset",
        }
    }

    /// Asking twice has the same effect as asking once (safe to retry after
    /// a timeout, when the first request may have been applied).
    pub fn is_idempotent(self) -> bool {
        matches!(
            self,
            PowerAction::On | PowerAction::Off | PowerAction::ForceOff
        )
    }

    /// The state the machine ends in once the action completed.
    pub fn final_state(self) -> PowerState {
        match self {
            PowerAction::Off | PowerAction::ForceOff => PowerState::Off,
            PowerAction::On | PowerAction::Cycle | PowerAction::Reset => PowerState::On,
        }
    }
}

impl std::fmt::Display for PowerAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the machine boots from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BootDevice {
    Pxe,
    Disk,
    /// Firmware setup (BIOS/UEFI menu).
    BiosSetup,
}

impl BootDevice {
    pub fn as_str(self) -> &'static str {
        match self {
            BootDevice::Pxe => "pxe",
            BootDevice::Disk => "disk",
            BootDevice::BiosSetup => "bios",
        }
    }
}

impl std::fmt::Display for BootDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A boot device override.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BootOverride {
    pub device: BootDevice,
    /// `true`: next boot only; `false`: every boot until changed.
    pub once: bool,
}

/// A high-water mark in a system event log, produced by
/// [`Bmc::sel_since`]. Opaque: each driver chooses its encoding; it round
/// trips through its string form (`--since CURSOR`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct SelCursor(pub String);

impl std::fmt::Display for SelCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SelCursor {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(SelCursor(s.to_string()))
    }
}

/// An event log service of a BMC (a Redfish `LogService`; IPMI's SEL).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogService {
    /// Its `Id` ("SEL", "EventLog", "AuditLog"): what `--service` names.
    pub id: String,
    pub name: Option<String>,
    /// The Redfish resource; `None` for IPMI's SEL.
    pub uri: Option<String>,
    /// Entries it holds (`Members@odata.count`, or the members counted);
    /// `None` when unknown.
    pub entries: Option<u64>,
    /// The service [`Bmc::sel_since`] reads.
    pub default: bool,
}

impl LogService {
    /// What [`Bmc::log_since`] takes: the URI, or the id when there is none.
    pub fn key(&self) -> &str {
        self.uri.as_deref().unwrap_or(&self.id)
    }
}

/// What [`Bmc::sel_since`] returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelPage {
    /// Oldest first.
    pub entries: Vec<SelEntry>,
    /// Pass this to the next call to get only newer entries.
    pub cursor: SelCursor,
}

/// One system event log entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelEntry {
    /// The BMC's record id (IPMI record id in decimal, Redfish entry `Id`).
    pub id: String,
    /// `None` when the BMC has no usable time for it (IPMI "Pre-Init").
    #[serde(with = "time::serde::rfc3339::option")]
    pub timestamp: Option<time::OffsetDateTime>,
    /// IPMI sensor type / Redfish `SensorType` (e.g. "Temperature"),
    /// when known.
    pub sensor_type: Option<String>,
    pub severity: Health,
    pub message: String,
}

/// Severity of an event, status of a sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    Warning,
    Critical,
    /// The BMC did not say.
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Warning => "warning",
            Health::Critical => "critical",
            Health::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One sensor reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sensor {
    pub name: String,
    /// "Temperature", "Fan", "Voltage", "Power", "Current", … as the BMC
    /// names it (IPMI sensor type names, Redfish `ReadingType`).
    pub sensor_type: String,
    /// `None`: not readable now (absent, disabled, no reading).
    pub reading: Option<f64>,
    /// "Cel", "RPM", "V", "W", "A", "%" (UCUM as Redfish uses), when known.
    pub unit: Option<String>,
    pub status: Health,
    pub thresholds: Thresholds,
}

/// A sensor's thresholds. Caution is IPMI's "non-critical", fatal its
/// "non-recoverable".
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Thresholds {
    pub lower_fatal: Option<f64>,
    pub lower_critical: Option<f64>,
    pub lower_caution: Option<f64>,
    pub upper_caution: Option<f64>,
    pub upper_critical: Option<f64>,
    pub upper_fatal: Option<f64>,
}

impl Thresholds {
    /// How far out of range `reading` is against these thresholds.
    pub fn judge(&self, reading: f64) -> Health {
        let below = |t: Option<f64>| t.is_some_and(|t| reading <= t);
        let above = |t: Option<f64>| t.is_some_and(|t| reading >= t);
        if below(self.lower_fatal)
            || below(self.lower_critical)
            || above(self.upper_critical)
            || above(self.upper_fatal)
        {
            Health::Critical
        } else if below(self.lower_caution) || above(self.upper_caution) {
            Health::Warning
        } else {
            Health::Ok
        }
    }
}

/// Who the machine is and what firmware it runs. Fields a BMC does not
/// report are `None`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Identity {
    pub bmc_firmware: Option<String>,
    pub bios_version: Option<String>,
    pub manufacturer: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// Every firmware component the BMC lists (Redfish FirmwareInventory;
    /// IPMI: the BMC itself).
    pub firmware: Vec<Firmware>,
}

/// One firmware component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Firmware {
    pub id: String,
    pub name: String,
    pub version: Option<String>,
}

/// What a console capture wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsoleCapture {
    pub path: PathBuf,
    pub bytes: u64,
}

/// Is an error worth another attempt?
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Asking again gives the same answer: bad credentials, unsupported,
    /// not found, a response we cannot read, a refused certificate.
    Fatal,
    /// The BMC may answer next time: timeouts, busy, 5xx, connection reset.
    Retryable,
}

/// Why a BMC operation failed. Every variant names the BMC; none carries a
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum BmcError {
    #[error("{bmc}: authentication failed: {message}")]
    Auth { bmc: String, message: String },
    #[error("{bmc}: {what} is not supported by this bmc")]
    Unsupported { bmc: String, what: String },
    #[error("{bmc}: not found: {what}")]
    NotFound { bmc: String, what: String },
    #[error("{bmc}: invalid response: {message}")]
    InvalidResponse { bmc: String, message: String },
    /// The TLS handshake failed: certificate not trusted, pin mismatch.
    #[error("{bmc}: tls: {message}")]
    Tls { bmc: String, message: String },
    /// A configuration problem found before talking to the BMC.
    #[error("{bmc}: {message}")]
    Config { bmc: String, message: String },
    #[error("{bmc}: timed out after {after:?}: {what}")]
    Timeout {
        bmc: String,
        what: String,
        after: Duration,
    },
    /// The BMC said it is busy (IPMI node busy 0xC0, HTTP 429/503 with
    /// Retry-After).
    #[error("{bmc}: busy: {message}")]
    Busy { bmc: String, message: String },
    /// HTTP 5xx (other than busy answers), IPMI unspecified errors.
    #[error("{bmc}: server error {status}: {message}")]
    Server5xx {
        bmc: String,
        status: u16,
        message: String,
    },
    /// Connection refused, reset or closed early.
    #[error("{bmc}: connection failed: {message}")]
    ConnectionReset { bmc: String, message: String },
    /// The circuit breaker for this BMC is open after repeated failures; no
    /// request was sent.
    #[error("{bmc}: circuit open after {failures} consecutive failures; next try in {retry_in:?}")]
    CircuitOpen {
        bmc: String,
        failures: u32,
        retry_in: Duration,
    },
    /// A link or redirect pointed at another origin (scheme, host, port)
    /// than the configured BMC's; nothing was sent there.
    #[error("{bmc}: refused {link}: its origin {origin} is not the bmc's origin {expected}, and credentials go only to the bmc")]
    ForeignOrigin {
        bmc: String,
        link: String,
        origin: String,
        expected: String,
    },
    /// [`retry::Guarded`] stopped retrying at its deadline.
    #[error("{bmc}: {operation} gave up after {attempts} attempts in {elapsed:?}: {last}")]
    GaveUp {
        bmc: String,
        operation: String,
        attempts: u32,
        elapsed: Duration,
        #[source]
        last: Box<BmcError>,
    },
}

impl BmcError {
    /// Fatal or retryable.
    pub fn class(&self) -> ErrorClass {
        match self {
            BmcError::Auth { .. }
            | BmcError::Unsupported { .. }
            | BmcError::NotFound { .. }
            | BmcError::InvalidResponse { .. }
            | BmcError::Tls { .. }
            | BmcError::Config { .. }
            | BmcError::ForeignOrigin { .. }
            | BmcError::CircuitOpen { .. }
            | BmcError::GaveUp { .. } => ErrorClass::Fatal,
            BmcError::Timeout { .. }
            | BmcError::Busy { .. }
            | BmcError::Server5xx { .. }
            | BmcError::ConnectionReset { .. } => ErrorClass::Retryable,
        }
    }

    /// `class() == Retryable`.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Retryable
    }

    /// A short machine-readable name of the variant ("auth", "timeout", …),
    /// for call records and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            BmcError::Auth { .. } => "auth",
            BmcError::Unsupported { .. } => "unsupported",
            BmcError::NotFound { .. } => "not_found",
            BmcError::InvalidResponse { .. } => "invalid_response",
            BmcError::Tls { .. } => "tls",
            BmcError::Config { .. } => "config",
            BmcError::ForeignOrigin { .. } => "foreign_origin",
            BmcError::Timeout { .. } => "timeout",
            BmcError::Busy { .. } => "busy",
            BmcError::Server5xx { .. } => "server_5xx",
            BmcError::ConnectionReset { .. } => "connection_reset",
            BmcError::CircuitOpen { .. } => "circuit_open",
            BmcError::GaveUp { .. } => "gave_up",
        }
    }

    /// The error that ended the last attempt (itself unless `GaveUp`).
    pub fn root(&self) -> &BmcError {
        match self {
            BmcError::GaveUp { last, .. } => last.root(),
            other => other,
        }
    }
}

/// Opens the BMC of a lab.toml machine under the lab's retry policy, its
/// calls recorded to `sink`: IPMI or Redfish as `[machine.bmc]` says. The
/// one opener the CLI and the orchestrator share; a simulated machine's BMC
/// comes from [`crate::sim::SimLab`] instead.
pub fn open(
    m: &crate::inventory::Machine,
    sink: std::sync::Arc<dyn CallSink>,
) -> Result<Box<dyn Bmc>, BmcError> {
    let ep = m.bmc().map_err(|e| BmcError::Config {
        bmc: m.name.clone(),
        message: e.to_string(),
    })?;
    let bmc: Box<dyn Bmc> = match &ep.protocol {
        crate::inventory::BmcProtocol::Ipmi => {
            let cfg = ipmi::IpmiConfig::from_endpoint(&m.name, ep)?;
            Box::new(
                Guarded::new(ipmi::Ipmi::new(cfg), RetryPolicy::default(), sink)
                    .with_warnings(&ep.exposure_warnings()),
            )
        }
        crate::inventory::BmcProtocol::Redfish(_) => {
            Box::new(redfish::connect(&m.name, ep, RetryPolicy::default(), sink)?)
        }
    };
    Ok(bmc)
}
