//! The HTTP face of a node: the JSON API under `/v1`, the live event stream, the OpenAPI
//! document, the HS tracker, the web page at `/`, and the operations endpoints.
//!
//! Why a module of its own: the API is a *reader* of the store and a *caller* of
//! [`Service`]; it never writes to RocksDB itself and never builds or verifies envelopes by
//! hand, so every document it stores goes through `Service::publish` (the ingest pipeline).
//! It knows nothing of the command line: [`serve`] takes a listener and a shutdown future, so
//! `entrepot serve` (an air-gapped replica fed by bundles) and `entrepot run` (beside libp2p)
//! both call it.
//!
//! Every request is bounded: query strings ([`QUERY_STRING_MAX_BYTES`]), request bodies
//! ([`BODY_MAX_BYTES`]), page sizes (`store::QUERY_LIMIT_MAX`), concurrent event streams
//! ([`STREAMS_MAX`]) and the work one HS tracker request may do. Bad input of any kind gets a
//! 4xx with a JSON body `{"error": {"code", "message"}}` (see [`error`]), never a 500.

mod admin;
mod analytics;
mod auth;
mod charter;
mod cursor;
mod documents;
mod error;
mod hs;
mod hygiene;
mod lifecycle;
mod metrics;
mod metrics_http;
mod network;
mod openapi;
mod openapi_tighten;
mod ops;
mod params;
mod process;
mod ratelimit;
mod search;
mod server;
mod stream;
mod tlog;
pub mod transposition;
mod views;
mod web;

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

pub use auth::{ApiAuth, AuthError};
pub use error::ApiError;
pub use hygiene::BODY_READ_TIMEOUT;
pub use openapi::openapi_json;
pub use ratelimit::{RateLimit, Verdict as RateVerdict};
pub use server::{CONNECTIONS_MAX, HEADER_READ_TIMEOUT, SHUTDOWN_GRACE};

use crate::service::Service;

/// Largest request body (a document body for publishing): the envelope bound, 1 MiB.
pub const BODY_MAX_BYTES: usize = crate::document::DOCUMENT_SIZE_MAX_BYTES;
/// Longest query string accepted; filters are short, so anything longer is a mistake or abuse.
pub const QUERY_STRING_MAX_BYTES: usize = 2048;
/// Most event streams served at once; each holds a task and a store cursor.
pub const STREAMS_MAX: usize = 64;

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AppState {
    pub service: Arc<Service>,
    pub auth: Arc<ApiAuth>,
    /// Open event streams, against [`STREAMS_MAX`].
    pub streams: Arc<AtomicUsize>,
    /// Flips to `true` when the server shuts down, so event streams end and the graceful
    /// shutdown does not wait forever on connections that never close by themselves.
    pub shutdown: watch::Receiver<bool>,
    /// Per-client request budgets (`[http] rate_limit_per_second`, `rate_limit_burst`).
    pub limiter: Arc<Mutex<ratelimit::Limiter>>,
    /// HTTP request counts and latencies, for `/metrics`.
    pub http: metrics_http::HttpMetrics,
}

/// The whole HTTP surface of a node as an axum router.
pub fn router(service: Arc<Service>, auth: ApiAuth) -> Router {
    // A router made without `serve` has no shutdown signal (the sender is dropped at once,
    // which streams read as "never"); its streams end with their clients.
    let (_, rx) = watch::channel(false);
    build(service, auth, rx)
}

fn build(service: Arc<Service>, auth: ApiAuth, shutdown: watch::Receiver<bool>) -> Router {
    let limiter = Arc::new(Mutex::new(ratelimit::Limiter::new(auth.rate_limit())));
    let state = AppState {
        service,
        auth: Arc::new(auth),
        streams: Arc::new(AtomicUsize::new(0)),
        shutdown,
        limiter,
        http: metrics_http::HttpMetrics::new(),
    };
    let v1 = Router::new()
        .route("/documents", get(documents::list).post(documents::publish))
        .route("/documents/{id}", get(documents::get_one))
        .route("/documents/{id}/raw", get(documents::raw))
        .route("/documents/{id}/payload", get(documents::payload))
        .route("/feeds", get(network::feeds))
        .route("/peers", get(network::peers))
        .route("/forks", get(network::forks))
        .route("/documents/{id}/proof", get(tlog::inclusion))
        .route("/documents/{id}/receipts", get(tlog::receipts))
        .route("/feeds/{org}/consistency", get(tlog::consistency))
        .route("/feeds/{org}/tlog/checkpoint", get(tlog::checkpoint))
        .route("/feeds/{org}/tlog/tile/{*path}", get(tlog::tile))
        .route("/checkpoint-forks", get(tlog::checkpoint_forks))
        .route("/stream", get(stream::stream))
        .route("/hs/changes", get(hs::changes))
        .route("/hs/editions", get(hs::editions))
        .route("/transposition/workbench", axum::routing::post(transposition::workbench_route))
        .route("/transposition/progress", get(transposition::progress_route))
        .route("/analytics/counts", get(analytics::counts))
        .route("/analytics/impact", get(analytics::impact))
        .route("/search", get(search::search))
        .route("/documents/{id}/similar", get(search::similar))
        .route("/divergences", get(search::divergences))
        .route("/admin/search/rebuild", axum::routing::post(search::rebuild))
        .route("/hs/{edition}/{code}", get(hs::tracker))
        .route("/openapi.json", get(openapi::serve_openapi))
        .route(
            "/admin/backup",
            axum::routing::post(admin::backup).layer(DefaultBodyLimit::max(admin::REQUEST_MAX_BYTES)),
        )
        .route("/charter", get(charter::show))
        .route("/organizations", get(charter::organizations))
        .route(
            "/admin/charter",
            axum::routing::post(charter::apply).layer(DefaultBodyLimit::max(crate::sync::wire::CHARTER_FILE_MAX_BYTES)),
        )
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(metrics::metrics))
        .merge(web::routes())
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_MAX_BYTES))
        .layer(middleware::from_fn(bound_query_string))
        .layer(middleware::from_fn_with_state(state.clone(), hygiene::guard))
        // Compresses what the client accepts (gzip), except event streams and tiny answers.
        .layer(tower_http::compression::CompressionLayer::new())
        // Outermost, so that every answer is counted, whatever layer gave it.
        .layer(middleware::from_fn_with_state(state.clone(), metrics_http::track))
        .with_state(state)
}

/// Refuses over-long query strings before any extractor parses them.
async fn bound_query_string(request: Request, next: Next) -> Response {
    if request.uri().query().is_some_and(|q| q.len() > QUERY_STRING_MAX_BYTES) {
        return ApiError::QueryTooLong.into_response();
    }
    next.run(request).await
}

/// Serves the router on `listener` until `shutdown` completes, then ends event streams and
/// waits (at most `server::SHUTDOWN_GRACE`) for requests in flight.
pub async fn serve(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
    auth: ApiAuth,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = watch::channel(false);
    let app = build(service, auth, rx);
    server::run(app, listener, shutdown, move || {
        // Receivers may all be gone already; nothing to tell then.
        let _ = tx.send(true);
    })
    .await
}
