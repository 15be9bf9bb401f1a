//! The swarm task over real libp2p on loopback: it must keep reading commands while its own
//! events wait for the engine, and stop at shutdown whatever the engine does.

use std::time::Duration;

use libp2p::identity;
use tokio::sync::{mpsc, watch};

use super::codec::SyncCodec;
use super::*;
use crate::sync::wire::{Request, Response};

const NET: [u8; 32] = [7; 32];

struct Handle {
    commands: mpsc::Sender<NetCommand>,
    events: mpsc::Receiver<NetEvent>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    peer: PeerId,
}

/// A swarm task on loopback with channels of the given sizes, dialing `bootstrap`.
fn spawn(commands: usize, events: usize, bootstrap: Vec<(PeerId, Multiaddr)>) -> Handle {
    let key = identity::Keypair::generate_ed25519();
    let peer = key.public().to_peer_id();
    let swarm = build_swarm(key, &NET, &["/ip4/127.0.0.1/tcp/0".into()], false, false, false, SyncCodec::default())
        .expect("swarm");
    let (cmd_tx, cmd_rx) = mpsc::channel(commands);
    let (ev_tx, ev_rx) = mpsc::channel(events);
    let (stop, stop_rx) = watch::channel(false);
    let options =
        RunOptions { bootstrap, discovery: false, permissioned: false, network_id: NET, connections_target: 24 };
    let task = tokio::spawn(run_swarm(swarm, options, cmd_rx, ev_tx, stop_rx));
    Handle { commands: cmd_tx, events: ev_rx, stop, task, peer }
}

fn status() -> Request {
    use crate::sync::wire::{HeadsDigest, Status};
    Request::Status(Status::compose(NET, 0, Vec::new(), HeadsDigest::NONE, HeadsDigest::NONE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_with_one_slot_channels_is_answered_and_the_task_stops_at_shutdown() {
    // The node under test: one command and one event fit in its channels. Its "engine" does
    // what the real one does: for each request it sends several commands, each awaited.
    let Handle { commands, mut events, stop, task, peer } = spawn(1, 1, Vec::new());
    let Some(NetEvent::Listening { address }) = events.recv().await else { panic!("listening first") };
    let engine = tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let NetEvent::InboundRequest { tag, .. } = event {
                let response = Response::Range { docs: Vec::new() };
                let _ = commands.send(NetCommand::Respond { tag, response }).await;
                for _ in 0..4 {
                    let _ = commands.send(NetCommand::Unban { peer: PeerId::random() }).await;
                }
            }
        }
    });

    // A peer that asks 30 questions at once (below the per-connection stream bound).
    const ASKED: u64 = 30;
    let mut client = spawn(64, 64, vec![(peer, address.with(libp2p::multiaddr::Protocol::P2p(peer)))]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (mut answered, mut failed) = (0, Vec::new());
    while answered + (failed.len() as u64) < ASKED {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, client.events.recv()).await else { break };
        match event {
            NetEvent::PeerConnected { peer: p, .. } if p == peer => {
                for tag in 0..ASKED {
                    client.commands.send(NetCommand::Request { peer, request: status(), tag }).await.unwrap();
                }
            }
            NetEvent::Response { result: Ok(Response::Range { .. }), .. } => answered += 1,
            NetEvent::Response { result, .. } => failed.push(format!("{result:?}")),
            _ => {}
        }
    }

    let _ = stop.send(true);
    let stopped = tokio::time::timeout(Duration::from_secs(3), task).await.is_ok();
    engine.abort();
    let _ = client.stop.send(true);
    assert!(
        answered == ASKED && stopped,
        "{answered} of {ASKED} requests answered within 20 s (failed: {failed:?}); \
         the swarm task stopped within 3 s of shutdown: {stopped}"
    );
}

/// A responder's codec that writes its answers as raw bytes (framing included, or not).
#[derive(Clone)]
struct RawAnswer;

#[async_trait::async_trait]
impl libp2p::request_response::Codec for RawAnswer {
    type Protocol = libp2p::StreamProtocol;
    type Request = ();
    type Response = Vec<u8>;

    async fn read_request<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<()> {
        use futures::AsyncReadExt;
        let mut sink = Vec::new();
        io.take(1 << 20).read_to_end(&mut sink).await.map(|_| ())
    }

    async fn read_response<T: futures::AsyncRead + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::other("asks nothing"))
    }

    async fn write_request<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        _: &mut T,
        _: (),
    ) -> std::io::Result<()> {
        Err(std::io::Error::other("asks nothing"))
    }

    async fn write_response<T: futures::AsyncWrite + Unpin + Send>(
        &mut self,
        _: &libp2p::StreamProtocol,
        io: &mut T,
        answer: Vec<u8>,
    ) -> std::io::Result<()> {
        use futures::AsyncWriteExt;
        io.write_all(&answer).await?;
        io.close().await
    }
}

/// Runs a responder on loopback that answers every request on `protocol` with `answer`; its
/// peer id and dialable address.
async fn raw_responder(protocol: &'static str, answer: Vec<u8>) -> (PeerId, Multiaddr) {
    use futures::StreamExt;
    use libp2p::request_response::{self, ProtocolSupport};
    use libp2p::swarm::SwarmEvent;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity::Keypair::generate_ed25519())
        .with_tokio()
        .with_tcp(libp2p::tcp::Config::default(), libp2p::noise::Config::new, libp2p::yamux::Config::default)
        .expect("transport")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawAnswer,
                [(libp2p::StreamProtocol::new(protocol), ProtocolSupport::Inbound)],
                request_response::Config::default(),
            )
        })
        .expect("behaviour")
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let peer = *swarm.local_peer_id();
    let address = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with(libp2p::multiaddr::Protocol::P2p(peer));
        }
    };
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = swarm.select_next_some().await
            {
                let _ = swarm.behaviour_mut().send_response(channel, answer.clone());
            }
        }
    });
    (peer, address)
}

/// The failure of one status request to `peer` at `address`.
async fn failure_of(peer: PeerId, address: Multiaddr) -> RequestFailure {
    let mut node = spawn(8, 8, vec![(peer, address)]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, node.events.recv()).await.expect("an answer").unwrap();
        match event {
            NetEvent::PeerConnected { peer: p, .. } if p == peer => {
                node.commands.send(NetCommand::Request { peer, request: status(), tag: 1 }).await.unwrap();
            }
            NetEvent::Response { tag: 1, result, .. } => {
                let _ = node.stop.send(true);
                return result.expect_err("the request fails");
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_and_a_peer_of_another_protocol_version_fail_with_their_own_codes() {
    // Declares a 100-byte message, sends 10 bytes of it, and ends the stream.
    let mut cut = 100u32.to_be_bytes().to_vec();
    cut.extend_from_slice(&[2; 10]);
    let (peer, address) = raw_responder(crate::sync::wire::SYNC_PROTOCOL, cut).await;
    let failure = failure_of(peer, address).await;
    assert!(matches!(failure, RequestFailure::Malformed(_)), "{failure:?}");
    assert_eq!(failure.code(), "malformed_response");

    // A frame that decodes to nothing (an unknown tag) is malformed too.
    let (peer, address) = raw_responder(crate::sync::wire::SYNC_PROTOCOL, vec![0, 0, 0, 1, 0xee]).await;
    assert!(matches!(failure_of(peer, address).await, RequestFailure::Malformed(_)));

    // A stream closed without a byte of answer is not the peer's fault in the same way.
    let (peer, address) = raw_responder(crate::sync::wire::SYNC_PROTOCOL, Vec::new()).await;
    let failure = failure_of(peer, address).await;
    assert!(matches!(failure, RequestFailure::Io(_)), "{failure:?}");

    // A version 2 node: no protocol in common.
    let (peer, address) = raw_responder("/entrepot/sync/2", Vec::new()).await;
    assert_eq!(failure_of(peer, address).await, RequestFailure::UnsupportedProtocols);
}

#[test]
fn only_a_peer_announcing_other_sync_versions_and_not_ours_is_incompatible() {
    assert_eq!(other_sync_versions(["/entrepot/id/1.0.0", "/entrepot/sync/3"]), Some(vec!["/entrepot/sync/3".into()]));
    assert_eq!(other_sync_versions(["/entrepot/sync/3", SYNC_PROTOCOL, "/entrepot/sync/5"]), None, "ours among them");
    assert_eq!(other_sync_versions(["/entrepot/id/1.0.0", "/ipfs/ping/1.0.0"]), None, "a client serves none");
    assert_eq!(other_sync_versions([]), None);
    let long = format!("/entrepot/sync/{}", "9".repeat(500));
    let many: Vec<String> = (0..100).map(|i| format!("/entrepot/sync/{}", 100 + i)).chain([long]).collect();
    let kept = other_sync_versions(many.iter().map(String::as_str)).unwrap();
    assert_eq!(kept.len(), SYNC_VERSIONS_KEPT);
    assert!(kept.iter().all(|p| p.len() <= SYNC_VERSION_NAME_MAX));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_a_peer_no_longer_connected_fails_at_once_and_dials_nothing() {
    // The topology lets a peer go; a request the engine sent before it heard of that must not
    // dial the peer back (request-response would: at 100 nodes every prune came back as a
    // connection).
    let mut node = spawn(8, 8, Vec::new());
    let Some(NetEvent::Listening { address }) = node.events.recv().await else { panic!("listening first") };
    let mut client = spawn(8, 8, vec![(node.peer, address.with(libp2p::multiaddr::Protocol::P2p(node.peer)))]);
    let drain = tokio::spawn(async move { while client.events.recv().await.is_some() {} });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut connections = 0;
    let failure = loop {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, node.events.recv()).await else {
            panic!("no answer to the request within 10 s ({connections} connections)")
        };
        match event {
            NetEvent::PeerConnected { peer, .. } => {
                connections += 1;
                assert_eq!(connections, 1, "the node connected to its peer again");
                node.commands.send(NetCommand::Disconnect { peer }).await.unwrap();
            }
            NetEvent::PeerDisconnected { peer } => {
                node.commands.send(NetCommand::Request { peer, request: status(), tag: 9 }).await.unwrap();
            }
            NetEvent::Response { tag: 9, result, .. } => break result.expect_err("nobody to answer"),
            _ => {}
        }
    };
    let _ = node.stop.send(true);
    let _ = client.stop.send(true);
    drain.abort();
    // Before the fix this was DialFailure: the request dialed the peer (here with no address
    // to dial; in a network Kademlia has one and the connection came back).
    assert!(matches!(failure, RequestFailure::NotConnected), "{failure:?}");
    assert_eq!(failure.code(), "not_connected");
}
