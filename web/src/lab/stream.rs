//! A run's events as server-sent events: first what the store holds, then
//! each new entry as the orchestrator appends it, until the run is over.
//!
//! Every SSE event carries `id: <seq>` (the entry's sequence number in the
//! run's log), so a client that reconnects with `Last-Event-ID` resumes
//! after the last event it saw. The store is polled: one query for new
//! entries every [`POLL`] while there are none (both backends; the lab's
//! `NOTIFY` channel announces jobs and machines, not events), never a busy
//! loop. The run is over when [`certlab_harness::Store::run_open`] says so
//! — it is not running and no job holds it (the release step is logged
//! after the run finishes) — and the entries read after that are sent:
//! then an `end` event closes the stream.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use certlab_harness::{Store, StoredEvent};
use futures_util::Stream;

use super::views::EventView;

/// How often the store is asked for new entries while there are none.
pub const POLL: Duration = Duration::from_millis(250);
/// The most entries one query reads.
const BATCH: u32 = 500;

struct Follow {
    store: Store,
    run: String,
    /// The last sequence number sent.
    after: Option<u64>,
    pending: VecDeque<StoredEvent>,
    ended: bool,
}

/// What the next poll found.
enum Next {
    Events(Vec<StoredEvent>),
    Idle,
    Over,
}

impl Follow {
    async fn poll(&self) -> Result<Next, certlab_harness::StoreError> {
        // Whether the run goes on is read *before* its entries: an entry
        // appended before it ended is then in this read.
        let open = self.store.run_open(&self.run).await?.unwrap_or(false);
        let events = self
            .store
            .events_after(&self.run, self.after, Some(BATCH))
            .await?;
        Ok(if !events.is_empty() {
            Next::Events(events)
        } else if open {
            Next::Idle
        } else {
            Next::Over
        })
    }
}

fn sse_event(e: &StoredEvent) -> Event {
    let view = EventView::new(e);
    let event = Event::default().id(e.seq.to_string());
    match serde_json::to_string(&view) {
        Ok(json) => event.data(json),
        // a payload that cannot be serialised again is sent as its summary
        Err(_) => event.data(view.summary),
    }
}

/// The stream of run `run`'s events after `after` (`None`: all of them).
pub fn follow(
    store: Store,
    run: String,
    after: Option<u64>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let state = Follow {
        store,
        run,
        after,
        pending: VecDeque::new(),
        ended: false,
    };
    let stream = futures_util::stream::unfold(state, |mut f| async move {
        loop {
            if let Some(e) = f.pending.pop_front() {
                f.after = Some(e.seq);
                let event = sse_event(&e);
                return Some((Ok(event), f));
            }
            if f.ended {
                return None;
            }
            match f.poll().await {
                Ok(Next::Events(events)) => f.pending.extend(events),
                Ok(Next::Idle) => tokio::time::sleep(POLL).await,
                Ok(Next::Over) => {
                    f.ended = true;
                    let end = Event::default().event("end").data(f.run.clone());
                    return Some((Ok(end), f));
                }
                Err(e) => {
                    // the client reconnects with Last-Event-ID and resumes
                    tracing::warn!(run = %f.run, error = %e, "event stream stopped");
                    f.ended = true;
                    let error = Event::default()
                        .event("failed")
                        .data("the lab store could not be read");
                    return Some((Ok(error), f));
                }
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}
