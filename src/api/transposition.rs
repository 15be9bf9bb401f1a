//! `/v1/transposition`: the workbench (a national tariff in, every line classified and a draft
//! per chapter out, from the signed documents held) and the progress of members' published
//! transpositions per edition change.
//!
//! The workbench writes nothing: it answers with drafts, which the administration reviews and
//! publishes as `hs.transposition` documents through `POST /v1/documents`.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::error::ErrorBody;
use super::params;
use super::{ApiError, AppState};
use crate::document::{Edition, TypeName};
use crate::publish::walk_query;
use crate::service::Service;
use crate::store::{Query as StoreQuery, Store};
use crate::transposition::{classify, counts, drafts, load_basis, parse_tariff, BasisError, DraftScope, LineResult};

/// The editions of a transposition and whose it is.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorkbenchParams {
    /// The edition the tariff is in, e.g. `HS2017`.
    pub from: String,
    /// The edition to transpose to, e.g. `HS2022`.
    pub to: String,
    /// Whose tariff (default: this node's organization).
    pub administration: Option<String>,
    /// `national_tariff` (default) or `wto_schedule`.
    pub scope: Option<String>,
}

/// One line of the tariff, classified.
#[derive(Debug, Serialize, ToSchema)]
pub struct LineView {
    pub old: String,
    pub description: String,
    /// `unchanged`, `description_changed`, `split`, `merged`, `moved` or `deleted`.
    pub relationship: String,
    /// Candidate national lines in the new edition.
    pub new: Vec<String>,
    /// The `hs.amendment` sets behind the change.
    pub amendments: Vec<String>,
    /// Correlation rows (six digits, old → new) and the documents they come from.
    #[schema(value_type = Vec<Object>)]
    pub correlation: Vec<Value>,
    pub note: String,
}

impl LineView {
    fn of(r: &LineResult) -> LineView {
        LineView {
            old: r.old.clone(),
            description: r.description.clone(),
            relationship: r.relationship.as_str().to_owned(),
            new: r.new.clone(),
            amendments: r.amendments.iter().map(|d| d.to_hex()).collect(),
            correlation: r
                .correlation
                .iter()
                .map(|c| serde_json::json!({ "from": c.from, "to": c.to, "document": c.document.to_hex() }))
                .collect(),
            note: r.note.clone(),
        }
    }
}

/// The workbench's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkbenchView {
    pub from: String,
    pub to: String,
    /// Lines by relationship.
    #[schema(value_type = Object)]
    pub counts: BTreeMap<&'static str, usize>,
    /// Every line, in the tariff's order.
    pub lines: Vec<LineView>,
    /// One `hs.transposition` body per chapter, status `draft`, to review and publish.
    #[schema(value_type = Vec<Object>)]
    pub drafts: Vec<Value>,
    /// How many documents of each type the classification read.
    #[schema(value_type = Object)]
    pub basis_documents: BTreeMap<&'static str, usize>,
}

fn editions(from: &str, to: &str) -> Result<(Edition, Edition), ApiError> {
    let (from, to) = (params::edition(from)?, params::edition(to)?);
    if from >= to {
        return Err(ApiError::BadRequest(format!("from ({from}) must be an older edition than to ({to})")));
    }
    Ok((from, to))
}

/// Runs the workbench on a tariff file's bytes (the CLI and the API share it).
pub fn workbench(store: &Store, scope: &DraftScope, tariff: &[u8]) -> Result<WorkbenchView, ApiError> {
    let lines =
        parse_tariff(tariff).map_err(|e| ApiError::Invalid { code: "tariff_invalid", message: e.to_string() })?;
    let basis = load_basis(store, scope.from, scope.to).map_err(|e| match e {
        BasisError::Store(e) => e.into(),
        other => ApiError::Absent { code: "basis_not_held", message: other.to_string() },
    })?;
    let results = classify(&basis, &lines);
    let drafts = drafts(scope, &results).map_err(|m| ApiError::Invalid { code: "tariff_invalid", message: m })?;
    Ok(WorkbenchView {
        from: scope.from.to_string(),
        to: scope.to.to_string(),
        counts: counts(&results),
        lines: results.iter().map(LineView::of).collect(),
        drafts,
        basis_documents: basis.documents,
    })
}

#[utoipa::path(
    post, path = "/v1/transposition/workbench", tag = "transposition",
    params(WorkbenchParams),
    request_body(content = String, description = "A national tariff: CSV of national lines (8 or 10 digits, dots \
        allowed) and descriptions, an optional header row; at most 100,000 lines and the 1 MiB body bound", content_type = "text/csv"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every line classified from the held nomenclatures, amendment sets and \
            correlation tables, with candidate new lines and one draft hs.transposition per chapter; nothing is stored", body = WorkbenchView),
        (status = 400, description = "Malformed editions, administration or scope", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 404, description = "No amendment set or correlation table from `from` to `to` is held (`basis_not_held`)", body = ErrorBody),
        (status = 422, description = "The tariff file is not readable (`tariff_invalid`, naming the row)", body = ErrorBody),
    )
)]
/// Classify every line of a national tariff from edition `from` to `to` and draft its transposition.
pub(crate) async fn workbench_route(
    State(state): State<AppState>,
    q: Result<Query<WorkbenchParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<WorkbenchView>, ApiError> {
    let p = params::query(q)?;
    let (from, to) = editions(&p.from, &p.to)?;
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge { max_bytes: super::BODY_MAX_BYTES },
        _ => ApiError::BadRequest(e.body_text()),
    })?;
    let own = state.service.publisher.as_ref().map(|p| p.org.to_string());
    let administration = p.administration.or(own).ok_or_else(|| {
        ApiError::BadRequest("administration is needed on a read replica (it has no organization of its own)".into())
    })?;
    crate::document::OrgId::new(&administration).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let scope = p.scope.unwrap_or_else(|| "national_tariff".into());
    if !matches!(scope.as_str(), "national_tariff" | "wto_schedule") {
        return Err(ApiError::BadRequest("scope is national_tariff or wto_schedule".into()));
    }
    let scope = DraftScope { administration, scope, from, to };
    let service = state.service.clone();
    let view = tokio::task::spawn_blocking(move || workbench(&service.store, &scope, &body)).await??;
    Ok(Json(view))
}

/// An edition change.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProgressParams {
    /// The older edition, e.g. `HS2017`.
    pub from: String,
    /// The newer edition, e.g. `HS2022`.
    pub to: String,
}

/// One member's published transposition of an edition change.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberProgress {
    /// The organization that published it.
    pub publisher: String,
    pub administration: String,
    pub scope: String,
    /// Chapters transposed, in order.
    pub chapters: Vec<String>,
    pub lines: usize,
    /// Documents by status (`draft`, `published`, `certified`).
    #[schema(value_type = Object)]
    pub status: BTreeMap<String, usize>,
    /// Lines by relationship.
    #[schema(value_type = Object)]
    pub relationships: BTreeMap<String, usize>,
    /// The `hs.transposition` documents.
    pub documents: Vec<String>,
}

/// Who has published a transposition of an edition change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressView {
    pub from: String,
    pub to: String,
    pub members: Vec<MemberProgress>,
}

/// The members' transpositions from `from` to `to` held by this node (live documents only:
/// one superseded or withdrawn is left out).
pub fn progress(service: &Service, from: Edition, to: Edition) -> Result<ProgressView, ApiError> {
    let (a, b) = (from.to_string(), to.to_string());
    let query = StoreQuery {
        doc_type: Some(TypeName::new("hs.transposition").expect("a registered type")),
        ..StoreQuery::default()
    };
    let mut members: BTreeMap<(String, String, String), MemberProgress> = BTreeMap::new();
    let mut docs = Vec::new();
    walk_query(&service.store, query, |doc| {
        docs.push(doc);
        Ok(false)
    })?;
    for doc in docs {
        let ended = service
            .store
            .referrers(&doc.id)?
            .iter()
            .any(|(k, _)| matches!(k, crate::document::RefKind::Supersedes | crate::document::RefKind::Withdraws));
        let body: Value = serde_json::from_slice(doc.body()).unwrap_or_default();
        let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        if ended || s("edition_from") != a || s("edition_to") != b {
            continue;
        }
        let key = (doc.header.publisher.to_string(), s("administration"), s("scope"));
        let m = members.entry(key.clone()).or_insert_with(|| MemberProgress {
            publisher: key.0.clone(),
            administration: key.1.clone(),
            scope: key.2.clone(),
            chapters: Vec::new(),
            lines: 0,
            status: BTreeMap::new(),
            relationships: BTreeMap::new(),
            documents: Vec::new(),
        });
        m.chapters.push(s("chapter"));
        *m.status.entry(s("status")).or_default() += 1;
        for line in body.get("lines").and_then(Value::as_array).into_iter().flatten() {
            m.lines += 1;
            let r = line.get("relationship").and_then(Value::as_str).unwrap_or_default();
            *m.relationships.entry(r.to_owned()).or_default() += 1;
        }
        m.documents.push(doc.id.to_hex());
    }
    let members = members
        .into_values()
        .map(|mut m| {
            m.chapters = m.chapters.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
            m
        })
        .collect();
    Ok(ProgressView { from: a, to: b, members })
}

#[utoipa::path(
    get, path = "/v1/transposition/progress", tag = "transposition",
    params(ProgressParams),
    responses(
        (status = 200, description = "The members whose transposition of the edition change this node holds", body = ProgressView),
        (status = 400, description = "Malformed editions, or `from` not older than `to`", body = ErrorBody),
    )
)]
/// Which members have published their transposition of an edition change, and how far.
pub(crate) async fn progress_route(
    State(state): State<AppState>,
    q: Result<Query<ProgressParams>, QueryRejection>,
) -> Result<Json<ProgressView>, ApiError> {
    let p = params::query(q)?;
    let (from, to) = editions(&p.from, &p.to)?;
    let service = state.service.clone();
    let view = tokio::task::spawn_blocking(move || progress(&service, from, to)).await??;
    Ok(Json(view))
}
