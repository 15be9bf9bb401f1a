//! The sync state machine: which ranges of which feeds to fetch from which peers, and in
//! what order to hand them to ingest.
//!
//! Per feed it tracks three positions: `local` (the head in the store), `handed` (the last
//! position handed to ingest) and `requested` (the last position covered by a request), with
//! `local ≤ handed ≤ requested`. Every position in `(handed, requested]` is in exactly one
//! place: a range buffered, a range asked for and still wanted, or a hole to ask for again.
//! Several ranges of one feed may be in flight at once, from different peers; responses are
//! buffered and handed to ingest strictly in order, since a feed is stored without gaps.
//!
//! One map holds every range request outstanding, by the [`RangeId`] the engine gave it: the
//! per-peer, per-feed and total counts are derived from it. A request the engine no longer
//! wants (its feed was reset or fetched again from its head) stays there, marked stale, until
//! its answer, its failure or its peer's disconnection: the peer is still working on it, so it
//! keeps its slot of that peer. Its answer is discarded.
//!
//! Only trusted organizations (the keyring's, narrowed by [`SyncConfig::publishers`]) have
//! state here: a feed, peers' claims of it, a line in [`SyncEngine::lag`]. Whatever else peers
//! announce is ignored, so what a peer says cannot grow the engine. Answers are held within a
//! byte budget: a request is only sent while the bytes buffered plus `range_bytes` for every
//! request outstanding stay within [`SyncConfig::buffered_bytes_max`].
//!
//! A peer's claim of a feed is believed only as far as it is served. An empty answer to a
//! range within the claim caps the claim below that range and penalizes the peer; while
//! capped, a status repeating the claim is ignored for that feed and penalized again (once
//! per status). Entries that do not chain onto our feed cap the claim at our head without a
//! penalty: the peer may honestly hold the other branch of a fork, and would otherwise be
//! penalized for every status it sends. A cap is lifted when the peer announces a head at or
//! below it, or disconnects; one for another branch also when the feed is reset by a charter
//! action. The capped claim is what counts for scheduling and for the lag.

use std::collections::{BTreeMap, BTreeSet};

use crate::document::{OrgId, Seq};

mod actions;
mod config;
mod invariants;
mod schedule;
mod state;

use state::{Buffered, Claim, Feed, Handed, Hole, Outstanding, Peer};

pub use actions::{Action, IngestResult, Offense, RangeId};
pub use config::{SyncConfig, BUFFERED_BYTES_MAX_DEFAULT};

/// An opaque peer handle given by the node.
pub type PeerKey = u64;

/// The sync engine. Feed it events; carry out the actions it returns.
#[derive(Debug, Clone)]
pub struct SyncEngine {
    config: SyncConfig,
    /// The organizations whose feeds are replicated (narrowed by `config.publishers`).
    trusted: BTreeSet<OrgId>,
    /// Trusted feeds only.
    feeds: BTreeMap<OrgId, Feed>,
    peers: BTreeMap<PeerKey, Peer>,
    /// Every range request outstanding: the truth the in-flight counts are derived from.
    requests: BTreeMap<RangeId, Outstanding>,
    next_id: u64,
    /// Bytes of the ranges in `ready`, over all feeds.
    buffered_bytes: u64,
    /// Ingest reports still due for feeds dropped by `set_trusted`: they come before any of
    /// a feed made again for the same organization, and must not be taken for its own.
    orphans: BTreeMap<OrgId, usize>,
    /// How many times a feed's local head moved (see [`SyncEngine::local_moves`]).
    local_moves: u64,
    /// A range was refused for load since the last scheduling pass. Every other change that
    /// could let a pass request something runs one at once, so while this is false and no
    /// feed is deferred a pass would request nothing, and [`SyncEngine::poll`] skips it (a
    /// quiet node polls every second; the pass was ~5 % of its CPU at 300 nodes).
    busy_since_pass: bool,
}

/// Whether `org` is replicated (a free function, so it borrows only the fields it reads).
fn is_trusted(trusted: &BTreeSet<OrgId>, config: &SyncConfig, org: &OrgId) -> bool {
    trusted.contains(org) && config.publishers.as_ref().is_none_or(|p| p.contains(org))
}

impl SyncEngine {
    /// A new engine replicating the feeds of `trusted`, knowing the store's current heads.
    pub fn new(
        config: SyncConfig,
        trusted: BTreeSet<OrgId>,
        local_heads: impl IntoIterator<Item = (OrgId, Seq)>,
    ) -> SyncEngine {
        config.check();
        let mut engine = SyncEngine {
            config,
            trusted,
            feeds: BTreeMap::new(),
            peers: BTreeMap::new(),
            requests: BTreeMap::new(),
            next_id: 0,
            buffered_bytes: 0,
            orphans: BTreeMap::new(),
            local_moves: 0,
            busy_since_pass: false,
        };
        for (org, seq) in local_heads {
            if let Some(f) = engine.feed(&org) {
                f.local = seq.0;
                f.handed = seq.0;
                f.requested = seq.0;
                f.at_status = seq.0;
            }
        }
        engine
    }

    fn is_trusted(&self, org: &OrgId) -> bool {
        is_trusted(&self.trusted, &self.config, org)
    }

    /// The feed of `org`, made if need be; `None` if `org` is not trusted.
    fn feed(&mut self, org: &OrgId) -> Option<&mut Feed> {
        // Only trusted organizations have a feed, so one found needs no trust lookup, and its
        // name is copied only when the feed is made: a status names hundreds of known feeds.
        if !self.feeds.contains_key(org) {
            if !self.is_trusted(org) {
                return None;
            }
            self.feeds.insert(org.clone(), Feed::default());
        }
        self.feeds.get_mut(org)
    }

    /// The organizations whose feeds are replicated changed (a charter version, a keyring).
    /// A feed no longer trusted is dropped with every peer's claim of it; its requests still
    /// outstanding become stale. A feed newly trusted is fetched once peers announce it (the
    /// node asks every peer for its status when the charter changes); its local head is
    /// learned from `local_head` or from the first ingest report.
    #[must_use = "the node must carry out the actions"]
    pub fn set_trusted(&mut self, orgs: BTreeSet<OrgId>) -> Vec<Action> {
        self.trusted = orgs;
        let dropped: Vec<OrgId> = self.feeds.keys().filter(|o| !self.is_trusted(o)).cloned().collect();
        for org in &dropped {
            let f = self.feeds.remove(org).expect("listed above");
            self.buffered_bytes -= f.ready.values().map(|b| b.bytes).sum::<u64>();
            if !f.ingesting.is_empty() {
                *self.orphans.entry(org.clone()).or_default() += f.ingesting.len();
            }
            for r in self.requests.values_mut().filter(|r| &r.org == org) {
                r.wanted = false;
            }
        }
        let (trusted, config) = (&self.trusted, &self.config);
        for p in self.peers.values_mut() {
            p.claims.retain(|org, _| is_trusted(trusted, config, org));
        }
        let orgs: Vec<OrgId> = self.feeds.keys().cloned().collect();
        self.refresh_best(&orgs);
        self.schedule()
    }

    /// A peer connected: exchange status.
    #[must_use = "the node must carry out the actions"]
    pub fn peer_connected(&mut self, peer: PeerKey) -> Vec<Action> {
        self.peers.entry(peer).or_default();
        vec![Action::SendStatus { peer }]
    }

    /// A peer went away: its requests are forgotten (an answer arriving later is ignored) and
    /// the ranges still wanted are requested again elsewhere.
    #[must_use = "the node must carry out the actions"]
    pub fn peer_disconnected(&mut self, peer: PeerKey) -> Vec<Action> {
        if let Some(p) = self.peers.remove(&peer) {
            let orgs: Vec<OrgId> = p.claims.into_keys().collect();
            self.refresh_best(&orgs);
        }
        let lost: Vec<RangeId> = self.requests.iter().filter(|(_, r)| r.peer == peer).map(|(id, _)| *id).collect();
        for id in lost {
            let r = self.requests.remove(&id).expect("listed above");
            if r.wanted {
                self.feeds.get_mut(&r.org).expect("a wanted request's feed exists").hole(r.from, r.count, None);
            }
        }
        self.schedule()
    }

    /// A connected peer told us its heads (in its status request or response). Heads of
    /// organizations not trusted are ignored, and so is a peer not connected. A head above
    /// the peer's cap for that feed is not believed, and costs it (once per status) unless
    /// the cap is for another branch.
    #[must_use = "the node must carry out the actions"]
    pub fn status_received<'a>(
        &mut self,
        peer: PeerKey,
        heads: impl IntoIterator<Item = (&'a OrgId, Seq)>,
    ) -> Vec<Action> {
        if !self.peers.contains_key(&peer) {
            return Vec::new();
        }
        let mut penalize = false;
        let mut changed = BTreeSet::new();
        for (org, seq) in heads {
            if self.feed(org).is_none() {
                continue;
            }
            let p = self.peers.get_mut(&peer).expect("checked above");
            if !p.claims.contains_key(org) {
                // Copied only when new: a status repeats hundreds of claims already held.
                p.claims.insert(org.clone(), Claim::default());
            }
            let claim = p.claims.get_mut(org).expect("made above");
            let before = (claim.head, claim.cap.is_some());
            claim.head = seq.0;
            match claim.cap {
                // Repeated above its cap: not believed (the capped claim counts).
                Some(cap) if seq.0 > cap.at => {
                    penalize |= !cap.other_branch;
                }
                // At or below its cap: honest again.
                Some(_) => claim.cap = None,
                None => {}
            }
            let moved = before != (claim.head, claim.cap.is_some());
            if claim.is_empty() {
                p.claims.remove(org);
            }
            if moved {
                changed.insert(org.clone());
            }
        }
        self.refresh_best(&changed);
        let mut actions = Vec::new();
        if penalize {
            actions.push(Action::Penalize { peer, offense: Offense::UnservedClaim });
        }
        // Only the feeds whose claims moved can be requested for now (none, on a quiet
        // network's every status): whatever else changed since the last pass is taken by the
        // next poll.
        actions.extend(self.schedule_feeds(&changed));
        actions
    }

    /// A connected peer showed (by gossip) that it holds a trusted `org` up to at least `seq`.
    #[must_use = "the node must carry out the actions"]
    pub fn announced(&mut self, peer: PeerKey, org: OrgId, seq: Seq) -> Vec<Action> {
        if seq.0 == 0 || !self.peers.contains_key(&peer) || self.feed(&org).is_none() {
            return Vec::new();
        }
        let p = self.peers.get_mut(&peer).expect("checked above");
        let claim = p.claims.entry(org.clone()).or_default();
        if seq.0 <= claim.head {
            // Nothing new (the same document gossiped again, by another path): as for a
            // status that changed no claim, there is nothing new to schedule.
            return Vec::new();
        }
        claim.head = seq.0;
        let f = self.feeds.get_mut(&org).expect("checked above");
        f.best = f.best.max(seq.0);
        self.schedule_feeds(&BTreeSet::from([org]))
    }

    /// Periodic: ask every peer for its status again (pull stays the source of truth).
    #[must_use = "the node must carry out the actions"]
    pub fn tick(&mut self) -> Vec<Action> {
        for f in self.feeds.values_mut() {
            f.at_status = f.local;
        }
        self.peers.keys().map(|peer| Action::SendStatus { peer: *peer }).collect()
    }

    /// Whether this node stored at least a range's worth of entries (`range_count`, over all
    /// feeds) since its last status round: while it catches up, its peers should learn
    /// sooner than the next round what it can serve them, so that replicas fetch from each
    /// other rather than all from the publisher (the node then ticks early, within a bound).
    pub fn progress_status_due(&self) -> bool {
        let stored: u64 = self.feeds.values().map(|f| f.local.saturating_sub(f.at_status)).sum();
        stored >= self.config.range_count as u64
    }

    /// How many times the local head of a trusted feed has moved: while it stays the same,
    /// a status this node sends names the same heads as the last one (up to a fork recorded
    /// in place, which gossip and the peer's own next status carry).
    pub fn local_moves(&self) -> u64 {
        self.local_moves
    }

    /// The store's feed of `org` was changed by a charter action (a fork resolved, entries
    /// signed with a revoked key removed): fetching starts again from `head`, which may be
    /// lower than before, and the feed is no longer frozen.
    #[must_use = "the node must carry out the actions"]
    pub fn feed_reset(&mut self, org: &OrgId, head: Seq) -> Vec<Action> {
        let Some(f) = self.feed(org) else { return Vec::new() };
        f.frozen = false;
        f.deferred = false;
        f.local = head.0;
        self.local_moves += 1;
        self.restart(org);
        // Our feed changed: another branch may be ours now.
        for p in self.peers.values_mut() {
            if let Some(c) = p.claims.get_mut(org) {
                if c.cap.is_some_and(|cap| cap.other_branch) {
                    c.cap = None;
                }
                if c.is_empty() {
                    p.claims.remove(org);
                }
            }
        }
        self.refresh_best([org]);
        self.schedule()
    }

    /// The store's head of `org` moved by another path (gossip, local publish).
    #[must_use = "the node must carry out the actions"]
    pub fn local_head(&mut self, org: &OrgId, seq: Seq) -> Vec<Action> {
        if self.feed(org).is_none() || !self.advance(org, seq.0) {
            return Vec::new();
        }
        let mut actions = self.drain(org);
        actions.extend(self.schedule());
        actions
    }

    /// A range response arrived. An answer to a request the engine no longer wants (or does
    /// not know) is discarded.
    #[must_use = "the node must carry out the actions"]
    pub fn range_received(&mut self, id: RangeId, docs: Vec<Vec<u8>>) -> Vec<Action> {
        let Some(r) = self.requests.remove(&id) else { return Vec::new() };
        if !r.wanted {
            return self.schedule(); // its peer's slot is free again
        }
        let mut actions = Vec::new();
        let mut capped = false;
        let f = self.feeds.get_mut(&r.org).expect("a wanted request's feed exists");
        let bytes: u64 = docs.iter().map(|d| d.len() as u64).sum();
        if docs.len() > r.count as usize || bytes > self.config.range_bytes as u64 {
            f.hole(r.from, r.count, Some(r.peer));
            actions.push(Action::Penalize { peer: r.peer, offense: Offense::RangeTooLong });
        } else {
            if (docs.len() as u32) < r.count {
                // A short answer: the rest of the range is asked again, preferably elsewhere.
                f.hole(r.from + docs.len() as u64, r.count - docs.len() as u32, Some(r.peer));
                // Nothing within its claim: it announced a head it does not serve. (Its claim
                // may have shrunk since the request, by a status: then `cap` changes nothing
                // and it is not at fault.)
                let claim = self.peers.get_mut(&r.peer).and_then(|p| p.claims.get_mut(&r.org));
                if docs.is_empty() && claim.is_some_and(|c| c.cap(r.from - 1, false)) {
                    actions.push(Action::Penalize { peer: r.peer, offense: Offense::UnservedClaim });
                    capped = true;
                }
            }
            if !docs.is_empty() {
                f.ready.insert(r.from, Buffered { peer: r.peer, docs, bytes });
                self.buffered_bytes += bytes;
            }
        }
        if capped {
            self.refresh_best([&r.org]);
        }
        actions.extend(self.drain(&r.org));
        actions.extend(self.schedule());
        actions
    }

    /// Periodic: retry what failed, was refused or was deferred since.
    #[must_use = "the node must carry out the actions"]
    pub fn poll(&mut self) -> Vec<Action> {
        let mut deferred = false;
        for f in self.feeds.values_mut() {
            deferred |= std::mem::take(&mut f.deferred);
        }
        if !deferred && !self.busy_since_pass {
            return Vec::new();
        }
        self.schedule()
    }

    /// A range request failed. A peer that refused for load (`busy`) is asked again later; one
    /// whose request failed otherwise (timeout, closed, refused for cause) is not asked for this
    /// feed again until its next status. An unknown `id` is ignored.
    #[must_use = "the node must carry out the actions"]
    pub fn range_failed(&mut self, id: RangeId, busy: bool) -> Vec<Action> {
        let Some(r) = self.requests.remove(&id) else { return Vec::new() };
        if r.wanted {
            self.feeds.get_mut(&r.org).expect("a wanted request's feed exists").hole(r.from, r.count, Some(r.peer));
        }
        if busy {
            self.busy_since_pass = true;
            return Vec::new(); // retried by the next poll, not in a tight loop
        }
        if let Some(p) = self.peers.get_mut(&r.peer) {
            p.withdraw(&r.org);
        }
        self.refresh_best([&r.org]);
        self.schedule()
    }

    /// An ingest the engine asked for finished; `head` is the feed's head in the store now.
    /// Reports of one feed come in the order its Ingest actions were returned; a report of a
    /// range handed before the feed was reset or fetched again only frees its slot.
    #[must_use = "the node must carry out the actions"]
    pub fn ingested(&mut self, peer: PeerKey, org: &OrgId, head: Seq, result: IngestResult) -> Vec<Action> {
        if let Some(n) = self.orphans.get_mut(org) {
            *n -= 1;
            if *n == 0 {
                self.orphans.remove(org);
            }
            return Vec::new();
        }
        let Some(f) = self.feeds.get_mut(org) else { return Vec::new() };
        let Some(handed) = f.ingesting.pop_front() else { return Vec::new() };
        if handed.stale {
            // Its head may predate a truncation; the store reports what it stored since as
            // local heads.
            return self.schedule();
        }
        // A Misplaced report's head may be another feed's.
        if result != IngestResult::Misplaced {
            self.advance(org, head.0);
        }
        let mut actions = Vec::new();
        if result != IngestResult::Ok {
            // Start again from the store's head; answers to older requests are discarded.
            self.restart(org);
        }
        match result {
            IngestResult::Ok => {}
            IngestResult::Mismatch => {
                let local = self.feeds[org].local;
                if let Some(c) = self.peers.get_mut(&peer).and_then(|p| p.claims.get_mut(org)) {
                    c.cap(local, true);
                }
                self.refresh_best([org]);
            }
            IngestResult::Frozen => self.feeds.get_mut(org).expect("held above").frozen = true,
            IngestResult::Deferred => self.feeds.get_mut(org).expect("held above").deferred = true,
            IngestResult::Invalid | IngestResult::Misplaced | IngestResult::Unauthorized => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.withdraw(org);
                }
                self.refresh_best([org]);
                let offense = match result {
                    IngestResult::Invalid => Some(Offense::InvalidDocument),
                    IngestResult::Misplaced => Some(Offense::Misplaced),
                    _ => None, // refused by our charter: not the peer's fault
                };
                actions.extend(offense.map(|offense| Action::Penalize { peer, offense }));
            }
        }
        actions.extend(self.drain(org));
        actions.extend(self.schedule());
        actions
    }

    /// The store holds `org` up to `seq`: positions up to there need nothing more. Returns
    /// whether the position handed to ingest moved.
    fn advance(&mut self, org: &OrgId, seq: u64) -> bool {
        let Some(f) = self.feeds.get_mut(org) else { return false };
        if seq > f.local {
            f.local = seq;
            self.local_moves += 1;
        }
        if f.local <= f.handed {
            return false;
        }
        let local = f.local;
        f.handed = local;
        f.requested = f.requested.max(local);
        // Holes are trimmed to what lies past the head; buffered ranges are trimmed by `drain`
        // (dropping one that reaches past the head would lose its tail for good).
        let holes: Vec<(u64, Hole)> = f.retry.range(..=local).map(|(k, v)| (*k, *v)).collect();
        for (from, h) in holes {
            f.retry.remove(&from);
            f.hole(from, h.count, h.not_of);
        }
        for r in self.requests.values_mut().filter(|r| &r.org == org && r.last() <= local) {
            r.wanted = false;
        }
        true
    }

    /// Fetching of `org` starts again from its local head: what is buffered or to be asked
    /// again is dropped, and answers to requests sent and ranges handed so far are discarded.
    fn restart(&mut self, org: &OrgId) {
        let Some(f) = self.feeds.get_mut(org) else { return };
        self.buffered_bytes -= f.ready.values().map(|b| b.bytes).sum::<u64>();
        f.ready.clear();
        f.retry.clear();
        f.handed = f.local;
        f.requested = f.local;
        for h in &mut f.ingesting {
            h.stale = true;
        }
        for r in self.requests.values_mut().filter(|r| &r.org == org) {
            r.wanted = false;
        }
    }

    /// Hands buffered ranges to ingest while they continue the feed.
    fn drain(&mut self, org: &OrgId) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(f) = self.feeds.get_mut(org) else { return actions };
        while let Some(entry) = f.ready.first_entry() {
            let from = *entry.key();
            if from > f.handed + 1 {
                break;
            }
            let Buffered { peer, mut docs, bytes } = entry.remove();
            self.buffered_bytes -= bytes;
            // A range overlapping what was already handed is trimmed to the new part.
            let skip = (f.handed + 1 - from) as usize;
            if skip >= docs.len() {
                continue;
            }
            docs.drain(..skip);
            let start = f.handed + 1;
            f.handed += docs.len() as u64;
            f.ingesting.push_back(Handed { from: start, count: docs.len() as u64, stale: false });
            actions.push(Action::Ingest { peer, org: org.clone(), from: Seq(start), docs });
        }
        actions
    }

    /// Our head and the best head any peer is believed to hold (its claim, capped), per
    /// trusted feed: the replication lag.
    pub fn lag(&self) -> BTreeMap<OrgId, (Seq, Seq)> {
        self.feeds.iter().map(|(org, f)| (org.clone(), (Seq(f.local), Seq(f.best.max(f.local))))).collect()
    }

    /// Sets the kept best claim of each of `orgs` from the peers' claims, after claims of
    /// them changed (one lookup per peer and feed named).
    fn refresh_best<'a>(&mut self, orgs: impl IntoIterator<Item = &'a OrgId>) {
        for org in orgs {
            let best = self.peers.values().filter_map(|p| p.claims.get(org)).map(Claim::effective).max();
            if let Some(f) = self.feeds.get_mut(org) {
                f.best = best.unwrap_or(0);
            }
        }
    }

    /// What `peer` is believed to hold, per feed: its claims as capped by what it failed to
    /// serve (the heads the peers view shows, and the lag counts).
    pub fn peer_heads(&self, peer: PeerKey) -> BTreeMap<OrgId, Seq> {
        let Some(p) = self.peers.get(&peer) else { return BTreeMap::new() };
        p.claims.iter().map(|(org, c)| (org.clone(), Seq(c.effective()))).filter(|(_, s)| s.0 > 0).collect()
    }
}

#[cfg(test)]
mod tests;
