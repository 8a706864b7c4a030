//! The lab's one retry policy for BMC calls, and the record of every call.
//!
//! [`Guarded`] wraps any [`Bmc`] driver. For each operation it
//! - waits for the minimum gap since the previous command to the same BMC
//!   (many BMCs drop or reject commands sent back to back),
//! - refuses at once while the BMC's circuit breaker is open,
//! - makes an attempt bounded by the per-attempt timeout,
//! - retries retryable errors with jittered exponential backoff until the
//!   total deadline, never retrying fatal ones (and never retrying a timed
//!   out non-idempotent power action, which may have been applied),
//! - writes a [`CallRecord`] (operation, latency, outcome) for every attempt
//!   to its [`CallSink`] and to `tracing`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::{
    Bmc, BmcError, BmcFuture, BootOverride, ConsoleCapture, ErrorClass, Identity, LogService,
    PowerAction, PowerState, SelCursor, SelPage, Sensor,
};

/// How BMC calls are retried. One policy for IPMI and Redfish.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Total time one operation may take, all attempts and waits included.
    pub deadline: Duration,
    /// Bound on one attempt.
    pub attempt_timeout: Duration,
    /// Backoff before the first retry.
    pub initial_backoff: Duration,
    /// Backoff never grows past this.
    pub max_backoff: Duration,
    /// Backoff growth per retry.
    pub multiplier: f64,
    /// Each backoff is drawn uniformly from `[b * (1 - jitter), b]`.
    pub jitter: f64,
    /// Minimum time between the starts of two commands to the same BMC.
    pub min_gap: Duration,
    /// Consecutive failed attempts that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before one trial call is let through.
    pub breaker_cooldown: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(20),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            multiplier: 2.0,
            jitter: 0.5,
            min_gap: Duration::from_millis(100),
            breaker_threshold: 8,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (1-based), before jitter.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .multiplier
            .powi(i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX));
        let secs = (self.initial_backoff.as_secs_f64() * exp).min(self.max_backoff.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// `backoff(retry)` with jitter drawn from `unit` (a number in `[0, 1)`).
    pub fn jittered(&self, retry: u32, unit: f64) -> Duration {
        let b = self.backoff(retry).as_secs_f64();
        let j = self.jitter.clamp(0.0, 1.0);
        Duration::from_secs_f64(b * (1.0 - j * unit.clamp(0.0, 1.0)))
    }
}

/// What one attempt of a BMC call came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CallOutcome {
    Ok,
    Failed {
        class: ErrorClass,
        /// [`BmcError::kind`].
        kind: String,
        message: String,
    },
    /// Refused locally: the circuit breaker was open.
    CircuitOpen,
}

/// One BMC call (one attempt), for judging a BMC's health later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    pub bmc: String,
    /// "power_status", "power:cycle", "sel_since", …
    pub operation: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started: time::OffsetDateTime,
    pub latency: Duration,
    #[serde(flatten)]
    pub outcome: CallOutcome,
    /// A warning about the BMC's configuration (password sent in clear,
    /// an unprotected password file), on the first call of a process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Where call records go (the lab store, a file, memory in tests).
pub trait CallSink: Send + Sync {
    fn record(&self, record: CallRecord);
}

/// A [`CallSink`] that keeps records in memory.
#[derive(Debug, Default)]
pub struct MemoryLog {
    records: Mutex<Vec<CallRecord>>,
}

impl MemoryLog {
    pub fn new() -> Arc<MemoryLog> {
        Arc::new(MemoryLog::default())
    }

    /// A copy of every record so far.
    pub fn records(&self) -> Vec<CallRecord> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl CallSink for MemoryLog {
    fn record(&self, record: CallRecord) {
        if let Ok(mut r) = self.records.lock() {
            r.push(record);
        }
    }
}

/// A sink that drops records (they still go to `tracing`).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLog;

impl CallSink for NoLog {
    fn record(&self, _record: CallRecord) {}
}

/// Per-BMC state shared by every [`Guarded`] handle to the same BMC: the
/// time of the last command and the circuit breaker.
#[derive(Debug, Default)]
pub struct BmcGuardState {
    inner: Mutex<GuardInner>,
}

#[derive(Debug, Default)]
struct GuardInner {
    next_slot: Option<Instant>,
    consecutive_failures: u32,
    open_until: Option<Instant>,
    rng: u64,
}

impl BmcGuardState {
    pub fn new() -> Arc<BmcGuardState> {
        Arc::new(BmcGuardState::default())
    }

    /// Reserves the next start time at least `gap` after the previous one.
    fn reserve_slot(&self, gap: Duration) -> Instant {
        let now = Instant::now();
        let Ok(mut g) = self.inner.lock() else {
            return now;
        };
        let slot = match g.next_slot {
            Some(prev) if prev + gap > now => prev + gap,
            _ => now,
        };
        g.next_slot = Some(slot);
        slot
    }

    /// `Some(remaining)` while the breaker is open.
    fn open_for(&self) -> Option<(u32, Duration)> {
        let g = self.inner.lock().ok()?;
        let until = g.open_until?;
        let now = Instant::now();
        (until > now).then(|| (g.consecutive_failures, until - now))
    }

    fn on_success(&self) {
        if let Ok(mut g) = self.inner.lock() {
            g.consecutive_failures = 0;
            g.open_until = None;
        }
    }

    fn on_failure(&self, policy: &RetryPolicy) {
        if let Ok(mut g) = self.inner.lock() {
            g.consecutive_failures = g.consecutive_failures.saturating_add(1);
            if g.consecutive_failures >= policy.breaker_threshold {
                g.open_until = Some(Instant::now() + policy.breaker_cooldown);
            }
        }
    }

    /// A number in `[0, 1)` for jitter (xorshift; seeded from the clock).
    fn unit(&self) -> f64 {
        let Ok(mut g) = self.inner.lock() else {
            return 0.5;
        };
        if g.rng == 0 {
            let seed = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0x9E37_79B9_7F4A_7C15);
            g.rng = seed | 1;
        }
        let mut x = g.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        g.rng = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether the breaker is open now.
    pub fn is_open(&self) -> bool {
        self.open_for().is_some()
    }
}

/// A [`Bmc`] with the lab's retry policy, gap, breaker and call log.
pub struct Guarded<B> {
    inner: B,
    policy: RetryPolicy,
    state: Arc<BmcGuardState>,
    sink: Arc<dyn CallSink>,
    /// Warnings still to attach to the next call record.
    note: Mutex<Option<String>>,
}

/// Says each warning once per process and BMC on stderr (through
/// `tracing`), and returns those said now.
fn warn_once(bmc: &str, warnings: &[String]) -> Vec<String> {
    static SAID: std::sync::OnceLock<Mutex<std::collections::HashSet<(String, String)>>> =
        std::sync::OnceLock::new();
    let said = SAID.get_or_init(Mutex::default);
    let Ok(mut said) = said.lock() else {
        return Vec::new();
    };
    let mut fresh = Vec::new();
    for w in warnings {
        if said.insert((bmc.to_string(), w.clone())) {
            tracing::warn!("{bmc}: {w}");
            fresh.push(w.clone());
        }
    }
    fresh
}

impl<B: Bmc> Guarded<B> {
    /// Warns about the BMC's configuration ([`crate::inventory::BmcEndpoint::exposure_warnings`]):
    /// each warning once per process on stderr, and in the note of the
    /// next call record.
    pub fn with_warnings(self, warnings: &[String]) -> Guarded<B> {
        let fresh = warn_once(self.inner.name(), warnings);
        if !fresh.is_empty() {
            if let Ok(mut n) = self.note.lock() {
                *n = Some(fresh.join("; "));
            }
        }
        self
    }

    /// A guard with its own per-BMC state.
    pub fn new(inner: B, policy: RetryPolicy, sink: Arc<dyn CallSink>) -> Guarded<B> {
        Guarded::with_state(inner, policy, BmcGuardState::new(), sink)
    }

    /// A guard sharing `state` (gap and breaker) with other handles to the
    /// same BMC.
    pub fn with_state(
        inner: B,
        policy: RetryPolicy,
        state: Arc<BmcGuardState>,
        sink: Arc<dyn CallSink>,
    ) -> Guarded<B> {
        Guarded {
            inner,
            policy,
            state,
            sink,
            note: Mutex::new(None),
        }
    }

    pub fn inner(&self) -> &B {
        &self.inner
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    pub fn state(&self) -> &Arc<BmcGuardState> {
        &self.state
    }

    /// Runs `attempt` under the policy. `retry_timeouts`: whether a timed
    /// out attempt may be repeated (false for non-idempotent commands).
    async fn run<'a, T, F>(
        &'a self,
        operation: &str,
        retry_timeouts: bool,
        attempt: F,
    ) -> Result<T, BmcError>
    where
        F: Fn() -> BmcFuture<'a, T>,
    {
        let started = Instant::now();
        let deadline = started + self.policy.deadline;
        let bmc = self.inner.name().to_string();
        let mut n: u32 = 0;
        loop {
            n += 1;
            if let Some((failures, retry_in)) = self.state.open_for() {
                self.log(&bmc, operation, n, Duration::ZERO, CallOutcome::CircuitOpen);
                return Err(BmcError::CircuitOpen {
                    bmc,
                    failures,
                    retry_in,
                });
            }
            let slot = self.state.reserve_slot(self.policy.min_gap);
            if slot > Instant::now() {
                tokio::time::sleep_until(tokio::time::Instant::from_std(slot)).await;
            }
            let now = Instant::now();
            let budget = self
                .policy
                .attempt_timeout
                .min(deadline.saturating_duration_since(now))
                .max(Duration::from_millis(1));
            let wall = time::OffsetDateTime::now_utc();
            let t0 = Instant::now();
            let result = match tokio::time::timeout(budget, attempt()).await {
                Ok(r) => r,
                Err(_) => Err(BmcError::Timeout {
                    bmc: bmc.clone(),
                    what: format!("{operation}: no answer"),
                    after: budget,
                }),
            };
            let latency = t0.elapsed();
            let err = match result {
                Ok(v) => {
                    self.state.on_success();
                    self.log_at(&bmc, operation, n, wall, latency, CallOutcome::Ok);
                    return Ok(v);
                }
                Err(e) => e,
            };
            self.log_at(
                &bmc,
                operation,
                n,
                wall,
                latency,
                CallOutcome::Failed {
                    class: err.class(),
                    kind: err.kind().to_string(),
                    message: err.to_string(),
                },
            );
            let retryable =
                err.is_retryable() && (retry_timeouts || !matches!(err, BmcError::Timeout { .. }));
            if err.is_retryable() {
                self.state.on_failure(&self.policy);
            }
            if !retryable {
                return Err(err);
            }
            let wait = self.policy.jittered(n, self.state.unit());
            let now = Instant::now();
            if now + wait >= deadline {
                return Err(BmcError::GaveUp {
                    bmc,
                    operation: operation.to_string(),
                    attempts: n,
                    elapsed: started.elapsed(),
                    last: Box::new(err),
                });
            }
            tracing::debug!(bmc = %bmc, operation, attempt = n, ?wait, error = %err, "retrying bmc call");
            tokio::time::sleep(wait).await;
        }
    }

    fn log(
        &self,
        bmc: &str,
        operation: &str,
        attempt: u32,
        latency: Duration,
        outcome: CallOutcome,
    ) {
        self.log_at(
            bmc,
            operation,
            attempt,
            time::OffsetDateTime::now_utc(),
            latency,
            outcome,
        );
    }

    fn log_at(
        &self,
        bmc: &str,
        operation: &str,
        attempt: u32,
        started: time::OffsetDateTime,
        latency: Duration,
        outcome: CallOutcome,
    ) {
        match &outcome {
            CallOutcome::Ok => {
                tracing::debug!(bmc, operation, attempt, ?latency, "bmc call ok")
            }
            CallOutcome::Failed { kind, message, .. } => {
                tracing::info!(bmc, operation, attempt, ?latency, kind = %kind, error = %message, "bmc call failed")
            }
            CallOutcome::CircuitOpen => {
                tracing::info!(bmc, operation, attempt, "bmc call refused: circuit open")
            }
        }
        let note = self.note.lock().ok().and_then(|mut n| n.take());
        self.sink.record(CallRecord {
            bmc: bmc.to_string(),
            operation: operation.to_string(),
            attempt,
            started,
            latency,
            outcome,
            note,
        });
    }
}

impl<B: Bmc> Bmc for Guarded<B> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn power_status(&self) -> BmcFuture<'_, PowerState> {
        Box::pin(self.run("power_status", true, || self.inner.power_status()))
    }

    fn power(&self, action: PowerAction) -> BmcFuture<'_, ()> {
        Box::pin(async move {
            let op = format!("power:{action}");
            self.run(&op, action.is_idempotent(), || self.inner.power(action))
                .await
        })
    }

    fn set_boot(&self, boot: BootOverride) -> BmcFuture<'_, ()> {
        Box::pin(self.run("set_boot", true, move || self.inner.set_boot(boot)))
    }

    fn sel_since(&self, cursor: Option<SelCursor>) -> BmcFuture<'_, SelPage> {
        Box::pin(async move {
            self.run("sel_since", true, || self.inner.sel_since(cursor.clone()))
                .await
        })
    }

    fn sel_clear(&self) -> BmcFuture<'_, ()> {
        Box::pin(self.run("sel_clear", true, || self.inner.sel_clear()))
    }

    fn log_services(&self) -> BmcFuture<'_, Vec<LogService>> {
        Box::pin(self.run("log_services", true, || self.inner.log_services()))
    }

    fn log_since(&self, key: &str, cursor: Option<SelCursor>) -> BmcFuture<'_, SelPage> {
        let key = key.to_string();
        Box::pin(async move {
            self.run("log_since", true, || {
                self.inner.log_since(&key, cursor.clone())
            })
            .await
        })
    }

    fn sensors(&self) -> BmcFuture<'_, Vec<Sensor>> {
        Box::pin(self.run("sensors", true, || self.inner.sensors()))
    }

    fn identity(&self) -> BmcFuture<'_, Identity> {
        Box::pin(self.run("identity", true, || self.inner.identity()))
    }

    /// Not retried: a capture runs for its whole duration; the attempt is
    /// still recorded.
    fn console(&self, out: PathBuf, duration: Option<Duration>) -> BmcFuture<'_, ConsoleCapture> {
        Box::pin(async move {
            let bmc = self.inner.name().to_string();
            let wall = time::OffsetDateTime::now_utc();
            let t0 = Instant::now();
            let r = self.inner.console(out, duration).await;
            let outcome = match &r {
                Ok(_) => CallOutcome::Ok,
                Err(e) => CallOutcome::Failed {
                    class: e.class(),
                    kind: e.kind().to_string(),
                    message: e.to_string(),
                },
            };
            self.log_at(&bmc, "console", 1, wall, t0.elapsed(), outcome);
            r
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            multiplier: 2.0,
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(30), Duration::from_millis(350));
        let j = p.jittered(2, 0.999);
        assert!(j >= Duration::from_millis(100) && j <= Duration::from_millis(200));
    }

    #[test]
    fn breaker_opens_after_threshold_and_success_closes_it() {
        let p = RetryPolicy {
            breaker_threshold: 2,
            ..RetryPolicy::default()
        };
        let s = BmcGuardState::default();
        s.on_failure(&p);
        assert!(!s.is_open());
        s.on_failure(&p);
        assert!(s.is_open());
        s.on_success();
        assert!(!s.is_open());
    }

    #[test]
    fn slots_keep_the_minimum_gap() {
        let s = BmcGuardState::default();
        let a = s.reserve_slot(Duration::from_millis(50));
        let b = s.reserve_slot(Duration::from_millis(50));
        assert!(b >= a + Duration::from_millis(50));
    }
}
