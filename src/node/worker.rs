//! The ingest worker: the one thread that writes received documents, in the order it is given
//! them, so feed order is preserved and the store has a single writer.
//!
//! It ends when the job channel closes (shutdown) or the store fails; either way the shell
//! notices (the done channel closes) and, unless shutting down, stops the node.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::core::{Done, Job, Origin};
use crate::document::{decode, OrgId, Seq};
use crate::ingest::{Blame, IngestError};
use crate::service::Service;
use crate::store::{FeedError, IngestOutcome};
use crate::sync::engine::IngestResult;

/// Runs jobs until the job channel closes, on a dedicated thread: verification of the next
/// job overlaps the commit of the previous one. Returns why it stopped.
pub fn run(service: Arc<Service>, mut jobs: mpsc::Receiver<Job>, done: mpsc::Sender<Done>) -> Result<(), String> {
    let batches = std::iter::from_fn(|| {
        jobs.blocking_recv().map(|mut job| {
            let misplaced = trim_misplaced(&mut job);
            ((job.origin, misplaced), job.docs)
        })
    });
    let result = service.ingest_stream(batches, |(origin, misplaced), envelopes, results| {
        let (feed, result, outcome) = summarize(&service, &envelopes, results);
        let result = if misplaced && result == IngestResult::Ok { IngestResult::Misplaced } else { result };
        // The shell only goes away at shutdown; nothing to report to then.
        let _ = done.blocking_send(Done { origin, feed, result, outcome });
    });
    result.map_err(|e| format!("store failure while ingesting: {e}"))
}

/// Keeps the entries of a range job that are the asked feed's, at the asked positions in
/// order; true when any had to be cut (the serving peer's fault).
fn trim_misplaced(job: &mut Job) -> bool {
    let Origin::Range { org, from, .. } = &job.origin else { return false };
    let fits = job
        .docs
        .iter()
        .enumerate()
        .take_while(|(i, bytes)| {
            decode(bytes).is_ok_and(|d| d.header.publisher == *org && d.header.seq.0 == from.0 + *i as u64)
        })
        .count();
    // An entry that does not decode is judged by the pipeline (it is invalid, not misplaced).
    let undecodable = job.docs.get(fits).is_some_and(|bytes| decode(bytes).is_err());
    if fits == job.docs.len() || undecodable {
        return false;
    }
    job.docs.truncate(fits);
    true
}

type Summary = (Option<(OrgId, Seq, Seq)>, IngestResult, Option<Result<IngestOutcome, IngestError>>);

fn summarize(service: &Service, envelopes: &[Vec<u8>], results: Vec<Result<IngestOutcome, IngestError>>) -> Summary {
    let claimed = envelopes.first().and_then(|d| decode(d).ok()).map(|d| (d.header.publisher, d.header.seq));
    let summary = results.iter().find_map(|r| r.as_ref().err()).map_or(IngestResult::Ok, range_result);
    let feed = claimed.map(|(org, seq)| {
        let head = service.store.head(&org).ok().flatten().map_or(Seq(0), |h| h.seq);
        (org, seq, head)
    });
    let outcome = if results.len() == 1 { results.into_iter().next() } else { None };
    (feed, summary, outcome)
}

/// What a refused entry of a range means for the sync engine: the same [`Blame`] the gossip
/// path judges by.
fn range_result(e: &IngestError) -> IngestResult {
    match (e.blame(), e) {
        (Blame::Sender, _) => IngestResult::Invalid,
        (Blame::Charter, _) => IngestResult::Unauthorized,
        (Blame::Feed, IngestError::Feed(FeedError::Frozen { .. })) => IngestResult::Frozen,
        (Blame::Feed, _) => IngestResult::Mismatch,
        // A gap (the feed moved under the range, a reset) or a lifecycle target not held yet:
        // nobody's fault; fetched again from the store's head at the next poll.
        (Blame::Later, _) => IngestResult::Deferred,
    }
}
