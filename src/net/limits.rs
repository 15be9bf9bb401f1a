//! Every libp2p limit and timeout, in one place (docs/PROTOCOL.md §9 lists them too).

use std::time::Duration;

/// A connection with no open stream is closed after this long.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// A sync request not answered within this is failed (and retried elsewhere).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent sync streams per connection.
pub const SYNC_STREAMS_PER_CONNECTION_MAX: usize = 32;
/// Established connections in all.
pub const CONNECTIONS_MAX: u32 = 256;
/// Established connections with one peer.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// Connections being set up (either way).
pub const PENDING_CONNECTIONS_MAX: u32 = 64;
/// Largest gossip message: one document (1 MiB) with gossipsub's framing.
pub const GOSSIP_MESSAGE_MAX_BYTES: usize = crate::document::DOCUMENT_SIZE_MAX_BYTES + 64 * 1024;
/// Gossipsub heartbeat (mesh maintenance; messages themselves are forwarded at once).
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_millis(500);
/// Gossipsub mesh degree (D): peers each document is forwarded to in full.
pub const GOSSIP_MESH_N: usize = 8;
/// Below this many mesh peers the heartbeat grafts more (D_low).
pub const GOSSIP_MESH_N_LOW: usize = 6;
/// Above this many the heartbeat prunes some (D_high).
pub const GOSSIP_MESH_N_HIGH: usize = 12;
/// Mesh peers that must be ones this node dialed (D_out).
pub const GOSSIP_MESH_OUTBOUND_MIN: usize = 3;
/// Peers outside the mesh told the recent message ids each heartbeat (D_lazy).
pub const GOSSIP_LAZY: usize = 8;
/// Heartbeats a message stays in the cache that answers IWANT.
pub const GOSSIP_HISTORY_LENGTH: usize = 10;
/// Heartbeats of message ids advertised in IHAVE.
pub const GOSSIP_HISTORY_GOSSIP: usize = 4;
/// Gossipsub's send queue per peer: half of it for documents this node publishes (and
/// control messages), half for those it forwards, IHAVE and IWANT; what does not fit is
/// dropped and left to pull sync. Room for a 300-document burst. libp2p's default (5,000)
/// allocates and touches 2,500 slots of ~200 bytes per peer up front, about 0.5 MiB per
/// connection: most of an idle node's memory at 24 connections.
pub const GOSSIP_QUEUE_LEN: usize = 1024;
/// How long gossipsub remembers message ids to drop duplicates.
pub const GOSSIP_DUPLICATE_CACHE: Duration = Duration::from_secs(120);
/// Each side pings each connection this often (libp2p's default is 15 s). Nothing acts on
/// the result (a dead connection shows in its sync requests' timeouts), so it is kept rare:
/// at 24 connections a 15 s ping was ~0.4 kB/s of a quiet node's traffic and a wake-up of
/// every connection four times a minute.
pub const PING_INTERVAL: Duration = Duration::from_secs(60);
/// Identify push interval.
pub const IDENTIFY_INTERVAL: Duration = Duration::from_secs(300);
/// Kademlia query timeout.
pub const KAD_QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the node refreshes its Kademlia routing table (random walk) while it holds fewer
/// connections than its target. Each refresh is several lookups, each of which dials the
/// peers it asks; libp2p's own periodic refresh is off, its refresh while the routing table
/// holds fewer than 20 peers stays.
pub const KAD_BOOTSTRAP_INTERVAL: Duration = Duration::from_secs(120);
/// How often it refreshes at or above its target: the lookups' connections are churn the
/// topology then prunes, and a node at its target is not looking for peers.
pub const KAD_REFRESH_AT_TARGET: Duration = Duration::from_secs(30 * 60);
/// Commands queued to the swarm task.
pub const COMMAND_QUEUE: usize = 1024;
/// Events queued from the swarm task.
pub const EVENT_QUEUE: usize = 1024;
/// Events the swarm task holds while the event queue is full; with this many held it stops
/// polling the swarm (backpressure into libp2p) but keeps carrying out commands.
pub const EVENT_OUTBOX_MAX: usize = 64;
/// Delay before a bootstrap peer that is not connected is dialed again; doubled after each
/// failed dial (or connection that did not last) up to [`REDIAL_BACKOFF_MAX`].
pub const REDIAL_BACKOFF_MIN: Duration = Duration::from_secs(2);
/// Longest delay between two dials of a bootstrap peer.
pub const REDIAL_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A connection with a bootstrap peer that lasted this long resets the delay to
/// [`REDIAL_BACKOFF_MIN`]; a shorter one (a peer that turns this node away) does not.
pub const REDIAL_STABLE_CONNECTION: Duration = Duration::from_secs(30);
/// Peers this node dialed and reached, besides its bootstrap peers, kept to dial again when
/// it has lost its connections (the most recently reached).
pub const KNOWN_PEERS_MAX: usize = 32;
/// Below this many connected peers, known peers are dialed again (with the same backoff as
/// bootstrap peers); at or above it they are left to Kademlia. Below the smallest connection
/// target, so a peer the node let go to keep its target is not dialed back.
pub const KNOWN_REDIAL_BELOW: usize = 3;
/// How often the swarm task looks for bootstrap peers due to be dialed.
pub const REDIAL_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Listen addresses kept per peer from identify until it is admitted (charter networks).
pub const ANNOUNCED_ADDRESSES_MAX: usize = 8;
/// How often a node logs a charter that expires soon or has expired.
pub const CHARTER_EXPIRY_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

const _: () = assert!(REDIAL_BACKOFF_MIN.as_millis() < REDIAL_BACKOFF_MAX.as_millis());
const _: () = assert!(KAD_BOOTSTRAP_INTERVAL.as_secs() < KAD_REFRESH_AT_TARGET.as_secs());
const _: () = assert!(KNOWN_REDIAL_BELOW < crate::config::P2P_CONNECTIONS_MIN);
// Gossipsub's own rules (its config builder refuses others), checked at compile time.
const _: () = assert!(GOSSIP_MESH_N_LOW <= GOSSIP_MESH_N && GOSSIP_MESH_N <= GOSSIP_MESH_N_HIGH);
const _: () = assert!(GOSSIP_MESH_OUTBOUND_MIN <= GOSSIP_MESH_N_LOW && GOSSIP_MESH_OUTBOUND_MIN * 2 <= GOSSIP_MESH_N);
const _: () = assert!(GOSSIP_HISTORY_GOSSIP <= GOSSIP_HISTORY_LENGTH);
// The mesh and the lazy peers fit in the connections a node keeps.
const _: () = assert!(GOSSIP_MESH_N_HIGH + GOSSIP_LAZY <= crate::node::core::topology::CONNECTIONS_TARGET);
const _: () = assert!(REDIAL_CHECK_INTERVAL.as_millis() <= REDIAL_BACKOFF_MIN.as_millis());
// A peer's requests the node may serve at once fit in the streams of one connection.
const _: () = assert!(crate::node::core::SERVING_PER_PEER_MAX <= SYNC_STREAMS_PER_CONNECTION_MAX);
