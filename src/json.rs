//! Strict JSON for signed content (document bodies, charter bodies, sealed payloads): the one
//! parser every node applies to bytes that a signature covers, so that every node, and every
//! other implementation that follows docs/PROTOCOL.md §5.2, reads one signed byte string as
//! one value or refuses it alike.
//!
//! RFC 8259 leaves the meaning of an object with a repeated name open: most parsers keep the
//! last value, some the first, some keep both. A signed body with `{"code": "8806", "code":
//! "8525"}` could then mean two things to two readers of the same signature, so a repeated name
//! (compared after escapes are decoded: `"a"` and `"\u0061"` are the same name) is refused.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Most levels of arrays and objects nested in one another: serde_json's own recursion limit,
/// stated here because it decides which bodies are JSON at all (a test pins it, so a change of
/// serde_json cannot move it unnoticed).
pub const NESTING_MAX: usize = 127;

/// Why bytes are not strict JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JsonError(String);

/// Parses `bytes` as one JSON value, refusing what [`serde_json::from_slice`] refuses and also
/// any object in which a name appears twice.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = Strict::deserialize(&mut de).map_err(|e| JsonError(e.to_string()))?;
    de.end().map_err(|e| JsonError(e.to_string()))?;
    Ok(value.0)
}

/// A value whose objects were checked for repeated names while it was read.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Strict, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // JSON text has no NaN or infinity; serde_json refuses a literal out of range itself.
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("number is not finite"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut fields = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if fields.contains_key(&name) {
                return Err(de::Error::custom(format!("the name '{name}' appears twice in one object")));
            }
            let Strict(v) = map.next_value()?;
            fields.insert(name, v);
        }
        Ok(Value::Object(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_name_is_refused_wherever_it_is_nested() {
        for text in [
            r#"{"a": 1, "a": 1}"#,
            r#"{"a": 1, "b": {"c": 1, "c": 2}}"#,
            r#"[{"x": [], "x": []}]"#,
            r#"{"a": 1, "\u0061": 2}"#,
        ] {
            let err = parse_strict(text.as_bytes()).expect_err(text);
            assert!(err.to_string().contains("appears twice"), "{text}: {err}");
        }
    }

    #[test]
    fn strict_json_reads_what_serde_json_reads_when_no_name_repeats() {
        for text in [r#"{"a": 1, "b": [1, -2, 3.5, "x", null, true], "c": {"a": 2}}"#, "[]", "\"s\"", " 0 "] {
            let strict = parse_strict(text.as_bytes()).unwrap();
            let loose: Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict, loose, "{text}");
        }
    }

    #[test]
    fn what_serde_json_refuses_strict_json_refuses() {
        for text in ["", "{", "{} {}", "[1,]", "\u{feff}{}", r#""\ud800""#, "1e400", "{'a': 1}", "[\"\u{1}\"]"] {
            assert!(parse_strict(text.as_bytes()).is_err(), "{text:?} was accepted");
        }
        assert!(parse_strict(b"[\"\xff\"]").is_err(), "invalid UTF-8 was accepted");
    }

    #[test]
    fn nesting_is_bounded_at_its_stated_depth() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse_strict(nested(NESTING_MAX).as_bytes()).is_ok());
        assert!(parse_strict(nested(NESTING_MAX + 1).as_bytes()).is_err());
    }
}
