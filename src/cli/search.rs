//! `entrepot search`: full-text search of a stopped node's documents, and `--rebuild` of its
//! index (a running node answers `GET /v1/search` and rebuilds on
//! `POST /v1/admin/search/rebuild`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use clap::Args;

use entrepot::config;
use entrepot::doctype::DocType;
use entrepot::document::{decode, Edition, OrgId};
use entrepot::search::{SearchIndex, SearchQuery, INDEX_DIR, SEARCH_LIMIT_MAX};

/// Longest query, as on the API.
const QUERY_CHARS_MAX: usize = 200;

/// What `search` takes.
#[derive(Args)]
pub struct SearchArgs {
    /// Words to search (all required; English and French stemmed), or nothing for the newest.
    words: Vec<String>,
    /// HS code or prefix of any subject (dots and spaces allowed), within --edition.
    #[arg(long)]
    hs: Option<String>,
    /// HS edition for --hs.
    #[arg(long, default_value = "HS2022")]
    edition: String,
    /// Document type.
    #[arg(long = "type")]
    doc_type: Option<String>,
    /// Publishing organization.
    #[arg(long)]
    publisher: Option<String>,
    /// Issued on or after this day (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Issued on or before this day (YYYY-MM-DD).
    #[arg(long)]
    to: Option<String>,
    /// Results, 1 to 100.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Drop the index and build it again from the store, then exit.
    #[arg(long, conflicts_with_all = ["words", "hs", "doc_type", "publisher", "from", "to"])]
    rebuild: bool,
}

fn day_ms(s: &str, what: &str, next: bool) -> Result<i64> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{what} '{s}' is not a date of the form 2022-01-01"))?;
    let d = if next { d.succ_opt().context("date out of range")? } else { d };
    Ok(d.and_hms_opt(0, 0, 0).context("midnight")?.and_utc().timestamp_millis())
}

fn query(a: &SearchArgs) -> Result<SearchQuery> {
    if a.limit == 0 || a.limit > SEARCH_LIMIT_MAX {
        bail!("--limit must be between 1 and {SEARCH_LIMIT_MAX}");
    }
    let text = a.words.join(" ");
    if text.chars().count() > QUERY_CHARS_MAX {
        bail!("the words to search must be at most {QUERY_CHARS_MAX} characters");
    }
    let hs = match &a.hs {
        Some(code) => {
            let digits: String = code.chars().filter(|c| *c != '.' && *c != ' ').collect();
            if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--hs '{code}' must be 1 to 10 digits (dots allowed), such as 88 or 8806.22");
            }
            Some((Edition::parse(&a.edition)?.to_string(), digits))
        }
        None => None,
    };
    if let Some(t) = &a.doc_type {
        DocType::by_name(t)?;
    }
    let from = a.from.as_deref().map(|d| day_ms(d, "--from", false)).transpose()?;
    let before = a.to.as_deref().map(|d| day_ms(d, "--to", true)).transpose()?;
    if let (Some(f), Some(b)) = (from, before) {
        if f >= b {
            bail!("--from is after --to");
        }
    }
    Ok(SearchQuery {
        text: Some(text).filter(|t| !t.trim().is_empty()),
        hs,
        doc_type: a.doc_type.clone(),
        publisher: a.publisher.as_deref().map(OrgId::new).transpose()?.map(|o| o.to_string()),
        issued_from_ms: from,
        issued_before_ms: before,
        offset: 0,
        limit: a.limit,
    })
}

pub fn search(dir: &Path, a: &SearchArgs) -> Result<ExitCode> {
    // Checked before the store is opened: bad input changes nothing.
    let q = if a.rebuild { None } else { Some(query(a)?) };
    let node = config::open(dir)?;
    let index = SearchIndex::open(&dir.join(INDEX_DIR))?;
    let started = Instant::now();
    if a.rebuild {
        index.clear()?;
    }
    let mut indexed = 0;
    loop {
        let n = index.catch_up(&node.store, entrepot::search::COMMIT_EVERY_DOCS)?;
        if n == 0 {
            break;
        }
        indexed += n;
    }
    if a.rebuild || indexed > 0 {
        eprintln!(
            "indexed {indexed} documents in {:.1} s; the index ({}) takes {} KiB",
            started.elapsed().as_secs_f64(),
            index.path().display(),
            index.disk_bytes() / 1024
        );
    }
    let Some(q) = q else { return Ok(ExitCode::SUCCESS) };
    let found = index.search(&q)?;
    println!("{} documents match", found.total);
    for hit in found.hits {
        let Some(bytes) = node.store.get(&hit.id)? else { continue };
        let doc = decode(&bytes)?;
        let body: serde_json::Value = serde_json::from_slice(doc.body()).unwrap_or_default();
        let code = entrepot::search::Searchable::of_body(doc.header.doc_type.as_str(), &body)
            .classification
            .map(|(e, c)| format!(" {e}:{c}"))
            .unwrap_or_default();
        let day = chrono::DateTime::from_timestamp_millis(doc.header.issued_at_ms).map(|t| t.date_naive().to_string());
        println!(
            "{}  {:<24} {:<6} {}{}  {}",
            doc.id.to_hex(),
            doc.header.doc_type,
            doc.header.publisher,
            day.unwrap_or_default(),
            code,
            entrepot::doctype::title_of(&body)
        );
    }
    Ok(ExitCode::SUCCESS)
}
