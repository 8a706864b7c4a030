//! The lab store against real databases: SQLite files in a temporary directory,
//! and PostgreSQL.
//!
//! PostgreSQL is expected at `postgres://postgres@127.0.0.1:5432/postgres` (trust
//! auth; `CERTLAB_TEST_PG_URL` overrides it, as scripts/test sets it). Each
//! PostgreSQL test creates its own database through that admin database and drops
//! it at the end, also when the test fails. An unreachable server fails the tests.

use std::future::Future;

use anyhow::{ensure, Context, Result};
use certlab_harness::{redact_url, Backend, NewRun, RunState, Store, StoreError};
use certlab_lab::bmc::{CallOutcome, CallRecord, ErrorClass};
use certlab_reports::{
    ArtifactRef, Better, CaseResult, Evidence, HardwareSummary, Host, Metric, Outcome, PlanRef,
    RunRecord, Summary, Tool, Verdict, SCHEMA_VERSION,
};
use serde_json::json;
use sqlx::{Connection, Executor, Row};
use time::macros::{datetime, offset};
use time::{Duration, OffsetDateTime};

const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

// ---- fixtures -------------------------------------------------------------

/// A fixed instant plus `secs`, with nanoseconds, so precision loss shows.
fn at(secs: i64) -> OffsetDateTime {
    datetime!(2024-05-01 12:00:00.123456789 UTC) + Duration::seconds(secs)
}

fn artifact(byte: &str, size: u64) -> ArtifactRef {
    ArtifactRef {
        sha256: byte.repeat(32),
        size,
    }
}

/// A case with a metric and evidence of every kind (skips have only a missing file).
fn case(id: &str, verdict: Verdict, secs: i64) -> CaseResult {
    let skip = verdict == Verdict::Skip;
    let metrics = match skip {
        true => vec![],
        false => vec![Metric {
            name: "throughput".into(),
            value: 12.25 + secs as f64,
            unit: "GB/s".into(),
            better: Better::Higher,
        }],
    };
    let mut evidence = vec![Evidence::Missing {
        path: "/sys/class/edac".into(),
        error: "No such file or directory".into(),
    }];
    if !skip {
        evidence.push(Evidence::Command {
            cmd: format!("run-{id} --json"),
            exit: Some(i32::from(verdict == Verdict::Fail)),
            timed_out: false,
            duration_ms: 1_400,
            stdout: artifact("ab", 4_096),
            stderr: artifact("cd", 0),
        });
        evidence.push(Evidence::File {
            path: "/proc/cpuinfo".into(),
            content: artifact("ef", 9_000),
        });
    }
    CaseResult {
        id: id.into(),
        title: format!("Case {id}"),
        blocker: verdict == Verdict::Fail,
        verdict,
        reason: format!("{id}: {verdict} — with “unicode” and 'quotes'"),
        // a non-UTC offset: stored as UTC, equal as an instant
        started: at(secs).to_offset(offset!(+8)),
        duration_ms: 1_500 + secs.unsigned_abs(),
        metrics,
        evidence,
        baseline: None,
    }
}

fn new_run(id: &str, started: OffsetDateTime) -> NewRun {
    NewRun {
        id: id.into(),
        plan_id: "server-cert".into(),
        plan_version: "1.2.0".into(),
        plan_digest: "12".repeat(32),
        target: "kunpeng-01".into(),
        hostname: "kp01.lab".into(),
        kernel: "6.6.0-28.0.0.34.oe2403.aarch64".into(),
        started,
        out_dir: Some("/var/lib/certlab/runs/x".into()),
    }
}

fn record(run: &NewRun, cases: &[CaseResult], finished: OffsetDateTime) -> RunRecord {
    RunRecord {
        schema_version: SCHEMA_VERSION,
        run_id: run.id.clone(),
        tool: Tool {
            name: "certlab".into(),
            version: "0.1.0".into(),
        },
        plan: PlanRef {
            id: run.plan_id.clone(),
            version: run.plan_version.clone(),
            digest: run.plan_digest.clone(),
        },
        host: Host {
            hostname: run.hostname.clone(),
            kernel: run.kernel.clone(),
            arch: "aarch64".into(),
            ..Host::default()
        },
        profile: HardwareSummary::default(),
        started: run.started,
        finished,
        inventory: vec![],
        cases: cases.to_vec(),
        summary: Summary::of(cases),
    }
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---- scenarios, run on both backends --------------------------------------

async fn round_trip(store: &Store) -> Result<()> {
    let run = new_run(&uuid(), at(0));
    store.create_run(&run).await?;
    // A failed case that is not a blocker is counted as a warning.
    let warning = CaseResult {
        blocker: false,
        ..case("time.clock", Verdict::Fail, 7)
    };
    let cases = [
        case("cpu.identify", Verdict::Pass, 1),
        case("ras.edac", Verdict::Fail, 5),
        warning,
        case("gpu.nvlink", Verdict::Skip, 9),
    ];
    for (seq, c) in (0u32..).zip(&cases) {
        store.record_case(&run.id, seq, c).await?;
    }
    let events = [
        ("run_started", json!({ "plan": "server-cert" })),
        (
            "case_finished",
            json!({ "case": "cpu.identify", "verdict": "pass", "n": [1, 2.5, null] }),
        ),
        ("run_finished", json!({})),
    ];
    for (seq, (kind, payload)) in (0u64..).zip(&events) {
        store
            .append_event(&run.id, seq, at(seq as i64), kind, payload)
            .await?;
    }

    let running = store.get_run(&run.id).await?.context("running run")?;
    assert_eq!(running.run.state, RunState::Running);
    assert_eq!(running.run.outcome, None);
    assert_eq!(
        (
            running.run.pass,
            running.run.fail,
            running.run.warning,
            running.run.skip
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(running.cases, cases);
    assert_eq!(running.record, None);

    // a case recorded twice is refused and counted once
    let dup = store.record_case(&run.id, 7, &cases[0]).await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");

    let rec = record(&run, &cases, at(60));
    store.finish_run(&run.id, &rec).await?;

    let listed = store.list_runs(10).await?;
    assert_eq!(listed.len(), 1);
    let row = &listed[0];
    assert_eq!(row.id, run.id);
    assert_eq!(row.state, RunState::Finished);
    assert_eq!(row.outcome, Some(Outcome::Fail));
    let counts = (
        row.pass,
        row.fail,
        row.warning,
        row.skip,
        row.error,
        row.crash,
    );
    assert_eq!(counts, (1, 1, 1, 1, 0, 0));
    assert_eq!(row.started, run.started);
    assert_eq!(row.finished, Some(at(60)));
    assert_eq!(
        (&row.plan_id, &row.plan_version, &row.plan_digest),
        (&run.plan_id, &run.plan_version, &run.plan_digest)
    );
    assert_eq!(
        (&row.target, &row.hostname, &row.kernel),
        (&run.target, &run.hostname, &run.kernel)
    );
    assert_eq!(row.out_dir, run.out_dir);

    let detail = store
        .get_run(&run.id[..8])
        .await?
        .context("run by prefix")?;
    assert_eq!(&detail.run, row);
    assert_eq!(detail.cases, cases);
    assert_eq!(detail.record, Some(rec));

    let stored = store.events(&run.id).await?;
    assert_eq!(stored.len(), 3);
    for ((seq, (kind, payload)), ev) in (0u64..).zip(&events).zip(&stored) {
        assert_eq!(
            (ev.seq, ev.kind.as_str(), &ev.payload),
            (seq, *kind, payload)
        );
        assert_eq!(ev.at, at(seq as i64));
    }
    let dup = store
        .append_event(&run.id, 1, at(0), "again", &json!(null))
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");

    // a finished run takes no more cases and cannot finish twice
    let late = store
        .record_case(&run.id, 3, &case("late", Verdict::Pass, 70))
        .await;
    assert!(
        matches!(
            late,
            Err(StoreError::State {
                state: RunState::Finished,
                ..
            })
        ),
        "{late:?}"
    );
    let again = store
        .finish_run(&run.id, &record(&run, &cases, at(61)))
        .await;
    assert!(matches!(again, Err(StoreError::State { .. })), "{again:?}");

    // unknown runs
    let ghost = store.record_case("ghost", 0, &cases[0]).await;
    assert!(
        matches!(ghost, Err(StoreError::NotFound { .. })),
        "{ghost:?}"
    );
    let ghost = store.append_event("ghost", 0, at(0), "x", &json!(1)).await;
    assert!(
        matches!(ghost, Err(StoreError::NotFound { .. })),
        "{ghost:?}"
    );
    assert!(store.get_run("ghost").await?.is_none());
    Ok(())
}

async fn interrupted(store: &Store) -> Result<()> {
    let run = new_run(&uuid(), at(0));
    store.create_run(&run).await?;
    let cases = [case("a", Verdict::Pass, 1), case("b", Verdict::Error, 2)];
    store.record_case(&run.id, 0, &cases[0]).await?;
    store.record_case(&run.id, 1, &cases[1]).await?;
    store
        .mark_interrupted(&run.id, at(30), "orchestrator restarted")
        .await?;

    let detail = store.get_run(&run.id).await?.context("interrupted run")?;
    assert_eq!(detail.run.state, RunState::Interrupted);
    assert_eq!(detail.run.finished, Some(at(30)));
    assert_eq!(
        detail.run.interrupt_reason.as_deref(),
        Some("orchestrator restarted")
    );
    assert_eq!((detail.run.pass, detail.run.error), (1, 1));
    assert_eq!(detail.cases, cases);
    assert_eq!(detail.record, None);

    let refused = store
        .record_case(&run.id, 2, &case("c", Verdict::Pass, 3))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::State {
                state: RunState::Interrupted,
                ..
            })
        ),
        "{refused:?}"
    );
    let twice = store.mark_interrupted(&run.id, at(31), "again").await;
    assert!(matches!(twice, Err(StoreError::State { .. })), "{twice:?}");

    // resume, record the rest, finish
    store.resume_run(&run.id).await?;
    let c = case("c", Verdict::Crash, 40);
    store.record_case(&run.id, 2, &c).await?;
    let all = [cases[0].clone(), cases[1].clone(), c];
    store
        .finish_run(&run.id, &record(&run, &all, at(50)))
        .await?;
    let done = store.get_run(&run.id).await?.context("finished run")?;
    assert_eq!(done.run.state, RunState::Finished);
    assert_eq!(done.run.interrupt_reason, None);
    assert_eq!((done.run.pass, done.run.error, done.run.crash), (1, 1, 1));
    assert_eq!(done.cases, all);
    let missing = store.mark_interrupted("ghost", at(0), "x").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
    Ok(())
}

async fn prefixes_and_order(store: &Store) -> Result<()> {
    // 12:00:00.5 is later than 12:00:00 although "00.5Z" < "00Z" as plain RFC 3339 text
    let whole = datetime!(2024-05-01 12:00:00 UTC);
    for (id, started) in [
        ("aaaa1111-0000", whole),
        ("aaaa2222-0000", whole + Duration::milliseconds(500)),
        ("ab_x-0000", whole - Duration::hours(1)),
        ("cafe", whole + Duration::hours(2)),
        ("cafe-2", whole + Duration::hours(1)),
    ] {
        store.create_run(&new_run(id, started)).await?;
    }
    let ids =
        |runs: Vec<certlab_harness::RunRow>| runs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    let order = [
        "cafe",
        "cafe-2",
        "aaaa2222-0000",
        "aaaa1111-0000",
        "ab_x-0000",
    ];
    assert_eq!(ids(store.list_runs(10).await?), order);
    assert_eq!(ids(store.list_runs(2).await?), order[..2]);

    let amb = store.get_run("aaaa").await;
    assert!(
        matches!(amb, Err(StoreError::Ambiguous { count: 2, .. })),
        "{amb:?}"
    );
    let amb = store.get_run("a").await;
    assert!(
        matches!(amb, Err(StoreError::Ambiguous { count: 3, .. })),
        "{amb:?}"
    );
    let one = store.get_run("aaaa2").await?.context("aaaa2")?;
    assert_eq!(one.run.id, "aaaa2222-0000");
    // an exact id wins over the longer ids it prefixes
    assert_eq!(store.get_run("cafe").await?.context("cafe")?.run.id, "cafe");
    // LIKE wildcards and case are taken literally
    assert_eq!(
        store.get_run("ab_").await?.context("ab_")?.run.id,
        "ab_x-0000"
    );
    assert!(store.get_run("_").await?.is_none());
    assert!(store.get_run("%").await?.is_none());
    assert!(store.get_run("AAAA1").await?.is_none());
    assert!(store.get_run("").await?.is_none());
    Ok(())
}

async fn concurrent_cases(store: &Store) -> Result<()> {
    let run = new_run(&uuid(), at(0));
    store.create_run(&run).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24u32 {
        let (store, id) = (store.clone(), run.id.clone());
        let verdict = [Verdict::Pass, Verdict::Fail, Verdict::Skip][i as usize % 3];
        tasks.spawn(async move {
            store
                .record_case(&id, i, &case(&format!("c{i}"), verdict, 1))
                .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let detail = store.get_run(&run.id).await?.context("run")?;
    assert_eq!(
        (detail.run.pass, detail.run.fail, detail.run.skip),
        (8, 8, 8)
    );
    assert_eq!(detail.cases.len(), 24);
    let seqs: Vec<String> = detail.cases.iter().map(|c| c.id.clone()).collect();
    assert_eq!(seqs, (0..24).map(|i| format!("c{i}")).collect::<Vec<_>>());
    Ok(())
}

fn call(
    machine: &str,
    op: &str,
    attempt: u32,
    secs: i64,
    ms: u64,
    outcome: CallOutcome,
) -> CallRecord {
    CallRecord {
        bmc: machine.into(),
        operation: op.into(),
        attempt,
        // a non-UTC offset: stored as UTC, equal as an instant
        started: at(secs).to_offset(offset!(-5)),
        latency: std::time::Duration::from_millis(ms),
        outcome,
        note: None,
    }
}

fn failed(class: ErrorClass, kind: &str, message: &str) -> CallOutcome {
    CallOutcome::Failed {
        class,
        kind: kind.into(),
        message: message.into(),
    }
}

async fn bmc_calls(store: &Store) -> Result<()> {
    let empty = store.bmc_call_stats("node1", at(0)).await?;
    assert_eq!((empty.calls, empty.p50_ms, empty.p95_ms), (0, None, None));
    assert_eq!((empty.failure_streak, &empty.last_error), (0, &None));
    assert_eq!(empty.failure_rate(), None);
    assert_eq!(store.record_bmc_calls(&[]).await?, 0);

    // 20 good calls of 1..=20 ms, a timeout retried to success, then an
    // auth failure and a breaker refusal; an older call and another machine.
    let mut node1: Vec<CallRecord> = (1..=20)
        .map(|i| call("node1", "power_status", 1, i, i as u64, CallOutcome::Ok))
        .collect();
    // The first carries a configuration warning, kept as written.
    node1[0].note = Some("password sent over plain http (scheme = \"http\")".to_string());
    let timeout = "node1: power:on: no answer after 20s — “quoted” 'text'";
    node1.push(call(
        "node1",
        "power:on",
        1,
        30,
        20_000,
        failed(ErrorClass::Retryable, "timeout", timeout),
    ));
    node1.push(call("node1", "power:on", 2, 51, 40, CallOutcome::Ok));
    let auth = "node1: authentication failed: RAKP 2: unauthorized name";
    node1.push(call(
        "node1",
        "sel_since",
        1,
        60,
        3,
        failed(ErrorClass::Fatal, "auth", auth),
    ));
    node1.push(call("node1", "sensors", 1, 61, 0, CallOutcome::CircuitOpen));
    let old = call("node1", "identity", 1, -3600, 5, CallOutcome::Ok);
    let other = call(
        "node2",
        "power_status",
        1,
        10,
        99,
        failed(ErrorClass::Fatal, "auth", "x"),
    );
    let mut all = vec![other.clone(), old.clone()];
    all.extend(node1.iter().rev().cloned());
    assert_eq!(store.record_bmc_calls(&all).await?, all.len() as u64);
    // recording the same calls again adds nothing
    assert_eq!(store.record_bmc_calls(&all).await?, 0);

    // read back oldest first, only since the window's start
    assert_eq!(store.bmc_calls("node1", at(0)).await?, node1);
    let mut with_old = vec![old];
    with_old.extend(node1.iter().cloned());
    assert_eq!(store.bmc_calls("node1", at(-7200)).await?, with_old);
    assert_eq!(store.bmc_calls("node2", at(0)).await?, [other]);
    assert!(store.bmc_calls("node3", at(0)).await?.is_empty());

    let s = store.bmc_call_stats("node1", at(0)).await?;
    assert_eq!(s.machine, "node1");
    assert_eq!((s.calls, s.failures), (24, 3));
    assert_eq!(
        (s.retryable_failures, s.fatal_failures, s.circuit_open),
        (1, 1, 1)
    );
    // latencies of the 23 attempts that reached the BMC: 1..=20, 20000, 40, 3
    assert_eq!((s.p50_ms, s.p95_ms), (Some(11), Some(40)));
    assert_eq!(s.failure_streak, 2);
    assert_eq!(s.last_call, Some(at(61)));
    assert_eq!(s.failure_rate(), Some(3.0 / 24.0));
    let last = s.last_error.context("last error")?;
    assert_eq!(
        (last.operation.as_str(), last.outcome.as_str()),
        ("sensors", "circuit_open")
    );
    assert_eq!(last.at, at(61));

    // a success ends the streak; the window moves past the failures
    store
        .record_bmc_calls(&[call("node1", "power_status", 1, 70, 8, CallOutcome::Ok)])
        .await?;
    let s = store.bmc_call_stats("node1", at(60)).await?;
    assert_eq!((s.calls, s.failures, s.failure_streak), (3, 2, 0));
    let last = s.last_error.context("last error")?;
    assert_eq!(
        (last.kind.as_str(), last.message.as_str()),
        ("circuit_open", "")
    );
    let s = store.bmc_call_stats("node1", at(59)).await?;
    assert_eq!((s.calls, s.fatal_failures, s.circuit_open), (3, 1, 1));
    let s = store.bmc_call_stats("node1", at(62)).await?;
    assert_eq!(
        (s.calls, s.failures, s.p50_ms, s.p95_ms),
        (1, 0, Some(8), Some(8))
    );
    assert_eq!(s.last_error, None);
    let s = store.bmc_call_stats("node2", at(0)).await?;
    assert_eq!((s.calls, s.fatal_failures, s.failure_streak), (1, 1, 1));
    let last = s.last_error.context("node2 last error")?;
    assert_eq!((last.kind.as_str(), last.message.as_str()), ("auth", "x"));
    Ok(())
}

// ---- backends -------------------------------------------------------------

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}/nested/dir/lab.db", dir.path().display())
}

/// Creates a database of its own on the PostgreSQL server, runs `body` with its URL,
/// and drops it again whatever `body` did.
async fn with_postgres<F, Fut>(test: &str, body: F) -> Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let admin_url =
        std::env::var("CERTLAB_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
    let server = admin_url
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap_or_else(|| admin_url.clone());
    let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "{test}: PostgreSQL is not reachable at {admin_url}: {e}\n\
             run scripts/test (it starts PostgreSQL) or point CERTLAB_TEST_PG_URL at a \
             server's admin database (trust auth)"
        ),
    };
    let db = format!("certlab_t_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await?;
    let outcome = tokio::spawn(body(format!("{server}/{db}"))).await;
    let dropped = admin
        .execute(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)").as_str())
        .await;
    admin.close().await.ok();
    match outcome {
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        outcome => outcome??,
    }
    dropped.with_context(|| format!("drop test database {db}"))?;
    Ok(())
}

macro_rules! on_both_backends {
    ($($scenario:ident: $sqlite:ident, $postgres:ident;)*) => {$(
        #[tokio::test]
        async fn $sqlite() -> Result<()> {
            let dir = tempfile::tempdir()?;
            let store = Store::open(&sqlite_url(&dir)).await?;
            assert_eq!(store.backend(), Backend::Sqlite);
            $scenario(&store).await?;
            store.close().await;
            Ok(())
        }

        #[tokio::test]
        async fn $postgres() -> Result<()> {
            with_postgres(stringify!($postgres), |url| async move {
                let store = Store::open(&url).await?;
                assert_eq!(store.backend(), Backend::Postgres);
                $scenario(&store).await?;
                store.close().await;
                Ok(())
            })
            .await
        }
    )*};
}

on_both_backends! {
    round_trip: sqlite_round_trip, postgres_round_trip;
    interrupted: sqlite_interrupted_run_keeps_cases, postgres_interrupted_run_keeps_cases;
    prefixes_and_order: sqlite_prefixes_and_order, postgres_prefixes_and_order;
    concurrent_cases: sqlite_concurrent_cases, postgres_concurrent_cases;
    bmc_calls: sqlite_bmc_calls_round_trip, postgres_bmc_calls_round_trip;
    host_keys: sqlite_host_keys_by_machine_and_address, postgres_host_keys_by_machine_and_address;
}

/// Host keys are recorded per (machine, address), never replaced, and the
/// store serves as the SSH host-key policy's store from a blocking thread.
async fn host_keys(store: &Store) -> Result<()> {
    use certlab_lab::ssh::HostKeyStore;
    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPo5CsXvbLZUw4zIdMfZKzTMEEfSBa/Ii9r/V50hF3pZ";
    const K2: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIiUN8q+Cxd6a9MvwpH9X7uXFkVKzmTEcn8ZNGDYDGKm";
    ensure!(store.known_host_key("m1", "10.0.0.1:22").await?.is_none());
    store
        .remember_host_key("m1", "10.0.0.1:22", K1, at(0))
        .await?;
    store
        .remember_host_key("m1", "10.0.0.1:22", K2, at(1))
        .await?;
    let k = store.known_host_key("m1", "10.0.0.1:22").await?;
    ensure!(k.as_ref().map(|k| k.host_key.as_str()) == Some(K1), "{k:?}");
    ensure!(store.known_host_key("m1", "10.0.0.2:22").await?.is_none());
    ensure!(store.known_host_key("m2", "10.0.0.1:22").await?.is_none());
    store
        .remember_host_key("m1", "10.0.0.2:22", K2, at(2))
        .await?;
    let keys =
        certlab_harness::StoreHostKeys::new(store.clone(), tokio::runtime::Handle::current());
    let (got, other) = tokio::task::spawn_blocking(move || -> Result<_> {
        let k2: certlab_lab::HostKey = K2.parse().map_err(anyhow::Error::msg)?;
        keys.record("m3", "[::1]:2222", &k2)?;
        Ok((
            keys.recorded("m1", "10.0.0.2:22")?,
            keys.recorded("m3", "[::1]:2222")?,
        ))
    })
    .await??;
    ensure!(got.map(|k| k.to_string()) == Some(K2.to_string()));
    ensure!(other.map(|k| k.to_string()) == Some(K2.to_string()));
    Ok(())
}

async fn migration_rows(conn: &mut sqlx::AnyConnection) -> Result<Vec<(i64, Vec<u8>)>> {
    let rows = sqlx::query("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("version")?, r.try_get("checksum")?)))
        .collect()
}

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_remigrating_is_a_noop() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("a dir#with?odd%chars").join("lab.db");
    let bare = path.to_str().context("utf-8 path")?;
    let run = new_run(&uuid(), at(0));
    let c = case("x", Verdict::Pass, 1);

    let store = Store::open(bare).await?;
    store.create_run(&run).await?;
    store.record_case(&run.id, 0, &c).await?;
    store.close().await;

    sqlx::any::install_default_drivers();
    let url = format!(
        "sqlite://{}",
        bare.replace('%', "%25")
            .replace('#', "%23")
            .replace('?', "%3F")
    );
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    let before = migration_rows(&mut conn).await?;
    ensure!(!before.is_empty(), "no migrations recorded");
    let journal: String = sqlx::query("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?
        .try_get(0)?;
    assert_eq!(journal, "wal");
    conn.close().await?;

    let store = Store::open(&url).await?;
    let detail = store.get_run(&run.id).await?.context("run after reopen")?;
    assert_eq!(detail.cases, [c]);
    assert_eq!(detail.run.pass, 1);
    store.close().await;

    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    assert_eq!(migration_rows(&mut conn).await?, before);
    conn.close().await?;
    Ok(())
}

#[tokio::test]
async fn postgres_reopen_keeps_data_and_remigrating_is_a_noop() -> Result<()> {
    with_postgres("postgres_reopen", |url| async move {
        let run = new_run(&uuid(), at(0));
        let store = Store::open(&url).await?;
        store.create_run(&run).await?;
        store.close().await;
        let mut conn = sqlx::AnyConnection::connect(&url).await?;
        let before = migration_rows(&mut conn).await?;
        let store = Store::open(&url).await?;
        assert!(store.get_run(&run.id).await?.is_some());
        store.close().await;
        assert_eq!(migration_rows(&mut conn).await?, before);
        conn.close().await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn sqlite_in_memory_works() -> Result<()> {
    let store = Store::open("sqlite::memory:").await?;
    round_trip(&store).await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked_on() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let url = sqlite_url(&dir);
    let store = Store::open(&url).await?;
    let run = new_run("r1", at(0));
    store.create_run(&run).await?;
    store
        .record_case("r1", 0, &case("x", Verdict::Pass, 1))
        .await?;
    let mut conn = sqlx::AnyConnection::connect(&url).await?;
    conn.execute("UPDATE case_results SET result_json = '{\"id\": 1'")
        .await?;
    conn.close().await?;
    let got = store.get_run("r1").await;
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn non_finite_metrics_are_refused() -> Result<()> {
    let store = Store::open("sqlite::memory:").await?;
    store.create_run(&new_run("r", at(0))).await?;
    let mut c = case("nan", Verdict::Pass, 1);
    c.metrics[0].value = f64::NAN;
    let got = store.record_case("r", 0, &c).await;
    assert!(matches!(got, Err(StoreError::Invalid { .. })), "{got:?}");
    let detail = store.get_run("r").await?.context("run")?;
    assert_eq!((detail.run.pass, detail.cases.len()), (0, 0));
    Ok(())
}

#[tokio::test]
async fn urls_are_redacted_and_checked() -> Result<()> {
    assert_eq!(
        redact_url("postgres://lab:s3cr%40t@db.example:5432/certlab?sslmode=require&password=x"),
        "postgres://lab:***@db.example:5432/certlab?sslmode=require&password=***"
    );
    assert_eq!(
        redact_url("postgres://lab@db/certlab"),
        "postgres://lab@db/certlab"
    );
    assert_eq!(
        redact_url("/var/lib/certlab/lab.db"),
        "/var/lib/certlab/lab.db"
    );

    let err = Store::open("postgres://lab:hunter2@127.0.0.1:1/certlab").await;
    let err = err.err().context("connecting to port 1 should fail")?;
    assert!(matches!(err, StoreError::Connect { .. }), "{err:?}");
    let chain = format!("{:?}", anyhow::Error::from(err));
    assert!(!chain.contains("hunter2"), "password leaked: {chain}");

    let err = Store::open("mysql://root@localhost/x").await;
    assert!(
        matches!(err, Err(StoreError::Invalid { .. })),
        "{:?}",
        err.err()
    );
    Ok(())
}

/// Several processes opening a new SQLite store at once (a lab starting
/// many `certlab` commands) all get a migrated store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_concurrent_first_opens_all_succeed() -> Result<()> {
    for round in 0..5 {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(format!("race-{round}.db"));
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let p = path.display().to_string();
                tokio::spawn(async move { Store::open(&p).await })
            })
            .collect();
        for o in opens {
            let store = o.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
            ensure!(store.list_runs(1).await?.is_empty());
            store.close().await;
        }
    }
    Ok(())
}

/// A store written before host keys were keyed by address keeps its
/// recorded keys through migration 0004: same machine, same address text.
#[tokio::test]
async fn sqlite_host_keys_recorded_before_0004_survive_the_migration() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // The migrations as they were released before 0004, byte for byte.
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old)?;
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for f in ["0001_runs.sql", "0002_host_keys.sql", "0003_bmc_calls.sql"] {
        std::fs::copy(src.join(f), old.join(f))?;
    }
    let url = format!("sqlite:{}/lab.db?mode=rwc", dir.path().display());
    sqlx::any::install_default_drivers();
    {
        let mut conn = sqlx::AnyConnection::connect(&url).await?;
        sqlx::migrate::Migrator::new(old.as_path())
            .await?
            .run(&mut conn)
            .await?;
        sqlx::query(
            "INSERT INTO ssh_host_keys (machine, address, host_key, first_seen) \
             VALUES ('m1', '10.0.0.7', 'ssh-ed25519 AAAA', '2024-05-01T12:00:00.000000000Z')",
        )
        .execute(&mut conn)
        .await?;
        conn.close().await?;
    }
    let store = Store::open(&url).await?;
    let k = store.known_host_key("m1", "10.0.0.7").await?;
    ensure!(
        k.as_ref().map(|k| k.host_key.as_str()) == Some("ssh-ed25519 AAAA"),
        "{k:?}"
    );
    ensure!(store.known_host_key("m1", "10.0.0.7:22").await?.is_none());
    store.close().await;
    Ok(())
}
