//! The node's libp2p behaviours and how the swarm is built. Every limit comes from
//! [`limits`]; no libp2p default that bounds a peer is left implicit where libp2p lets it be set.

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::core::{upgrade, Transport};
use libp2p::gossipsub::{self, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{behaviour::toggle::Toggle, NetworkBehaviour};
use libp2p::{
    allow_block_list, connection_limits, identify, identity, kad, mdns, noise, ping, tcp, yamux, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};
use sha2::{Digest, Sha256};

use super::codec::SyncCodec;
use super::gate::Gated;
use super::memnet::MemTransport;
use super::{gossip_topic, limits, NetError};
use crate::sync::wire::SYNC_PROTOCOL;

/// The Kademlia protocol name: private, so entrepot nodes never join another DHT.
pub(super) const KAD_PROTOCOL: &str = "/entrepot/kad/1.0.0";

/// The Kademlia behaviour as the node runs it: gated (see `gate.rs`), and absent without
/// discovery.
pub(super) type Kademlia = Gated<kad::Behaviour<kad::store::MemoryStore>>;

/// The node's libp2p behaviours.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub(super) limits: connection_limits::Behaviour,
    pub(super) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(super) identify: identify::Behaviour,
    pub(super) ping: ping::Behaviour,
    pub(super) kad: Toggle<Kademlia>,
    pub(super) mdns: Toggle<mdns::tokio::Behaviour>,
    pub(super) gossipsub: gossipsub::Behaviour,
    pub(super) sync: request_response::Behaviour<SyncCodec>,
}

/// Builds the swarm and starts listening.
///
/// Without `discovery` there is no Kademlia at all: the node dials only its bootstrap peers
/// (and mDNS finds, when `mdns_enabled`) and accepts whoever dials it, a fixed topology. With
/// it on a `permissioned` (charter) network, Kademlia serves only admitted peers and its
/// routing table holds only them (docs/PROTOCOL.md §11.1).
pub fn build_swarm(
    keypair: identity::Keypair,
    network_id: &[u8; 32],
    listen: &[String],
    mdns_enabled: bool,
    discovery: bool,
    permissioned: bool,
    codec: SyncCodec,
) -> Result<Swarm<Behaviour>, NetError> {
    build_swarm_on(NetTransport::Tcp, keypair, network_id, listen, mdns_enabled, discovery, permissioned, codec)
}

/// What carries a swarm's connections. Noise and Yamux run on top of either.
pub enum NetTransport {
    /// TCP (with `TCP_NODELAY`), as a node runs.
    Tcp,
    /// One node's end of an in-process network (the whole-network harness, `src/harness/`).
    Memory(MemTransport),
}

impl NetTransport {
    /// The authenticated, multiplexed transport.
    fn upgraded(self, key: &identity::Keypair) -> Result<Boxed<(PeerId, StreamMuxerBox)>, noise::Error> {
        let noise = noise::Config::new(key)?;
        Ok(match self {
            NetTransport::Tcp => tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                .upgrade(upgrade::Version::V1Lazy)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
                .boxed(),
            NetTransport::Memory(memory) => memory
                .upgrade(upgrade::Version::V1Lazy)
                .authenticate(noise)
                .multiplex(yamux::Config::default())
                .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer)))
                .boxed(),
        })
    }
}

/// [`build_swarm`] over the given transport.
#[allow(clippy::too_many_arguments)]
pub fn build_swarm_on(
    transport: NetTransport,
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
        .with_other_transport(|key| {
            transport.upgraded(key).map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|e| setup(&e))?
        .with_behaviour(|key| {
            let peer_id = key.public().to_peer_id();
            // Mesh parameters set for ~1,000 nodes of 24 connections each (docs/PROTOCOL.md
            // §8.3): a mesh of 8 peers reaches 1,000 nodes in about log(1000)/log(7) ≈ 3.5
            // hops, so at 300 ms a hop a new document is everywhere in about a second, while
            // each node forwards it 8 times rather than to every connection; the mesh may grow
            // to 12 (peers that graft themselves) and is repaired below 6, with 3 of them
            // outbound so that peers that dialed in cannot fill it. 8 more peers a heartbeat
            // hear the ids of the last 4 heartbeats (IHAVE) and may ask (IWANT) within the 10
            // heartbeats (5 s) the messages stay cached: above the 300 ms round trip, so what a
            // mesh path lost arrives by gossip before pull sync's next round.
            let gossip_config = gossipsub::ConfigBuilder::default()
                .mesh_n(limits::GOSSIP_MESH_N)
                .mesh_n_low(limits::GOSSIP_MESH_N_LOW)
                .mesh_n_high(limits::GOSSIP_MESH_N_HIGH)
                .mesh_outbound_min(limits::GOSSIP_MESH_OUTBOUND_MIN)
                .gossip_lazy(limits::GOSSIP_LAZY)
                .history_length(limits::GOSSIP_HISTORY_LENGTH)
                .history_gossip(limits::GOSSIP_HISTORY_GOSSIP)
                .heartbeat_interval(limits::GOSSIP_HEARTBEAT)
                .validation_mode(ValidationMode::Strict)
                .validate_messages()
                .max_transmit_size(limits::GOSSIP_MESSAGE_MAX_BYTES)
                .connection_handler_queue_len(limits::GOSSIP_QUEUE_LEN)
                .duplicate_cache_time(limits::GOSSIP_DUPLICATE_CACHE)
                // Content-addressed ids: the same document gossiped twice is one message.
                .message_id_fn(|m: &gossipsub::Message| MessageId::from(Sha256::digest(&m.data).to_vec()))
                .build()
                .map_err(|e| e.to_string())?;
            let mut gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gossip_config)?;
            if permissioned {
                gossipsub.with_peer_score(admission_score_params(), gossipsub::PeerScoreThresholds::default())?;
            }
            let kad = discovery.then(|| {
                let mut config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
                config.set_query_timeout(limits::KAD_QUERY_TIMEOUT);
                // The swarm task refreshes, at a rate that depends on the connections held.
                config.set_periodic_bootstrap_interval(None);
                let store = kad::store::MemoryStore::new(peer_id);
                if permissioned {
                    // Only admitted peers enter the routing table (the swarm task adds them).
                    config.set_kbucket_inserts(kad::BucketInserts::Manual);
                    Gated::admitted_only(kad::Behaviour::with_config(peer_id, store, config))
                } else {
                    Gated::open(kad::Behaviour::with_config(peer_id, store, config))
                }
            });
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
                ping: ping::Behaviour::new(ping::Config::new().with_interval(limits::PING_INTERVAL)),
                kad: Toggle::from(kad),
                mdns: Toggle::from(mdns),
                gossipsub,
                sync,
            })
        })
        .map_err(|e| setup(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(limits::IDLE_CONNECTION_TIMEOUT))
        .build();
    if let Some(kad) = swarm.behaviour_mut().kad.as_mut() {
        kad.inner_mut().set_mode(Some(kad::Mode::Server));
    }
    swarm.behaviour_mut().gossipsub.subscribe(&gossip_topic(network_id)).map_err(|e| setup(&e))?;
    for addr in listen {
        let ma: Multiaddr =
            addr.parse().map_err(|e: libp2p::multiaddr::Error| NetError::Address(addr.clone(), e.to_string()))?;
        swarm.listen_on(ma).map_err(|e| NetError::Listen(addr.clone(), e.to_string()))?;
    }
    Ok(swarm)
}

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
