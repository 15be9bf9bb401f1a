//! The HS tracker: an HS code (or prefix) within an edition, across documents and editions.
//!
//! `GET /v1/hs/{edition}/{code}` gathers, from documents this node holds and has verified:
//! the code's description in that edition (`hs.nomenclature`), the amendment operations that
//! touched it (`hs.amendment`), its correlations to older and newer editions (`hs.correlation`
//! and the correlation rows of amendments, following 1:n, n:1 and n:n: the other codes sharing
//! a target are listed too), and the guidance (`classification.*`) and `enforcement.notice`
//! documents that cite it. `GET /v1/hs/changes` lists the amendment operations on a chapter
//! between two editions.
//!
//! Why it reads documents rather than a table of its own: the tracker shows what signed
//! documents say, each answer naming the document it comes from, so an officer can open and
//! verify it. Every list has a bound and the view says when one was reached (`truncated`).

use std::collections::{BTreeMap, HashSet};

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

mod rows;

use super::error::ErrorBody;
use super::params;
use super::views::DocumentSummary;
use super::{documents, ApiError, AppState};
use crate::document::{decode, Edition, SignedDocument, TypeName};
use crate::service::Service;
use crate::store::Query as StoreQuery;

/// Most documents of one kind read for one answer.
pub const DOCS_PER_KIND_MAX: usize = 400;
/// Most nomenclature entries, correlation rows or operations returned in one list.
pub const ROWS_MAX: usize = 1000;
/// Most other-edition codes whose other sources are looked up (n:1 and n:n fan-out).
pub const FANOUT_MAX: usize = 64;
/// The types listed as guidance citing a code.
const GUIDANCE_TYPES: [&str; 3] = ["classification.opinion", "classification.decision", "classification.ruling"];
/// Store pages read per document lookup.
const PAGES_MAX: usize = 16;

/// An edition and code in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct HsPath {
    /// HS edition, e.g. `HS2022`.
    pub edition: String,
    /// HS code or prefix, 1 to 10 digits, dots and spaces allowed (`8806`, `8806.22`, `8806 22`, `88`).
    pub code: String,
}

/// A nomenclature entry under (or above) the code.
#[derive(Debug, Serialize, ToSchema)]
pub struct NomenclatureEntry {
    pub code: String,
    pub level: u64,
    pub description: String,
    pub parent: Option<String>,
    /// The `hs.nomenclature` document it comes from.
    pub document: String,
}

/// One amendment operation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Operation {
    /// `delete`, `delete_substitute`, `insert` or `amend_text`.
    pub op: String,
    /// `heading`, `subheading`, or a note kind.
    pub kind: String,
    /// The code operated on, digits only.
    pub code: String,
    /// The new English text, where the operation has one.
    pub text: Option<String>,
    pub edition_from: String,
    pub edition_to: String,
    /// The `hs.amendment` document it comes from.
    pub document: String,
}

/// An amendment set that touched the code, with the operations that did.
#[derive(Debug, Serialize, ToSchema)]
pub struct AmendmentTouch {
    pub document: DocumentSummary,
    pub set_number: Option<u64>,
    pub entry_into_force: Option<String>,
    pub operations: Vec<Operation>,
}

/// A correlation between a code of this edition and one of another edition.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CorrelationRow {
    /// The code in the asked edition.
    pub code: String,
    pub other_edition: String,
    pub other_code: String,
    /// Seen from the asked edition: `1:n` means this code split into several.
    pub relationship: String,
    /// `false` for rows reached by following the other code back (n:1 and n:n partners).
    pub direct: bool,
    /// The other code's description in its edition, where this node holds that nomenclature.
    pub other_description: Option<String>,
    /// The `hs.correlation` or `hs.amendment` document it comes from.
    pub document: String,
}

/// Everything the node's documents say about one code or prefix.
#[derive(Debug, Serialize, ToSchema)]
pub struct HsView {
    pub edition: String,
    /// The code or prefix asked, digits only.
    pub code: String,
    /// The description of exactly this code in this edition, if a nomenclature document has it.
    pub description: Option<String>,
    /// Nomenclature entries above (chapter, heading) and under the code, in code order.
    pub entries: Vec<NomenclatureEntry>,
    pub amendments: Vec<AmendmentTouch>,
    /// The code's own correlations to older editions (this page of them).
    pub previous: Vec<CorrelationRow>,
    /// The code's own correlations to newer editions (this page of them).
    pub next: Vec<CorrelationRow>,
    /// Rows about other codes of this edition that share a target with a row of this page
    /// (n:1 and n:n partners), kept apart from the code's own rows.
    pub partners: Vec<CorrelationRow>,
    /// How many correlation rows of its own the code has, in all pages.
    pub rows_total: usize,
    /// The first row of this page among them.
    pub rows_offset: usize,
    /// `rows_offset` of the next page, when there is one.
    pub next_rows_offset: Option<usize>,
    /// Classification opinions, decisions and rulings citing the code.
    pub guidance: Vec<DocumentSummary>,
    /// Enforcement notices citing the code.
    pub notices: Vec<DocumentSummary>,
    /// Whether some list reached its bound.
    pub truncated: bool,
}

/// Documents indexed under `(edition, prefix)`, optionally of one type, at most `max`.
fn docs_under(
    service: &Service,
    edition: Edition,
    prefix: &str,
    doc_type: Option<&str>,
    max: usize,
    truncated: &mut bool,
) -> Result<Vec<SignedDocument>, ApiError> {
    let mut query = StoreQuery {
        hs: Some((edition, prefix.to_owned())),
        doc_type: doc_type.map(TypeName::new).transpose().map_err(|e| ApiError::BadRequest(e.to_string()))?,
        limit: 200,
        ..StoreQuery::default()
    };
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for _ in 0..PAGES_MAX {
        let page = service.store.query(&query)?;
        for id in page.ids {
            if out.len() >= max {
                *truncated = true;
                return Ok(out);
            }
            if !seen.insert(id) {
                continue;
            }
            if let Some(bytes) = service.store.get(&id)? {
                if let Ok(doc) = decode(&bytes) {
                    out.push(doc);
                }
            }
        }
        match page.next_cursor {
            Some(c) => query.cursor = Some(c),
            None => return Ok(out),
        }
    }
    *truncated = true;
    Ok(out)
}

fn body(doc: &SignedDocument) -> Value {
    serde_json::from_slice(doc.body()).unwrap_or(Value::Null)
}

fn digits(code: &str) -> String {
    code.chars().filter(|c| *c != '.').collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn en(v: Option<&Value>) -> Option<String> {
    let t = v?.as_object()?;
    t.get("en").or_else(|| t.values().next())?.as_str().map(str::to_owned)
}

/// Whether a code is the prefix, under it, or above it (a chapter or heading containing it).
fn related(code: &str, prefix: &str) -> bool {
    code.starts_with(prefix) || prefix.starts_with(code)
}

/// The operations of an amendment body, with the editions each applies in.
fn operations(doc: &SignedDocument, b: &Value) -> Vec<(Operation, Vec<String>)> {
    let (from, to) = (s(b, "edition_from").to_owned(), s(b, "edition_to").to_owned());
    let ops = b.get("operations").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    ops.iter()
        .map(|op| {
            let kind = op.get("target").map(|t| s(t, "kind")).unwrap_or_default().to_owned();
            let code = digits(op.get("target").map(|t| s(t, "code")).unwrap_or_default());
            let name = s(op, "op").to_owned();
            let editions = match name.as_str() {
                "delete" => vec![from.clone()],
                "insert" => vec![to.clone()],
                _ => vec![from.clone(), to.clone()],
            };
            let text = en(op.get("text")).or_else(|| en(op.get("replace")));
            let operation = Operation {
                op: name,
                kind,
                code,
                text,
                edition_from: from.clone(),
                edition_to: to.clone(),
                document: doc.id.to_hex(),
            };
            (operation, editions)
        })
        .collect()
}

fn tracker_view(service: &Service, edition: Edition, prefix: &str, page: RowsPage) -> Result<HsView, ApiError> {
    let ed = edition.to_string();
    require_held(service, edition)?;
    let mut truncated = false;
    let t = &mut truncated;

    let mut entries = BTreeMap::new();
    for doc in docs_under(service, edition, prefix, Some("hs.nomenclature"), DOCS_PER_KIND_MAX, t)? {
        let b = body(&doc);
        if s(&b, "edition") != ed {
            continue;
        }
        for e in b.get("entries").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
            let code = digits(s(e, "code"));
            if related(&code, prefix) && !entries.contains_key(&code) {
                let entry = NomenclatureEntry {
                    code: code.clone(),
                    level: e.get("level").and_then(Value::as_u64).unwrap_or_default(),
                    description: en(e.get("description")).unwrap_or_default(),
                    parent: e.get("parent").and_then(Value::as_str).map(str::to_owned),
                    document: doc.id.to_hex(),
                };
                entries.insert(code, entry);
            }
        }
    }
    let description = entries.get(prefix).map(|e| e.description.clone());
    if entries.len() > ROWS_MAX {
        *t = true;
    }
    let entries: Vec<NomenclatureEntry> = entries.into_values().take(ROWS_MAX).collect();

    let amendment_docs = docs_under(service, edition, prefix, Some("hs.amendment"), DOCS_PER_KIND_MAX, t)?;
    let mut amendments = Vec::new();
    for doc in &amendment_docs {
        let b = body(doc);
        let ops: Vec<Operation> = operations(doc, &b)
            .into_iter()
            .filter(|(op, editions)| editions.contains(&ed) && related(&op.code, prefix))
            .map(|(op, _)| op)
            .collect();
        if ops.is_empty() {
            continue;
        }
        amendments.push(AmendmentTouch {
            document: DocumentSummary::of(doc),
            set_number: b.get("set_number").and_then(Value::as_u64),
            entry_into_force: b.get("entry_into_force").and_then(Value::as_str).map(str::to_owned),
            operations: ops,
        });
    }

    // Direct correlations: rows whose code in this edition is under the prefix, paged.
    let mut corr_docs = docs_under(service, edition, prefix, Some("hs.correlation"), DOCS_PER_KIND_MAX, t)?;
    corr_docs.extend(amendment_docs);
    let direct = rows::dedup_sorted(rows::rows_in(&corr_docs, &ed, |c| c.starts_with(prefix), true));
    let rows_total = direct.len();
    let from = page.offset.min(rows_total);
    let until = from.saturating_add(page.limit).min(rows_total);
    let mut own: Vec<CorrelationRow> = direct[from..until].to_vec();
    let next_rows_offset = (until < rows_total).then_some(until);
    let mut partners = rows::partners(service, &own, &ed, prefix, t)?;
    rows::describe(service, own.iter_mut().chain(partners.iter_mut()))?;
    let (previous, next): (Vec<_>, Vec<_>) = own.drain(..).partition(|r| r.other_edition < ed);

    // One lookup per type, so that many HS data documents under a short prefix cannot use up
    // the bound before the guidance and notices are reached.
    let mut guidance = Vec::new();
    for ty in GUIDANCE_TYPES {
        for doc in docs_under(service, edition, prefix, Some(ty), DOCS_PER_KIND_MAX, t)? {
            guidance.push(documents::held_summary(service, &doc)?);
        }
    }
    let notices = docs_under(service, edition, prefix, Some("enforcement.notice"), DOCS_PER_KIND_MAX, t)?
        .iter()
        .map(|d| documents::held_summary(service, d))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HsView {
        edition: ed,
        code: prefix.to_owned(),
        description,
        entries,
        amendments,
        previous,
        next,
        partners,
        rows_total,
        rows_offset: from,
        next_rows_offset,
        guidance,
        notices,
        truncated,
    })
}

#[utoipa::path(
    get, path = "/v1/hs/{edition}/{code}", tag = "hs",
    params(HsPath, RowsParams),
    responses(
        (status = 200, description = "What the node's documents say about the code", body = HsView),
        (status = 400, description = "Malformed edition or code, or a page outside its bounds", body = ErrorBody),
        (status = 404, description = "This node holds no document of the edition (`edition_not_held`; the message \
            lists the editions it holds)", body = ErrorBody),
    )
)]
/// An HS code or prefix in an edition: description, amendments, correlations, guidance, notices.
pub async fn tracker(
    State(state): State<AppState>,
    p: Result<Path<HsPath>, PathRejection>,
    q: Result<Query<RowsParams>, QueryRejection>,
) -> Result<Json<HsView>, ApiError> {
    let Path(p) = p.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let edition = params::edition(&p.edition)?;
    let prefix = params::hs_prefix(&p.code)?;
    let page = params::query(q)?.page()?;
    let service = state.service.clone();
    let view = tokio::task::spawn_blocking(move || tracker_view(&service, edition, &prefix, page)).await??;
    Ok(Json(view))
}

/// Which page of a code's own correlation rows to show.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RowsParams {
    /// The first row to show (0 by default); the view's `next_rows_offset` is the next page's.
    pub rows_offset: Option<usize>,
    /// Rows per page, 1 to 1000 (500 by default).
    pub rows_limit: Option<usize>,
}

/// A page of rows: where it starts and how long it is.
#[derive(Debug, Clone, Copy)]
struct RowsPage {
    offset: usize,
    limit: usize,
}

impl RowsParams {
    fn page(&self) -> Result<RowsPage, ApiError> {
        let limit = self.rows_limit.unwrap_or(ROWS_PAGE_DEFAULT);
        if limit == 0 || limit > ROWS_MAX {
            return Err(ApiError::BadRequest(format!("rows_limit must be between 1 and {ROWS_MAX}")));
        }
        Ok(RowsPage { offset: self.rows_offset.unwrap_or(0), limit })
    }
}

/// Rows per page when the request does not say.
pub const ROWS_PAGE_DEFAULT: usize = 500;

/// Refuses an edition this node holds no document of, naming those it holds.
fn require_held(service: &Service, edition: Edition) -> Result<(), ApiError> {
    let held = service.store.held_editions()?;
    if held.contains(&edition) {
        return Ok(());
    }
    let names: Vec<String> = held.iter().map(ToString::to_string).collect();
    let holds = if names.is_empty() { "no HS edition yet".to_owned() } else { names.join(", ") };
    Err(ApiError::Absent {
        code: "edition_not_held",
        message: format!("this node holds no document of {edition}; it holds {holds}"),
    })
}

/// The HS editions this node holds documents of.
#[derive(Debug, Serialize, ToSchema)]
pub struct EditionsView {
    /// Oldest first, e.g. `["HS2017", "HS2022"]`.
    pub editions: Vec<String>,
}

#[utoipa::path(
    get, path = "/v1/hs/editions", tag = "hs",
    responses((status = 200, description = "The editions some held document is indexed under", body = EditionsView))
)]
/// The HS editions this node holds documents of (what the web page's edition menus offer).
pub async fn editions(State(state): State<AppState>) -> Result<Json<EditionsView>, ApiError> {
    let service = state.service.clone();
    let held = tokio::task::spawn_blocking(move || service.store.held_editions()).await??;
    Ok(Json(EditionsView { editions: held.iter().map(ToString::to_string).collect() }))
}

/// The chapter and editions of a change report.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangesParams {
    /// A chapter (2 digits), or a heading or subheading (4 or 6 digits).
    pub chapter: String,
    /// The older edition, e.g. `HS2017`.
    pub from: String,
    /// The newer edition, e.g. `HS2022`.
    pub to: String,
}

/// What changed in a chapter between two editions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangesView {
    pub chapter: String,
    pub from: String,
    pub to: String,
    /// Operations on codes in the chapter, in code order.
    pub operations: Vec<Operation>,
    /// Operation counts by kind (`insert`, `delete`, `delete_substitute`, `amend_text`).
    #[schema(value_type = Object)]
    pub counts: BTreeMap<String, usize>,
    /// The amendment sets the operations come from.
    pub documents: Vec<DocumentSummary>,
    pub truncated: bool,
}

fn changes_view(service: &Service, chapter: &str, from: Edition, to: Edition) -> Result<ChangesView, ApiError> {
    let mut truncated = false;
    let mut docs = docs_under(service, from, chapter, Some("hs.amendment"), DOCS_PER_KIND_MAX, &mut truncated)?;
    docs.extend(docs_under(service, to, chapter, Some("hs.amendment"), DOCS_PER_KIND_MAX, &mut truncated)?);
    let mut seen = HashSet::new();
    docs.retain(|d| seen.insert(d.id));
    let mut operations = Vec::new();
    let mut documents = Vec::new();
    for doc in &docs {
        let b = body(doc);
        let (Ok(ef), Ok(et)) = (Edition::parse(s(&b, "edition_from")), Edition::parse(s(&b, "edition_to"))) else {
            continue;
        };
        // Every amendment cycle between the two editions (HS2012→HS2017 and HS2017→HS2022 for
        // HS2012→HS2022).
        if ef < from || et > to {
            continue;
        }
        let before = operations.len();
        operations.extend(operations_of(doc, &b).into_iter().filter(|op| op.code.starts_with(chapter)));
        if operations.len() > before {
            documents.push(DocumentSummary::of(doc));
        }
    }
    operations.sort_by(|a, b| (&a.code, &a.op).cmp(&(&b.code, &b.op)));
    let mut counts = BTreeMap::new();
    for op in &operations {
        *counts.entry(op.op.clone()).or_default() += 1;
    }
    if operations.len() > ROWS_MAX {
        truncated = true;
        operations.truncate(ROWS_MAX);
    }
    Ok(ChangesView {
        chapter: chapter.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        operations,
        counts,
        documents,
        truncated,
    })
}

fn operations_of(doc: &SignedDocument, b: &Value) -> Vec<Operation> {
    operations(doc, b).into_iter().map(|(op, _)| op).collect()
}

#[utoipa::path(
    get, path = "/v1/hs/changes", tag = "hs",
    params(ChangesParams),
    responses(
        (status = 200, description = "Amendment operations on the chapter between the editions", body = ChangesView),
        (status = 400, description = "Malformed chapter or editions, or `from` not older than `to`", body = ErrorBody),
    )
)]
/// What changed in a chapter between two HS editions, from the amendment documents held.
pub async fn changes(
    State(state): State<AppState>,
    q: Result<Query<ChangesParams>, QueryRejection>,
) -> Result<Json<ChangesView>, ApiError> {
    let p = params::query(q)?;
    let chapter = params::hs_prefix(&p.chapter)?;
    if !matches!(chapter.len(), 2 | 4 | 6) {
        return Err(ApiError::BadRequest("chapter must be 2 digits (or a 4- or 6-digit heading)".into()));
    }
    let (from, to) = (params::edition(&p.from)?, params::edition(&p.to)?);
    if from >= to {
        return Err(ApiError::BadRequest(format!("from ({from}) must be an older edition than to ({to})")));
    }
    let service = state.service.clone();
    let view = tokio::task::spawn_blocking(move || changes_view(&service, &chapter, from, to)).await??;
    Ok(Json(view))
}
