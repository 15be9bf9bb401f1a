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
    let options = RunOptions { bootstrap, discovery: false, permissioned: false, network_id: NET };
    let task = tokio::spawn(run_swarm(swarm, options, cmd_rx, ev_tx, stop_rx));
    Handle { commands: cmd_tx, events: ev_rx, stop, task, peer }
}

fn status() -> Request {
    Request::Status { network_id: NET, charter_version: 0, heads: Vec::new() }
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
