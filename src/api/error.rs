//! The one error type every handler returns, and its JSON shape.
//!
//! Why one enum: a client (a tariff system, the web page) branches on a stable `code`, and the
//! status is decided in one place, so bad input can never fall through to a 500. Only a store
//! failure (disk, corruption) is a 5xx, and its message names the cause without internals.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::publish::PublishError;
use crate::service::ServiceError;
use crate::store::{QueryError, StoreError};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("query string is longer than {} bytes", super::QUERY_STRING_MAX_BYTES)]
    QueryTooLong,
    #[error("request body is larger than {max_bytes} bytes, the most this endpoint accepts")]
    BodyTooLarge { max_bytes: usize },
    #[error("the request body did not arrive within {} seconds; send it whole, at once", super::hygiene::BODY_READ_TIMEOUT.as_secs())]
    BodyTimeout,
    #[error("too many requests from this client (at most {per_second} a second, bursts of {burst}); retry after {retry_after_secs} s")]
    RateLimited { per_second: u32, burst: u32, retry_after_secs: u64 },
    /// An error answered below the handlers (a framework rejection), re-shaped as JSON.
    #[error("{message}")]
    Other { status: StatusCode, code: &'static str, message: String },
    #[error("missing or wrong bearer token: send `Authorization: Bearer TOKEN` with the token from the node's http.token_file")]
    Unauthorized,
    #[error("this node is a read replica: it has no signing key and cannot publish")]
    ReadReplica,
    #[error("{0}")]
    NotFound(String),
    /// A 404 with its own code, where "not found" needs saying why (a payload not held).
    #[error("{message}")]
    Absent { code: &'static str, message: String },
    #[error("method {0} is not allowed on this path; see /v1/openapi.json")]
    MethodNotAllowed(String),
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("the feed moved while publishing: {0}; retry")]
    Conflict(String),
    /// A 409 with its own code: what the request would make exists already.
    #[error("{message}")]
    Taken { code: &'static str, message: String },
    #[error("too many open event streams (at most {}); retry later", super::STREAMS_MAX)]
    TooManyStreams,
    #[error("the store failed: {0}")]
    Store(String),
    #[error("the server is shutting down or overloaded; retry")]
    Unavailable,
    #[error("replication stopped: {0}; the node is stopping (see its log)")]
    NotReplicating(String),
}

impl ApiError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::QueryTooLong => "query_too_long",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Other { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::ReadReplica => "read_replica",
            ApiError::NotFound(_) => "not_found",
            ApiError::Absent { code, .. } => code,
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Invalid { code, .. } => code,
            ApiError::Conflict(_) => "conflict",
            ApiError::Taken { code, .. } => code,
            ApiError::TooManyStreams => "too_many_streams",
            ApiError::Store(_) => "store_error",
            ApiError::Unavailable => "unavailable",
            ApiError::NotReplicating(_) => "not_replicating",
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::QueryTooLong => StatusCode::URI_TOO_LONG,
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Other { status, .. } => *status,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::ReadReplica => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::Absent { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Conflict(_) | ApiError::Taken { .. } => StatusCode::CONFLICT,
            ApiError::TooManyStreams => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable | ApiError::NotReplicating(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable code to branch on and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `bad_request`, `not_found`, `schema_invalid`.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Store(reason) = &self {
            tracing::error!("http api: store failure: {reason}");
        }
        let status = self.status();
        let retry_after = match &self {
            ApiError::RateLimited { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        };
        let closes = matches!(self, ApiError::BodyTimeout);
        let body = ErrorBody { error: ErrorDetail { code: self.code().to_owned(), message: self.to_string() } };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if closes {
            // The rest of the body may still trickle in: the connection is not reusable.
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Store(e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Store(e) => e.into(),
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::ReadReplica => ApiError::ReadReplica,
            ServiceError::Store(e) => e.into(),
            ServiceError::Publish(PublishError::Store(e)) => e.into(),
            ServiceError::Publish(PublishError::Raced(org)) => ApiError::Conflict(org.to_string()),
            ServiceError::Publish(e @ PublishError::NaturalKeyTaken { .. }) => {
                ApiError::Taken { code: "natural_key_taken", message: e.to_string() }
            }
            ServiceError::Publish(e @ PublishError::Integrity(_)) => {
                ApiError::Invalid { code: e.integrity_code().unwrap_or("integrity"), message: e.to_string() }
            }
            e @ ServiceError::IdempotencyKeyReused(_) => {
                ApiError::Invalid { code: "idempotency_key_reused", message: e.to_string() }
            }
            ServiceError::Publish(PublishError::Body(e)) => {
                ApiError::Invalid { code: e.code(), message: e.to_string() }
            }
            ServiceError::Publish(PublishError::Refused(e)) => {
                ApiError::Invalid { code: e.code(), message: e.to_string() }
            }
            ServiceError::Publish(PublishError::Build(e)) => {
                ApiError::Invalid { code: "body_field_invalid", message: e.to_string() }
            }
            ServiceError::Publish(PublishError::Notice(e)) | ServiceError::Notice(e) => {
                ApiError::Invalid { code: e.code(), message: e.to_string() }
            }
            ServiceError::NotHeld(id) => ApiError::NotFound(format!("this node holds no document {id}")),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(_: tokio::task::JoinError) -> Self {
        // A blocking task that panicked or was cancelled at shutdown: nothing the client did.
        ApiError::Unavailable
    }
}

/// The fallback for paths that name nothing.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!("no such endpoint: {}; see /v1/openapi.json", uri.path()))
}

/// The fallback for a known path with a method it does not serve.
pub async fn method_not_allowed(method: axum::http::Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}
