//! The task that owns the swarm. It never waits on the engine: commands are always read and
//! carried out at once, events wait in a bounded outbox until the event channel has room, and
//! while the outbox is full the swarm is not polled, which holds libp2p back (its connection
//! tasks' queues fill and the peers' streams stall) instead of blocking this task. Shutdown is
//! a branch of every turn of the loop, so it is always seen.
//!
//! (It used to `send(..).await` each event inside the loop while the engine `send(..).await`ed
//! commands inside its own: with both channels full each waited for the other for good.)

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{identify, mdns, Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, watch};

use super::codec::WireRequest;
use super::redial::{self, Redial};
use super::swarm::{Behaviour, BehaviourEvent, NOT_ADMITTED_SCORE};
use super::{gossip_topic, limits, NetCommand, NetEvent, RequestFailure, RunOptions};
use crate::sync::wire::Response;

/// Owns the swarm: carries out commands, reports events, until `shutdown` changes (or its
/// sender is dropped), the command channel closes or the event receiver is dropped.
pub async fn run_swarm(
    swarm: Swarm<Behaviour>,
    options: RunOptions,
    mut commands: mpsc::Receiver<NetCommand>,
    events: mpsc::Sender<NetEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut task = Task::new(swarm, options);
    let mut outbox: VecDeque<NetEvent> = VecDeque::with_capacity(limits::EVENT_OUTBOX_MAX);
    let mut kad_refresh = tokio::time::interval(limits::KAD_BOOTSTRAP_INTERVAL);
    kad_refresh.tick().await;
    let mut redial_tick = tokio::time::interval(limits::REDIAL_CHECK_INTERVAL);
    redial_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*shutdown.borrow() {
        tokio::select! {
            _ = shutdown.changed() => break,
            command = commands.recv() => match command {
                Some(command) => {
                    // Commands are read even with a full outbox (the engine may be waiting on
                    // this channel); an answer that finds no room is dropped and the engine's
                    // own request timeout covers it.
                    if let Some(out) = task.on_command(command) {
                        if outbox.len() < limits::EVENT_OUTBOX_MAX {
                            outbox.push_back(out);
                        } else {
                            tracing::debug!("event outbox full; an immediate request failure is left to the engine's timeout");
                        }
                    }
                }
                None => break,
            },
            permit = events.reserve(), if !outbox.is_empty() => match permit {
                Ok(permit) => permit.send(outbox.pop_front().expect("the outbox is not empty")),
                Err(_) => break,
            },
            _ = redial_tick.tick() => task.dial_due(),
            _ = kad_refresh.tick(), if task.kad_enabled() => task.kad_refresh(),
            event = task.swarm.select_next_some(), if outbox.len() < limits::EVENT_OUTBOX_MAX => {
                if let Some(out) = task.on_swarm_event(event) {
                    outbox.push_back(out);
                }
            }
        }
    }
}

struct Task {
    swarm: Swarm<Behaviour>,
    permissioned: bool,
    topic: IdentTopic,
    responders: HashMap<u64, ResponseChannel<Response>>,
    outbound: HashMap<OutboundRequestId, u64>,
    next_inbound_tag: u64,
    redial: Redial,
    /// Listen addresses connected peers announced (identify), handed to Kademlia when the
    /// peer is admitted (charter networks only).
    announced: HashMap<PeerId, Vec<Multiaddr>>,
    connections_target: usize,
    /// When Kademlia was last refreshed.
    kad_refreshed: Instant,
}

impl Task {
    fn new(mut swarm: Swarm<Behaviour>, options: RunOptions) -> Task {
        let RunOptions { bootstrap, discovery: _, permissioned, network_id, connections_target } = options;
        if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
            kad.dial_only_below(connections_target);
            if !permissioned {
                // On a charter network a peer enters the routing table only once admitted.
                for (peer, addr) in &bootstrap {
                    kad.inner_mut().add_address(peer, addr.clone());
                }
            }
        }
        let local_peer = *swarm.local_peer_id();
        let mut task = Task {
            swarm,
            permissioned,
            topic: gossip_topic(&network_id),
            responders: HashMap::new(),
            outbound: HashMap::new(),
            next_inbound_tag: 0,
            redial: Redial::new(&bootstrap, Instant::now(), redial::seed_of(&local_peer)),
            announced: HashMap::new(),
            connections_target,
            kad_refreshed: Instant::now(),
        };
        task.dial_due();
        task
    }

    fn kad_enabled(&self) -> bool {
        self.swarm.behaviour().kad.is_enabled()
    }

    /// Refreshes Kademlia when [`redial::kad_refresh_due`] says so.
    fn kad_refresh(&mut self) {
        let now = Instant::now();
        let connected = self.swarm.connected_peers().count();
        if !redial::kad_refresh_due(
            connected,
            self.connections_target,
            now.saturating_duration_since(self.kad_refreshed),
        ) {
            return;
        }
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            let _ = kad.inner_mut().bootstrap();
            self.kad_refreshed = now;
        }
    }

    /// Dials the bootstrap peers that are due, and the known peers when few are connected.
    fn dial_due(&mut self) {
        let now = Instant::now();
        let connected = self.swarm.connected_peers().count();
        for (peer, addr) in self.redial.due(now, connected) {
            let opts = DialOpts::peer_id(peer)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => {}
                // Connected, or a dial is under way: its outcome reaches the redial state.
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "cannot dial a bootstrap or known peer");
                    self.redial.dial_failed(&peer, now);
                }
            }
        }
    }

    /// Carries out a command. Never waits; returns an event when the answer is immediate.
    fn on_command(&mut self, command: NetCommand) -> Option<NetEvent> {
        let connected = match &command {
            NetCommand::Request { peer, .. } => self.swarm.is_connected(peer),
            _ => true,
        };
        let behaviour = self.swarm.behaviour_mut();
        match command {
            // A request never dials: request-response would dial a peer the topology just let
            // go (the engine sent it before it heard of that), undoing the prune
            // (docs/PROTOCOL.md §8.1).
            NetCommand::Request { peer, tag, .. } if !connected => {
                return Some(NetEvent::Response { tag, peer, result: Err(RequestFailure::NotConnected) });
            }
            NetCommand::Request { peer, request, tag } => {
                let id = behaviour.sync.send_request(&peer, WireRequest::Valid(request));
                self.outbound.insert(id, tag);
            }
            NetCommand::Respond { tag, response } => {
                if let Some(channel) = self.responders.remove(&tag) {
                    // The requester may have gone; nothing to do then.
                    let _ = behaviour.sync.send_response(channel, response);
                }
            }
            NetCommand::Publish { data } => {
                if let Err(e) = behaviour.gossipsub.publish(self.topic.clone(), data) {
                    // No peers yet is normal; pull sync delivers the document later.
                    tracing::debug!(error = %e, "gossip publish");
                }
            }
            NetCommand::Validate { message_id, source, acceptance } => {
                behaviour.gossipsub.report_message_validation_result(&message_id, &source, acceptance);
            }
            NetCommand::Ban { peer } => {
                behaviour.blocked.block_peer(peer);
                behaviour.gossipsub.blacklist_peer(&peer);
                if let Some(kad) = behaviour.kad.as_mut() {
                    kad.forget(&peer);
                    kad.inner_mut().remove_peer(&peer);
                }
                self.redial.banned(&peer);
            }
            NetCommand::Unban { peer } => {
                behaviour.blocked.unblock_peer(peer);
                behaviour.gossipsub.remove_blacklisted_peer(&peer);
                self.redial.unbanned(&peer, Instant::now());
                self.dial_due();
            }
            NetCommand::Admit { peer } => {
                behaviour.gossipsub.set_application_score(&peer, 0.0);
                if let Some(kad) = behaviour.kad.as_mut() {
                    kad.admit(peer);
                    for addr in self.announced.remove(&peer).unwrap_or_default() {
                        kad.inner_mut().add_address(&peer, addr);
                    }
                }
            }
            NetCommand::Disconnect { peer } => {
                self.redial.forget(&peer);
                if self.permissioned {
                    // Not admitted, or no longer: out of the routing table too.
                    if let Some(kad) = behaviour.kad.as_mut() {
                        kad.forget(&peer);
                        kad.inner_mut().remove_peer(&peer);
                    }
                }
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
        None
    }

    /// Takes in a swarm event; what the node should hear of it.
    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) -> Option<NetEvent> {
        let out = match event {
            SwarmEvent::NewListenAddr { address, .. } => Some(NetEvent::Listening { address }),
            SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                let address = endpoint.get_remote_address().clone();
                if num_established.get() == 1 {
                    if self.permissioned {
                        // Before anything else is polled: no gossip reaches the peer until the
                        // engine admits it.
                        self.swarm.behaviour_mut().gossipsub.set_application_score(&peer_id, NOT_ADMITTED_SCORE);
                    }
                    if endpoint.is_dialer() {
                        self.redial.learn(peer_id, address.clone(), Instant::now());
                    }
                    self.redial.connected(&peer_id, Instant::now());
                    Some(NetEvent::PeerConnected { peer: peer_id, address })
                } else {
                    None
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.redial.disconnected(&peer_id, Instant::now());
                self.announced.remove(&peer_id);
                // Admission lasts as long as the connection: the engine forgets it too.
                if self.permissioned {
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        kad.forget(&peer_id);
                    }
                }
                Some(NetEvent::PeerDisconnected { peer: peer_id })
            }
            SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                tracing::debug!(%peer, %error, "dial failed");
                self.redial.dial_failed(&peer, Instant::now());
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                let other = super::other_sync_versions(info.protocols.iter().map(|p| p.as_ref()));
                // Where the peer says it listens: dialed again if this node loses its peers.
                if let Some(addr) = info.listen_addrs.iter().find(|a| dialable(a)) {
                    self.redial.learn(peer_id, addr.clone(), Instant::now());
                }
                self.announced_addresses(peer_id, info.listen_addrs);
                other.map(|speaks| NetEvent::Incompatible { peer: peer_id, speaks })
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    if !self.permissioned {
                        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                            kad.inner_mut().add_address(&peer, addr.clone());
                        }
                    }
                    let _ = self.swarm.dial(addr);
                }
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) => Some(NetEvent::Gossip { source: propagation_source, message_id, data: message.data }),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. })) => {
                match message {
                    request_response::Message::Request { request: WireRequest::Malformed(reason), .. } => {
                        // Dropping the channel closes the stream without an answer.
                        tracing::debug!(%peer, %reason, "malformed sync request");
                        Some(NetEvent::MalformedRequest { peer })
                    }
                    request_response::Message::Request { request: WireRequest::Valid(request), channel, .. } => {
                        let tag = self.next_inbound_tag;
                        self.next_inbound_tag += 1;
                        self.responders.insert(tag, channel);
                        Some(NetEvent::InboundRequest { peer, request, tag })
                    }
                    request_response::Message::Response { request_id, response } => self
                        .outbound
                        .remove(&request_id)
                        .map(|tag| NetEvent::Response { tag, peer, result: Ok(response) }),
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            })) => {
                let failure = RequestFailure::from(error);
                self.outbound.remove(&request_id).map(|tag| NetEvent::Response { tag, peer, result: Err(failure) })
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::InboundFailure {
                peer,
                error,
                ..
            })) => {
                tracing::debug!(%peer, %error, "inbound sync request failed");
                None
            }
            _ => None,
        };
        // Responders whose requester vanished are dropped by libp2p; forget them too.
        self.responders.retain(|_, ch| ch.is_open());
        out
    }

    /// Where a peer says it listens: Kademlia learns it at once on an open network, and once
    /// the peer is admitted on a charter network. Without discovery, nothing learns it.
    fn announced_addresses(&mut self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let permissioned = self.permissioned;
        let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() else { return };
        let addrs = addrs.into_iter().take(limits::ANNOUNCED_ADDRESSES_MAX);
        if !permissioned || kad.is_admitted(&peer) {
            for addr in addrs {
                kad.inner_mut().add_address(&peer, addr);
            }
        } else {
            self.announced.insert(peer, addrs.collect());
        }
    }
}

/// Whether an announced listen address can be dialed: not an unspecified (`0.0.0.0`, `::`)
/// address.
fn dialable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    match addr.iter().next() {
        Some(Protocol::Ip4(ip)) => !ip.is_unspecified(),
        Some(Protocol::Ip6(ip)) => !ip.is_unspecified(),
        Some(Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) | Protocol::Memory(_)) => true,
        _ => false,
    }
}
