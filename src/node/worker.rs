//! The ingest worker: the one thread that writes received documents, in the order it is given
//! them, so feed order is preserved and the store has a single writer.
//!
//! It ends when the job channel closes (shutdown) or the store fails; either way the shell
//! notices (the done channel closes) and, unless shutting down, stops the node.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::core::{Done, Job, Origin};
use crate::document::{decode_header, OrgId, Seq};
use crate::ingest::{BatchReport, Blame, IngestError};
use crate::service::Service;
use crate::store::{FeedError, IngestOutcome};
use crate::sync::engine::IngestResult;

/// Runs jobs until the job channel closes, on a dedicated thread: verification of the next
/// job overlaps the commit of the previous one. Returns why it stopped.
pub fn run(service: Arc<Service>, mut jobs: mpsc::Receiver<Job>, done: mpsc::Sender<Done>) -> Result<(), String> {
    let batches = std::iter::from_fn(|| {
        jobs.blocking_recv().map(|mut job| {
            let placed = place(&mut job);
            ((job.origin, placed), job.docs)
        })
    });
    let result = service.ingest_stream(batches, |(origin, placed), report| {
        let (feed, result, outcome) = summarize(&service, placed.claimed, report);
        let result = if placed.misplaced && result == IngestResult::Ok { IngestResult::Misplaced } else { result };
        // The shell only goes away at shutdown; nothing to report to then.
        let _ = done.blocking_send(Done { origin, feed, result, outcome });
    });
    result.map_err(|e| format!("store failure while ingesting: {e}"))
}

/// What the worker learned of a job's placement before ingesting it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Placed {
    /// Entries had to be cut (the serving peer's fault).
    misplaced: bool,
    /// The feed and position the first entry claims, when it decodes.
    claimed: Option<(OrgId, Seq)>,
}

/// Keeps the entries of a range job that are the asked feed's, at the asked positions in
/// order, and says what the first claims. Headers only: nothing is copied or hashed here.
fn place(job: &mut Job) -> Placed {
    let Origin::Range { org, from, .. } = &job.origin else {
        let claimed = job.docs.first().and_then(|d| decode_header(d).ok()).map(|h| (h.publisher, h.seq));
        return Placed { misplaced: false, claimed };
    };
    let mut undecodable = false;
    let fits = job
        .docs
        .iter()
        .enumerate()
        .take_while(|(i, bytes)| match decode_header(bytes) {
            Ok(h) => h.publisher == *org && h.seq.0 == from.0 + *i as u64,
            Err(_) => {
                undecodable = true;
                false
            }
        })
        .count();
    let claimed = (fits > 0).then(|| (org.clone(), *from));
    // An entry that does not decode is judged by the pipeline (it is invalid, not misplaced).
    if fits == job.docs.len() || undecodable {
        return Placed { misplaced: false, claimed };
    }
    job.docs.truncate(fits);
    Placed { misplaced: true, claimed }
}

type Summary = (Option<(OrgId, Seq, Seq)>, IngestResult, Option<Result<IngestOutcome, IngestError>>);

/// The job's verdict from its report: the head comes from the commit, read from the store only
/// when nothing of the feed reached the commit.
fn summarize(service: &Service, claimed: Option<(OrgId, Seq)>, report: BatchReport) -> Summary {
    let summary = report.results.iter().find_map(|r| r.as_ref().err()).map_or(IngestResult::Ok, range_result);
    let feed = claimed.map(|(org, seq)| {
        let head = match report.heads.iter().find(|(o, _)| *o == org) {
            Some((_, head)) => *head,
            None => service.store.head(&org).ok().flatten(),
        };
        (org, seq, head.map_or(Seq(0), |h| h.seq))
    });
    let outcome = if report.results.len() == 1 { report.results.into_iter().next() } else { None };
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
