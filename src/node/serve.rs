//! Answers to peers' sync requests, read from the store on a blocking thread.

use crate::document::OrgId;
use crate::service::Service;
use crate::store::StoreError;
use crate::sync::wire::{
    CheckpointItem, FeedHead, HeadsDigest, RefusalCode, Request, Response, Status, CHARTERS_MAX, CHECKPOINT_FEEDS_MAX,
    CHECKPOINT_FORKS_MAX, FORK_PROOFS_MAX, PAYLOADS_MAX, RANGE_BYTES_MAX, RANGE_COUNT_MAX,
};

/// This node's heads as the status message carries them.
pub fn status_heads(service: &Service) -> Result<Vec<FeedHead>, StoreError> {
    Ok(service
        .store
        .heads_shared()?
        .iter()
        .map(|(org, h)| FeedHead { org: org.clone(), seq: h.seq, id: h.id, forked_at: h.forked_at })
        .collect())
}

/// This node's status for a peer: `known` is the digest of the peer's heads this node holds,
/// `peer_holds` what the peer holds of this node's (its heads go in full unless that is them).
pub fn status(service: &Service, known: HeadsDigest, peer_holds: HeadsDigest) -> Result<Status, StoreError> {
    let heads = status_heads(service)?;
    Ok(Status::compose(service.network_id, charter_version(service), heads, known, peer_holds))
}

/// The charter version this node's status announces (0 off a charter network).
pub fn charter_version(service: &Service) -> u32 {
    service.keyring().charter().map_or(0, |c| c.latest().charter.version)
}

/// Answers one sync request from the store. `reader` is the asking peer's organization, known
/// once it is admitted by certificate; it decides which sealed payloads it may receive.
pub fn answer(service: &Service, request: Request, reader: Option<&OrgId>) -> Response {
    let unavailable = || Response::Refused { code: RefusalCode::Unavailable, reason: "store unavailable".into() };
    match request {
        // Answered through the core's `AnswerStatus`, which knows what the asker holds.
        Request::Status(_) => Response::Refused { code: RefusalCode::Unexpected, reason: "unexpected status".into() },
        Request::Range { org, from, count_max, bytes_max } => {
            let count = count_max.min(RANGE_COUNT_MAX) as usize;
            let bytes = bytes_max.min(RANGE_BYTES_MAX) as usize;
            match service.store.feed_range(&org, from, count, bytes) {
                Ok(docs) => Response::Range { docs },
                Err(_) => unavailable(),
            }
        }
        Request::Charters { from_version } => Response::Charters {
            files: within_budget(service.charter_files_from(from_version, CHARTERS_MAX), Vec::len),
        },
        // Answered by the engine itself (admission), never from the store.
        Request::Hello { .. } => Response::Refused { code: RefusalCode::Unexpected, reason: "unexpected hello".into() },
        Request::ForkProofs { org } => match service.store.fork_proofs(&org, FORK_PROOFS_MAX) {
            // A feed frozen by a checkpoint fork alone has no pair of entries to show; its
            // evidence travels with its checkpoints, and "not from me" costs the asker nothing.
            Ok(proofs)
                if proofs.is_empty() && service.store.checkpoint_forks(Some(&org)).is_ok_and(|f| !f.is_empty()) =>
            {
                Response::Refused {
                    code: RefusalCode::Unexpected,
                    reason: "frozen by a checkpoint fork: ask for its checkpoints".into(),
                }
            }
            Ok(proofs) => Response::ForkProofs { pairs: within_budget(proofs, |(a, b)| a.len() + b.len()) },
            Err(_) => unavailable(),
        },
        Request::Checkpoints { orgs } => {
            let mut items = Vec::new();
            let mut forks = Vec::new();
            for org in orgs.iter().take(CHECKPOINT_FEEDS_MAX) {
                match service.cosigned_checkpoint(org, None) {
                    Ok(Some((note, certs))) => items.push(CheckpointItem { note: note.into_bytes(), certs }),
                    Ok(None) => {}
                    Err(_) => return unavailable(),
                }
                match service.store.checkpoint_forks(Some(org)) {
                    Ok(found) => forks.extend(found.into_iter().map(|f| f.evidence)),
                    Err(_) => return unavailable(),
                }
            }
            forks.truncate(CHECKPOINT_FORKS_MAX);
            let items = within_budget(items, |i| i.note.len() + i.certs.iter().map(Vec::len).sum::<usize>());
            Response::Checkpoints { items, forks }
        }
        Request::Payloads { ids } => {
            // Only to a peer whose organization (from its certificate) is in the notice's
            // audience; the others are simply left out, as if not held.
            let Some(reader) = reader else { return Response::Payloads { items: Vec::new() } };
            let mut items = Vec::new();
            for id in ids.into_iter().take(PAYLOADS_MAX) {
                let readable = match service.document(&id) {
                    Ok(Some(doc)) => service.may_read(reader, &doc),
                    Ok(None) => false,
                    Err(_) => return unavailable(),
                };
                if readable {
                    match service.store.payload(&id) {
                        Ok(Some(p)) => items.push((id, p)),
                        Ok(None) => {}
                        Err(_) => return unavailable(),
                    }
                }
            }
            Response::Payloads { items: within_budget(items, |(_, p)| p.len()) }
        }
    }
}

/// Keeps items while their total size stays within [`RANGE_BYTES_MAX`] (the first always).
fn within_budget<T>(items: Vec<T>, size: impl Fn(&T) -> usize) -> Vec<T> {
    let mut total = 0;
    let mut out = Vec::new();
    for item in items {
        total += size(&item);
        if !out.is_empty() && total > RANGE_BYTES_MAX as usize {
            break;
        }
        out.push(item);
    }
    out
}
