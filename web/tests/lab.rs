//! The lab dashboard through the router: the pages and the JSON API over
//! the lab's tables of the portal's database, the job form and API queuing
//! jobs as `certlab job submit` does, and a run's events as server-sent
//! events — stored ones first, then live, resumed from `Last-Event-ID`,
//! ended when the run is over. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use certlab_harness::events::JobStep;
use certlab_harness::lifecycle::{
    next_health, next_job, HealthEvent, JobEvent, JobStateKind, MachineFacts,
};
use certlab_harness::{NewRun, RunEvent, Store};
use common::{accounts, Portal};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use time::OffsetDateTime;
use tower::ServiceExt;

/// A session of `email`: (cookie, CSRF token).
async fn session(p: &Portal, email: &str) -> (String, String) {
    let user = p.store.user_by_email(email).await.unwrap().unwrap();
    let (cookie, digest) = certlab_web::auth::new_token();
    let csrf = certlab_web::auth::new_secret("");
    let now = OffsetDateTime::now_utc();
    p.store
        .create_session(
            &digest,
            &user.id,
            &csrf,
            now,
            now + time::Duration::hours(1),
        )
        .await
        .unwrap();
    (cookie, csrf)
}

fn get_with_cookie(uri: &str, cookie: &str) -> Request<Body> {
    Request::builder()
        .uri(uri)
        .header("cookie", format!("certlab_session={cookie}"))
        .body(Body::empty())
        .unwrap()
}

fn machine(name: &str) -> MachineFacts {
    MachineFacts {
        name: name.into(),
        arch: "aarch64".into(),
        family: Some("kunpeng".into()),
        pool: Some("rack1".into()),
        tags: vec![],
    }
}

/// Two machines: `kp1` good, `kp2` bad with a reason.
async fn two_machines(lab: &Store) {
    let now = OffsetDateTime::now_utc();
    lab.sync_machines(&[machine("kp1"), machine("kp2")], now)
        .await
        .unwrap();
    for m in lab.machines().await.unwrap() {
        let event = if m.facts.name == "kp1" {
            HealthEvent::CheckPassed
        } else {
            HealthEvent::CheckFailed {
                reason: "BMC does not answer".into(),
            }
        };
        let to = next_health(&m.health, &event, now).unwrap();
        lab.set_health(&m.facts.name, &m.health, &to).await.unwrap();
    }
}

fn new_run(id: &str) -> NewRun {
    NewRun {
        id: id.into(),
        plan_id: "server-basic".into(),
        plan_version: "1".into(),
        plan_digest: "ab".repeat(32),
        target: "kp1".into(),
        hostname: "kp1".into(),
        kernel: "6.1.0".into(),
        started: OffsetDateTime::now_utc(),
        out_dir: None,
    }
}

/// The `n`th event of a test run, as the runner stores it.
fn event(n: u64) -> RunEvent {
    match n {
        1 => RunEvent::StepStarted {
            step: JobStep::Prepare,
        },
        _ => RunEvent::CaseStarted {
            index: n as usize,
            total: 9,
            id: format!("case.{n}"),
            title: format!("Case {n}"),
        },
    }
}

async fn append(lab: &Store, run: &str, n: u64) {
    let ev = event(n);
    let mut payload = serde_json::to_value(&ev).unwrap();
    payload["v"] = json!(1);
    lab.append_event(run, n, OffsetDateTime::now_utc(), ev.kind(), &payload)
        .await
        .unwrap();
}

/// One server-sent event: (id, event name, data).
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    id: Option<String>,
    name: Option<String>,
    data: String,
}

/// Reads a text/event-stream body as it comes.
struct SseReader {
    body: Body,
    buf: String,
}

impl SseReader {
    /// The next event (comments skipped), or `None` at the end of the body;
    /// fails after 20 s without one.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let mut sse = Sse {
                    id: None,
                    name: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        sse.id = Some(v.trim().to_string());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        sse.name = Some(v.trim().to_string());
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        sse.data.push_str(v.trim_start());
                        any = true;
                    }
                }
                if any {
                    return Some(sse);
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(20), self.body.frame())
                .await
                .expect("an event within 20 s");
            match frame {
                None => return None,
                Some(f) => {
                    if let Ok(data) = f.unwrap().into_data() {
                        self.buf.push_str(std::str::from_utf8(&data).unwrap());
                    }
                }
            }
        }
    }
}

/// Opens the stream of `run` with a bearer token (and `Last-Event-ID`).
async fn stream(p: &Portal, token: &str, run: &str, last: Option<&str>) -> SseReader {
    open_sse(
        p,
        token,
        &format!("/api/v1/lab/runs/{run}/events/stream"),
        last,
    )
    .await
}

/// Opens the server-sent events of `uri` with a bearer token (and `Last-Event-ID`).
async fn open_sse(p: &Portal, token: &str, uri: &str, last: Option<&str>) -> SseReader {
    let mut req = Request::builder()
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    if let Some(l) = last {
        req = req.header("last-event-id", l);
    }
    let response = p
        .app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    SseReader {
        body: response.into_body(),
        buf: String::new(),
    }
}

fn seq_of(e: &Sse) -> u64 {
    let v: Value = serde_json::from_str(&e.data).unwrap();
    let seq = v["seq"].as_u64().unwrap();
    assert_eq!(
        e.id.as_deref(),
        Some(seq.to_string().as_str()),
        "id is the seq"
    );
    seq
}

async fn events_arrive_in_order_live_and_resume(p: &Portal) {
    let a = accounts(&p.store).await;
    let lab = p.store.lab();
    lab.create_run(&new_run("run-live")).await.unwrap();
    for n in 1..=3 {
        append(lab, "run-live", n).await;
    }

    let mut s = stream(p, &a.reviewer, "run-live", None).await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let e = s.next().await.unwrap();
        assert_eq!(e.name, None, "run events are plain messages");
        seen.push(seq_of(&e));
    }
    assert_eq!(seen, [1, 2, 3], "the stored events, in order");
    let first: Value = serde_json::from_str(&{
        let mut again = stream(p, &a.reviewer, "run-live", None).await;
        again.next().await.unwrap().data
    })
    .unwrap();
    assert_eq!(first["kind"], "step_started");
    assert_eq!(first["summary"], "prepare");
    assert_eq!(first["event"]["step"], "prepare");

    // new events while the stream waits: they come live, in order
    for n in 4..=6 {
        append(lab, "run-live", n).await;
    }
    for want in 4..=6 {
        let e = s.next().await.unwrap();
        assert_eq!(seq_of(&e), want);
        let v: Value = serde_json::from_str(&e.data).unwrap();
        assert_eq!(v["kind"], "case_started");
        assert_eq!(v["summary"], format!("case.{want} Case {want}"));
    }

    // a reconnect after event 4 gets 5 and 6 only
    let mut resumed = stream(p, &a.reviewer, "run-live", Some("4")).await;
    assert_eq!(seq_of(&resumed.next().await.unwrap()), 5);
    assert_eq!(seq_of(&resumed.next().await.unwrap()), 6);

    // the run stops (no job holds it): both streams end, after a last event
    append(lab, "run-live", 7).await;
    lab.mark_interrupted("run-live", OffsetDateTime::now_utc(), "test")
        .await
        .unwrap();
    for s in [&mut s, &mut resumed] {
        assert_eq!(seq_of(&s.next().await.unwrap()), 7);
        let end = s.next().await.unwrap();
        assert_eq!(end.name.as_deref(), Some("end"));
        assert_eq!(end.data, "run-live");
        assert_eq!(s.next().await, None, "the body ends");
    }

    // a finished run replays and ends at once; ?after= starts later
    let mut again = stream(p, &a.admin, "run-live", Some("6")).await;
    assert_eq!(seq_of(&again.next().await.unwrap()), 7);
    assert_eq!(again.next().await.unwrap().name.as_deref(), Some("end"));
    let r = p
        .api(
            Method::GET,
            "/api/v1/lab/runs/run-live/events?after=5",
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(v["open"], false);
    assert_eq!(v["run"]["state"], "interrupted");
    let seqs: Vec<u64> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [6, 7]);
    let r = p
        .api(
            Method::GET,
            &format!("/api/v1/lab/runs/run-live/events?after={}", u64::MAX),
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "beyond every seq: nothing");
    assert_eq!(r.json()["events"], json!([]));

    // refusals: unknown run, a bad Last-Event-ID, a vendor, nobody
    let r = p
        .api(
            Method::GET,
            "/api/v1/lab/runs/nope/events/stream",
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let req = Request::builder()
        .uri("/api/v1/lab/runs/run-live/events/stream")
        .header("authorization", format!("Bearer {}", a.reviewer))
        .header("last-event-id", "seven")
        .body(Body::empty())
        .unwrap();
    assert_eq!(p.call(req).await.status, StatusCode::BAD_REQUEST);
    let r = p
        .api(
            Method::GET,
            "/api/v1/lab/runs/run-live/events/stream",
            Some(&a.vendor_a),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = p.get("/api/v1/lab/runs/run-live/events/stream").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn run_events_stream_live_and_resume_sqlite() {
    let p = Portal::sqlite().await;
    events_arrive_in_order_live_and_resume(&p).await;
    p.close().await;
}

#[tokio::test]
async fn run_events_stream_live_and_resume_postgres() {
    let p = Portal::postgres().await;
    events_arrive_in_order_live_and_resume(&p).await;
    p.close().await;
}

/// The lab-wide stream: a snapshot of the machines and jobs, then an event
/// for each change the orchestrator records — a new job, its lease, a
/// machine's health — each view as the API gives it, ids counting up.
async fn the_lab_stream_sends_a_snapshot_then_changes(p: &Portal) {
    let a = accounts(&p.store).await;
    let lab = p.store.lab();
    two_machines(lab).await;
    let r = p.get("/api/v1/lab/stream").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = p
        .api(Method::GET, "/api/v1/lab/stream", Some(&a.vendor_a), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    let mut s = open_sse(p, &a.reviewer, "/api/v1/lab/stream", None).await;
    let first = s.next().await.unwrap();
    assert_eq!(first.name.as_deref(), Some("snapshot"));
    assert_eq!(first.id.as_deref(), Some("1"));
    let snap: Value = serde_json::from_str(&first.data).unwrap();
    let names: Vec<&str> = snap["machines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kp1", "kp2"]);
    assert_eq!(snap["machines"][1]["health"], "bad");
    assert_eq!(snap["machines"][1]["health_reason"], "BMC does not answer");
    assert_eq!(snap["jobs"], json!([]));

    // a job queued through the API, then leased to kp1; kp2 repaired
    let r = p
        .api(
            Method::POST,
            "/api/v1/lab/jobs",
            Some(&a.admin),
            Some(json!({"plan": "server-basic", "machine": "kp1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let mut last_id = 1u64;
    let mut job_states: Vec<String> = Vec::new();
    // read until the job's first event
    loop {
        let e = s.next().await.unwrap();
        let n: u64 = e.id.as_deref().unwrap().parse().unwrap();
        assert!(n > last_id, "ids count up: {n} after {last_id}");
        last_id = n;
        if e.name.as_deref() == Some("job") {
            let v: Value = serde_json::from_str(&e.data).unwrap();
            assert_eq!(v["id"], id.as_str(), "{v}");
            job_states.push(v["state"].as_str().unwrap().to_string());
            assert_eq!(v["plan"], "server-basic");
            assert_eq!(v["requirements"], "name=kp1");
            break;
        }
        assert_eq!(e.name.as_deref(), Some("machine"), "{e:?}");
    }
    assert_eq!(job_states, ["queued"], "a new job, as queued");

    let now = OffsetDateTime::now_utc();
    let job = lab.job(&id).await.unwrap().unwrap();
    let lease = JobEvent::Lease {
        machine: "kp1".into(),
        owner: "test".into(),
        new_run: "run-lab-stream".into(),
        ttl: time::Duration::minutes(5),
    };
    let leased = next_job(&job.state, &lease, now).unwrap();
    lab.lease(&job, &leased, now).await.unwrap().unwrap();
    let kp2 = lab
        .machines()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.facts.name == "kp2")
        .unwrap();
    let good = next_health(&kp2.health, &HealthEvent::CheckPassed, now).unwrap();
    lab.set_health("kp2", &kp2.health, &good).await.unwrap();

    let (mut kp1_leased, mut kp2_good, mut job_leased) = (false, false, false);
    for _ in 0..20 {
        if kp1_leased && kp2_good && job_leased {
            break;
        }
        let e = s.next().await.unwrap();
        let n: u64 = e.id.as_deref().unwrap().parse().unwrap();
        assert!(n > last_id, "ids count up: {n} after {last_id}");
        last_id = n;
        let v: Value = serde_json::from_str(&e.data).unwrap();
        match e.name.as_deref() {
            Some("job") => {
                assert_eq!(v["id"], id.as_str(), "{v}");
                job_leased |= v["state"] == "leased" && v["machine"] == "kp1";
            }
            Some("machine") => match v["name"].as_str().unwrap() {
                "kp1" => kp1_leased |= v["state"] == "leased" && v["job"] == id.as_str(),
                "kp2" => kp2_good |= v["health"] == "good",
                other => panic!("no machine {other}"),
            },
            other => panic!("unexpected event {other:?}: {v}"),
        }
    }
    assert!(job_leased, "the job's lease was sent");
    assert!(kp1_leased, "kp1's lease was sent");
    assert!(kp2_good, "kp2's health was sent");
}

#[tokio::test]
async fn the_lab_stream_sends_a_snapshot_then_changes_sqlite() {
    let p = Portal::sqlite().await;
    the_lab_stream_sends_a_snapshot_then_changes(&p).await;
    p.close().await;
}

#[tokio::test]
async fn the_lab_stream_sends_a_snapshot_then_changes_postgres() {
    let p = Portal::postgres().await;
    the_lab_stream_sends_a_snapshot_then_changes(&p).await;
    p.close().await;
}

/// The stream goes on after the run finished while its job holds it (the
/// release step is logged then), and ends when the job does.
#[tokio::test]
async fn the_stream_follows_the_job_to_its_end() {
    let p = Portal::sqlite().await;
    let a = accounts(&p.store).await;
    let lab = p.store.lab();
    two_machines(lab).await;
    let r = p
        .api(
            Method::POST,
            "/api/v1/lab/jobs",
            Some(&a.admin),
            Some(json!({"plan": "server-basic", "machine": "kp1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_string();
    let now = OffsetDateTime::now_utc();
    let job = lab.job(&id).await.unwrap().unwrap();
    let lease = JobEvent::Lease {
        machine: "kp1".into(),
        owner: "test".into(),
        new_run: "run-job".into(),
        ttl: time::Duration::minutes(5),
    };
    let leased = next_job(&job.state, &lease, now).unwrap();
    lab.lease(&job, &leased, now).await.unwrap().unwrap();
    append(lab, "run-job", 1).await;
    let mut s = stream(&p, &a.reviewer, "run-job", None).await;
    assert_eq!(seq_of(&s.next().await.unwrap()), 1);
    // the run stops, the job still holds it: the stream waits
    lab.mark_interrupted("run-job", now, "lost").await.unwrap();
    append(lab, "run-job", 2).await;
    assert_eq!(seq_of(&s.next().await.unwrap()), 2);
    let job = lab.job(&id).await.unwrap().unwrap();
    let cancel = JobEvent::Cancel {
        reason: "test".into(),
    };
    let to = next_job(&job.state, &cancel, now).unwrap();
    lab.apply_job(&id, &job.state, &to, now).await.unwrap();
    assert_eq!(s.next().await.unwrap().name.as_deref(), Some("end"));
    // the page of the run, with the events so far and the live tail's script
    let (cookie, _) = session(&p, "reviewer@lab.example").await;
    let page = p.call(get_with_cookie("/lab/runs/run-job", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    assert!(html.contains("case.2 Case 2"), "{html}");
    assert!(html.contains("data-stream=\"/api/v1/lab/runs/run-job/events/stream?after=2\""));
    assert!(html.contains("data-open=\"false\""));
    assert!(html.contains("<script src=\"/lab.js\""));
    p.close().await;
}

async fn dashboard_and_job_form(p: &Portal) {
    let a = accounts(&p.store).await;
    let lab = p.store.lab();
    two_machines(lab).await;
    let (cookie, csrf) = session(p, "reviewer@lab.example").await;

    // the form queues a job as `certlab job submit` would, then back to /lab
    let form = |body: String, csrf_cookie: &str| {
        Request::builder()
            .method(Method::POST)
            .uri("/lab/jobs")
            .header("cookie", format!("certlab_session={csrf_cookie}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let r = p
        .call(form(
            format!("csrf={csrf}&plan=server-cert&machine=kp2&require=&priority=70"),
            &cookie,
        ))
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(r.header("location"), "/lab");
    let jobs = lab.jobs(Some(JobStateKind::Queued)).await.unwrap();
    assert_eq!(jobs.len(), 1);
    let j = &jobs[0];
    assert_eq!(j.plan, "server-cert");
    assert_eq!(j.requirements.to_string(), "name=kp2");
    assert_eq!(j.priority, 70);
    assert_eq!(j.submitter, "reviewer@lab.example");
    assert_eq!(j.plan_text, None, "a built-in plan, by name");
    let plan = certlab_suites::Plan::load("server-cert").unwrap();
    assert_eq!(j.plan_digest, plan.digest);
    lab.set_waiting_reasons(&[(j.id.clone(), "kp2 is bad: BMC does not answer".into())])
        .await
        .unwrap();

    // refused forms change nothing
    for (body, status) in [
        (
            "csrf=wrong&plan=server-cert&machine=kp1&require=&priority=50".to_string(),
            StatusCode::FORBIDDEN,
        ),
        (
            format!("csrf={csrf}&plan=%2Fetc%2Fpasswd&machine=&require=&priority=50"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("csrf={csrf}&plan=server-cert&machine=kp1&require=arch%3Dx86_64&priority=50"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("csrf={csrf}&plan=server-cert&machine=&require=colour%3Dred&priority=50"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            format!("csrf={csrf}&plan=server-cert&machine=&require=&priority=101"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let r = p.call(form(body.clone(), &cookie)).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert!(r.header("content-type").starts_with("text/html"));
    }
    assert_eq!(lab.recent_jobs(None, 100).await.unwrap().len(), 1);

    // the API queues with a bearer token; requirements instead of a machine
    let r = p
        .api(
            Method::POST,
            "/api/v1/lab/jobs",
            Some(&a.admin),
            Some(
                json!({"plan": "server-basic", "require": "arch=aarch64,tag=nvme", "priority": 10}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let v = r.json();
    assert_eq!(v["state"], "queued");
    assert_eq!(v["requirements"], "arch=aarch64,tag=nvme");
    assert_eq!(v["priority"], 10);
    assert_eq!(v["submitter"], "admin@lab.example");
    let r = p
        .api(
            Method::POST,
            "/api/v1/lab/jobs",
            Some(&a.admin),
            Some(json!({"plan": "no-such-plan"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "unknown_plan");
    let r = p
        .api(
            Method::POST,
            "/api/v1/lab/jobs",
            Some(&a.vendor_a),
            Some(json!({"plan": "server-basic"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // the JSON lists
    let r = p
        .api(Method::GET, "/api/v1/lab/machines", Some(&a.reviewer), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let machines = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(machines.len(), 2);
    assert_eq!(machines[0]["name"], "kp1");
    assert_eq!(machines[0]["health"], "good");
    assert_eq!(machines[1]["health"], "bad");
    assert_eq!(machines[1]["health_reason"], "BMC does not answer");
    assert_eq!(machines[1]["state"], "idle");
    let r = p
        .api(Method::GET, "/api/v1/lab/jobs", Some(&a.reviewer), None)
        .await;
    let jobs = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0]["plan"], "server-basic", "newest first");
    assert_eq!(jobs[1]["waiting_reason"], "kp2 is bad: BMC does not answer");
    let r = p
        .api(
            Method::GET,
            "/api/v1/lab/jobs?state=finished",
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(r.json()["items"], json!([]));
    let r = p
        .api(
            Method::GET,
            "/api/v1/lab/jobs?state=sleeping",
            Some(&a.reviewer),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // the page's EventSource reads the API with the session cookie
    let r = p
        .call(get_with_cookie("/api/v1/lab/machines", &cookie))
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // the page: machines with health and reason, jobs with why they wait
    lab.create_run(&new_run("run-page")).await.unwrap();
    let page = p.call(get_with_cookie("/lab", &cookie)).await;
    assert_eq!(page.status, StatusCode::OK);
    let html = page.text();
    for want in [
        "kp1",
        "BMC does not answer",
        "kp2 is bad: BMC does not answer",
        "name=kp2",
        "arch=aarch64,tag=nvme",
        "/lab/runs/run-page",
        "<option value=\"server-cert\">",
        "action=\"/lab/jobs\"",
        // the live updates: the lab-wide stream, rows keyed for it
        "data-stream=\"/api/v1/lab/stream\"",
        "<tr data-key=\"kp2\">",
        "<script src=\"/lab.js\"",
    ] {
        assert!(html.contains(want), "{want} not on the page:\n{html}");
    }
    assert!(html.contains(&format!("name=\"csrf\" value=\"{csrf}\"")));

    // vendors and nobody: not the lab's operators
    let (vendor, vendor_csrf) = session(p, "vendor@acme.example").await;
    let r = p.call(get_with_cookie("/lab", &vendor)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = p
        .call(form(
            format!("csrf={vendor_csrf}&plan=server-cert&machine=kp1&require=&priority=50"),
            &vendor,
        ))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(p.get("/lab").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(lab.recent_jobs(None, 100).await.unwrap().len(), 2);
}

#[tokio::test]
async fn dashboard_and_job_form_sqlite() {
    let p = Portal::sqlite().await;
    dashboard_and_job_form(&p).await;
    p.close().await;
}

#[tokio::test]
async fn dashboard_and_job_form_postgres() {
    let p = Portal::postgres().await;
    dashboard_and_job_form(&p).await;
    p.close().await;
}

/// A finished run's results: from the lab store's record.
#[tokio::test]
async fn a_finished_runs_results_are_linked() {
    let p = Portal::sqlite().await;
    accounts(&p.store).await;
    let lab = p.store.lab();
    let mut record: certlab_reports::RunRecord = serde_json::from_str(common::FIXTURE).unwrap();
    let run = new_run(&record.run_id);
    lab.create_run(&run).await.unwrap();
    let (cookie, _) = session(&p, "admin@lab.example").await;
    let page = p
        .call(get_with_cookie(&format!("/lab/runs/{}", run.id), &cookie))
        .await;
    assert!(page.text().contains("none yet"));
    let r = p
        .call(get_with_cookie(
            &format!("/lab/runs/{}/results.json", run.id),
            &cookie,
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    record.finished = OffsetDateTime::now_utc();
    lab.finish_run(&run.id, &record).await.unwrap();
    let page = p
        .call(get_with_cookie(&format!("/lab/runs/{}", run.id), &cookie))
        .await;
    let html = page.text();
    assert!(html.contains(&format!("/lab/runs/{}/results.json", run.id)));
    assert!(html.contains("The run is over."));
    let r = p
        .call(get_with_cookie(
            &format!("/lab/runs/{}/results.json", run.id),
            &cookie,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let back: certlab_reports::RunRecord = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(back.run_id, record.run_id);
    assert_eq!(back.cases.len(), record.cases.len());
    let r = p
        .call(get_with_cookie(
            &format!("/lab/runs/{}/report.html", run.id),
            &cookie,
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-security-policy").contains("sandbox"));
    assert!(r.text().contains(&record.host.hostname));
    // an id prefix is not a run here
    let r = p
        .call(get_with_cookie(
            &format!("/lab/runs/{}", &run.id[..8]),
            &cookie,
        ))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    p.close().await;
}
