//! `/v1/search`, `/v1/documents/{id}/similar`, `/v1/divergences` and
//! `/v1/admin/search/rebuild`: the full-text index (`crate::search`) seen through the API.
//!
//! Every answer reads its documents from the store (the index only finds them), so a result
//! carries the same summary as a list: verified mark, lifecycle state. A withdrawn or
//! superseded document is still found, and marked; divergences leave out what is not in force.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::documents::{held_summary, load, IdPath};
use super::error::ErrorBody;
use super::lifecycle::LifecycleState;
use super::params::{self, TEXT_LEN_MAX};
use super::views::DocumentSummary;
use super::{ApiError, AppState};
use crate::document::{DocumentId, SignedDocument};
use crate::search::{SearchIndex, SearchQuery, CLASSIFICATION_TYPES, SEARCH_LIMIT_MAX, SEARCH_OFFSET_MAX};
use crate::service::Service;

/// Default page size of a search.
pub const SEARCH_LIMIT_DEFAULT: usize = 20;
/// Longest a search waits for the index to take in what the store held when it was asked.
pub const INDEX_WAIT: Duration = Duration::from_secs(2);
/// Default and most similar classifications listed for one document.
pub const SIMILAR_LIMIT_DEFAULT: usize = 10;
pub const SIMILAR_LIMIT_MAX: usize = 50;
/// Rulings and opinions of a chapter a divergence request examines (newest first), and the
/// similar classifications it reads for each: the work of one request is bounded by both.
pub const DIVERGENCE_SOURCES_MAX: usize = 200;
pub const DIVERGENCE_NEIGHBOURS: usize = 5;
/// Most divergences listed.
pub const DIVERGENCES_MAX: usize = 200;
/// How similar (a product text's score over the source's own score) two products must be for
/// different headings to count as a divergence.
pub const DIVERGENCE_SIMILARITY_MIN: f32 = 0.3;

/// Filters of a search.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words (all required; stemmed in English and French) or "a phrase", at most 200
    /// characters. Absent: every document the filters keep, newest first.
    pub q: Option<String>,
    /// HS code or prefix of any subject (1 to 10 digits; dots and spaces allowed), within `edition`.
    pub hs: Option<String>,
    /// HS edition for `hs` (default HS2022).
    pub edition: Option<String>,
    /// Document type, e.g. `classification.ruling`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub doc_type: Option<String>,
    /// Publishing organization, e.g. `FR`.
    pub publisher: Option<String>,
    /// Issued on or after this day (YYYY-MM-DD).
    pub from: Option<String>,
    /// Issued on or before this day (YYYY-MM-DD).
    pub to: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page (results go at most 1,000 deep).
    pub cursor: Option<String>,
}

/// One search result.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub document: DocumentSummary,
    /// BM25 relevance (absent when no words were given).
    pub score: Option<f32>,
}

/// A page of search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchView {
    pub results: Vec<SearchResult>,
    /// Documents that match in all.
    pub total: usize,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
    /// The last arrival number (this node's store order) the index covers, and the store's.
    pub indexed_arrival: u64,
    pub store_arrival: u64,
}

/// The page a cursor names: results from this offset.
fn offset_of(cursor: Option<&str>) -> Result<usize, ApiError> {
    let Some(c) = cursor.filter(|c| !c.is_empty()) else { return Ok(0) };
    match c.parse::<usize>() {
        Ok(n) if c.len() <= 5 && n <= SEARCH_OFFSET_MAX => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "the cursor is not one a search returned (searches go at most {SEARCH_OFFSET_MAX} results deep; narrow the query)"
        ))),
    }
}

fn midnight_ms(day: chrono::NaiveDate) -> i64 {
    day.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).unwrap_or_default()
}

impl SearchParams {
    /// The index query these parameters ask for.
    pub fn to_query(&self) -> Result<SearchQuery, ApiError> {
        let limit = self.limit.unwrap_or(SEARCH_LIMIT_DEFAULT);
        if limit == 0 || limit > SEARCH_LIMIT_MAX {
            return Err(ApiError::BadRequest(format!("limit must be between 1 and {SEARCH_LIMIT_MAX}")));
        }
        if self.q.as_ref().is_some_and(|q| q.chars().count() > TEXT_LEN_MAX) {
            return Err(ApiError::BadRequest(format!("q must be at most {TEXT_LEN_MAX} characters")));
        }
        let from = self.from.as_deref().map(|d| params::day(d, "from")).transpose()?;
        let to = self.to.as_deref().map(|d| params::day(d, "to")).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(ApiError::BadRequest(format!("from ({f}) is after to ({t})")));
            }
        }
        let hs = params::hs_filter(self.hs.as_deref(), self.edition.as_deref())?;
        Ok(SearchQuery {
            text: self.q.clone().filter(|q| !q.trim().is_empty()),
            hs: hs.map(|(e, p)| (e.to_string(), p)),
            doc_type: self.doc_type.as_deref().map(params::doc_type).transpose()?.map(|t| t.to_string()),
            publisher: self.publisher.as_deref().map(params::org).transpose()?.map(|o| o.to_string()),
            issued_from_ms: from.map(midnight_ms),
            issued_before_ms: to.and_then(|t| t.succ_opt()).map(midnight_ms),
            offset: offset_of(self.cursor.as_deref())?,
            limit,
        })
    }
}

fn index_of(service: &Service) -> Result<std::sync::Arc<SearchIndex>, ApiError> {
    service.search().ok_or_else(|| ApiError::Other {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "search_unavailable",
        message: "this process keeps no search index (run the node with `entrepot run` or `entrepot serve`)".into(),
    })
}

fn search_error(e: crate::search::SearchError) -> ApiError {
    match e {
        crate::search::SearchError::Store(e) => e.into(),
        other => ApiError::Store(other.to_string()),
    }
}

/// Waits (at most [`INDEX_WAIT`]) until the index covers what the store holds now, so a
/// document published just before is found.
async fn caught_up(service: &Service, index: &SearchIndex) -> u64 {
    let target = service.store.last_arrival();
    let mut watch = index.watch();
    let _ = tokio::time::timeout(INDEX_WAIT, watch.wait_for(|upto| *upto >= target)).await;
    target
}

#[utoipa::path(
    get, path = "/v1/search", tag = "search",
    params(SearchParams),
    responses(
        (status = 200, description = "Documents ranked by relevance (BM25), or newest first without words", body = SearchView),
        (status = 400, description = "A parameter is malformed or out of bounds", body = ErrorBody),
        (status = 503, description = "This process keeps no search index", body = ErrorBody),
    )
)]
/// Full-text search over titles, product descriptions and reasons, in English and French.
pub(crate) async fn search(
    State(state): State<AppState>,
    q: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchView>, ApiError> {
    let params = params::query(q)?;
    let query = params.to_query()?;
    let service = state.service.clone();
    let index = index_of(&service)?;
    let store_arrival = caught_up(&service, &index).await;
    let view = tokio::task::spawn_blocking(move || -> Result<SearchView, ApiError> {
        let found = index.search(&query).map_err(search_error)?;
        let mut results = Vec::with_capacity(found.hits.len());
        for hit in &found.hits {
            // Gone from the store (a truncated feed) until the next rebuild: not shown.
            let Some(doc) = load(&service, &hit.id)? else { continue };
            results.push(SearchResult { document: held_summary(&service, &doc)?, score: hit.score });
        }
        let next = query.offset + found.hits.len();
        let next_cursor = (found.hits.len() == query.limit && next < found.total && next <= SEARCH_OFFSET_MAX)
            .then(|| next.to_string());
        Ok(SearchView {
            results,
            total: found.total,
            next_cursor,
            indexed_arrival: index.visible_upto(),
            store_arrival: store_arrival.max(service.store.last_arrival()),
        })
    })
    .await??;
    Ok(Json(view))
}

/// How many similar classifications to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SimilarParams {
    /// 1 to 50 (default 10).
    pub limit: Option<usize>,
}

/// A classification beside another.
#[derive(Debug, Serialize, ToSchema)]
pub struct Classified {
    pub document: DocumentSummary,
    /// Its code as `HS2022:880622`.
    pub classification: Option<String>,
    /// Its heading (4 digits).
    pub heading: Option<String>,
}

/// A similar classification of another administration.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarEntry {
    #[serde(flatten)]
    pub classified: Classified,
    /// How near its product text is to the document's: its relevance over the document's
    /// own on the same words, 0 to 1.
    pub similarity: f32,
    /// Classified under another heading than the document.
    pub divergent: bool,
}

/// The similar classifications of a ruling, opinion or decision.
#[derive(Debug, Serialize, ToSchema)]
pub struct SimilarView {
    #[serde(flatten)]
    pub source: Classified,
    /// Other publishers' classifications, most similar first.
    pub similar: Vec<SimilarEntry>,
}

fn classified(service: &Service, doc: &SignedDocument) -> Result<Classified, ApiError> {
    let s = crate::search::Searchable::of(doc);
    Ok(Classified {
        document: held_summary(service, doc)?,
        heading: s.classification.as_ref().and_then(|(_, c)| c.get(..4)).map(str::to_owned),
        classification: s.classification.map(|(e, c)| format!("{e}:{c}")),
    })
}

fn classification_doc(service: &Service, id: &DocumentId) -> Result<SignedDocument, ApiError> {
    let doc = load(service, id)?.ok_or_else(|| ApiError::NotFound(format!("this node holds no document {id}")))?;
    if !CLASSIFICATION_TYPES.contains(&doc.header.doc_type.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "document {id} is a {}: similar classifications are for rulings, opinions and decisions",
            doc.header.doc_type
        )));
    }
    Ok(doc)
}

fn similar_of(
    service: &Service,
    index: &SearchIndex,
    doc: &SignedDocument,
    limit: usize,
) -> Result<SimilarView, ApiError> {
    let source = classified(service, doc)?;
    let mut similar = Vec::new();
    for s in index.similar(doc, limit).map_err(search_error)? {
        let Some(other) = load(service, &s.id)? else { continue };
        let c = classified(service, &other)?;
        let divergent = matches!((&c.heading, &source.heading), (Some(a), Some(b)) if a != b);
        similar.push(SimilarEntry { classified: c, similarity: s.similarity, divergent });
    }
    Ok(SimilarView { source, similar })
}

#[utoipa::path(
    get, path = "/v1/documents/{id}/similar", tag = "search",
    params(IdPath, SimilarParams),
    responses(
        (status = 200, description = "Other administrations' most similar classifications, divergent headings flagged", body = SimilarView),
        (status = 400, description = "Not a ruling, opinion or decision, or a bad parameter", body = ErrorBody),
        (status = 404, description = "Not held by this node", body = ErrorBody),
        (status = 503, description = "This process keeps no search index", body = ErrorBody),
    )
)]
/// The classifications of other publishers whose product texts are most like this one's.
pub(crate) async fn similar(
    State(state): State<AppState>,
    p: Result<Path<IdPath>, PathRejection>,
    q: Result<Query<SimilarParams>, QueryRejection>,
) -> Result<Json<SimilarView>, ApiError> {
    let id = super::documents::parse_id(p)?;
    let limit = params::query(q)?.limit.unwrap_or(SIMILAR_LIMIT_DEFAULT);
    if limit == 0 || limit > SIMILAR_LIMIT_MAX {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {SIMILAR_LIMIT_MAX}")));
    }
    let service = state.service.clone();
    let index = index_of(&service)?;
    caught_up(&service, &index).await;
    let view = tokio::task::spawn_blocking(move || {
        let doc = classification_doc(&service, &id)?;
        similar_of(&service, &index, &doc, limit)
    })
    .await??;
    Ok(Json(view))
}

/// The chapter to list divergences of.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DivergenceParams {
    /// HS chapter, two digits (01 to 99).
    pub chapter: Option<String>,
    /// HS edition of the classifications (default HS2022).
    pub edition: Option<String>,
}

/// Two similar products classified under different headings by different administrations.
#[derive(Debug, Serialize, ToSchema)]
pub struct Divergence {
    pub a: Classified,
    pub b: Classified,
    /// How near their product texts are (0 to 1).
    pub similarity: f32,
}

/// The divergences of a chapter.
#[derive(Debug, Serialize, ToSchema)]
pub struct DivergencesView {
    pub chapter: String,
    pub edition: String,
    /// Most similar first.
    pub divergences: Vec<Divergence>,
    /// Rulings, opinions and decisions of the chapter examined, and whether the bound on
    /// them (200, newest first) left some out.
    pub examined: usize,
    pub truncated: bool,
}

/// Whether a document takes part in divergences: in force today, and not withdrawn or
/// superseded by a held act.
fn current(service: &Service, doc: &SignedDocument) -> Result<bool, ApiError> {
    let today = chrono::Utc::now().date_naive();
    let ended = matches!(
        super::lifecycle::state(&service.store, &doc.id)?,
        Some(LifecycleState::Withdrawn | LifecycleState::Superseded)
    );
    Ok(!ended && service.store.in_force(&doc.header, &doc.id, today)?)
}

fn divergences_of(
    service: &Service,
    index: &SearchIndex,
    chapter: &str,
    edition: &str,
) -> Result<DivergencesView, ApiError> {
    let sources = index.classified_under(edition, chapter, DIVERGENCE_SOURCES_MAX + 1).map_err(search_error)?;
    let truncated = sources.len() > DIVERGENCE_SOURCES_MAX;
    let mut seen = BTreeSet::new();
    let mut divergences = Vec::new();
    let mut examined = 0;
    for id in sources.iter().take(DIVERGENCE_SOURCES_MAX) {
        let Some(doc) = load(service, id)? else { continue };
        examined += 1;
        if !current(service, &doc)? {
            continue;
        }
        let view = similar_of(service, index, &doc, DIVERGENCE_NEIGHBOURS)?;
        for s in view.similar {
            if !s.divergent || s.similarity < DIVERGENCE_SIMILARITY_MIN {
                continue;
            }
            let other_id = s.classified.document.id.clone();
            let pair =
                if doc.id.to_hex() < other_id { (doc.id.to_hex(), other_id) } else { (other_id, doc.id.to_hex()) };
            if !seen.insert(pair) {
                continue;
            }
            let Some(other) =
                DocumentId::from_hex(&s.classified.document.id).ok().and_then(|i| load(service, &i).transpose())
            else {
                continue;
            };
            if !current(service, &other?)? {
                continue;
            }
            divergences.push(Divergence { a: classified(service, &doc)?, b: s.classified, similarity: s.similarity });
        }
    }
    divergences.sort_by(|x, y| y.similarity.total_cmp(&x.similarity));
    divergences.truncate(DIVERGENCES_MAX);
    Ok(DivergencesView { chapter: chapter.to_owned(), edition: edition.to_owned(), divergences, examined, truncated })
}

#[utoipa::path(
    get, path = "/v1/divergences", tag = "search",
    params(DivergenceParams),
    responses(
        (status = 200, description = "Pairs of similar products classified under different headings by different administrations, both in force", body = DivergencesView),
        (status = 400, description = "No chapter, or not two digits", body = ErrorBody),
        (status = 503, description = "This process keeps no search index", body = ErrorBody),
    )
)]
/// Current divergences of a chapter: similar products, different publishers, different headings.
pub(crate) async fn divergences(
    State(state): State<AppState>,
    q: Result<Query<DivergenceParams>, QueryRejection>,
) -> Result<Json<DivergencesView>, ApiError> {
    let p = params::query(q)?;
    let chapter = p.chapter.unwrap_or_default();
    if chapter.len() != 2 || !chapter.bytes().all(|b| b.is_ascii_digit()) || chapter == "00" {
        return Err(ApiError::BadRequest(format!(
            "chapter must be two digits from 01 to 99, such as 88 (got '{}')",
            chapter.chars().take(16).collect::<String>()
        )));
    }
    let edition = params::edition(p.edition.as_deref().unwrap_or("HS2022"))?.to_string();
    let service = state.service.clone();
    let index = index_of(&service)?;
    caught_up(&service, &index).await;
    let view = tokio::task::spawn_blocking(move || divergences_of(&service, &index, &chapter, &edition)).await??;
    Ok(Json(view))
}

/// What a rebuild request started.
#[derive(Debug, Serialize, ToSchema)]
pub struct RebuildView {
    /// The index was emptied; it is filled again from the store in the background.
    pub cleared: bool,
    /// Documents (arrivals) to index again; `GET /v1/search` shows `indexed_arrival` rising to it.
    pub store_arrival: u64,
}

#[utoipa::path(
    post, path = "/v1/admin/search/rebuild", tag = "search",
    responses(
        (status = 202, description = "The index was emptied and is being rebuilt from the store", body = RebuildView),
        (status = 401, description = "No or wrong bearer token", body = ErrorBody),
        (status = 503, description = "This process keeps no search index", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
/// Drops the search index and rebuilds it from the store (in the background).
pub(crate) async fn rebuild(State(state): State<AppState>) -> Result<(StatusCode, Json<RebuildView>), ApiError> {
    let service = state.service.clone();
    let index = index_of(&service)?;
    let view = tokio::task::spawn_blocking(move || -> Result<RebuildView, ApiError> {
        index.clear().map_err(search_error)?;
        Ok(RebuildView { cleared: true, store_arrival: service.store.last_arrival() })
    })
    .await??;
    Ok((StatusCode::ACCEPTED, Json(view)))
}
