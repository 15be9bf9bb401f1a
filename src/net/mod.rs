//! libp2p glue: the swarm (TCP + Noise + Yamux, identify, ping, Kademlia, optional mDNS,
//! gossipsub, the sync request-response protocol, connection limits and a block list) and the
//! task that owns it.
//!
//! The rest of the node talks to the swarm only through [`NetCommand`]s and [`NetEvent`]s on
//! bounded channels. This module knows nothing of the store or of sync decisions.

pub mod codec;
pub mod limits;

use std::collections::HashMap;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, identify, identity, kad, mdns, noise, ping, tcp, yamux, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::sync::wire::{Request, Response, SYNC_PROTOCOL};
use codec::{SyncCodec, WireRequest};

/// The node's libp2p behaviours.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    limits: connection_limits::Behaviour,
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    mdns: Toggle<mdns::tokio::Behaviour>,
    gossipsub: gossipsub::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
}

/// What the node asks of the swarm.
#[derive(Debug)]
pub enum NetCommand {
    /// Send a sync request; the answer comes back as [`NetEvent::Response`] with `tag`.
    Request { peer: PeerId, request: Request, tag: u64 },
    /// Answer the inbound request `tag`.
    Respond { tag: u64, response: Response },
    /// Gossip a document envelope.
    Publish { data: Vec<u8> },
    /// Tell gossipsub whether to forward a received message.
    Validate { message_id: MessageId, source: PeerId, acceptance: MessageAcceptance },
    /// Disconnect and block a peer.
    Ban { peer: PeerId },
    /// Lift a block.
    Unban { peer: PeerId },
    /// The peer presented a valid certificate: gossip may flow to and from it.
    Admit { peer: PeerId },
    /// Close every connection with the peer (not admitted, or no longer).
    Disconnect { peer: PeerId },
}

/// What the swarm reports to the node. `MalformedRequest`: the peer sent a sync request that is
/// not a valid message (garbage, over the size bound).
#[derive(Debug)]
pub enum NetEvent {
    Listening { address: Multiaddr },
    PeerConnected { peer: PeerId, address: Multiaddr },
    PeerDisconnected { peer: PeerId },
    InboundRequest { peer: PeerId, request: Request, tag: u64 },
    Response { tag: u64, peer: PeerId, result: Result<Response, String> },
    Gossip { source: PeerId, message_id: MessageId, data: Vec<u8> },
    MalformedRequest { peer: PeerId },
}

/// Why the swarm could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("bad multiaddress '{0}': {1}")]
    Address(String, String),
    #[error("cannot listen on {0}: {1}")]
    Listen(String, String),
    #[error("libp2p setup failed: {0}")]
    Setup(String),
}

/// The gossip topic of a network: one per network id, versioned.
pub fn gossip_topic(network_id: &[u8; 32]) -> IdentTopic {
    IdentTopic::new(format!("/entrepot/{}/documents/1", hex::encode(&network_id[..8])))
}

/// Builds the swarm and starts listening.
pub fn build_swarm(
    keypair: identity::Keypair,
    network_id: &[u8; 32],
    listen: &[String],
    mdns_enabled: bool,
    discovery: bool,
    permissioned: bool,
    codec: SyncCodec,
) -> Result<Swarm<Behaviour>, NetError> {
    let setup = |e: &dyn std::fmt::Display| NetError::Setup(e.to_string());
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            let gossip_config = gossipsub::ConfigBuilder::default()
                .heartbeat_interval(limits::GOSSIP_HEARTBEAT)
                .validation_mode(ValidationMode::Strict)
                .validate_messages()
                .max_transmit_size(limits::GOSSIP_MESSAGE_MAX_BYTES)
                .duplicate_cache_time(limits::GOSSIP_DUPLICATE_CACHE)
                // Content-addressed ids: the same document gossiped twice is one message.
                .message_id_fn(|m: &gossipsub::Message| MessageId::from(Sha256::digest(&m.data).to_vec()))
                .build()
                .map_err(|e| e.to_string())?;
            let mut gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)?;
            if permissioned {
                gossipsub.with_peer_score(admission_score_params(), gossipsub::PeerScoreThresholds::default())?;
            }
            let mut kad_config = kad::Config::new(StreamProtocol::new("/entrepot/kad/1.0.0"));
            kad_config.set_query_timeout(limits::KAD_QUERY_TIMEOUT);
            if !discovery {
                kad_config.set_periodic_bootstrap_interval(None);
            }
            let kad = kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
            let mdns =
                if mdns_enabled { Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)?) } else { None };
            let sync = request_response::Behaviour::with_codec(
                codec,
                [(StreamProtocol::new(SYNC_PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(limits::REQUEST_TIMEOUT)
                    .with_max_concurrent_streams(limits::SYNC_STREAMS_PER_CONNECTION_MAX),
            );
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(limits::CONNECTIONS_MAX))
                .with_max_established_per_peer(Some(limits::CONNECTIONS_PER_PEER_MAX))
                .with_max_pending_incoming(Some(limits::PENDING_CONNECTIONS_MAX))
                .with_max_pending_outgoing(Some(limits::PENDING_CONNECTIONS_MAX));
            Ok(Behaviour {
                limits: connection_limits::Behaviour::new(limits),
                blocked: Default::default(),
                identify: identify::Behaviour::new(
                    identify::Config::new("/entrepot/id/1.0.0".into(), key.public())
                        .with_interval(limits::IDENTIFY_INTERVAL),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                kad,
                mdns: Toggle::from(mdns),
                gossipsub,
                sync,
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(limits::IDLE_CONNECTION_TIMEOUT))
        .build();
    swarm.behaviour_mut().kad.set_mode(Some(kad::Mode::Server));
    swarm.behaviour_mut().gossipsub.subscribe(&gossip_topic(network_id)).map_err(|e| setup(&e))?;
    for addr in listen {
        let ma: Multiaddr =
            addr.parse().map_err(|e: libp2p::multiaddr::Error| NetError::Address(addr.clone(), e.to_string()))?;
        swarm.listen_on(ma).map_err(|e| NetError::Listen(addr.clone(), e.to_string()))?;
    }
    Ok(swarm)
}

/// Parses a bootstrap address, which must end in `/p2p/PEER_ID`.
/// Gossip scoring used only to keep documents away from peers not (yet) admitted by
/// certificate: such a peer gets [`NOT_ADMITTED_SCORE`], below the publish and gossip
/// thresholds (nothing is sent to it, it joins no mesh) but above the graylist one, so its
/// subscriptions are still recorded and gossip starts the moment it is admitted.
fn admission_score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        // Administrations behind one NAT, and every test node on loopback, share addresses.
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    }
}

/// The application score of a connected peer without a valid certificate.
pub const NOT_ADMITTED_SCORE: f64 = -60.0;

pub fn parse_bootstrap(addr: &str) -> Result<(PeerId, Multiaddr), NetError> {
    let ma: Multiaddr =
        addr.parse().map_err(|e: libp2p::multiaddr::Error| NetError::Address(addr.into(), e.to_string()))?;
    match ma.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Ok((peer, ma)),
        _ => Err(NetError::Address(addr.into(), "must end in /p2p/PEER_ID".into())),
    }
}

/// How the swarm task runs.
pub struct RunOptions {
    /// Peers dialed at start.
    pub bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Periodic Kademlia refresh (off for fixed topologies).
    pub discovery: bool,
    /// Peers are admitted by certificate (charter networks): see [`NOT_ADMITTED_SCORE`].
    pub permissioned: bool,
    pub network_id: [u8; 32],
}

/// Owns the swarm: carries out commands, reports events, until `shutdown` resolves or the
/// command channel closes.
pub async fn run_swarm(
    mut swarm: Swarm<Behaviour>,
    options: RunOptions,
    mut commands: mpsc::Receiver<NetCommand>,
    events: mpsc::Sender<NetEvent>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let RunOptions { bootstrap, discovery, permissioned, network_id } = options;
    for (peer, addr) in &bootstrap {
        swarm.behaviour_mut().kad.add_address(peer, addr.clone());
        if let Err(e) = swarm.dial(addr.clone()) {
            tracing::warn!(%addr, error = %e, "cannot dial bootstrap peer");
        }
    }
    let topic = gossip_topic(&network_id);
    let mut responders: HashMap<u64, ResponseChannel<Response>> = HashMap::new();
    let mut outbound: HashMap<OutboundRequestId, u64> = HashMap::new();
    let mut next_inbound_tag = 0u64;
    let mut kad_refresh = tokio::time::interval(limits::KAD_BOOTSTRAP_INTERVAL);
    kad_refresh.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            _ = kad_refresh.tick(), if discovery => {
                let _ = swarm.behaviour_mut().kad.bootstrap();
            }
            command = commands.recv() => {
                let Some(command) = command else { break };
                match command {
                    NetCommand::Request { peer, request, tag } => {
                        let id = swarm.behaviour_mut().sync.send_request(&peer, WireRequest::Valid(request));
                        outbound.insert(id, tag);
                    }
                    NetCommand::Respond { tag, response } => {
                        if let Some(channel) = responders.remove(&tag) {
                            // The requester may have gone; nothing to do then.
                            let _ = swarm.behaviour_mut().sync.send_response(channel, response);
                        }
                    }
                    NetCommand::Publish { data } => {
                        if let Err(e) = swarm.behaviour_mut().gossipsub.publish(topic.clone(), data) {
                            // No peers yet is normal; pull sync delivers the document later.
                            tracing::debug!(error = %e, "gossip publish");
                        }
                    }
                    NetCommand::Validate { message_id, source, acceptance } => {
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(&message_id, &source, acceptance);
                    }
                    NetCommand::Ban { peer } => {
                        swarm.behaviour_mut().blocked.block_peer(peer);
                        swarm.behaviour_mut().gossipsub.blacklist_peer(&peer);
                    }
                    NetCommand::Unban { peer } => {
                        swarm.behaviour_mut().blocked.unblock_peer(peer);
                        swarm.behaviour_mut().gossipsub.remove_blacklisted_peer(&peer);
                    }
                    NetCommand::Admit { peer } => {
                        swarm.behaviour_mut().gossipsub.set_application_score(&peer, 0.0);
                    }
                    NetCommand::Disconnect { peer } => {
                        let _ = swarm.disconnect_peer_id(peer);
                    }
                }
            }
            event = swarm.select_next_some() => {
                let out = match event {
                    SwarmEvent::NewListenAddr { address, .. } => Some(NetEvent::Listening { address }),
                    SwarmEvent::ConnectionEstablished { peer_id, endpoint, num_established, .. } => {
                        let address = endpoint.get_remote_address().clone();
                        if num_established.get() == 1 {
                            if permissioned {
                                // Before anything else is polled: no gossip reaches the peer
                                // until the engine admits it.
                                swarm.behaviour_mut().gossipsub.set_application_score(&peer_id, NOT_ADMITTED_SCORE);
                            }
                            Some(NetEvent::PeerConnected { peer: peer_id, address })
                        } else {
                            None
                        }
                    }
                    SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                        Some(NetEvent::PeerDisconnected { peer: peer_id })
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. })) => {
                        for addr in info.listen_addrs {
                            swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                        None
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                        for (peer, addr) in found {
                            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                            let _ = swarm.dial(addr);
                        }
                        None
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message { propagation_source, message_id, message })) => {
                        Some(NetEvent::Gossip { source: propagation_source, message_id, data: message.data })
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. })) => match message {
                        request_response::Message::Request { request: WireRequest::Malformed(reason), .. } => {
                            // Dropping the channel closes the stream without an answer.
                            tracing::debug!(%peer, %reason, "malformed sync request");
                            Some(NetEvent::MalformedRequest { peer })
                        }
                        request_response::Message::Request { request: WireRequest::Valid(request), channel, .. } => {
                            let tag = next_inbound_tag;
                            next_inbound_tag += 1;
                            responders.insert(tag, channel);
                            Some(NetEvent::InboundRequest { peer, request, tag })
                        }
                        request_response::Message::Response { request_id, response } => {
                            outbound.remove(&request_id).map(|tag| NetEvent::Response { tag, peer, result: Ok(response) })
                        }
                    },
                    SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::OutboundFailure { peer, request_id, error, .. })) => {
                        outbound.remove(&request_id).map(|tag| NetEvent::Response { tag, peer, result: Err(error.to_string()) })
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Sync(request_response::Event::InboundFailure { peer, error, .. })) => {
                        tracing::debug!(%peer, %error, "inbound sync request failed");
                        None
                    }
                    _ => None,
                };
                // Responders whose requester vanished are dropped by libp2p; forget them too.
                responders.retain(|_, ch| ch.is_open());
                if let Some(out) = out {
                    if events.send(out).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
}

/// Loads (hex ed25519 secret) the node's libp2p identity.
pub fn load_identity(path: &std::path::Path) -> Result<identity::Keypair, NetError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| NetError::Setup(format!("reading {}: {e}", path.display())))?;
    let mut raw = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut raw)
        .map_err(|_| NetError::Setup(format!("{} must hold 64 hex digits", path.display())))?;
    identity::Keypair::ed25519_from_bytes(raw).map_err(|e| NetError::Setup(e.to_string()))
}

#[cfg(test)]
mod tests;
