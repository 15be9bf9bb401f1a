//! `entrepot bench transpose`: the transposition workbench on a national tariff built from the
//! HS2017 subheadings (national splits of two digits), against a store holding the HS2017 and
//! HS2022 nomenclatures, the amendment sets and the correlation tables.
//!
//! The reference measured in the same run is a plain read of every held document (decode and
//! parse its JSON body): the floor of any classification that reads the documents.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use super::{cpu_model, percentile, sign_feed, temp_store_dir};
use crate::authority::{Keyring, Organization};
use crate::config::network_id;
use crate::document::{decode_owned, DocumentId, Edition, OrgId, Seq};
use crate::hsdata::{
    amendment_documents, correlation_documents, nomenclature_documents, nomenclature_documents_2017, shared_dir, HsData,
};
use crate::ingest::Ingestor;
use crate::store::Store;
use crate::transposition::{classify, drafts, load_basis, parse_tariff, DraftScope};

/// Options of `entrepot bench transpose`.
#[derive(Debug, Clone, clap::Args)]
pub struct TransposeArgs {
    /// National lines in the tariff (the HS2017 subheadings, split 10, 20, … 90 as needed).
    #[arg(long, default_value_t = 10_000)]
    pub lines: usize,
    /// Timed runs (the median and worst are printed).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
}

/// Most lines the benchmark builds (nine national lines per subheading).
const LINES_MAX: usize = 45_000;

/// Runs the benchmark and prints its figures.
pub fn run(args: &TransposeArgs) -> anyhow::Result<()> {
    anyhow::ensure!((1..=LINES_MAX).contains(&args.lines), "--lines must be 1 to {LINES_MAX}");
    anyhow::ensure!((1..=100).contains(&args.runs), "--runs must be 1 to 100");
    let (data, source) = match shared_dir() {
        Some(dir) => (HsData::load(&dir)?, format!("full HS data in {}", dir.display())),
        None => (HsData::excerpt(), "embedded five-chapter excerpt (../shared/data/hs not found)".to_owned()),
    };
    println!(
        "entrepot bench transpose: {} × {} cores, {source}",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );

    let network = network_id("entrepot-bench");
    let org = OrgId::new("WCO")?;
    let key = SigningKey::from_bytes(&[43; 32]);
    let mut keyring = Keyring::default();
    keyring
        .insert(Organization {
            id: org.clone(),
            name: "Benchmark secretariat".into(),
            keys: vec![hex::encode(key.verifying_key().to_bytes())],
            types: None,
        })
        .map_err(anyhow::Error::msg)?;
    let mut drafts_in = nomenclature_documents(&data);
    drafts_in.extend(nomenclature_documents_2017(&data));
    drafts_in.extend(amendment_documents(&data));
    drafts_in.extend(correlation_documents(&data));
    let envelopes = sign_feed(&drafts_in, &org, &key, &network, Seq::FIRST, DocumentId::ZERO);
    let dir = temp_store_dir("transpose");
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&dir, &network)?;
    let ingestor = Ingestor { store: &store, network_id: network, keyring: &keyring, sync: true };
    for chunk in envelopes.chunks(1024) {
        for r in ingestor.ingest(chunk.to_vec())? {
            r?;
        }
    }
    println!(
        "store      {} HS documents (nomenclatures HS2017 and HS2022, amendment sets, correlation tables)",
        envelopes.len()
    );

    let subheadings: Vec<&str> =
        data.hs2017.iter().filter(|e| e.level == 6 && !e.code.starts_with("99")).map(|e| e.code.as_str()).collect();
    let mut csv = String::from("code,description\n");
    let mut n = 0;
    'fill: for suffix in (10..=90).step_by(10) {
        for s in &subheadings {
            if n == args.lines {
                break 'fill;
            }
            csv.push_str(&format!("{s}{suffix},national line {suffix} of {s}\n"));
            n += 1;
        }
    }
    println!("tariff     {n} national lines of 8 digits, {} bytes", csv.len());
    let (from, to) = (Edition::parse("HS2017")?, Edition::parse("HS2022")?);
    let scope = DraftScope { administration: "BENCH".into(), scope: "national_tariff".into(), from, to };

    let (mut reference, mut total) = (Vec::new(), Vec::new());
    let (mut basis_t, mut classify_t) = (Vec::new(), Vec::new());
    let mut flagged = 0;
    for _ in 0..args.runs {
        // Reference: read and parse every held document.
        let t = Instant::now();
        let mut bodies = 0usize;
        for bytes in store.all_documents() {
            let doc = decode_owned(bytes?)?;
            let v: serde_json::Value = serde_json::from_slice(doc.body())?;
            bodies += usize::from(v.is_object());
        }
        reference.push(t.elapsed());
        anyhow::ensure!(bodies == envelopes.len(), "read {bodies} of {} documents", envelopes.len());

        let t = Instant::now();
        let lines = parse_tariff(csv.as_bytes())?;
        let basis = load_basis(&store, from, to)?;
        basis_t.push(t.elapsed());
        let c = Instant::now();
        let results = classify(&basis, &lines);
        let out = drafts(&scope, &results).map_err(anyhow::Error::msg)?;
        classify_t.push(c.elapsed());
        total.push(t.elapsed());
        flagged = results.iter().filter(|r| r.relationship != crate::transposition::Relationship::Unchanged).count();
        anyhow::ensure!(!out.is_empty());
    }
    for v in [&mut reference, &mut total, &mut basis_t, &mut classify_t] {
        v.sort();
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let show = |name: &str, v: &[Duration]| {
        println!(
            "{name} median {:>8.1} ms   worst {:>8.1} ms",
            ms(percentile(v, 0.5)),
            ms(*v.last().expect("runs > 0"))
        );
    };
    show("reference  read + parse every held document:   ", &reference);
    show("transpose  tariff + basis from the store:       ", &basis_t);
    show("transpose  classify + drafts:                   ", &classify_t);
    show("transpose  total (file in → drafts out):        ", &total);
    println!("result     {n} lines, {flagged} flagged (not unchanged), {} runs", args.runs);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
