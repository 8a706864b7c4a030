//! A run continued by a later attempt (its orchestrator died, its lease
//! expired): the cases it recorded are kept and not run again, the case
//! that was in flight runs, and nothing is recorded twice. Runs on this
//! machine (the Local target) with a three-case plan.

mod common;

use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use certlab_harness::{certify, NewRun, RunEvent, RunSpec, RunState, Store, StoreError};
use certlab_lab::Local;
use certlab_reports::{CaseResult, Evidence, Verdict};
use certlab_suites::Plan;
use ed25519_dalek::SigningKey;
use time::OffsetDateTime;

const PLAN: &str = r#"
[plan]
id = "resume-test"
version = "1"
title = "three cheap cases"
description = "for the resume test"

[[case]]
id = "cpu.online"
check = "cpu-online"
title = "All present CPUs are online"
blocker = true
timeout_s = 30

[[case]]
id = "kernel.taint"
check = "kernel-taint"
title = "Kernel not tainted"
blocker = true
timeout_s = 30

[[case]]
id = "cpu.identity"
check = "cpu-identity"
title = "CPU identity"
blocker = true
timeout_s = 60
"#;

fn spec(run_id: &str, out: &std::path::Path) -> Result<RunSpec> {
    Ok(RunSpec {
        run_id: run_id.into(),
        plan: Plan::parse("resume-test.toml", PLAN)?,
        target: Arc::new(Local::default()),
        out_dir: out.to_path_buf(),
        signer: SigningKey::from_bytes(&[7u8; 32]),
        tool_version: "test".into(),
        case_retries: None,
        sut: None,
    })
}

/// As a lease leaves it: the run row with no host yet.
fn leased_run(id: &str) -> NewRun {
    NewRun {
        id: id.into(),
        plan_id: "resume-test".into(),
        plan_version: "1".into(),
        plan_digest: String::new(),
        target: "local".into(),
        hostname: String::new(),
        kernel: String::new(),
        started: OffsetDateTime::now_utc(),
        out_dir: None,
    }
}

#[tokio::test]
async fn a_resumed_run_keeps_its_recorded_cases_and_runs_the_rest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&common::sqlite_url(&dir)).await?;
    store.create_run(&leased_run("r1")).await?;
    // The first attempt finished cpu.online, then its orchestrator died.
    let kept = CaseResult {
        id: "cpu.online".into(),
        title: "All present CPUs are online".into(),
        blocker: true,
        verdict: Verdict::Pass,
        reason: "kept from attempt 1".into(),
        started: OffsetDateTime::now_utc(),
        duration_ms: 3,
        metrics: vec![],
        evidence: vec![Evidence::Missing {
            path: "/sys/devices/system/cpu/offline".into(),
            error: "attempt 1".into(),
        }],
        baseline: None,
    };
    store.record_case("r1", 0, &kept).await?;
    store
        .append_event(
            "r1",
            1,
            OffsetDateTime::now_utc(),
            "case_finished",
            &serde_json::json!({}),
        )
        .await?;
    store
        .mark_interrupted("r1", OffsetDateTime::now_utc(), "lease expired")
        .await?;

    let mut events = Vec::new();
    let (record, _) = certify(spec("r1", &dir.path().join("out"))?, &store, &mut |e| {
        events.push(e.clone())
    })
    .await?;
    ensure!(record.cases.len() == 3, "{:?}", record.cases);
    ensure!(
        record.cases[0].reason == "kept from attempt 1",
        "kept verbatim"
    );
    ensure!(
        !events
            .iter()
            .any(|e| matches!(e, RunEvent::CaseStarted { id, .. } if id == "cpu.online")),
        "a kept case is not run again"
    );
    ensure!(events
        .iter()
        .any(|e| matches!(e, RunEvent::Resumed { kept } if kept == &["cpu.online"])));

    let detail = store.get_run("r1").await?.context("run")?;
    ensure!(detail.run.state == RunState::Finished);
    ensure!(
        !detail.run.hostname.is_empty(),
        "discovery filled in the host"
    );
    let ids: Vec<&str> = detail.cases.iter().map(|c| c.id.as_str()).collect();
    ensure!(
        ids == ["cpu.online", "kernel.taint", "cpu.identity"],
        "{ids:?}"
    );
    // The event log continued after the first attempt's events: this
    // attempt's start, then that it resumed; every kind is logged.
    let log = store.events("r1").await?;
    let kinds: Vec<&str> = log.iter().map(|e| e.kind.as_str()).collect();
    ensure!(
        log[0].seq == 1 && kinds[1..4] == ["run_started", "stage_changed", "resumed"],
        "{kinds:?}"
    );
    ensure!(log.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    for kind in ["case_started", "case_finished", "published", "run_finished"] {
        ensure!(kinds.contains(&kind), "{kind} not logged: {kinds:?}");
    }
    ensure!(log.iter().skip(1).all(|e| e.payload["v"] == 1), "{log:?}");

    // A finished run is not begun again.
    ensure!(matches!(
        store.begin_run(&leased_run("r1")).await,
        Err(StoreError::State {
            state: RunState::Finished,
            ..
        })
    ));
    store.close().await;
    Ok(())
}
