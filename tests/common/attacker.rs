//! A hostile libp2p peer driven by the test (tests/hostile.rs): gossipsub and the sync protocol
//! with raw bytes, so that it can send what no honest node would. An outbound-only attacker
//! (`connect`) floods, reads slowly and gossips; a serving one (`member`) also answers the
//! node's sync requests with whatever bytes the test chooses.
#![allow(dead_code)]

use std::io;
use std::time::Duration;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identify, identity, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};

use entrepot::config::network_id;
use entrepot::sync::wire::{self, FeedHead, HeadsDigest, Request, Response, Status, SYNC_PROTOCOL};

/// Largest request frame the attacker reads from the node.
const REQUEST_READ_MAX_BYTES: usize = 1 << 20;

/// A codec that writes whatever bytes the test gives (framing included) and reads a frame,
/// a response optionally slowly: the hostile side of the sync protocol (`SYNC_PROTOCOL`).
/// Requests read from the node come without their length prefix.
#[derive(Clone, Default)]
pub struct RawCodec {
    slow_read: bool,
}

async fn read_len<T: AsyncRead + Unpin + Send>(io: &mut T, max: usize) -> io::Result<usize> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(io::Error::other(format!("node sent a {len}-byte frame")));
    }
    Ok(len)
}

#[async_trait]
impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let len = read_len(io, REQUEST_READ_MAX_BYTES).await?;
        let mut buf = vec![0u8; len];
        io.read_exact(&mut buf).await?;
        Ok(buf)
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let len = read_len(io, wire::MESSAGE_MAX_BYTES).await?;
        let mut buf = vec![0u8; len];
        if self.slow_read {
            // A slow reader: 1 KiB every 50 ms.
            let mut got = 0;
            while got < len {
                let n = (len - got).min(1024);
                io.read_exact(&mut buf[got..got + n]).await?;
                got += n;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } else {
            io.read_exact(&mut buf).await?;
        }
        Ok(buf)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&res).await?;
        io.close().await
    }
}

#[derive(NetworkBehaviour)]
pub struct Hostile {
    gossipsub: gossipsub::Behaviour,
    pub sync: request_response::Behaviour<RawCodec>,
    /// Announces the protocols it serves, as every node does.
    identify: identify::Behaviour,
}

pub struct Attacker {
    pub swarm: Swarm<Hostile>,
    pub node: PeerId,
    topic: IdentTopic,
    /// The node closed every connection with the attacker.
    pub closed: bool,
    /// Inbound sync streams that failed before the attacker could read a request from them.
    pub inbound_failures: usize,
}

/// One step of a serving attacker (see [`Attacker::next_inbound`]).
pub enum Inbound {
    /// The node asked something: the decoded request (or why it does not decode) and where
    /// to answer.
    Request(Result<Request, String>, ResponseChannel<Vec<u8>>),
    /// Nothing before the deadline.
    Quiet,
    /// The node closed every connection with the attacker.
    Closed,
}

/// A length-prefixed frame of `msg`.
pub fn frame(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

impl Attacker {
    /// An attacker that only sends (requests and gossip), on the network named `network`.
    pub async fn connect(addr: &str, node: PeerId, network: &str, slow_read: bool) -> Attacker {
        Attacker::start(addr, node, network, RawCodec { slow_read }, ProtocolSupport::Outbound)
            .await
            .expect("attacker connects")
    }

    /// An attacker that also answers the node's sync requests, as a member would; `None` when
    /// the node does not let it connect within 10 s.
    pub async fn member(addr: &str, node: PeerId, network: &str) -> Option<Attacker> {
        Attacker::start(addr, node, network, RawCodec::default(), ProtocolSupport::Full).await
    }

    /// A peer that speaks only `protocol` (an older release's sync protocol), both ways.
    pub async fn speaking(addr: &str, node: PeerId, network: &str, protocol: &'static str) -> Option<Attacker> {
        Attacker::start_with(addr, node, network, RawCodec::default(), ProtocolSupport::Full, protocol).await
    }

    /// Whether the node closed every connection with it within `within`.
    pub async fn disconnected_within(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        while !self.closed {
            match tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
                Ok(SwarmEvent::ConnectionClosed { num_established: 0, .. }) => self.closed = true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        true
    }

    async fn start(
        addr: &str,
        node: PeerId,
        network: &str,
        codec: RawCodec,
        support: ProtocolSupport,
    ) -> Option<Attacker> {
        Attacker::start_with(addr, node, network, codec, support, SYNC_PROTOCOL).await
    }

    async fn start_with(
        addr: &str,
        node: PeerId,
        network: &str,
        codec: RawCodec,
        support: ProtocolSupport,
        protocol: &'static str,
    ) -> Option<Attacker> {
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(identity::Keypair::generate_ed25519())
            .with_tokio()
            .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
            .unwrap()
            .with_behaviour(|key| {
                let config = gossipsub::ConfigBuilder::default()
                    .heartbeat_interval(Duration::from_millis(200))
                    .validation_mode(ValidationMode::Strict)
                    .max_transmit_size(8 * 1024 * 1024)
                    .build()
                    .unwrap();
                Hostile {
                    gossipsub: gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config).unwrap(),
                    sync: request_response::Behaviour::with_codec(
                        codec,
                        [(StreamProtocol::new(protocol), support)],
                        request_response::Config::default()
                            .with_request_timeout(Duration::from_secs(60))
                            .with_max_concurrent_streams(8192),
                    ),
                    identify: identify::Behaviour::new(identify::Config::new(
                        "/entrepot/id/1.0.0".into(),
                        key.public(),
                    )),
                }
            })
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(120)))
            .build();
        let topic = entrepot::net::gossip_topic(&network_id(network));
        swarm.behaviour_mut().gossipsub.subscribe(&topic).unwrap();
        swarm.dial(addr.parse::<Multiaddr>().unwrap()).unwrap();
        let mut a = Attacker { swarm, node, topic, closed: false, inbound_failures: 0 };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut connected = false;
        let mut subscribed = false;
        while !(connected && subscribed) {
            let ev = tokio::time::timeout_at(deadline, a.swarm.select_next_some()).await.ok()?;
            match ev {
                SwarmEvent::ConnectionEstablished { .. } => connected = true,
                // Let go before the subscriptions were exchanged (a peer of another version is
                // disconnected as soon as its identify arrives): connected, and closed.
                SwarmEvent::ConnectionClosed { num_established: 0, .. } if connected => {
                    a.closed = true;
                    break;
                }
                SwarmEvent::Behaviour(HostileEvent::Gossipsub(gossipsub::Event::Subscribed { peer_id, .. }))
                    if peer_id == node =>
                {
                    subscribed = true
                }
                _ => {}
            }
        }
        Some(a)
    }

    /// Sends raw framed bytes; the node's answer, or why there was none.
    pub async fn send_raw(&mut self, bytes: Vec<u8>, within: Duration) -> Result<Vec<u8>, String> {
        let id = self.swarm.behaviour_mut().sync.send_request(&self.node, bytes);
        self.wait_for(id, within).await
    }

    /// Sends raw framed bytes without waiting for the answer.
    pub fn send(&mut self, bytes: Vec<u8>) -> OutboundRequestId {
        self.swarm.behaviour_mut().sync.send_request(&self.node, bytes)
    }

    /// Answers an inbound request with raw bytes (framing included).
    pub fn respond(&mut self, channel: ResponseChannel<Vec<u8>>, bytes: Vec<u8>) {
        let _ = self.swarm.behaviour_mut().sync.send_response(channel, bytes);
    }

    async fn wait_for(&mut self, id: OutboundRequestId, within: Duration) -> Result<Vec<u8>, String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await else {
                return Err("timeout".into());
            };
            match ev {
                SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                })) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                })) if request_id == id => return Err(error.to_string()),
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => self.closed = true,
                _ => {}
            }
        }
    }

    /// Drives the swarm until the node asks something, `until` passes or the node
    /// disconnects. Answers to the attacker's own requests are dropped.
    pub async fn next_inbound(&mut self, until: tokio::time::Instant) -> Inbound {
        loop {
            if self.closed {
                return Inbound::Closed;
            }
            let Ok(ev) = tokio::time::timeout_at(until, self.swarm.select_next_some()).await else {
                return Inbound::Quiet;
            };
            match ev {
                SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::Message {
                    message: request_response::Message::Request { request, channel, .. },
                    ..
                })) => return Inbound::Request(wire::decode_request(&request).map_err(|e| e.to_string()), channel),
                SwarmEvent::Behaviour(HostileEvent::Sync(request_response::Event::InboundFailure { .. })) => {
                    self.inbound_failures += 1
                }
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => self.closed = true,
                _ => {}
            }
        }
    }

    pub async fn gossip(&mut self, data: Vec<u8>) {
        let _ = self.swarm.behaviour_mut().gossipsub.publish(self.topic.clone(), data);
    }

    /// Drives the swarm for `d`, noting a disconnection.
    pub async fn run_for(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
            if let SwarmEvent::ConnectionClosed { num_established: 0, .. } = ev {
                self.closed = true;
            }
        }
    }

    /// Banned: disconnected, and a new dial does not give a lasting connection.
    pub async fn is_banned(&mut self, addr: &str) -> bool {
        self.run_for(Duration::from_millis(1000)).await;
        if !self.closed {
            return false;
        }
        let _ = self.swarm.dial(addr.parse::<Multiaddr>().unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        let mut up = false;
        while let Ok(ev) = tokio::time::timeout_at(deadline, self.swarm.select_next_some()).await {
            match ev {
                SwarmEvent::ConnectionEstablished { .. } => up = true,
                SwarmEvent::ConnectionClosed { num_established: 0, .. } => up = false,
                SwarmEvent::OutgoingConnectionError { .. } => break,
                _ => {}
            }
        }
        !up
    }
}

/// The framed bytes of an honest-looking answer.
pub fn answer(response: &Response) -> Vec<u8> {
    frame(&wire::encode_response(response))
}

/// What a member attacker was asked while it ran.
#[derive(Debug, Default)]
pub struct Tally {
    pub ranges: usize,
    pub fork_proofs: usize,
    /// Inbound streams that failed before a request could be read.
    pub failed_streams: usize,
    pub closed: bool,
    pub elapsed: Duration,
}

/// How a member attacker behaves: the status requests it sends (one every `every`, the last
/// one repeated when `repeat`), the heads it answers the node's status with, and its answer
/// to every other request.
pub struct Script<'a> {
    pub statuses: Vec<Vec<u8>>,
    pub every: Duration,
    pub repeat: bool,
    pub heads: Vec<FeedHead>,
    pub answer: &'a dyn Fn(&Request) -> Vec<u8>,
    /// Stop once this many ranges were answered.
    pub ranges_max: usize,
    pub within: Duration,
}

pub async fn drive(a: &mut Attacker, script: &Script<'_>) -> Tally {
    let started = tokio::time::Instant::now();
    let deadline = started + script.within;
    let mut tally = Tally::default();
    let mut sent = 0;
    let mut next_status = started;
    while tally.ranges < script.ranges_max {
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        if now >= next_status && (sent < script.statuses.len() || script.repeat) {
            let i = sent.min(script.statuses.len() - 1);
            a.send(script.statuses[i].clone());
            sent += 1;
            next_status = now + script.every;
        }
        match a.next_inbound(next_status.max(now + Duration::from_millis(10)).min(deadline)).await {
            Inbound::Request(Ok(request), channel) => {
                let bytes = match &request {
                    Request::Status(status) => answer(&Response::Status(Status::compose(
                        status.network_id,
                        0,
                        script.heads.clone(),
                        HeadsDigest::NONE,
                        HeadsDigest::NONE,
                    ))),
                    other => {
                        match other {
                            Request::Range { .. } => tally.ranges += 1,
                            Request::ForkProofs { .. } => tally.fork_proofs += 1,
                            _ => {}
                        }
                        (script.answer)(other)
                    }
                };
                a.respond(channel, bytes);
            }
            Inbound::Request(Err(_), _) | Inbound::Quiet => {}
            Inbound::Closed => break,
        }
    }
    if !a.closed {
        // A disconnection for the last answer may still be on its way.
        a.run_for(Duration::from_millis(1000)).await;
    }
    tally.closed = a.closed;
    tally.failed_streams = a.inbound_failures;
    tally.elapsed = started.elapsed();
    tally
}
