//! `Idempotency-Key`s of recent publishes: a client that retries a publish with the same key
//! gets the document the first attempt made; the same key with another body is refused.
//!
//! Why in memory and bounded: a publish with the same body is idempotent anyway (found in the
//! store), so what the keys add, "this key was for another body", matters for the retries of
//! the minutes after a failure; the most recent [`IDEMPOTENCY_KEYS_MAX`] keys are kept, and a
//! restart forgets them (then only the body decides).

use std::collections::{HashMap, VecDeque};

use sha2::{Digest, Sha256};

use crate::publish::Published;

/// Most keys remembered; the oldest is forgotten first.
pub const IDEMPOTENCY_KEYS_MAX: usize = 10_000;
/// Longest key accepted, in bytes.
pub const IDEMPOTENCY_KEY_MAX_BYTES: usize = 128;

/// What a key was used for.
#[derive(Debug, Clone)]
struct Use {
    request_sha256: [u8; 32],
    published: Published,
}

/// Recent keys, bounded.
#[derive(Debug, Default)]
pub struct IdempotencyKeys {
    by_key: HashMap<String, Use>,
    order: VecDeque<String>,
}

/// What a key says about a publish about to be made.
#[derive(Debug)]
pub enum KeyLookup {
    /// Not seen: publish, then [`IdempotencyKeys::remember`].
    New,
    /// Seen with this request: its document.
    Done(Published),
    /// Seen with another request.
    Reused,
}

/// The digest of a request: its type and body.
pub fn request_digest(doc_type: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(doc_type.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

/// Checks a key's form: 1 to [`IDEMPOTENCY_KEY_MAX_BYTES`] visible ASCII characters.
pub fn check_key(key: &str) -> Result<(), String> {
    let ok = !key.is_empty() && key.len() <= IDEMPOTENCY_KEY_MAX_BYTES && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(format!("Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX_BYTES} visible ASCII characters"))
    }
}

impl IdempotencyKeys {
    pub fn lookup(&self, key: &str, digest: &[u8; 32]) -> KeyLookup {
        match self.by_key.get(key) {
            None => KeyLookup::New,
            Some(u) if u.request_sha256 == *digest => KeyLookup::Done(u.published.clone()),
            Some(_) => KeyLookup::Reused,
        }
    }

    pub fn remember(&mut self, key: &str, digest: [u8; 32], published: &Published) {
        // What a retry is answered with: the id and position, not the envelope.
        let published = Published { stored: None, envelope: None, ..published.clone() };
        if self.by_key.insert(key.to_owned(), Use { request_sha256: digest, published }).is_none() {
            self.order.push_back(key.to_owned());
        }
        while self.order.len() > IDEMPOTENCY_KEYS_MAX {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
        debug_assert_eq!(self.order.len(), self.by_key.len());
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{DocumentId, Seq};

    fn published(n: u64) -> Published {
        Published {
            id: DocumentId([n as u8; 32]),
            seq: Seq(n),
            sealed_payload: None,
            existing: false,
            stored: None,
            envelope: None,
        }
    }

    #[test]
    fn a_key_returns_its_document_refuses_another_body_and_the_oldest_is_forgotten_first() {
        let mut keys = IdempotencyKeys::default();
        let (a, b) = (request_digest("t", b"a"), request_digest("t", b"b"));
        assert!(matches!(keys.lookup("k", &a), KeyLookup::New));
        keys.remember("k", a, &published(1));
        assert!(matches!(keys.lookup("k", &a), KeyLookup::Done(p) if p.seq == Seq(1)));
        assert!(matches!(keys.lookup("k", &b), KeyLookup::Reused));
        for i in 0..IDEMPOTENCY_KEYS_MAX {
            keys.remember(&format!("other-{i}"), b, &published(2));
            assert!(keys.len() <= IDEMPOTENCY_KEYS_MAX);
        }
        assert!(matches!(keys.lookup("k", &a), KeyLookup::New), "the oldest key went first");
        assert!(matches!(keys.lookup("other-1", &b), KeyLookup::Done(p) if p.seq == Seq(2)));
        assert!(check_key("").is_err() && check_key("a b").is_err() && check_key("run-42").is_ok());
    }
}
