//! The running node's shared state: the store, the trust anchor, the publishing identity, the
//! stream of newly stored documents, counters, and the network's view of peers.
//!
//! Everything that receives documents while a node runs (the HTTP API, the sync engine,
//! gossip) goes through [`Service::publish`] or [`Service::ingest`], so every stored document
//! raises one [`StoredEvent`] and every refusal is counted by reason. The methods block on
//! RocksDB; async callers run them with `spawn_blocking`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use tokio::sync::{broadcast, watch};

mod idempotency;
mod trust;
mod witness;
pub use idempotency::{check_key as check_idempotency_key, IDEMPOTENCY_KEYS_MAX, IDEMPOTENCY_KEY_MAX_BYTES};
use idempotency::{request_digest, IdempotencyKeys, KeyLookup};
pub use trust::{CharterApplied, CharterInfo, TrustError};
pub use witness::{
    peer_key, CheckpointRefused, CheckpointTaken, Receipt, TakeError, Witness, COSIGNATURES_SERVED_MAX,
    COSIGN_INTERVAL_S,
};

use crate::authority::Keyring;
use crate::clock::now_ms;
use crate::config::Node;
use crate::document::{decode_owned, DocumentId, OrgId, Seq, SignedDocument, TypeName};
use crate::ingest::{BatchReport, IngestError, Ingestor};
use crate::notice::{self, NoticeError};
use crate::publish::{PublishError, Published, Publisher};
use crate::store::{IngestOutcome, Store, StoreError, StoredEntry};

/// Capacity of the stored-document event channel. A subscriber that falls further behind
/// than this resumes from the store by arrival number (see [`Store::arrivals_after`]).
pub const EVENTS_CAPACITY: usize = 4096;

/// Where documents came from, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Publish,
    Import,
    Sync,
    Gossip,
    Api,
}

/// A document this node has just stored.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    /// Local arrival number: the resumable cursor of the event stream.
    pub arrival: u64,
    pub id: DocumentId,
    pub publisher: OrgId,
    pub seq: Seq,
    pub doc_type: TypeName,
    /// The envelope, for a document this node has just published (its gossip is sent from
    /// it); `None` for everything else.
    #[serde(skip)]
    pub envelope: Option<Arc<[u8]>>,
}

impl StoredEvent {
    fn of(entry: &StoredEntry, envelope: Option<Arc<[u8]>>) -> StoredEvent {
        StoredEvent {
            arrival: entry.arrival,
            id: entry.id,
            publisher: entry.publisher.clone(),
            seq: entry.seq,
            doc_type: entry.doc_type.clone(),
            envelope,
        }
    }
}

/// A connected peer as the network layer sees it.
#[derive(Debug, Clone, Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    pub address: String,
    /// The organization its node certificate names (charter networks, once admitted).
    pub organization: Option<OrgId>,
    /// Whether it is admitted (always on a keyring network; by certificate on a charter one).
    pub admitted: bool,
    /// Its penalty points now (a ban at 10; points decay).
    pub penalty_points: u32,
    /// Feed heads it announced and has not failed to serve, of publishers the trust knows.
    pub heads: BTreeMap<OrgId, Seq>,
}

/// A peer banned now.
#[derive(Debug, Clone, Serialize)]
pub struct BanInfo {
    pub peer_id: String,
    /// The offense that crossed the threshold.
    pub offense: String,
    pub seconds_left: u64,
}

/// What the network layer knows of peers; written by the network engine, read by the API.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerView {
    pub listen_addresses: Vec<String>,
    pub local_peer_id: String,
    pub peers: Vec<PeerInfo>,
    pub banned: Vec<BanInfo>,
    /// Penalties given since start, by offense.
    pub penalties: BTreeMap<String, u64>,
    /// Bans given since start.
    pub bans_total: u64,
}

/// Whether this process replicates (`entrepot run`), and if it stopped, why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Replication {
    /// No networking in this process (`entrepot serve`, the CLI), or it was shut down.
    #[default]
    Off,
    Running,
    /// A node task ended unexpectedly: the node is not ready and stops.
    Stopped(String),
}

impl PeerView {
    /// The best head any peer announced per publisher.
    pub fn best_heads(&self) -> BTreeMap<OrgId, Seq> {
        let mut best: BTreeMap<OrgId, Seq> = BTreeMap::new();
        for p in &self.peers {
            for (org, seq) in &p.heads {
                let e = best.entry(org.clone()).or_insert(*seq);
                *e = (*e).max(*seq);
            }
        }
        best
    }
}

/// Counters exposed as metrics.
#[derive(Debug, Default)]
pub struct Counters {
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub forks: AtomicU64,
    /// Refusals that mean something is wrong (a bad document, an unauthorized key, a peer
    /// without a valid certificate...), by stable reason code.
    pub refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Documents not stored *yet* because of where they stand, not what they are
    /// ([`IngestError::is_transient`]: a gap before them, a lifecycle target not held yet);
    /// a healthy catch-up counts many. By stable reason code.
    pub deferred: Mutex<BTreeMap<&'static str, u64>>,
    pub gossip_messages_in: AtomicU64,
    pub gossip_messages_out: AtomicU64,
    pub sync_requests_in: AtomicU64,
    pub sync_requests_out: AtomicU64,
    /// Sync protocol bytes read and written, framing included (counted by the codec).
    pub sync_bytes_in: Arc<AtomicU64>,
    pub sync_bytes_out: Arc<AtomicU64>,
    /// Sync bytes written by message kind (counted by the codec).
    pub sync_bytes_out_by_message: Arc<crate::net::codec::SyncTraffic>,
    pub gossip_bytes_in: AtomicU64,
    pub gossip_bytes_out: AtomicU64,
    /// Peers let go because they speak no sync protocol version in common with this node.
    pub peers_incompatible: AtomicU64,
}

/// The shared state of a running node.
pub struct Service {
    /// The node directory.
    pub dir: std::path::PathBuf,
    pub store: Store,
    pub network_id: [u8; 32],
    pub network_name: String,
    /// The trust anchor; replaced whole when a new charter version is applied, so a check
    /// always sees one consistent version.
    keyring: RwLock<Arc<Keyring>>,
    pub publisher: Option<Publisher>,
    /// Where charter versions are kept (`[charter] dir`); `None` off a charter network.
    charter_dir: Option<std::path::PathBuf>,
    /// This node's certificate (charter networks), shown to peers in the hello; replaced whole
    /// by [`Service::reload_certificate`].
    certificate: RwLock<Option<crate::charter::NodeCert>>,
    /// Where `[charter] certificate` says the certificate is (re-read on reload).
    certificate_path: Option<std::path::PathBuf>,
    /// Bumped on each certificate replaced, for the network engine to show the new one.
    certificate_changes: watch::Sender<u64>,
    /// The node's identity key (the witness key), to make the witness again for a new certificate.
    identity: Option<ed25519_dalek::SigningKey>,
    /// This node as a witness of feeds: its identity key and certificate (charter networks).
    witness: RwLock<Option<Arc<Witness>>>,
    /// The charter version in force; the network engine watches it to re-admit peers.
    charter_version: watch::Sender<u32>,
    /// Serializes charter applications (each reads, extends and replaces the chain).
    charter_lock: Mutex<()>,
    /// Feeds a charter version changed, for the sync engine (see `take_feed_resets`).
    feed_resets: Mutex<Vec<(OrgId, Seq)>>,
    pub counters: Counters,
    pub peers: RwLock<PeerView>,
    replication: RwLock<Replication>,
    events: broadcast::Sender<StoredEvent>,
    /// Highest arrival number already announced as an event.
    announced: Mutex<u64>,
    /// `Idempotency-Key`s of recent publishes.
    idempotency: Mutex<IdempotencyKeys>,
    /// The full-text index, once its task runs (`search::start`).
    search: std::sync::OnceLock<Arc<crate::search::SearchIndex>>,
}

impl Service {
    /// Wraps an opened node directory.
    pub fn new(node: Node) -> Service {
        crate::doctype::compile_schemas();
        let (events, _) = broadcast::channel(EVENTS_CAPACITY);
        let announced = Mutex::new(node.store.last_arrival());
        let version = node.keyring.charter().map_or(0, |c| c.latest().charter.version);
        let identity = load_identity(&node);
        let witness = identity.as_ref().and_then(|key| make_witness(key, node.certificate.clone()?));
        Service {
            witness: RwLock::new(witness),
            identity,
            certificate_path: node.certificate_path(),
            certificate_changes: watch::channel(0).0,
            charter_dir: node.config.charter.as_ref().map(|c| node.dir.join(&c.dir)),
            certificate: RwLock::new(node.certificate),
            charter_version: watch::channel(version).0,
            charter_lock: Mutex::new(()),
            feed_resets: Mutex::new(Vec::new()),
            dir: node.dir.clone(),
            network_name: node.config.network.clone(),
            network_id: node.network_id,
            keyring: RwLock::new(Arc::new(node.keyring)),
            publisher: node.publisher,
            store: node.store,
            counters: Counters::default(),
            peers: RwLock::new(PeerView::default()),
            replication: RwLock::new(Replication::Off),
            events,
            announced,
            idempotency: Mutex::new(IdempotencyKeys::default()),
            search: std::sync::OnceLock::new(),
        }
    }

    /// The full-text index, when this process keeps one (`entrepot run`, `serve`, `demo`).
    pub fn search(&self) -> Option<Arc<crate::search::SearchIndex>> {
        self.search.get().cloned()
    }

    /// Gives the service its full-text index (once; a second one is ignored).
    pub fn set_search(&self, index: Arc<crate::search::SearchIndex>) {
        let _ = self.search.set(index);
    }

    /// This node's certificate, if it has one (charter networks).
    pub fn certificate(&self) -> Option<crate::charter::NodeCert> {
        self.certificate.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Where `[charter] certificate` says this node's certificate is, if it says.
    pub fn certificate_path(&self) -> Option<&std::path::Path> {
        self.certificate_path.as_deref()
    }

    /// Watches certificate replacements (the value counts them).
    pub fn watch_certificate(&self) -> watch::Receiver<u64> {
        self.certificate_changes.subscribe()
    }

    /// Reads the certificate file again (`[charter] certificate`) and puts it in force when the
    /// charter in force accepts it for `peer_id`, this node's libp2p id: from then on it is what
    /// the node shows peers and cosigns with. A file that is missing or not valid changes
    /// nothing (the error says why).
    pub fn reload_certificate(&self, peer_id: &str) -> Result<crate::charter::NodeCert, ReloadError> {
        let Some(path) = &self.certificate_path else { return Err(ReloadError::NotConfigured) };
        let cert = crate::config::read_certificate(path).map_err(|e| ReloadError::Unreadable(e.to_string()))?;
        let cert = self.check_certificate(&cert.bytes, peer_id).map_err(ReloadError::Invalid)?;
        let witness = self.identity.as_ref().and_then(|key| make_witness(key, cert.clone()));
        *self.witness.write().unwrap_or_else(|p| p.into_inner()) = witness;
        *self.certificate.write().unwrap_or_else(|p| p.into_inner()) = Some(cert.clone());
        self.certificate_changes.send_modify(|n| *n += 1);
        Ok(cert)
    }

    /// The witness this node is now, if it is one.
    fn witness(&self) -> Option<Arc<Witness>> {
        self.witness.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key name this node cosigns under, if it is a witness.
    pub fn witness_name(&self) -> Option<String> {
        self.witness().map(|w| w.name.clone())
    }

    /// The trust anchor in force now.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts a new trust anchor in force (a newly applied charter version).
    pub fn set_keyring(&self, keyring: Keyring) {
        *self.keyring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keyring);
    }

    /// Whether this process replicates, and if it stopped, why.
    pub fn replication(&self) -> Replication {
        self.replication.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Set by the running node ([`crate::node::start`] and its supervisor).
    pub fn set_replication(&self, state: Replication) {
        *self.replication.write().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// New stored documents from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<StoredEvent> {
        self.events.subscribe()
    }

    /// Publishes a body as this node's organization; fails on a read replica.
    pub fn publish(&self, doc_type: &str, body: &[u8]) -> Result<Published, ServiceError> {
        let publisher = self.publisher.as_ref().ok_or(ServiceError::ReadReplica)?;
        let result = publisher.publish(&self.store, &self.keyring(), &self.network_id, doc_type, body, now_ms());
        self.published(result)
    }

    /// Publishes as [`Service::publish`] does, under a client's `Idempotency-Key`: a retry with
    /// the same key and request returns the first attempt's document; the key with another
    /// request is refused ([`ServiceError::IdempotencyKeyReused`]). Keys are checked with
    /// [`check_idempotency_key`] by the caller.
    pub fn publish_with_key(&self, key: &str, doc_type: &str, body: &[u8]) -> Result<Published, ServiceError> {
        let digest = request_digest(doc_type, body);
        let mut keys = self.idempotency.lock().unwrap_or_else(|p| p.into_inner());
        match keys.lookup(key, &digest) {
            KeyLookup::Done(published) => return Ok(Published { existing: true, ..published }),
            KeyLookup::Reused => return Err(ServiceError::IdempotencyKeyReused(key.to_owned())),
            KeyLookup::New => {}
        }
        // Held across the publish, so a retry racing the first attempt waits for its answer.
        let published = self.publish(doc_type, body)?;
        keys.remember(key, digest, &published);
        Ok(published)
    }

    /// Publishes an enforcement notice with a sealed payload (see
    /// [`Publisher::publish_notice`]): `body` has no `payload`, and the sealed payload is
    /// stored beside the document. Fails on a read replica.
    pub fn publish_notice(&self, body: &[u8], payload: &serde_json::Value) -> Result<Published, ServiceError> {
        let publisher = self.publisher.as_ref().ok_or(ServiceError::ReadReplica)?;
        let result = publisher.publish_notice(&self.store, &self.keyring(), &self.network_id, body, payload, now_ms());
        self.published(result)
    }

    /// Counts a publish and announces what it stored.
    fn published(&self, result: Result<Published, PublishError>) -> Result<Published, ServiceError> {
        match &result {
            Ok(published) => {
                if !published.existing {
                    self.counters.stored.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = self.cosign_own_feed((now_ms() / 1000).max(0) as u64) {
                        tracing::warn!(error = %e, "published, but could not cosign the feed's checkpoint");
                    }
                }
                let stored: &[StoredEntry] = published.stored.as_slice();
                self.announce(stored, published.envelope.as_ref())?;
            }
            Err(e) => {
                if let PublishError::Refused(e) = e {
                    self.count_ingest_error(e);
                }
                self.announce(&[], None)?;
            }
        }
        Ok(result?)
    }

    /// A held document, decoded.
    pub fn document(&self, id: &DocumentId) -> Result<Option<SignedDocument>, StoreError> {
        match self.store.get(id)? {
            Some(bytes) => Ok(Some(decode_owned(bytes).map_err(|_| StoreError::Corrupt {
                path: self.store.path().to_owned(),
                what: "stored document (does not decode)",
            })?)),
            None => Ok(None),
        }
    }

    /// Whether organization `reader` may read the payload of `doc`, under the trust anchor in
    /// force now (see [`notice::may_read`]).
    pub fn may_read(&self, reader: &OrgId, doc: &SignedDocument) -> bool {
        notice::may_read(&self.keyring(), reader, doc)
    }

    /// Checks a sealed payload received for the held notice `id` against its commitment and
    /// stores it; nothing is stored when it does not match.
    pub fn accept_payload(&self, id: &DocumentId, payload: &[u8]) -> Result<(), ServiceError> {
        let doc = self.document(id)?.ok_or(ServiceError::NotHeld(*id))?;
        notice::check_payload(&doc, payload)?;
        Ok(self.store.put_payload(id, payload)?)
    }

    /// Ingests envelopes through the full pipeline, counting outcomes and raising events.
    pub fn ingest(
        &self,
        envelopes: Vec<Vec<u8>>,
        _source: Source,
    ) -> Result<Vec<Result<IngestOutcome, IngestError>>, StoreError> {
        let keyring = self.keyring();
        let ingestor = Ingestor { store: &self.store, network_id: self.network_id, keyring: &keyring, sync: true };
        let report = ingestor.ingest_report(envelopes)?;
        self.count(&report.results);
        self.announce(&report.stored, None)?;
        Ok(report.results)
    }

    /// Ingests a stream of tagged batches with verification and commits overlapped (see
    /// [`Ingestor::ingest_pipelined`]), counting outcomes and raising events after each batch.
    pub fn ingest_stream<T, I, F>(&self, batches: I, mut on_batch: F) -> Result<(), StoreError>
    where
        T: Clone + Send,
        I: Iterator<Item = (T, Vec<Vec<u8>>)> + Send,
        F: FnMut(T, BatchReport),
    {
        let keyring = self.keyring();
        let ingestor = Ingestor { store: &self.store, network_id: self.network_id, keyring: &keyring, sync: true };
        let mut announce_error = None;
        // The keyring is read again for every batch: a charter version applied while the
        // stream runs takes effect from the next batch.
        let keyring_now = || Some(self.keyring());
        ingestor.ingest_pipelined(&keyring_now, batches, |tag, report| {
            self.count(&report.results);
            if let Err(e) = self.announce(&report.stored, None) {
                announce_error.get_or_insert(e);
            }
            on_batch(tag, report);
        })?;
        announce_error.map_or(Ok(()), Err)
    }

    fn count(&self, results: &[Result<IngestOutcome, IngestError>]) {
        for r in results {
            match r {
                Ok(IngestOutcome::Stored) => self.counters.stored.fetch_add(1, Ordering::Relaxed),
                Ok(IngestOutcome::Duplicate) => self.counters.duplicates.fetch_add(1, Ordering::Relaxed),
                Ok(IngestOutcome::Forked { .. }) => self.counters.forks.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    self.count_ingest_error(e);
                    0
                }
            };
        }
    }

    /// Counts a document not stored: deferred when it may be accepted once other documents
    /// arrive, refused otherwise.
    fn count_ingest_error(&self, e: &IngestError) {
        let counts = if e.is_transient() { &self.counters.deferred } else { &self.counters.refused };
        *counts.lock().unwrap_or_else(|p| p.into_inner()).entry(e.code()).or_default() += 1;
    }

    /// Counts one refusal (a document, a peer, a charter) by its stable reason.
    pub fn count_refused(&self, code: &'static str) {
        *self.counters.refused.lock().unwrap_or_else(|p| p.into_inner()).entry(code).or_default() += 1;
    }

    /// Raises an event for every document stored since the last announcement, in arrival
    /// order: from what a commit reported (`stored`, with the envelope of a document this
    /// node published), and from the store for anything stored before those by another path.
    fn announce(&self, stored: &[StoredEntry], envelope: Option<&Arc<[u8]>>) -> Result<(), StoreError> {
        let mut announced = self.announced.lock().unwrap_or_else(|p| p.into_inner());
        let before = stored.first().map_or_else(|| self.store.last_arrival(), |e| e.arrival - 1);
        self.announce_from_store(&mut announced, before)?;
        for entry in stored {
            if entry.arrival <= *announced {
                continue; // announced from the store by a later commit's caller
            }
            *announced = entry.arrival;
            // No subscriber is not an error: events are a convenience, the store is the truth.
            let _ = self.events.send(StoredEvent::of(entry, envelope.cloned()));
        }
        Ok(())
    }

    /// Announces from the store what was stored up to arrival `upto` and not yet announced.
    fn announce_from_store(&self, announced: &mut u64, upto: u64) -> Result<(), StoreError> {
        while *announced < upto {
            let limit = (upto - *announced).min(1024) as usize;
            let batch = self.store.arrivals_after(*announced, limit)?;
            if batch.is_empty() {
                return Ok(());
            }
            for (arrival, id) in batch {
                *announced = arrival;
                let header = match self.store.header(&id) {
                    Ok(Some(header)) => header,
                    Ok(None) | Err(StoreError::Corrupt { .. }) => continue,
                    Err(e) => return Err(e),
                };
                let entry = StoredEntry {
                    arrival,
                    id,
                    publisher: header.publisher,
                    seq: header.seq,
                    doc_type: header.doc_type,
                };
                let _ = self.events.send(StoredEvent::of(&entry, None));
            }
        }
        Ok(())
    }
}

/// Why a service call failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("this node is a read replica: it has no signing key and cannot publish")]
    ReadReplica,
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("this node holds no document {0}")]
    NotHeld(DocumentId),
    #[error("Idempotency-Key '{0}' was used for another request; use a new key for a new document")]
    IdempotencyKeyReused(String),
    #[error(transparent)]
    Notice(#[from] NoticeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`Service::reload_certificate`] changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("no [charter] certificate is configured in config.toml")]
    NotConfigured,
    #[error("{0}")]
    Unreadable(String),
    #[error("the new certificate is not valid for this node: {0} ({code})", code = .0.code())]
    Invalid(crate::charter::CertError),
}

/// The node's identity key (on a charter network: the key it cosigns checkpoints with).
fn load_identity(node: &Node) -> Option<ed25519_dalek::SigningKey> {
    node.config.charter.as_ref()?;
    let path = node.dir.join(&node.config.p2p.identity);
    let text = std::fs::read_to_string(&path).ok()?;
    let raw: [u8; 32] = hex::decode(text.trim()).ok()?.try_into().ok()?;
    Some(ed25519_dalek::SigningKey::from_bytes(&raw))
}

/// The node as a witness: on a charter network with a certificate for this node's identity.
fn make_witness(key: &ed25519_dalek::SigningKey, cert: crate::charter::NodeCert) -> Option<Arc<Witness>> {
    let witness = Witness::new(key.clone(), cert);
    if witness.is_none() {
        tracing::warn!("the node certificate is not for this node's identity key: this node cosigns nothing");
    }
    witness.map(Arc::new)
}
