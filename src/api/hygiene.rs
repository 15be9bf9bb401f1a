//! What every request passes before and after its handler: methods no route serves are
//! refused before access control (a `TRACE` is a 405, not a 401), each client address is rate
//! limited unless the request carries the node's token, a request body must arrive within [`BODY_READ_TIMEOUT`], and an error answered
//! below the handlers (a framework rejection such as axum's plain-text 413) leaves as the one
//! JSON error shape.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};

use super::ratelimit::Verdict;
use super::{ApiError, AppState};

/// Longest time a request body may take to arrive, counted from the end of its head. 1 MiB
/// (the largest body) in this time is about 70 KB/s, far below any link an API client uses.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Most bytes of a framework rejection's text kept as the JSON error's message.
const REJECTION_TEXT_MAX_BYTES: usize = 1024;

/// The client's address, put on each request by the connection loop (`server.rs`).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// The middleware around the whole router.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !matches!(*request.method(), Method::GET | Method::HEAD | Method::POST | Method::OPTIONS) {
        let mut response = ApiError::MethodNotAllowed(request.method().to_string()).into_response();
        response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return response;
    }
    // The node's own systems hold its token and are not limited: the limit keeps one runaway
    // reader from starving the others, and the token holder may already do everything.
    let holds_token = state.auth.accepts(request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()));
    if let Some(ClientAddr(addr)) = request.extensions().get::<ClientAddr>().copied().filter(|_| !holds_token) {
        let mut limiter = state.limiter.lock().unwrap_or_else(|p| p.into_inner());
        if let Verdict::Deny { retry_after_secs } = limiter.check(addr.ip(), Instant::now()) {
            let limit = limiter.limit();
            return ApiError::RateLimited { per_second: limit.per_second, burst: limit.burst, retry_after_secs }
                .into_response();
        }
    }
    let expired = Arc::new(AtomicBool::new(false));
    let request = if http_body::Body::is_end_stream(request.body()) {
        request
    } else {
        let flag = expired.clone();
        request.map(|body| Body::new(Deadline::new(body, BODY_READ_TIMEOUT, flag)))
    };
    let response = next.run(request).await;
    if expired.load(Ordering::Acquire) {
        return ApiError::BodyTimeout.into_response();
    }
    as_json_error(response).await
}

/// A non-JSON error response re-shaped as `{"error": {"code", "message"}}`, keeping its status
/// and its text as the message.
async fn as_json_error(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, REJECTION_TEXT_MAX_BYTES).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::Other { status, code: "body_too_large", message: text },
        StatusCode::METHOD_NOT_ALLOWED => ApiError::Other { status, code: "method_not_allowed", message: text },
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::Other { status, code: "unsupported_media_type", message: text },
        s if s.is_server_error() => ApiError::Other { status, code: "server_error", message: text },
        _ => ApiError::Other { status, code: "bad_request", message: text },
    };
    let mut out = error.into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// A request body that fails once its deadline passes, and says so through `expired`.
struct Deadline {
    inner: Body,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
}

impl Deadline {
    fn new(inner: Body, timeout: Duration, expired: Arc<AtomicBool>) -> Deadline {
        Deadline { inner, sleep: Box::pin(tokio::time::sleep(timeout)), expired }
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(format!(
                "request body not received within {BODY_READ_TIMEOUT:?}"
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
