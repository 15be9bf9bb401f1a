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

const COMMON_SCHEMA: &str = include_str!("../../schemas/common.json");
const COMMON_SCHEMA_ID: &str = "https://schemas.entrepot.invalid/common/1";

/// Errors reported from one failed validation, at most this many, so a hostile body cannot make
/// an unbounded error message.
const SCHEMA_ERRORS_REPORTED_MAX: usize = 5;

/// Compiles every schema now rather than on the first document. A node calls this at start:
/// compiling takes long enough (tens to hundreds of milliseconds) that, done lazily, it
/// delays the first documents a node receives.
pub fn compile_schemas() {
    validators();
}

fn validators() -> &'static [Validator] {
    static VALIDATORS: OnceLock<Vec<Validator>> = OnceLock::new();
    VALIDATORS.get_or_init(|| {
        let common: Value = serde_json::from_str(COMMON_SCHEMA).expect("schemas/common.json is JSON");
        DOC_TYPES
            .iter()
            .map(|ty| {
                let schema: Value = serde_json::from_str(ty.schema).expect("embedded schema is JSON");
                let common = Resource::from_contents(common.clone()).expect("common schema resource");
                jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .with_resource(COMMON_SCHEMA_ID, common)
                    .build(&schema)
                    .unwrap_or_else(|e| panic!("schema for {} does not compile: {e}", ty.name))
            })
            .collect()
    })
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
        let validator = &validators()[self.index()];
        if validator.is_valid(body) {
            return Ok(());
        }
        let errors: Vec<String> = validator
            .iter_errors(body)
            .take(SCHEMA_ERRORS_REPORTED_MAX)
            .map(|e| format!("at '{}': {}", e.instance_path, e))
            .collect();
        Err(TypeError::Schema { doc_type: self.name, errors: errors.join("; ") })
    }

    /// Whether this type is a lifecycle act on an earlier document.
    pub fn is_lifecycle(&self) -> bool {
        self.name.starts_with("lifecycle.")
    }
}
