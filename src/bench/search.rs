//! `entrepot bench search`: full-text search latency over an index of N signed rulings and
//! opinions with varied product texts (HS2022 subheading descriptions with materials, uses and
//! presentations drawn at random), beside a reference measured in the same run: the same
//! queries answered by a plain in-memory scan of 10,000 of the same documents.

use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::{cpu_model, load_average, ms, percentile, sign_feed, BENCH_NETWORK};
use crate::config::network_id;
use crate::document::{decode_owned, DocumentId, OrgId, Seq, SignedDocument};
use crate::hsdata::{shared_dir, DraftDocument, HsData};
use crate::search::{SearchIndex, SearchQuery};

/// Options of `entrepot bench search`.
#[derive(Debug, Clone, clap::Args)]
pub struct SearchArgs {
    /// Documents indexed (signed rulings and opinions of 8 publishers).
    #[arg(long, default_value_t = 100_000)]
    pub docs: usize,
    /// Queries timed (a third words only, a third with an HS heading, a third with a publisher).
    #[arg(long, default_value_t = 500)]
    pub queries: usize,
    /// Results per query.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

/// Publishers the documents are spread over.
const PUBLISHERS: [&str; 8] = ["WCO", "FR", "DE", "US", "JP", "BR", "KE", "IN"];
/// Documents the reference scan holds.
const REFERENCE_DOCS: usize = 10_000;
/// Documents signed and indexed per step (one commit each).
const CHUNK: usize = 50_000;

const MATERIALS: [&str; 12] = [
    "steel",
    "aluminium",
    "plastics",
    "cotton",
    "wool",
    "glass",
    "ceramic",
    "wood",
    "copper",
    "rubber",
    "paper",
    "leather",
];
const USES: [&str; 12] = [
    "for household use",
    "for industrial use",
    "for agricultural machinery",
    "for medical purposes",
    "for retail sale",
    "for motor vehicles",
    "for laboratory analysis",
    "for aerial photography",
    "for packaging",
    "for construction",
    "for children",
    "for outdoor use",
];
const PRESENTATIONS: [&str; 8] = [
    "in bulk",
    "in retail packaging",
    "on reels",
    "in sets",
    "unassembled",
    "as spare parts",
    "in rolls",
    "in cartons",
];

/// A product text and its draft: the `i`-th document.
fn draft(i: usize, subheadings: &[(&str, &str)], rng: &mut rand::rngs::StdRng) -> DraftDocument {
    let (code, description) = subheadings[rng.gen_range(0..subheadings.len())];
    let material = MATERIALS.choose(rng).copied().unwrap_or("steel");
    let usage = USES.choose(rng).copied().unwrap_or("");
    let presentation = PRESENTATIONS.choose(rng).copied().unwrap_or("");
    let doc_type = if i.is_multiple_of(3) { "classification.opinion" } else { "classification.ruling" };
    let year = 2022 + i % 5;
    DraftDocument {
        doc_type,
        body: json!({
            "title": { "en": format!("Classification of {description} of {material}") },
            "reference": format!("BENCH-{year}-{i:07}"),
            "product": {
                "description": { "en": format!("{description}, mainly of {material}, {usage}, presented {presentation}.") },
                "composition": format!("{material} with minor parts of other materials"),
            },
            "classification": { "edition": "HS2022", "code": format!("{}.{}", &code[..4], &code[4..]) },
            "gir": ["1", "6"],
            "reasons": { "en": format!("The terms of heading {} and GIR 1 and 6 describe the goods ({description}).", &code[..4]) },
            "validity": { "from": format!("{year}-01-01") }
        }),
    }
}

/// The words a query may use: the descriptions' and qualifiers' words of 4 letters or more.
fn vocabulary(subheadings: &[(&str, &str)]) -> Vec<String> {
    let mut words: Vec<String> = subheadings
        .iter()
        .flat_map(|(_, d)| d.split(|c: char| !c.is_alphabetic()))
        .chain(MATERIALS.iter().copied())
        .filter(|w| w.chars().count() >= 4)
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// What the reference scan keeps of a document.
struct Plain {
    text: String,
    publisher: String,
    codes: Vec<String>,
}

fn plain(doc: &SignedDocument) -> Plain {
    let s = crate::search::Searchable::of(doc);
    let text = s.texts.iter().map(|(_, _, t)| t.to_lowercase()).collect::<Vec<_>>().join(" ");
    Plain {
        text,
        publisher: doc.header.publisher.to_string(),
        codes: doc.header.subjects.iter().map(|s| s.code.as_str().to_owned()).collect(),
    }
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &SearchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.docs >= PUBLISHERS.len() && args.queries > 0, "--docs must be at least 8, --queries positive");
    anyhow::ensure!(args.limit > 0 && args.limit <= crate::search::SEARCH_LIMIT_MAX, "--limit must be 1 to 100");
    let data = match shared_dir() {
        Some(dir) => HsData::load(&dir)?,
        None => HsData::excerpt(),
    };
    let subheadings: Vec<(&str, &str)> = data
        .hs2022
        .iter()
        .filter(|e| e.level == 6 && !e.code.starts_with("99"))
        .map(|e| (e.code.as_str(), e.description.as_str()))
        .collect();
    println!(
        "entrepot bench search: {} × {} cores, load average {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        load_average()
    );
    let network = network_id(BENCH_NETWORK);
    let dir = std::env::temp_dir().join(format!("entrepot-bench-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let index = SearchIndex::open(&dir)?;
    let keys: Vec<ed25519_dalek::SigningKey> =
        (0..PUBLISHERS.len()).map(|i| ed25519_dalek::SigningKey::from_bytes(&[60 + i as u8; 32])).collect();
    let mut heads: Vec<(Seq, DocumentId)> = vec![(Seq::FIRST, DocumentId::ZERO); PUBLISHERS.len()];
    let mut rng = rand::rngs::StdRng::seed_from_u64(14);
    let mut reference = Vec::with_capacity(REFERENCE_DOCS);
    let (mut sign_time, mut index_time) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0;
    while done < args.docs {
        let n = (args.docs - done).min(CHUNK);
        let t = Instant::now();
        let mut docs = Vec::with_capacity(n);
        for (p, org) in PUBLISHERS.iter().enumerate() {
            let share = n / PUBLISHERS.len() + usize::from(p < n % PUBLISHERS.len());
            let drafts: Vec<DraftDocument> =
                (0..share).map(|k| draft(done + k * 8 + p, &subheadings, &mut rng)).collect();
            let (seq, prev) = heads[p];
            let signed = sign_feed(&drafts, &OrgId::new(org)?, &keys[p], &network, seq, prev);
            if let Some(last) = signed.last() {
                heads[p] = (Seq(seq.0 + signed.len() as u64), DocumentId::of_envelope(last));
            }
            docs.extend(signed.into_iter().map(decode_owned).collect::<Result<Vec<_>, _>>()?);
        }
        sign_time += t.elapsed();
        for d in docs.iter().take(REFERENCE_DOCS.saturating_sub(reference.len())) {
            reference.push(plain(d));
        }
        let t = Instant::now();
        index.add_all(&docs, (done + n) as u64)?;
        index_time += t.elapsed();
        done += n;
    }
    println!(
        "build      {} documents signed in {:.1} s, indexed in {:.1} s ({:.0} documents/s), index {:.0} MB on disk",
        args.docs,
        sign_time.as_secs_f64(),
        index_time.as_secs_f64(),
        args.docs as f64 / index_time.as_secs_f64().max(1e-9),
        index.disk_bytes() as f64 / 1e6
    );

    let words = vocabulary(&subheadings);
    let queries: Vec<SearchQuery> = (0..args.queries)
        .map(|i| {
            let text =
                (0..1 + i % 2).map(|_| words[rng.gen_range(0..words.len())].clone()).collect::<Vec<_>>().join(" ");
            let mut q = SearchQuery { text: Some(text), limit: args.limit, ..SearchQuery::default() };
            match i % 3 {
                1 => q.hs = Some(("HS2022".into(), subheadings[rng.gen_range(0..subheadings.len())].0[..4].to_owned())),
                2 => q.publisher = Some(PUBLISHERS[rng.gen_range(0..PUBLISHERS.len())].to_owned()),
                _ => {}
            }
            q
        })
        .collect();
    let mut times = Vec::with_capacity(queries.len());
    let mut hits = 0usize;
    for q in &queries {
        let t = Instant::now();
        let found = index.search(q)?;
        times.push(t.elapsed());
        hits += found.hits.len();
    }
    times.sort();
    println!(
        "search     {} documents, {} queries (words; words + HS heading; words + publisher), top {}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({:.1} results per query)",
        args.docs,
        queries.len(),
        args.limit,
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap_or(&Duration::ZERO)),
        hits as f64 / queries.len() as f64
    );

    // The reference: the same queries as a substring scan of the first 10,000 documents.
    let mut scan_times = Vec::with_capacity(queries.len());
    for q in &queries {
        let t = Instant::now();
        let text = q.text.as_deref().unwrap_or("");
        let terms: Vec<&str> = text.split(' ').collect();
        let matches = reference
            .iter()
            .filter(|d| q.publisher.as_ref().is_none_or(|p| *p == d.publisher))
            .filter(|d| q.hs.as_ref().is_none_or(|(_, h)| d.codes.iter().any(|c| c.starts_with(h.as_str()))))
            .filter(|d| terms.iter().all(|t| d.text.contains(t)))
            .take(args.limit)
            .count();
        std::hint::black_box(matches);
        scan_times.push(t.elapsed());
    }
    scan_times.sort();
    println!(
        "reference  the same queries as a plain in-memory scan of {} documents: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        reference.len(),
        ms(percentile(&scan_times, 0.50)),
        ms(percentile(&scan_times, 0.99)),
        ms(*scan_times.last().unwrap_or(&Duration::ZERO))
    );
    println!("load average after: {}", load_average());
    drop(index);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
