//! The connection loop: HTTP/1.1 on a TCP listener, with the bounds `axum::serve` leaves open.
//!
//! Why not `axum::serve`: it sets no timer on hyper, so a client that sends half a request
//! head and waits holds a connection (and its task) forever, and it accepts any number of
//! connections. Here the request head must arrive within [`HEADER_READ_TIMEOUT`], at most
//! [`CONNECTIONS_MAX`] connections are served at once (further clients wait in the kernel's
//! accept queue), and a shutdown waits at most [`SHUTDOWN_GRACE`] for requests in flight.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Time a client has to send a request head once it starts one (or after connecting).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; event streams count, and have their own lower bound.
pub const CONNECTIONS_MAX: usize = 512;
/// Longest wait for requests in flight at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` completes, then calls `on_shutdown` (which ends
/// event streams) and waits, bounded, for the connections to finish.
pub async fn run(
    app: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    on_shutdown: impl FnOnce(),
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.map_err(std::io::Error::other)?,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("http: accept failed: {e}");
                    tokio::time::sleep(ACCEPT_RETRY).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Small responses and event frames should leave at once.
        let _ = stream.set_nodelay(true);
        // Each request carries its client's address, for the per-client rate limit.
        let service =
            tower::ServiceExt::map_request(app.clone(), move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(super::hygiene::ClientAddr(peer));
                request
            });
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            // A client that goes away or times out is not an error of the node.
            if let Err(e) = connection.await {
                tracing::debug!("http: connection ended: {e}");
            }
        });
    }
    drop(listener);
    on_shutdown();
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("http: connections still open after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    Ok(())
}
