//! Tightens the generated OpenAPI document where utoipa's annotations cannot say enough, so a
//! client generated from it is typed and a contract test can hold the node to it: enums and
//! patterns for every parameter the handlers check (type, edition, HS code, id, publisher),
//! the real bounds of `limit`, the answers every operation may give below its handler (401 on
//! nodes that require the token for reads, 404, 413, 414, 429), the operations endpoints, and
//! the charter upload as binary.
//!
//! Why a pass over the JSON: the parameters are checked by shared functions (`params.rs`), so
//! one table here says what each name accepts, instead of an attribute repeated per handler
//! that could drift from them. `openapi_file_is_current` and the generated client's smoke
//! test (tests/api/client.rs) keep it true.

use serde_json::{json, Map, Value};

use crate::doctype::DocType;
use crate::store::QUERY_LIMIT_MAX;

/// A document id: 64 lowercase hex digits.
pub const ID_PATTERN: &str = "^[0-9a-f]{64}$";
/// An organization id (`OrgId`).
pub const ORG_PATTERN: &str = "^[A-Z0-9][A-Z0-9-]{0,31}$";
/// An HS code or prefix: 1 to 10 digits, dots and spaces anywhere (`8806.10`, `8806 10` and
/// `880610` alike).
pub const HS_PATTERN: &str = r"^[. ]*([0-9][. ]*){1,10}$";
/// An HS edition, `HS` and its year (1988 to 2100), or the bare year.
pub const EDITION_PATTERN: &str = "^(HS)?(19[89][0-9]|20[0-9]{2}|2100)$";
/// A chapter: two digits.
pub const CHAPTER_PATTERN: &str = "^[0-9]{2}$";

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

/// The schema each checked parameter has, by name.
fn parameter_schema(name: &str) -> Option<Value> {
    let types: Vec<&str> = DocType::names();
    Some(match name {
        "type" => json!({ "type": "string", "enum": types }),
        "publisher" => json!({ "type": "string", "pattern": ORG_PATTERN }),
        "hs" | "code" => {
            json!({ "type": "string", "pattern": HS_PATTERN, "examples": ["8806.10", "880610", "8806 10"] })
        }
        "edition" | "from" | "to" => json!({ "type": "string", "pattern": EDITION_PATTERN, "examples": ["HS2022"] }),
        "id" => json!({ "type": "string", "pattern": ID_PATTERN }),
        "chapter" => json!({ "type": "string", "pattern": CHAPTER_PATTERN }),
        "limit" => json!({
            "type": "integer", "minimum": 1, "maximum": QUERY_LIMIT_MAX, "default": super::params::LIMIT_DEFAULT
        }),
        "in_force" => json!({ "type": "string", "format": "date" }),
        "q" => json!({ "type": "string", "maxLength": super::params::TEXT_LEN_MAX }),
        "cursor" => json!({ "type": "string", "pattern": "^[0-9a-f]+$", "maxLength": super::params::CURSOR_LEN_MAX }),
        _ => return None,
    })
}

/// Adds `code: response` unless the operation already documents that status.
fn add_response(op: &mut Map<String, Value>, code: &str, response: Value) {
    if let Some(Value::Object(responses)) = op.get_mut("responses") {
        responses.entry(code.to_owned()).or_insert(response);
    }
}

fn tighten_operation(path: &str, method: &str, op: &mut Map<String, Value>) {
    if let Some(Value::Array(params)) = op.get_mut("parameters") {
        for p in params.iter_mut() {
            let Some(name) = p.get("name").and_then(Value::as_str).map(str::to_owned) else { continue };
            // `Last-Event-ID` and `after` keep their own (wider) description.
            if let Some(schema) = parameter_schema(&name) {
                p["schema"] = schema;
            }
        }
    }
    let has_path_params = path.contains('{');
    let has_query = op.get("parameters").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
    if path.starts_with("/v1/") && path != "/v1/openapi.json" {
        add_response(
            op,
            "401",
            error_response(
                "Missing or wrong bearer token (reads need it where the node sets http.read_requires_token)",
            ),
        );
        // Reads are open unless the node says otherwise: no token, or the bearer token.
        op.entry("security").or_insert_with(|| json!([{}, { "bearer": [] }]));
    }
    if has_path_params {
        add_response(op, "404", error_response("Nothing of that name"));
    }
    if has_query {
        add_response(op, "414", error_response("Query string over 2048 bytes"));
    }
    if method == "post" {
        add_response(op, "408", error_response("The request body did not arrive within 15 s"));
        add_response(op, "413", error_response("Request body over the endpoint's limit"));
    }
    add_response(op, "429", error_response("Too many requests from this client; see Retry-After"));
}

fn operations_paths() -> Value {
    let status = json!({
        "type": "object", "required": ["status"],
        "properties": { "status": { "type": "string" }, "feeds": { "type": "integer" }, "network": { "type": "string" } }
    });
    json!({
        "/healthz": { "get": {
            "tags": ["operations"], "operationId": "healthz", "summary": "The process answers (no store access).",
            "responses": { "200": { "description": "Alive", "content": { "application/json": { "schema": status } } } }
        }},
        "/readyz": { "get": {
            "tags": ["operations"], "operationId": "readyz",
            "summary": "The store answers, and replication runs where this process runs it.",
            "responses": {
                "200": { "description": "Ready", "content": { "application/json": { "schema": status } } },
                "503": error_response("Not ready: `not_replicating` (a node task stopped) or `unavailable`"),
                "500": error_response("The store failed")
            }
        }},
        "/metrics": { "get": {
            "tags": ["operations"], "operationId": "metrics",
            "summary": "Prometheus metrics: OpenMetrics text when the Accept header asks for it, else the Prometheus text format 0.0.4.",
            "responses": { "200": { "description": "The metrics (docs/OPERATIONS.md §4 lists them)", "content": {
                "application/openmetrics-text": { "schema": { "type": "string" } },
                "text/plain": { "schema": { "type": "string" } }
            } } }
        }}
    })
}

/// The generated document, tightened.
pub fn tighten(doc: &mut Value) {
    if let Some(Value::Object(paths)) = doc.get_mut("paths") {
        for (path, item) in paths.iter_mut() {
            let Value::Object(item) = item else { continue };
            for (method, op) in item.iter_mut() {
                if let Value::Object(op) = op {
                    tighten_operation(path, method, op);
                }
            }
        }
        if let Value::Object(ops) = operations_paths() {
            paths.extend(ops);
        }
    }
    // The charter upload is a file, not an array of integers.
    let charter = "/paths/~1v1~1admin~1charter/post/requestBody/content/application~1octet-stream/schema";
    if let Some(schema) = doc.pointer_mut(charter) {
        *schema = json!({ "type": "string", "format": "binary", "contentMediaType": "application/octet-stream" });
    }
    if let Some(Value::Array(tags)) = doc.get_mut("tags") {
        tags.push(json!({ "name": "operations", "description": "Health, readiness, metrics, backup, charter" }));
    }
}
