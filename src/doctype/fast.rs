//! A fast path for the schema check and header projection of the classification types
//! (`classification.opinion`, `.decision`, `.ruling`: one schema shape), read straight from the
//! body's bytes into typed, borrowed structures instead of a `serde_json::Value` checked by
//! `jsonschema`.
//!
//! Why: at ingest the schema check and projection cost about as much as the signature check
//! (docs/PERFORMANCE.md, issue 16), and rulings are by far the most numerous documents.
//!
//! The JSON Schemas in `schemas/` stay the specification. This module is an implementation of
//! them that only ever *accepts*: [`classification`] returns the projection when the body is
//! valid, and `None` for anything else, whereupon the caller runs the schema path, which
//! decides and gives the error. So a document's fate is the schema path's by construction as
//! long as this module never accepts what the schema path refuses nor projects differently;
//! the differential tests (`fast_tests.rs`) check that it accepts exactly the bodies the
//! schema path accepts, with the same projection, over the conformance vectors, the HS data's
//! rulings and seeded random mutations of them.
//!
//! What each schema keyword becomes here: `type: object` is [`Obj`] (serde's derived structs
//! would also read a JSON array positionally); `additionalProperties: false` is
//! `deny_unknown_fields`; `required` is a field without a default; an optional field is
//! [`Opt`], which refuses `null` (serde's `Option` reads `null` as absent, the schema does
//! not); a repeated name is refused by serde's derived structs and by [`Text`] itself, as
//! `json::parse_strict` refuses it; patterns are the byte checks below, one per pattern of
//! `schemas/common.json`; `minLength`/`maxLength` count characters (code points), as JSON
//! Schema does.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::project::{finish, subject, Projection};
use crate::document::{DocumentId, RefKind, Reference};

/// Most characters of one text (`common.json` `$defs/text`).
const TEXT_CHARS_MAX: usize = 65536;
/// Most characters of a classification's `reference`.
const REFERENCE_CHARS_MAX: usize = 128;
/// Most characters of a product's `composition` and `function`.
const PRODUCT_FIELD_CHARS_MAX: usize = 4096;
/// Most `cites` of a classification.
const CITES_MAX: usize = 64;
/// Most `references` of a body (`common.json` `$defs/references`).
const BODY_REFERENCES_MAX: usize = 32;

/// The projection of a valid classification body (opinion, decision or ruling), or `None`
/// when it is not valid or this path cannot tell: then the schema path decides.
pub fn classification(body: &[u8]) -> Option<Projection> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let Obj(c) = Obj::<Classification>::deserialize(&mut de).ok()?;
    de.end().ok()?;
    c.project()
}

/// A string, borrowed from the body where it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl Str<'_> {
    /// Whether it has `min..=max` characters (code points, as JSON Schema counts them).
    fn chars_within(&self, min: usize, max: usize) -> bool {
        let s: &str = &self.0;
        // An ASCII string has as many characters as bytes; count only the others.
        if s.len() >= min && s.len() <= max && s.is_ascii() {
            return true;
        }
        (min..=max).contains(&s.chars().count())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Cow<'de, str>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }
        d.deserialize_str(V).map(Str)
    }
}

/// A JSON object read into `T` (a derived struct would also accept an array).
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(PhantomData)).map(Obj)
    }
}

/// An optional member: absent is `None`, `null` is refused (it is not of the member's type).
struct Opt<T>(Option<T>);

impl<T> Default for Opt<T> {
    fn default() -> Self {
        Opt(None)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Opt<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|v| Opt(Some(v)))
    }
}

/// A JSON array of at most `MAX` items (the bound is checked while reading, before anything
/// more is kept).
struct List<T, const MAX: usize>(Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for List<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = Vec<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an array of at most {MAX} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(de::Error::custom("too many items"));
                    }
                    items.push(item);
                }
                Ok(items)
            }
        }
        d.deserialize_seq(V::<T, MAX>(PhantomData)).map(List)
    }
}

/// `common.json` `$defs/text`: an object of languages (`^[a-z]{2}$`), English required, each
/// a string of 1 to 65,536 characters. Only checked, not kept.
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a text by language")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Text, A::Error> {
                // One bit per two-letter name: 26 × 26 = 676 bits.
                let mut seen = [0u64; 11];
                while let Some(Str(name)) = map.next_key::<Str>()? {
                    let &[a @ b'a'..=b'z', b @ b'a'..=b'z'] = name.as_bytes() else {
                        return Err(de::Error::custom("not a language code"));
                    };
                    let bit = usize::from(a - b'a') * 26 + usize::from(b - b'a');
                    if seen[bit / 64] & (1 << (bit % 64)) != 0 {
                        return Err(de::Error::custom("a language appears twice"));
                    }
                    seen[bit / 64] |= 1 << (bit % 64);
                    let text: Str = map.next_value()?;
                    if !text.chars_within(1, TEXT_CHARS_MAX) {
                        return Err(de::Error::custom("text length"));
                    }
                }
                let en = usize::from(b'e' - b'a') * 26 + usize::from(b'n' - b'a');
                if seen[en / 64] & (1 << (en % 64)) == 0 {
                    return Err(de::Error::custom("no English text"));
                }
                Ok(Text)
            }
        }
        d.deserialize_map(V)
    }
}

/// `common.json` `$defs/hs_subject`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject<'a> {
    #[serde(borrow)]
    edition: Str<'a>,
    #[serde(borrow)]
    code: Str<'a>,
}

/// `common.json` `$defs/reference`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyReference<'a> {
    #[serde(borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    id: Str<'a>,
}

/// `common.json` `$defs/validity`, with `from` required as the classification schemas ask.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidityFrom<'a> {
    #[serde(borrow)]
    from: Str<'a>,
    #[serde(borrow, default)]
    to: Opt<Str<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Product<'a> {
    #[allow(dead_code)] // checked while reading
    description: Text,
    #[serde(borrow, default)]
    composition: Opt<Str<'a>>,
    #[serde(borrow, default)]
    function: Opt<Str<'a>>,
}

/// `schemas/classification.{opinion,decision,ruling}.json` (the three are one shape).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Classification<'a> {
    #[allow(dead_code)] // checked while reading
    title: Text,
    #[serde(borrow)]
    reference: Str<'a>,
    #[serde(borrow)]
    product: Obj<Product<'a>>,
    #[serde(borrow)]
    classification: Obj<Subject<'a>>,
    #[serde(borrow, default)]
    cites: Opt<List<Obj<Subject<'a>>, CITES_MAX>>,
    #[serde(borrow)]
    gir: List<Str<'a>, { usize::MAX }>,
    #[allow(dead_code)] // checked while reading
    reasons: Text,
    #[serde(borrow)]
    validity: Obj<ValidityFrom<'a>>,
    #[serde(borrow, default)]
    references: Opt<List<Obj<BodyReference<'a>>, BODY_REFERENCES_MAX>>,
}

impl Classification<'_> {
    /// The remaining schema checks (patterns, lengths), then the projection `project` makes.
    fn project(self) -> Option<Projection> {
        if !self.reference.chars_within(1, REFERENCE_CHARS_MAX) {
            return None;
        }
        let product = &self.product.0;
        for s in [&product.composition.0, &product.function.0].into_iter().flatten() {
            if !s.chars_within(0, PRODUCT_FIELD_CHARS_MAX) {
                return None;
            }
        }
        if self.gir.0.is_empty() || !self.gir.0.iter().all(|g| is_gir(&g.0)) {
            return None;
        }
        let cites = self.cites.0.map(|l| l.0).unwrap_or_default();
        let mut subjects = Vec::with_capacity(1 + cites.len());
        for Obj(s) in std::iter::once(self.classification).chain(cites) {
            if !is_edition(&s.edition.0) || !is_hs_code(&s.code.0) {
                return None;
            }
            subjects.push(subject(crate::document::Edition::parse(&s.edition.0).ok()?, &s.code.0).ok()?);
        }
        let validity = self.validity.0;
        let to = validity.to.0;
        if !is_date(&validity.from.0) || !to.as_ref().is_none_or(|t| is_date(&t.0)) {
            return None;
        }
        let from = day(&validity.from.0)?;
        let to = match to {
            Some(t) => Some(day(&t.0)?),
            None => None,
        };
        let validity = crate::document::Validity::new(Some(from), to).ok()?;
        let mut references = Vec::new();
        for Obj(r) in self.references.0.map(|l| l.0).unwrap_or_default() {
            let kind = match &*r.kind.0 {
                "supersedes" => RefKind::Supersedes,
                "corrects" => RefKind::Corrects,
                "withdraws" => RefKind::Withdraws,
                "cites" => RefKind::Cites,
                _ => return None,
            };
            if !is_document_id(&r.id.0) {
                return None;
            }
            references.push(Reference { kind, target: DocumentId::from_hex(&r.id.0).ok()? });
        }
        finish(subjects, validity, references).ok()
    }
}

/// As the projection reads a day (`%Y-%m-%d`), after [`is_date`].
fn day(s: &str) -> Option<chrono::NaiveDate> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn digits(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_digit)
}

/// `^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$`
fn is_date(s: &str) -> bool {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = s.as_bytes() else {
        return false;
    };
    let month = matches!((m0, m1), (b'0', b'1'..=b'9') | (b'1', b'0'..=b'2'));
    let day = matches!((d0, d1), (b'0', b'1'..=b'9') | (b'1' | b'2', b'0'..=b'9') | (b'3', b'0' | b'1'));
    digits(&[y0, y1, y2, y3]) && month && day
}

/// `^HS(19|20)[0-9]{2}$`
fn is_edition(s: &str) -> bool {
    matches!(s.as_bytes(), &[b'H', b'S', c0, c1, y0, y1] if matches!((c0, c1), (b'1', b'9') | (b'2', b'0')) && digits(&[y0, y1]))
}

/// `^([0-9]{2}|[0-9]{4}|[0-9]{4}\.?[0-9]{2}|[0-9]{4}\.?[0-9]{2}[0-9]{2}|[0-9]{4}\.?[0-9]{2}[0-9]{4})$`:
/// 2, 4, 6, 8 or 10 digits, or 4 digits, a dot and 2, 4 or 6 digits.
fn is_hs_code(s: &str) -> bool {
    let b = s.as_bytes();
    match b.get(4) {
        Some(b'.') => matches!(b.len(), 7 | 9 | 11) && digits(&b[..4]) && digits(&b[5..]),
        _ => matches!(b.len(), 2 | 4 | 6 | 8 | 10) && digits(b),
    }
}

/// `^[0-9a-f]{64}$`
fn is_document_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
}

/// `^[1-6]( ?\([a-c]\))?$`
fn is_gir(s: &str) -> bool {
    let rule = |c: u8| (b'1'..=b'6').contains(&c);
    let part = |c: u8| (b'a'..=b'c').contains(&c);
    match *s.as_bytes() {
        [r] => rule(r),
        [r, b'(', p, b')'] | [r, b' ', b'(', p, b')'] => rule(r) && part(p),
        _ => false,
    }
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
