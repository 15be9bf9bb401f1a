//! The index's layout: its fields, and the analysers its texts are tokenized with.

use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, INDEXED, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::Index;

use super::{Lang, Part};

/// The fields of the index.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    pub(super) id: Field,
    pub(super) doc_type: Field,
    pub(super) publisher: Field,
    /// Every prefix of every HS subject, as `HS2022:88`, `HS2022:8806`, …: a prefix filter is
    /// one term.
    pub(super) codes: Field,
    pub(super) issued_ms: Field,
    /// A classification's `HS2022:880622` (stored, for similar classifications).
    pub(super) class: Field,
    /// Every prefix of the classification alone (divergences by chapter).
    pub(super) class_codes: Field,
    pub(super) reference: Field,
    /// By [`Part`] then [`Lang`] (en, fr, other).
    pub(super) texts: [[Field; 3]; 3],
}

/// Analyser names, by [`Lang`].
pub(super) const ANALYSERS: [&str; 3] = ["entrepot_en", "entrepot_fr", "entrepot_plain"];

pub(super) fn part_index(p: Part) -> usize {
    match p {
        Part::Title => 0,
        Part::Product => 1,
        Part::Body => 2,
    }
}

pub(super) fn lang_index(l: Lang) -> usize {
    match l {
        Lang::En => 0,
        Lang::Fr => 1,
        Lang::Other => 2,
    }
}

pub(super) fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let doc_type = b.add_text_field("type", STRING | STORED);
    let publisher = b.add_text_field("publisher", STRING | STORED);
    let codes = b.add_text_field("codes", STRING);
    let issued_ms = b.add_i64_field("issued_ms", INDEXED | FAST);
    let class = b.add_text_field("class", STRING | STORED);
    let class_codes = b.add_text_field("class_codes", STRING);
    let reference = b.add_text_field("reference", text_options(ANALYSERS[2]));
    let mut texts = [[id; 3]; 3];
    for (p, part) in ["title", "product", "body"].iter().enumerate() {
        for (l, lang) in ["en", "fr", "other"].iter().enumerate() {
            texts[p][l] = b.add_text_field(&format!("{part}_{lang}"), text_options(ANALYSERS[l]));
        }
    }
    (b.build(), Fields { id, doc_type, publisher, codes, issued_ms, class, class_codes, reference, texts })
}

fn text_options(analyser: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(analyser).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

fn analyser(stem: Option<Language>) -> TextAnalyzer {
    let base = TextAnalyzer::builder(SimpleTokenizer::default()).filter(RemoveLongFilter::limit(40)).filter(LowerCaser);
    match stem {
        // Stop words out (they would make every product "similar"), then stemmed before
        // accents are folded: the French stemmer reads the accents.
        Some(lang) => base
            .filter(StopWordFilter::new(lang).unwrap_or_else(|| StopWordFilter::remove(Vec::<String>::new())))
            .filter(Stemmer::new(lang))
            .filter(AsciiFoldingFilter)
            .build(),
        None => base.filter(AsciiFoldingFilter).build(),
    }
}

pub(super) fn register_analysers(index: &Index) {
    let t = index.tokenizers();
    t.register(ANALYSERS[0], analyser(Some(Language::English)));
    t.register(ANALYSERS[1], analyser(Some(Language::French)));
    t.register(ANALYSERS[2], analyser(None));
}
