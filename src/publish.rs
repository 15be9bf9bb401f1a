//! Publishing: turn a body into the next signed entry of this organization's feed.

use std::sync::Mutex;

use ed25519_dalek::SigningKey;

use crate::authority::Keyring;
use crate::doctype::{project, DocType, TypeError};
use crate::document::{encode_and_sign, DocumentId, Header, OrgId, Seq, TypeName, FORMAT_VERSION};
use crate::ingest::{IngestError, Ingestor};
use crate::store::{IngestOutcome, Store, StoreError};

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
}

/// A node's publishing identity: its organization and signing key.
pub struct Publisher {
    pub org: OrgId,
    key: SigningKey,
    /// Held from reading the head to committing, so two publishes never take one position.
    feed_lock: Mutex<()>,
}

/// A stored publish: its id and position.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Published {
    pub id: DocumentId,
    pub seq: Seq,
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
        let ty = DocType::by_name(doc_type)?;
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| TypeError::BodyNotJson(e.to_string()))?;
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
        let ingestor = Ingestor { store, network_id: *network_id, keyring, sync: true };
        match ingestor.ingest(vec![doc.bytes])?.pop().expect("one result per document") {
            Ok(IngestOutcome::Stored) => Ok(Published { id, seq }),
            Ok(_) => Err(PublishError::Raced(self.org.clone())),
            Err(e) => Err(e.into()),
        }
    }
}

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
