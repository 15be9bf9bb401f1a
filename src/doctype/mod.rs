//! Document types: their JSON Schemas (embedded from `schemas/`), and the projection of a body
//! onto the header fields that are indexed (HS subjects, validity, references).
//!
//! A header is a signed index card of its body. At publish the card is computed from the body;
//! at ingest it is computed again and must match what was signed, so no publisher can index a
//! document under codes or dates its body does not state. Pure: no I/O.

mod fast;
mod integrity;
mod project;
mod registry;

pub use integrity::{
    chapters_needed, check as check_integrity, dotted, editions_named, natural_key, Finding, Held, DATE_YEAR_MAX,
    DATE_YEAR_MIN, KNOWN_EDITIONS,
};
pub use project::{project, title_of, Projection};
pub(crate) use registry::build_embedded;
pub use registry::{compile_schemas, validate_notice_payload, DocType, TypeError, DOC_TYPES};

use crate::document::{Header, SignedDocument};

/// Validates `doc`'s body against its type's schema and checks that the signed header matches
/// the projection of the body.
///
/// The classification types take a fast path first (`fast.rs`: typed, from the bytes), which
/// only ever accepts; anything it does not accept, or whose header does not match, goes the
/// schema path, which decides and names the error. Both accept the same bodies with the same
/// projection (`fast_tests.rs`).
pub fn check_document(doc: &SignedDocument) -> Result<(), TypeError> {
    let ty = DocType::by_name(doc.header.doc_type.as_str())?;
    if doc.header.schema_version != ty.schema_version {
        return Err(TypeError::SchemaVersion {
            doc_type: ty.name,
            found: doc.header.schema_version,
            known: ty.schema_version,
        });
    }
    if matches!(ty.name, "classification.opinion" | "classification.decision" | "classification.ruling") {
        if let Some(projection) = fast::classification(doc.body()) {
            if check_header(&doc.header, &projection).is_ok() {
                return Ok(());
            }
        }
    }
    check_document_by_schema(ty, doc)
}

/// [`check_document`] by the JSON Schema and the projection of the parsed body: the
/// specification's own path, for every type.
fn check_document_by_schema(ty: &DocType, doc: &SignedDocument) -> Result<(), TypeError> {
    let body = crate::json::parse_strict(doc.body()).map_err(|e| TypeError::BodyNotJson(e.to_string()))?;
    ty.validate(&body)?;
    let projection = project(ty, &body)?;
    check_header(&doc.header, &projection)
}

fn check_header(header: &Header, p: &Projection) -> Result<(), TypeError> {
    if header.subjects != p.subjects {
        return Err(TypeError::HeaderMismatch("HS subjects"));
    }
    if header.validity != p.validity {
        return Err(TypeError::HeaderMismatch("validity"));
    }
    if header.references != p.references {
        return Err(TypeError::HeaderMismatch("references"));
    }
    Ok(())
}
