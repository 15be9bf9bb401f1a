//! Operations: `/healthz` (the process answers) and `/readyz` (the store opens and answers);
//! `/metrics` is [`super::metrics`].

use axum::extract::State;
use axum::Json;
use serde_json::json;

use super::{ApiError, AppState};

/// The process is up (no store access: a liveness probe must not fail on a slow disk).
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The store opens and answers a read, and replication, where this process runs it, runs.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    if let crate::service::Replication::Stopped(why) = state.service.replication() {
        return Err(ApiError::NotReplicating(why));
    }
    let service = state.service.clone();
    let feeds = tokio::task::spawn_blocking(move || service.store.heads().map(|h| h.len()))
        .await?
        .map_err(|e| ApiError::Store(format!("store not ready: {e}")))?;
    Ok(Json(json!({ "status": "ready", "feeds": feeds, "network": state.service.network_name })))
}
