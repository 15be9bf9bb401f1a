//! The node core over seeded random schedules: an honest peer and a lying one, every event
//! the shell can deliver, every invariant after each event.

use super::*;

/// Seeded random schedules over every event the shell can deliver. After each event every
/// invariant holds; at the end, with the honest peer connected and answering, the feed is
/// complete, and no honest peer was ever penalized.
#[test]
fn any_schedule_keeps_every_bound_and_replicates_from_an_honest_peer() {
    let mut all_steps = 0;
    for seed in 1..=150u64 {
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let permissioned = seed % 2 == 0;
        let mut n = Node::new(permissioned, &["FR", "NL"]);
        let total = 20 + next() % 200;
        // Peer 1 is honest and holds FR 1..=total; peer 2 lies and misbehaves.
        let honest: PeerKey = 1;
        let mut held = 0u64; // what the store holds of FR
        let mut queue: Vec<Effect> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        let mut connected = [false; 3];
        let mut gossip = 0u64;
        let mut steps = 0;
        let hello = |p: PeerKey| Request::Hello { cert: if p == honest { b"FR".to_vec() } else { b"NL".to_vec() } };
        loop {
            steps += 1;
            assert!(steps < 200_000, "seed {seed}: no progress");
            let honest_on = connected[honest as usize];
            if held == total && honest_on && jobs.is_empty() {
                break;
            }
            let effects = match next() % 20 {
                // Connections come and go (the liar more often).
                0 => {
                    let p = 1 + next() % 2;
                    if connected[p as usize] {
                        if p != honest || next() % 4 == 0 {
                            connected[p as usize] = false;
                            n.on(Event::Disconnected { peer: p })
                        } else {
                            Vec::new()
                        }
                    } else {
                        connected[p as usize] = true;
                        let mut e = n.connect(p);
                        if permissioned {
                            e.extend(n.on(Event::Request { peer: p, tag: InboundTag(next()), request: hello(p) }));
                        }
                        e
                    }
                }
                1 => n.advance(Duration::from_millis(next() % 3000)),
                // The liar claims too much, forks, and invented publishers.
                2 if connected[2] => {
                    let heads = vec![
                        FeedHead {
                            org: org("FR"),
                            seq: Seq(1_000_000_000),
                            id: DocumentId::ZERO,
                            forked_at: Some(Seq(1)),
                        },
                        FeedHead { org: org("ZZ"), seq: Seq(9), id: DocumentId::ZERO, forked_at: None },
                    ];
                    n.on(Event::Request {
                        peer: 2,
                        tag: InboundTag(next()),
                        request: Request::Status(liar_status(heads, next())),
                    })
                }
                3 if connected[honest as usize] => n.status(honest, &[("FR", total)]),
                4 => {
                    // A charter change that resets FR to a lower head now and then.
                    let resets = if next() % 4 == 0 && held > 0 {
                        held -= next() % held.min(5);
                        vec![(org("FR"), Seq(held))]
                    } else {
                        Vec::new()
                    };
                    n.on(Event::CharterChanged {
                        version: 2,
                        trusted: [org("FR"), org("NL")].into(),
                        resets,
                        heads: Vec::new(),
                        arrival: 0,
                    })
                }
                5 if connected[2] => {
                    gossip += 1;
                    n.on(Event::Gossip { peer: 2, gossip: GossipId(gossip), data: vec![0] })
                }
                6 if !jobs.is_empty() => {
                    // The worker finishes its oldest job with some outcome.
                    let job = jobs.remove(0);
                    match job.origin {
                        Origin::Range { peer, org: o, from } => {
                            let liar = peer != honest;
                            let result = if liar {
                                [
                                    IngestResult::Invalid,
                                    IngestResult::Misplaced,
                                    IngestResult::Mismatch,
                                    IngestResult::Unauthorized,
                                ][(next() % 4) as usize]
                            } else if from.0 == held + 1 {
                                match next() % 12 {
                                    0 => IngestResult::Unauthorized,
                                    1 => IngestResult::Deferred,
                                    _ => IngestResult::Ok,
                                }
                            } else {
                                IngestResult::Mismatch
                            };
                            if result == IngestResult::Ok {
                                held = held.max(from.0 + job.docs.len() as u64 - 1);
                            }
                            n.on(Event::Ingested(Done {
                                origin: Origin::Range { peer, org: o.clone(), from },
                                feed: Some((o, from, Seq(held))),
                                result,
                                outcome: None,
                            }))
                        }
                        Origin::Gossip { peer, gossip } => {
                            let outcome = match next() % 4 {
                                0 => Err(unknown_publisher()),
                                1 => Err(bad_signature()),
                                2 => Ok(IngestOutcome::Duplicate),
                                _ => Err(IngestError::Feed(FeedError::PrevMismatch {
                                    publisher: org("FR"),
                                    seq: Seq(2),
                                    prev_seq: Seq(1),
                                })),
                            };
                            n.on(Event::Ingested(Done {
                                origin: Origin::Gossip { peer, gossip },
                                feed: None,
                                result: IngestResult::Ok,
                                outcome: Some(outcome),
                            }))
                        }
                    }
                }
                _ if !queue.is_empty() => {
                    let i = (next() % queue.len() as u64) as usize;
                    match queue.swap_remove(i) {
                        Effect::Send { peer, tag, request } => {
                            let honest_peer = peer == honest;
                            let result = match (request, honest_peer, next() % 10) {
                                (_, _, 0) => Err(RequestFailure::Timeout),
                                (Outbound::Range { .. }, _, 1) => {
                                    Ok(Response::Refused { code: RefusalCode::Busy, reason: String::new() })
                                }
                                (Outbound::Range { from, count, .. }, true, _) => {
                                    let n_docs = count.min((total.saturating_sub(from.0 - 1)) as u32);
                                    Ok(Response::Range { docs: (0..n_docs).map(|_| vec![1]).collect() })
                                }
                                (Outbound::Range { .. }, false, k) if k < 5 => {
                                    Err(RequestFailure::Malformed("garbage".into()))
                                }
                                (Outbound::Range { .. }, false, _) => Ok(Response::Range { docs: Vec::new() }),
                                // The honest peer sends its heads only when the node does
                                // not hold them already.
                                (Outbound::Status { known, .. }, true, _) => {
                                    let heads = vec![FeedHead {
                                        org: org("FR"),
                                        seq: Seq(total),
                                        id: DocumentId::ZERO,
                                        forked_at: None,
                                    }];
                                    Ok(Response::Status(Status::compose([7; 32], 1, heads, HeadsDigest::NONE, known)))
                                }
                                (Outbound::Status { .. }, false, k) => {
                                    Ok(Response::Status(Status { charter_version: 9, ..liar_status(Vec::new(), k) }))
                                }
                                (Outbound::Hello, true, _) => Ok(Response::Hello { cert: b"FR".to_vec() }),
                                (Outbound::Hello, false, _) => Ok(Response::Hello { cert: b"NL".to_vec() }),
                                (Outbound::Charters { .. }, _, _) => Ok(Response::Charters { files: Vec::new() }),
                                (Outbound::ForkProofs { .. }, _, _) => Ok(Response::ForkProofs { pairs: Vec::new() }),
                                (Outbound::Payloads { .. }, _, _) => Ok(Response::Payloads { items: Vec::new() }),
                            };
                            n.on(Event::Response { tag, result })
                        }
                        Effect::Serve { peer, .. } | Effect::AnswerStatus { peer, .. } => n.on(Event::Served { peer }),
                        _ => Vec::new(),
                    }
                }
                _ => n.advance(Duration::from_millis(200)),
            };
            for e in effects {
                match e {
                    Effect::Ingest(job) => jobs.push(job),
                    e @ (Effect::Send { .. } | Effect::Serve { .. } | Effect::AnswerStatus { .. }) => queue.push(e),
                    Effect::Ban { name, .. } => {
                        assert_ne!(name, format!("peer-{honest}"), "seed {seed}: the honest peer was banned");
                        connected[2] = false;
                    }
                    Effect::Disconnect { peer } => {
                        if peer == honest {
                            let tail: Vec<_> = n.log.iter().rev().take(12).collect();
                            panic!("seed {seed}: the honest peer was disconnected; last effects: {tail:#?}");
                        }
                        connected[peer as usize] = false;
                    }
                    _ => {}
                }
            }
            // Requests to peers that left never get an answer from the transport here; a
            // disconnect is what ends them (the core forgets them itself).
            queue.retain(|e| match e {
                Effect::Send { peer, .. } | Effect::Serve { peer, .. } | Effect::AnswerStatus { peer, .. } => {
                    connected[*peer as usize]
                }
                _ => true,
            });
        }
        assert_eq!(held, total, "seed {seed}");
        all_steps += steps;
        let honest_points =
            n.core.peer_summaries(n.now).iter().find(|p| p.name == "peer-1").map_or(0, |p| p.penalty_points);
        assert_eq!(honest_points, 0, "seed {seed}: the honest peer was penalized");
    }
    assert!(all_steps > 150 * 50, "the schedules are too short to say much: {all_steps} steps");
}

/// A liar's status: its heads in full, or only a digest, of the heads it sent before or of
/// heads it never sent; and any `known` of the node's heads.
fn liar_status(heads: Vec<FeedHead>, dice: u64) -> Status {
    let mut s = Status::compose([7; 32], 1, heads, HeadsDigest([dice as u8; 32]), HeadsDigest::NONE);
    match dice % 3 {
        0 => {}
        1 => s.heads = None,
        _ => {
            s.heads = None;
            s.digest = HeadsDigest([(dice >> 8) as u8; 32]);
        }
    }
    s
}
