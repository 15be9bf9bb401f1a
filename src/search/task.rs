//! The indexing task: keeps the search index in step with the store, in arrival order.
//!
//! Why arrival order and not the events themselves: the store's arrival numbers are the
//! truth (the event channel may drop events when it is full); the events only wake the task.
//! So the queue between the node and the index is the bounded event channel
//! (`service::EVENTS_CAPACITY`), and whatever it drops is read back from the store. At start
//! the task catches up from the arrival the index's last commit records.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::{SearchError, SearchIndex, COMMIT_EVERY_DOCS, INDEX_DIR};
use crate::service::Service;

/// How often the task looks at the store even when no event woke it.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(5);
/// Longest a shutdown waits for the catch-up step in progress.
pub const SHUTDOWN_MAX: Duration = Duration::from_secs(10);

/// The running indexing task; the process that starts it watches [`SearchTask::failed`].
pub struct SearchTask {
    shutdown: watch::Sender<bool>,
    failure: watch::Receiver<Option<String>>,
    handle: tokio::task::JoinHandle<()>,
}

/// Opens `<node dir>/search`, gives it to the service (for the API) and starts the task that
/// keeps it in step. Call inside a tokio runtime.
pub fn start(service: Arc<Service>) -> Result<SearchTask, SearchError> {
    let index = Arc::new(SearchIndex::open(&service.dir.join(INDEX_DIR))?);
    service.set_search(index.clone());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (failure_tx, failure) = watch::channel(None);
    let events = service.subscribe();
    let handle = tokio::spawn(async move {
        let reason = match run(service, index, events, shutdown_rx).await {
            Ok(()) => return,
            Err(e) => format!("the search indexing task stopped: {e}"),
        };
        tracing::error!(%reason, "search index");
        let _ = failure_tx.send(Some(reason));
    });
    Ok(SearchTask { shutdown, failure, handle })
}

impl SearchTask {
    /// Resolves when the task stopped by itself, with why (it never resolves otherwise).
    pub fn failed(&self) -> impl Future<Output = String> + Send + 'static {
        crate::node::when_failed(self.failure.clone())
    }

    /// Stops the task after its current step (at most [`SHUTDOWN_MAX`], then it is left).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let mut handle = self.handle;
        if tokio::time::timeout(SHUTDOWN_MAX, &mut handle).await.is_err() {
            tracing::warn!(
                "the search indexing step did not end in time; it is abandoned (the index catches up at start)"
            );
            handle.abort();
        }
    }
}

async fn run(
    service: Arc<Service>,
    index: Arc<SearchIndex>,
    mut events: broadcast::Receiver<crate::service::StoredEvent>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), String> {
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        // Catch up in steps, so a shutdown is seen between two steps of a long rebuild.
        let (s, i) = (service.clone(), index.clone());
        let step = tokio::task::spawn_blocking(move || i.catch_up(&s.store, COMMIT_EVERY_DOCS))
            .await
            .map_err(|e| format!("the indexing step panicked: {e}"))?;
        match step {
            Ok(indexed) if indexed > 0 => continue,
            Ok(_) => {}
            Err(e) => {
                // The index is derived data: a step that failed (a full disk, an I/O error) is
                // tried again later from the last commit, and the node goes on without it;
                // answers say how far the index lags (`indexed_arrival`).
                tracing::warn!(error = %e, "search index: indexing step failed; retrying in {RECHECK_INTERVAL:?}");
                tokio::select! {
                    _ = shutdown.changed() => return Ok(()),
                    _ = tokio::time::sleep(RECHECK_INTERVAL) => {}
                }
                continue;
            }
        }
        // Caught up: what arrived meanwhile is in the store; drop the wake-ups it raised.
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = events.try_recv() {}
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = events.recv() => {}
            _ = index.woken() => {}
            _ = tokio::time::sleep(RECHECK_INTERVAL) => {}
        }
    }
}
