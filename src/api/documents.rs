//! `/v1/documents`: query, read (decoded, re-verified, linked both ways), raw bytes, sealed
//! payloads of enforcement notices, publish.
//!
//! Why every store call runs in `spawn_blocking`: RocksDB reads and the fsync of a publish
//! block; on the async workers they would stall every other request, the event streams first.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::error::ErrorBody;
use super::params::{self, ListParams};
use super::views::{
    ChainEntry, DocumentList, DocumentSummary, DocumentView, IntegrityFlag, Link, PublishedView, SealedPayloadView,
    SignedBytes, Verification,
};
use super::{lifecycle, ApiError, AppState};
use crate::doctype::{check_integrity, project, DocType};
use crate::document::{decode, verify, DocumentId, RefKind, SignedDocument};
use crate::notice::{sealed_ref, NoticeError, NOTICE_TYPE};
use crate::publish::held_for;
use crate::service::{check_idempotency_key, Service};

/// Most steps followed each way along a supersession chain.
pub const CHAIN_STEPS_MAX: usize = 16;
/// Most referrers listed for one document.
pub const REFERRERS_MAX: usize = 256;

#[utoipa::path(
    get, path = "/v1/documents", tag = "documents",
    params(ListParams),
    responses(
        (status = 200, description = "One page of matching documents", body = DocumentList),
        (status = 400, description = "A filter is malformed", body = ErrorBody),
    )
)]
/// Query documents by type, publisher, HS code, force, issue time and title text.
pub async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<DocumentList>, ApiError> {
    let query = params::query(q)?.to_query()?;
    let service = state.service.clone();
    let list = tokio::task::spawn_blocking(move || -> Result<DocumentList, ApiError> {
        let page = service.store.query(&query)?;
        let mut documents = Vec::with_capacity(page.ids.len());
        for id in &page.ids {
            if let Some(doc) = load(&service, id)? {
                documents.push(held_summary(&service, &doc)?);
            }
        }
        Ok(DocumentList { documents, next_cursor: page.next_cursor, order: page.order })
    })
    .await??;
    Ok(Json(list))
}

/// A document id in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// Document id: SHA-256 of the signed envelope, 64 hex digits.
    pub id: String,
}

pub(crate) fn parse_id(p: Result<Path<IdPath>, PathRejection>) -> Result<DocumentId, ApiError> {
    let Path(p) = p.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if p.id.len() != 64 {
        return Err(ApiError::BadRequest("a document id is 64 hex digits".into()));
    }
    DocumentId::from_hex(&p.id).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// A stored document, decoded. A stored envelope that no longer decodes is store corruption.
pub(crate) fn load(service: &Service, id: &DocumentId) -> Result<Option<SignedDocument>, ApiError> {
    match service.store.get(id)? {
        Some(bytes) => {
            decode(&bytes).map(Some).map_err(|e| ApiError::Store(format!("stored document {id} does not decode: {e}")))
        }
        None => Ok(None),
    }
}

fn not_held(id: &DocumentId) -> ApiError {
    ApiError::NotFound(format!("this node holds no document {id}"))
}

#[utoipa::path(
    get, path = "/v1/documents/{id}", tag = "documents",
    params(IdPath),
    responses(
        (status = 200, description = "The document, re-verified, with its references both ways", body = DocumentView),
        (status = 400, description = "The id is not 64 hex digits", body = ErrorBody),
        (status = 404, description = "Not held by this node", body = ErrorBody),
    )
)]
/// A document: header, body, verification, references both ways and supersession chain.
pub async fn get_one(
    State(state): State<AppState>,
    p: Result<Path<IdPath>, PathRejection>,
) -> Result<Json<DocumentView>, ApiError> {
    let id = parse_id(p)?;
    let service = state.service.clone();
    let view = tokio::task::spawn_blocking(move || view(&service, &id)).await??;
    Ok(Json(view))
}

fn view(service: &Service, id: &DocumentId) -> Result<DocumentView, ApiError> {
    let bytes = service.store.get(id)?.ok_or_else(|| not_held(id))?;
    let doc = decode(&bytes).map_err(|e| ApiError::Store(format!("stored document {id} does not decode: {e}")))?;
    let verification = verification(service, &doc);
    let body: Value = serde_json::from_slice(doc.body()).unwrap_or(Value::Null);
    let mut references = Vec::new();
    for r in &doc.header.references {
        references.push(link(service, r.kind, &r.target)?);
    }
    let mut referred_by = Vec::new();
    for (kind, source) in service.store.referrers(id)?.into_iter().take(REFERRERS_MAX) {
        referred_by.push(link(service, kind, &source)?);
    }
    let today = chrono::Utc::now().date_naive();
    let in_force_today = service.store.in_force(&doc.header, id, today)?;
    let supersession = chain(service, &doc)?;
    let sealed_payload = match sealed_ref(&doc) {
        Some(seal) => Some(SealedPayloadView::of(&seal, service.store.has_payload(id)?)),
        None => None,
    };
    let integrity = integrity_flags(service, &doc)?;
    Ok(DocumentView {
        integrity,
        summary: held_summary(service, &doc)?,
        lifecycle: lifecycle::events(service, id)?,
        size_bytes: bytes.len(),
        header: serde_json::to_value(&doc.header).unwrap_or(Value::Null),
        body,
        verification,
        in_force_today,
        references,
        referred_by,
        supersession,
        sealed_payload,
    })
}

/// Re-verifies a held document now: signature, network, and the keyring's authority.
fn verification(service: &Service, doc: &SignedDocument) -> Verification {
    match verify(doc.clone(), &service.network_id) {
        Ok(v) => match service.keyring().check(&v.header, crate::clock::now_ms()) {
            Ok(()) => Verification {
                valid: true,
                signature: "ok".into(),
                keyring: "authorized".into(),
                code: None,
                reason: None,
            },
            Err(e) => Verification {
                valid: false,
                signature: "ok".into(),
                keyring: "not_authorized".into(),
                code: Some(e.code().into()),
                reason: Some(e.to_string()),
            },
        },
        Err(e) => Verification {
            valid: false,
            signature: "failed".into(),
            keyring: "not_checked".into(),
            code: Some(e.code().into()),
            reason: Some(e.to_string()),
        },
    }
}

/// The summary of a held document with what only this node can say of it now: whether it
/// verifies, and whether a held act superseded, corrected or withdrew it.
pub(crate) fn held_summary(service: &Service, doc: &SignedDocument) -> Result<DocumentSummary, ApiError> {
    let mut s = DocumentSummary::of(doc);
    s.verified = Some(verification(service, doc).valid);
    s.lifecycle = lifecycle::state(&service.store, &doc.id)?;
    Ok(s)
}

/// The integrity findings on a held document, against what this node holds now.
fn integrity_flags(service: &Service, doc: &SignedDocument) -> Result<Vec<IntegrityFlag>, ApiError> {
    let Ok(ty) = DocType::by_name(doc.header.doc_type.as_str()) else { return Ok(Vec::new()) };
    let Ok(body) = serde_json::from_slice::<Value>(doc.body()) else { return Ok(Vec::new()) };
    let Ok(projection) = project(ty, &body) else { return Ok(Vec::new()) };
    let held = held_for(&service.store, &body, &projection)?;
    let today = chrono::Utc::now().date_naive();
    Ok(check_integrity(ty, &body, &projection, today, &held)
        .iter()
        .map(|f| IntegrityFlag { code: f.code().to_owned(), message: f.to_string() })
        .collect())
}

fn kind_name(kind: RefKind) -> String {
    match kind {
        RefKind::Supersedes => "supersedes",
        RefKind::Corrects => "corrects",
        RefKind::Withdraws => "withdraws",
        RefKind::Cites => "cites",
    }
    .into()
}

fn link(service: &Service, kind: RefKind, other: &DocumentId) -> Result<Link, ApiError> {
    let doc = load(service, other)?;
    Ok(Link {
        kind: kind_name(kind),
        id: other.to_hex(),
        held: doc.is_some(),
        document: doc.as_ref().map(|d| held_summary(service, d)).transpose()?,
    })
}

/// The `replacement` named by a `lifecycle.supersede` act, if the document is one.
fn replacement_of(act: &SignedDocument) -> Option<DocumentId> {
    if act.header.doc_type.as_str() != "lifecycle.supersede" {
        return None;
    }
    let body: Value = serde_json::from_slice(act.body()).ok()?;
    DocumentId::from_hex(body.get("replacement")?.as_str()?).ok()
}

/// The next document after `doc` in its supersession chain, and the act that made the step.
///
/// A document is superseded either by a later document that carries a `supersedes` reference
/// to it, or by a `lifecycle.supersede` act, whose `replacement` is the successor.
fn successor(service: &Service, id: &DocumentId) -> Result<Option<(SignedDocument, Option<DocumentId>)>, ApiError> {
    for (kind, source) in service.store.referrers(id)? {
        if kind != RefKind::Supersedes {
            continue;
        }
        let Some(by) = load(service, &source)? else { continue };
        if by.header.doc_type.as_str() == "lifecycle.supersede" {
            if let Some(next) = replacement_of(&by) {
                if let Some(next_doc) = load(service, &next)? {
                    return Ok(Some((next_doc, Some(source))));
                }
            }
            continue;
        }
        return Ok(Some((by, None)));
    }
    Ok(None)
}

/// The document before `doc` in its supersession chain, and the act that made the step.
///
/// Either `doc` itself references its predecessor with `supersedes`, or a `lifecycle.supersede`
/// act that names `doc` as `replacement` also cites it (acts are found through the reference
/// index, so an act that does not reference its replacement is found only from the older side).
fn predecessor(
    service: &Service,
    doc: &SignedDocument,
) -> Result<Option<(SignedDocument, Option<DocumentId>)>, ApiError> {
    if doc.header.doc_type.as_str() != "lifecycle.supersede" {
        for r in &doc.header.references {
            if r.kind == RefKind::Supersedes {
                if let Some(before) = load(service, &r.target)? {
                    return Ok(Some((before, None)));
                }
            }
        }
    }
    for (_, source) in service.store.referrers(&doc.id)? {
        let Some(act) = load(service, &source)? else { continue };
        if replacement_of(&act) == Some(doc.id) {
            let target = act.header.references.iter().find(|r| r.kind == RefKind::Supersedes);
            if let Some(target) = target {
                if let Some(before) = load(service, &target.target)? {
                    return Ok(Some((before, Some(source))));
                }
            }
        }
    }
    Ok(None)
}

fn chain(service: &Service, doc: &SignedDocument) -> Result<Vec<ChainEntry>, ApiError> {
    let mut seen = HashSet::from([doc.id]);
    let mut before = Vec::new();
    let mut at = doc.clone();
    while before.len() < CHAIN_STEPS_MAX {
        let Some((prev, via)) = predecessor(service, &at)? else { break };
        if !seen.insert(prev.id) {
            break;
        }
        before.push(ChainEntry {
            relation: "predecessor".into(),
            document: held_summary(service, &prev)?,
            via_act: via.map(|v| v.to_hex()),
        });
        at = prev;
    }
    before.reverse();
    let mut out = before;
    out.push(ChainEntry { relation: "this".into(), document: held_summary(service, doc)?, via_act: None });
    let mut at = doc.id;
    for _ in 0..CHAIN_STEPS_MAX {
        let Some((next, via)) = successor(service, &at)? else { break };
        if !seen.insert(next.id) {
            break;
        }
        at = next.id;
        out.push(ChainEntry {
            relation: "successor".into(),
            document: held_summary(service, &next)?,
            via_act: via.map(|v| v.to_hex()),
        });
    }
    // A lone document is not a chain.
    if out.len() == 1 {
        out.clear();
    }
    Ok(out)
}

#[utoipa::path(
    get, path = "/v1/documents/{id}/raw", tag = "documents",
    params(IdPath),
    responses(
        (status = 200, description = "The exact signed envelope", content_type = "application/octet-stream", body = SignedBytes),
        (status = 400, description = "The id is not 64 hex digits", body = ErrorBody),
        (status = 404, description = "Not held by this node", body = ErrorBody),
    )
)]
/// The exact signed bytes, to verify offline (see docs/PROTOCOL.md).
pub async fn raw(State(state): State<AppState>, p: Result<Path<IdPath>, PathRejection>) -> Result<Response, ApiError> {
    let id = parse_id(p)?;
    let service = state.service.clone();
    let bytes = tokio::task::spawn_blocking(move || service.store.get(&id)).await??.ok_or_else(|| not_held(&id))?;
    let disposition = format!("attachment; filename=\"{id}.entrepot\"");
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        bytes,
    )
        .into_response())
}

#[utoipa::path(
    get, path = "/v1/documents/{id}/payload", tag = "documents",
    params(IdPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sealed payload of an enforcement notice: the exact bytes its signed body commits to \
            (sealed_payload.sha256 and .bytes), UTF-8 JSON per schemas/enforcement.notice.payload.json", content_type = "application/json", body = Object),
        (status = 400, description = "The id is not 64 hex digits", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token (always needed: a payload is for the notice's audience only)", body = ErrorBody),
        (status = 404, description = "Not held by this node (`not_found`), not a sealed notice (`not_sealed`), or a sealed notice \
            whose payload this node does not hold (`payload_not_held`)", body = ErrorBody),
    )
)]
/// The sealed payload of an enforcement notice, if this node holds it (needs the bearer token).
pub async fn payload(
    State(state): State<AppState>,
    p: Result<Path<IdPath>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = parse_id(p)?;
    let service = state.service.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let doc = load(&service, &id)?.ok_or_else(|| not_held(&id))?;
        if sealed_ref(&doc).is_none() {
            let e = NoticeError::NotSealed(id);
            return Err(ApiError::Absent { code: e.code(), message: e.to_string() });
        }
        service.store.payload(&id)?.ok_or_else(|| ApiError::Absent {
            code: "payload_not_held",
            message: format!(
                "this node does not hold the sealed payload of notice {id}: only the notice's audience receives it, \
                 and this node's organization is not in it or has not received it yet"
            ),
        })
    })
    .await??;
    Ok(([(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// The type of a document to publish.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PublishParams {
    /// Document type, e.g. `classification.opinion`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub doc_type: String,
    /// Only for `enforcement.notice` whose handling is not public: take the body's `payload`
    /// out, seal it (a fresh nonce), sign the body with its commitment (`sealed_payload`), and
    /// store the sealed payload beside the document, for the notice's audience only.
    #[serde(default)]
    pub seal_payload: bool,
}

#[utoipa::path(
    post, path = "/v1/documents", tag = "documents",
    params(PublishParams, ("Idempotency-Key" = Option<String>, Header, description = "A client's key for this publish \
        (1 to 128 visible ASCII characters): a retry with the same key and body returns the first attempt's document; \
        the key with another body is refused. The node remembers the latest 10,000 keys, not across restarts (the same \
        body is found in the store all the same).")),
    request_body(content = Object, description = "The document body (JSON), per the type's schema in schemas/; with \
        seal_payload=true, a notice body whose 'payload' is sealed and kept out of the signed body", content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Already published: the same body of the same type, or a retry under the same \
            `Idempotency-Key`; nothing new was signed (`existing: true`)", body = PublishedView),
        (status = 201, description = "Validated, signed, stored durably and announced", body = PublishedView),
        (status = 400, description = "Unknown type or malformed parameters", body = ErrorBody),
        (status = 401, description = "Missing or wrong bearer token", body = ErrorBody),
        (status = 403, description = "This node is a read replica", body = ErrorBody),
        (status = 409, description = "A live document of this publisher already holds the type's natural key \
            (`natural_key_taken`: an amendment set's recommendation and number, a nomenclature's edition and chapter, \
            a transposition's editions and scope); supersede or correct it instead", body = ErrorBody),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorBody),
        (status = 422, description = "The body is not a valid document of the type, or its payload cannot be sealed \
            (`payload_required`, `payload_invalid`, `payload_too_large`, `not_sealable`), it names an HS code its edition's \
            held nomenclature lacks (`hs_code_unknown`), an edition that does not exist (`edition_unknown`) or a date that \
            is not real (`date_implausible`), or its `Idempotency-Key` was used for another request \
            (`idempotency_key_reused`)", body = ErrorBody),
    )
)]
/// Publish a document as this node's organization (needs the bearer token). Idempotent: the
/// same body (as a JSON value) of the same type, or a retry under the same `Idempotency-Key`,
/// returns the document already published (200, `existing: true`) instead of signing another.
pub async fn publish(
    State(state): State<AppState>,
    q: Result<Query<PublishParams>, QueryRejection>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<PublishedView>), ApiError> {
    let p = params::query(q)?;
    let doc_type = params::doc_type(&p.doc_type)?;
    if p.seal_payload && doc_type.as_str() != NOTICE_TYPE {
        return Err(ApiError::BadRequest(format!("seal_payload applies only to {NOTICE_TYPE} documents")));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key is not visible ASCII".into()))?;
            check_idempotency_key(k).map_err(ApiError::BadRequest)?;
            Some(k.to_owned())
        }
    };
    if key.is_some() && p.seal_payload {
        return Err(ApiError::BadRequest(
            "Idempotency-Key is not supported with seal_payload (a sealed body is new each time)".into(),
        ));
    }
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::BodyTooLarge { max_bytes: super::BODY_MAX_BYTES },
        _ => ApiError::BadRequest(e.body_text()),
    })?;
    let service: Arc<Service> = state.service.clone();
    if service.publisher.is_none() {
        return Err(ApiError::ReadReplica);
    }
    let published = if p.seal_payload {
        let (body, payload) = split_payload(&body)?;
        tokio::task::spawn_blocking(move || service.publish_notice(&body, &payload)).await??
    } else if let Some(key) = key {
        tokio::task::spawn_blocking(move || service.publish_with_key(&key, doc_type.as_str(), &body)).await??
    } else {
        tokio::task::spawn_blocking(move || service.publish(doc_type.as_str(), &body)).await??
    };
    let publisher = state.service.publisher.as_ref().map(|p| p.org.to_string()).unwrap_or_default();
    let status = if published.existing { StatusCode::OK } else { StatusCode::CREATED };
    Ok((
        status,
        Json(PublishedView {
            id: published.id.to_hex(),
            publisher,
            seq: published.seq.0,
            existing: published.existing,
            sealed_payload: published.sealed_payload.map(|s| SealedPayloadView::of(&s, true)),
        }),
    ))
}

/// Takes `payload` out of a notice body: (the body without it, the payload).
fn split_payload(body: &[u8]) -> Result<(Vec<u8>, Value), ApiError> {
    let invalid = |code: &'static str, message: String| ApiError::Invalid { code, message };
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(invalid("body_not_json", "the body is not a JSON object".into()));
    };
    let payload = fields.remove("payload").ok_or_else(|| {
        invalid("payload_required", "seal_payload=true needs the payload to seal in the body's 'payload'".into())
    })?;
    Ok((serde_json::to_vec(&Value::Object(fields)).expect("a JSON value serializes"), payload))
}
