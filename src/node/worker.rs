//! The ingest worker: the one task that writes received documents, in the order it is given
//! them, so feed order is preserved and the store has a single writer.

use std::sync::Arc;

use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use tokio::sync::mpsc;

use crate::document::{decode, OrgId, Seq};
use crate::ingest::{IngestError, LifecycleError};
use crate::service::Service;
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

/// Runs jobs until the job channel closes, on a dedicated thread: verification of the next
/// job overlaps the commit of the previous one.
pub fn run(service: Arc<Service>, mut jobs: mpsc::Receiver<Job>, done: mpsc::Sender<Done>) {
    let batches = std::iter::from_fn(|| jobs.blocking_recv().map(|job| (job.origin, job.docs)));
    let result = service.ingest_stream(batches, |origin, envelopes, results| {
        let summary = summarize(&service, &envelopes, results);
        // The engine only goes away at shutdown; nothing to report to then.
        let _ = done.blocking_send(Done { origin, feed: summary.0, result: summary.1, outcome: summary.2 });
    });
    if let Err(e) = result {
        tracing::error!(error = %e, "store failure while ingesting; replication stops");
    }
}

type Summary = (Option<(OrgId, Seq, Seq)>, IngestResult, Option<Result<IngestOutcome, IngestError>>);

fn summarize(service: &Service, envelopes: &[Vec<u8>], results: Vec<Result<IngestOutcome, IngestError>>) -> Summary {
    let claimed = envelopes.first().and_then(|d| decode(d).ok()).map(|d| (d.header.publisher, d.header.seq));
    let mut summary = IngestResult::Ok;
    for r in &results {
        let this = match r {
            Ok(_) => IngestResult::Ok,
            Err(IngestError::Feed(FeedError::Frozen { .. })) => IngestResult::Frozen,
            Err(IngestError::Lifecycle(LifecycleError::TargetMissing(_))) => IngestResult::Deferred,
            Err(IngestError::Feed(_)) | Err(IngestError::Lifecycle(_)) => IngestResult::Mismatch,
            Err(IngestError::Authority(_)) => IngestResult::Unauthorized,
            Err(_) => IngestResult::Invalid,
        };
        if this != IngestResult::Ok {
            summary = this;
            break;
        }
    }
    let feed = claimed.map(|(org, seq)| {
        let head = service.store.head(&org).ok().flatten().map_or(Seq(0), |h| h.seq);
        (org, seq, head)
    });
    let outcome = if results.len() == 1 { results.into_iter().next() } else { None };
    (feed, summary, outcome)
}
