//! `entrepot bench query`: first-page latency of the HS-prefix (4 and 6 digits) and "in force
//! on D" queries over a store of many signed rulings, beside this machine's `verify_strict`
//! rate measured in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};

use super::{cpu_model, measure_verify_rates, ms, percentile, sign_feed, BENCH_NETWORK};
use crate::authority::{Keyring, Organization};
use crate::config::network_id;
use crate::document::{DocumentId, Edition, OrgId, Seq};
use crate::hsdata::{ruling_documents_from, shared_dir, HsData};
use crate::ingest::Ingestor;
use crate::store::{Query, Store};

/// Options of `entrepot bench query`.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// Documents in the store (signed rulings over the HS2022 subheadings, 2022–2026 editions
    /// of validity).
    #[arg(long, default_value_t = 1_000_000)]
    pub docs: usize,
    /// Store directory: filled when it does not hold `--docs` documents yet, and kept, so that
    /// later runs (another build, say) query the same store. Default: a temporary one.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Queries of each kind to time.
    #[arg(long, default_value_t = 500)]
    pub queries: usize,
    /// Page size of each query (the API's default is 100).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
}

/// Feeds the documents are spread over (signed in parallel).
const FEEDS: usize = 8;
/// Documents per feed per signing round (one ingest batch each).
const ROUND_DOCS: usize = 1024;

fn feed_org(i: usize) -> OrgId {
    OrgId::new(&format!("QUERY-{i}")).expect("a valid organization id")
}

fn feed_key(i: usize) -> SigningKey {
    SigningKey::from_bytes(&[100 + i as u8; 32])
}

/// Runs the benchmark and prints its figures.
pub fn run(args: &QueryArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.docs >= FEEDS && args.queries > 0, "--docs must be at least {FEEDS}, --queries positive");
    anyhow::ensure!(args.limit > 0 && args.limit <= crate::store::QUERY_LIMIT_MAX, "--limit must be 1 to 1000");
    let data = match shared_dir() {
        Some(dir) => HsData::load(&dir)?,
        None => HsData::excerpt(),
    };
    println!(
        "entrepot bench query: {} × {} cores",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    let network = network_id(BENCH_NETWORK);
    let mut keyring = Keyring::default();
    for i in 0..FEEDS {
        keyring
            .insert(Organization {
                id: feed_org(i),
                name: format!("Query benchmark customs {i}"),
                keys: vec![hex::encode(feed_key(i).verifying_key().to_bytes())],
                types: None,
            })
            .map_err(anyhow::Error::msg)?;
    }
    let temporary = args.store.is_none();
    let dir = args.store.clone().unwrap_or_else(|| super::temp_store_dir("query"));
    let store = Store::open(&dir, &network)?;
    let held = store.last_arrival() as usize;
    if held < args.docs {
        let t = Instant::now();
        fill(&store, &data, &network, &keyring, held, args.docs)?;
        println!(
            "store      filled {} documents in {:.0} s ({})",
            args.docs - held,
            t.elapsed().as_secs_f64(),
            dir.display()
        );
    }
    // Queried at rest, as a replica that holds its documents is: memtables flushed and the
    // compactions they start finished.
    let t = Instant::now();
    store.settle(Duration::from_secs(600))?;
    println!(
        "store      {} documents at rest (settled in {:.1} s): {:.0} MB of live SST files, {:.0} MB in its directory, {}",
        store.last_arrival(),
        t.elapsed().as_secs_f64(),
        store.disk_bytes() as f64 / 1e6,
        super::dir_bytes(&dir) as f64 / 1e6,
        dir.display()
    );

    let rates = measure_verify_rates(2000);
    println!("reference  ed25519 verify_strict, 1 core:      {:>9.0} signatures/s", rates.strict_one_core);

    let codes: Vec<&str> =
        data.hs2022.iter().filter(|e| e.level == 6 && !e.code.starts_with("99")).map(|e| e.code.as_str()).collect();
    let edition = Edition::parse("HS2022")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let first = NaiveDate::from_ymd_opt(2022, 1, 1).expect("a date");
    type MakeQuery<'a> = Box<dyn Fn(&mut rand::rngs::StdRng) -> Query + 'a>;
    let kinds: [(&str, MakeQuery); 3] = [
        (
            "HS prefix, 4 digits",
            Box::new(|rng| Query {
                hs: Some((edition, codes[rng.gen_range(0..codes.len())][..4].to_owned())),
                ..Query::default()
            }),
        ),
        (
            "HS prefix, 6 digits",
            Box::new(|rng| Query {
                hs: Some((edition, codes[rng.gen_range(0..codes.len())].to_owned())),
                ..Query::default()
            }),
        ),
        (
            "in force on D (2022–2028)",
            Box::new(|rng| Query {
                in_force_on: Some(first + chrono::Days::new(rng.gen_range(0..7 * 365))),
                ..Query::default()
            }),
        ),
    ];
    for (name, make) in kinds {
        let mut times = Vec::with_capacity(args.queries);
        let mut results = 0usize;
        for _ in 0..args.queries {
            let q = Query { limit: args.limit, ..make(&mut rng) };
            let t = Instant::now();
            let page = store.query(&q)?;
            times.push(t.elapsed());
            results += page.ids.len();
        }
        times.sort();
        println!(
            "query      {name:<26} first page of {}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({:.0} results per page, {} queries)",
            args.limit,
            ms(percentile(&times, 0.50)),
            ms(percentile(&times, 0.99)),
            ms(*times.last().unwrap_or(&Duration::ZERO)),
            results as f64 / args.queries as f64,
            args.queries
        );
    }
    drop(store);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Signs and ingests documents `held..docs`, spread round-robin over the feeds by rounds.
fn fill(
    store: &Store,
    data: &HsData,
    network: &[u8; 32],
    keyring: &Keyring,
    held: usize,
    docs: usize,
) -> anyhow::Result<()> {
    let ingestor = Ingestor { store, network_id: *network, keyring, sync: false };
    let mut next = held;
    while next < docs {
        let round = (docs - next).min(FEEDS * ROUND_DOCS);
        let batches: Vec<anyhow::Result<Vec<Vec<u8>>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..FEEDS)
                .map(|f| {
                    let start = next + f * round / FEEDS;
                    let end = next + (f + 1) * round / FEEDS;
                    scope.spawn(move || -> anyhow::Result<Vec<Vec<u8>>> {
                        let org = feed_org(f);
                        let head = store.head(&org)?;
                        let (seq, prev) = head.map_or((Seq::FIRST, DocumentId::ZERO), |h| (h.seq.next(), h.id));
                        let drafts = ruling_documents_from(data, start, end - start, org.as_str());
                        Ok(sign_feed(&drafts, &org, &feed_key(f), network, seq, prev))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("signing does not panic")).collect()
        });
        for batch in batches {
            let report = ingestor.ingest_report(batch?)?;
            if let Some(e) = report.results.into_iter().find_map(Result::err) {
                anyhow::bail!("benchmark document refused: {e}");
            }
        }
        next += round;
    }
    Ok(())
}
