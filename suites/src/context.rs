//! [`CaseCtx`]: what a check sees of the machine, recording all it touches.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use certlab_hwdb::{HardwareProfile, Inventory};
use certlab_lab::bmc::SelEntry;
use certlab_lab::target::shell_quote;
use certlab_lab::{DirEntry, ExecOutput, Target, TargetError};
use certlab_reports::{ArtifactRef, BaselineComparison, Evidence, Metric, Verdict};

use crate::perf::Baseline;

/// Where raw outputs go: content-addressed storage of bytes.
pub trait ArtifactSink: Send + Sync {
    /// Stores `bytes` and returns a reference to them.
    fn put(&self, bytes: &[u8]) -> Result<ArtifactRef, String>;
}

/// An in-memory sink, for tests and dry runs.
#[derive(Debug, Default)]
pub struct MemorySink {
    blobs: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemorySink {
    /// The stored content of an artifact.
    pub fn get(&self, r: &ArtifactRef) -> Option<Vec<u8>> {
        self.blobs.lock().ok()?.get(&r.sha256).cloned()
    }
}

impl ArtifactSink for MemorySink {
    fn put(&self, bytes: &[u8]) -> Result<ArtifactRef, String> {
        use sha2::Digest;
        let sha256 = hex::encode(sha2::Sha256::digest(bytes));
        self.blobs
            .lock()
            .map_err(|_| "artifact sink poisoned".to_string())?
            .insert(sha256.clone(), bytes.to_vec());
        Ok(ArtifactRef {
            sha256,
            size: bytes.len() as u64,
        })
    }
}

/// Why a check could not reach a verdict about the product.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("storing evidence failed: {0}")]
    Artifact(String),
    #[error("command `{command}` timed out after {seconds} s")]
    Timeout { command: String, seconds: u64 },
    #[error("{0}")]
    Infra(String),
    /// The plan gave the case a parameter it cannot use.
    #[error("{0}")]
    Plan(String),
}

impl CaseError {
    /// The case could not be carried out because of the lab, not the
    /// product: the target could not be reached or was lost, or evidence
    /// could not be stored. Such a case may be tried again; its error says
    /// nothing about the product. Not one: a command that ran past its
    /// timeout on the target (the product may be what hangs) and
    /// [`CaseError::Infra`] (the target answered, but not usably).
    pub fn is_infrastructure(&self) -> bool {
        match self {
            CaseError::Target(e) => e.is_transient_transport(),
            CaseError::Artifact(_) => true,
            CaseError::Infra(_) | CaseError::Plan(_) | CaseError::Timeout { .. } => false,
        }
    }
}

/// What a check concluded about the product.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseOutcome {
    pub verdict: Verdict,
    pub reason: String,
    pub metrics: Vec<Metric>,
    /// A performance case's comparison with the baseline it was given.
    pub baseline: Option<BaselineComparison>,
    /// A failure that is a warning even when the case is a blocker (a
    /// comparison with the baseline that cannot tell, or a regression the
    /// plan asks to warn about): the result is recorded as not blocking.
    pub warning: bool,
}

impl CaseOutcome {
    pub fn pass(reason: impl Into<String>) -> CaseOutcome {
        CaseOutcome::new(Verdict::Pass, reason)
    }
    pub fn fail(reason: impl Into<String>) -> CaseOutcome {
        CaseOutcome::new(Verdict::Fail, reason)
    }
    pub fn skip(reason: impl Into<String>) -> CaseOutcome {
        CaseOutcome::new(Verdict::Skip, reason)
    }
    pub fn new(verdict: Verdict, reason: impl Into<String>) -> CaseOutcome {
        CaseOutcome {
            verdict,
            reason: reason.into(),
            metrics: Vec::new(),
            baseline: None,
            warning: false,
        }
    }
    /// Adds a metric.
    pub fn metric(mut self, m: Metric) -> CaseOutcome {
        self.metrics.push(m);
        self
    }
}

/// Runs commands and reads files on a target, recording each as evidence.
///
/// It is the only way a check or discovery reaches the machine: every method
/// that touches the target records what it saw (or that it saw nothing)
/// before the caller gets the result, and an infrastructure failure (a lost
/// SSH session, a timeout) comes back as an `Err`, never as "absent".
pub struct Recorder<'a> {
    target: &'a dyn Target,
    sink: &'a dyn ArtifactSink,
    /// Upper bound for each command.
    pub timeout: Duration,
    evidence: Mutex<Vec<Evidence>>,
}

impl<'a> Recorder<'a> {
    pub fn new(
        target: &'a dyn Target,
        sink: &'a dyn ArtifactSink,
        timeout: Duration,
    ) -> Recorder<'a> {
        Recorder {
            target,
            sink,
            timeout,
            evidence: Mutex::new(Vec::new()),
        }
    }

    fn push(&self, e: Evidence) {
        if let Ok(mut v) = self.evidence.lock() {
            v.push(e);
        }
    }

    /// The evidence recorded so far.
    pub fn take_evidence(&self) -> Vec<Evidence> {
        self.evidence
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }

    fn store(&self, bytes: &[u8]) -> Result<ArtifactRef, CaseError> {
        self.sink.put(bytes).map_err(CaseError::Artifact)
    }

    /// Runs a command, recording it as evidence whatever its exit status.
    /// A timeout is an infrastructure error.
    pub fn run(&self, command: &str) -> Result<ExecOutput, CaseError> {
        self.run_with_timeout(command, self.timeout)
    }

    /// Like [`Recorder::run`] with a shorter timeout of its own.
    pub fn run_with_timeout(
        &self,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, CaseError> {
        let timeout = timeout.min(self.timeout);
        let out = self.target.exec(command, timeout)?;
        self.record_output(command, &out)?;
        if out.timed_out {
            return Err(CaseError::Timeout {
                command: command.to_string(),
                seconds: timeout.as_secs(),
            });
        }
        Ok(out)
    }

    /// Runs a command only if its program is on the target; `Ok(None)` if not.
    /// The probe is recorded either way.
    pub fn run_if_present(
        &self,
        program: &str,
        command: &str,
    ) -> Result<Option<ExecOutput>, CaseError> {
        if !self.has_command(program)? {
            return Ok(None);
        }
        self.run(command).map(Some)
    }

    /// Whether `program` is on the target's `PATH`, by a recorded
    /// `command -v` (its stdout names where the program is). An error
    /// reaching the target is an `Err`, not "absent".
    pub fn has_command(&self, program: &str) -> Result<bool, CaseError> {
        let probe = format!("command -v {}", shell_quote(program));
        let out = self.run_with_timeout(&probe, Duration::from_secs(10))?;
        Ok(out.success())
    }

    /// Whether `path` exists on the target (a symlink counts, dangling or
    /// not), by a recorded listing of its parent directory. An error reaching
    /// the target is an `Err`, not "absent".
    pub fn exists(&self, path: &str) -> Result<bool, CaseError> {
        let path = path.trim_end_matches('/');
        let (parent, name) = match path.rsplit_once('/') {
            Some(("", name)) => ("/", name),
            Some((parent, name)) => (parent, name),
            None => return Ok(false),
        };
        Ok(self
            .list_dir(parent)?
            .is_some_and(|entries| entries.iter().any(|e| e.name == name)))
    }

    /// Lists a directory; `Ok(None)` when it does not exist or may not be
    /// listed. The listing is recorded as a file `PATH/` whose content is one
    /// line per entry (`name`, `name/` for a directory, `name@` for a
    /// symlink); absence as a missing file.
    pub fn list_dir(&self, path: &str) -> Result<Option<Vec<DirEntry>>, CaseError> {
        match self.target.list_dir(path) {
            Ok(entries) => {
                let mut text = String::new();
                for e in &entries {
                    text.push_str(&e.name);
                    if e.is_symlink {
                        text.push('@');
                    } else if e.is_dir {
                        text.push('/');
                    }
                    text.push('\n');
                }
                let content = self.store(text.as_bytes())?;
                self.push(Evidence::File {
                    path: format!("{}/", path.trim_end_matches('/')),
                    content,
                });
                Ok(Some(entries))
            }
            Err(e) if e.is_not_found() || e.is_permission_denied() => {
                self.push(Evidence::Missing {
                    path: path.to_string(),
                    error: e.to_string(),
                });
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads a binary file too big to keep as an artifact (a kernel module):
    /// `sha256sum PATH` runs first and is the recorded evidence of what was
    /// read; when it answers, the bytes read must have that digest. Returns
    /// the bytes and their sha256; `Ok(None)` when the file does not exist or
    /// may not be read (recorded as missing).
    pub fn read_digested(&self, path: &str) -> Result<Option<(Vec<u8>, String)>, CaseError> {
        use sha2::Digest;
        let o = self.run(&format!("sha256sum {}", shell_quote(path)))?;
        let bytes = match self.target.read_file(path) {
            Ok(b) => b,
            Err(e) if e.is_not_found() || e.is_permission_denied() => {
                self.push(Evidence::Missing {
                    path: path.to_string(),
                    error: e.to_string(),
                });
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let sha = hex::encode(sha2::Sha256::digest(&bytes));
        if o.success() {
            let said = o.stdout_str();
            let said = said.split_whitespace().next().unwrap_or_default();
            if !said.eq_ignore_ascii_case(&sha) {
                return Err(CaseError::Infra(format!(
                    "{path} changed while it was read: sha256sum says {said}, the bytes read have {sha}"
                )));
            }
        }
        Ok(Some((bytes, sha)))
    }

    /// The target's name, for messages.
    pub fn target_name(&self) -> &str {
        self.target.name()
    }

    /// A `certlab` binary on the target that runs helper subcommands.
    pub fn agent_path(&self) -> Option<String> {
        self.target.agent_path()
    }

    /// Records what the BMC said (`source`: `sel`, `console`) as evidence.
    pub fn record_bmc(&self, source: &str, bytes: &[u8]) -> Result<(), CaseError> {
        let content = self.store(bytes)?;
        self.push(Evidence::Bmc {
            source: source.to_string(),
            content,
        });
        Ok(())
    }

    /// Records an output obtained elsewhere as command evidence.
    pub fn record_output(&self, command: &str, out: &ExecOutput) -> Result<(), CaseError> {
        let stdout = self.store(&out.stdout)?;
        let stderr = self.store(&out.stderr)?;
        self.push(Evidence::Command {
            cmd: command.to_string(),
            exit: out.exit,
            timed_out: out.timed_out,
            duration_ms: out.duration.as_millis() as u64,
            stdout,
            stderr,
        });
        Ok(())
    }

    /// Reads a text file; `Ok(None)` when it does not exist or may not be
    /// read. Either way the read is recorded as evidence.
    pub fn read(&self, path: &str) -> Result<Option<String>, CaseError> {
        Ok(self.read_or_why(path)?.ok())
    }

    /// Reads a binary file (a database) and keeps its bytes as the evidence;
    /// `Ok(Err(why))` when it does not exist or may not be read (recorded as
    /// missing). The caller bounds the size first: the whole file is read.
    pub fn read_bytes(&self, path: &str) -> Result<Result<Vec<u8>, Unreadable>, CaseError> {
        match self.target.read_file(path) {
            Ok(bytes) => {
                let content = self.store(&bytes)?;
                self.push(Evidence::File {
                    path: path.to_string(),
                    content,
                });
                Ok(Ok(bytes))
            }
            Err(e) if e.is_not_found() || e.is_permission_denied() => {
                let why = Unreadable {
                    path: path.to_string(),
                    error: e.to_string(),
                    denied: e.is_permission_denied(),
                };
                self.push(Evidence::Missing {
                    path: path.to_string(),
                    error: why.error.clone(),
                });
                Ok(Err(why))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Like [`Recorder::read`], but says why a file could not be read.
    pub fn read_or_why(&self, path: &str) -> Result<Result<String, Unreadable>, CaseError> {
        Ok(self
            .read_bytes(path)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// Why a file could not be read: it does not exist, or may not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub path: String,
    /// The target's error text.
    pub error: String,
    /// Permission was denied (the file may well exist).
    pub denied: bool,
}

/// The context a check runs in: the machine (through a [`Recorder`]), what
/// discovery learnt about it, and the case's parameters.
pub struct CaseCtx<'a> {
    rec: Recorder<'a>,
    pub profile: &'a HardwareProfile,
    pub inventory: &'a Inventory,
    params: &'a toml::Table,
    bmc_sel: Option<Result<Vec<SelEntry>, String>>,
    baseline: Option<&'a Baseline>,
    param_errors: Mutex<Vec<String>>,
    crash_window: bool,
}

impl<'a> std::ops::Deref for CaseCtx<'a> {
    type Target = Recorder<'a>;
    fn deref(&self) -> &Recorder<'a> {
        &self.rec
    }
}

impl<'a> CaseCtx<'a> {
    pub fn new(
        target: &'a dyn Target,
        profile: &'a HardwareProfile,
        inventory: &'a Inventory,
        params: &'a toml::Table,
        sink: &'a dyn ArtifactSink,
        timeout: Duration,
    ) -> CaseCtx<'a> {
        CaseCtx {
            rec: Recorder::new(target, sink, timeout),
            profile,
            inventory,
            params,
            bmc_sel: None,
            baseline: None,
            param_errors: Mutex::new(Vec::new()),
            crash_window: false,
        }
    }

    /// Hands the case the BMC's event log entries since the run began (the
    /// orchestrator does, for a check whose
    /// [`needs_bmc_sel`](crate::Check::needs_bmc_sel) says so), or why they
    /// could not be read.
    pub fn with_bmc_sel(mut self, sel: Result<Vec<SelEntry>, String>) -> CaseCtx<'a> {
        self.bmc_sel = Some(sel);
        self
    }

    /// The BMC's event log entries since the run began; `None` when the run
    /// has no BMC connection (a local run, a machine without a BMC).
    pub fn bmc_sel(&self) -> Option<&Result<Vec<SelEntry>, String>> {
        self.bmc_sel.as_ref()
    }

    /// The context with the stored performance baseline the runner found
    /// for this case (see [`crate::CaseSpec::baseline`]).
    pub fn with_baseline(mut self, baseline: Option<&'a Baseline>) -> CaseCtx<'a> {
        self.baseline = baseline;
        self
    }

    /// The context of a case the orchestrator runs in a crash window: the
    /// case declares `may_crash = true`, `reboots = true` and `reboot =
    /// "crash"`, and the machine's BMC is there to bring it back (see
    /// [`CaseCtx::crash_window`]).
    pub fn with_crash_window(mut self, crash_window: bool) -> CaseCtx<'a> {
        self.crash_window = crash_window;
        self
    }

    /// Whether the machine may be taken down by this case and will be
    /// brought back through its BMC: only then may a check do what can
    /// crash it (an uncorrectable error injection). Never on a local run.
    pub fn crash_window(&self) -> bool {
        self.crash_window
    }

    /// The stored performance baseline to compare with, if there is one.
    pub fn baseline(&self) -> Option<&'a Baseline> {
        self.baseline
    }

    /// Notes that parameter `name` is in the plan with a type the check
    /// does not take; [`CaseCtx::params_checked`] turns it into the case's
    /// error, so a mistyped parameter is never silently its default.
    fn wrong_type(&self, name: &str, want: &str, got: &toml::Value) {
        if let Ok(mut v) = self.param_errors.lock() {
            v.push(format!(
                "plan parameter `{name}` is {} {}, but this check takes {want}",
                article(got.type_str()),
                got.type_str()
            ));
        }
    }

    /// `outcome`, unless a parameter read by the check had the wrong type
    /// in the plan: then an error naming each such parameter (a plan
    /// mistake, not an infrastructure failure).
    pub fn params_checked<T>(&self, outcome: Result<T, CaseError>) -> Result<T, CaseError> {
        let errors = self
            .param_errors
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        if errors.is_empty() {
            outcome
        } else {
            Err(CaseError::Plan(errors.join("; ")))
        }
    }

    /// An integer parameter of the case (≥ 0), or its default.
    pub fn param_u64(&self, name: &str, default: u64) -> u64 {
        match self.params.get(name) {
            None => default,
            Some(v) => match v.as_integer().and_then(|i| u64::try_from(i).ok()) {
                Some(i) => i,
                None => {
                    self.wrong_type(name, "a non-negative integer", v);
                    default
                }
            },
        }
    }

    /// A float parameter of the case, or its default.
    pub fn param_f64(&self, name: &str, default: f64) -> f64 {
        match self.params.get(name) {
            None => default,
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(v) => {
                self.wrong_type(name, "a number", v);
                default
            }
        }
    }

    /// A string parameter of the case, or its default.
    pub fn param_str(&self, name: &str, default: &str) -> String {
        match self.params.get(name) {
            None => default.to_string(),
            Some(toml::Value::String(s)) => s.clone(),
            Some(v) => {
                self.wrong_type(name, "a string", v);
                default.to_string()
            }
        }
    }

    /// A list-of-strings parameter of the case, or its default.
    pub fn param_strings(&self, name: &str, default: &[&str]) -> Vec<String> {
        let defaults = || default.iter().map(|s| s.to_string()).collect();
        match self.params.get(name) {
            None => defaults(),
            Some(toml::Value::Array(a)) if a.iter().all(toml::Value::is_str) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            Some(v) => {
                self.wrong_type(name, "a list of strings", v);
                defaults()
            }
        }
    }

    /// A boolean parameter of the case, or its default.
    pub fn param_bool(&self, name: &str, default: bool) -> bool {
        match self.params.get(name) {
            None => default,
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                self.wrong_type(name, "true or false", v);
                default
            }
        }
    }
}

/// "a" or "an" before a TOML type name.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}
