//! The read path: filtered, paginated queries over the indexes.
//!
//! A query picks the most selective index among its filters, walks it from a cursor, and checks
//! the remaining filters against each document's header. Each page reads at most
//! [`QUERY_SCAN_MAX`] index entries, so no query, however unselective, runs unbounded; a page
//! that stops early still returns a cursor to continue from.
//!
//! Order: newest issue first (issue time, then id) for the type and time walks, and for an HS
//! walk, which is sorted as it is read (the HS index is in code order); newest feed position
//! first for a publisher walk; latest start of validity first for an in-force walk. An HS prefix
//! with more index entries than one page may read falls back to code order ([`Order::Code`]).

use std::collections::HashSet;

use chrono::NaiveDate;

use super::keys;
use super::{Store, StoreError};
use crate::document::{decode_owned, DocumentId, Edition, Header, OrgId, TypeName};

/// Largest page a query may ask for.
pub const QUERY_LIMIT_MAX: usize = 1000;
/// Most index entries one page may read.
pub const QUERY_SCAN_MAX: usize = 50_000;

/// A document query. Every filter set must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub doc_type: Option<TypeName>,
    pub publisher: Option<OrgId>,
    /// An edition and the leading digits of a code (2, 4, 6… digits).
    pub hs: Option<(Edition, String)>,
    /// Documents whose validity contains this day and that no supersede/withdraw act has ended
    /// by then. Documents without a validity period, and lifecycle acts, never match.
    pub in_force_on: Option<NaiveDate>,
    pub issued_since_ms: Option<i64>,
    /// Case-insensitive substring of the title (any language).
    pub text: Option<String>,
    pub limit: usize,
    /// Opaque cursor from a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Walk the chosen index in its own order (an HS query in code order) instead of sorting
    /// by issue time: for lookups that visit every match and need no order.
    pub index_order: bool,
}

/// One page of results.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Page {
    pub ids: Vec<DocumentId>,
    /// Present when more results may follow.
    pub next_cursor: Option<String>,
    /// The order of `ids` (and of the pages that follow).
    pub order: Order,
}

/// The order a query's results come in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Issue time, newest first, then id.
    #[default]
    Issued,
    /// Feed position, newest first (a publisher filter without an HS code).
    Feed,
    /// Start of validity, latest first (an in-force filter alone).
    ValidFrom,
    /// HS code, then id: an HS prefix with more than [`QUERY_SCAN_MAX`] index entries, too
    /// many to sort per page.
    Code,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    Hs = 1,
    Type = 2,
    Feed = 3,
    From = 4,
    Time = 5,
}

/// Cursor tag of an HS walk sorted by issue time; its key is the last result's `time_key`.
const SORTED_TAG: u8 = 6;

/// Why a query is not acceptable.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("limit must be between 1 and {QUERY_LIMIT_MAX}")]
    Limit,
    #[error("the cursor is not one this query returned")]
    Cursor,
    #[error("HS code prefix '{0}' must be 1 to 10 digits")]
    HsPrefix(String),
    #[error(
        "this HS code has more than {QUERY_SCAN_MAX} index entries now, too many to keep the order of this cursor: \
         start again without a cursor (the pages then follow code order), or narrow the code"
    )]
    TooBroad,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a query walks its index.
struct Plan {
    index: Index,
    /// Every key the walk visits starts with it.
    prefix: Vec<u8>,
    newest_first: bool,
    /// For a newest-first walk, where it starts: below this key (default: the prefix's end).
    below: Option<Vec<u8>>,
}

impl Query {
    fn plan(&self) -> Plan {
        let plan = |index, prefix, newest_first| Plan { index, prefix, newest_first, below: None };
        if let Some((edition, prefix)) = &self.hs {
            plan(Index::Hs, keys::hs_prefix(*edition, prefix), false)
        } else if let Some(t) = &self.doc_type {
            plan(Index::Type, keys::type_prefix(t), true)
        } else if let Some(p) = &self.publisher {
            plan(Index::Feed, keys::feed_prefix(p), true)
        } else if let Some(day) = self.in_force_on {
            // From the latest start of validity on or before the day, back: what started most
            // recently is what is most likely still in force, and nothing that starts after
            // the day is ever visited. (Walking forward from the earliest start visits every
            // document that expired before the day first.)
            let after_day = crate::document::date_to_days(day).saturating_add(1);
            Plan { below: Some(keys::from_key(after_day, &DocumentId([0; 32]))), ..plan(Index::From, Vec::new(), true) }
        } else {
            plan(Index::Time, Vec::new(), true)
        }
    }
}

fn encode_cursor(index: Index, key: &[u8]) -> String {
    let mut raw = vec![index as u8];
    raw.extend_from_slice(key);
    hex::encode(raw)
}

fn decode_cursor(index: Index, cursor: &str) -> Result<Vec<u8>, QueryError> {
    let raw = hex::decode(cursor).map_err(|_| QueryError::Cursor)?;
    match raw.split_first() {
        Some((&tag, key)) if tag == index as u8 && key.len() <= 512 => Ok(key.to_vec()),
        _ => Err(QueryError::Cursor),
    }
}

/// The (issue time, id) of a sorted HS cursor; `None` when it is not one.
fn decode_sorted_cursor(cursor: &str) -> Option<(i64, DocumentId)> {
    let raw = hex::decode(cursor).ok()?;
    match raw.split_first() {
        Some((&SORTED_TAG, key)) => keys::decode_time_key(key),
        _ => None,
    }
}

/// The smallest key greater than every key starting with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xFF {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}

impl Store {
    /// Runs one page of a query.
    pub fn query(&self, q: &Query) -> Result<Page, QueryError> {
        if q.limit == 0 || q.limit > QUERY_LIMIT_MAX {
            return Err(QueryError::Limit);
        }
        if let Some((_, prefix)) = &q.hs {
            if prefix.is_empty() || prefix.len() > 10 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QueryError::HsPrefix(prefix.clone()));
            }
        }
        let plan = q.plan();
        if plan.index == Index::Hs && !q.index_order {
            let sorted_cursor = match q.cursor.as_deref() {
                None => None,
                Some(c) => match decode_sorted_cursor(c) {
                    Some(k) => Some(k),
                    // A code-order cursor continues the code-order walk.
                    None => return self.walk(q, plan),
                },
            };
            if let Some(page) = self.sorted_hs(q, &plan.prefix, sorted_cursor.as_ref())? {
                return Ok(page);
            }
            if sorted_cursor.is_some() {
                return Err(QueryError::TooBroad);
            }
        }
        self.walk(q, plan)
    }

    /// One page of an HS query in issue order, newest first: every document under the prefix
    /// (at most [`QUERY_SCAN_MAX`]) is ranked by the issue time its index entry carries, then
    /// checked newest first until the `limit` newest matches after `cursor` are found.
    /// `None` when the prefix holds more documents than that bound.
    fn sorted_hs(
        &self,
        q: &Query,
        prefix: &[u8],
        cursor: Option<&(i64, DocumentId)>,
    ) -> Result<Option<Page>, QueryError> {
        let cursor_key = cursor.map(|(t, id)| keys::time_key(*t, id));
        // First the ids under the prefix with their issue times, from the index alone: a
        // prefix past the bound is known before any header is read.
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_IDX_HS));
        it.seek(prefix);
        let mut seen = HashSet::new();
        let mut entries: Vec<(Option<i64>, DocumentId)> = Vec::new();
        while it.valid() {
            let key = it.key().expect("valid iterator has a key");
            if !key.starts_with(prefix) {
                break;
            }
            if seen.len() >= QUERY_SCAN_MAX {
                return Ok(None);
            }
            let (_, _, id) = keys::decode_hs_key(key).ok_or_else(|| self.corrupt("index key"))?;
            if seen.insert(id) {
                entries.push((keys::decode_hs_value(it.value().unwrap_or_default()), id));
            }
            it.next();
        }
        it.status().map_err(StoreError::from)?;
        // Newest first by time key (an entry of an older store, without its time, has its
        // header read for it), then the filters checked in that order until `limit + 1` match:
        // an HS query alone reads `limit + 1` headers, not one per document under the prefix.
        let mut ranked: Vec<Vec<u8>> = Vec::with_capacity(entries.len());
        for (issued_ms, id) in entries {
            let issued_ms = match issued_ms {
                Some(t) => t,
                None => match self.header(&id)? {
                    Some(h) => h.issued_at_ms,
                    None => continue,
                },
            };
            let k = keys::time_key(issued_ms, &id);
            if cursor_key.as_ref().is_none_or(|c| k < *c) {
                ranked.push(k);
            }
        }
        ranked.sort_unstable_by(|a, b| b.cmp(a));
        let mut keys_newest_first: Vec<Vec<u8>> = Vec::with_capacity(q.limit + 1);
        for k in ranked {
            let (_, id) = keys::decode_time_key(&k).ok_or_else(|| self.corrupt("time key"))?;
            if self.matching_issue_time(q, &id)?.is_some() {
                keys_newest_first.push(k);
                if keys_newest_first.len() > q.limit {
                    break;
                }
            }
        }
        let more = keys_newest_first.len() > q.limit;
        keys_newest_first.truncate(q.limit);
        let mut page = Page { order: Order::Issued, ..Page::default() };
        for k in &keys_newest_first {
            let (_, id) = keys::decode_time_key(k).ok_or_else(|| self.corrupt("time key"))?;
            page.ids.push(id);
        }
        if more {
            page.next_cursor = keys_newest_first.last().map(|k| {
                let mut raw = vec![SORTED_TAG];
                raw.extend_from_slice(k);
                hex::encode(raw)
            });
        }
        Ok(Some(page))
    }

    /// A page of a query walked in its index's order.
    fn walk(&self, q: &Query, plan: Plan) -> Result<Page, QueryError> {
        let Plan { index, prefix, newest_first, below } = plan;
        let in_force_days = q.in_force_on.map(crate::document::date_to_days);
        let cf = self.cf(match index {
            Index::Hs => keys::CF_IDX_HS,
            Index::Type => keys::CF_IDX_TYPE,
            Index::Feed => keys::CF_FEEDS,
            Index::From => keys::CF_IDX_FROM,
            Index::Time => keys::CF_IDX_TIME,
        });
        let mut it = self.db.raw_iterator_cf(cf);
        let cursor = q.cursor.as_deref().map(|c| decode_cursor(index, c)).transpose()?;
        match (&cursor, newest_first) {
            (Some(k), false) => {
                it.seek(k);
                if it.key() == Some(k.as_slice()) {
                    it.next();
                }
            }
            (Some(k), true) => {
                it.seek_for_prev(k);
                if it.key() == Some(k.as_slice()) {
                    it.prev();
                }
            }
            (None, false) => it.seek(&prefix),
            (None, true) => match below.or_else(|| prefix_successor(&prefix)) {
                Some(succ) => {
                    it.seek_for_prev(&succ);
                    if it.key() == Some(succ.as_slice()) {
                        it.prev();
                    }
                }
                None => it.seek_to_last(),
            },
        }
        let mut page = Page {
            order: match index {
                Index::Hs => Order::Code,
                Index::Feed => Order::Feed,
                Index::From => Order::ValidFrom,
                Index::Type | Index::Time => Order::Issued,
            },
            ..Page::default()
        };
        let mut seen = HashSet::new();
        let mut scanned = 0usize;
        let mut last_key: Option<Vec<u8>> = None;
        while it.valid() {
            let key = it.key().expect("valid iterator has a key");
            if !key.starts_with(&prefix) {
                last_key = None;
                break;
            }
            if scanned >= QUERY_SCAN_MAX || page.ids.len() >= q.limit {
                break;
            }
            scanned += 1;
            let id = match index {
                Index::Hs => keys::decode_hs_key(key).map(|(_, _, id)| id),
                Index::Feed => it.value().and_then(|v| v.try_into().ok()).map(DocumentId),
                Index::From => keys::decode_from_key(key).map(|(_, id)| id),
                Index::Type | Index::Time => {
                    key.get(key.len().saturating_sub(32)..).and_then(|b| b.try_into().ok()).map(DocumentId)
                }
            }
            .ok_or_else(|| self.corrupt("index key"))?;
            last_key = Some(key.to_vec());
            // The in-force walk reads each entry's end of validity from the index value, and the
            // document only when the day is within it.
            let ended = match (index, in_force_days) {
                (Index::From, Some(day)) => keys::decode_from_value(it.value().unwrap_or_default())
                    .ok_or_else(|| self.corrupt("index value"))?
                    .is_some_and(|to| to < day),
                _ => false,
            };
            if !ended && seen.insert(id) && self.matches(q, &id)? {
                page.ids.push(id);
            }
            if newest_first {
                it.prev();
            } else {
                it.next();
            }
        }
        it.status().map_err(StoreError::from)?;
        if it.valid() {
            page.next_cursor = last_key.map(|k| encode_cursor(index, &k));
        }
        Ok(page)
    }

    fn matches(&self, q: &Query, id: &DocumentId) -> Result<bool, StoreError> {
        Ok(self.matching_issue_time(q, id)?.is_some())
    }

    /// The document's issue time (ms) if it matches every filter of `q`.
    fn matching_issue_time(&self, q: &Query, id: &DocumentId) -> Result<Option<i64>, StoreError> {
        // The header suffices (no copy of the envelope, no hash of it) unless the title is
        // searched.
        let doc = match &q.text {
            Some(_) => match self.get(id)? {
                Some(bytes) => Some(decode_owned(bytes).map_err(|_| self.corrupt("stored document"))?),
                None => return Ok(None),
            },
            None => None,
        };
        let header;
        let h: &Header = match &doc {
            Some(doc) => &doc.header,
            None => match self.header(id)? {
                Some(found) => {
                    header = found;
                    &header
                }
                None => return Ok(None),
            },
        };
        if q.doc_type.as_ref().is_some_and(|t| *t != h.doc_type)
            || q.publisher.as_ref().is_some_and(|p| *p != h.publisher)
            || q.issued_since_ms.is_some_and(|t| h.issued_at_ms < t)
        {
            return Ok(None);
        }
        if let Some((edition, prefix)) = &q.hs {
            if !h.subjects.iter().any(|s| s.edition == *edition && s.code.as_str().starts_with(prefix.as_str())) {
                return Ok(None);
            }
        }
        if let Some(day) = q.in_force_on {
            if !self.in_force(h, id, day)? {
                return Ok(None);
            }
        }
        if let (Some(text), Some(doc)) = (&q.text, &doc) {
            let body: serde_json::Value = serde_json::from_slice(doc.body()).unwrap_or_default();
            let needle = text.to_lowercase();
            let hit = body
                .get("title")
                .and_then(|t| t.as_object())
                .is_some_and(|t| t.values().any(|v| v.as_str().is_some_and(|s| s.to_lowercase().contains(&needle))));
            if !hit {
                return Ok(None);
            }
        }
        Ok(Some(h.issued_at_ms))
    }

    /// The editions some held document is indexed under, oldest first: one seek per edition
    /// (the HS index is ordered by edition first), so at most one per year 1988-2100.
    pub fn held_editions(&self) -> Result<Vec<Edition>, StoreError> {
        let mut it = self.db.raw_iterator_cf(self.cf(keys::CF_IDX_HS));
        let mut out = Vec::new();
        it.seek_to_first();
        while it.valid() {
            let key = it.key().expect("valid iterator has a key");
            let (edition, _, _) = keys::decode_hs_key(key).ok_or_else(|| self.corrupt("index key"))?;
            out.push(edition);
            match Edition::from_year(edition.year() + 1) {
                Ok(next) => it.seek(keys::hs_prefix(next, "")),
                Err(_) => break,
            }
        }
        it.status().map_err(StoreError::from)?;
        Ok(out)
    }

    /// Whether a document is in force on `day`: its validity contains the day and no stored
    /// supersede or withdraw act took effect on or before it.
    pub fn in_force(&self, h: &Header, id: &DocumentId, day: NaiveDate) -> Result<bool, StoreError> {
        // Lifecycle acts act on other documents; they are not themselves rules in force.
        if h.doc_type.as_str().starts_with("lifecycle.") || h.validity.is_empty() || !h.validity.contains(day) {
            return Ok(false);
        }
        for (kind, act_id) in self.referrers(id)? {
            if !kind.ends_force() {
                continue;
            }
            let Some(act) = self.header(&act_id)? else { continue };
            if act.validity.from.is_some_and(|from| from <= day) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}
