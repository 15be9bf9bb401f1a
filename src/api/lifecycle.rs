//! What ended or changed a document: the supersede, correct and withdraw acts (and the later
//! documents that supersede or correct it by reference) that this node holds, for the document
//! view's banner and the lists' badges.
//!
//! Why from the reference index: every act names its target in a signed header reference
//! (`supersedes`, `corrects`, `withdraws`), so one prefix scan of the target's referrers finds
//! them all without reading any body; bodies are read only for the document view.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::documents::{held_summary, load};
use super::views::{DocumentSummary, Link};
use super::ApiError;
use crate::document::{DocumentId, RefKind};
use crate::service::Service;
use crate::store::{Store, StoreError};

/// Most lifecycle events listed for one document.
pub const LIFECYCLE_EVENTS_MAX: usize = 32;

/// A document's lifecycle state in a list: the most final held act that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleState {
    /// A `lifecycle.correct` act, or a later document with a `corrects` reference, names it.
    Corrected,
    /// A `lifecycle.supersede` act, or a later document with a `supersedes` reference, names it.
    Superseded,
    /// A `lifecycle.withdraw` act names it.
    Withdrawn,
}

impl LifecycleState {
    fn of(kind: RefKind) -> Option<LifecycleState> {
        match kind {
            RefKind::Corrects => Some(LifecycleState::Corrected),
            RefKind::Supersedes => Some(LifecycleState::Superseded),
            RefKind::Withdraws => Some(LifecycleState::Withdrawn),
            RefKind::Cites => None,
        }
    }
}

/// The most final lifecycle state held acts give `id` (withdrawn, then superseded, then
/// corrected), or `None`.
pub fn state(store: &Store, id: &DocumentId) -> Result<Option<LifecycleState>, StoreError> {
    Ok(store.referrers(id)?.into_iter().filter_map(|(kind, _)| LifecycleState::of(kind)).max())
}

/// One act (or later document) that supersedes, corrects or withdraws a document.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleEvent {
    pub state: LifecycleState,
    /// The day it takes effect (YYYY-MM-DD): the act's validity start, else its issue day.
    pub on: String,
    /// Whether that day is today or past.
    pub in_effect: bool,
    /// The document that made it: a `lifecycle.*` act, or a later document that references this
    /// one with `supersedes` or `corrects`.
    pub by: DocumentSummary,
    /// What replaces the document: a supersede act's `replacement`, or the superseding document
    /// itself. Absent for corrections and withdrawals.
    pub replacement: Option<Link>,
    /// The act's stated reason by language (`{"en": "…", "fr": "…"}`), when it gives one.
    #[schema(value_type = Option<Object>)]
    pub reason: Option<Value>,
}

/// The lifecycle events of `id`, oldest first, at most [`LIFECYCLE_EVENTS_MAX`].
pub fn events(service: &Service, id: &DocumentId) -> Result<Vec<LifecycleEvent>, ApiError> {
    let today = chrono::Utc::now().date_naive();
    let mut out = Vec::new();
    for (kind, source) in service.store.referrers(id)? {
        let Some(state) = LifecycleState::of(kind) else { continue };
        let Some(by) = load(service, &source)? else { continue };
        let body: Value = serde_json::from_slice(by.body()).unwrap_or(Value::Null);
        let is_act = by.header.doc_type.as_str().starts_with("lifecycle.");
        let day = by.header.validity.from.unwrap_or_else(|| {
            chrono::DateTime::from_timestamp_millis(by.header.issued_at_ms).unwrap_or_default().date_naive()
        });
        let replacement = match (state, is_act) {
            (LifecycleState::Superseded, true) => {
                match body.get("replacement").and_then(Value::as_str).and_then(|h| DocumentId::from_hex(h).ok()) {
                    Some(next) => Some(replacement_link(service, &next)?),
                    None => None,
                }
            }
            (LifecycleState::Superseded, false) => Some(replacement_link(service, &by.id)?),
            _ => None,
        };
        let reason = if is_act { body.get("reason").filter(|r| r.is_object()).cloned() } else { None };
        out.push(LifecycleEvent {
            state,
            on: day.to_string(),
            in_effect: day <= today,
            by: held_summary(service, &by)?,
            replacement,
            reason,
        });
        if out.len() >= LIFECYCLE_EVENTS_MAX {
            break;
        }
    }
    out.sort_by(|a, b| (&a.on, a.state).cmp(&(&b.on, b.state)));
    Ok(out)
}

fn replacement_link(service: &Service, id: &DocumentId) -> Result<Link, ApiError> {
    let doc = load(service, id)?;
    Ok(Link {
        kind: "supersedes".into(),
        id: id.to_hex(),
        held: doc.is_some(),
        document: doc.as_ref().map(|d| held_summary(service, d)).transpose()?,
    })
}
