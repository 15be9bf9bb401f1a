//! The transparency log over HTTP (docs/PROTOCOL.md §13): inclusion proofs of documents
//! against checkpoints, consistency proofs, receipts, checkpoint forks, and each feed's tree
//! as C2SP `tlog-tiles` under `/v1/feeds/{org}/tlog/` (immutable tiles, a short-lived
//! checkpoint), so a static mirror or a CDN can serve it and tlog clients can audit it.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;

use super::documents::IdPath;
use super::error::ErrorBody;
use super::views::{
    CheckpointForkEntry, CheckpointForkList, ConsistencyView, InclusionView, ReceiptEntry, ReceiptsView,
};
use super::{ApiError, AppState};
use crate::document::{DocumentId, OrgId};
use crate::tlog::merkle::{self, NodeId};

/// Hashes in a full tile (C2SP `tlog-tiles`).
pub const TILE_WIDTH: u64 = 256;
/// Cache header of tiles and entry bundles: they never change for their path.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache header of a checkpoint, which moves with the feed.
const SHORT_LIVED: &str = "public, max-age=5";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrgPath {
    /// Organization id of the feed's publisher.
    pub org: String,
}

fn parse_org(p: Result<Path<OrgPath>, PathRejection>) -> Result<OrgId, ApiError> {
    let Path(p) = p.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    OrgId::new(&p.org).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn no_checkpoint(org: &OrgId) -> ApiError {
    ApiError::Absent { code: "no_checkpoint", message: format!("this node holds no such checkpoint of {org}'s feed") }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProofParams {
    /// Tree size of the checkpoint to prove against; the latest checkpoint when absent.
    pub size: Option<u64>,
}

#[utoipa::path(
    get, path = "/v1/documents/{id}/proof", tag = "proofs",
    params(IdPath, ProofParams),
    responses(
        (status = 200, description = "The document's inclusion proof against a cosigned checkpoint of its feed", body = InclusionView),
        (status = 400, description = "Bad id or size", body = ErrorBody),
        (status = 404, description = "Document not held (`not_found`), or no checkpoint of that size covering it (`no_checkpoint`)", body = ErrorBody),
    )
)]
/// Proves that a document is entry `seq` of its publisher's feed, in O(log n) hashes.
pub async fn inclusion(
    State(state): State<AppState>,
    p: Result<Path<IdPath>, PathRejection>,
    q: Result<Query<ProofParams>, QueryRejection>,
) -> Result<Json<InclusionView>, ApiError> {
    let Path(p) = p.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let id = DocumentId::from_hex(&p.id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let service = state.service.clone();
    tokio::task::spawn_blocking(move || -> Result<Json<InclusionView>, ApiError> {
        let doc =
            service.document(&id)?.ok_or_else(|| ApiError::NotFound(format!("this node holds no document {id}")))?;
        let (org, seq) = (doc.header.publisher.clone(), doc.header.seq);
        if service.store.feed_entry(&org, seq)? != Some(id) {
            return Err(ApiError::Absent {
                code: "not_in_feed",
                message: format!("{id} is held as fork evidence, not as a feed entry"),
            });
        }
        let size = match q.size {
            Some(s) => s,
            None => service.store.latest_checkpoint(&org)?.ok_or_else(|| no_checkpoint(&org))?.0,
        };
        if size < seq.0 {
            return Err(ApiError::Absent {
                code: "no_checkpoint",
                message: format!("a tree of {size} entries does not cover #{seq}"),
            });
        }
        let (checkpoint, certificates) =
            service.cosigned_checkpoint(&org, Some(size))?.ok_or_else(|| no_checkpoint(&org))?;
        let index = seq.0 - 1;
        let proof =
            service.store.inclusion_proof(&org, index, size)?.map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(Json(InclusionView {
            id: id.to_hex(),
            publisher: org.to_string(),
            seq: seq.0,
            leaf_index: index,
            tree_size: size,
            leaf_hash: hex::encode(merkle::leaf_hash(&id.0)),
            root: hex::encode(service.store.tree_root(&org, size)?),
            proof: proof.iter().map(hex::encode).collect(),
            checkpoint,
            witness_certificates: certificates.iter().map(hex::encode).collect(),
        }))
    })
    .await?
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyParams {
    /// The smaller tree size.
    pub from: u64,
    /// The larger tree size (at most the feed's head).
    pub to: u64,
}

#[utoipa::path(
    get, path = "/v1/feeds/{org}/consistency", tag = "proofs",
    params(OrgPath, ConsistencyParams),
    responses(
        (status = 200, description = "RFC 6962 consistency proof between two sizes of the feed's tree", body = ConsistencyView),
        (status = 400, description = "Bad organization id, sizes reversed, or past the feed's head", body = ErrorBody),
    )
)]
/// Proves that the feed's tree of `from` entries is a prefix of its tree of `to` entries.
pub async fn consistency(
    State(state): State<AppState>,
    p: Result<Path<OrgPath>, PathRejection>,
    q: Result<Query<ConsistencyParams>, QueryRejection>,
) -> Result<Json<ConsistencyView>, ApiError> {
    let org = parse_org(p)?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let service = state.service.clone();
    tokio::task::spawn_blocking(move || -> Result<Json<ConsistencyView>, ApiError> {
        let held = service.store.head(&org)?.map_or(0, |h| h.seq.0);
        if q.to > held {
            return Err(ApiError::BadRequest(format!("{org}'s feed holds {held} entries here, fewer than {}", q.to)));
        }
        let proof =
            service.store.consistency_proof(&org, q.from, q.to)?.map_err(|e| ApiError::BadRequest(e.to_string()))?;
        Ok(Json(ConsistencyView {
            publisher: org.to_string(),
            from: q.from,
            to: q.to,
            from_root: hex::encode(service.store.tree_root(&org, q.from)?),
            to_root: hex::encode(service.store.tree_root(&org, q.to)?),
            proof: proof.iter().map(hex::encode).collect(),
        }))
    })
    .await?
}

#[utoipa::path(
    get, path = "/v1/documents/{id}/receipts", tag = "proofs",
    params(IdPath),
    responses(
        (status = 200, description = "Which organizations' nodes cosigned a checkpoint covering the document, and when", body = ReceiptsView),
        (status = 400, description = "The id is not 64 hex digits", body = ErrorBody),
        (status = 404, description = "Not held by this node", body = ErrorBody),
    )
)]
/// The document's receipts: each witness node that held it, by its organization, earliest first.
pub async fn receipts(
    State(state): State<AppState>,
    p: Result<Path<IdPath>, PathRejection>,
) -> Result<Json<ReceiptsView>, ApiError> {
    let Path(p) = p.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let id = DocumentId::from_hex(&p.id).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let service = state.service.clone();
    let receipts = tokio::task::spawn_blocking(move || service.receipts(&id))
        .await??
        .ok_or_else(|| ApiError::NotFound(format!("this node holds no document {id}")))?;
    let organizations: std::collections::BTreeSet<&OrgId> = receipts.iter().map(|r| &r.organization).collect();
    Ok(Json(ReceiptsView {
        id: id.to_hex(),
        organizations: organizations.len(),
        receipts: receipts
            .iter()
            .map(|r| ReceiptEntry {
                organization: r.organization.to_string(),
                peer_id: r.peer_id.clone(),
                witness: r.witness.clone(),
                checkpoint_size: r.checkpoint_size,
                cosigned_at: chrono::DateTime::from_timestamp(r.timestamp_s as i64, 0)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
            })
            .collect(),
    }))
}

#[utoipa::path(
    get, path = "/v1/checkpoint-forks", tag = "proofs",
    responses((status = 200, description = "Recorded checkpoint forks with their portable evidence", body = CheckpointForkList))
)]
/// Every recorded checkpoint fork: a publisher signed two tree heads no single history holds.
pub async fn checkpoint_forks(State(state): State<AppState>) -> Result<Json<CheckpointForkList>, ApiError> {
    let service = state.service.clone();
    let forks = tokio::task::spawn_blocking(move || service.store.checkpoint_forks(None)).await??;
    Ok(Json(CheckpointForkList {
        forks: forks
            .into_iter()
            .map(|f| CheckpointForkEntry {
                publisher: f.publisher.to_string(),
                size_a: f.size_a,
                size_b: f.size_b,
                frozen_at: f.frozen_at.0,
                evidence: STANDARD.encode(&f.evidence),
            })
            .collect(),
    }))
}

#[utoipa::path(
    get, path = "/v1/feeds/{org}/tlog/checkpoint", tag = "proofs",
    params(OrgPath),
    responses(
        (status = 200, description = "The feed's latest checkpoint with the cosignatures held (C2SP tlog-checkpoint, signed note)", content_type = "text/plain"),
        (status = 404, description = "No checkpoint of this feed", body = ErrorBody),
    )
)]
/// The C2SP `tlog-tiles` checkpoint of a feed.
pub async fn checkpoint(
    State(state): State<AppState>,
    p: Result<Path<OrgPath>, PathRejection>,
) -> Result<Response, ApiError> {
    let org = parse_org(p)?;
    let service = state.service.clone();
    let o = org.clone();
    let (note, _) = tokio::task::spawn_blocking(move || service.cosigned_checkpoint(&o, None))
        .await??
        .ok_or_else(|| no_checkpoint(&org))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8"), (header::CACHE_CONTROL, SHORT_LIVED)], note)
        .into_response())
}

/// What a tile path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TilePath {
    /// Tree level of the tile (`None`: an entry bundle).
    pub level: Option<u8>,
    pub index: u64,
    /// Hashes (or entries) in the tile: 256, or 1–255 for a partial tile.
    pub width: u64,
}

/// Parses `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]` strictly (C2SP `tlog-tiles`): `L` is
/// 0–7 here (a tree of at most 2^64 leaves), `N` is 3-digit groups, all but the last
/// prefixed `x`, with no leading zero group, `W` is 1–255; all without leading zeros.
pub fn parse_tile_path(path: &str) -> Option<TilePath> {
    let (level, rest) = path.split_once('/')?;
    let level = match level {
        "entries" => None,
        l if l.len() == 1 && l.as_bytes()[0].is_ascii_digit() && l.as_bytes()[0] <= b'7' => {
            Some(l.as_bytes()[0] - b'0')
        }
        _ => return None,
    };
    let (index_path, width) = match rest.split_once(".p/") {
        Some((i, w)) => {
            let canonical = !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()) && !w.starts_with('0');
            let w: u64 = w.parse().ok().filter(|w| canonical && (1..TILE_WIDTH).contains(w))?;
            (i, w)
        }
        None => (rest, TILE_WIDTH),
    };
    let groups: Vec<&str> = index_path.split('/').collect();
    let mut index: u64 = 0;
    for (i, g) in groups.iter().enumerate() {
        let digits = if i + 1 < groups.len() { g.strip_prefix('x')? } else { g };
        if digits.len() != 3
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || (i == 0 && groups.len() > 1 && digits == "000")
        {
            return None;
        }
        index = index.checked_mul(1000)?.checked_add(digits.parse().ok()?)?;
    }
    Some(TilePath { level, index, width })
}

/// `GET /v1/feeds/{org}/tlog/tile/{path}`: a C2SP tile or entry bundle of the feed's tree.
pub async fn tile(
    State(state): State<AppState>,
    Path((org, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let org = OrgId::new(&org).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tile = parse_tile_path(&path)
        .ok_or_else(|| ApiError::BadRequest(format!("{path:?} is not a tlog-tiles tile path")))?;
    let service = state.service.clone();
    let body = tokio::task::spawn_blocking(move || -> Result<Option<Vec<u8>>, ApiError> {
        let held = service.store.head(&org)?.map_or(0, |h| h.seq.0);
        let span = 1u64.checked_shl(8 * tile.level.unwrap_or(0) as u32).unwrap_or(u64::MAX);
        let first =
            tile.index.checked_mul(TILE_WIDTH).ok_or_else(|| ApiError::BadRequest("tile index too large".into()))?;
        // The tile exists once the feed holds every leaf under its `width` hashes.
        let needed = first.checked_add(tile.width).and_then(|n| n.checked_mul(span));
        if needed.is_none_or(|n| n > held) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(tile.width as usize * 34);
        for i in 0..tile.width {
            match tile.level {
                Some(level) => {
                    let node = NodeId { level: 8 * level, index: first + i };
                    let hash = service
                        .store
                        .tree_node(&org, node)?
                        .ok_or_else(|| ApiError::Store("tree node missing".into()))?;
                    out.extend_from_slice(&hash);
                }
                None => {
                    let seq = crate::document::Seq(first + i + 1);
                    let id = service
                        .store
                        .feed_entry(&org, seq)?
                        .ok_or_else(|| ApiError::Store("feed entry missing".into()))?;
                    out.extend_from_slice(&32u16.to_be_bytes());
                    out.extend_from_slice(&id.0);
                }
            }
        }
        Ok(Some(out))
    })
    .await??
    .ok_or_else(|| ApiError::NotFound(format!("the feed holds no such tile {path}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, IMMUTABLE)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_parse_as_c2sp_writes_them_and_nothing_else() {
        let t = |level, index, width| Some(TilePath { level, index, width });
        assert_eq!(parse_tile_path("0/000"), t(Some(0), 0, 256));
        assert_eq!(parse_tile_path("1/x001/x234/067"), t(Some(1), 1234067, 256));
        assert_eq!(parse_tile_path("2/005.p/17"), t(Some(2), 5, 17));
        assert_eq!(parse_tile_path("entries/x001/000.p/255"), t(None, 1000, 255));
        for bad in [
            "8/000",
            "00/000",
            "0/5",
            "0/0005",
            "0/x000/005",
            "0/001/002",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "x/000",
            "0",
            "0/",
        ] {
            assert_eq!(parse_tile_path(bad), None, "{bad}");
        }
    }
}
