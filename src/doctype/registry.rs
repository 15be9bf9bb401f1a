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
    options.build(&schema).unwrap_or_else(|e| panic!("schema for {name} does not compile: {e}"))
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
