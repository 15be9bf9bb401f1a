//! Statuses under `/entrepot/sync/4`: unchanged heads travel as a digest, and the node behaves
//! as if they had been sent in full; a peer of another protocol version is let go.

use super::*;

fn fr(seq: u64) -> Vec<FeedHead> {
    vec![FeedHead { org: org("FR"), seq: Seq(seq), id: DocumentId([seq as u8; 32]), forked_at: None }]
}

/// What the peer holds of the node's heads in these tests (the core never sees the node's own).
const NODE_HEADS: HeadsDigest = HeadsDigest([42; 32]);

fn status_sent(effects: &[Effect]) -> (Tag, HeadsDigest, HeadsDigest) {
    let statuses: Vec<_> = sends(effects)
        .into_iter()
        .filter_map(|(_, tag, r)| match r {
            Outbound::Status { known, peer_holds } => Some((tag, known, peer_holds)),
            _ => None,
        })
        .collect();
    assert_eq!(statuses.len(), 1, "one status in {effects:?}");
    statuses[0]
}

/// The peer's answer to a status, as an honest peer composes it.
fn answer(n: &mut Node, tag: Tag, heads: Vec<FeedHead>, known: HeadsDigest) -> Vec<Effect> {
    let status = Status::compose([7; 32], 1, heads, NODE_HEADS, known);
    n.on(Event::Response { tag, result: Ok(Response::Status(status)) })
}

#[test]
fn idle_statuses_name_heads_by_digest_and_a_withdrawn_claim_comes_back_with_the_next_one() {
    let mut n = Node::new(false, &["FR"]);
    let _ = n.advance(Duration::ZERO); // the round timer starts
    let (tag, known, peer_holds) = status_sent(&n.connect(1));
    assert_eq!((known, peer_holds), (HeadsDigest::NONE, HeadsDigest::NONE), "nothing held yet either way");
    let e = answer(&mut n, tag, fr(30), known);
    let asked = ranges(&e);
    assert!(!asked.is_empty(), "the peer's heads came in full and are fetched");
    // Every range fails for cause: the peer's claim is withdrawn until its next status.
    for (_, tag, _, _) in asked {
        let _ = n.on(Event::Response { tag, result: Err(RequestFailure::Timeout) });
    }
    assert!(ranges(&n.advance(RETRY_INTERVAL)).is_empty(), "withdrawn");

    // The next round: the node says it holds FR at 30 and that the peer holds its heads.
    let (tag, known, peer_holds) = status_sent(&n.advance(STATUS_INTERVAL));
    assert_eq!((known, peer_holds), (HeadsDigest::of(&fr(30)), NODE_HEADS));
    let e = answer(&mut n, tag, fr(30), known);
    assert!(!ranges(&e).is_empty(), "a digest-only status re-announces the heads it names");
    assert_eq!(n.core.peer_summaries(n.now)[0].heads[&org("FR")], Seq(30));
}

#[test]
fn a_status_request_naming_heads_not_held_is_answered_with_what_is_held_and_believed_once_sent() {
    let mut n = Node::new(false, &["FR"]);
    let _ = n.connect(1);
    let full = Status::compose([7; 32], 1, fr(12), NODE_HEADS, HeadsDigest::NONE);
    let named = Status { heads: None, ..full.clone() };
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(1), request: Request::Status(named.clone()) });
    let answered = e.iter().find_map(|e| match e {
        Effect::AnswerStatus { known, peer_holds, .. } => Some((*known, *peer_holds)),
        _ => None,
    });
    assert_eq!(answered, Some((HeadsDigest::NONE, NODE_HEADS)), "its answer tells the peer to send them");
    assert!(ranges(&e).is_empty(), "nothing believed of heads never received");
    assert!(n.core.peer_summaries(n.now)[0].heads.is_empty());
    let _ = n.on(Event::Served { peer: 1 });

    let e = n.on(Event::Request { peer: 1, tag: InboundTag(2), request: Request::Status(full) });
    assert!(e.contains(&Effect::AnswerStatus {
        peer: 1,
        tag: InboundTag(2),
        known: HeadsDigest::of(&fr(12)),
        peer_holds: NODE_HEADS
    }));
    assert!(!ranges(&e).is_empty());
    let _ = n.on(Event::Served { peer: 1 });
    // From now on the digest alone will do.
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(3), request: Request::Status(named) });
    assert!(e.iter().any(|e| matches!(e, Effect::AnswerStatus { known, .. } if *known == HeadsDigest::of(&fr(12)))));
}

#[test]
fn a_status_is_answered_within_the_serving_bounds() {
    let mut n = Node::new(false, &["FR"]);
    let _ = n.connect(1);
    let named = Status { heads: None, ..Status::compose([7; 32], 1, fr(1), NODE_HEADS, HeadsDigest::NONE) };
    let mut refused = 0;
    for i in 0..(SERVING_PER_PEER_MAX as u64 + 2) {
        let e = n.on(Event::Request { peer: 1, tag: InboundTag(i), request: Request::Status(named.clone()) });
        refused += e
            .iter()
            .filter(|e| {
                matches!(e, Effect::Respond { response: Response::Refused { code: RefusalCode::TooMany, .. }, .. })
            })
            .count();
    }
    assert_eq!(refused, 2, "a flood of statuses is refused like any flood");
}

#[test]
fn a_peer_speaking_another_sync_protocol_version_is_let_go_with_its_reason() {
    // A keyring network: the status is the first request; a charter network: the hello.
    for permissioned in [false, true] {
        let mut n = Node::new(permissioned, &["FR"]);
        let e = n.connect(1);
        let (_, tag, _) = sends(&e)[0].clone();
        // Its first request fails: that alone does not tell a peer of another release from a
        // client that serves nothing.
        let e = n.on(Event::Response { tag, result: Err(RequestFailure::UnsupportedProtocols) });
        assert!(!e.iter().any(|e| matches!(e, Effect::Incompatible { .. } | Effect::Disconnect { .. })), "{e:?}");
        assert_eq!(n.core.peer_summaries(n.now).len(), 1, "a client stays connected");
        // What it announces does.
        let e = n.on(Event::Incompatible { peer: 1, speaks: vec!["/entrepot/sync/3".into()] });
        assert!(e.contains(&Effect::Incompatible { peer: 1 }), "{e:?}");
        assert!(n.core.peer_summaries(n.now).is_empty(), "forgotten at once");
        assert_eq!(n.core.penalty_counts().1, 0, "not banned: it is not misbehaving");
        // Its disconnection, when the swarm reports it, finds nothing to undo.
        let _ = n.on(Event::Disconnected { peer: 1 });
    }
}

/// A status request from the peer, answered: what the node's own round may then leave out.
fn peer_asks(n: &mut Node, tag: u64) {
    let named = Status { heads: None, ..Status::compose([7; 32], 1, fr(3), NODE_HEADS, HeadsDigest::of(&fr(3))) };
    let e = n.on(Event::Request { peer: 1, tag: InboundTag(tag), request: Request::Status(named) });
    assert!(e.iter().any(|e| matches!(e, Effect::AnswerStatus { .. })), "{e:?}");
    let _ = n.on(Event::Served { peer: 1 });
}

fn statuses(effects: &[Effect]) -> usize {
    sends(effects).iter().filter(|(_, _, r)| matches!(r, Outbound::Status { .. })).count()
}

#[test]
fn a_round_leaves_out_a_peer_whose_status_was_just_answered_unless_a_local_head_moved() {
    let mut n = Node::new(false, &["FR"]);
    let _ = n.advance(Duration::ZERO); // the round timer starts
    let (tag, known, _) = status_sent(&n.connect(1));
    let _ = answer(&mut n, tag, fr(3), known);
    let start = n.now;
    let until = |n: &Node, t: Duration| (start + t).saturating_duration_since(n.now);

    // Asked 1 s before the round: that exchange was the round's.
    let by = until(&n, STATUS_INTERVAL - Duration::from_secs(1));
    let _ = n.advance(by);
    peer_asks(&mut n, 1);
    let by = until(&n, STATUS_INTERVAL);
    assert_eq!(statuses(&n.advance(by)), 0, "answered 1 s ago, nothing moved: left out");

    // Asked, then a local head moved before the round: the peer must hear of it.
    let by = until(&n, 2 * STATUS_INTERVAL - Duration::from_secs(2));
    let _ = n.advance(by);
    peer_asks(&mut n, 2);
    let _ = n.on(Event::Heads { heads: vec![(org("FR"), Seq(1))] });
    let by = until(&n, 2 * STATUS_INTERVAL);
    let (tag, known, _) = status_sent(&n.advance(by));
    let _ = answer(&mut n, tag, fr(3), known);

    // Asked longer ago than STATUS_ANSWERED_WITHIN: asked again.
    let by = until(&n, 3 * STATUS_INTERVAL - STATUS_ANSWERED_WITHIN);
    let _ = n.advance(by);
    peer_asks(&mut n, 3);
    let by = until(&n, 3 * STATUS_INTERVAL);
    assert_eq!(statuses(&n.advance(by)), 1, "answered a whole half-round ago");
}

/// Two cores joined directly, each with its own round phase and a jittered clock: a quiet
/// connection carries about one status exchange a round instead of two, and never goes two rounds
/// without one (each side's answer fills the other's round; neither leaves the other out two
/// rounds running).
#[test]
fn two_quiet_peers_exchange_one_status_a_round_and_never_skip_two() {
    let (mut total, mut all_rounds) = (0, 0);
    for seed in 1..=40u64 {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut next = move |m: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % m
        };
        let mut nodes = [Node::new(false, &["FR"]), Node::new(false, &["FR"])];
        let t0 = nodes[0].now;
        nodes[1].now = t0;
        // Each node's round starts at its own phase; both connect at the second's start.
        let phase = Duration::from_millis(next(STATUS_INTERVAL.as_millis() as u64));
        let _ = nodes[0].advance(Duration::ZERO);
        let mut queue: Vec<(usize, Effect)> = Vec::new();
        for (i, node) in nodes.iter_mut().enumerate() {
            queue.extend(node.connect(1).into_iter().map(|e| (i, e)));
        }
        let mut exchanges: Vec<Instant> = Vec::new(); // when a status request was answered
        let mut t = Duration::ZERO;
        let mut phase_started = false;
        let rounds = 30u32;
        while t < rounds * STATUS_INTERVAL {
            // Deliver everything in flight (no latency: the phases and jitter are the test).
            while let Some((from, effect)) = queue.pop() {
                let Effect::Send { tag, request: Outbound::Status { known, peer_holds }, .. } = effect else {
                    continue;
                };
                let to = 1 - from;
                let status = Status::compose([7; 32], 1, Vec::new(), known, peer_holds);
                let request = Request::Status(status);
                let e = nodes[to].on(Event::Request { peer: 1, tag: InboundTag(tag.0), request });
                for a in &e {
                    if let Effect::AnswerStatus { known, peer_holds, .. } = a {
                        exchanges.push(nodes[to].now);
                        let status = Status::compose([7; 32], 1, Vec::new(), *known, *peer_holds);
                        let back = nodes[from].on(Event::Response { tag, result: Ok(Response::Status(status)) });
                        queue.extend(back.into_iter().map(|e| (from, e)));
                        let _ = nodes[to].on(Event::Served { peer: 1 });
                    }
                }
                queue.extend(e.into_iter().map(|e| (to, e)));
            }
            let step = Duration::from_millis(100 + next(200));
            t += step;
            for (i, node) in nodes.iter_mut().enumerate() {
                node.now = t0 + t;
                if i == 1 && !phase_started {
                    if t < phase {
                        continue;
                    }
                    phase_started = true;
                }
                let e = node.on(Event::Tick);
                queue.extend(e.into_iter().map(|e| (i, e)));
            }
        }
        // Past the first round (both sides greet each other on connecting).
        let settled: Vec<Instant> = exchanges.into_iter().filter(|at| *at >= t0 + 2 * STATUS_INTERVAL).collect();
        let span = (rounds - 2) as usize;
        // Two a round was the rule before; a pair whose phases are half a round apart may still
        // both ask in a round now and then, as their timers drift.
        assert!(
            2 * settled.len() <= 3 * span,
            "seed {seed}, phase {phase:?}: {} exchanges over {span} rounds",
            settled.len()
        );
        total += settled.len();
        all_rounds += span;
        let limit = 2 * STATUS_INTERVAL + Duration::from_millis(600);
        for pair in settled.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(gap <= limit, "seed {seed}, phase {phase:?}: {gap:?} without a status exchange");
        }
    }
    assert!(10 * total <= 11 * all_rounds, "{total} exchanges over {all_rounds} rounds: more than 1.1 a round");
}

#[test]
fn a_status_repeating_the_heads_already_shown_leaves_the_peers_view_as_it_is() {
    let mut n = Node::new(false, &["FR"]);
    let _ = n.advance(Duration::ZERO);
    let (tag, known, _) = status_sent(&n.connect(1));
    let _ = n.core.take_view_changed();
    let _ = answer(&mut n, tag, fr(30), known);
    assert_eq!(n.core.take_view_changed(), ViewChange::Heads, "new heads are shown");
    // Every later round of a quiet network: the same heads, by digest or in full.
    for _ in 0..3 {
        let (tag, known, _) = status_sent(&n.advance(STATUS_INTERVAL));
        let _ = answer(&mut n, tag, fr(30), known);
        assert_eq!(n.core.take_view_changed(), ViewChange::None, "nothing new to show");
    }
    let (tag, known, _) = status_sent(&n.advance(STATUS_INTERVAL));
    let _ = answer(&mut n, tag, fr(31), known);
    assert_eq!(n.core.take_view_changed(), ViewChange::Heads, "a head that moved is shown");
}
