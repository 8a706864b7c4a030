//! The lab-wide live stream (`GET /api/v1/lab/stream`): the dashboard's
//! machines and jobs as server-sent events — first a `snapshot` of both,
//! then a `machine` or `job` event for each that appeared or changed (a new
//! job, a job's state, attempt or waiting reason, a machine's state or
//! health), as the orchestrator records them in the lab store.
//!
//! What changed is found by reading the lab's machines and the dashboard's
//! newest jobs again and comparing each view with the one last sent, so the
//! stream holds whatever the store holds, whichever daemon wrote it. When
//! it reads again: on PostgreSQL when the lab's `NOTIFY` channel announces
//! a change (every job and machine transition is announced, see
//! `certlab_harness::LAB_CHANNEL`), and at least every [`FALLBACK`] (an
//! announcement can be lost while the listener reconnects, and waiting
//! reasons are not announced); on SQLite, which has no such channel, every
//! [`super::POLL`]. Reads are at most one per [`MIN_GAP`]: a burst of
//! announcements costs one read.
//!
//! Event ids count the stream's events. A client that reconnects (an
//! `EventSource` does by itself) gets a fresh `snapshot` first, so it needs
//! no `Last-Event-ID`: what changed while it was away is in the snapshot.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use certlab_harness::{LabListener, Store};
use futures_util::Stream;
use serde::Serialize;
use tokio::time::Instant;

use super::views::{JobView, MachineView};
use super::JOBS_SHOWN;
use crate::AppState;

/// The longest wait between two reads on PostgreSQL.
pub const FALLBACK: Duration = Duration::from_secs(2);
/// The shortest time between two reads.
const MIN_GAP: Duration = Duration::from_millis(100);

/// The first event: the lab as it is now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LabSnapshot {
    /// Every machine, by name.
    pub machines: Vec<MachineView>,
    /// The newest jobs (as many as the dashboard shows), newest first.
    pub jobs: Vec<JobView>,
}

/// What was last sent, by machine name and job id: each view's JSON.
#[derive(Default)]
struct Sent {
    machines: HashMap<String, String>,
    jobs: HashMap<String, String>,
}

struct Live {
    state: AppState,
    listener: Option<LabListener>,
    sent: Option<Sent>,
    pending: VecDeque<Event>,
    /// Events sent so far: the next event's id.
    count: u64,
    last_read: Option<Instant>,
    ended: bool,
}

/// The lab's machines and the newest jobs, as views.
async fn read(state: &AppState, lab: &Store) -> Result<LabSnapshot, certlab_harness::StoreError> {
    let machines = lab
        .machines()
        .await?
        .iter()
        .map(|m| MachineView::new(state, m))
        .collect();
    let jobs = lab
        .recent_jobs(None, JOBS_SHOWN)
        .await?
        .iter()
        .map(|j| JobView::new(state, j))
        .collect();
    Ok(LabSnapshot { machines, jobs })
}

fn json<T: Serialize>(v: &T) -> String {
    // views are plain strings and numbers: serialising them cannot fail
    serde_json::to_string(v).unwrap_or_default()
}

impl Live {
    fn event(&mut self, name: &str, data: String) -> Event {
        self.count += 1;
        Event::default()
            .id(self.count.to_string())
            .event(name)
            .data(data)
    }

    /// Waits until the next read is due: an announcement (PostgreSQL) or
    /// the poll interval, and at least [`MIN_GAP`] after the last read.
    async fn wait(&mut self) {
        if let Some(last) = self.last_read {
            tokio::time::sleep_until(last + MIN_GAP).await;
        }
        match &mut self.listener {
            Some(l) => {
                tokio::select! {
                    r = l.recv() => {
                        if let Err(e) = r {
                            // the listener reconnects; meanwhile the fallback reads
                            tracing::debug!(error = %e, "lab listener");
                            tokio::time::sleep(MIN_GAP).await;
                        }
                    }
                    _ = tokio::time::sleep(FALLBACK) => {}
                }
            }
            None => tokio::time::sleep(super::POLL).await,
        }
    }

    /// Reads the lab and queues the events for what changed since the
    /// last read (the snapshot at the first).
    async fn read_changes(&mut self) -> Result<(), certlab_harness::StoreError> {
        let lab = self.state.store().lab().clone();
        let now = read(&self.state, &lab).await?;
        self.last_read = Some(Instant::now());
        let Some(sent) = &mut self.sent else {
            let mut sent = Sent::default();
            for m in &now.machines {
                sent.machines.insert(m.name.clone(), json(m));
            }
            for j in &now.jobs {
                sent.jobs.insert(j.id.clone(), json(j));
            }
            self.sent = Some(sent);
            let event = self.event("snapshot", json(&now));
            self.pending.push_back(event);
            return Ok(());
        };
        let mut changed: Vec<(&str, String)> = Vec::new();
        // Jobs before machines: a job's change is what moves its machine,
        // so a read that saw both (the lab changed faster than the stream
        // reads) tells them in that order.
        // oldest first, so that a client inserting new jobs at the top
        // keeps the list's order
        for job in now.jobs.iter().rev() {
            let j = json(job);
            if sent.jobs.get(&job.id) != Some(&j) {
                sent.jobs.insert(job.id.clone(), j.clone());
                changed.push(("job", j));
            }
        }
        for m in &now.machines {
            let j = json(m);
            if sent.machines.get(&m.name) != Some(&j) {
                sent.machines.insert(m.name.clone(), j.clone());
                changed.push(("machine", j));
            }
        }
        // jobs that fell off the newest are forgotten (not removed from a
        // client's table: they still happened)
        let shown: std::collections::HashSet<&str> =
            now.jobs.iter().map(|j| j.id.as_str()).collect();
        sent.jobs.retain(|id, _| shown.contains(id.as_str()));
        for (name, data) in changed {
            let event = self.event(name, data);
            self.pending.push_back(event);
        }
        Ok(())
    }
}

/// The lab-wide stream for one client.
pub async fn follow(state: AppState) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // LISTEN before the first read: a change after the snapshot is announced
    let listener = match state.store().lab().listen().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "lab stream: no LISTEN; polling instead");
            None
        }
    };
    let live = Live {
        state,
        listener,
        sent: None,
        pending: VecDeque::new(),
        count: 0,
        last_read: None,
        ended: false,
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        loop {
            if let Some(e) = live.pending.pop_front() {
                return Some((Ok(e), live));
            }
            if live.ended {
                return None;
            }
            if live.sent.is_some() {
                live.wait().await;
            }
            if let Err(e) = live.read_changes().await {
                // the client reconnects and starts from a new snapshot
                tracing::warn!(error = %e, "lab stream stopped");
                live.ended = true;
                let failed = live.event("failed", "the lab store could not be read".into());
                return Some((Ok(failed), live));
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
