//! What of a document is searched: its texts by language and part (title, product, the rest),
//! its classification code, and the filters' values, read from the body by type. Pure.
//!
//! Why parts: a title match means more than a word in the reasons, and "similar
//! classifications" compares product texts only. Why languages: a text object is keyed by
//! ISO 639-1 code (`schemas/common.json`), so each text is analysed with its own language's
//! stemmer; English and French have one, any other language goes to a plain lower-cased field.

use serde_json::Value;

use crate::document::SignedDocument;

/// Most characters of one part in one language that are indexed; the rest is not searched.
/// A body is at most 1 MiB, but the words that find a document come early.
pub const PART_CHARS_MAX: usize = 16 * 1024;

/// The document types that classify a product (a code and a product description).
pub const CLASSIFICATION_TYPES: [&str; 3] =
    ["classification.ruling", "classification.opinion", "classification.decision"];

/// The language a text is analysed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Fr,
    /// Any other language: lower-cased words, no stemming.
    Other,
}

impl Lang {
    fn of(code: &str) -> Lang {
        match code {
            "en" => Lang::En,
            "fr" => Lang::Fr,
            _ => Lang::Other,
        }
    }
}

/// Which part of a document a text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Title,
    /// A classified product's description, composition and function.
    Product,
    /// Reasons, rationale, amendment texts, an act's reason, a notice's public summary.
    Body,
}

/// The searchable content of one document.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Searchable {
    /// (part, language, text), each text at most [`PART_CHARS_MAX`] characters.
    pub texts: Vec<(Part, Lang, String)>,
    /// The classification of a ruling, opinion or decision: `(edition, code digits)`.
    pub classification: Option<(String, String)>,
    /// The body's `reference` (a ruling's number), searched as a word too.
    pub reference: Option<String>,
}

impl Searchable {
    /// What is searched of `doc` (nothing but the header's filters when the body is not JSON).
    pub fn of(doc: &SignedDocument) -> Searchable {
        let body: Value = serde_json::from_slice(doc.body()).unwrap_or(Value::Null);
        Searchable::of_body(doc.header.doc_type.as_str(), &body)
    }

    /// What is searched of a body of type `doc_type`.
    pub fn of_body(doc_type: &str, body: &Value) -> Searchable {
        let mut s = Searchable::default();
        s.text(Part::Title, body.get("title"));
        if CLASSIFICATION_TYPES.contains(&doc_type) {
            let product = body.get("product");
            s.text(Part::Product, product.and_then(|p| p.get("description")));
            // Composition and function are plain strings in the schema: English by convention.
            for key in ["composition", "function"] {
                if let Some(t) = product.and_then(|p| p.get(key)).and_then(Value::as_str) {
                    s.push(Part::Product, Lang::En, t);
                }
            }
            s.text(Part::Body, body.get("reasons"));
            let class = body.get("classification");
            let edition = class.and_then(|c| c.get("edition")).and_then(Value::as_str);
            let code = class.and_then(|c| c.get("code")).and_then(Value::as_str);
            if let (Some(e), Some(c)) = (edition, code) {
                let digits: String = c.chars().filter(char::is_ascii_digit).collect();
                s.classification = Some((e.to_owned(), digits));
            }
        }
        match doc_type {
            "hs.amendment" => {
                s.text(Part::Body, body.get("rationale"));
                for op in body.get("operations").and_then(Value::as_array).into_iter().flatten() {
                    s.text(Part::Body, op.get("text"));
                }
            }
            "enforcement.notice" => {
                // Only a public notice carries its payload in the body; a sealed one is not
                // searched beyond its header, whoever holds the payload.
                s.text(Part::Body, body.get("payload").and_then(|p| p.get("summary")));
            }
            t if t.starts_with("lifecycle.") => s.text(Part::Body, body.get("reason")),
            _ => {}
        }
        s.reference = body.get("reference").and_then(Value::as_str).map(|r| r.chars().take(128).collect());
        s
    }

    /// Adds a text object (`{"en": …, "fr": …}`), each language apart.
    fn text(&mut self, part: Part, text: Option<&Value>) {
        for (lang, t) in text.and_then(Value::as_object).into_iter().flatten() {
            if let Some(t) = t.as_str() {
                self.push(part, Lang::of(lang), t);
            }
        }
    }

    /// Adds a text, appending to the same part and language, within [`PART_CHARS_MAX`].
    fn push(&mut self, part: Part, lang: Lang, t: &str) {
        let slot = match self.texts.iter_mut().position(|(p, l, _)| *p == part && *l == lang) {
            Some(i) => &mut self.texts[i].2,
            None => {
                self.texts.push((part, lang, String::new()));
                &mut self.texts.last_mut().expect("just pushed").2
            }
        };
        let room = PART_CHARS_MAX.saturating_sub(slot.chars().count());
        if room == 0 {
            return;
        }
        if !slot.is_empty() {
            slot.push(' ');
        }
        slot.extend(t.chars().take(room));
    }

    /// The product texts of a classification (all languages), for "similar classifications".
    pub fn product_texts(&self) -> impl Iterator<Item = (Lang, &str)> {
        self.texts.iter().filter(|(p, _, _)| *p == Part::Product).map(|(_, l, t)| (*l, t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_ruling_gives_its_title_product_reasons_and_code_by_language() {
        let body = json!({
            "title": { "en": "Camera drone", "fr": "Drone avec caméra" },
            "reference": "FR-BTI-1",
            "product": { "description": { "en": "Quadcopter", "fr": "Quadricoptère" }, "composition": "plastic" },
            "classification": { "edition": "HS2022", "code": "8806.22" },
            "reasons": { "en": "Heading 8806", "de": "Position 8806" }
        });
        let s = Searchable::of_body("classification.ruling", &body);
        assert!(s.texts.contains(&(Part::Title, Lang::Fr, "Drone avec caméra".into())));
        assert!(s.texts.contains(&(Part::Product, Lang::En, "Quadcopter plastic".into())));
        assert!(s.texts.contains(&(Part::Body, Lang::Other, "Position 8806".into())));
        assert_eq!(s.classification, Some(("HS2022".into(), "880622".into())));
        assert_eq!(s.reference.as_deref(), Some("FR-BTI-1"));
        assert_eq!(s.product_texts().count(), 2);
    }

    #[test]
    fn a_sealed_notice_is_searched_by_title_only_and_long_texts_are_cut() {
        let body = json!({ "title": { "en": "x".repeat(PART_CHARS_MAX + 10) }, "sealed_payload": { "sha256": "00" } });
        let s = Searchable::of_body("enforcement.notice", &body);
        assert_eq!(s.texts.len(), 1);
        assert_eq!(s.texts[0].2.chars().count(), PART_CHARS_MAX);
        assert_eq!(s.classification, None);
    }
}
