//! Full-text search over held documents (tantivy): titles, product descriptions and reasons in
//! English and French, ranked by BM25, filtered by HS code prefix, type, publisher and issue
//! day; and "similar classifications", the product texts of other publishers nearest a ruling's.
//!
//! Why an index beside the store and not in it: it is derived data, local to the node (peers
//! never see it), and can be dropped and rebuilt from the store at any time. It follows the
//! store's arrival order: each commit records the last arrival number it covers (the commit
//! payload), so a node that crashed, or an index older than the store, catches up from there
//! at start ([`task`]). A store that lost documents (a truncated feed) is mended by a rebuild;
//! until then answers skip what the store no longer holds.
//!
//! The index stores only what finds and ranks a document (its id, type, publisher, issue
//! time, codes, classification); every answer reads the document itself from the store.

mod schema;
mod task;
mod text;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Value};
use tantivy::tokenizer::TokenStream;
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::{watch, Notify};

pub use task::{start, SearchTask};
pub use text::{Lang, Part, Searchable, CLASSIFICATION_TYPES, PART_CHARS_MAX};

use crate::document::{DocumentId, SignedDocument};
use crate::store::{Store, StoreError};
use schema::{lang_index, part_index, register_analysers, schema, Fields};

/// The index directory's name inside the node directory.
pub const INDEX_DIR: &str = "search";
/// Memory the index writer may use before it flushes a segment: set explicitly and small,
/// since a node also runs RocksDB (tantivy's floor is 15 MB).
pub const WRITER_HEAP_BYTES: usize = 24 * 1024 * 1024;
/// Documents read from the store per step of a catch-up.
pub const CATCH_UP_BATCH: usize = 512;
/// Documents indexed between two commits during a catch-up (each commit is durable and
/// records how far it got, so a crash loses at most this much indexing work).
pub const COMMIT_EVERY_DOCS: usize = 20_000;
/// Most results of one search page, and the furthest a page may start.
pub const SEARCH_LIMIT_MAX: usize = 100;
pub const SEARCH_OFFSET_MAX: usize = 1000;
/// Most distinct product words a "similar classifications" query is made of.
pub const SIMILAR_TERMS_MAX: usize = 48;
/// Version of the index layout (schema, analysers); an index of another version is rebuilt.
pub const INDEX_FORMAT: u32 = 1;

const _: () = assert!(CATCH_UP_BATCH <= COMMIT_EVERY_DOCS && SEARCH_LIMIT_MAX <= SEARCH_OFFSET_MAX);

/// Why the index could not do something.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("search index in {path}: {source}")]
    Index { path: PathBuf, source: tantivy::TantivyError },
    #[error("search index in {path}: {what}")]
    Io { path: PathBuf, what: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SearchError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            SearchError::Index { .. } | SearchError::Io { .. } => "search_index",
            SearchError::Store(_) => "store",
        }
    }
}

/// What a commit records: the layout version and the last arrival it covers.
#[derive(serde::Serialize, serde::Deserialize)]
struct Payload {
    format: u32,
    arrival: u64,
}

struct Writing {
    writer: IndexWriter,
    /// Last arrival number whose document is in the index (committed or not).
    upto: u64,
}

/// The search index of a node.
pub struct SearchIndex {
    path: PathBuf,
    index: Index,
    reader: IndexReader,
    f: Fields,
    writing: Mutex<Writing>,
    /// The last arrival number that searches see (committed and reloaded).
    visible: watch::Sender<u64>,
    /// Wakes the indexing task (a rebuild was asked for).
    wake: Notify,
}

/// Filters and page of a search; each value already checked by the caller.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    /// Words, phrases in quotes; `None` or blank: every document the filters keep, newest first.
    pub text: Option<String>,
    /// `(edition, code digits)` prefix.
    pub hs: Option<(String, String)>,
    pub doc_type: Option<String>,
    pub publisher: Option<String>,
    /// Issued at or after, and before (milliseconds since the epoch).
    pub issued_from_ms: Option<i64>,
    pub issued_before_ms: Option<i64>,
    pub offset: usize,
    pub limit: usize,
}

/// One result: a document id and its BM25 score (absent without words).
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: DocumentId,
    pub score: Option<f32>,
}

/// A page of results.
#[derive(Debug, Clone)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// How many documents match in all.
    pub total: usize,
}

/// A classification found similar to another.
#[derive(Debug, Clone)]
pub struct Similar {
    pub id: DocumentId,
    pub publisher: String,
    /// `(edition, code digits)`.
    pub classification: Option<(String, String)>,
    /// The BM25 score over the source's own score on the same query, at most 1.
    pub similarity: f32,
}

impl SearchIndex {
    /// Opens the index in `path` (made if absent). An index of another layout version, or one
    /// that does not open, is dropped and made anew: it is rebuilt from the store by catching up.
    pub fn open(path: &Path) -> Result<SearchIndex, SearchError> {
        match SearchIndex::open_existing(path) {
            Ok(index) => Ok(index),
            Err(e) => {
                if path.exists() {
                    tracing::warn!(error = %e, path = %path.display(), "the search index is dropped and rebuilt from the store");
                    std::fs::remove_dir_all(path)
                        .map_err(|e| SearchError::Io { path: path.to_owned(), what: format!("cannot remove: {e}") })?;
                }
                SearchIndex::open_existing(path)
            }
        }
    }

    fn open_existing(path: &Path) -> Result<SearchIndex, SearchError> {
        let err = |source| SearchError::Index { path: path.to_owned(), source };
        std::fs::create_dir_all(path)
            .map_err(|e| SearchError::Io { path: path.to_owned(), what: format!("cannot create: {e}") })?;
        let (schema, f) = schema();
        let dir = tantivy::directory::MmapDirectory::open(path)
            .map_err(|e| SearchError::Io { path: path.to_owned(), what: e.to_string() })?;
        let index = Index::builder().schema(schema).open_or_create(dir).map_err(err)?;
        register_analysers(&index);
        let upto = match index.load_metas().map_err(err)?.payload {
            None => 0,
            Some(text) => match serde_json::from_str::<Payload>(&text) {
                Ok(p) if p.format == INDEX_FORMAT => p.arrival,
                _ => {
                    return Err(SearchError::Io {
                        path: path.to_owned(),
                        what: format!("index layout is not version {INDEX_FORMAT}"),
                    })
                }
            },
        };
        let writer = index.writer_with_num_threads(1, WRITER_HEAP_BYTES).map_err(err)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(err)?;
        Ok(SearchIndex {
            path: path.to_owned(),
            index,
            reader,
            f,
            writing: Mutex::new(Writing { writer, upto }),
            visible: watch::channel(upto).0,
            wake: Notify::new(),
        })
    }

    fn err(&self, source: tantivy::TantivyError) -> SearchError {
        SearchError::Index { path: self.path.clone(), source }
    }

    /// The directory of the index.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last arrival number searches see.
    pub fn visible_upto(&self) -> u64 {
        *self.visible.borrow()
    }

    /// Watches [`SearchIndex::visible_upto`].
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.visible.subscribe()
    }

    /// Disk used by the index files.
    pub fn disk_bytes(&self) -> u64 {
        let Ok(entries) = std::fs::read_dir(&self.path) else { return 0 };
        entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum()
    }

    /// Indexes what the store holds past the index's last arrival, at most `max_docs` documents
    /// (then commits; call again for more). Returns how many it indexed.
    pub fn catch_up(&self, store: &Store, max_docs: usize) -> Result<usize, SearchError> {
        let mut w = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let result = self.catch_up_locked(&mut w, store, max_docs);
        if result.is_err() {
            // A failed step (a full disk, say) leaves nothing half done: what was added since
            // the last commit is dropped and the next step starts again from the last commit.
            if let Err(e) = w.writer.rollback() {
                tracing::warn!(error = %e, "search index: rolling back a failed indexing step");
            }
            w.upto = self.visible_upto();
        }
        result
    }

    fn catch_up_locked(&self, w: &mut Writing, store: &Store, max_docs: usize) -> Result<usize, SearchError> {
        let mut done = 0;
        let mut since_commit = 0;
        while done < max_docs {
            let batch = store.arrivals_after(w.upto, CATCH_UP_BATCH.min(max_docs - done))?;
            if batch.is_empty() {
                break;
            }
            for (arrival, id) in batch {
                // A document gone from the store (a truncated feed) is simply not indexed.
                if let Some(bytes) = store.get(&id)? {
                    if let Ok(doc) = crate::document::decode(&bytes) {
                        self.add(&w.writer, &doc)?;
                    }
                }
                w.upto = arrival;
                done += 1;
                since_commit += 1;
            }
            if since_commit >= COMMIT_EVERY_DOCS {
                self.commit(w)?;
                since_commit = 0;
            }
        }
        if since_commit > 0 || self.visible_upto() != w.upto {
            self.commit(w)?;
        }
        Ok(done)
    }

    /// Indexes documents given directly (benchmarks, tests), as if they had arrived up to
    /// `arrival`, and commits.
    pub fn add_all(&self, docs: &[SignedDocument], arrival: u64) -> Result<(), SearchError> {
        let mut w = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        for doc in docs {
            self.add(&w.writer, doc)?;
        }
        w.upto = w.upto.max(arrival);
        self.commit(&mut w)
    }

    /// Drops every indexed document (committed at once); the indexing task then indexes the
    /// store again from its first arrival.
    pub fn clear(&self) -> Result<(), SearchError> {
        let mut w = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        w.writer.delete_all_documents().map_err(|e| self.err(e))?;
        w.upto = 0;
        self.commit(&mut w)?;
        self.wake.notify_one();
        Ok(())
    }

    fn commit(&self, w: &mut Writing) -> Result<(), SearchError> {
        let payload = serde_json::to_string(&Payload { format: INDEX_FORMAT, arrival: w.upto }).unwrap_or_default();
        let mut prepared = w.writer.prepare_commit().map_err(|e| self.err(e))?;
        prepared.set_payload(&payload);
        prepared.commit().map_err(|e| self.err(e))?;
        self.reader.reload().map_err(|e| self.err(e))?;
        self.visible.send_replace(w.upto);
        Ok(())
    }

    fn add(&self, writer: &IndexWriter, doc: &SignedDocument) -> Result<(), SearchError> {
        let f = &self.f;
        let hex = doc.id.to_hex();
        // The same document may come again after a truncated feed was filled anew.
        writer.delete_term(Term::from_field_text(f.id, &hex));
        let s = Searchable::of(doc);
        let mut d = TantivyDocument::default();
        d.add_text(f.id, &hex);
        d.add_text(f.doc_type, doc.header.doc_type.as_str());
        d.add_text(f.publisher, doc.header.publisher.as_str());
        d.add_i64(f.issued_ms, doc.header.issued_at_ms);
        for subject in &doc.header.subjects {
            let code = subject.code.as_str();
            for n in 1..=code.len() {
                d.add_text(f.codes, format!("{}:{}", subject.edition, &code[..n]));
            }
        }
        if let Some((edition, code)) = &s.classification {
            d.add_text(f.class, format!("{edition}:{code}"));
            for n in 1..=code.len() {
                d.add_text(f.class_codes, format!("{edition}:{}", &code[..n]));
            }
        }
        if let Some(r) = &s.reference {
            d.add_text(f.reference, r);
        }
        for (part, lang, text) in &s.texts {
            d.add_text(f.texts[part_index(*part)][lang_index(*lang)], text);
        }
        writer.add_document(d).map_err(|e| self.err(e))?;
        Ok(())
    }

    fn text_fields(&self) -> Vec<Field> {
        let mut fields: Vec<Field> = self.f.texts.iter().flatten().copied().collect();
        fields.push(self.f.reference);
        fields
    }

    /// Searches: words over every text (titles weigh most, then products), all words required,
    /// ranked by BM25; the filters narrow.
    pub fn search(&self, q: &SearchQuery) -> Result<Found, SearchError> {
        let f = &self.f;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let text = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        if let Some(text) = text {
            let mut parser = QueryParser::for_index(&self.index, self.text_fields());
            parser.set_conjunction_by_default();
            for l in 0..3 {
                parser.set_field_boost(f.texts[0][l], 3.0);
                parser.set_field_boost(f.texts[1][l], 1.5);
            }
            // Lenient: what people type (an odd quote, a stray colon) is searched as words.
            let (query, _) = parser.parse_query_lenient(text);
            clauses.push((Occur::Must, query));
        }
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        if let Some((edition, prefix)) = &q.hs {
            clauses.push((Occur::Must, term(f.codes, &format!("{edition}:{prefix}"))));
        }
        if let Some(t) = &q.doc_type {
            clauses.push((Occur::Must, term(f.doc_type, t)));
        }
        if let Some(p) = &q.publisher {
            clauses.push((Occur::Must, term(f.publisher, p)));
        }
        if q.issued_from_ms.is_some() || q.issued_before_ms.is_some() {
            let bound = |ms: Option<i64>, inclusive: bool| match ms {
                Some(ms) if inclusive => Bound::Included(Term::from_field_i64(f.issued_ms, ms)),
                Some(ms) => Bound::Excluded(Term::from_field_i64(f.issued_ms, ms)),
                None => Bound::Unbounded,
            };
            let range = RangeQuery::new(bound(q.issued_from_ms, true), bound(q.issued_before_ms, false));
            clauses.push((Occur::Must, Box::new(range)));
        }
        let query: Box<dyn Query> =
            if clauses.is_empty() { Box::new(AllQuery) } else { Box::new(BooleanQuery::new(clauses)) };
        let searcher = self.reader.searcher();
        let page = TopDocs::with_limit(q.limit.clamp(1, SEARCH_LIMIT_MAX)).and_offset(q.offset.min(SEARCH_OFFSET_MAX));
        let (addresses, total): (Vec<(Option<f32>, DocAddress)>, usize) = if text.is_some() {
            let (top, total) = searcher.search(&query, &(page.order_by_score(), Count)).map_err(|e| self.err(e))?;
            (top.into_iter().map(|(s, a)| (Some(s), a)).collect(), total)
        } else {
            let by_issued = page.order_by_fast_field::<i64>("issued_ms", Order::Desc);
            let (top, total) = searcher.search(&query, &(by_issued, Count)).map_err(|e| self.err(e))?;
            (top.into_iter().map(|(_, a)| (None, a)).collect(), total)
        };
        let mut hits = Vec::with_capacity(addresses.len());
        for (score, address) in addresses {
            if let Some(id) = self.stored_id(&searcher, address)? {
                hits.push(Hit { id, score });
            }
        }
        Ok(Found { hits, total })
    }

    fn stored(&self, searcher: &tantivy::Searcher, a: DocAddress) -> Result<TantivyDocument, SearchError> {
        searcher.doc(a).map_err(|e| self.err(e))
    }

    fn stored_id(&self, searcher: &tantivy::Searcher, a: DocAddress) -> Result<Option<DocumentId>, SearchError> {
        let d = self.stored(searcher, a)?;
        Ok(d.get_first(self.f.id).and_then(|v| v.as_str()).and_then(|h| DocumentId::from_hex(h).ok()))
    }

    /// The classifications of other publishers whose product texts are nearest `source`'s, at
    /// most `limit`, most similar first.
    pub fn similar(&self, source: &SignedDocument, limit: usize) -> Result<Vec<Similar>, SearchError> {
        let f = &self.f;
        let s = Searchable::of(source);
        let searcher = self.reader.searcher();
        // The source's product words, weighed by how rare they are across the index.
        let mut weighted: Vec<(f32, Term)> = Vec::new();
        for (lang, text) in s.product_texts() {
            let field = f.texts[part_index(Part::Product)][lang_index(lang)];
            let mut analyser = self.index.tokenizer_for_field(field).map_err(|e| self.err(e))?;
            let mut stream = analyser.token_stream(text);
            while let Some(token) = stream.next() {
                let term = Term::from_field_text(field, &token.text);
                if weighted.iter().any(|(_, t)| *t == term) {
                    continue;
                }
                let df = searcher.doc_freq(&term).map_err(|e| self.err(e))?;
                let n = searcher.num_docs().max(1);
                weighted.push(((n as f32 / (df as f32 + 1.0)).ln_1p(), term));
            }
        }
        weighted.sort_by(|a, b| b.0.total_cmp(&a.0));
        weighted.truncate(SIMILAR_TERMS_MAX);
        if weighted.is_empty() {
            return Ok(Vec::new());
        }
        let words = || -> Box<dyn Query> {
            Box::new(BooleanQuery::new(
                weighted
                    .iter()
                    .map(|(_, t)| {
                        let q: Box<dyn Query> = Box::new(TermQuery::new(t.clone(), IndexRecordOption::WithFreqs));
                        (Occur::Should, q)
                    })
                    .collect(),
            ))
        };
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        let hex = source.id.to_hex();
        // The source's own score on its words: what "as similar as can be" scores.
        let own = BooleanQuery::new(vec![(Occur::Must, words()), (Occur::Must, term(f.id, &hex))]);
        let own_score = searcher
            .search(&own, &TopDocs::with_limit(1).order_by_score())
            .map_err(|e| self.err(e))?
            .first()
            .map(|(s, _)| *s);
        let types =
            BooleanQuery::new(CLASSIFICATION_TYPES.iter().map(|t| (Occur::Should, term(f.doc_type, t))).collect());
        let query = BooleanQuery::new(vec![
            (Occur::Must, words()),
            (Occur::Must, Box::new(BoostQuery::new(Box::new(types), 0.0))),
            (Occur::MustNot, term(f.publisher, source.header.publisher.as_str())),
            (Occur::MustNot, term(f.id, &hex)),
        ]);
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit.clamp(1, SEARCH_LIMIT_MAX)).order_by_score())
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(top.len());
        for (score, address) in top {
            let d = self.stored(&searcher, address)?;
            let text = |field: Field| d.get_first(field).and_then(|v| v.as_str()).map(str::to_owned);
            let Some(id) = text(f.id).and_then(|h| DocumentId::from_hex(&h).ok()) else { continue };
            let classification =
                text(f.class).and_then(|c| c.split_once(':').map(|(e, c)| (e.to_owned(), c.to_owned())));
            let similarity = match own_score {
                Some(own) if own > 0.0 => (score / own).min(1.0),
                _ => 0.0,
            };
            out.push(Similar { id, publisher: text(f.publisher).unwrap_or_default(), classification, similarity });
        }
        Ok(out)
    }

    /// Ruling, opinion and decision ids whose classification starts with `(edition, prefix)`,
    /// newest first, at most `limit`.
    pub fn classified_under(&self, edition: &str, prefix: &str, limit: usize) -> Result<Vec<DocumentId>, SearchError> {
        let f = &self.f;
        let term = |field: Field, value: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(Term::from_field_text(field, value), IndexRecordOption::Basic))
        };
        let types =
            BooleanQuery::new(CLASSIFICATION_TYPES.iter().map(|t| (Occur::Should, term(f.doc_type, t))).collect());
        let query = BooleanQuery::new(vec![
            (Occur::Must, term(f.class_codes, &format!("{edition}:{prefix}"))),
            (Occur::Must, Box::new(types)),
        ]);
        let searcher = self.reader.searcher();
        let top = searcher
            .search(&query, &TopDocs::with_limit(limit.max(1)).order_by_fast_field::<i64>("issued_ms", Order::Desc))
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(top.len());
        for (_, a) in top {
            if let Some(id) = self.stored_id(&searcher, a)? {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Waits until the index has woken (a rebuild), for the indexing task.
    async fn woken(&self) {
        self.wake.notified().await
    }
}

#[cfg(test)]
mod tests;
