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

use super::cursor::{FeedCursor, Resume};
use super::error::ErrorBody;
use super::params::{self, StreamFilter, StreamIds, StreamParams};
use super::views::{DocumentSummary, StreamEvent};
use super::{ApiError, AppState};
use crate::document::{decode, Seq};
use crate::service::Service;

/// Events buffered between a stream's task and its client.
pub const STREAM_BUFFER_EVENTS: usize = 64;
/// Arrivals read from the store per step of a replay.
pub const REPLAY_PAGE: usize = 256;
/// Bytes of envelopes read from the store per step of a feed cursor's catch-up.
pub const CATCH_UP_PAGE_MAX_BYTES: usize = 4 << 20;
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

fn last_event_id(headers: &HeaderMap) -> Result<Option<Resume>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(v) => {
            let text = v.to_str().map_err(|_| ApiError::BadRequest("Last-Event-ID must be ASCII".into()))?;
            Resume::parse(text).map(Some)
        }
    }
}

#[utoipa::path(
    get, path = "/v1/stream", tag = "stream",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this position: an arrival number (this node only) or a feed cursor `feeds:ORG=SEQ,...` (any node)"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: one `document` event per newly stored matching document; `id` is the arrival number, or with `ids=feed` the feed cursor after it; `data` a StreamEvent", content_type = "text/event-stream", body = StreamEvent),
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
    let resume = match last_event_id(&headers)? {
        Some(r) => Some(r),
        None => p.after.as_deref().map(Resume::parse).transpose()?,
    };
    let slot = Slot::take(&state.streams)?;
    // Subscribe before reading the last arrival: a document stored in between then both
    // wakes the stream and lies after its cursor.
    let wake = state.service.subscribe();
    let service = state.service.clone();
    let last = tokio::task::spawn_blocking(move || service.store.last_arrival()).await?;
    let (cursor, feeds, catch_up) = match resume {
        Some(Resume::Arrival(after)) => (after, None, false),
        Some(Resume::Feeds(feeds)) => (last, Some(feeds), true),
        None if p.ids == Some(StreamIds::Feed) => {
            let service = state.service.clone();
            let publisher = filter.publisher.clone();
            let heads = tokio::task::spawn_blocking(move || service.store.heads()).await??;
            let mut feeds = FeedCursor::default();
            for (org, head) in heads.iter().filter(|(org, _)| publisher.as_ref().is_none_or(|p| p == org)) {
                feeds.advance(org, head.seq);
            }
            (last, Some(feeds), false)
        }
        None => (last, None, false),
    };
    let (tx, rx) = mpsc::channel::<Event>(STREAM_BUFFER_EVENTS);
    let task =
        StreamTask { service: state.service.clone(), filter, cursor, feeds, tx, shutdown: state.shutdown.clone() };
    let task = StreamStart { task, catch_up };
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

/// A stream's task before it starts: whether it first sends what a feed cursor has not seen.
struct StreamStart {
    task: StreamTask,
    catch_up: bool,
}

impl StreamStart {
    async fn run(self, wake: broadcast::Receiver<crate::service::StoredEvent>, slot: Slot) {
        let mut task = self.task;
        if self.catch_up {
            match task.catch_up().await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!("event stream ends: {e}");
                    return;
                }
            }
        }
        task.run(wake, slot).await
    }
}

/// An arrival number and the envelope stored under it (absent if truncated since).
type Arrived = (u64, Option<Vec<u8>>);

struct StreamTask {
    service: Arc<Service>,
    filter: StreamFilter,
    /// The last arrival number passed (sent or filtered out).
    cursor: u64,
    /// With feed ids: the feed positions passed. An arrival at or below its feed's position
    /// was sent already (by the catch-up) and is skipped.
    feeds: Option<FeedCursor>,
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
            let after = self.cursor;
            let page = tokio::task::spawn_blocking(move || -> Result<Vec<Arrived>, ApiError> {
                let mut out = Vec::new();
                for (arrival, id) in service.store.arrivals_after(after, REPLAY_PAGE)? {
                    out.push((arrival, service.store.get(&id)?));
                }
                Ok(out)
            })
            .await??;
            if page.is_empty() {
                return Ok(true);
            }
            for (arrival, bytes) in page {
                if let Some(bytes) = bytes {
                    if !self.pass(Some(arrival), &bytes).await {
                        return Ok(false);
                    }
                }
                self.cursor = arrival;
            }
        }
    }

    /// Sends, feed by feed, every entry past the feed cursor's positions that this node holds
    /// (the part a client resuming from another node has not seen). `Ok(false)`: stop.
    async fn catch_up(&mut self) -> Result<bool, ApiError> {
        let service = self.service.clone();
        let heads = tokio::task::spawn_blocking(move || service.store.heads()).await??;
        for (org, head) in heads {
            if self.filter.publisher.as_ref().is_some_and(|p| *p != org) {
                continue;
            }
            loop {
                let from = self.feeds.as_ref().map_or(Seq(0), |f| f.position(&org)).next();
                if from > head.seq {
                    break;
                }
                let service = self.service.clone();
                let feed = org.clone();
                let page = tokio::task::spawn_blocking(move || {
                    service.store.feed_range(&feed, from, REPLAY_PAGE, CATCH_UP_PAGE_MAX_BYTES)
                })
                .await??;
                if page.is_empty() {
                    break;
                }
                for bytes in page {
                    if !self.pass(None, &bytes).await {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    /// Passes one stored document: advances the feed cursor and sends it if it matches.
    /// `false`: stop (the client left or the server is shutting down).
    async fn pass(&mut self, arrival: Option<u64>, bytes: &[u8]) -> bool {
        let Ok(d) = decode(bytes) else { return true };
        if self.filter.publisher.as_ref().is_some_and(|p| *p != d.header.publisher) {
            return true; // its feed is not followed: the cursor names only the filtered one
        }
        let id = match &mut self.feeds {
            Some(feeds) => {
                if !feeds.advance(&d.header.publisher, d.header.seq) {
                    return true;
                }
                feeds.encode()
            }
            None => arrival.map(|a| a.to_string()).unwrap_or_default(),
        };
        if !self.filter.matches(&d.header) {
            return true;
        }
        let event = StreamEvent { arrival, document: DocumentSummary::of(&d) };
        let Ok(sse) = Event::default().id(id).event("document").json_data(&event) else { return true };
        tokio::select! {
            sent = self.tx.send(sse) => sent.is_ok(),
            _ = shut_down(&mut self.shutdown) => false,
        }
    }
}
