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
use crate::charter::{Member, Role};
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
    /// The member organizations of the version in force, in charter order.
    pub members: Vec<MemberView>,
}

/// A member organization as the charter in force lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub id: String,
    pub name: String,
    /// `secretariat`, `customs`, `rilo` or `observer`.
    pub role: String,
    /// ISO 3166-1 alpha-2 code, for national administrations.
    pub country: Option<String>,
    /// WCO region code (`EU`, `AP`, …).
    pub region: Option<String>,
    /// Signing keys listed (revoked ones included).
    pub keys: usize,
    /// Document types it may publish.
    pub types: Vec<String>,
}

impl MemberView {
    fn of(m: &Member) -> MemberView {
        MemberView {
            id: m.id.to_string(),
            name: m.name.clone(),
            role: role_name(m.role),
            country: m.country.clone(),
            region: m.region.clone(),
            keys: m.keys.len(),
            types: m.permissions.iter().map(|p| p.doc_type.to_string()).collect(),
        }
    }
}

fn role_name(role: Role) -> String {
    serde_json::to_value(role).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// An organization this node trusts, by its code.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: String,
    /// Its name, from the charter in force or the keyring.
    pub name: String,
    /// Its role in the charter (absent off a charter network).
    pub role: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
}

/// Every organization this node trusts.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationList {
    /// By id.
    pub organizations: Vec<OrganizationView>,
}

#[utoipa::path(
    get, path = "/v1/organizations", tag = "network",
    responses((status = 200, description = "The organizations this node trusts, with their names", body = OrganizationList))
)]
/// The organizations whose documents this node accepts: code, name and, on a charter network,
/// role, country and region (to show a publisher's name beside its code).
pub async fn organizations(State(state): State<AppState>) -> Json<OrganizationList> {
    let keyring = state.service.keyring();
    let members = keyring.charter().map(|c| c.latest().charter.organizations.clone()).unwrap_or_default();
    let organizations = keyring
        .organizations()
        .map(|o| {
            let m = members.iter().find(|m| m.id == o.id);
            OrganizationView {
                id: o.id.to_string(),
                name: o.name.clone(),
                role: m.map(|m| role_name(m.role)),
                country: m.and_then(|m| m.country.clone()),
                region: m.and_then(|m| m.region.clone()),
            }
        })
        .collect();
    Json(OrganizationList { organizations })
}

impl CharterView {
    fn of(c: CharterInfo, members: &[Member]) -> CharterView {
        CharterView {
            genesis: c.genesis,
            version: c.version,
            hash: c.hash,
            expires: c.expires,
            state: c.state.into(),
            seconds_left: c.seconds_left,
            organizations: c.organizations,
            members: members.iter().map(MemberView::of).collect(),
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
    let keyring = state.service.keyring();
    let members = keyring.charter().map(|c| c.latest().charter.organizations.clone()).unwrap_or_default();
    Ok(Json(CharterView::of(info, &members)))
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
