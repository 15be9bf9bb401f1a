//! `GET /v1/charter` (the charter in force and how close it is to expiry) and
//! `POST /v1/admin/charter` (put a new version in force on a running node; it then reaches
//! every peer through sync, docs/PROTOCOL.md §10.5).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::service::{CharterApplied, CharterInfo};

/// The charter in force.
#[derive(Debug, Serialize, ToSchema)]
pub struct CharterView {
    /// The pinned genesis hash (also the network id).
    pub genesis: String,
    pub version: u32,
    /// SHA-256 of the version's body.
    pub hash: String,
    /// RFC 3339 expiry.
    pub expires: String,
    /// `valid`, `expiring_soon` (within 30 days: publish the next version) or `expired`
    /// (no document is accepted until a newer version is in force).
    pub state: String,
    /// Seconds until expiry; negative once expired.
    pub seconds_left: i64,
    pub organizations: usize,
}

impl From<CharterInfo> for CharterView {
    fn from(c: CharterInfo) -> CharterView {
        CharterView {
            genesis: c.genesis,
            version: c.version,
            hash: c.hash,
            expires: c.expires,
            state: c.state.into(),
            seconds_left: c.seconds_left,
            organizations: c.organizations,
        }
    }
}

/// What a charter submission did.
#[derive(Debug, Serialize, ToSchema)]
pub struct CharterAppliedView {
    /// Version in force before.
    pub from: u32,
    /// Version in force now (equal to `from` when the file was already in force).
    pub to: u32,
}

#[utoipa::path(
    get, path = "/v1/charter", tag = "network",
    responses(
        (status = 200, description = "The charter in force", body = CharterView),
        (status = 404, description = "This node is not on a charter network", body = super::error::ErrorBody),
    )
)]
/// The charter version in force, its hash and its expiry state.
pub async fn show(State(state): State<AppState>) -> Result<Json<CharterView>, ApiError> {
    let info = state.service.charter_info().ok_or_else(not_charter)?;
    Ok(Json(info.into()))
}

fn not_charter() -> ApiError {
    ApiError::NotFound("this node is not on a charter network (no [charter] in its configuration)".into())
}

#[utoipa::path(
    post, path = "/v1/admin/charter", tag = "operations",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A charter file (docs/PROTOCOL.md §10.1), signed by enough root keys"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The version is in force (or already was)", body = CharterAppliedView),
        (status = 401, description = "Missing or wrong token", body = super::error::ErrorBody),
        (status = 404, description = "This node is not on a charter network", body = super::error::ErrorBody),
        (status = 413, description = "Larger than a charter file may be", body = super::error::ErrorBody),
        (status = 422, description = "Not a charter, or not the next valid version (code says why: too_few_signatures, charter_version_gap, ...)", body = super::error::ErrorBody),
    )
)]
/// Puts the next charter version in force on this node; peers pull it from here.
pub async fn apply(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CharterAppliedView>, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::BodyTooLarge { max_bytes: crate::sync::wire::CHARTER_FILE_MAX_BYTES }
        }
        _ => ApiError::BadRequest(e.body_text()),
    })?;
    let service = state.service.clone();
    let applied = tokio::task::spawn_blocking(move || service.apply_charter_files(&[body.to_vec()])).await?;
    match applied {
        Ok(CharterApplied::Applied { from, to }) => Ok(Json(CharterAppliedView { from, to })),
        Ok(CharterApplied::Unchanged { version }) => Ok(Json(CharterAppliedView { from: version, to: version })),
        Err(crate::service::TrustError::NotCharterNetwork) => Err(not_charter()),
        Err(crate::service::TrustError::Write { version, path, source }) => {
            Err(ApiError::Store(format!("cannot keep charter version {version} in {path}: {source}")))
        }
        Err(e) => Err(ApiError::Invalid { code: e.code(), message: e.to_string() }),
    }
}
