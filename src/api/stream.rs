//! `/v1/stream`: Server-Sent Events of newly stored documents, resumable with `Last-Event-ID`.
//!
//! Why the store drives the stream and the broadcast only wakes it: the store's arrival numbers
//! are the truth and the event channel is lossy by design (a slow subscriber lags). Each
//! stream keeps a cursor (the last arrival number it has passed) and, whenever woken, reads
//! `Store::arrivals_after(cursor)`. A client that reconnects with `Last-Event-ID`, a lagging
//! broadcast, or a burst of thousands of documents all take the same path, so nothing is missed
//! and nothing is sent twice.
//!
//! Bounds: at most [`super::STREAMS_MAX`] streams; each has a [`STREAM_BUFFER_EVENTS`]-event
//! buffer to its client (a slow client slows only its own task) and reads the store in pages of
//! [`REPLAY_PAGE`]. The task ends when the client goes, or when the server shuts down.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio::sync::{broadcast, mpsc, watch};

use super::error::ErrorBody;
use super::params::{self, StreamFilter, StreamParams};
use super::views::{DocumentSummary, StreamEvent};
use super::{ApiError, AppState};
use crate::document::decode;
use crate::service::Service;

/// Events buffered between a stream's task and its client.
pub const STREAM_BUFFER_EVENTS: usize = 64;
/// Arrivals read from the store per step of a replay.
pub const REPLAY_PAGE: usize = 256;
/// Interval of SSE comments that keep idle connections (and proxies) open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One of the [`super::STREAMS_MAX`] stream slots, given back on drop.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Result<Slot, ApiError> {
        let taken =
            count.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < super::STREAMS_MAX).then_some(n + 1));
        match taken {
            Ok(_) => Ok(Slot(count.clone())),
            Err(_) => Err(ApiError::TooManyStreams),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest("Last-Event-ID must be an arrival number (digits)".into())),
    }
}

#[utoipa::path(
    get, path = "/v1/stream", tag = "stream",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this arrival number"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: one `document` event per newly stored matching document; `id` is the arrival number, `data` a StreamEvent", content_type = "text/event-stream", body = StreamEvent),
        (status = 400, description = "A filter or Last-Event-ID is malformed", body = ErrorBody),
        (status = 429, description = "Too many open streams", body = ErrorBody),
    )
)]
/// Live stream of newly stored documents (Server-Sent Events), resumable with `Last-Event-ID`.
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<StreamParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let p = params::query(q)?;
    let filter = p.filter()?;
    let resume = last_event_id(&headers)?.or(p.after);
    let slot = Slot::take(&state.streams)?;
    // Subscribe before reading the last arrival: a document stored in between then both
    // wakes the stream and lies after its cursor.
    let wake = state.service.subscribe();
    let cursor = match resume {
        Some(after) => after,
        None => {
            let service = state.service.clone();
            tokio::task::spawn_blocking(move || service.store.last_arrival()).await?
        }
    };
    let (tx, rx) = mpsc::channel::<Event>(STREAM_BUFFER_EVENTS);
    let task = StreamTask { service: state.service.clone(), filter, cursor, tx, shutdown: state.shutdown.clone() };
    tokio::spawn(task.run(wake, slot));
    let events = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// Resolves once the server shuts down; never if it has no shutdown signal.
async fn shut_down(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

struct StreamTask {
    service: Arc<Service>,
    filter: StreamFilter,
    /// The last arrival number passed (sent or filtered out).
    cursor: u64,
    tx: mpsc::Sender<Event>,
    shutdown: watch::Receiver<bool>,
}

impl StreamTask {
    async fn run(mut self, mut wake: broadcast::Receiver<crate::service::StoredEvent>, _slot: Slot) {
        loop {
            match self.replay().await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!("event stream ends: {e}");
                    return;
                }
            }
            let tx = self.tx.clone();
            tokio::select! {
                r = wake.recv() => match r {
                    // Coalesce a burst: one replay covers every event queued so far.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                        while wake.try_recv().is_ok() {}
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tx.closed() => return,
                _ = shut_down(&mut self.shutdown) => return,
            }
        }
    }

    /// Sends every matching document stored after the cursor. `Ok(false)`: stop (the client
    /// left or the server is shutting down).
    async fn replay(&mut self) -> Result<bool, ApiError> {
        loop {
            let service = self.service.clone();
            let filter = self.filter.clone();
            let after = self.cursor;
            let page = tokio::task::spawn_blocking(move || -> Result<Vec<(u64, Option<StreamEvent>)>, ApiError> {
                let mut out = Vec::new();
                for (arrival, id) in service.store.arrivals_after(after, REPLAY_PAGE)? {
                    let event = match service.store.get(&id)? {
                        Some(bytes) => decode(&bytes)
                            .ok()
                            .filter(|d| filter.matches(&d.header))
                            .map(|d| StreamEvent { arrival, document: DocumentSummary::of(&d) }),
                        None => None,
                    };
                    out.push((arrival, event));
                }
                Ok(out)
            })
            .await??;
            if page.is_empty() {
                return Ok(true);
            }
            for (arrival, event) in page {
                if let Some(event) = event {
                    let Ok(sse) = Event::default().id(arrival.to_string()).event("document").json_data(&event) else {
                        continue;
                    };
                    tokio::select! {
                        sent = self.tx.send(sse) => if sent.is_err() { return Ok(false) },
                        _ = shut_down(&mut self.shutdown) => return Ok(false),
                    }
                }
                self.cursor = arrival;
            }
        }
    }
}
