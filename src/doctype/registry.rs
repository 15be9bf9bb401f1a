//! The known document types and their compiled schemas.

use std::sync::OnceLock;

use jsonschema::{Draft, Resource, Validator};
use serde_json::Value;

use crate::document::FieldError;

/// Why a body is not a valid document of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypeError {
    #[error("unknown document type '{0}' (known: {known})", known = DocType::names().join(", "))]
    UnknownType(String),
    #[error("{doc_type} schema version {found} is not known (this build knows version {known})")]
    SchemaVersion { doc_type: &'static str, found: u16, known: u16 },
    #[error("body is not JSON: {0}")]
    BodyNotJson(String),
    #[error("body does not match the {doc_type} schema: {errors}")]
    Schema { doc_type: &'static str, errors: String },
    #[error("body field is invalid: {0}")]
    Field(#[from] FieldError),
    #[error("the signed header's {0} do not match the body")]
    HeaderMismatch(&'static str),
}

impl TypeError {
    /// A stable machine-readable reason.
    pub fn code(&self) -> &'static str {
        match self {
            TypeError::UnknownType(_) => "unknown_type",
            TypeError::SchemaVersion { .. } => "unknown_schema_version",
            TypeError::BodyNotJson(_) => "body_not_json",
            TypeError::Schema { .. } => "schema_invalid",
            TypeError::Field(_) => "body_field_invalid",
            TypeError::HeaderMismatch(_) => "header_mismatch",
        }
    }
}

/// A document type: its name, schema version and schema text.
pub struct DocType {
    pub name: &'static str,
    pub schema_version: u16,
    pub schema: &'static str,
}

/// Every type this build knows, in a stable order.
pub static DOC_TYPES: &[DocType] = &[
    DocType { name: "hs.amendment", schema_version: 1, schema: include_str!("../../schemas/hs.amendment.json") },
    DocType { name: "hs.correlation", schema_version: 1, schema: include_str!("../../schemas/hs.correlation.json") },
    DocType { name: "hs.nomenclature", schema_version: 1, schema: include_str!("../../schemas/hs.nomenclature.json") },
    DocType {
        name: "hs.transposition",
        schema_version: 1,
        schema: include_str!("../../schemas/hs.transposition.json"),
    },
    DocType {
        name: "classification.opinion",
        schema_version: 1,
        schema: include_str!("../../schemas/classification.opinion.json"),
    },
    DocType {
        name: "classification.decision",
        schema_version: 1,
        schema: include_str!("../../schemas/classification.decision.json"),
    },
    DocType {
        name: "classification.ruling",
        schema_version: 1,
        schema: include_str!("../../schemas/classification.ruling.json"),
    },
    DocType {
        name: "enforcement.notice",
        schema_version: 1,
        schema: include_str!("../../schemas/enforcement.notice.json"),
    },
    DocType {
        name: "lifecycle.supersede",
        schema_version: 1,
        schema: include_str!("../../schemas/lifecycle.supersede.json"),
    },
    DocType {
        name: "lifecycle.correct",
        schema_version: 1,
        schema: include_str!("../../schemas/lifecycle.correct.json"),
    },
    DocType {
        name: "lifecycle.withdraw",
        schema_version: 1,
        schema: include_str!("../../schemas/lifecycle.withdraw.json"),
    },
];

pub(super) const COMMON_SCHEMA: &str = include_str!("../../schemas/common.json");
const COMMON_SCHEMA_ID: &str = "https://schemas.entrepot.invalid/common/1";
/// The sealed payload of an enforcement notice: not a document type (it is never signed or
/// stored as a document), but the notice schema borrows its content definition for the inline
/// payload of public notices, so every validator can resolve it.
const NOTICE_PAYLOAD_SCHEMA: &str = include_str!("../../schemas/enforcement.notice.payload.json");
const NOTICE_PAYLOAD_SCHEMA_ID: &str = "https://schemas.entrepot.invalid/enforcement.notice.payload/1";

/// Errors reported from one failed validation, at most this many, so a hostile body cannot make
/// an unbounded error message.
const SCHEMA_ERRORS_REPORTED_MAX: usize = 5;

/// Compiles every schema now rather than on the first document. A node calls this at start:
/// compiling takes long enough (tens to hundreds of milliseconds) that, done lazily, it
/// delays the first documents a node receives.
pub fn compile_schemas() {
    validators();
    notice_payload_validator();
}

/// Compiles one embedded schema with the shared schemas it may refer to.
fn compile(name: &str, schema: &str) -> Validator {
    static SHARED: OnceLock<[(&str, Value); 2]> = OnceLock::new();
    let shared = SHARED.get_or_init(|| {
        [
            (COMMON_SCHEMA_ID, serde_json::from_str(COMMON_SCHEMA).expect("schemas/common.json is JSON")),
            (
                NOTICE_PAYLOAD_SCHEMA_ID,
                serde_json::from_str(NOTICE_PAYLOAD_SCHEMA).expect("schemas/enforcement.notice.payload.json is JSON"),
            ),
        ]
    });
    let schema: Value = serde_json::from_str(schema).expect("embedded schema is JSON");
    let mut options = jsonschema::options().with_draft(Draft::Draft202012);
    for (id, contents) in shared {
        options =
            options.with_resource(*id, Resource::from_contents(contents.clone()).expect("shared schema resource"));
    }
    build_embedded(options, schema).unwrap_or_else(|e| panic!("schema for {name} does not compile: {e}"))
}

/// Builds the validator of an embedded schema (one with an `$id`) as a resource behind a root
/// that is only a `$ref` to it.
///
/// Why: jsonschema 0.30 checks every schema it builds against the draft's meta-schema, with
/// one meta-schema validator kept for the life of the process, whose recursive references
/// compile lazily, once more for every level of the schema being checked, and are never
/// freed. Checking this crate's schemas grew it by ~125 MiB (`hs.amendment` 49 MiB,
/// `enforcement.notice` 48, the notice payload 15, `hs.transposition` 12; docs/PERFORMANCE.md,
/// issue 16): most of a node's memory. The root it checks now is one level deep. A `$ref` to a
/// whole resource validates exactly as that resource does, so what is accepted and refused,
/// and the errors' messages and instance paths, are unchanged; the schemas themselves are
/// checked against the meta-schema by the tests (`embedded_schemas_are_valid_json_schemas`).
pub(crate) fn build_embedded(options: jsonschema::ValidationOptions, schema: Value) -> Result<Validator, String> {
    let id = schema.get("$id").and_then(Value::as_str).expect("an embedded schema has an $id").to_owned();
    let root = serde_json::json!({ "$ref": id });
    let resource = Resource::from_contents(schema).map_err(|e| e.to_string())?;
    options.with_resource(id, resource).build(&root).map_err(|e| e.to_string())
}

fn validators() -> &'static [Validator] {
    static VALIDATORS: OnceLock<Vec<Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| DOC_TYPES.iter().map(|ty| compile(ty.name, ty.schema)).collect())
}

fn notice_payload_validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| compile("enforcement.notice.payload", NOTICE_PAYLOAD_SCHEMA))
}

/// The first few schema errors of `value`, joined, or `None` when it is valid.
fn schema_errors(validator: &Validator, value: &Value) -> Option<String> {
    if validator.is_valid(value) {
        return None;
    }
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(SCHEMA_ERRORS_REPORTED_MAX)
        .map(|e| format!("at '{}': {}", e.instance_path, e))
        .collect();
    Some(errors.join("; "))
}

/// Validates the sealed payload of an enforcement notice against
/// `schemas/enforcement.notice.payload.json`; the error lists the first few violations.
pub fn validate_notice_payload(payload: &Value) -> Result<(), String> {
    schema_errors(notice_payload_validator(), payload).map_or(Ok(()), Err)
}

impl DocType {
    /// Looks a type up by name.
    pub fn by_name(name: &str) -> Result<&'static DocType, TypeError> {
        DOC_TYPES.iter().find(|t| t.name == name).ok_or_else(|| TypeError::UnknownType(name.to_owned()))
    }

    /// All type names.
    pub fn names() -> Vec<&'static str> {
        DOC_TYPES.iter().map(|t| t.name).collect()
    }

    fn index(&self) -> usize {
        DOC_TYPES.iter().position(|t| t.name == self.name).expect("type is in the registry")
    }

    /// Validates a body against this type's schema.
    pub fn validate(&self, body: &Value) -> Result<(), TypeError> {
        match schema_errors(&validators()[self.index()], body) {
            None => Ok(()),
            Some(errors) => Err(TypeError::Schema { doc_type: self.name, errors }),
        }
    }

    /// Whether this type is a lifecycle act on an earlier document.
    pub fn is_lifecycle(&self) -> bool {
        self.name.starts_with("lifecycle.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each type's schema built the way jsonschema builds it by default (the root checked
    /// against the meta-schema), for comparison with [`build_embedded`].
    fn direct(schema: &str) -> Validator {
        let mut options = jsonschema::options().with_draft(Draft::Draft202012);
        for (id, text) in [(COMMON_SCHEMA_ID, COMMON_SCHEMA), (NOTICE_PAYLOAD_SCHEMA_ID, NOTICE_PAYLOAD_SCHEMA)] {
            let contents = serde_json::from_str(text).expect("JSON");
            options = options.with_resource(id, Resource::from_contents(contents).expect("resource"));
        }
        options.build(&serde_json::from_str(schema).expect("JSON")).expect("compiles")
    }

    #[test]
    fn embedded_schemas_are_valid_json_schemas() {
        // `build_embedded` leaves this check to the tests.
        let others = [
            ("common", COMMON_SCHEMA),
            ("enforcement.notice.payload", NOTICE_PAYLOAD_SCHEMA),
            ("charter", include_str!("../../schemas/charter.json")),
        ];
        for (name, text) in DOC_TYPES.iter().map(|t| (t.name, t.schema)).chain(others) {
            let schema: Value = serde_json::from_str(text).expect("JSON");
            if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
                panic!("schemas/{name}.json is not a valid JSON Schema (2020-12): {e} at {}", e.instance_path);
            }
        }
    }

    #[test]
    fn a_schema_behind_a_ref_accepts_and_refuses_what_it_did_with_the_same_errors() {
        let amendment = json!({
            "title": { "en": "New heading 8549" },
            "recommendation": { "reference": "Article 16 Recommendation", "notified": "2019-07-04" },
            "edition_from": "HS2017", "edition_to": "HS2022", "set_number": 1,
            "entry_into_force": "2022-01-01", "validity": { "from": "2022-01-01" },
            "operations": [{ "op": "insert", "target": { "kind": "heading", "code": "8549" }, "text": { "en": "Waste." } }],
            "references": [{ "kind": "cites", "id": "ab".repeat(32) }]
        });
        let ruling = json!({
            "title": { "en": "A drone" }, "reference": "FR-2024-1",
            "product": { "description": { "en": "Quadcopter with a camera." } },
            "classification": { "edition": "HS2022", "code": "8806.22" },
            "gir": ["1", "3 (b)"], "reasons": { "en": "Heading 8806." }, "validity": { "from": "2022-01-01" }
        });
        // Valid bodies, each with every top-level member dropped, retyped or replaced in turn.
        let mut bodies = vec![json!({}), json!([]), json!("x"), json!(null)];
        for body in [amendment, ruling] {
            bodies.push(body.clone());
            for (name, value) in body.as_object().expect("object") {
                let mut without = body.clone();
                without.as_object_mut().expect("object").remove(name);
                bodies.push(without);
                for replaced in [json!(1), json!("HS1999"), json!({ "en": "" }), json!([value.clone()]), json!({})] {
                    let mut changed = body.clone();
                    changed[name] = replaced;
                    bodies.push(changed);
                }
            }
            let mut extra = body.clone();
            extra["unknown"] = json!(true);
            bodies.push(extra);
        }
        for ty in DOC_TYPES {
            let (old, new) = (direct(ty.schema), compile(ty.name, ty.schema));
            for body in &bodies {
                let errors = |v: &Validator| {
                    v.iter_errors(body).map(|e| format!("{}: {e}", e.instance_path)).collect::<Vec<_>>()
                };
                assert_eq!(old.is_valid(body), new.is_valid(body), "{}: {body}", ty.name);
                assert_eq!(errors(&old), errors(&new), "{}: {body}", ty.name);
            }
        }
    }
}
