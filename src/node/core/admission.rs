//! Peers and admission, and requests from peers: connection and disconnection, certificates
//! (admit, turn away, settle once the charter answer is in), serving within bounds, statuses,
//! charter and fork-proof pulls.

use std::time::Instant;

use super::*;
use crate::sync::heads::Heads;
use crate::sync::wire::FeedHead;

impl Core {
    // --- Peers and admission -------------------------------------------------------------

    pub(super) fn on_connected(
        &mut self,
        now: Instant,
        peer: PeerKey,
        name: String,
        address: String,
        out: &mut Effects,
    ) {
        if self.penalties.is_banned(&name) {
            // Connected before the block took effect.
            out.push(Effect::Disconnect { peer });
            return;
        }
        tracing::info!(peer = %name, %address, "peer connected");
        self.view_changed = ViewChange::Peers;
        if self.config.permissioned {
            // Synced with only once admitted; first, certificates both ways.
            let standing = Standing::Waiting { since: now, shown: None };
            self.peers.insert(peer, PeerRecord::new(name, address, standing, now));
            self.send(peer, Pending::Hello, Outbound::Hello, out);
        } else {
            let standing = Standing::Admitted { org: None, cert: Vec::new() };
            self.peers.insert(peer, PeerRecord::new(name, address, standing, now));
            self.start_sync(now, peer, out);
        }
    }

    pub(super) fn on_disconnected(&mut self, now: Instant, peer: PeerKey, out: &mut Effects) {
        let Some(record) = self.peers.remove(&peer) else { return };
        tracing::info!(peer = %record.name, "peer disconnected");
        self.view_changed = ViewChange::Peers;
        self.pending.retain(|_, (k, _)| *k != peer);
        if self.charter_pull.as_ref().is_some_and(|(k, _, _)| *k == peer) {
            self.charter_pull = None;
        }
        if let Some(r) = self.payloads.in_flight.take_if(|r| r.peer == peer) {
            self.payloads.not_served(r.ids);
        }
        // Answers being served to it hold their node-wide slots until the shell reports them.
        self.stop_sync(now, peer, out);
    }

    pub(super) fn start_sync(&mut self, now: Instant, peer: PeerKey, out: &mut Effects) {
        let actions = self.sync.peer_connected(peer);
        self.run_sync(now, actions, out);
    }

    /// Nothing more is asked of the peer: its ranges go to other peers.
    fn stop_sync(&mut self, now: Instant, peer: PeerKey, out: &mut Effects) {
        let actions = self.sync.peer_disconnected(peer);
        self.run_sync(now, actions, out);
    }

    /// Checks a certificate a peer showed; admits it, or says why not.
    pub(super) fn on_certificate(
        &mut self,
        now: Instant,
        peer: PeerKey,
        cert: Vec<u8>,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) -> Result<(), CertError> {
        let Some(record) = self.peers.get(&peer) else { return Ok(()) };
        if !self.config.permissioned {
            return Ok(());
        }
        match certs.check(&cert, &record.name) {
            Ok(org) => {
                self.admit(now, peer, org, cert, out);
                Ok(())
            }
            Err(e) => {
                let record = self.peers.get_mut(&peer).expect("looked up above");
                match &mut record.standing {
                    Standing::Waiting { shown, .. } | Standing::Leaving { shown, .. } => *shown = Some(cert),
                    Standing::Admitted { .. } => {}
                }
                // A certificate of an organization or key this node does not know may come
                // from a charter version it has not seen: ask the peer before giving up on it.
                if matches!(e, CertError::UnknownOrganization(_) | CertError::KeyNotAuthorized(_)) {
                    self.pull_charters(now, peer, true, out);
                }
                Err(e)
            }
        }
    }

    pub(super) fn admit(&mut self, now: Instant, peer: PeerKey, org: OrgId, cert: Vec<u8>, out: &mut Effects) {
        let Some(record) = self.peers.get_mut(&peer) else { return };
        let new = !record.is_admitted();
        record.standing = Standing::Admitted { org: Some(org.clone()), cert };
        self.view_changed = ViewChange::Peers;
        if new {
            tracing::info!(peer = %record.name, %org, "peer admitted by certificate");
            out.push(Effect::Admit { peer });
            self.start_sync(now, peer, out);
        }
    }

    /// Turns a peer away: it is disconnected after [`TURN_AWAY_GRACE`] unless admitted first.
    pub(super) fn turn_away(&mut self, now: Instant, peer: PeerKey, reason: &str, out: &mut Effects) {
        let Some(record) = self.peers.get_mut(&peer) else { return };
        tracing::warn!(peer = %record.name, reason, "peer not admitted; disconnecting");
        let shown = record.shown().map(<[u8]>::to_vec);
        let was_admitted = record.is_admitted();
        record.standing = Standing::Leaving { at: now + TURN_AWAY_GRACE, shown };
        self.view_changed = ViewChange::Peers;
        if was_admitted {
            self.stop_sync(now, peer, out);
        }
    }

    /// Once the charter answer of `peer` is in, a certificate it showed either verifies now
    /// or it is turned away at once (not at the admission timeout).
    pub(super) fn settle_shown_certificate(
        &mut self,
        now: Instant,
        peer: PeerKey,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) {
        let Some(record) = self.peers.get(&peer) else { return };
        if !matches!(record.standing, Standing::Waiting { .. }) {
            return;
        }
        let Some(cert) = record.shown().map(<[u8]>::to_vec) else { return };
        match certs.check(&cert, &record.name) {
            Ok(org) => self.admit(now, peer, org, cert, out),
            Err(e) => {
                let reason = format!("certificate not valid under any charter it could show: {e}");
                self.turn_away(now, peer, &reason, out);
            }
        }
    }

    // --- Requests from peers -------------------------------------------------------------

    pub(super) fn on_request(
        &mut self,
        now: Instant,
        peer: PeerKey,
        tag: InboundTag,
        request: Request,
        certs: &dyn Certificates,
        out: &mut Effects,
    ) {
        let Some(record) = self.peers.get(&peer) else {
            out.push(refuse(tag, RefusalCode::NotAdmitted, "not connected"));
            return;
        };
        let admitted = record.is_admitted();
        match request {
            Request::Hello { cert } => match self.on_certificate(now, peer, cert, certs, out) {
                Ok(()) => {
                    let cert = self.config.own_cert.clone();
                    out.push(Effect::Respond { tag, response: Response::Hello { cert } });
                }
                Err(e) => {
                    let reason = format!("not admitted: {e} ({})", e.code());
                    let code = match e {
                        CertError::UnknownOrganization(_) => RefusalCode::NotAMember,
                        _ => RefusalCode::CertificateInvalid,
                    };
                    out.push(refuse(tag, code, &reason));
                    if self.charter_pull.as_ref().is_none_or(|(k, _, _)| *k != peer) {
                        self.turn_away(now, peer, &reason, out);
                    }
                }
            },
            // Charter versions are public to anyone who can verify them, and a peer whose
            // certificate this node rejects may need a newer version to prove it is a member.
            charters @ Request::Charters { .. } => self.serve(now, peer, tag, charters, out),
            // Not disconnected at once: its hello may still be on the way (requests travel on
            // separate streams). A peer that never shows one leaves at the admission timeout.
            _ if !admitted => {
                out.push(refuse(tag, RefusalCode::NotAdmitted, "not admitted: show a valid node certificate first"))
            }
            Request::Status(status) => {
                if status.network_id != self.config.network_id {
                    out.push(refuse(tag, RefusalCode::WrongNetwork, "wrong network"));
                    self.penalize(now, peer, Offense::WrongNetwork, out);
                    return;
                }
                self.on_status(now, peer, status, out);
                // Answered with what this node holds of the peer's heads now, so that the peer
                // sends them in full next time if this status named heads it does not hold.
                let Some(record) = self.peers.get(&peer) else { return };
                let (known, peer_holds) = (record.status.known(), record.status.peer_holds());
                if self.take_serving_slot(now, peer, tag, out).is_some() {
                    let moves = self.sync.local_moves();
                    if let Some(record) = self.peers.get_mut(&peer) {
                        record.answered = Some((now, moves));
                    }
                    out.push(Effect::AnswerStatus { peer, tag, known, peer_holds });
                }
            }
            other => self.serve(now, peer, tag, other, out),
        }
    }

    /// Hands a request to the shell to answer from the store, within the serving bounds.
    pub(super) fn serve(&mut self, now: Instant, peer: PeerKey, tag: InboundTag, request: Request, out: &mut Effects) {
        if let Some(reader) = self.take_serving_slot(now, peer, tag, out) {
            out.push(Effect::Serve { peer, tag, request, reader });
        }
    }

    /// A serving slot for one answer to `peer` (freed by [`Event::Served`]), and the reader
    /// it is served as; or the refusal sent instead, `None`.
    pub(super) fn take_serving_slot(
        &mut self,
        now: Instant,
        peer: PeerKey,
        tag: InboundTag,
        out: &mut Effects,
    ) -> Option<Option<OrgId>> {
        if self.serving >= SERVING_MAX {
            out.push(refuse(tag, RefusalCode::Busy, "busy: try again later"));
            return None;
        }
        let record = self.peers.get_mut(&peer)?;
        if record.serving >= SERVING_PER_PEER_MAX {
            out.push(refuse(tag, RefusalCode::TooMany, "too many requests at once"));
            self.penalize(now, peer, Offense::RequestFlood, out);
            return None;
        }
        record.serving += 1;
        self.serving += 1;
        Some(record.org().cloned())
    }

    /// A status from a peer (its request or its answer), for this node's network.
    pub(super) fn on_status(&mut self, now: Instant, peer: PeerKey, status: Status, out: &mut Effects) {
        let Some(record) = self.peers.get_mut(&peer) else { return };
        let charter_version = status.charter_version;
        let announced_newer = charter_version > self.charter_version && charter_version > record.charter_version;
        record.charter_version = charter_version;
        let heads = record.status.receive(status);
        let unchanged = matches!(heads, Heads::Unchanged(_));
        if charter_version > self.charter_version {
            self.pull_charters(now, peer, announced_newer, out);
        }
        let Some(heads) = heads.into_heads() else {
            // It named heads this node does not hold; the `known` of the next status it gets
            // from this node (the answer, if this was a request) makes it send them.
            tracing::debug!(peer = %self.name(peer), "status names heads not held; asking for them in full");
            return;
        };
        let Some(record) = self.peers.get_mut(&peer) else { return };
        let watched: Vec<&FeedHead> = heads.iter().filter(|h| self.trusted.contains(&h.org)).collect();
        // Compared in place (both are in the organizations' order) before anything is copied:
        // a quiet network's every status repeats the heads, and the peers view stays as it is.
        let same_view = record.heads.len() == watched.len()
            && record.heads.iter().zip(&watched).all(|((org, seq), h)| *org == h.org && *seq == h.seq);
        if !same_view {
            record.heads = watched.iter().map(|h| (h.org.clone(), h.seq)).collect();
            self.view_changed = self.view_changed.max(ViewChange::Heads);
        }
        // The same heads (forks included) seen through the same trust as the last status: the
        // checkpoint schedule already holds exactly these (a charter change prunes both).
        if !(unchanged && same_view) {
            let (permissioned, grants) = (self.config.permissioned, &mut self.follow_grants);
            let follow = |org: &OrgId, head: Seq| {
                if !permissioned {
                    return 1;
                }
                match grants.get_mut(org) {
                    Some((seen, left)) if *seen >= head => {
                        if *seen > head || *left == 0 {
                            return 1;
                        }
                        *left -= 1;
                    }
                    _ => {
                        grants.insert(org.clone(), (head, checkpoints::FOLLOW_PEERS - 1));
                    }
                }
                checkpoints::FOLLOW_PULLS
            };
            let announced = watched.iter().map(|h| (h.org.clone(), h.seq, h.id, h.forked_at));
            record.checkpoints.announced(now, announced, follow);
        }
        // At most one fork-proof request in flight per peer, and each publisher's proof asked
        // for at most once per cooldown: a status announcing thousands of forks costs one
        // request.
        let forked: Vec<(OrgId, Seq)> = heads
            .iter()
            .filter_map(|h| Some((h.org.clone(), h.forked_at?)))
            .filter(|(org, seq)| self.trusted.contains(org) && !self.known_forks.contains(&(org.clone(), *seq)))
            .collect();
        self.proof_pulls.retain(|_, since| now.saturating_duration_since(*since) < PROOF_PULL_COOLDOWN);
        if let Some((org, _)) = forked.into_iter().find(|(org, _)| !self.proof_pulls.contains_key(org)) {
            if !self.has_pending(peer, &Pending::ForkProofs { org: org.clone() }) {
                self.proof_pulls.insert(org.clone(), now);
                self.send(peer, Pending::ForkProofs { org: org.clone() }, Outbound::ForkProofs { org }, out);
            }
        }
        self.pull_checkpoints(now, peer, out);
        let actions = self.sync.status_received(peer, heads.iter().map(|h| (&h.org, h.seq)));
        self.run_sync(now, actions, out);
    }

    /// Asks an admitted `peer` for its latest cosigned checkpoints of the feeds due
    /// ([`super::checkpoints`]), one request in flight; once per sweep interval this peer
    /// is the one asked for every feed it announces.
    fn pull_checkpoints(&mut self, now: Instant, peer: PeerKey, out: &mut Effects) {
        if self.has_pending(peer, &Pending::Checkpoints { orgs: Vec::new() }) {
            return;
        }
        let sweep_due =
            self.checkpoint_sweep.is_none_or(|at| now.saturating_duration_since(at) >= checkpoints::SWEEP_INTERVAL);
        let Some(record) = self.peers.get_mut(&peer) else { return };
        if !record.is_admitted() {
            return;
        }
        if sweep_due {
            record.checkpoints.sweep(now);
            self.checkpoint_sweep = Some(now);
        }
        // A checkpoint as large as the peer's head is all this peer can add, but cosignatures
        // (which a follow peer's pulls and the sweep, always asked, are for) or, of its first
        // head of a feed, a split view (impossible when the head is the entry held here).
        let (held, head_ids) = (&self.checkpoints_held, &self.head_ids);
        let orgs = record.checkpoints.take_due(now, |org, head, id| checkpoints::Holding {
            checkpoint_as_large: held.get(org).is_some_and(|size| *size >= head.0),
            same_head: head_ids.get(org) == Some(&(head, *id)),
        });
        if !orgs.is_empty() {
            self.send(peer, Pending::Checkpoints { orgs: orgs.clone() }, Outbound::Checkpoints { orgs }, out);
        }
    }

    /// Asks `peer` for charter versions newer than the one in force: one request at a time,
    /// each peer at most once per [`CHARTER_PULL_COOLDOWN`] unless `urgent` (it announced a
    /// newer version, or showed a certificate only a newer version could make valid).
    pub(super) fn pull_charters(&mut self, now: Instant, peer: PeerKey, urgent: bool, out: &mut Effects) {
        if self.charter_pull.is_some() {
            return;
        }
        let Some(record) = self.peers.get_mut(&peer) else { return };
        let recent = record.charters_asked.is_some_and(|at| now.saturating_duration_since(at) < CHARTER_PULL_COOLDOWN);
        if recent && !urgent {
            return;
        }
        record.charters_asked = Some(now);
        let from_version = self.charter_version + 1;
        let tag = self.send(peer, Pending::Charters, Outbound::Charters { from_version }, out);
        self.charter_pull = Some((peer, tag, now));
    }
}
