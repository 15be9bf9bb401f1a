//! Publishing: turn a body into the next signed entry of this organization's feed.

use std::sync::{Arc, Mutex};

use ed25519_dalek::SigningKey;

use crate::authority::Keyring;
use crate::doctype::{project, DocType, TypeError};
use crate::document::{encode_and_sign, DocumentId, Header, OrgId, Seq, TypeName, FORMAT_VERSION};
use crate::ingest::{IngestError, Ingestor};
use crate::notice::{seal_body, NoticeError, SealRef, NOTICE_TYPE};
use crate::store::{IngestOutcome, Store, StoreError, StoredEntry};

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
    /// What the commit stored, and the envelope: the node's event and its gossip are made
    /// from these, not read back.
    #[serde(skip)]
    pub stored: StoredEntry,
    #[serde(skip)]
    pub envelope: Arc<[u8]>,
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
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| TypeError::BodyNotJson(e.to_string()))?;
        if ty.name == NOTICE_TYPE && payload.is_none() && needs_sealed_payload(&value) {
            return Err(NoticeError::PayloadRequired.into());
        }
        ty.validate(&value)?;
        let projection = project(ty, &value)?;
        let _feed = self.feed_lock.lock().unwrap_or_else(|p| p.into_inner());
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
                return Ok(Published { id, seq, sealed_payload: None, stored, envelope });
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
