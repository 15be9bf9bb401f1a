//! Bearer-token access control.
//!
//! Why a token and not accounts: the API is bound to loopback by default and fronted by the
//! administration's own proxy when exposed; the token only separates "may publish" (and, where
//! configured, "may read") from "reached the port". Publishing always needs it, and so does
//! reading the sealed payload of an enforcement notice: it is for the notice's audience, not
//! for whoever reaches the port.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::config::HttpConfig;

/// Shortest token accepted from a token file: 16 bytes of entropy in hex.
pub const TOKEN_LEN_MIN: usize = 32;
/// Longest token accepted (and longest `Authorization` value compared).
pub const TOKEN_LEN_MAX: usize = 256;

/// Who may use the API.
#[derive(Clone)]
pub struct ApiAuth {
    token: String,
    read_requires_token: bool,
    rate: super::RateLimit,
}

impl std::fmt::Debug for ApiAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("ApiAuth").field("read_requires_token", &self.read_requires_token).finish_non_exhaustive()
    }
}

/// Why the API's access control cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the API token file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(
        "the API token in {path} must be {TOKEN_LEN_MIN}-{TOKEN_LEN_MAX} printable ASCII characters without spaces"
    )]
    BadToken { path: String },
}

impl ApiAuth {
    /// Access control with this token.
    pub fn new(token: &str, read_requires_token: bool) -> Result<ApiAuth, AuthError> {
        let token = token.trim();
        if !valid_token(token) {
            return Err(AuthError::BadToken { path: "(given)".into() });
        }
        Ok(ApiAuth { token: token.to_owned(), read_requires_token, rate: super::RateLimit::default() })
    }

    /// The same access with this per-client rate limit.
    pub fn with_rate_limit(self, rate: super::RateLimit) -> ApiAuth {
        ApiAuth { rate, ..self }
    }

    /// The per-client rate limit.
    pub fn rate_limit(&self) -> super::RateLimit {
        self.rate
    }

    /// Reads the token from `http.token_file` (relative to the node directory).
    pub fn from_config(node_dir: &Path, http: &HttpConfig) -> Result<ApiAuth, AuthError> {
        let path = node_dir.join(&http.token_file);
        let text = std::fs::read_to_string(&path)
            .map_err(|source| AuthError::Read { path: path.display().to_string(), source })?;
        let token = text.trim();
        if !valid_token(token) {
            return Err(AuthError::BadToken { path: path.display().to_string() });
        }
        Ok(ApiAuth {
            token: token.to_owned(),
            read_requires_token: http.read_requires_token,
            rate: super::RateLimit { per_second: http.rate_limit_per_second, burst: http.rate_limit_burst },
        })
    }

    /// Whether an `Authorization` header value carries the token. The scheme is matched
    /// without regard to case and may be followed by several spaces (RFC 7235 §2.1).
    pub(super) fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else { return false };
        let Some((scheme, rest)) = value.split_at_checked(b"Bearer".len()) else { return false };
        if !scheme.eq_ignore_ascii_case(b"Bearer") || !rest.starts_with(b" ") {
            return false;
        }
        let presented = rest.trim_ascii();
        presented.len() <= TOKEN_LEN_MAX && constant_time_eq(presented, self.token.as_bytes())
    }
}

fn valid_token(token: &str) -> bool {
    (TOKEN_LEN_MIN..=TOKEN_LEN_MAX).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Compares without an early exit, so response time does not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware on `/v1`: writes and sealed payloads always need the token, other reads only
/// when configured so.
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let is_read = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // The OpenAPI document describes the API and holds no data: always readable.
    let is_doc = request.uri().path().ends_with("/openapi.json");
    let is_sealed = request.uri().path().ends_with("/payload");
    let needs = !is_read || is_sealed || (state.auth.read_requires_token && !is_doc);
    if needs && !state.auth.accepts(request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes())) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_token_is_accepted() {
        let auth = ApiAuth::new(&"ab".repeat(32), false).unwrap();
        let good = format!("Bearer {}", "ab".repeat(32));
        assert!(auth.accepts(Some(good.as_bytes())));
        for scheme in ["bearer", "BEARER", "beArer"] {
            assert!(auth.accepts(Some(format!("{scheme} {}", "ab".repeat(32)).as_bytes())), "{scheme}");
        }
        assert!(auth.accepts(Some(format!("Bearer   {}", "ab".repeat(32)).as_bytes())));
        assert!(!auth.accepts(Some(format!("Bearer{}", "ab".repeat(32)).as_bytes())));
        assert!(!auth.accepts(Some(format!("Bearerx {}", "ab".repeat(32)).as_bytes())));
        assert!(!auth.accepts(None));
        assert!(!auth.accepts(Some(b"Bearer ")));
        assert!(!auth.accepts(Some(format!("Basic {}", "ab".repeat(32)).as_bytes())));
        assert!(!auth.accepts(Some(format!("Bearer {}", "ab".repeat(31)).as_bytes())));
        assert!(ApiAuth::new("short", false).is_err());
    }
}
