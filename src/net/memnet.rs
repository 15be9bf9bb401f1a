//! An in-process network for the whole-network harness (`src/harness/`): a libp2p transport
//! whose connections are pairs of in-memory pipes, each direction shaped by a [`LinkModel`]
//! (latency, bandwidth, loss), with partitions and crashes. Noise, Yamux and every behaviour
//! run on top of it unchanged: only the bytes' path between two swarms is simulated.
//!
//! Node `i` listens on `/memory/{port}`; a dial looks the port up in the [`MemNet`], waits one
//! round trip (the TCP handshake) and hands the listener its end. A written chunk is stamped
//! with its arrival time by the direction's link model and the reader sees it no earlier; a
//! writer waits while [`WINDOW_BYTES`] are unread (a socket buffer: backpressure, never a
//! dropped byte). Cutting a connection (a partition, a crashed node) fails both ends' reads
//! and writes, as a reset TCP connection would; dials across a cut are refused.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::future::{BoxFuture, Ready};
use futures::{AsyncRead, AsyncWrite};
use libp2p::core::transport::{DialOpts, ListenerId, Transport, TransportError, TransportEvent};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use tokio::sync::mpsc;

use super::link::{LinkModel, LinkParams};

mod stream;
pub use stream::MemStream;
use stream::{Conn, Pipe};

/// Bytes written into one direction and not yet read before the writer waits.
pub const WINDOW_BYTES: usize = 256 * 1024;
/// Largest chunk one write puts on a link.
pub const CHUNK_MAX_BYTES: usize = 64 * 1024;
/// Connections a listener holds before it has accepted them (a listen backlog); a dial
/// beyond it is refused.
pub const BACKLOG: usize = 64;

/// Decides the path from node `a` to node `b`.
pub type Paths = Arc<dyn Fn(usize, usize) -> LinkParams + Send + Sync>;

/// The in-process network: its listeners, connections, partition and byte counts. Cloning
/// gives another handle to the same network.
#[derive(Clone)]
pub struct MemNet {
    shared: Arc<Shared>,
}

struct Shared {
    paths: Paths,
    seed: u64,
    /// Bytes each node wrote into, and read from, its connections (Noise and Yamux framing
    /// included: what a node's network interface would count).
    sent: Vec<AtomicU64>,
    received: Vec<AtomicU64>,
    state: Mutex<State>,
}

struct State {
    listeners: HashMap<u64, (usize, mpsc::Sender<MemStream>)>,
    /// Each node's side of the partition: a connection between two sides is cut.
    sides: Vec<u32>,
    conns: Vec<Weak<Conn>>,
    next_conn: u64,
}

impl MemNet {
    /// A network of `nodes` nodes whose paths `paths` gives; `seed` fixes every link's losses.
    pub fn new(nodes: usize, seed: u64, paths: Paths) -> MemNet {
        MemNet {
            shared: Arc::new(Shared {
                paths,
                seed,
                sent: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
                received: (0..nodes).map(|_| AtomicU64::new(0)).collect(),
                state: Mutex::new(State {
                    listeners: HashMap::new(),
                    sides: vec![0; nodes],
                    conns: Vec::new(),
                    next_conn: 0,
                }),
            }),
        }
    }

    /// The transport node `node` builds its swarm on.
    pub fn transport(&self, node: usize) -> MemTransport {
        assert!(node < self.shared.sent.len(), "node {node} is not in this network");
        MemTransport { net: self.clone(), node, listeners: Vec::new(), events: VecDeque::new(), waker: None }
    }

    /// Bytes node `node` has written into its connections.
    pub fn bytes_sent(&self, node: usize) -> u64 {
        self.shared.sent[node].load(Ordering::Relaxed)
    }

    /// Bytes node `node` has read from its connections.
    pub fn bytes_received(&self, node: usize) -> u64 {
        self.shared.received[node].load(Ordering::Relaxed)
    }

    /// Puts each node on a side (`sides[node]`): connections between sides are cut now, and
    /// dials between them refused until the sides change again. All zeros heals.
    pub fn set_sides(&self, sides: &[u32]) {
        let mut state = self.state();
        assert_eq!(sides.len(), state.sides.len(), "one side per node");
        state.sides = sides.to_vec();
        for conn in state.conns.iter().filter_map(Weak::upgrade) {
            if sides[conn.a] != sides[conn.b] {
                conn.cut();
            }
        }
    }

    /// Cuts every connection of `node` (a crash: its peers see resets, not a goodbye).
    pub fn cut_node(&self, node: usize) {
        let state = self.state();
        for conn in state.conns.iter().filter_map(Weak::upgrade) {
            if conn.a == node || conn.b == node {
                conn.cut();
            }
        }
    }

    /// Open connections (both ends alive).
    pub fn connections(&self) -> usize {
        self.state().conns.iter().filter(|c| c.strong_count() > 0).count()
    }

    /// Connections dialed since the network was made.
    pub fn connections_opened(&self) -> u64 {
        self.state().next_conn
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connects `from` to the listener on `port`: `Ok` with the dialer's end once the
    /// listener has been handed its own.
    fn connect(&self, from: usize, port: u64) -> io::Result<(MemStream, LinkParams)> {
        let mut state = self.state();
        let Some((to, incoming)) = state.listeners.get(&port).cloned() else {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, format!("nothing listens on /memory/{port}")));
        };
        if state.sides[from] != state.sides[to] {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "the path is cut (partition)"));
        }
        let id = state.next_conn;
        state.next_conn += 1;
        let seed = |direction: u64| self.shared.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (id << 1 | direction);
        let forth = (self.shared.paths)(from, to);
        let back = (self.shared.paths)(to, from);
        let conn = Arc::new(Conn {
            a: from,
            b: to,
            a_to_b: Pipe::new(LinkModel::new(forth, seed(0))),
            b_to_a: Pipe::new(LinkModel::new(back, seed(1))),
        });
        if state.conns.len() >= 1024 && state.conns.len().is_power_of_two() {
            state.conns.retain(|c| c.strong_count() > 0);
        }
        state.conns.push(Arc::downgrade(&conn));
        drop(state);
        let listener_end = MemStream { conn: conn.clone(), dialer: false, timer: None, net: self.shared.clone() };
        incoming
            .try_send(listener_end)
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionRefused, "the listener's backlog is full"))?;
        Ok((MemStream { conn, dialer: true, timer: None, net: self.shared.clone() }, forth))
    }
}

/// The `/memory/N` port of an address (a trailing `/p2p/…` is allowed).
fn memory_port(addr: &Multiaddr) -> Option<u64> {
    let mut parts = addr.iter();
    let port = match parts.next() {
        Some(Protocol::Memory(port)) if port != 0 => port,
        _ => return None,
    };
    match parts.next() {
        None | Some(Protocol::P2p(_)) => Some(port),
        Some(_) => None,
    }
}

struct Listening {
    id: ListenerId,
    port: u64,
    addr: Multiaddr,
    incoming: mpsc::Receiver<MemStream>,
}

/// One node's transport on a [`MemNet`].
pub struct MemTransport {
    net: MemNet,
    node: usize,
    listeners: Vec<Listening>,
    events: VecDeque<TransportEvent<Ready<io::Result<MemStream>>, io::Error>>,
    waker: Option<Waker>,
}

impl MemTransport {
    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    fn unregister(&self, port: u64) {
        let mut state = self.net.state();
        if state.listeners.get(&port).is_some_and(|(node, _)| *node == self.node) {
            state.listeners.remove(&port);
        }
    }
}

impl Drop for MemTransport {
    fn drop(&mut self) {
        for l in &self.listeners {
            self.unregister(l.port);
        }
    }
}

impl Transport for MemTransport {
    type Output = MemStream;
    type Error = io::Error;
    type ListenerUpgrade = Ready<io::Result<MemStream>>;
    type Dial = BoxFuture<'static, io::Result<MemStream>>;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<io::Error>> {
        let Some(port) = memory_port(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let (tx, rx) = mpsc::channel(BACKLOG);
        {
            let mut state = self.net.state();
            if state.listeners.contains_key(&port) {
                return Err(TransportError::Other(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("/memory/{port} is taken"),
                )));
            }
            state.listeners.insert(port, (self.node, tx));
        }
        self.listeners.push(Listening { id, port, addr: addr.clone(), incoming: rx });
        self.events.push_back(TransportEvent::NewAddress { listener_id: id, listen_addr: addr });
        self.wake();
        Ok(())
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        let Some(i) = self.listeners.iter().position(|l| l.id == id) else {
            return false;
        };
        let l = self.listeners.remove(i);
        self.unregister(l.port);
        self.events.push_back(TransportEvent::ListenerClosed { listener_id: id, reason: Ok(()) });
        self.wake();
        true
    }

    fn dial(&mut self, addr: Multiaddr, _opts: DialOpts) -> Result<Self::Dial, TransportError<io::Error>> {
        let Some(port) = memory_port(&addr) else {
            return Err(TransportError::MultiaddrNotSupported(addr));
        };
        let net = self.net.clone();
        let from = self.node;
        Ok(Box::pin(async move {
            let (stream, path) = net.connect(from, port)?;
            // The TCP handshake: the dialer may send one round trip after it began.
            tokio::time::sleep(path.latency * 2).await;
            Ok(stream)
        }))
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<TransportEvent<Self::ListenerUpgrade, io::Error>> {
        if let Some(event) = self.events.pop_front() {
            return Poll::Ready(event);
        }
        let node = self.node;
        for l in &mut self.listeners {
            if let Poll::Ready(Some(stream)) = l.incoming.poll_recv(cx) {
                let from = stream.conn.a;
                debug_assert_eq!(stream.conn.b, node);
                return Poll::Ready(TransportEvent::Incoming {
                    listener_id: l.id,
                    upgrade: futures::future::ready(Ok(stream)),
                    local_addr: l.addr.clone(),
                    // Like an ephemeral TCP port: the dialer's side, not an address to dial.
                    send_back_addr: Multiaddr::empty().with(Protocol::Memory(u64::MAX - from as u64)),
                });
            }
        }
        self.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{AsyncReadExt, AsyncWriteExt};
    use std::time::Duration;

    fn net(latency_ms: u64) -> MemNet {
        MemNet::new(3, 1, Arc::new(move |_, _| LinkParams::delay(Duration::from_millis(latency_ms))))
    }

    #[tokio::test]
    async fn bytes_cross_a_connection_one_latency_later_and_in_order() {
        let net = net(30);
        let (mut a, _) = net.connect_for_test(0, 1);
        let mut b = net.accept_for_test(1);
        let t0 = Instant::now();
        a.write_all(b"hello ").await.unwrap();
        a.write_all(b"world").await.unwrap();
        let mut got = [0u8; 11];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
        assert!(t0.elapsed() >= Duration::from_millis(30));
        assert_eq!(net.bytes_sent(0), 11);
        assert_eq!(net.bytes_received(1), 11);
        drop(a);
        assert_eq!(b.read(&mut got).await.unwrap(), 0, "a dropped end reads as EOF");
    }

    #[tokio::test]
    async fn a_partition_resets_connections_across_it_and_refuses_dials_until_healed() {
        let net = net(1);
        let (mut a, _) = net.connect_for_test(0, 1);
        let mut b = net.accept_for_test(1);
        net.listen_for_test(2);
        net.set_sides(&[0, 1, 1]);
        assert_eq!(a.write(b"x").await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(b.read(&mut [0u8; 1]).await.unwrap_err().kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(net.connect(0, 3).err().unwrap().kind(), io::ErrorKind::ConnectionRefused);
        net.set_sides(&[0, 0, 0]);
        assert!(net.connect(0, 3).is_ok());
    }

    #[tokio::test]
    async fn a_writer_waits_while_the_window_is_unread() {
        let net = net(1);
        let (mut a, _) = net.connect_for_test(0, 1);
        let mut b = net.accept_for_test(1);
        let big = vec![7u8; WINDOW_BYTES + 1000];
        let writer = tokio::spawn(async move {
            a.write_all(&big).await.unwrap();
            a
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!writer.is_finished(), "the window is full until the reader reads");
        let mut got = vec![0u8; WINDOW_BYTES + 1000];
        b.read_exact(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(got.iter().all(|x| *x == 7));
    }

    impl MemNet {
        fn listen_for_test(&self, node: usize) {
            let (tx, rx) = mpsc::channel(BACKLOG);
            self.state().listeners.insert(node as u64 + 1, (node, tx));
            TEST_BACKLOG.with(|b| b.borrow_mut().insert(node, rx));
        }

        fn connect_for_test(&self, from: usize, to: usize) -> (MemStream, LinkParams) {
            self.listen_for_test(to);
            self.connect(from, to as u64 + 1).unwrap()
        }

        fn accept_for_test(&self, node: usize) -> MemStream {
            TEST_BACKLOG.with(|b| b.borrow_mut().get_mut(&node).unwrap().try_recv().unwrap())
        }
    }

    thread_local! {
        static TEST_BACKLOG: std::cell::RefCell<HashMap<usize, mpsc::Receiver<MemStream>>> =
            std::cell::RefCell::new(HashMap::new());
    }
}
