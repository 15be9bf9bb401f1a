//! Who may publish what: the keyring of trusted organization keys.
//!
//! The keyring is the node's local trust anchor: each organization's ed25519 public keys and
//! the document types it may publish. Every document is checked against it at publish, import
//! and sync. A node of a charter network builds its keyring from the verified charter chain
//! ([`Keyring::from_charter`]); checks then follow the charter's rules (feed-position key
//! validity, revocation, expiry) and the listed organizations mirror the latest charter.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::charter::VerifiedChain;
use crate::document::{Header, OrgId, Seq, TypeName};

/// Why a validly signed document is not accepted from its publisher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorityError {
    #[error("publisher {0} is not an organization in the keyring")]
    UnknownPublisher(OrgId),
    #[error("key {key} is not one of {publisher}'s keys in the keyring")]
    KeyNotAuthorized { publisher: OrgId, key: String },
    #[error("{publisher} may not publish {doc_type} documents")]
    TypeNotPermitted { publisher: OrgId, doc_type: TypeName },
    #[error("key {key} of {publisher} is valid from position {valid_from}, not at {seq}")]
    KeyNotValidAtPosition { publisher: OrgId, key: String, seq: Seq, valid_from: Seq },
    #[error("key {key} of {publisher} is revoked from position {revoked_at}; position {seq} is past it")]
    KeyRevoked { publisher: OrgId, key: String, seq: Seq, revoked_at: Seq },
    #[error("{publisher} may not publish documents on HS code {code} (outside its permitted chapters)")]
    ChapterNotPermitted { publisher: OrgId, code: String },
    #[error("charter version {version} expired at {expires}; no trust is extended until a new version is installed")]
    CharterExpired { version: u32, expires: String },
}

impl AuthorityError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            AuthorityError::UnknownPublisher(_) => "unknown_publisher",
            AuthorityError::KeyNotAuthorized { .. } => "key_not_authorized",
            AuthorityError::TypeNotPermitted { .. } => "type_not_permitted",
            AuthorityError::KeyNotValidAtPosition { .. } => "key_not_valid_at_position",
            AuthorityError::KeyRevoked { .. } => "key_revoked",
            AuthorityError::ChapterNotPermitted { .. } => "chapter_not_permitted",
            AuthorityError::CharterExpired { .. } => "charter_expired",
        }
    }
}

/// Why a keyring file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read keyring {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("keyring {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
    #[error("cannot write keyring {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// One organization's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    /// Hex-encoded ed25519 public keys.
    pub keys: Vec<String>,
    /// Types it may publish; `None` means every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub types: Option<Vec<TypeName>>,
}

/// The set of trusted organizations, keyed by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyring {
    orgs: BTreeMap<OrgId, (Organization, Vec<[u8; 32]>)>,
    /// When set, the charter decides every check; `orgs` only mirrors it for listings and
    /// bundles. Shared, since every ingest thread holds the keyring.
    charter: Option<Arc<VerifiedChain>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    organizations: Vec<Organization>,
}

/// Most organizations a keyring may list.
pub const KEYRING_ORGS_MAX: usize = 4096;
/// Most keys one organization may hold.
pub const KEYS_PER_ORG_MAX: usize = 16;

impl Keyring {
    /// Parses a keyring from its JSON text.
    pub fn from_json(text: &str) -> Result<Keyring, String> {
        let file: KeyringFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.organizations.len() > KEYRING_ORGS_MAX {
            return Err(format!("more than {KEYRING_ORGS_MAX} organizations"));
        }
        let mut ring = Keyring::default();
        for org in file.organizations {
            ring.insert(org)?;
        }
        Ok(ring)
    }

    /// Adds or replaces an organization.
    pub fn insert(&mut self, org: Organization) -> Result<(), String> {
        if self.charter.is_some() {
            return Err("this node's trust comes from its charter: publish a new charter version instead".into());
        }
        if org.keys.is_empty() || org.keys.len() > KEYS_PER_ORG_MAX {
            return Err(format!("{} must have 1 to {KEYS_PER_ORG_MAX} keys", org.id));
        }
        let mut keys = Vec::with_capacity(org.keys.len());
        for k in &org.keys {
            let mut raw = [0u8; 32];
            hex::decode_to_slice(k, &mut raw).map_err(|_| format!("{}: key '{k}' is not 64 hex digits", org.id))?;
            match crate::document::public_key(&raw) {
                Ok(_) => {}
                Err(crate::document::VerifyError::WeakKey) => {
                    return Err(format!("{}: key '{k}' is a weak key", org.id))
                }
                Err(_) => return Err(format!("{}: key '{k}' is not an ed25519 public key", org.id)),
            }
            keys.push(raw);
        }
        self.orgs.insert(org.id.clone(), (org, keys));
        Ok(())
    }

    /// Reads a keyring file.
    pub fn load(path: &Path) -> Result<Keyring, KeyringError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyringError::Read { path: p.clone(), source })?;
        Keyring::from_json(&text).map_err(|reason| KeyringError::Invalid { path: p, reason })
    }

    /// The keyring as pretty JSON.
    pub fn to_json(&self) -> String {
        let file = KeyringFile { organizations: self.organizations().cloned().collect() };
        serde_json::to_string_pretty(&file).expect("keyring serializes")
    }

    /// Writes the keyring file.
    pub fn save(&self, path: &Path) -> Result<(), KeyringError> {
        std::fs::write(path, self.to_json() + "\n")
            .map_err(|source| KeyringError::Write { path: path.display().to_string(), source })
    }

    /// Every organization, by id.
    pub fn organizations(&self) -> impl Iterator<Item = &Organization> {
        self.orgs.values().map(|(o, _)| o)
    }

    /// One organization, by id.
    pub fn organization(&self, id: &OrgId) -> Option<&Organization> {
        self.orgs.get(id).map(|(o, _)| o)
    }

    /// A keyring that enforces a verified charter chain.
    pub fn from_charter(chain: VerifiedChain) -> Keyring {
        let mut orgs = BTreeMap::new();
        for m in &chain.latest().charter.organizations {
            let keys: Vec<[u8; 32]> = m.keys.iter().map(|k| k.key.0).collect();
            let org = Organization {
                id: m.id.clone(),
                name: m.name.clone(),
                keys: keys.iter().map(hex::encode).collect(),
                types: Some(m.permissions.iter().map(|p| p.doc_type.clone()).collect()),
            };
            orgs.insert(m.id.clone(), (org, keys));
        }
        Keyring { orgs, charter: Some(Arc::new(chain)) }
    }

    /// The charter chain this keyring enforces, if any.
    pub fn charter(&self) -> Option<&VerifiedChain> {
        self.charter.as_deref()
    }

    /// The keys that may sign `org`'s checkpoint of `size` entries: under a charter, its keys
    /// valid at feed position `size` (the tree's last entry, docs/PROTOCOL.md §13.3);
    /// otherwise all its keys. Empty for an unknown organization or an empty tree.
    pub fn checkpoint_keys(&self, org: &OrgId, size: u64) -> Vec<[u8; 32]> {
        if size == 0 {
            return Vec::new();
        }
        match &self.charter {
            Some(chain) => chain.latest().charter.member(org).map_or_else(Vec::new, |m| {
                m.keys
                    .iter()
                    .filter(|k| k.valid_from_seq.0 <= size && k.revoked_at_seq.is_none_or(|r| size < r.0))
                    .map(|k| k.key.0)
                    .collect()
            }),
            None => self.orgs.get(org).map_or_else(Vec::new, |(_, keys)| keys.clone()),
        }
    }

    /// Checks that the header's publisher is known, signed with one of its keys, and may
    /// publish this type. Under a charter, the charter's rules apply at `now_ms` (milliseconds
    /// since the Unix epoch; only expiry depends on it).
    pub fn check(&self, header: &Header, now_ms: i64) -> Result<(), AuthorityError> {
        if let Some(chain) = &self.charter {
            return chain.check(header, now_ms);
        }
        let (org, keys) = self
            .orgs
            .get(&header.publisher)
            .ok_or_else(|| AuthorityError::UnknownPublisher(header.publisher.clone()))?;
        if !keys.contains(&header.key) {
            return Err(AuthorityError::KeyNotAuthorized {
                publisher: header.publisher.clone(),
                key: hex::encode(header.key),
            });
        }
        if org.types.as_ref().is_some_and(|types| !types.contains(&header.doc_type)) {
            return Err(AuthorityError::TypeNotPermitted {
                publisher: header.publisher.clone(),
                doc_type: header.doc_type.clone(),
            });
        }
        Ok(())
    }
}
