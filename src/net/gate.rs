//! Keeps a behaviour's inbound streams to admitted peers (docs/PROTOCOL.md §11.1): on a charter
//! network Kademlia answers no one who has not shown a valid certificate.
//!
//! libp2p 0.56 has no per-peer switch for a behaviour, so [`Gated`] wraps one: every connection
//! handler it makes is the inner handler behind a [`GateHandler`], which drops an inbound
//! stream of a peer not admitted the moment it is negotiated, before the inner handler sees a
//! byte of it (yamux then resets the stream, so the peer's request fails at once). Outbound
//! streams and everything else pass through unchanged.
//!
//! It also holds back the inner behaviour's dials while the node is connected to as many peers
//! as its target ([`Gated::dial_only_below`]): Kademlia dials the oldest disconnected entry of
//! a full bucket each time a new peer connects (to see whether it is still alive), so with a
//! topology that lets peers go, every new connection made another, and at 100 nodes that was
//! nearly all of the ~7,000 connections a minute the network opened (docs/PROTOCOL.md §8.1).

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
    /// The inner behaviour may dial only while fewer peers than this are connected.
    dial_below: usize,
    /// Peers with at least one connection.
    connected: usize,
}

impl<B> Gated<B> {
    /// Streams from every peer (an open network: nothing to gate).
    pub fn open(inner: B) -> Gated<B> {
        Gated { inner, admitted: Admitted::Everyone, dial_below: usize::MAX, connected: 0 }
    }

    /// Streams only from peers passed to [`Gated::admit`].
    pub fn admitted_only(inner: B) -> Gated<B> {
        Gated { inner, admitted: Admitted::Only(Arc::default()), dial_below: usize::MAX, connected: 0 }
    }

    /// `peer` may open streams from now on (on connections open or to come).
    pub fn admit(&mut self, peer: PeerId) {
        if let Admitted::Only(set) = &self.admitted {
            set.write().unwrap_or_else(|p| p.into_inner()).insert(peer);
        }
    }

    /// From now on the inner behaviour's dials are dropped while `target` or more peers are
    /// connected (a Kademlia lookup then waits out its timeout for the peers it wanted).
    pub fn dial_only_below(&mut self, target: usize) {
        self.dial_below = target;
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
        match &event {
            FromSwarm::ConnectionEstablished(e) if e.other_established == 0 => self.connected += 1,
            FromSwarm::ConnectionClosed(e) if e.remaining_established == 0 => {
                self.connected = self.connected.saturating_sub(1)
            }
            _ => {}
        }
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
        loop {
            match self.inner.poll(cx) {
                Poll::Ready(ToSwarm::Dial { opts }) if self.connected >= self.dial_below => {
                    tracing::trace!(peer = ?opts.get_peer_id(), connected = self.connected, "dial held back: at the connection target");
                }
                other => return other,
            }
        }
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

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use libp2p::core::ConnectedPoint;
    use libp2p::swarm::behaviour::{ConnectionClosed, ConnectionEstablished};
    use libp2p::swarm::dial_opts::DialOpts;
    use libp2p::swarm::dummy;

    use super::*;

    /// A behaviour that dials every peer it is given, as Kademlia dials a full bucket's oldest
    /// disconnected entry when a new peer connects.
    #[derive(Default)]
    struct Dialer {
        to_dial: VecDeque<PeerId>,
    }

    impl NetworkBehaviour for Dialer {
        type ConnectionHandler = dummy::ConnectionHandler;
        type ToSwarm = ();

        fn handle_established_inbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: &Multiaddr,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(dummy::ConnectionHandler)
        }

        fn handle_established_outbound_connection(
            &mut self,
            _: ConnectionId,
            _: PeerId,
            _: &Multiaddr,
            _: Endpoint,
            _: PortUse,
        ) -> Result<THandler<Self>, ConnectionDenied> {
            Ok(dummy::ConnectionHandler)
        }

        fn on_swarm_event(&mut self, _: FromSwarm) {}

        fn on_connection_handler_event(&mut self, _: PeerId, _: ConnectionId, event: THandlerOutEvent<Self>) {
            match event {}
        }

        fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<(), THandlerInEvent<Self>>> {
            match self.to_dial.pop_front() {
                Some(peer) => Poll::Ready(ToSwarm::Dial { opts: DialOpts::peer_id(peer).build() }),
                None => Poll::Pending,
            }
        }
    }

    /// The peers the gated behaviour asks the swarm to dial now.
    fn dials(gated: &mut Gated<Dialer>) -> Vec<PeerId> {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut out = Vec::new();
        while let Poll::Ready(event) = gated.poll(&mut cx) {
            if let ToSwarm::Dial { opts } = event {
                out.extend(opts.get_peer_id());
            }
        }
        out
    }

    #[test]
    fn the_inner_behaviour_dials_only_below_the_connection_target() {
        let mut gated = Gated::open(Dialer::default());
        gated.dial_only_below(2);
        let endpoint = ConnectedPoint::Listener { local_addr: Multiaddr::empty(), send_back_addr: Multiaddr::empty() };
        let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
        let connect = |g: &mut Gated<Dialer>, peer: PeerId, id: usize, other_established: usize| {
            g.on_swarm_event(FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id: peer,
                connection_id: ConnectionId::new_unchecked(id),
                endpoint: &endpoint,
                failed_addresses: &[],
                other_established,
            }))
        };
        let close = |g: &mut Gated<Dialer>, peer: PeerId, id: usize, remaining_established: usize| {
            g.on_swarm_event(FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id: peer,
                connection_id: ConnectionId::new_unchecked(id),
                endpoint: &endpoint,
                cause: None,
                remaining_established,
            }))
        };

        connect(&mut gated, peers[0], 1, 0);
        gated.inner_mut().to_dial.push_back(peers[2]);
        assert_eq!(dials(&mut gated), vec![peers[2]], "one peer of two: dials pass");

        connect(&mut gated, peers[1], 2, 0);
        connect(&mut gated, peers[1], 3, 1); // a second connection to the same peer
        gated.inner_mut().to_dial.extend([peers[2], peers[3]]);
        assert_eq!(dials(&mut gated), Vec::<PeerId>::new(), "at the target: held back");
        assert!(gated.inner_mut().to_dial.is_empty(), "held back means dropped, not queued");

        close(&mut gated, peers[1], 3, 1);
        gated.inner_mut().to_dial.push_back(peers[3]);
        assert_eq!(dials(&mut gated), Vec::<PeerId>::new(), "the peer is still connected once");

        close(&mut gated, peers[1], 2, 0);
        gated.inner_mut().to_dial.push_back(peers[3]);
        assert_eq!(dials(&mut gated), vec![peers[3]], "below the target again");
    }
}
