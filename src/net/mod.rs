//! libp2p glue: the swarm (TCP + Noise + Yamux, identify, ping, Kademlia, optional mDNS,
//! gossipsub, the sync request-response protocol, connection limits and a block list) and the
//! task that owns it.
//!
//! The rest of the node talks to the swarm only through [`NetCommand`]s and [`NetEvent`]s on
//! bounded channels. This module knows nothing of the store or of sync decisions.
//!
//! `swarm.rs` builds the swarm, `task.rs` is the task that owns it (it never waits on the
//! engine), `redial.rs` decides when bootstrap peers are dialed again, `gate.rs` keeps
//! Kademlia's inbound streams to admitted peers on a charter network.

pub mod codec;
mod gate;
pub mod limits;
pub mod link;
pub mod memnet;
mod redial;
mod swarm;
mod task;

use libp2p::gossipsub::{IdentTopic, MessageAcceptance, MessageId};
use libp2p::request_response::OutboundFailure;
use libp2p::{identity, Multiaddr, PeerId};

use crate::sync::wire::{Request, Response, SYNC_PROTOCOL};

pub use swarm::{build_swarm, build_swarm_on, Behaviour, NetTransport, NOT_ADMITTED_SCORE};
pub use task::run_swarm;

/// What the node asks of the swarm. Carrying out a command never waits.
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
    /// Disconnect and block a peer (a bootstrap peer is not dialed while blocked).
    Ban { peer: PeerId },
    /// Lift a block (a bootstrap peer is dialed again at once).
    Unban { peer: PeerId },
    /// The peer presented a valid certificate: gossip may flow to and from it, and on a
    /// charter network Kademlia serves it and learns its addresses.
    Admit { peer: PeerId },
    /// Close every connection with the peer (not admitted, or no longer).
    Disconnect { peer: PeerId },
}

/// What the swarm reports to the node. `MalformedRequest`: the peer sent a sync request that is
/// not a valid message (garbage, over the size bound, cut short of its declared length).
/// `Incompatible`: the peer's identify lists versions of the sync protocol, none of them this
/// build's ([`other_sync_versions`]: at most [`SYNC_VERSIONS_KEPT`] names, each at most
/// [`SYNC_VERSION_NAME_MAX`] characters).
#[derive(Debug)]
pub enum NetEvent {
    Listening { address: Multiaddr },
    PeerConnected { peer: PeerId, address: Multiaddr },
    PeerDisconnected { peer: PeerId },
    InboundRequest { peer: PeerId, request: Request, tag: u64 },
    Response { tag: u64, peer: PeerId, result: Result<Response, RequestFailure> },
    Gossip { source: PeerId, message_id: MessageId, data: Vec<u8> },
    MalformedRequest { peer: PeerId },
    Incompatible { peer: PeerId, speaks: Vec<String> },
}

/// Prefix of every version of the sync protocol's name.
pub const SYNC_PROTOCOL_PREFIX: &str = "/entrepot/sync/";
/// Most sync protocol names kept from one peer's identify.
pub const SYNC_VERSIONS_KEPT: usize = 4;
/// Longest sync protocol name kept (longer names are cut).
pub const SYNC_VERSION_NAME_MAX: usize = 64;

/// The versions of the sync protocol a peer lists in identify, when it lists some and not this
/// build's. `None` when it speaks this build's version, or no version at all: a client that
/// only sends requests (a verifier, a mirror) serves none, and is no peer of another release.
pub fn other_sync_versions<'a>(protocols: impl IntoIterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut other = Vec::new();
    for p in protocols.into_iter().filter(|p| p.starts_with(SYNC_PROTOCOL_PREFIX)) {
        if p == SYNC_PROTOCOL {
            return None;
        }
        if other.len() < SYNC_VERSIONS_KEPT {
            other.push(p.chars().take(SYNC_VERSION_NAME_MAX).collect());
        }
    }
    (!other.is_empty()).then_some(other)
}

/// Why a sync request got no answer (docs/PROTOCOL.md §8.2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestFailure {
    /// No answer within the request timeout ([`limits::REQUEST_TIMEOUT`]).
    #[error("no answer within the request timeout")]
    Timeout,
    /// The connection closed before the answer arrived.
    #[error("the connection closed before the answer")]
    ConnectionClosed,
    /// The peer was not connected and could not be dialed.
    #[error("the peer could not be dialed")]
    DialFailure,
    /// The peer is not connected: a request is never a reason to dial (the topology decides
    /// the connections, docs/PROTOCOL.md §8.1).
    #[error("the peer is not connected")]
    NotConnected,
    /// The peer speaks no version of the sync protocol this build speaks.
    #[error("the peer speaks none of the requested protocols (this build speaks {SYNC_PROTOCOL})")]
    UnsupportedProtocols,
    /// The answer is not a valid message: it does not decode, exceeds a bound, or ends before
    /// the length its frame declared. The peer's fault.
    #[error("the peer's answer is malformed: {0}")]
    Malformed(String),
    /// The stream failed otherwise (reset or closed before an answer began, or refused by
    /// this node's own stream bound).
    #[error("the sync stream failed: {0}")]
    Io(String),
}

impl RequestFailure {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            RequestFailure::Timeout => "request_timeout",
            RequestFailure::ConnectionClosed => "connection_closed",
            RequestFailure::DialFailure => "dial_failure",
            RequestFailure::NotConnected => "not_connected",
            RequestFailure::UnsupportedProtocols => "unsupported_protocols",
            RequestFailure::Malformed(_) => "malformed_response",
            RequestFailure::Io(_) => "stream_failed",
        }
    }
}

impl From<OutboundFailure> for RequestFailure {
    /// The codec reports whatever the peer got wrong, and only that, as `InvalidData`.
    fn from(e: OutboundFailure) -> RequestFailure {
        match e {
            OutboundFailure::DialFailure => RequestFailure::DialFailure,
            OutboundFailure::Timeout => RequestFailure::Timeout,
            OutboundFailure::ConnectionClosed => RequestFailure::ConnectionClosed,
            OutboundFailure::UnsupportedProtocols => RequestFailure::UnsupportedProtocols,
            OutboundFailure::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                RequestFailure::Malformed(e.to_string())
            }
            OutboundFailure::Io(e) => RequestFailure::Io(e.to_string()),
        }
    }
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

/// Parses a bootstrap address, which must end in `/p2p/PEER_ID`.
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
    /// Peers dialed at start and, whenever not connected (and not banned), again with a
    /// bounded backoff (docs/PROTOCOL.md §8.1).
    pub bootstrap: Vec<(PeerId, Multiaddr)>,
    /// Kademlia discovery (off for fixed topologies: no Kademlia at all, see [`build_swarm`]).
    pub discovery: bool,
    /// Peers are admitted by certificate (charter networks): see [`NOT_ADMITTED_SCORE`].
    pub permissioned: bool,
    pub network_id: [u8; 32],
    /// Connections the node keeps (its topology's target): below it, Kademlia looks for
    /// peers every [`limits::KAD_BOOTSTRAP_INTERVAL`], at it only every
    /// [`limits::KAD_REFRESH_AT_TARGET`].
    pub connections_target: usize,
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
