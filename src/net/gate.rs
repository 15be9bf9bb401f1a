//! Keeps a behaviour's inbound streams to admitted peers (docs/PROTOCOL.md §11.1): on a charter
//! network Kademlia answers no one who has not shown a valid certificate.
//!
//! libp2p 0.56 has no per-peer switch for a behaviour, so [`Gated`] wraps one: every connection
//! handler it makes is the inner handler behind a [`GateHandler`], which drops an inbound
//! stream of a peer not admitted the moment it is negotiated, before the inner handler sees a
//! byte of it (yamux then resets the stream, so the peer's request fails at once). Outbound
//! streams and everything else pass through unchanged.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};

use libp2p::core::{transport::PortUse, Endpoint, Multiaddr};
use libp2p::swarm::handler::{ConnectionEvent, ConnectionHandler, ConnectionHandlerEvent, SubstreamProtocol};
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::PeerId;

/// Which peers may open streams: everyone (an open network), or the admitted set.
#[derive(Clone, Debug)]
enum Admitted {
    Everyone,
    Only(Arc<RwLock<HashSet<PeerId>>>),
}

impl Admitted {
    fn contains(&self, peer: &PeerId) -> bool {
        match self {
            Admitted::Everyone => true,
            Admitted::Only(set) => set.read().unwrap_or_else(|p| p.into_inner()).contains(peer),
        }
    }
}

/// A behaviour whose inbound streams are accepted only from admitted peers.
pub struct Gated<B> {
    inner: B,
    admitted: Admitted,
}

impl<B> Gated<B> {
    /// Streams from every peer (an open network: nothing to gate).
    pub fn open(inner: B) -> Gated<B> {
        Gated { inner, admitted: Admitted::Everyone }
    }

    /// Streams only from peers passed to [`Gated::admit`].
    pub fn admitted_only(inner: B) -> Gated<B> {
        Gated { inner, admitted: Admitted::Only(Arc::default()) }
    }

    /// `peer` may open streams from now on (on connections open or to come).
    pub fn admit(&mut self, peer: PeerId) {
        if let Admitted::Only(set) = &self.admitted {
            set.write().unwrap_or_else(|p| p.into_inner()).insert(peer);
        }
    }

    /// `peer` may no longer open streams.
    pub fn forget(&mut self, peer: &PeerId) {
        if let Admitted::Only(set) = &self.admitted {
            set.write().unwrap_or_else(|p| p.into_inner()).remove(peer);
        }
    }

    /// Whether `peer` may open streams.
    pub fn is_admitted(&self, peer: &PeerId) -> bool {
        self.admitted.contains(peer)
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: NetworkBehaviour> NetworkBehaviour for Gated<B> {
    type ConnectionHandler = GateHandler<THandler<B>>;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner.handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner = self.inner.handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)?;
        Ok(GateHandler { inner, peer, admitted: self.admitted.clone() })
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner.handle_pending_outbound_connection(connection_id, maybe_peer, addresses, effective_role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let inner =
            self.inner.handle_established_outbound_connection(connection_id, peer, addr, role_override, port_use)?;
        Ok(GateHandler { inner, peer, admitted: self.admitted.clone() })
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        self.inner.on_swarm_event(event)
    }

    fn on_connection_handler_event(
        &mut self,
        peer_id: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner.on_connection_handler_event(peer_id, connection_id, event)
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}

/// A connection handler that hands the inner one only the inbound streams of admitted peers.
pub struct GateHandler<H> {
    inner: H,
    peer: PeerId,
    admitted: Admitted,
}

impl<H: ConnectionHandler> ConnectionHandler for GateHandler<H> {
    type FromBehaviour = H::FromBehaviour;
    type ToBehaviour = H::ToBehaviour;
    type InboundProtocol = H::InboundProtocol;
    type OutboundProtocol = H::OutboundProtocol;
    type InboundOpenInfo = H::InboundOpenInfo;
    type OutboundOpenInfo = H::OutboundOpenInfo;

    fn listen_protocol(&self) -> SubstreamProtocol<Self::InboundProtocol, Self::InboundOpenInfo> {
        self.inner.listen_protocol()
    }

    fn connection_keep_alive(&self) -> bool {
        self.inner.connection_keep_alive()
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Self::OutboundProtocol, Self::OutboundOpenInfo, Self::ToBehaviour>> {
        self.inner.poll(cx)
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Option<Self::ToBehaviour>> {
        self.inner.poll_close(cx)
    }

    fn on_behaviour_event(&mut self, event: Self::FromBehaviour) {
        self.inner.on_behaviour_event(event)
    }

    fn on_connection_event(
        &mut self,
        event: ConnectionEvent<
            Self::InboundProtocol,
            Self::OutboundProtocol,
            Self::InboundOpenInfo,
            Self::OutboundOpenInfo,
        >,
    ) {
        if matches!(event, ConnectionEvent::FullyNegotiatedInbound(_)) && !self.admitted.contains(&self.peer) {
            // Dropping the negotiated stream resets it: the peer is told nothing.
            tracing::debug!(peer = %self.peer, "inbound stream of a peer not admitted dropped");
            return;
        }
        self.inner.on_connection_event(event)
    }
}
