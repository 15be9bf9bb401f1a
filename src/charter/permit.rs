//! Publishing authority from the charter: is this header's publisher a member, was its key
//! valid at this feed position, may it publish this type (and these HS chapters)?

use super::{ExpiryStatus, VerifiedChain};
use crate::authority::AuthorityError;
use crate::document::Header;

impl VerifiedChain {
    /// Checks `header` against the latest charter at `now_ms`. Key validity is judged by feed
    /// position, not time: a document at a position before a key's revocation point stays
    /// valid after the revocation is published.
    pub fn check(&self, header: &Header, now_ms: i64) -> Result<(), AuthorityError> {
        let charter = &self.latest().charter;
        if self.expiry_status(now_ms) == ExpiryStatus::Expired {
            return Err(AuthorityError::CharterExpired { version: charter.version, expires: charter.expires.clone() });
        }
        let publisher = header.publisher.clone();
        let member =
            charter.member(&header.publisher).ok_or_else(|| AuthorityError::UnknownPublisher(publisher.clone()))?;
        let key = hex::encode(header.key);
        let grant = member
            .keys
            .iter()
            .find(|k| k.key.0 == header.key)
            .ok_or_else(|| AuthorityError::KeyNotAuthorized { publisher: publisher.clone(), key: key.clone() })?;
        if header.seq < grant.valid_from_seq {
            return Err(AuthorityError::KeyNotValidAtPosition {
                publisher,
                key,
                seq: header.seq,
                valid_from: grant.valid_from_seq,
            });
        }
        if let Some(revoked_at) = grant.revoked_at_seq.filter(|r| header.seq >= *r) {
            return Err(AuthorityError::KeyRevoked { publisher, key, seq: header.seq, revoked_at });
        }
        let permission = member.permissions.iter().find(|p| p.doc_type == header.doc_type).ok_or_else(|| {
            AuthorityError::TypeNotPermitted { publisher: publisher.clone(), doc_type: header.doc_type.clone() }
        })?;
        if let Some(chapters) = &permission.hs_chapters {
            for s in &header.subjects {
                let code = s.code.as_str();
                if !chapters.iter().any(|c| code.starts_with(c.as_str())) {
                    return Err(AuthorityError::ChapterNotPermitted { publisher, code: code.to_owned() });
                }
            }
        }
        Ok(())
    }
}
