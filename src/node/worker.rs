//! The ingest worker: the one task that writes received documents, in the order it is given
//! them, so feed order is preserved and the store has a single writer.

use std::sync::Arc;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use tokio::sync::mpsc;

use crate::document::{decode, OrgId, Seq};
use crate::ingest::IngestError;
use crate::service::{Service, Source};
use crate::store::{FeedError, IngestOutcome};
use crate::sync::engine::{IngestResult, PeerKey};

/// Jobs queued to the worker (the engine keeps at most this many outstanding).
pub const INGEST_JOBS_MAX: usize = 64;

/// Where a job's documents came from.
#[derive(Debug, Clone)]
pub enum Origin {
    /// A range the sync engine asked for.
    Range { peer: PeerKey, org: OrgId, from: Seq },
    /// One gossip message.
    Gossip { peer: PeerId, key: PeerKey, message_id: MessageId },
}

/// Documents to ingest.
#[derive(Debug)]
pub struct Job {
    pub origin: Origin,
    pub docs: Vec<Vec<u8>>,
}

/// A finished job.
#[derive(Debug)]
pub struct Done {
    pub origin: Origin,
    /// The feed the documents claimed (from the first that decodes), and its head after.
    pub feed: Option<(OrgId, Seq, Seq)>,
    pub result: IngestResult,
    /// For gossip: the single document's outcome.
    pub outcome: Option<Result<IngestOutcome, IngestError>>,
}

/// Runs jobs until the job channel closes.
pub async fn run(service: Arc<Service>, mut jobs: mpsc::Receiver<Job>, done: mpsc::Sender<Done>) {
    while let Some(job) = jobs.recv().await {
        let service = service.clone();
        let source = match job.origin {
            Origin::Range { .. } => Source::Sync,
            Origin::Gossip { .. } => Source::Gossip,
        };
        let origin = job.origin.clone();
        let result = tokio::task::spawn_blocking(move || ingest(&service, job.docs, source)).await;
        let (feed, result, outcome) = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "store failure while ingesting; the node cannot continue safely");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "ingest task panicked");
                return;
            }
        };
        if done.send(Done { origin, feed, result, outcome }).await.is_err() {
            return;
        }
    }
}

type Summary = (Option<(OrgId, Seq, Seq)>, IngestResult, Option<Result<IngestOutcome, IngestError>>);

fn ingest(service: &Service, docs: Vec<Vec<u8>>, source: Source) -> Result<Summary, crate::store::StoreError> {
    let claimed = docs.first().and_then(|d| decode(d).ok()).map(|d| (d.header.publisher, d.header.seq));
    let results = service.ingest(docs, source)?;
    let mut summary = IngestResult::Ok;
    for r in &results {
        let this = match r {
            Ok(_) => IngestResult::Ok,
            Err(IngestError::Feed(FeedError::Frozen { .. })) => IngestResult::Frozen,
            Err(IngestError::Feed(_)) | Err(IngestError::Lifecycle(_)) => IngestResult::Mismatch,
            Err(_) => IngestResult::Invalid,
        };
        if this != IngestResult::Ok {
            summary = this;
            break;
        }
    }
    let feed = match claimed {
        Some((org, seq)) => {
            let head = service.store.head(&org)?.map_or(Seq(0), |h| h.seq);
            Some((org, seq, head))
        }
        None => None,
    };
    let outcome = if results.len() == 1 { results.into_iter().next() } else { None };
    Ok((feed, summary, outcome))
}
