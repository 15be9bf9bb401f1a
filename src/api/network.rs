//! `/v1/feeds`, `/v1/peers`, `/v1/forks`: what this node holds and how it stands in the network.
//!
//! Why lag is computed here: the network engine only records what peers announce
//! ([`crate::service::PeerView`]); comparing that with our own heads is a read-side concern,
//! shared by this endpoint, the metrics and the web page.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::Json;

use super::error::ErrorBody;
use super::views::{BanEntry, FeedHead, FeedList, ForkEntry, ForkList, LagEntry, PeerEntry, PeersView};
use super::{ApiError, AppState};
use crate::document::OrgId;
use crate::service::Service;

#[utoipa::path(
    get, path = "/v1/feeds", tag = "network",
    responses(
        (status = 200, description = "Every feed's head", body = FeedList),
        (status = 500, description = "The store failed", body = ErrorBody),
    )
)]
/// Every feed this node holds, with its head.
pub async fn feeds(State(state): State<AppState>) -> Result<Json<FeedList>, ApiError> {
    let service = state.service.clone();
    let list = tokio::task::spawn_blocking(move || -> Result<FeedList, ApiError> {
        let frozen: BTreeSet<OrgId> =
            service.store.forks()?.into_iter().filter(|f| !f.resolved).map(|f| f.publisher).collect();
        let feeds = service
            .store
            .heads()?
            .into_iter()
            .map(|(org, head)| FeedHead {
                frozen: frozen.contains(&org),
                publisher: org.to_string(),
                seq: head.seq.0,
                id: head.id.to_hex(),
            })
            .collect();
        Ok(FeedList { feeds })
    })
    .await??;
    Ok(Json(list))
}

/// Per publisher: our head, the best announced head and the difference.
pub(crate) fn lag(service: &Service) -> Result<Vec<LagEntry>, ApiError> {
    let best = service.peers.read().unwrap_or_else(|p| p.into_inner()).best_heads();
    let mut local: BTreeMap<OrgId, u64> =
        service.store.heads()?.into_iter().map(|(org, head)| (org, head.seq.0)).collect();
    for org in best.keys() {
        local.entry(org.clone()).or_insert(0);
    }
    Ok(local
        .into_iter()
        .map(|(org, local_seq)| {
            let best_announced_seq = best.get(&org).map_or(0, |s| s.0);
            LagEntry {
                publisher: org.to_string(),
                local_seq,
                best_announced_seq,
                lag: best_announced_seq.saturating_sub(local_seq),
            }
        })
        .collect())
}

#[utoipa::path(
    get, path = "/v1/peers", tag = "network",
    responses(
        (status = 200, description = "Connected peers and our lag per publisher", body = PeersView),
        (status = 500, description = "The store failed", body = ErrorBody),
    )
)]
/// Connected peers, their announced heads, and how far behind them this node is.
pub async fn peers(State(state): State<AppState>) -> Result<Json<PeersView>, ApiError> {
    let service = state.service.clone();
    let view = tokio::task::spawn_blocking(move || -> Result<PeersView, ApiError> {
        let lag = lag(&service)?;
        let pv = service.peers.read().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(PeersView {
            local_peer_id: pv.local_peer_id,
            listen_addresses: pv.listen_addresses,
            peers: pv
                .peers
                .into_iter()
                .map(|p| PeerEntry {
                    heads: serde_json::to_value(&p.heads).unwrap_or_default(),
                    peer_id: p.peer_id,
                    address: p.address,
                    organization: p.organization.map(|o| o.to_string()),
                    admitted: p.admitted,
                    penalty_points: p.penalty_points,
                })
                .collect(),
            lag,
            banned: pv
                .banned
                .into_iter()
                .map(|b| BanEntry { peer_id: b.peer_id, offense: b.offense, seconds_left: b.seconds_left })
                .collect(),
        })
    })
    .await??;
    Ok(Json(view))
}

#[utoipa::path(
    get, path = "/v1/forks", tag = "network",
    responses(
        (status = 200, description = "Every recorded fork", body = ForkList),
        (status = 500, description = "The store failed", body = ErrorBody),
    )
)]
/// Recorded forks: portable evidence that a publisher signed two histories.
pub async fn forks(State(state): State<AppState>) -> Result<Json<ForkList>, ApiError> {
    let service = state.service.clone();
    let forks = tokio::task::spawn_blocking(move || service.store.forks()).await??;
    Ok(Json(ForkList {
        forks: forks
            .into_iter()
            .map(|f| ForkEntry {
                publisher: f.publisher.to_string(),
                seq: f.seq.0,
                // Empty when this node holds no entry at the position (it learned of the fork
                // by proof, or a charter truncated it).
                kept: f.kept.map(|k| k.to_hex()),
                conflicting: f.conflicting.to_hex(),
                resolved: f.resolved,
            })
            .collect(),
    }))
}
