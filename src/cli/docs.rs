//! Commands on one node's documents: publish, get, list, heads, forks.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use clap::Args;
use serde_json::json;

use entrepot::clock::now_ms;
use entrepot::config;
use entrepot::doctype::title_of;
use entrepot::document::{decode, verify, DocumentId, Edition, OrgId, TypeName};
use entrepot::notice::{sealed_ref, NOTICE_TYPE, SEALED_PAYLOAD_MAX_BYTES};
use entrepot::store::{Query, QUERY_LIMIT_MAX};

/// Largest body file `publish` reads.
const BODY_FILE_MAX_BYTES: u64 = 1024 * 1024;

pub fn publish(dir: &Path, file: &Path, doc_type: &str, payload: Option<&Path>) -> Result<ExitCode> {
    let node = config::open(dir)?;
    let Some(publisher) = &node.publisher else {
        bail!("{} is a read replica: it has no signing key and cannot publish", dir.display())
    };
    let body = read_bounded(file, BODY_FILE_MAX_BYTES, "a document body")?;
    let published = match payload {
        None => publisher.publish(&node.store, &node.keyring, &node.network_id, doc_type, &body, now_ms()),
        Some(path) => {
            if doc_type != NOTICE_TYPE {
                bail!("--payload applies only to --type {NOTICE_TYPE}");
            }
            let payload: serde_json::Value =
                serde_json::from_slice(&read_bounded(path, SEALED_PAYLOAD_MAX_BYTES as u64, "a payload")?)
                    .with_context(|| format!("{} is not JSON", path.display()))?;
            publisher.publish_notice(&node.store, &node.keyring, &node.network_id, &body, &payload, now_ms())
        }
    }
    .with_context(|| format!("publishing {}", file.display()))?;
    match published.sealed_payload {
        Some(seal) => println!(
            "{} {}#{} sealed payload {} bytes sha256 {}",
            published.id,
            publisher.org,
            published.seq,
            seal.bytes,
            hex::encode(seal.sha256)
        ),
        None if published.existing => {
            println!(
                "{} {}#{} (already published with this body: nothing new was signed)",
                published.id, publisher.org, published.seq
            )
        }
        None => println!("{} {}#{}", published.id, publisher.org, published.seq),
    }
    Ok(ExitCode::SUCCESS)
}

/// `entrepot transpose`: the workbench on a node directory; writes the drafts and a CSV of lines.
pub fn transpose(
    dir: &Path,
    tariff: &Path,
    (from, to): (&str, &str),
    out: &Path,
    administration: Option<&str>,
    scope: &str,
) -> Result<ExitCode> {
    let node = config::open(dir)?;
    let (from, to) = (Edition::parse(from)?, Edition::parse(to)?);
    let administration = match (administration, &node.publisher) {
        (Some(a), _) => OrgId::new(a)?.to_string(),
        (None, Some(p)) => p.org.to_string(),
        (None, None) => bail!("a read replica has no organization of its own: give --administration"),
    };
    if !matches!(scope, "national_tariff" | "wto_schedule") {
        bail!("--scope is national_tariff or wto_schedule");
    }
    let bytes = read_bounded(tariff, entrepot::transposition::TARIFF_BYTES_MAX as u64, "a tariff file")?;
    let started = std::time::Instant::now();
    let scope = entrepot::transposition::DraftScope { administration, scope: scope.to_owned(), from, to };
    let view = entrepot::api::transposition::workbench(&node.store, &scope, &bytes)
        .with_context(|| format!("transposing {}", tariff.display()))?;
    let elapsed = started.elapsed();
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for draft in &view.drafts {
        let chapter = draft["chapter"].as_str().unwrap_or("xx");
        let path = out.join(format!("transposition-{}-{}-{chapter}.json", scope.from, scope.to));
        std::fs::write(&path, serde_json::to_vec_pretty(draft)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut csv = String::from("old,relationship,new,amendments,note\n");
    for l in &view.lines {
        csv.push_str(&format!(
            "{},{},{},{},\"{}\"\n",
            l.old,
            l.relationship,
            l.new.join(" "),
            l.amendments.len(),
            l.note.replace('"', "'")
        ));
    }
    std::fs::write(out.join("lines.csv"), csv).with_context(|| format!("writing lines.csv in {}", out.display()))?;
    let counts: Vec<String> = view.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{} lines {}→{} in {} ms: {}; {} draft(s) in {} (publish each with: entrepot publish FILE --type hs.transposition)",
        view.lines.len(),
        view.from,
        view.to,
        elapsed.as_millis(),
        counts.join(", "),
        view.drafts.len(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads a file of at most `max` bytes (`what` names it in the error).
fn read_bounded(path: &Path, max: u64, what: &str) -> Result<Vec<u8>> {
    let len = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if len > max {
        bail!("{} is {len} bytes; {what} is at most {max} bytes", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

pub fn get(dir: &Path, id: &str, raw: Option<&Path>) -> Result<ExitCode> {
    let node = config::open(dir)?;
    let id = DocumentId::from_hex(id)?;
    let Some(bytes) = node.store.get(&id)? else { bail!("no document {id} in this node") };
    if let Some(path) = raw {
        std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    let doc = decode(&bytes).context("stored document does not decode")?;
    let verification = match verify(doc.clone(), &node.network_id) {
        Ok(v) => match node.keyring.check(&v.header, now_ms()) {
            Ok(()) => json!({ "valid": true, "signature": "ok", "publisher_key": "in keyring" }),
            Err(e) => json!({ "valid": false, "reason": e.to_string() }),
        },
        Err(e) => json!({ "valid": false, "reason": e.to_string() }),
    };
    let body: serde_json::Value = serde_json::from_slice(doc.body()).context("stored body is not JSON")?;
    let referrers: Vec<_> =
        node.store.referrers(&id)?.into_iter().map(|(kind, source)| json!({ "kind": kind, "by": source })).collect();
    let mut out = json!({
        "id": id,
        "size_bytes": bytes.len(),
        "verification": verification,
        "header": doc.header,
        "referred_to_by": referrers,
        "body": body,
    });
    if sealed_ref(&doc).is_some() {
        // The operator of the node reads what the node holds; the payload is checked against
        // its commitment before it is ever stored.
        out["sealed_payload"] = match node.store.payload(&id)? {
            Some(p) => serde_json::from_slice(&p).context("stored sealed payload is not JSON")?,
            None => json!(null),
        };
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// Filters for `list`.
#[derive(Args)]
pub struct ListArgs {
    /// Document type.
    #[arg(long = "type")]
    doc_type: Option<String>,
    /// Publishing organization.
    #[arg(long)]
    publisher: Option<String>,
    /// HS code or prefix (2 to 10 digits, dots allowed), within --edition.
    #[arg(long)]
    hs: Option<String>,
    /// HS edition for --hs.
    #[arg(long, default_value = "HS2022")]
    edition: String,
    /// Only documents in force on this day (YYYY-MM-DD).
    #[arg(long)]
    in_force: Option<String>,
    /// Only documents issued on or after this day (YYYY-MM-DD).
    #[arg(long)]
    since: Option<String>,
    /// Title contains this text (case-insensitive).
    #[arg(long)]
    text: Option<String>,
    /// Page size.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue from a previous page's cursor.
    #[arg(long)]
    cursor: Option<String>,
}

fn parse_day(s: &str, what: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("{what} '{s}' is not a date of the form 2022-01-01"))
}

pub fn list(dir: &Path, a: &ListArgs) -> Result<ExitCode> {
    if a.limit == 0 || a.limit > QUERY_LIMIT_MAX {
        bail!("--limit must be between 1 and {QUERY_LIMIT_MAX}");
    }
    let hs = match &a.hs {
        Some(code) => {
            let digits: String = code.chars().filter(|c| *c != '.').collect();
            if digits.is_empty() || digits.len() > 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--hs '{code}' must be 1 to 10 digits (dots allowed), such as 85 or 8549.11");
            }
            Some((Edition::parse(&a.edition)?, digits))
        }
        None => None,
    };
    let query = Query {
        doc_type: a.doc_type.as_deref().map(TypeName::new).transpose()?,
        publisher: a.publisher.as_deref().map(OrgId::new).transpose()?,
        hs,
        in_force_on: a.in_force.as_deref().map(|d| parse_day(d, "--in-force")).transpose()?,
        issued_since_ms: a
            .since
            .as_deref()
            .map(|d| {
                parse_day(d, "--since").map(|d| d.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis())
            })
            .transpose()?,
        text: a.text.clone(),
        limit: a.limit,
        cursor: a.cursor.clone(),
        index_order: false,
    };
    let node = config::open(dir)?;
    let page = node.store.query(&query)?;
    for id in &page.ids {
        let Some(bytes) = node.store.get(id)? else { continue };
        let doc = decode(&bytes)?;
        let h = &doc.header;
        let body: serde_json::Value = serde_json::from_slice(doc.body()).unwrap_or_default();
        let issued = chrono::DateTime::from_timestamp_millis(h.issued_at_ms).map(|t| t.format("%Y-%m-%d").to_string());
        let validity = match (h.validity.from, h.validity.to) {
            (None, None) => "-".to_owned(),
            (f, t) => format!(
                "{}..{}",
                f.map(|d| d.to_string()).unwrap_or_default(),
                t.map(|d| d.to_string()).unwrap_or_default()
            ),
        };
        println!(
            "{id}  {:<24} {}#{:<6} issued {}  valid {}  {}",
            h.doc_type,
            h.publisher,
            h.seq,
            issued.unwrap_or_default(),
            validity,
            title_of(&body)
        );
    }
    match &page.next_cursor {
        Some(c) => eprintln!("{} shown; more with --cursor {c}", page.ids.len()),
        None => eprintln!("{} shown; end of results", page.ids.len()),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn heads(dir: &Path) -> Result<ExitCode> {
    let node = config::open(dir)?;
    for (org, head) in node.store.heads()? {
        let fork = head.forked_at.map(|s| format!("  FORKED at #{s}: frozen")).unwrap_or_default();
        println!("{org:<12} #{:<8} {}{fork}", head.seq, head.id);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn forks(dir: &Path) -> Result<ExitCode> {
    let node = config::open(dir)?;
    let forks = node.store.forks()?;
    if forks.is_empty() {
        println!("no forks recorded");
    }
    for f in forks {
        let kept = f.kept.map_or_else(|| "(none held)".to_owned(), |k| k.to_string());
        let state = if f.resolved { "resolved by the charter" } else { "unresolved: feed frozen" };
        println!("{} #{}: kept {kept} conflicting {} ({state})", f.publisher, f.seq, f.conflicting);
    }
    Ok(ExitCode::SUCCESS)
}
