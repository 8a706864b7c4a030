//! Runs a plan on one target: discover, select, execute, publish.
//!
//! Each case's result is written to the store as soon as it finishes, so an
//! interrupted run keeps every verdict it reached. The runner emits
//! [`RunEvent`]s and never prints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certlab_hwdb::{HardwareProfile, Inventory, PciIds};
use certlab_lab::Target;
use certlab_reports::{
    ArtifactRef, ArtifactStore, CaseResult, PlanRef, RunRecord, Summary, Tool, Verdict,
    SCHEMA_VERSION,
};
use certlab_suites::{
    checks, discover, summary::hardware_summary, Applies, ArtifactSink, Before, CaseCtx, CaseError,
    CaseOutcome, Check, Plan, RebootKind, Rebooted,
};
use ed25519_dalek::SigningKey;
use time::OffsetDateTime;

use crate::events::{JobStep, RunEvent, Stage};
use crate::store::{NewRun, Store, StoreError};
use crate::sut::SutControl;

/// Extra time a case gets beyond its own timeout before the runner gives up on it.
pub const CASE_GRACE: Duration = Duration::from_secs(30);

/// What to run, where, and where the outputs go.
pub struct RunSpec {
    pub run_id: String,
    pub plan: Plan,
    pub target: Arc<dyn Target>,
    pub out_dir: PathBuf,
    pub signer: SigningKey,
    pub tool_version: String,
    /// What a case that meets an infrastructure error (the target lost or
    /// unreachable, evidence not stored) does. `None`: it is recorded as
    /// `error` and the run goes on (one machine, one command: the user
    /// sees it). `Some(n)`: it is tried again up to `n` times; then the run
    /// stops with [`RunError::Infrastructure`] and the case is not
    /// recorded (the orchestrator: the job goes to another machine).
    pub case_retries: Option<u32>,
    /// The machine's boot identity, reboots and crashes through its BMC
    /// (the orchestrator, or a machine with a BMC). Without it a case that
    /// declares `reboots = true` is skipped and a crash shows as an
    /// infrastructure error.
    pub sut: Option<Arc<dyn SutControl>>,
}

/// Paths of what a finished run wrote.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub results: PathBuf,
    pub junit: PathBuf,
    pub html: PathBuf,
    pub bundle: PathBuf,
    pub key_id: String,
}

/// Why a run could not be carried out (never a product verdict).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Report(#[from] certlab_reports::ReportError),
    #[error("lab store: {0}")]
    Store(#[from] StoreError),
    #[error("discovery on {target} failed: {reason}")]
    Discovery { target: String, reason: String },
    #[error("case `{case}`: infrastructure error after {attempts} attempt(s): {error}")]
    Infrastructure {
        case: String,
        attempts: u32,
        error: String,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

/// [`ArtifactStore`] as the suites' evidence sink.
struct EvidenceDir(ArtifactStore);

impl ArtifactSink for EvidenceDir {
    fn put(&self, bytes: &[u8]) -> Result<ArtifactRef, String> {
        self.0.put(bytes).map_err(|e| e.to_string())
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), RunError> {
    std::fs::write(path, bytes).map_err(|source| RunError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Runs `spec` and returns the record and where it was written.
pub async fn certify(
    spec: RunSpec,
    store: &Store,
    on_event: &mut (dyn FnMut(&RunEvent) + Send),
) -> Result<(RunRecord, Outputs), RunError> {
    let started_at = Instant::now();
    let started = OffsetDateTime::now_utc();
    std::fs::create_dir_all(&spec.out_dir).map_err(|source| RunError::Io {
        path: spec.out_dir.display().to_string(),
        source,
    })?;
    let sink: Arc<EvidenceDir> = Arc::new(EvidenceDir(ArtifactStore::open(
        spec.out_dir.join("evidence"),
    )?));
    let mut events = Stream {
        on_event,
        store,
        run_id: spec.run_id.clone(),
        seq: None,
        held: Vec::new(),
    };

    events
        .send(RunEvent::RunStarted {
            run_id: spec.run_id.clone(),
            plan_id: spec.plan.id.clone(),
            plan_version: spec.plan.version.clone(),
            target: spec.target.name().to_string(),
            out_dir: spec.out_dir.display().to_string(),
        })
        .await?;
    events
        .send(RunEvent::StageChanged {
            stage: Stage::Discover,
        })
        .await?;
    let target = spec.target.clone();
    let sink2 = sink.clone();
    let discovery = tokio::task::spawn_blocking(move || discover(target.as_ref(), sink2.as_ref()))
        .await
        .map_err(|e| RunError::Internal(format!("discovery task: {e}")))?
        .map_err(|e| RunError::Discovery {
            target: spec.target.name().to_string(),
            reason: e.to_string(),
        })?;
    // Taken apart so that nothing of it is held twice while the cases run:
    // 1,000 runs in flight each keep their inventory (the raw dumps).
    let certlab_suites::Discovery {
        inventory,
        host,
        evidence: discovery_evidence,
        notes,
    } = discovery;
    let profile = certlab_hwdb::identify(&inventory, PciIds::embedded());

    let resume = store
        .begin_run(&NewRun {
            id: spec.run_id.clone(),
            plan_id: spec.plan.id.clone(),
            plan_version: spec.plan.version.clone(),
            plan_digest: spec.plan.digest.clone(),
            target: spec.target.name().to_string(),
            hostname: host.hostname.clone(),
            kernel: host.kernel.clone(),
            started,
            out_dir: Some(spec.out_dir.display().to_string()),
        })
        .await?;
    // A resumed run keeps what it recorded; its event log continues.
    events.open(resume.last_event_seq).await?;
    let mut kept: std::collections::HashMap<String, (u32, CaseResult)> = resume
        .cases
        .into_iter()
        .map(|(seq, case)| (case.id.clone(), (seq, case)))
        .collect();
    // Sequence numbers taken by kept cases: a new case uses its index
    // unless a kept case of another id (an earlier selection) holds it.
    let taken: std::collections::BTreeSet<u32> = kept.values().map(|(s, _)| *s).collect();
    let mut spare = taken.last().map_or(0, |s| s + 1);
    if !kept.is_empty() {
        let mut ids: Vec<String> = kept.keys().cloned().collect();
        ids.sort();
        events.send(RunEvent::Resumed { kept: ids }).await?;
    }
    let discovered = RunEvent::Discovered {
        hostname: host.hostname.clone(),
        kernel: host.kernel.clone(),
        cpu: profile.cpu.model_name.clone(),
        family: profile.cpu.family.as_str().to_string(),
        facts: discovery_evidence.len(),
        notes,
    };
    events.send(discovered).await?;
    events
        .send(RunEvent::StageChanged {
            stage: Stage::Select,
        })
        .await?;
    let mut selection = spec
        .plan
        .select_on_os(&host.os_id, &host.os_version, &profile, &inventory);
    // Performance cases get the baseline in force for this machine, else
    // for its platform: the store is read here, never by a check.
    let wants_baseline: std::collections::BTreeSet<String> = selection
        .iter()
        .filter(|s| s.selected == Applies::Yes)
        .filter(|s| checks::lookup(&s.case.check).is_some_and(|c| c.compares_with_baseline()))
        .map(|s| s.case.id.clone())
        .collect();
    if !wants_baseline.is_empty() {
        let machine = crate::store::machine_key(spec.target.name(), &host.hostname);
        let platform = certlab_suites::perf::platform_key(&hardware_summary(&profile));
        let mut found = store
            .baselines_for_cases(&machine, &platform, &wants_baseline)
            .await?;
        for s in &mut selection {
            s.case.baseline = found.remove(&s.case.id);
        }
    }
    let selected = selection
        .iter()
        .filter(|s| s.selected == Applies::Yes)
        .count();
    let ev = RunEvent::Selected {
        selected,
        skipped: selection.len() - selected,
    };
    events.send(ev).await?;
    events
        .send(RunEvent::StageChanged {
            stage: Stage::Execute,
        })
        .await?;
    let profile = Arc::new(profile);
    let inventory = Arc::new(inventory);
    // The boot the run is in: a case after which it changed without
    // declaring it crashed the machine.
    let mut boot = match &spec.sut {
        Some(sut) => sut.boot_id().await.ok(),
        None => None,
    };
    let total = selection.len();
    let mut cases = Vec::with_capacity(total);
    for (index, sel) in selection.into_iter().enumerate() {
        let case = sel.case;
        if let Some((_, result)) = kept.remove(&case.id) {
            // Finished in an earlier attempt: kept, not run again (shown,
            // not logged again: the earlier attempt logged it).
            events.show(&RunEvent::CaseFinished {
                index,
                total,
                result: Box::new(result.clone()),
            });
            cases.push(result);
            continue;
        }
        events
            .send(RunEvent::CaseStarted {
                index,
                total,
                id: case.id.clone(),
                title: case.title.clone(),
            })
            .await?;
        let mut case_started = OffsetDateTime::now_utc();
        let mut t0 = Instant::now();
        let mut tries = 0u32;
        let done = loop {
            let at = CaseAt {
                case: &case,
                target: spec.target.clone(),
                profile: profile.clone(),
                inventory: inventory.clone(),
                sink: sink.clone(),
                sel: match (&spec.sut, checks::lookup(&case.check)) {
                    (Some(sut), Some(check))
                        if sel.selected == Applies::Yes && check.needs_bmc_sel() =>
                    {
                        sut.sel_delta().await
                    }
                    _ => None,
                },
            };
            let done = match (&sel.selected, case.reboots, &spec.sut) {
                (Applies::No(reason), ..) => CaseRun::of(Verdict::Skip, reason.clone()),
                (Applies::Yes, false, _) => run_case(&at).await,
                (Applies::Yes, true, None) => CaseRun::of(
                    Verdict::Skip,
                    "the case reboots the machine: that needs its BMC and the orchestrator \
                     (`certlab lab daemon`)"
                        .to_string(),
                ),
                (Applies::Yes, true, Some(sut)) => {
                    run_rebooting(&at, index, sut.as_ref(), &mut boot, &mut events).await?
                }
            };
            // Did the machine crash (its boot changed, or it does not answer)?
            if let (Some(sut), Applies::Yes) = (&spec.sut, &sel.selected) {
                let now = probe_boot(sut.as_ref()).await;
                let same = matches!((&now, &boot), (Ok(n), Some(b)) if n == b);
                if !same && boot.is_some() {
                    if case.may_crash {
                        // Expected: bring it back if it does not answer.
                        boot = match now {
                            Ok(id) => Some(id),
                            Err(_) => Some(sut.recover(boot.clone()).await.map_err(|e| {
                                RunError::Infrastructure {
                                    case: case.id.clone(),
                                    attempts: tries + 1,
                                    error: e,
                                }
                            })?),
                        };
                    } else {
                        let what = match &now {
                            Ok(id) => {
                                format!("the machine rebooted during the case (boot id now {id})")
                            }
                            Err(e) => {
                                format!("the machine stopped answering during the case ({e})")
                            }
                        };
                        let check = if done.reason.is_empty() {
                            String::new()
                        } else {
                            format!("; the check said: {}", done.reason)
                        };
                        break crashed(
                            sut.as_ref(),
                            &mut boot,
                            &sink,
                            format!("{what}{check}"),
                            &case.id,
                        )
                        .await?;
                    }
                }
            }
            let Some(retries) = spec.case_retries.filter(|_| done.infrastructure) else {
                break done;
            };
            if tries >= retries {
                return Err(RunError::Infrastructure {
                    case: case.id.clone(),
                    attempts: tries + 1,
                    error: done.reason,
                });
            }
            tries += 1;
            let ev = RunEvent::CaseRetried {
                index,
                id: case.id.clone(),
                attempt: tries + 1,
                error: done.reason,
            };
            events.send(ev).await?;
            // A moment for a dropped connection to come back.
            tokio::time::sleep(Duration::from_millis(250 * u64::from(tries))).await;
            case_started = OffsetDateTime::now_utc();
            t0 = Instant::now();
        };
        let result = CaseResult {
            id: case.id.clone(),
            title: case.title.clone(),
            // A failure the check calls a warning does not block, whatever the plan says.
            blocker: case.blocker && !(done.warning && done.verdict == Verdict::Fail),
            verdict: done.verdict,
            reason: done.reason,
            started: case_started,
            duration_ms: t0.elapsed().as_millis() as u64,
            metrics: done.metrics,
            evidence: done.evidence,
            baseline: done.baseline,
        };
        let mut case_seq = index as u32;
        if taken.contains(&case_seq) {
            case_seq = spare.max(total as u32);
            spare = case_seq + 1;
        }
        store.record_case(&spec.run_id, case_seq, &result).await?;
        let ev = RunEvent::CaseFinished {
            index,
            total,
            result: Box::new(result.clone()),
        };
        events.send(ev).await?;
        cases.push(result);
    }

    // The sweep: what the BMC logged over the run is kept with it (as
    // `bmc` evidence beside discovery's, so it is in results.json).
    let mut inventory_evidence = discovery_evidence;
    if let Some(sut) = &spec.sut {
        events
            .send(RunEvent::StepStarted {
                step: JobStep::Sweep,
            })
            .await?;
        if let Some(swept) = sut.sweep().await {
            let ev = match swept.and_then(|sw| {
                let content = sink.put(&sw.text)?;
                Ok((sw, content))
            }) {
                Ok((sw, content)) => {
                    inventory_evidence.push(certlab_reports::Evidence::Bmc {
                        source: "sel".to_string(),
                        content,
                    });
                    RunEvent::Swept {
                        entries: sw.entries,
                        critical: sw.critical,
                        error: None,
                    }
                }
                Err(e) => RunEvent::Swept {
                    entries: 0,
                    critical: 0,
                    error: Some(e),
                },
            };
            events.send(ev).await?;
        }
    }

    events
        .send(RunEvent::StageChanged {
            stage: Stage::Publish,
        })
        .await?;
    let record = RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: spec.run_id.clone(),
        tool: Tool {
            name: "certlab".to_string(),
            version: spec.tool_version.clone(),
        },
        plan: PlanRef {
            id: spec.plan.id.clone(),
            version: spec.plan.version.clone(),
            digest: spec.plan.digest.clone(),
        },
        host,
        profile: hardware_summary(&profile),
        started,
        finished: OffsetDateTime::now_utc(),
        inventory: inventory_evidence,
        summary: Summary::of(&cases),
        cases,
    };
    let outputs = publish(&record, &spec.out_dir, &spec.signer)?;
    store.finish_run(&spec.run_id, &record).await?;
    let ev = RunEvent::Published {
        results: outputs.results.display().to_string(),
        junit: outputs.junit.display().to_string(),
        html: outputs.html.display().to_string(),
        bundle: outputs.bundle.display().to_string(),
        key_id: outputs.key_id.clone(),
    };
    events.send(ev).await?;
    events
        .send(RunEvent::RunFinished {
            summary: record.summary,
            elapsed: started_at.elapsed(),
        })
        .await?;
    Ok((record, outputs))
}

/// The version of the event format in the store's log (`v` in each
/// payload). Bump it when a kind's fields change meaning.
pub const STORED_EVENT_VERSION: u64 = 1;

/// The run's one event stream: each event is shown to the caller's
/// callback (the terminal, JSON output, a live view) and appended, stamped
/// with its time, to the run's log in the store. Events before the run's
/// row is taken are held and logged then.
struct Stream<'a> {
    on_event: &'a mut (dyn FnMut(&RunEvent) + Send),
    store: &'a Store,
    run_id: String,
    /// The last logged sequence number, once the run's row is taken.
    seq: Option<u64>,
    held: Vec<(OffsetDateTime, RunEvent)>,
}

impl Stream<'_> {
    /// Shown only (already in the log).
    fn show(&mut self, ev: &RunEvent) {
        (self.on_event)(ev);
    }

    async fn send(&mut self, ev: RunEvent) -> Result<(), StoreError> {
        let at = OffsetDateTime::now_utc();
        (self.on_event)(&ev);
        match self.seq {
            None => {
                self.held.push((at, ev));
                Ok(())
            }
            Some(_) => self.log(at, &ev).await,
        }
    }

    /// The run's row is taken; its log continues after `last_seq`.
    async fn open(&mut self, last_seq: u64) -> Result<(), StoreError> {
        self.seq = Some(last_seq);
        for (at, ev) in std::mem::take(&mut self.held) {
            self.log(at, &ev).await?;
        }
        Ok(())
    }

    async fn log(&mut self, at: OffsetDateTime, ev: &RunEvent) -> Result<(), StoreError> {
        let mut payload = serde_json::to_value(ev).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = payload.as_object_mut() {
            obj.insert("v".into(), STORED_EVENT_VERSION.into());
        }
        let seq = self.seq.unwrap_or(0) + 1;
        self.store
            .append_event(&self.run_id, seq, at, ev.kind(), &payload)
            .await?;
        self.seq = Some(seq);
        Ok(())
    }
}

/// The boot id, asked up to three times: one lost answer (a dropped
/// session) is not a crash.
async fn probe_boot(sut: &dyn SutControl) -> Result<String, String> {
    let mut last = String::new();
    for attempt in 0..3u64 {
        match sut.boot_id().await {
            Ok(id) => return Ok(id),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(300 * (attempt + 1))).await;
    }
    Err(last)
}

/// A crash: the console and SEL kept as evidence, the machine brought back
/// through its BMC (or, when it cannot be, the run stops: infrastructure).
async fn crashed(
    sut: &dyn SutControl,
    boot: &mut Option<String>,
    sink: &Arc<EvidenceDir>,
    what: String,
    case: &str,
) -> Result<CaseRun, RunError> {
    let mut evidence = Vec::new();
    for (source, bytes) in sut.crash_evidence().await {
        match sink.put(&bytes) {
            Ok(content) => evidence.push(certlab_reports::Evidence::Bmc { source, content }),
            Err(e) => tracing::warn!(%case, error = %e, "crash evidence not stored"),
        }
    }
    let new = sut
        .recover(boot.clone())
        .await
        .map_err(|e| RunError::Infrastructure {
            case: case.to_string(),
            attempts: 1,
            error: format!("{what}; and it could not be brought back: {e}"),
        })?;
    *boot = Some(new);
    Ok(CaseRun {
        verdict: Verdict::Crash,
        reason: format!("{what}; power-cycled through its BMC"),
        metrics: Vec::new(),
        evidence,
        baseline: None,
        warning: false,
        infrastructure: false,
    })
}

/// What one attempt of a case came to.
struct CaseRun {
    verdict: Verdict,
    reason: String,
    metrics: Vec<certlab_reports::Metric>,
    evidence: Vec<certlab_reports::Evidence>,
    baseline: Option<certlab_reports::BaselineComparison>,
    /// A failure that is only a warning ([`certlab_suites::CaseOutcome::warning`]).
    warning: bool,
    /// The `error` came from the lab, not the product
    /// ([`certlab_suites::CaseError::is_infrastructure`]).
    infrastructure: bool,
}

impl CaseRun {
    fn of(verdict: Verdict, reason: String) -> CaseRun {
        CaseRun {
            verdict,
            reason,
            metrics: Vec::new(),
            evidence: Vec::new(),
            baseline: None,
            warning: false,
            infrastructure: false,
        }
    }
}

/// A case and what its check runs with.
struct CaseAt<'a> {
    case: &'a certlab_suites::CaseSpec,
    target: Arc<dyn Target>,
    profile: Arc<HardwareProfile>,
    inventory: Arc<Inventory>,
    sink: Arc<EvidenceDir>,
    /// The BMC's event log over the run, for a case that judges it
    /// (`Check::needs_bmc_sel`): read through the BMC only the orchestrator holds.
    sel: Option<Result<Vec<certlab_lab::bmc::SelEntry>, String>>,
}

/// Runs one phase of a case's check on a blocking thread, bounded by the
/// case's timeout plus a grace period. The value and the phase's evidence,
/// or the case's `error` (infrastructure errors, panics and overruns).
async fn in_case<T: Send + 'static>(
    at: &CaseAt<'_>,
    phase: impl FnOnce(&dyn Check, &CaseCtx<'_>) -> Result<T, CaseError> + Send + 'static,
) -> Result<(T, Vec<certlab_reports::Evidence>), CaseRun> {
    let case = at.case;
    let Some(check) = checks::lookup(&case.check) else {
        return Err(CaseRun::of(
            Verdict::Error,
            format!("no check named `{}`", case.check),
        ));
    };
    let params = case.params.clone();
    let baseline = case.baseline.clone();
    let timeout = case.timeout;
    let sel = at.sel.clone();
    // Only a case run through a SutControl gets here with `reboots`
    // (without one it is skipped), so the BMC is there to recover it.
    let crash_window = case.may_crash && case.reboots && case.reboot == RebootKind::Crash;
    let (target, profile, inventory, sink) = (
        at.target.clone(),
        at.profile.clone(),
        at.inventory.clone(),
        at.sink.clone(),
    );
    let task = tokio::task::spawn_blocking(move || {
        let ctx = CaseCtx::new(
            target.as_ref(),
            profile.as_ref(),
            inventory.as_ref(),
            &params,
            sink.as_ref(),
            timeout,
        )
        .with_baseline(baseline.as_ref())
        .with_crash_window(crash_window);
        let ctx = match sel {
            Some(sel) => ctx.with_bmc_sel(sel),
            None => ctx,
        };
        let outcome = ctx.params_checked(phase(check, &ctx));
        (outcome, ctx.take_evidence())
    });
    match tokio::time::timeout(timeout + CASE_GRACE, task).await {
        Ok(Ok((Ok(v), evidence))) => Ok((v, evidence)),
        Ok(Ok((Err(e), evidence))) => Err(CaseRun {
            verdict: Verdict::Error,
            reason: e.to_string(),
            metrics: Vec::new(),
            evidence,
            baseline: None,
            warning: false,
            infrastructure: e.is_infrastructure(),
        }),
        Ok(Err(join)) => Err(CaseRun::of(
            Verdict::Error,
            format!("the check panicked: {join}"),
        )),
        Err(_) => Err(CaseRun::of(
            Verdict::Error,
            format!(
                "the case ran past its {} s timeout and was abandoned",
                timeout.as_secs()
            ),
        )),
    }
}

impl CaseRun {
    fn outcome(o: CaseOutcome, evidence: Vec<certlab_reports::Evidence>) -> CaseRun {
        CaseRun {
            verdict: o.verdict,
            reason: o.reason,
            metrics: o.metrics,
            evidence,
            baseline: o.baseline,
            warning: o.warning,
            infrastructure: false,
        }
    }

    /// This run with `earlier` evidence (of a previous phase) before its own.
    fn after_evidence(mut self, mut earlier: Vec<certlab_reports::Evidence>) -> CaseRun {
        earlier.append(&mut self.evidence);
        self.evidence = earlier;
        self
    }
}

/// Runs one case's check. Infrastructure errors, panics and overruns
/// become `error`.
async fn run_case(at: &CaseAt<'_>) -> CaseRun {
    let requires = at.case.requires.clone();
    match in_case(at, move |check, ctx| {
        certlab_suites::run_checked(check, ctx, &requires)
    })
    .await
    {
        Ok((o, evidence)) => CaseRun::outcome(o, evidence),
        Err(run) => run,
    }
}

/// A case that declares `reboots = true`: the check's `before`, the reboot
/// its `reboot` names (the OS's, a power cycle through the BMC, or the
/// check's own crash trigger — a crash window: the machine is expected to
/// go and to come back by itself), then its `after` on the new boot, told
/// how the machine came back and what the BMC logged meanwhile (kept as
/// `bmc` evidence). A machine that does not come back from an OS reboot or
/// a power cycle is a crash; one that does not come back from a crash by
/// itself is power-cycled and the check is told so.
///
/// The `before` snapshot (with its boot id, SEL position and evidence) is
/// stored with the run before the machine is taken down. An attempt that
/// finds one — its orchestrator died between `before` and `after` — does
/// not take a new one: when the machine is on another boot already, the
/// reboot happened and `after` runs against the stored snapshot; on the
/// same boot, the reboot is done now; not answering, it is waited for (and
/// brought back through the BMC) as after a crash.
async fn run_rebooting(
    at: &CaseAt<'_>,
    index: usize,
    sut: &dyn SutControl,
    boot: &mut Option<String>,
    events: &mut Stream<'_>,
) -> Result<CaseRun, RunError> {
    let case = at.case;
    let stored = events.store.case_snapshot(&events.run_id, &case.id).await?;
    let resumed = stored.is_some();
    let (old, mark, snapshot, mut evidence) = match stored {
        Some(s) => (
            s.boot_id,
            s.sel_mark.map(certlab_lab::bmc::SelCursor),
            s.snapshot,
            s.evidence,
        ),
        None => {
            let mark = sut.sel_mark().await;
            let old = boot.clone().unwrap_or_default();
            let requires = case.requires.clone();
            match in_case(at, move |check, ctx| {
                certlab_suites::before_checked(check, ctx, &requires)
            })
            .await
            {
                Err(run) => return Ok(run),
                Ok((Before::Stop(o), ev)) => return Ok(CaseRun::outcome(o, ev)),
                Ok((Before::Go(snapshot), ev)) => {
                    let kept = crate::store::CaseSnapshot {
                        case_id: case.id.clone(),
                        boot_id: old.clone(),
                        sel_mark: mark.as_ref().map(|m| m.0.clone()),
                        snapshot,
                        evidence: ev,
                        created: OffsetDateTime::now_utc(),
                    };
                    events
                        .store
                        .save_case_snapshot(&events.run_id, &kept)
                        .await?;
                    (old, mark, kept.snapshot, kept.evidence)
                }
            }
        }
    };
    // An earlier attempt's snapshot: where is the machine now?
    let came_back: Option<Result<(String, Option<String>), String>> = if resumed {
        match probe_boot(sut).await {
            Ok(now) if now != old => Some(Ok((now, None))),
            Ok(_) => None,
            Err(_) => Some(Ok(wait_or_recover(at, sut, &old, &mut evidence).await?)),
        }
    } else {
        None
    };
    let came_back = match came_back {
        Some(back) => back,
        None => match case.reboot {
            RebootKind::Os => sut.reboot(old.clone()).await.map(|n| (n, None)),
            RebootKind::PowerCycle => sut.power_cycle(old.clone()).await.map(|n| (n, None)),
            RebootKind::Crash => {
                let snap = snapshot.clone();
                match in_case(at, move |check, ctx| check.trigger(ctx, &snap)).await {
                    Err(run) => return Ok(run.after_evidence(evidence)),
                    Ok(((), ev)) => evidence.extend(ev),
                }
                Ok(wait_or_recover(at, sut, &old, &mut evidence).await?)
            }
        },
    };
    let (new, recovered) = match came_back {
        Ok(back) => back,
        Err(e) => {
            let what = format!(
                "the machine did not come back from its declared {}: {e}",
                match case.reboot {
                    RebootKind::PowerCycle => "power cycle",
                    _ => "reboot",
                }
            );
            let run = crashed(sut, boot, &at.sink, what, &case.id).await?;
            return Ok(run.after_evidence(evidence));
        }
    };
    *boot = Some(new.clone());
    let ev = RunEvent::Rebooted {
        index,
        id: case.id.clone(),
        boot_id: new.clone(),
        declared: true,
    };
    events.send(ev).await?;
    let sel = sut.sel_after(mark).await;
    if let Some(Ok(entries)) = &sel {
        match at.sink.put(crate::sut::sel_text(entries).as_bytes()) {
            Ok(content) => evidence.push(certlab_reports::Evidence::Bmc {
                source: "sel".to_string(),
                content,
            }),
            Err(e) => tracing::warn!(case = %case.id, error = %e, "SEL evidence not stored"),
        }
    }
    let rebooted = Rebooted {
        kind: case.reboot,
        old_boot: old,
        new_boot: new,
        recovered,
        sel,
    };
    Ok(
        match in_case(at, move |check, ctx| check.after(ctx, &snapshot, &rebooted)).await {
            Ok((o, ev)) => CaseRun::outcome(o, ev).after_evidence(evidence),
            Err(run) => run.after_evidence(evidence),
        },
    )
}

/// Inside a crash window: waits up to the case's timeout for the machine
/// to come back by itself on a boot other than `old`; when it does not,
/// keeps what the console and BMC hold as evidence and power-cycles it
/// through the BMC. The new boot id, and why it had to be recovered.
async fn wait_or_recover(
    at: &CaseAt<'_>,
    sut: &dyn SutControl,
    old: &str,
    evidence: &mut Vec<certlab_reports::Evidence>,
) -> Result<(String, Option<String>), RunError> {
    let case = at.case;
    match sut.wait_boot(old.to_string(), case.timeout).await {
        Ok(new) => Ok((new, None)),
        Err(why) => {
            // Not back by itself: what the console and BMC hold is kept,
            // and the machine brought back.
            for (source, bytes) in sut.crash_evidence().await {
                match at.sink.put(&bytes) {
                    Ok(content) => {
                        evidence.push(certlab_reports::Evidence::Bmc { source, content })
                    }
                    Err(e) => {
                        tracing::warn!(case = %case.id, error = %e, "crash evidence not stored")
                    }
                }
            }
            let new = sut.recover(Some(old.to_string())).await.map_err(|e| {
                RunError::Infrastructure {
                    case: case.id.clone(),
                    attempts: 1,
                    error: format!(
                        "the machine did not come back after its crash ({why}), and could not be brought back: {e}"
                    ),
                }
            })?;
            Ok((new, Some(why)))
        }
    }
}

/// Writes results.json, junit.xml, report.html and the signed bundle.
pub fn publish(record: &RunRecord, out: &Path, signer: &SigningKey) -> Result<Outputs, RunError> {
    let results = out.join("results.json");
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| RunError::Internal(format!("serializing results: {e}")))?;
    write(&results, &json)?;
    let junit = out.join("junit.xml");
    write(&junit, certlab_reports::junit_xml(record).as_bytes())?;
    let html = out.join("report.html");
    write(&html, certlab_reports::report_html(record)?.as_bytes())?;
    let bundle = certlab_reports::write_bundle(out, signer, record.finished)?;
    Ok(Outputs {
        results,
        junit,
        html,
        bundle,
        key_id: certlab_reports::key_id(&signer.verifying_key()),
    })
}
