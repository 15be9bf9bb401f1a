//! The node core without sockets: scenarios of the faults it must not have, and seeded random
//! schedules of every event (every ingest outcome, disconnects mid-request, charter changes,
//! restarts), with every invariant asserted after each event.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::*;

mod sim;
mod status;
use crate::ingest::IngestError;
use crate::store::FeedError;
use crate::sync::wire::{FeedHead, HeadsDigest};

fn org(s: &str) -> OrgId {
    OrgId::new(s).unwrap()
}

/// Certificates are `ORG` bytes; valid while the organization is a member.
struct Members(RefCell<BTreeSet<OrgId>>);

impl Members {
    fn of(orgs: &[&str]) -> Members {
        Members(RefCell::new(orgs.iter().map(|o| org(o)).collect()))
    }
}

impl Certificates for Members {
    fn check(&self, cert: &[u8], _peer: &str) -> Result<OrgId, CertError> {
        let id = OrgId::new(std::str::from_utf8(cert).map_err(|_| CertError::BadSignature)?)
            .map_err(|_| CertError::Malformed("not an org".into()))?;
        if self.0.borrow().contains(&id) {
            Ok(id)
        } else {
            Err(CertError::UnknownOrganization(id))
        }
    }
}

/// A core and a clock.
struct Node {
    core: Core,
    now: Instant,
    certs: Members,
    /// Every effect, for assertions.
    log: Vec<Effect>,
    /// The last events and their effects, shown when an invariant breaks.
    events: Vec<String>,
}

impl Node {
    fn new(permissioned: bool, trusted: &[&str]) -> Node {
        let config = CoreConfig {
            // Small ranges, so that a feed takes many requests.
            sync: SyncConfig { range_count: 10, ..Default::default() },
            permissioned,
            network_id: [7; 32],
            trusted: trusted.iter().map(|o| org(o)).collect(),
            charter_version: 1,
            ..Default::default()
        };
        Node {
            core: Core::new(config),
            now: Instant::now(),
            certs: Members::of(trusted),
            log: Vec::new(),
            events: Vec::new(),
        }
    }

    fn on(&mut self, event: Event) -> Vec<Effect> {
        let shown = format!("{event:?}");
        let effects = self.core.handle(self.now, event, &self.certs);
        self.events.push(format!("{shown} => {effects:?}"));
        if self.events.len() > 40 {
            self.events.remove(0);
        }
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.core.check_invariants())).is_err() {
            panic!("after:\n{}", self.events.join("\n"));
        }
        self.log.extend(effects.iter().cloned());
        effects
    }

    fn advance(&mut self, by: Duration) -> Vec<Effect> {
        self.now += by;
        self.on(Event::Tick)
    }

    fn connect(&mut self, peer: PeerKey) -> Vec<Effect> {
        self.on(Event::Connected { peer, name: format!("peer-{peer}"), address: "/ip4/127.0.0.1/tcp/1".into() })
    }

    /// Connects and admits a peer with a certificate for `org` (its hello request).
    fn admit(&mut self, peer: PeerKey, org: &str) -> Vec<Effect> {
        let mut effects = self.connect(peer);
        effects.extend(self.on(Event::Request {
            peer,
            tag: InboundTag(1000 + peer),
            request: Request::Hello { cert: org.as_bytes().to_vec() },
        }));
        effects
    }

    fn status(&mut self, peer: PeerKey, heads: &[(&str, u64)]) -> Vec<Effect> {
        let heads = heads
            .iter()
            .map(|(o, s)| FeedHead { org: org(o), seq: Seq(*s), id: DocumentId::ZERO, forked_at: None })
            .collect();
        self.on(Event::Request { peer, tag: InboundTag(1), request: Request::Status(full_status(1, heads)) })
    }

    fn banned(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|e| if let Effect::Ban { name, .. } = e { Some(name.clone()) } else { None })
            .collect()
    }

    fn disconnected(&self) -> Vec<PeerKey> {
        self.log.iter().filter_map(|e| if let Effect::Disconnect { peer } = e { Some(*peer) } else { None }).collect()
    }
}

/// A status carrying its heads in full, as to a peer that holds none of them.
fn full_status(charter_version: u32, heads: Vec<FeedHead>) -> Status {
    Status::compose([7; 32], charter_version, heads, HeadsDigest::NONE, HeadsDigest::NONE)
}

fn sends(effects: &[Effect]) -> Vec<(PeerKey, Tag, Outbound)> {
    effects
        .iter()
        .filter_map(|e| {
            if let Effect::Send { peer, tag, request } = e {
                Some((*peer, *tag, request.clone()))
            } else {
                None
            }
        })
        .collect()
}

fn ranges(effects: &[Effect]) -> Vec<(PeerKey, Tag, u64, u32)> {
    sends(effects)
        .into_iter()
        .filter_map(
            |(p, t, r)| if let Outbound::Range { from, count, .. } = r { Some((p, t, from.0, count)) } else { None },
        )
        .collect()
}

fn ingests(effects: &[Effect]) -> Vec<Job> {
    effects.iter().filter_map(|e| if let Effect::Ingest(j) = e { Some(j.clone()) } else { None }).collect()
}

fn verdicts(effects: &[Effect]) -> Vec<Verdict> {
    effects.iter().filter_map(|e| if let Effect::Verdict { verdict, .. } = e { Some(*verdict) } else { None }).collect()
}

fn gossip_done(peer: PeerKey, gossip: u64, outcome: Result<IngestOutcome, IngestError>) -> Event {
    Event::Ingested(Done {
        origin: Origin::Gossip { peer, gossip: GossipId(gossip) },
        feed: Some((org("NL"), Seq(1), Seq(0))),
        result: IngestResult::Ok,
        outcome: Some(outcome),
    })
}

fn unknown_publisher() -> IngestError {
    IngestError::Authority(crate::authority::AuthorityError::UnknownPublisher(org("NL")))
}

fn bad_signature() -> IngestError {
    IngestError::Verify(crate::document::VerifyError::BadSignature)
}

#[test]
fn gossip_refused_for_authority_never_penalizes_and_asks_the_sender_for_newer_charters() {
    // A charter version adding NL reached peer 1 first; NL's documents reach this node by
    // gossip before the version does.
    let mut n = Node::new(true, &["WCO", "FR"]);
    n.admit(1, "FR");
    let mut charter_pulls = 0;
    for g in 0..60 {
        let e = n.on(Event::Gossip { peer: 1, gossip: GossipId(g), data: vec![g as u8] });
        assert_eq!(ingests(&e).len(), 1);
        let e = n.on(gossip_done(1, g, Err(unknown_publisher())));
        assert_eq!(verdicts(&e), vec![Verdict::Ignore], "not forwarded, not rejected");
        charter_pulls += sends(&e).iter().filter(|(_, _, r)| matches!(r, Outbound::Charters { .. })).count();
    }
    assert!(n.banned().is_empty() && n.disconnected().is_empty(), "an honest peer on a newer charter stays");
    assert_eq!(charter_pulls, 1, "one charter request at a time, not one per document");
    assert_eq!(n.core.peer_summaries(n.now)[0].penalty_points, 0);
}

#[test]
fn gossip_that_is_bad_under_any_charter_is_rejected_and_bans_its_sender() {
    let mut n = Node::new(false, &["WCO"]);
    n.connect(1);
    for g in 0..4 {
        let _ = n.on(Event::Gossip { peer: 1, gossip: GossipId(g), data: vec![1] });
        let e = n.on(gossip_done(1, g, Err(bad_signature())));
        assert_eq!(verdicts(&e), vec![Verdict::Reject]);
    }
    assert_eq!(n.banned(), vec!["peer-1".to_string()], "3 points each, banned at 10");
    assert!(n.core.peer_summaries(n.now).is_empty(), "a banned peer's record goes at once");
}

#[test]
fn gossip_stored_is_accepted_and_a_gap_makes_the_node_fetch_what_lies_between() {
    let mut n = Node::new(false, &["NL"]);
    n.connect(1);
    let _ = n.on(Event::Gossip { peer: 1, gossip: GossipId(0), data: vec![1] });
    let e = n.on(gossip_done(1, 0, Ok(IngestOutcome::Stored)));
    assert_eq!(verdicts(&e), vec![Verdict::Accept]);
    let _ = n.on(Event::Gossip { peer: 1, gossip: GossipId(1), data: vec![1] });
    let e = n.on(Event::Ingested(Done {
        origin: Origin::Gossip { peer: 1, gossip: GossipId(1) },
        feed: Some((org("NL"), Seq(9), Seq(1))),
        result: IngestResult::Ok,
        outcome: Some(Err(IngestError::Feed(FeedError::Gap { publisher: org("NL"), expected: Seq(2), found: Seq(9) }))),
    }));
    assert_eq!(verdicts(&e), vec![Verdict::Ignore]);
    let asked: Vec<(u64, u32)> = ranges(&e).into_iter().map(|(_, _, from, count)| (from, count)).collect();
    assert_eq!(asked, vec![(1, 9)], "the sender holds NL up to 9");
}

#[test]
fn an_uncertified_peer_is_disconnected_at_the_admission_timeout_not_after() {
    let mut n = Node::new(true, &["FR"]);
    let e = n.connect(1);
    assert!(matches!(sends(&e)[..], [(1, _, Outbound::Hello)]));
    assert_eq!(n.core.next_wakeup(), Some(n.now + ADMISSION_TIMEOUT), "the shell wakes the core exactly then");
    assert!(n
        .advance(ADMISSION_TIMEOUT - Duration::from_millis(1))
        .iter()
        .all(|e| !matches!(e, Effect::Disconnect { .. })));
    let e = n.advance(Duration::from_millis(1));
    assert!(e.contains(&Effect::Disconnect { peer: 1 }));
    // Its requests meanwhile were refused, typed.
    let mut n = Node::new(true, &["FR"]);
    n.connect(2);
    let e = n.status(2, &[("FR", 3)]);
    assert!(matches!(
        &e[..],
        [Effect::Respond { response: Response::Refused { code: RefusalCode::NotAdmitted, .. }, .. }]
    ));
}

#[test]
fn a_certificate_of_an_unknown_member_is_refused_as_soon_as_the_charter_answer_is_in() {
    let mut n = Node::new(true, &["FR"]);
    n.connect(1);
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(5), request: Request::Hello { cert: b"NL".to_vec() } });
    let pull = sends(&e)
        .into_iter()
        .find(|(_, _, r)| matches!(r, Outbound::Charters { from_version: 2 }))
        .expect("asks for newer charters");
    assert!(n.disconnected().is_empty());
    // The peer has nothing newer: turned away now (after the grace), not at the 10 s timeout.
    let _ = n.on(Event::Response { tag: pull.1, result: Ok(Response::Charters { files: Vec::new() }) });
    let e = n.advance(TURN_AWAY_GRACE);
    assert!(e.contains(&Effect::Disconnect { peer: 1 }));
}

#[test]
fn a_peer_turned_away_and_then_admitted_by_a_newer_charter_is_not_dropped_by_the_stale_turn_away() {
    let mut n = Node::new(true, &["FR"]);
    n.connect(1);
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(5), request: Request::Hello { cert: b"NL".to_vec() } });
    let pull = sends(&e).into_iter().find(|(_, _, r)| matches!(r, Outbound::Charters { .. })).unwrap();
    // The peer serves version 2, which adds NL.
    let e = n.on(Event::Response { tag: pull.1, result: Ok(Response::Charters { files: vec![vec![2]] }) });
    assert!(e.iter().any(|e| matches!(e, Effect::ApplyCharters { peer: 1, .. })));
    n.certs.0.borrow_mut().insert(org("NL"));
    let e = n.on(Event::ChartersApplied { peer: 1, outcome: ChartersApplied::Applied });
    assert!(e.contains(&Effect::Admit { peer: 1 }));
    let _ = n.on(Event::CharterChanged {
        version: 2,
        trusted: [org("FR"), org("NL")].into(),
        resets: Vec::new(),
        heads: Vec::new(),
        arrival: 0,
    });
    for _ in 0..30 {
        let _ = n.advance(Duration::from_millis(100));
    }
    assert!(n.disconnected().is_empty(), "admitted: no disconnect fires later");
    // And a peer turned away for an invalid certificate, then admitted within the grace:
    let mut n = Node::new(true, &["FR"]);
    n.connect(2);
    let _ = n.on(Event::Request { peer: 2, tag: InboundTag(6), request: Request::Hello { cert: b"!!".to_vec() } });
    n.certs.0.borrow_mut().insert(org("NL"));
    let _ = n.on(Event::Request { peer: 2, tag: InboundTag(7), request: Request::Hello { cert: b"NL".to_vec() } });
    let _ = n.advance(TURN_AWAY_GRACE * 3);
    assert!(n.disconnected().is_empty());
}

#[test]
fn a_charter_change_turns_away_the_nodes_of_an_organization_that_left() {
    let mut n = Node::new(true, &["FR", "XX"]);
    n.admit(1, "FR");
    n.admit(2, "XX");
    n.certs.0.borrow_mut().remove(&org("XX"));
    let _ = n.on(Event::CharterChanged {
        version: 2,
        trusted: [org("FR")].into(),
        resets: Vec::new(),
        heads: Vec::new(),
        arrival: 0,
    });
    let e = n.advance(TURN_AWAY_GRACE);
    assert!(e.contains(&Effect::Disconnect { peer: 2 }) && !e.contains(&Effect::Disconnect { peer: 1 }));
}

#[test]
fn one_status_announcing_thousands_of_forks_costs_one_fork_proof_request() {
    let mut trusted: Vec<String> = (0..300).map(|i| format!("O{i}")).collect();
    trusted.push("FR".into());
    let trusted_refs: Vec<&str> = trusted.iter().map(String::as_str).collect();
    let mut n = Node::new(false, &trusted_refs);
    n.connect(1);
    let mut heads: Vec<FeedHead> = (0..4096)
        .map(|i| FeedHead { org: org(&format!("Z{i}")), seq: Seq(5), id: DocumentId::ZERO, forked_at: Some(Seq(3)) })
        .collect();
    heads.extend(trusted.iter().map(|o| FeedHead {
        org: org(o),
        seq: Seq(5),
        id: DocumentId::ZERO,
        forked_at: Some(Seq(2)),
    }));
    let request = Request::Status(full_status(1, heads));
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(1), request: request.clone() });
    let proofs = sends(&e).iter().filter(|(_, _, r)| matches!(r, Outbound::ForkProofs { .. })).count();
    assert_eq!(proofs, 1);
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(2), request });
    assert_eq!(
        sends(&e).iter().filter(|(_, _, r)| matches!(r, Outbound::ForkProofs { .. })).count(),
        0,
        "still one in flight"
    );
    let heads = &n.core.peer_summaries(n.now)[0].heads;
    assert_eq!(heads.len(), trusted.len(), "invented publishers are not tracked");
}

#[test]
fn a_fork_announced_and_not_proven_costs_its_maker() {
    let mut n = Node::new(false, &["FR"]);
    n.connect(1);
    let heads = vec![FeedHead { org: org("FR"), seq: Seq(5), id: DocumentId::ZERO, forked_at: Some(Seq(2)) }];
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(1), request: Request::Status(full_status(1, heads)) });
    let (_, tag, _) = sends(&e).into_iter().find(|(_, _, r)| matches!(r, Outbound::ForkProofs { .. })).unwrap();
    let _ = n.on(Event::Response { tag, result: Ok(Response::ForkProofs { pairs: Vec::new() }) });
    assert_eq!(n.core.peer_summaries(n.now)[0].penalty_points, Offense::UnprovenFork.points());
}

#[test]
fn serving_is_bounded_per_peer_and_in_all() {
    let mut n = Node::new(false, &["FR"]);
    for p in 1..=3 {
        n.connect(p);
    }
    let range = || Request::Range { org: org("FR"), from: Seq(1), count_max: 10, bytes_max: 1000 };
    let mut served = 0;
    for i in 0..SERVING_PER_PEER_MAX + 2 {
        let e = n.on(Event::Request { peer: 1, tag: InboundTag(i as u64), request: range() });
        served += e.iter().filter(|e| matches!(e, Effect::Serve { .. })).count();
    }
    assert_eq!(served, SERVING_PER_PEER_MAX);
    assert!(n
        .log
        .iter()
        .any(|e| matches!(e, Effect::Respond { response: Response::Refused { code: RefusalCode::TooMany, .. }, .. })));
    for i in 0..SERVING_PER_PEER_MAX {
        let _ = n.on(Event::Request { peer: 2, tag: InboundTag(100 + i as u64), request: range() });
    }
    let e = n.on(Event::Request { peer: 3, tag: InboundTag(200), request: range() });
    assert!(matches!(&e[..], [Effect::Respond { response: Response::Refused { code: RefusalCode::Busy, .. }, .. }]));
    let _ = n.on(Event::Served { peer: 1 });
    let e = n.on(Event::Request { peer: 3, tag: InboundTag(201), request: range() });
    assert!(matches!(&e[..], [Effect::Serve { .. }]));
}

#[test]
fn a_malformed_answer_is_the_peer_s_fault() {
    let mut n = Node::new(false, &["FR"]);
    n.connect(1);
    let e = n.status(1, &[("FR", 100)]);
    let (_, tag, _, _) = ranges(&e)[0];
    let _ = n.on(Event::Response { tag, result: Err(RequestFailure::Malformed("truncated".into())) });
    assert_eq!(n.core.peer_summaries(n.now)[0].penalty_points, Offense::MalformedResponse.points());
}

#[test]
fn a_peer_record_and_its_requests_go_when_it_disconnects() {
    let mut n = Node::new(false, &["FR"]);
    n.connect(1);
    let e = n.status(1, &[("FR", 100)]);
    assert!(!ranges(&e).is_empty());
    let _ = n.on(Event::Disconnected { peer: 1 });
    assert!(n.core.peer_summaries(n.now).is_empty());
    assert!(n.core.pending.is_empty());
    // A late answer to a request of the gone peer changes nothing.
    let (_, tag, _, _) = ranges(&e)[0];
    let e = n.on(Event::Response { tag, result: Ok(Response::Range { docs: vec![vec![1]] }) });
    assert!(e.is_empty());
}

#[test]
fn a_node_dialed_by_forty_peers_keeps_a_third_over_its_target_its_bootstrap_peer_and_one_peer_per_organization() {
    let orgs: Vec<String> = (0..40).map(|i| format!("O{}", i % 10)).collect();
    let refs: Vec<&str> = orgs.iter().map(String::as_str).collect();
    let mut n = Node::new(true, &refs);
    n.core.config.bootstrap.insert("peer-39".into());
    let _ = n.advance(Duration::ZERO);
    for p in 0..40u64 {
        let _ = n.admit(p, &orgs[p as usize]);
        n.now += Duration::from_millis(100);
    }
    // Within the grace nobody is judged.
    let e = n.advance(topology::PRUNE_INTERVAL);
    assert!(!e.iter().any(|e| matches!(e, Effect::Disconnect { .. })));
    let _ = n.advance(topology::PRUNE_GRACE);
    let _ = n.advance(topology::PRUNE_INTERVAL);
    let kept = n.core.peer_summaries(n.now);
    let most = topology::keep_at_most(topology::CONNECTIONS_TARGET);
    assert_eq!(kept.len(), most, "{} kept", kept.len());
    assert!(kept.iter().any(|p| p.name == "peer-39"), "the bootstrap peer stays");
    let kept_orgs: BTreeSet<_> = kept.iter().filter_map(|p| p.org.clone()).collect();
    assert_eq!(kept_orgs.len(), 10, "every organization keeps a peer");
    assert_eq!(n.disconnected().len(), 40 - most);
    assert_eq!(n.core.penalty_counts().1, 0, "letting go is not a penalty");
}

#[test]
fn a_certificate_replaced_while_running_is_the_one_answered_to_peers_that_say_hello_afterwards() {
    let mut n = Node::new(true, &["FR", "WCO"]);
    n.core.set_own_cert(Vec::new(), None);
    let hello = |n: &mut Node, peer: PeerKey| {
        n.connect(peer);
        let e = n.on(Event::Request {
            peer,
            tag: InboundTag(50 + peer),
            request: Request::Hello { cert: b"WCO".to_vec() },
        });
        e.into_iter()
            .find_map(|e| match e {
                Effect::Respond { response: Response::Hello { cert }, .. } => Some(cert),
                _ => None,
            })
            .expect("a hello is answered with this node's certificate")
    };
    assert_eq!(hello(&mut n, 1), Vec::<u8>::new(), "no certificate yet");
    n.core.set_own_cert(b"FR".to_vec(), Some(org("FR")));
    assert_eq!(hello(&mut n, 2), b"FR".to_vec());
    assert_eq!(n.core.payloads.reader, Some(org("FR")), "sealed payloads are read as the new organization");
}

/// A peer sends a status every 10 s with the heads `heads(i)` of 40 feeds, from `from_s` to
/// `to_s`; every checkpoint request is answered (with nothing new). The feeds asked for,
/// with the time.
fn checkpoint_pulls(n: &mut Node, from_s: u64, to_s: u64, heads: &dyn Fn(usize) -> u64) -> Vec<(u64, Vec<OrgId>)> {
    let orgs: Vec<String> = (0..40).map(|i| format!("O{i:02}")).collect();
    let mut asked = Vec::new();
    for t in (from_s..to_s).step_by(10) {
        let mut effects = n.advance(Duration::from_secs(10));
        let status: Vec<(&str, u64)> = orgs.iter().enumerate().map(|(i, o)| (o.as_str(), heads(i))).collect();
        effects.extend(n.status(1, &status));
        for e in &effects {
            if let Effect::Serve { peer, .. } | Effect::AnswerStatus { peer, .. } = e {
                let _ = n.on(Event::Served { peer: *peer });
            }
        }
        for (_, tag, request) in sends(&effects) {
            if let Outbound::Checkpoints { orgs } = request {
                assert!(orgs.len() <= crate::sync::wire::CHECKPOINT_FEEDS_MAX);
                asked.push((t, orgs));
                let result = Ok(Response::Checkpoints { items: Vec::new(), forks: Vec::new() });
                let _ = n.on(Event::Response { tag, result });
            }
        }
    }
    asked
}

fn feeds_asked(asked: &[(u64, Vec<OrgId>)]) -> usize {
    asked.iter().map(|(_, o)| o.len()).sum()
}

#[test]
fn a_new_head_is_asked_with_follow_ups_of_two_peers_and_of_the_others_only_until_a_checkpoint_as_large_is_held() {
    let mut n = Node::new(true, &["A", "B", "C", "D", "E", "F"]);
    let peers: Vec<PeerKey> = (1..=6).collect();
    for (p, o) in peers.iter().zip(["A", "B", "C", "D", "E", "F"]) {
        let _ = n.admit(*p, o);
    }
    // Every peer announces feed A at 5 every 10 s; each checkpoints request is answered with
    // nothing new, and when `held_from` is reached this node holds a checkpoint of size `held`.
    let mut asked: BTreeMap<PeerKey, usize> = BTreeMap::new();
    // The peers' statuses come one after another, each answer before the next status.
    let round = |n: &mut Node, head: u64, held: Option<u64>, asked: &mut BTreeMap<PeerKey, usize>| {
        let _ = n.advance(Duration::from_secs(10));
        for p in &peers {
            let effects = n.status(*p, &[("A", head)]);
            for e in &effects {
                if let Effect::Serve { peer, .. } | Effect::AnswerStatus { peer, .. } = e {
                    let _ = n.on(Event::Served { peer: *peer });
                }
            }
            for (peer, tag, request) in sends(&effects) {
                if let Outbound::Checkpoints { orgs } = request {
                    assert_eq!(orgs, vec![org("A")]);
                    *asked.entry(peer).or_default() += 1;
                    let result = Ok(Response::Checkpoints { items: Vec::new(), forks: Vec::new() });
                    let _ = n.on(Event::Response { tag, result });
                    let held = held.map(|size| vec![(org("A"), size)]).unwrap_or_default();
                    let _ = n.on(Event::CheckpointsTaken { peer, invalid: None, held });
                }
            }
        }
    };
    // First contact: every peer once (the split-view check), the first two three times.
    for _ in 0..20 {
        round(&mut n, 5, Some(5), &mut asked);
    }
    let mut counts: Vec<usize> = asked.values().copied().collect();
    counts.sort();
    assert_eq!(counts, vec![1, 1, 1, 1, 3, 3], "{asked:?}");
    // A new head: two follow peers three times each; the others not at all once this node
    // holds a checkpoint that large (from the first answer).
    asked.clear();
    for _ in 0..20 {
        round(&mut n, 6, Some(6), &mut asked);
    }
    assert_eq!(asked.values().sum::<usize>(), 6, "{asked:?}");
    assert_eq!(asked.len(), 2, "{asked:?}");
    // A newer head no peer's answer makes this node hold: the follow peers three times, the
    // others once each.
    asked.clear();
    for _ in 0..20 {
        round(&mut n, 7, Some(6), &mut asked);
    }
    let mut counts: Vec<usize> = asked.values().copied().collect();
    counts.sort();
    assert_eq!(counts, vec![1, 1, 1, 1, 3, 3], "{asked:?}");
}

#[test]
fn a_peers_first_head_is_not_asked_for_when_it_is_the_entry_held_here_with_a_checkpoint_as_large() {
    let mut n = Node::new(true, &["A", "B", "C", "D", "E", "F"]);
    let peers: Vec<PeerKey> = (1..=6).collect();
    for (p, o) in peers.iter().zip(["A", "B", "C", "D", "E", "F"]) {
        let _ = n.admit(*p, o);
    }
    // This node stored A's entry 5 and holds a checkpoint of that size.
    let held = DocumentId([5; 32]);
    let _ = n.on(Event::Stored { id: held, publisher: org("A"), seq: Seq(5), notice: false, arrival: 1 });
    let _ = n.on(Event::CheckpointsTaken { peer: 1, invalid: None, held: vec![(org("A"), 5)] });
    // Peers 1–4 announce that very entry as A's head, 5 and 6 another entry at 5 (a history
    // of their own, which only comparing checkpoints would show).
    let announced = |p: PeerKey| if p <= 4 { held } else { DocumentId([6; 32]) };
    let mut asked: BTreeMap<PeerKey, usize> = BTreeMap::new();
    for _ in 0..20 {
        let _ = n.advance(Duration::from_secs(10));
        for p in &peers {
            let head = FeedHead { org: org("A"), seq: Seq(5), id: announced(*p), forked_at: None };
            let status = Request::Status(full_status(1, vec![head]));
            let effects = n.on(Event::Request { peer: *p, tag: InboundTag(1), request: status });
            for e in &effects {
                if let Effect::Serve { peer, .. } | Effect::AnswerStatus { peer, .. } = e {
                    let _ = n.on(Event::Served { peer: *peer });
                }
            }
            for (peer, tag, request) in sends(&effects) {
                if let Outbound::Checkpoints { .. } = request {
                    *asked.entry(peer).or_default() += 1;
                    let result = Ok(Response::Checkpoints { items: Vec::new(), forks: Vec::new() });
                    let _ = n.on(Event::Response { tag, result });
                    let _ = n.on(Event::CheckpointsTaken { peer, invalid: None, held: vec![(org("A"), 5)] });
                }
            }
        }
    }
    // The follow peers (the first two to announce the head) three times for cosignatures;
    // the two with another entry once each (the split-view check); the others not at all.
    assert_eq!(asked, BTreeMap::from([(1, 3), (2, 3), (5, 1), (6, 1)]));
}

#[test]
fn a_quiet_peer_is_asked_for_checkpoints_only_after_its_heads_change_and_once_a_sweep() {
    let orgs: Vec<String> = (0..40).map(|i| format!("O{i:02}")).collect();
    let refs: Vec<&str> = orgs.iter().map(String::as_str).collect();
    // A charter network: witnesses cosign, so a changed feed is asked three times.
    let mut n = Node::new(true, &refs);
    let _ = n.admit(1, "O00");
    let asked = checkpoint_pulls(&mut n, 0, 600, &|_| 5);
    assert_eq!(feeds_asked(&asked), 3 * 40, "every feed three times after the first status");
    assert!(asked.iter().all(|(t, _)| *t < 300), "then nothing while nothing changes");
    let moved = checkpoint_pulls(&mut n, 600, 900, &|i| if i == 7 { 6 } else { 5 });
    let moved: Vec<&OrgId> = moved.iter().flat_map(|(_, o)| o).collect();
    assert_eq!(moved, vec![&org("O07"); 3], "only the feed whose head changed, three times");
    // 15 minutes after the first, a sweep.
    let swept = checkpoint_pulls(&mut n, 900, 1800, &|i| if i == 7 { 6 } else { 5 });
    assert_eq!(feeds_asked(&swept), 40, "the sweep asks each feed once in 15 minutes");

    // A keyring network: nobody cosigns; each feed once, a changed one once more.
    let mut n = Node::new(false, &refs);
    let _ = n.connect(1);
    assert_eq!(feeds_asked(&checkpoint_pulls(&mut n, 0, 600, &|_| 5)), 40);
    assert_eq!(feeds_asked(&checkpoint_pulls(&mut n, 600, 900, &|i| if i == 7 { 6 } else { 5 })), 1);
}
