//! The lab dashboard end to end: `certlab serve` and a `certlab lab daemon`
//! on one database with a simulated lab of two machines (`certlab lab sim
//! generate`); a job queued through the portal's API is carried out by the
//! daemon, and the run's event stream (server-sent events) shows it from
//! its first step to its release, then ends; a reconnect with
//! `Last-Event-ID` gets the rest only; the lab-wide stream, read from before
//! the job is queued, shows the new job on its way to `finished` and its
//! machine's changes. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::portal::{certlab, create_org, create_user, text, Server};
use serde_json::{json, Value};

/// A process this test started: killed when the test ends, also when it fails.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn api(
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let client = reqwest::Client::new();
    let mut req = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"));
    (status, v)
}

/// One server-sent event: (id, event name, data).
type SseEvent = (Option<u64>, Option<String>, String);

/// The events of a run's stream until it ends.
async fn read_stream(base: &str, token: &str, run: &str, last: Option<u64>) -> Vec<SseEvent> {
    read_sse(
        base,
        token,
        &format!("/api/v1/lab/runs/{run}/events/stream"),
        last,
        |_| false,
    )
    .await
}

/// The events of the stream at `path` until it ends or `enough` says so.
async fn read_sse(
    base: &str,
    token: &str,
    path: &str,
    last: Option<u64>,
    enough: impl Fn(&[SseEvent]) -> bool,
) -> Vec<SseEvent> {
    let client = reqwest::Client::new();
    let mut req = client.get(format!("{base}{path}")).bearer_auth(token);
    if let Some(l) = last {
        req = req.header("last-event-id", l.to_string());
    }
    let mut r = req.send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut buf = String::new();
    let mut out = Vec::new();
    loop {
        while let Some(at) = buf.find("\n\n") {
            let block: String = buf.drain(..at + 2).collect();
            let (mut id, mut name, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().parse::<u64>().unwrap());
                } else if let Some(v) = line.strip_prefix("event:") {
                    name = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if id.is_some() || name.is_some() {
                out.push((id, name, data));
                if enough(&out) {
                    return out;
                }
            }
        }
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("the stream ends within 240 s");
        match tokio::time::timeout(left, r.chunk())
            .await
            .unwrap()
            .unwrap()
        {
            Some(bytes) => buf.push_str(std::str::from_utf8(&bytes).unwrap()),
            None => return out,
        }
    }
}

async fn a_job_from_the_portal_streams_to_its_end(db: &str, dir: &Path) {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let o = certlab(
        &[
            "lab",
            "sim",
            "generate",
            "--machines",
            "2",
            "--seed",
            "1",
            "--time-scale",
            "0.001",
        ],
        &data,
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lab = dir.join("lab.toml");
    std::fs::write(&lab, &o.stdout).unwrap();

    create_org(db, &data, "certlab lab");
    let operator = create_user(
        db,
        &data,
        "operator@lab.example",
        "certlab lab",
        "reviewer",
        None,
    );
    let token = operator["token"].as_str().unwrap().to_string();

    let mut server = Server::start(db, &data, &dir.join("portal"));
    let base = server.base.clone();
    let daemon_log = dir.join("daemon.log");
    let daemon = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(["lab", "daemon", "--lab", lab.to_str().unwrap(), "--db", db])
        .env("CERTLAB_DATA_DIR", &data)
        .env_remove("CERTLAB_DB")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&daemon_log).unwrap())
        .spawn()
        .unwrap();
    let daemon = KillOnDrop(daemon);
    let log = || std::fs::read_to_string(&daemon_log).unwrap_or_default();

    // the daemon puts its lab's machines in the store; the dashboard shows them
    let deadline = Instant::now() + Duration::from_secs(60);
    let machines = loop {
        let (status, v) = api(
            &base,
            &token,
            reqwest::Method::GET,
            "/api/v1/lab/machines",
            None,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let items = v["items"].as_array().unwrap().clone();
        if items.len() == 2 {
            break items;
        }
        assert!(Instant::now() < deadline, "no machines: {}", log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let names: Vec<&str> = machines
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sim-0001", "sim-0002"]);

    // the lab-wide stream, read from before the job is queued until it is over
    let lab_stream = tokio::spawn({
        let (base, token) = (base.clone(), token.clone());
        async move {
            // until the job has ended and its machine has changed since the
            // job was first seen (one read of the lab may hold both; the
            // stream tells a job's change before its machine's)
            read_sse(&base, &token, "/api/v1/lab/stream", None, |events| {
                let of = |e: &SseEvent| -> Value { serde_json::from_str(&e.2).unwrap() };
                let Some(first_job) = events.iter().position(|e| e.1.as_deref() == Some("job"))
                else {
                    return false;
                };
                let ended = events.iter().any(|e| {
                    e.1.as_deref() == Some("job")
                        && ["finished", "failed", "cancelled"]
                            .contains(&of(e)["state"].as_str().unwrap())
                });
                let machine_moved = events[first_job..]
                    .iter()
                    .any(|e| e.1.as_deref() == Some("machine") && of(e)["name"] == "sim-0002");
                ended && machine_moved
            })
            .await
        }
    });

    let (status, job) = api(
        &base,
        &token,
        reqwest::Method::POST,
        "/api/v1/lab/jobs",
        Some(json!({"plan": "server-basic", "machine": "sim-0002", "priority": 60})),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_str().unwrap().to_string();

    // its run, once leased
    let deadline = Instant::now() + Duration::from_secs(120);
    let run = loop {
        let (_, v) = api(
            &base,
            &token,
            reqwest::Method::GET,
            "/api/v1/lab/jobs",
            None,
        )
        .await;
        let j = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id.as_str())
            .unwrap()
            .clone();
        if let Some(run) = j["run"].as_str() {
            break run.to_string();
        }
        assert!(Instant::now() < deadline, "not leased: {j}\n{}", log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let events = read_stream(&base, &token, &run, None).await;
    let (last, rest) = events.split_last().unwrap();
    assert_eq!(last.1.as_deref(), Some("end"), "{events:?}\n{}", log());
    let seqs: Vec<u64> = rest.iter().map(|e| e.0.unwrap()).collect();
    let want: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, want, "every event, in order, once");
    let kinds: Vec<String> = rest
        .iter()
        .map(|e| {
            let v: Value = serde_json::from_str(&e.2).unwrap();
            assert_eq!(v["seq"].as_u64(), e.0);
            v["kind"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("step_started"),
        "{kinds:?}"
    );
    for k in [
        "prepared",
        "run_started",
        "case_finished",
        "published",
        "run_finished",
    ] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in {kinds:?}");
    }
    assert_eq!(
        kinds.last().map(String::as_str),
        Some("released"),
        "{kinds:?}"
    );

    // the job finished; a reconnect after the run's end gets the rest only
    let (_, v) = api(
        &base,
        &token,
        reqwest::Method::GET,
        "/api/v1/lab/jobs?state=finished",
        None,
    )
    .await;
    let finished = v["items"].as_array().unwrap();
    assert_eq!(finished.len(), 1, "{v}");
    assert_eq!(finished[0]["run"], run.as_str());
    assert_eq!(finished[0]["machine"], "sim-0002");
    let half = seqs.len() as u64 / 2;
    let again = read_stream(&base, &token, &run, Some(half)).await;
    let again_seqs: Vec<u64> = again.iter().filter_map(|e| e.0).collect();
    assert_eq!(
        again_seqs,
        (half + 1..=seqs.len() as u64).collect::<Vec<_>>()
    );
    assert_eq!(again.last().unwrap().1.as_deref(), Some("end"));

    // the lab-wide stream: the snapshot (no job yet), the new job, its way
    // to `finished` in the lifecycle's order, and its machine's changes
    let live = tokio::time::timeout(Duration::from_secs(60), lab_stream)
        .await
        .expect("the lab stream saw the job end")
        .unwrap();
    let (first, changes) = live.split_first().unwrap();
    assert_eq!(first.1.as_deref(), Some("snapshot"), "{live:?}");
    let snap: Value = serde_json::from_str(&first.2).unwrap();
    assert_eq!(snap["machines"].as_array().unwrap().len(), 2, "{snap}");
    let ids: Vec<u64> = live.iter().map(|e| e.0.unwrap()).collect();
    assert_eq!(
        ids,
        (1..=live.len() as u64).collect::<Vec<_>>(),
        "ids count the events"
    );
    let order = ["queued", "leased", "running", "finished"];
    let mut job_states = Vec::new();
    let mut machine_after_job: Vec<(String, String)> = Vec::new();
    for e in changes {
        let v: Value = serde_json::from_str(&e.2).unwrap();
        match e.1.as_deref() {
            Some("job") => {
                assert_eq!(v["id"], id.as_str(), "{v}");
                job_states.push(v["state"].as_str().unwrap().to_string());
            }
            Some("machine") if !job_states.is_empty() => {
                machine_after_job.push((
                    v["name"].as_str().unwrap().to_string(),
                    v["state"].as_str().unwrap().to_string(),
                ));
            }
            Some("machine") => {}
            other => panic!("unexpected event {other:?}: {v}"),
        }
    }
    let at: Vec<usize> = job_states
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap())
        .collect();
    // (a job changes within a state too: its waiting reason, its attempt)
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{job_states:?}");
    assert_eq!(job_states.last().map(String::as_str), Some("finished"));
    assert!(
        machine_after_job.iter().any(|(m, _)| m == "sim-0002"),
        "sim-0002 changed while the job ran: {machine_after_job:?}"
    );

    drop(daemon);
    assert_eq!(server.stop(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_from_the_portal_streams_to_its_end_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("lab.db").display());
    a_job_from_the_portal_streams_to_its_end(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_from_the_portal_streams_to_its_end_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let pg = common::pg::TempDb::create().await;
    a_job_from_the_portal_streams_to_its_end(&pg.url, dir.path()).await;
    pg.drop_db().await;
}
