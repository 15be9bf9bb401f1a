//! Administration of a running node: `POST /v1/admin/backup`.
//!
//! A running node holds RocksDB's lock, so the command line cannot checkpoint it; the node
//! itself does, with the same code as `entrepot backup` (`store::backup`), while it keeps
//! serving. The target must lie in the node directory's `backups/` folder: a token holder
//! can make the node write, but only there.

use std::path::{Path, PathBuf};

use axum::extract::{rejection::JsonRejection, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};

/// Request body of a backup.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupRequest {
    /// Directory to create, inside `<node dir>/backups/` (absolute, or relative to that folder).
    pub out: String,
}

/// Largest backup request body: `{"out": NAME}` with a name of at most [`OUT_MAX_BYTES`].
pub const REQUEST_MAX_BYTES: usize = 4096;
/// Longest `out`.
const OUT_MAX_BYTES: usize = 256;
/// Most folders in `out` (e.g. `2026/11/27`).
const OUT_DEPTH_MAX: usize = 4;
/// Longest folder name in `out`.
const NAME_MAX_BYTES: usize = 64;

/// A folder name an operator can type, list and pass to a shell without quoting: ASCII
/// letters, digits, `.`, `_` and `-`, not starting with `.` or `-`.
fn plain_name(name: &str) -> bool {
    (1..=NAME_MAX_BYTES).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !name.starts_with(['.', '-'])
}

/// Resolves `out` to a new directory inside `<node dir>/backups/`.
fn backup_target(node_dir: &Path, out: &str) -> Result<PathBuf, ApiError> {
    let root = node_dir.join("backups");
    let given = Path::new(out);
    let relative = if given.is_absolute() {
        given.strip_prefix(&root).map_err(|_| {
            ApiError::BadRequest(format!("out must be inside {} (the node's backups folder)", root.display()))
        })?
    } else {
        given
    };
    // Split the text, not the path: `Path::components` would quietly drop `a/./b`'s dot.
    let names: Vec<&str> = relative.to_str().map(|r| r.split('/').collect()).unwrap_or_default();
    let plain = names.iter().all(|n| plain_name(n));
    if out.is_empty() || out.len() > OUT_MAX_BYTES || !plain || names.is_empty() || names.len() > OUT_DEPTH_MAX {
        return Err(ApiError::BadRequest(format!(
            "out must name a new directory inside the backups folder: at most {OUT_DEPTH_MAX} folder names of \
             1-{NAME_MAX_BYTES} letters, digits, '.', '_' or '-' (not starting with '.' or '-'), separated by '/'"
        )));
    }
    Ok(root.join(relative))
}

#[utoipa::path(
    post,
    path = "/v1/admin/backup",
    tag = "operations",
    request_body = BackupRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The checkpoint's manifest: feed heads, document count, versions", body = serde_json::Value),
        (status = 400, description = "Bad target", body = super::error::ErrorBody),
        (status = 401, description = "Missing or wrong token", body = super::error::ErrorBody),
        (status = 413, description = "Request body over 4096 bytes", body = super::error::ErrorBody),
    )
)]
/// Checkpoint the running node's store into `<node dir>/backups/OUT` (needs the bearer token).
pub async fn backup(
    State(state): State<AppState>,
    body: Result<Json<BackupRequest>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Json(request) = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge { max_bytes: REQUEST_MAX_BYTES },
        _ => ApiError::BadRequest(e.body_text()),
    })?;
    let target = backup_target(&state.service.dir, &request.out)?;
    let service = state.service.clone();
    let manifest = tokio::task::spawn_blocking(move || {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| ApiError::Store(format!("{}: {e}", parent.display())))?;
        }
        crate::store::backup::backup(&service.store, &target).map_err(|e| match e {
            crate::store::backup::BackupError::OutNotEmpty(p) => {
                ApiError::BadRequest(format!("{} exists and is not empty", p.display()))
            }
            other => ApiError::Store(other.to_string()),
        })
    })
    .await??;
    Ok(Json(serde_json::to_value(manifest).map_err(|e| ApiError::Store(e.to_string()))?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backups_stay_inside_the_backups_folder() {
        let dir = Path::new("/var/lib/entrepot");
        assert_eq!(backup_target(dir, "2026-11-27").unwrap(), dir.join("backups/2026-11-27"));
        assert_eq!(backup_target(dir, "/var/lib/entrepot/backups/a").unwrap(), dir.join("backups/a"));
        assert_eq!(backup_target(dir, "2026/11/27_a-b.1").unwrap(), dir.join("backups/2026/11/27_a-b.1"));
        let long = "a".repeat(65);
        for bad in [
            "",
            "../x",
            "/tmp/x",
            "/var/lib/entrepot/db",
            "a/../../x",
            "/var/lib/entrepot/backups",
            "a\nb;rm -rf x",
            "a b",
            ".hidden",
            "-rf",
            "a/./b",
            "é",
            "a/b/c/d/e",
            long.as_str(),
        ] {
            assert!(backup_target(dir, bad).is_err(), "{bad}");
        }
    }
}
