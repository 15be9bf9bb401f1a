//! Charter chains for tests: root keys 100, 101 and 102 with threshold 2.

use ed25519_dalek::SigningKey;
use entrepot::charter::{
    verify_chain, Charter, Member, MemberKey, Permission, PublicKey, Role, Root, SignedCharter, VerifiedChain,
};
use entrepot::document::{Seq, TypeName};

use super::{key, org};

pub const OPINION: &str = "classification.opinion";
/// An expiry no test reaches.
pub const FAR: &str = "2099-01-01T00:00:00Z";

pub fn pk(k: &SigningKey) -> PublicKey {
    PublicKey::new(k.verifying_key().to_bytes()).unwrap()
}

/// `k` may sign positions from `from`, until `revoked` if set.
pub fn grant(k: &SigningKey, from: u64, revoked: Option<u64>) -> MemberKey {
    MemberKey { key: pk(k), valid_from_seq: Seq(from), revoked_at_seq: revoked.map(Seq) }
}

/// A member that may publish `types`.
pub fn member(id: &str, keys: Vec<MemberKey>, types: &[&str]) -> Member {
    Member {
        id: org(id),
        name: format!("{id} administration"),
        country: None,
        region: None,
        role: Role::Customs,
        keys,
        permissions: types
            .iter()
            .map(|t| Permission { doc_type: TypeName::new(t).unwrap(), hs_chapters: None, regions: None })
            .collect(),
    }
}

/// Root keys 100, 101, 102 with threshold 2.
pub fn roots() -> Root {
    Root { keys: [100, 101, 102].iter().map(|r| pk(&key(*r))).collect(), threshold: 2 }
}

/// A genesis body (version 1) with these members.
pub fn genesis(expires: &str, organizations: Vec<Member>) -> Charter {
    Charter { version: 1, previous: None, expires: expires.into(), root: roots(), organizations }
}

/// The body of the version after `prev`, as `prev` says: edit it, then sign it.
pub fn next_version(prev: &SignedCharter) -> Charter {
    Charter { version: prev.charter.version + 1, previous: Some(prev.hash()), ..prev.charter.clone() }
}

/// `c` signed by the root keys labelled `roots`.
pub fn sign(c: &Charter, roots: &[u8]) -> SignedCharter {
    let mut s = SignedCharter::unsigned(c.to_body()).unwrap();
    for r in roots {
        s.sign(&key(*r)).unwrap();
    }
    s
}

/// The verified chain of `charters`, pinned to the first.
pub fn chain(charters: &[SignedCharter]) -> VerifiedChain {
    verify_chain(&charters[0].hash(), charters).unwrap()
}
