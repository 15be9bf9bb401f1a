//! Answers to the node's requests, gossip and ingest verdicts, charter changes and time:
//! what the core does when something it asked for, or waited for, comes back.

use std::time::Instant;

use super::*;

impl Core {
    // --- Answers to our requests ---------------------------------------------------------

    pub(super) fn on_response(
        &mut self,
        now: Instant,
        tag: Tag,
        result: Result<Response, RequestFailure>,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) {
        let Some((peer, pending)) = self.pending.remove(&tag) else { return };
        if let Err(RequestFailure::Malformed(reason)) = &result {
            tracing::warn!(peer = %self.name(peer), %reason, "peer sent an answer that is not a valid message");
            self.penalize(now, peer, Offense::MalformedResponse, out);
        }
        match (pending, result) {
            (Pending::Hello, Ok(Response::Hello { cert })) => {
                if let Err(e) = self.on_certificate(now, peer, cert, certs, out) {
                    if self.charter_pull.as_ref().is_none_or(|(k, _, _)| *k != peer) {
                        self.turn_away(now, peer, &format!("not admitted: {e} ({})", e.code()), out);
                    }
                }
            }
            (Pending::Hello | Pending::Status, Err(RequestFailure::UnsupportedProtocols)) => {
                // A client that only sends requests serves no sync protocol; a peer of another
                // release is told apart by what it announces ([`Event::Incompatible`]).
                tracing::debug!(peer = %self.name(peer), "peer serves no sync protocol of this version; not syncing from it");
            }
            (Pending::Hello, other) => {
                if let Ok(Response::Refused { code, reason }) = &other {
                    tracing::warn!(peer = %self.name(peer), code = code.code(), %reason, "peer did not admit this node");
                } else if let Err(e) = &other {
                    tracing::debug!(peer = %self.name(peer), error = e.code(), "hello failed");
                }
            }
            (Pending::Status, Ok(Response::Status(status))) => {
                if status.network_id != self.config.network_id {
                    self.penalize(now, peer, Offense::WrongNetwork, out);
                    return;
                }
                self.on_status(now, peer, status, out);
            }
            (Pending::Status, other) => tracing::debug!(peer = %self.name(peer), ?other, "status request failed"),
            (Pending::Range(id), Ok(Response::Range { docs })) => {
                let actions = self.sync.range_received(id, docs);
                self.run_sync(now, actions, out);
            }
            (Pending::Range(id), other) => {
                let busy = matches!(&other, Ok(Response::Refused { code, .. }) if code.is_later());
                let actions = self.sync.range_failed(id, busy);
                self.run_sync(now, actions, out);
            }
            (Pending::Charters, result) => {
                self.charter_pull = None;
                match result {
                    Ok(Response::Charters { files }) if !files.is_empty() => {
                        out.push(Effect::ApplyCharters { peer, files });
                        return;
                    }
                    Ok(Response::Charters { .. }) => {
                        let announced = self.peers.get(&peer).map_or(0, |p| p.charter_version);
                        if announced > self.charter_version {
                            self.penalize(now, peer, Offense::UnservedCharter, out);
                        }
                    }
                    other => tracing::debug!(peer = %self.name(peer), ?other, "charter request failed"),
                }
                self.settle_shown_certificate(now, peer, certs, out);
            }
            (Pending::ForkProofs { .. }, Ok(Response::ForkProofs { pairs })) => {
                if pairs.is_empty() {
                    self.penalize(now, peer, Offense::UnprovenFork, out);
                } else {
                    out.push(Effect::RecordForkProofs { peer, pairs });
                }
            }
            (Pending::Checkpoints { orgs }, Ok(Response::Checkpoints { items, forks })) => {
                if !items.is_empty() || !forks.is_empty() {
                    out.push(Effect::TakeCheckpoints { peer, items, forks, orgs });
                }
            }
            (Pending::Checkpoints { .. }, other) => {
                tracing::debug!(peer = %self.name(peer), ?other, "checkpoint request failed")
            }
            (Pending::ForkProofs { .. }, other) => {
                tracing::debug!(peer = %self.name(peer), ?other, "fork proof request failed")
            }
            (Pending::Payloads, result) => {
                let Some(request) = self.payloads.in_flight.take_if(|r| r.tag == tag) else { return };
                match result {
                    Ok(Response::Payloads { items }) => {
                        let asked = request.ids;
                        let (items, strays): (Vec<_>, Vec<_>) =
                            items.into_iter().partition(|(id, _)| asked.contains(id));
                        if !strays.is_empty() {
                            self.penalize(now, peer, Offense::InvalidPayload, out);
                        }
                        self.payloads.accepting = Some(asked);
                        out.push(Effect::AcceptPayloads { peer, items });
                    }
                    other => {
                        tracing::debug!(peer = %self.name(peer), ?other, "payload request failed");
                        self.payloads.not_served(request.ids);
                    }
                }
            }
        }
    }

    // --- Gossip and ingest ---------------------------------------------------------------

    pub(super) fn on_gossip(&mut self, peer: PeerKey, gossip: GossipId, data: Vec<u8>, out: &mut Effects) {
        if !self.peers.get(&peer).is_some_and(PeerRecord::is_admitted) {
            out.push(Effect::Verdict { gossip, verdict: Verdict::Reject });
            return;
        }
        if self.jobs_outstanding >= INGEST_JOBS_MAX {
            // Overloaded: let the message go; pull sync will fetch the document.
            out.push(Effect::Verdict { gossip, verdict: Verdict::Ignore });
            return;
        }
        self.jobs_outstanding += 1;
        out.push(Effect::Ingest(Job { origin: Origin::Gossip { peer, gossip }, docs: vec![data] }));
    }

    pub(super) fn on_ingested(&mut self, now: Instant, done: Done, out: &mut Effects) {
        self.jobs_outstanding = self.jobs_outstanding.saturating_sub(1);
        if let Some(job) = self.jobs_queued.pop_front() {
            self.jobs_outstanding += 1;
            out.push(Effect::Ingest(job));
        }
        match done.origin {
            Origin::Range { peer, org, from } => {
                let head = done.feed.as_ref().map_or(Seq(0), |(_, _, h)| *h);
                match done.result {
                    IngestResult::Invalid | IngestResult::Misplaced => {
                        tracing::warn!(peer = %self.name(peer), %org, from = from.0, result = ?done.result, "a peer served documents that are not the entries asked for");
                    }
                    // Refused by this node's charter: the peer may be on a newer version.
                    IngestResult::Unauthorized => self.pull_charters(now, peer, false, out),
                    _ => {}
                }
                let actions = self.sync.ingested(peer, &org, Seq(head.0), done.result);
                self.run_sync(now, actions, out);
            }
            Origin::Gossip { peer, gossip } => {
                let blame = match &done.outcome {
                    Some(Err(e)) => Some(e.blame()),
                    _ => None,
                };
                let verdict = match (&done.outcome, blame) {
                    (Some(Ok(IngestOutcome::Stored | IngestOutcome::Forked { .. })), _) => Verdict::Accept,
                    (_, Some(Blame::Sender)) => Verdict::Reject,
                    _ => Verdict::Ignore,
                };
                out.push(Effect::Verdict { gossip, verdict });
                match blame {
                    Some(Blame::Sender) => self.penalize(now, peer, Offense::InvalidGossip, out),
                    Some(Blame::Charter) => self.pull_charters(now, peer, false, out),
                    // A gossiped document beyond our head shows the sender holds the feed that
                    // far: fetch what lies between.
                    Some(Blame::Later) => {
                        if let Some((org, seq, _)) = done.feed {
                            let actions = self.sync.announced(peer, org, seq);
                            self.run_sync(now, actions, out);
                        }
                    }
                    Some(Blame::Feed) | None => {}
                }
            }
        }
    }

    pub(super) fn submit(&mut self, job: Job, out: &mut Effects) {
        if self.jobs_outstanding < INGEST_JOBS_MAX {
            self.jobs_outstanding += 1;
            out.push(Effect::Ingest(job));
        } else {
            self.jobs_queued.push_back(job);
        }
    }

    // --- Charter changes -----------------------------------------------------------------

    pub(super) fn on_charter_changed(
        &mut self,
        now: Instant,
        change: CharterChange,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) {
        let CharterChange { version, trusted, resets, heads, arrival } = change;
        tracing::info!(version, "charter changed; checking peers' certificates again");
        self.charter_version = version;
        self.trusted = trusted.clone();
        self.proof_pulls.retain(|org, _| trusted.contains(org));
        for record in self.peers.values_mut() {
            record.heads.retain(|org, _| trusted.contains(org));
            record.checkpoints.retain(|org| trusted.contains(org));
        }
        self.checkpoints_held.retain(|org, _| trusted.contains(org));
        self.head_ids.retain(|org, _| trusted.contains(org));
        self.follow_grants.retain(|org, _| trusted.contains(org));
        self.reset_marks.retain(|org, _| trusted.contains(org));
        let actions = self.sync.set_trusted(trusted);
        self.run_sync(now, actions, out);
        // A publisher trusted again starts from what the store holds, not from nothing.
        for (org, seq) in heads {
            let actions = self.sync.local_head(&org, seq);
            self.run_sync(now, actions, out);
        }
        if self.config.permissioned {
            // An organization that left takes its nodes with it; a peer waiting (or leaving)
            // with a certificate the new version accepts is admitted.
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for peer in keys {
                let record = &self.peers[&peer];
                let cert = match &record.standing {
                    Standing::Admitted { cert, .. } => Some(cert.clone()),
                    Standing::Waiting { shown, .. } | Standing::Leaving { shown, .. } => shown.clone(),
                };
                let Some(cert) = cert else { continue };
                match (certs.check(&cert, &record.name), record.is_admitted()) {
                    (Ok(org), _) => self.admit(now, peer, org, cert, out),
                    (Err(_), true) => {
                        self.turn_away(now, peer, "its certificate is not valid under the new charter", out)
                    }
                    (Err(_), false) => {}
                }
            }
        }
        for (org, head) in resets {
            tracing::info!(%org, head = head.0, "feed changed by the charter; fetching it again from its head");
            if self.trusted.contains(&org) {
                self.reset_marks.insert(org.clone(), arrival);
            }
            self.head_ids.remove(&org);
            let actions = self.sync.feed_reset(&org, head);
            self.run_sync(now, actions, out);
        }
        // Every peer hears the new version, and its heads are believed again: documents refused
        // under the old version are fetched again.
        let admitted: Vec<PeerKey> = self.peers.iter().filter(|(_, p)| p.is_admitted()).map(|(k, _)| *k).collect();
        for peer in admitted {
            self.send_status(peer, out);
        }
    }

    // --- Time ----------------------------------------------------------------------------

    pub(super) fn on_tick(&mut self, now: Instant, out: &mut Effects) {
        // Admission timeouts and turned-away peers.
        let due: Vec<(PeerKey, bool)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.deadline().is_some_and(|d| d <= now))
            .map(|(k, p)| (*k, matches!(p.standing, Standing::Waiting { .. })))
            .collect();
        for (peer, overdue) in due {
            if overdue {
                tracing::warn!(peer = %self.name(peer), "no valid certificate within the admission timeout; disconnecting");
            }
            // Forgotten now, so the deadline is not met twice; the shell's disconnect event
            // finds no record.
            self.on_disconnected(now, peer, out);
            out.push(Effect::Disconnect { peer });
        }
        for name in self.penalties.expire(now) {
            tracing::info!(peer = %name, "ban lifted");
            self.view_changed = ViewChange::Peers;
            out.push(Effect::Unban { name });
        }
        if let Some((_, tag, since)) = self.charter_pull {
            if now.saturating_duration_since(since) >= REQUEST_TIMEOUT {
                self.pending.remove(&tag);
                self.charter_pull = None;
            }
        }
        // A status round every STATUS_INTERVAL, or sooner (at most once per
        // PROGRESS_STATUS_INTERVAL) while catching up, so peers see what we can serve them.
        let progress = self.sync.progress_status_due()
            && self.next_status.is_some_and(|t| now + STATUS_INTERVAL >= t + PROGRESS_STATUS_INTERVAL);
        if self.next_status.is_none_or(|t| t <= now) || progress {
            self.next_status = Some(now + STATUS_INTERVAL);
            let mut actions = self.sync.tick();
            actions.retain(|a| !matches!(a, Action::SendStatus { peer } if self.status_answered_lately(now, *peer)));
            self.run_sync(now, actions, out);
        }
        if self.next_prune.is_none_or(|t| t <= now) {
            self.next_prune = Some(now + topology::PRUNE_INTERVAL);
            self.prune(now, out);
        }
        if self.next_retry.is_none_or(|t| t <= now) {
            self.next_retry = Some(now + RETRY_INTERVAL);
            self.fetch_payloads(now, out);
            let actions = self.sync.poll();
            self.run_sync(now, actions, out);
        }
    }

    pub(super) fn fetch_payloads(&mut self, now: Instant, out: &mut Effects) {
        if self.payloads.reader.is_none() {
            return;
        }
        if let Some(r) = &self.payloads.in_flight {
            if now.saturating_duration_since(r.since) < REQUEST_TIMEOUT {
                return;
            }
            let r = self.payloads.in_flight.take().expect("checked above");
            self.pending.remove(&r.tag);
            self.payloads.not_served(r.ids);
        }
        if !self.payloads.walking
            && self.payloads.last_walk.is_none_or(|at| now.saturating_duration_since(at) >= PAYLOAD_WALK_INTERVAL)
        {
            self.payloads.last_walk = Some(now);
            self.payloads.walking = true;
            out.push(Effect::WalkNotices { after: self.payloads.walk_cursor });
        }
        let any_admitted = self.peers.values().any(PeerRecord::is_admitted);
        if self.payloads.filtering.is_some()
            || self.payloads.accepting.is_some()
            || !any_admitted
            || !self.payloads.has_wanted()
        {
            return;
        }
        let ids = self.payloads.take(PAYLOADS_MAX);
        self.payloads.filtering = Some(ids.clone());
        out.push(Effect::FilterPayloads { ids });
    }

    pub(super) fn on_payloads_filtered(&mut self, now: Instant, ids: Vec<DocumentId>, out: &mut Effects) {
        let batch = self.payloads.filtering.take().unwrap_or_default();
        let dropped: Vec<DocumentId> = batch.iter().filter(|id| !ids.contains(id)).copied().collect();
        self.payloads.served(&dropped);
        let ids: Vec<DocumentId> = ids.into_iter().filter(|id| batch.contains(id)).collect();
        if ids.is_empty() {
            return;
        }
        let admitted: Vec<PeerKey> = self.peers.iter().filter(|(_, p)| p.is_admitted()).map(|(k, _)| *k).collect();
        if admitted.is_empty() {
            self.payloads.not_served(ids);
            return;
        }
        let peer = admitted[self.payloads.next_peer % admitted.len()];
        self.payloads.next_peer = self.payloads.next_peer.wrapping_add(1);
        let tag = self.send(peer, Pending::Payloads, Outbound::Payloads { ids: ids.clone() }, out);
        self.payloads.in_flight = Some(PayloadRequest { peer, tag, ids, since: now });
    }
}
