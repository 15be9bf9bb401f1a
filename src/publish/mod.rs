//! Publishing: turn a body into the next signed entry of this organization's feed.
//!
//! Before it signs, publishing refuses what a careful secretariat never would (see
//! `doctype::check_integrity`: codes absent from their edition's held nomenclature, editions
//! and dates that are not real), returns the existing document for a body already published
//! (idempotent), and refuses a second live document with a type's natural key unless it
//! supersedes or corrects the first. None of this applies to documents received from peers.

mod held;

pub use held::{chapter_codes, chapter_entries, held_for, walk_query, LOOKUP_PAGES_MAX};

use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;

use crate::authority::Keyring;
use crate::doctype::{check_integrity, natural_key, project, DocType, Finding, TypeError};
use crate::document::{encode_and_sign, DocumentId, Header, OrgId, RefKind, Seq, TypeName, FORMAT_VERSION};
use crate::ingest::{IngestError, Ingestor};
use crate::notice::{seal_body, NoticeError, SealRef, NOTICE_TYPE};
use crate::store::{IngestOutcome, Store, StoreError, StoredEntry};
use crate::tlog::checkpoint::{origin, Checkpoint};
use crate::tlog::note::Note;

/// Why a publish failed. Nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the body is not valid: {0}")]
    Body(#[from] TypeError),
    #[error("the document was refused: {0}")]
    Refused(#[from] IngestError),
    #[error("the document could not be built: {0}")]
    Build(#[from] crate::document::FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the feed of {0} already holds this position; another publisher is using this key")]
    Raced(OrgId),
    #[error(transparent)]
    Notice(#[from] NoticeError),
    #[error("{}", findings_text(.0))]
    Integrity(Vec<Finding>),
    #[error("{key} is already published as {existing}: a second one must supersede or correct it (references kind 'supersedes' or 'corrects' with its id)")]
    NaturalKeyTaken { key: String, existing: DocumentId },
}

fn findings_text(findings: &[Finding]) -> String {
    findings.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl PublishError {
    /// The stable reason of a refusal made before signing, if it is one.
    pub fn integrity_code(&self) -> Option<&'static str> {
        match self {
            PublishError::Integrity(f) => Some(f.first().map_or("integrity", Finding::code)),
            PublishError::NaturalKeyTaken { .. } => Some("natural_key_taken"),
            _ => None,
        }
    }
}

/// A node's publishing identity: its organization and signing key.
pub struct Publisher {
    pub org: OrgId,
    key: SigningKey,
    /// Held from reading the head to committing, so two publishes never take one position.
    feed_lock: Mutex<()>,
}

/// A stored publish: its id and position.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub id: DocumentId,
    pub seq: Seq,
    /// The commitment to the sealed payload stored beside it (a sealed notice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_payload: Option<SealRef>,
    /// Whether this is a document published before with the same body (nothing was signed).
    pub existing: bool,
    /// What the commit stored, and the envelope (`None` for an existing document): the node's
    /// event and its gossip are made from these, not read back.
    #[serde(skip)]
    pub stored: Option<StoredEntry>,
    #[serde(skip)]
    pub envelope: Option<Arc<[u8]>>,
}

impl Publisher {
    pub fn new(org: OrgId, key: SigningKey) -> Publisher {
        Publisher { org, key, feed_lock: Mutex::new(()) }
    }

    /// The public key documents are signed with.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Validates `body` as a `doc_type`, signs it as the next feed entry, and stores it
    /// durably (fsync) through the same pipeline as any received document.
    pub fn publish(
        &self,
        store: &Store,
        keyring: &Keyring,
        network_id: &[u8; 32],
        doc_type: &str,
        body: &[u8],
        issued_at_ms: i64,
    ) -> Result<Published, PublishError> {
        self.publish_with_payload(store, keyring, network_id, doc_type, body, None, issued_at_ms)
    }

    /// Publishes an enforcement notice whose payload only its audience receives: seals
    /// `payload` (a fresh nonce), adds the commitment to `body` as `sealed_payload`, and stores
    /// the sealed payload before the document, so this node never holds its own notice without
    /// its payload. `body` is a notice body without `payload`, whose handling is not public.
    pub fn publish_notice(
        &self,
        store: &Store,
        keyring: &Keyring,
        network_id: &[u8; 32],
        body: &[u8],
        payload: &serde_json::Value,
        issued_at_ms: i64,
    ) -> Result<Published, PublishError> {
        let sealed = seal_body(body, payload)?;
        let published = self.publish_with_payload(
            store,
            keyring,
            network_id,
            NOTICE_TYPE,
            &sealed.body,
            Some(&sealed.payload),
            issued_at_ms,
        )?;
        Ok(Published { sealed_payload: Some(sealed.seal), ..published })
    }

    /// Signs a checkpoint of this organization's feed at its head and stores it (docs/PROTOCOL.md
    /// §13.3), unless the feed is empty, frozen, or has one at that size already. Returns the
    /// size of the feed's checkpoint at its head.
    pub fn sign_checkpoint(&self, store: &Store, network_id: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        let _feed = self.feed_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.sign_checkpoint_locked(store, network_id)
    }

    /// [`Publisher::sign_checkpoint`], the feed lock held by the caller.
    fn sign_checkpoint_locked(&self, store: &Store, network_id: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        let Some(head) = store.head(&self.org)? else { return Ok(None) };
        let size = head.seq.0;
        if size == 0 || head.forked_at.is_some() {
            return Ok(None);
        }
        if store.tree_checkpoint(&self.org, size)?.is_some() {
            return Ok(Some(size));
        }
        let cp = Checkpoint { origin: origin(network_id, &self.org), size, root: store.tree_root(&self.org, size)? };
        let note = Note { text: cp.text(), signatures: vec![cp.sign(&self.key)] }.encode();
        Ok(store.put_checkpoint(&self.org, size, note.as_bytes())?.then_some(size))
    }

    /// Publishes, storing `payload` (already sealed, committed to in `body`) under the new id
    /// before the document is committed, and removing it again if the commit fails.
    #[allow(clippy::too_many_arguments)]
    fn publish_with_payload(
        &self,
        store: &Store,
        keyring: &Keyring,
        network_id: &[u8; 32],
        doc_type: &str,
        body: &[u8],
        payload: Option<&[u8]>,
        issued_at_ms: i64,
    ) -> Result<Published, PublishError> {
        let ty = DocType::by_name(doc_type)?;
        let value = crate::json::parse_strict(body).map_err(|e| TypeError::BodyNotJson(e.to_string()))?;
        if ty.name == NOTICE_TYPE && payload.is_none() && needs_sealed_payload(&value) {
            return Err(NoticeError::PayloadRequired.into());
        }
        ty.validate(&value)?;
        let projection = project(ty, &value)?;
        let today = chrono::DateTime::from_timestamp_millis(issued_at_ms).unwrap_or_default().date_naive();
        let findings = check_integrity(ty, &value, &projection, today, &held::held_for(store, &value, &projection)?);
        if !findings.is_empty() {
            return Err(PublishError::Integrity(findings));
        }
        // Under the feed lock, so two identical publishes at once sign one document.
        let _feed = self.feed_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((id, seq)) = held::same_body(store, &self.org, ty, &value, &projection)? {
            return Ok(Published { id, seq, sealed_payload: None, existing: true, stored: None, envelope: None });
        }
        if let Some(key) = natural_key(ty, &value) {
            if let Some(existing) = held::natural_key_holder(store, &self.org, ty, &key, &projection)? {
                let acts_on_it = projection
                    .references
                    .iter()
                    .any(|r| r.target == existing && matches!(r.kind, RefKind::Supersedes | RefKind::Corrects));
                if !acts_on_it {
                    return Err(PublishError::NaturalKeyTaken { key, existing });
                }
            }
        }
        let head = store.head(&self.org)?;
        let (seq, prev) = head.map_or((Seq::FIRST, DocumentId::ZERO), |h| (h.seq.next(), h.id));
        let header = Header {
            format_version: FORMAT_VERSION,
            network_id: *network_id,
            doc_type: TypeName::new(ty.name)?,
            schema_version: ty.schema_version,
            publisher: self.org.clone(),
            key: self.public_key(),
            seq,
            prev,
            issued_at_ms,
            validity: projection.validity,
            references: projection.references,
            subjects: projection.subjects,
        };
        let doc = encode_and_sign(&header, body, &self.key)?;
        let id = doc.id;
        if let Some(payload) = payload {
            store.put_payload(&id, payload)?;
        }
        let ingestor = Ingestor { store, network_id: *network_id, keyring, sync: true };
        // A store failure leaves it unknown whether the document was committed, so its payload
        // stays; a refusal or a lost race means it was not, and the payload goes.
        let envelope: Arc<[u8]> = doc.bytes.as_slice().into();
        let mut report = ingestor.ingest_report(vec![doc.bytes])?;
        let result = match report.results.pop().expect("one result per document") {
            Ok(IngestOutcome::Stored) => {
                let stored = report.stored.pop().expect("a stored document is reported");
                // The document is stored whatever happens to its checkpoint; a checkpoint not
                // stored now is signed at the next publish, which covers this entry too.
                if let Err(e) = self.sign_checkpoint_locked(store, network_id) {
                    tracing::warn!(error = %e, "published, but the feed's checkpoint could not be stored");
                }
                return Ok(Published {
                    id,
                    seq,
                    sealed_payload: None,
                    existing: false,
                    stored: Some(stored),
                    envelope: Some(envelope),
                });
            }
            Ok(_) => PublishError::Raced(self.org.clone()),
            Err(e) => e.into(),
        };
        if payload.is_some() {
            // Best effort: a payload left behind is keyed by an id no document has.
            if let Err(e) = store.forget_payload(&id) {
                tracing::warn!(%id, error = %e, "could not remove the payload of a notice that was not published");
            }
        }
        Err(result)
    }
}

/// Whether a notice body is sealed, or would have to be (its handling is not public): a plain
/// publish of it would leave this node without the payload it commits to, or put a payload
/// meant for an audience in the envelope every member holds.
fn needs_sealed_payload(body: &serde_json::Value) -> bool {
    let handling = body.get("header").and_then(|h| h.get("handling")).and_then(|h| h.as_str());
    body.get("sealed_payload").is_some() || handling.is_some_and(|h| h != "public")
}
