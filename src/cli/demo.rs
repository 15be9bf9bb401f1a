//! `entrepot demo`: a local charter network of three nodes filled with real HS data.
//!
//! The demo writes a genesis charter (three root keys, threshold 2, made in the demo folder:
//! in a real network each lives offline with its holder), pins it in every node and certifies
//! each node for its organization. WCO publishes the HS2022 nomenclature, the HS2017→HS2022
//! amendment sets and correlation tables built from the UN data, and classification opinions;
//! France's customs publishes advance rulings and enforcement notices (two of them sealed: only
//! nodes of their audience receive the payloads); Germany's read replica, which only knows
//! France's node, replicates every document and, being in both audiences, the two payloads.
//! Each node serves the web page and API.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;

use ed25519_dalek::SigningKey;
use entrepot::api::{self, ApiAuth};
use entrepot::charter::{self, Charter, Member, MemberKey, Permission, PublicKey, Role, Root, SignedCharter};
use entrepot::config::{self, InitOptions};
use entrepot::document::{OrgId, Seq, TypeName};
use entrepot::hsdata::{
    amendment_documents, correlation_documents, nomenclature_documents, nomenclature_documents_2017,
    ruling_documents_from, shared_dir, DraftDocument, HsData,
};
use entrepot::node::RunningNode;
use entrepot::search::SearchTask;
use entrepot::service::Service;

use super::serve::shutdown_signal;

const NETWORK: &str = "entrepot-demo";

struct DemoNode {
    name: &'static str,
    /// Publishing organization (id, name); `None` for the read replica.
    org: Option<(&'static str, &'static str)>,
    /// The member organization the node belongs to, its role and WCO region.
    member: (&'static str, &'static str, Role, Option<&'static str>),
    types: &'static [&'static str],
}

const NODES: [DemoNode; 3] = [
    DemoNode {
        name: "wco",
        org: Some(("WCO", "World Customs Organization")),
        member: ("WCO", "World Customs Organization", Role::Secretariat, None),
        types: &[
            "hs.amendment",
            "hs.correlation",
            "hs.nomenclature",
            "classification.opinion",
            "classification.decision",
            "lifecycle.supersede",
            "lifecycle.correct",
            "lifecycle.withdraw",
        ],
    },
    DemoNode {
        name: "fr",
        org: Some(("FR", "France, Direction generale des douanes et droits indirects")),
        member: ("FR", "France, Direction generale des douanes et droits indirects", Role::Customs, Some("EU")),
        types: &[
            "classification.ruling",
            "enforcement.notice",
            "hs.transposition",
            "lifecycle.withdraw",
            "lifecycle.correct",
        ],
    },
    DemoNode {
        name: "replica",
        org: None,
        member: ("DE", "Germany, Generalzolldirektion", Role::Customs, Some("EU")),
        types: &["classification.ruling"],
    },
];

fn init_nodes(root: &Path, port: u16) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let mut members = Vec::new();
    let mut org_keys = Vec::new();
    for (i, n) in NODES.iter().enumerate() {
        let dir = root.join(n.name);
        // Port 0 lets the system choose each port (tests); otherwise three consecutive ports.
        let http = format!("127.0.0.1:{}", if port == 0 { 0 } else { port + i as u16 });
        let options = InitOptions {
            network: NETWORK,
            organization: n.org.map(|(id, name)| (OrgId::new(id).expect("demo org id"), name.to_owned())),
            p2p_listen: "/ip4/127.0.0.1/tcp/0",
            http_listen: &http,
            bootstrap: &[],
            charter: None,
        };
        config::init(&dir, &options)?;
        // A publishing node signs with its organization's key; the replica's organization (a
        // member that publishes nothing here) gets a key only to certify its node.
        let key = match n.org {
            Some(_) => config::load_signing_key(&dir.join("keys/signing.key"))?,
            None => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let path = root.join(format!("{}-organization.key", n.member.0.to_lowercase()));
                std::fs::write(&path, format!("{}\n", hex::encode(key.to_bytes())))?;
                key
            }
        };
        let (id, name, role, region) = n.member;
        members.push(Member {
            id: OrgId::new(id)?,
            name: name.into(),
            country: (id.len() == 2).then(|| id.to_owned()),
            region: region.map(str::to_owned),
            role,
            keys: vec![MemberKey {
                key: PublicKey::new(key.verifying_key().to_bytes())?,
                valid_from_seq: Seq::FIRST,
                revoked_at_seq: None,
            }],
            permissions: n
                .types
                .iter()
                .map(|t| Ok(Permission { doc_type: TypeName::new(t)?, hs_chapters: None, regions: None }))
                .collect::<Result<Vec<_>>>()?,
        });
        org_keys.push(key);
        dirs.push(dir);
    }
    let genesis = demo_charter(root, members)?;
    for ((dir, n), key) in dirs.iter().zip(&NODES).zip(&org_keys) {
        pin_and_certify(dir, &genesis, &OrgId::new(n.member.0)?, key)?;
    }
    Ok(dirs)
}

/// The genesis charter, signed by two of three root keys made for the demo (kept in
/// `<root>/roots/`, so `entrepot charter next/sign` can be tried on it).
fn demo_charter(root: &Path, organizations: Vec<Member>) -> Result<SignedCharter> {
    let roots_dir = root.join("roots");
    std::fs::create_dir_all(&roots_dir)?;
    let roots: Vec<SigningKey> = (0..3).map(|_| SigningKey::generate(&mut rand::rngs::OsRng)).collect();
    for (i, k) in roots.iter().enumerate() {
        std::fs::write(roots_dir.join(format!("root-{i}.key")), format!("{}\n", hex::encode(k.to_bytes())))?;
    }
    let expires = (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = Charter {
        version: 1,
        previous: None,
        expires,
        root: Root {
            keys: roots.iter().map(|k| PublicKey::new(k.verifying_key().to_bytes())).collect::<Result<_, _>>()?,
            threshold: 2,
        },
        organizations,
    };
    let mut signed = SignedCharter::unsigned(body.to_body())?;
    signed.sign(&roots[0])?;
    signed.sign(&roots[1])?;
    std::fs::write(root.join("genesis.charter"), charter::encode(&signed))?;
    Ok(signed)
}

/// Pins the genesis in a node directory and certifies the node for `org` with `key`.
fn pin_and_certify(dir: &Path, genesis: &SignedCharter, org: &OrgId, key: &SigningKey) -> Result<()> {
    // `init` made a store for the network name; a charter network's id is the genesis hash.
    std::fs::remove_dir_all(dir.join("db"))?;
    std::fs::create_dir_all(dir.join("charter"))?;
    std::fs::write(dir.join("charter").join(config::charter_file_name(1)), charter::encode(genesis))?;
    let peer = entrepot::net::load_identity(&dir.join("keys/node.key"))?.public().to_peer_id();
    let cert = charter::certify_node(&genesis.hash().0, org, &peer.to_string(), entrepot::clock::now_ms(), key)?;
    std::fs::write(dir.join("node.cert"), &cert.bytes)?;
    let mut text = std::fs::read_to_string(dir.join(config::CONFIG_FILE))?;
    text.push_str(&format!(
        "\n# The demo's charter network: the pinned genesis (also the network id) and this node's\n\
         # certificate from its organization.\n[charter]\ngenesis_hash = \"{}\"\ncertificate = \"node.cert\"\n",
        genesis.hash()
    ));
    std::fs::write(dir.join(config::CONFIG_FILE), text)?;
    Ok(())
}

fn opinions() -> Vec<DraftDocument> {
    let op = |reference: &str, title: &str, product: &str, code: &str, reasons: &str| DraftDocument {
        doc_type: "classification.opinion",
        body: json!({
            "title": { "en": title },
            "reference": reference,
            "product": { "description": { "en": product } },
            "classification": { "edition": "HS2022", "code": code },
            "gir": ["1", "6"],
            "reasons": { "en": reasons },
            "validity": { "from": "2022-01-01" }
        }),
    };
    vec![
        op(
            "HSC/69/2022/1",
            "Camera drone of 0.9 kg",
            "Quadcopter with a built-in camera, maximum take-off weight 0.9 kg, remotely controlled.",
            "8806.22",
            "Heading 8806 covers unmanned aircraft; the camera does not give the whole its essential character.",
        ),
        op(
            "HSC/69/2022/2",
            "Used printed circuit boards collected for metal recovery",
            "Waste printed circuit boards, sorted, from discarded computers.",
            "8549.11",
            "Heading 8549 covers electrical and electronic waste and scrap; subheading 8549.11 the kinds containing batteries.",
        ),
        op(
            "HSC/70/2022/4",
            "Nicotine pouches without tobacco",
            "Pouches of nicotine salts and plant fibres, for oral use, without tobacco.",
            "2404.91",
            "Heading 2404 covers products containing nicotine intended for intake into the body otherwise than by inhalation.",
        ),
    ]
}

/// France's rulings on products WCO has an opinion on, one of them under another heading: a
/// divergence the HS Committee would be asked to resolve (`GET /v1/divergences?chapter=88`).
fn divergent_rulings() -> Vec<DraftDocument> {
    let ruling =
        |reference: &str, title: &str, fr_title: &str, product: &str, fr_product: &str, code: &str, reasons: &str| {
            DraftDocument {
                doc_type: "classification.ruling",
                body: json!({
                    "title": { "en": title, "fr": fr_title },
                    "reference": reference,
                    "product": { "description": { "en": product, "fr": fr_product } },
                    "classification": { "edition": "HS2022", "code": code },
                    "gir": ["1", "3 (b)", "6"],
                    "reasons": { "en": reasons },
                    "validity": { "from": "2025-03-01", "to": "2028-02-29" }
                }),
            }
        };
    vec![
        ruling(
            "FR-BTI-2025-000911",
            "Quadcopter camera drone, 0.9 kg",
            "Drone quadricoptère avec caméra, 0,9 kg",
            "Quadcopter with a built-in camera, maximum take-off weight 0.9 kg, remotely controlled, sold for aerial photography.",
            "Quadricoptère avec caméra intégrée, masse maximale au décollage 0,9 kg, télécommandé, vendu pour la photographie aérienne.",
            "8525.89",
            "The camera gives the whole its essential character under GIR 3 (b): the drone is a carrier for a digital camera of heading 8525.",
        ),
        ruling(
            "FR-BTI-2025-000912",
            "Nicotine pouches without tobacco",
            "Sachets de nicotine sans tabac",
            "Pouches of nicotine salts and plant fibres, for oral use, without tobacco.",
            "Sachets de sels de nicotine et de fibres végétales, à usage oral, sans tabac.",
            "2404.91",
            "Heading 2404 covers products containing nicotine intended for intake otherwise than by inhalation.",
        ),
    ]
}

/// France's enforcement notices: (body, payload). A public notice carries its payload inline;
/// the others are sealed, so only their audience receives the payload and every other node
/// holds the signed commitment to it.
fn notices() -> Vec<(DraftDocument, serde_json::Value)> {
    let notice = |title: &str,
                  kind: &str,
                  risk: &str,
                  code: &str,
                  handling: &str,
                  audience: serde_json::Value,
                  summary: &str| {
        let body = json!({
            "title": { "en": title },
            "validity": { "from": "2026-01-01", "to": "2026-12-31" },
            "header": {
                "kind": kind, "risk_area": risk,
                "hs": [{ "edition": "HS2022", "code": code }],
                "region": "EU", "handling": handling
            },
            "audience": audience,
        });
        let payload = json!({ "summary": { "en": summary }, "indicators": ["declared value far below market price"] });
        (DraftDocument { doc_type: "enforcement.notice", body }, payload)
    };
    vec![
        notice(
            "E-waste declared as metal scrap",
            "alert",
            "waste",
            "8549.11",
            "public",
            json!({ "scope": "all_customs" }),
            "Consignments of mixed electronic waste declared under 7204 to avoid export controls on hazardous waste.",
        ),
        notice(
            "Counterfeit camera drones",
            "ipr_alert",
            "ipr",
            "8806.22",
            "customs_only",
            json!({ "scope": "region", "region": "EU" }),
            "Drones bearing a protected trademark without authorisation, shipped in small parcels.",
        ),
        notice(
            "Unlabelled nicotine pouches",
            "seizure_summary",
            "tobacco",
            "2404.91",
            "restricted",
            json!({ "scope": "group", "group": ["FR", "BE", "DE", "LU"] }),
            "Pouches without health warnings or excise marks found in express freight.",
        ),
    ]
}

/// Publishes notices: a public one with its payload inline, the others sealed.
fn publish_notices(service: &Service, notices: Vec<(DraftDocument, serde_json::Value)>) -> Result<usize> {
    let n = notices.len();
    for (mut draft, payload) in notices {
        let body = &mut draft.body;
        let published = if body["header"]["handling"] == "public" {
            body["payload"] = payload;
            service.publish(draft.doc_type, body.to_string().as_bytes())
        } else {
            service.publish_notice(body.to_string().as_bytes(), &payload)
        };
        published.with_context(|| format!("publishing the notice '{}'", body["title"]["en"]))?;
    }
    Ok(n)
}

fn publish_all(service: &Service, drafts: &[DraftDocument]) -> Result<Vec<entrepot::document::DocumentId>> {
    drafts
        .iter()
        .map(|d| {
            service
                .publish(d.doc_type, d.body.to_string().as_bytes())
                .map(|p| p.id)
                .with_context(|| format!("publishing a {}", d.doc_type))
        })
        .collect()
}

/// What each publisher puts on the network.
fn fill(wco: &Service, fr: &Service, data: &HsData) -> Result<usize> {
    let mut n = 0;
    n += publish_all(wco, &nomenclature_documents(data))?.len();
    n += publish_all(wco, &nomenclature_documents_2017(data))?.len();
    n += publish_all(wco, &amendment_documents(data))?.len();
    n += publish_all(wco, &correlation_documents(data))?.len();
    let ops = publish_all(wco, &opinions())?;
    // The drone opinion is superseded by a clearer one: the chain shows on the document page.
    let mut better = opinions().remove(0);
    better.body["reference"] = json!("HSC/71/2023/2");
    better.body["title"] = json!({ "en": "Camera drone of 0.9 kg (revised reasons)" });
    better.body["validity"] = json!({ "from": "2023-04-01" });
    better.body["references"] = json!([{ "kind": "supersedes", "id": ops[0].to_hex() }]);
    let revised = publish_all(wco, &[better])?;
    let supersede = DraftDocument {
        doc_type: "lifecycle.supersede",
        body: json!({
            "title": { "en": "Opinion HSC/69/2022/1 superseded" },
            "target": ops[0].to_hex(),
            "replacement": revised[0].to_hex(),
            "reason": { "en": "Reasons revised after the 71st Session." },
            "validity": { "from": "2023-04-01" }
        }),
    };
    n += ops.len() + revised.len() + publish_all(wco, &[supersede])?.len();
    let rulings = publish_all(fr, &ruling_documents_from(data, 0, 60, "FR"))?;
    let withdraw = DraftDocument {
        doc_type: "lifecycle.withdraw",
        body: json!({
            "title": { "en": "Ruling withdrawn at the holder's request" },
            "target": rulings[0].to_hex(),
            "reason": { "en": "The goods are no longer imported." },
            "validity": { "from": "2025-06-01" }
        }),
    };
    n += rulings.len() + publish_all(fr, &[withdraw])?.len() + publish_notices(fr, notices())?;
    n += publish_all(fr, &divergent_rulings())?.len();
    n += publish_transposition(fr, data)?;
    Ok(n)
}

/// France runs the transposition workbench on a national tariff of HS2017 lines (each
/// subheading split in two) and publishes, as reviewed, its chapters 24 and 88 for HS2022.
fn publish_transposition(fr: &Service, data: &HsData) -> Result<usize> {
    let mut csv = String::from("code,description\n");
    for e in data.hs2017.iter().filter(|e| e.level == 6 && (e.code.starts_with("24") || e.code.starts_with("88"))) {
        let d: String = e.description.chars().filter(|c| !matches!(c, ',' | '"')).take(60).collect();
        csv.push_str(&format!("{}10,{d} (national line 10)\n{}90,{d} (other)\n", e.code, e.code));
    }
    let scope = entrepot::transposition::DraftScope {
        administration: "FR".into(),
        scope: "national_tariff".into(),
        from: entrepot::document::Edition::parse("HS2017")?,
        to: entrepot::document::Edition::parse("HS2022")?,
    };
    // France's node works from what it holds: wait (bounded) until WCO's HS documents reached it.
    let expected = correlation_documents(data).len() + amendment_documents(data).len();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let held = entrepot::transposition::load_basis(&fr.store, scope.from, scope.to)
            .map(|b| {
                b.documents.get("hs.correlation").copied().unwrap_or(0)
                    + b.documents.get("hs.amendment").copied().unwrap_or(0)
            })
            .unwrap_or(0);
        if held >= expected {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "France's node holds {held} of WCO's {expected} amendment sets and correlation tables after 120 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let view = entrepot::api::transposition::workbench(&fr.store, &scope, csv.as_bytes())
        .context("running the transposition workbench")?;
    let reviewed: Vec<DraftDocument> = view
        .drafts
        .into_iter()
        .map(|mut body| {
            body["status"] = json!("published");
            DraftDocument { doc_type: "hs.transposition", body }
        })
        .collect();
    Ok(publish_all(fr, &reviewed)?.len())
}

async fn start_node(
    dir: &Path,
    bootstrap: Option<&str>,
) -> Result<(Arc<Service>, (RunningNode, SearchTask), std::net::SocketAddr, ApiAuth, tokio::net::TcpListener)> {
    let mut node = config::open(dir)?;
    if let Some(b) = bootstrap {
        node.config.p2p.bootstrap = vec![b.to_owned()];
    }
    let auth = ApiAuth::from_config(dir, &node.config.http)?;
    let config = node.config.clone();
    let service = Arc::new(Service::new(node));
    let listener = tokio::net::TcpListener::bind(&config.http.listen)
        .await
        .with_context(|| format!("port {} is taken: give --port with three free ports from it", config.http.listen))?;
    let http = listener.local_addr()?;
    let running = entrepot::node::start(service.clone(), dir, &config).await?;
    let search = entrepot::search::start(service.clone())?;
    for _ in 0..250 {
        if !service.peers.read().unwrap_or_else(|p| p.into_inner()).listen_addresses.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((service, (running, search), http, auth, listener))
}

/// Waits (at most 30 s) for the replica to fetch the sealed payloads its organization may
/// read, and says how many it holds; the others stay with their audience.
async fn report_payloads(rep: &Arc<Service>) {
    let Some(reader) = rep.certificate().map(|c| c.organization) else { return };
    let started = Instant::now();
    loop {
        let s = rep.clone();
        let r = reader.clone();
        let counts = tokio::task::spawn_blocking(move || -> Option<(usize, usize)> {
            let ty = TypeName::new(entrepot::notice::NOTICE_TYPE).ok()?;
            let query = entrepot::store::Query { doc_type: Some(ty), limit: 1000, ..Default::default() };
            let page = s.store.query(&query).ok()?;
            let (mut readable, mut held) = (0, 0);
            for id in page.ids {
                let doc = s.document(&id).ok()??;
                if entrepot::notice::sealed_ref(&doc).is_some() && s.may_read(&r, &doc) {
                    readable += 1;
                    held += usize::from(s.store.has_payload(&id).ok()?);
                }
            }
            Some((readable, held))
        })
        .await
        .ok()
        .flatten();
        if let Some((readable, held)) = counts {
            if held == readable || started.elapsed() > Duration::from_secs(30) {
                println!(
                    "the replica ({reader}) holds the sealed payloads of {held} of the {readable} notices whose audience includes it; \
                     nodes outside an audience hold only the signed commitment"
                );
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn first_address(service: &Service) -> Option<String> {
    service.peers.read().unwrap_or_else(|p| p.into_inner()).listen_addresses.first().cloned()
}

pub fn demo(root: &Path, port: u16) -> Result<ExitCode> {
    let fresh = !root.join("wco").join(config::CONFIG_FILE).exists();
    let dirs = if fresh { init_nodes(root, port)? } else { NODES.iter().map(|n| root.join(n.name)).collect() };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let (wco, wco_run, wco_http, wco_auth, wco_l) = start_node(&dirs[0], None).await?;
        let wco_addr = first_address(&wco).context("WCO node has no address")?;
        let (fr, fr_run, fr_http, fr_auth, fr_l) = start_node(&dirs[1], Some(&wco_addr)).await?;
        let fr_addr = first_address(&fr).context("France's node has no address")?;
        let (rep, rep_run, rep_http, rep_auth, rep_l) = start_node(&dirs[2], Some(&fr_addr)).await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut servers = tokio::task::JoinSet::new();
        for (service, listener, auth) in
            [(wco.clone(), wco_l, wco_auth), (fr.clone(), fr_l, fr_auth), (rep.clone(), rep_l, rep_auth)]
        {
            let mut rx = stop_rx.clone();
            servers.spawn(async move {
                let _ = api::serve(service, listener, auth, async move {
                    let _ = rx.changed().await;
                })
                .await;
            });
        }
        println!("entrepot demo: network '{NETWORK}' in {}", root.display());
        println!("  WCO (publisher)                     http://{wco_http}/");
        println!("  France customs (publisher)          http://{fr_http}/");
        println!("  Germany customs (read replica, bootstrapped from France)  http://{rep_http}/");
        if let Some(c) = wco.charter_info() {
            println!(
                "  charter version {} ({}), expires {}; nodes admit each other by certificate",
                c.version, c.hash, c.expires
            );
        }
        if fresh {
            let (data, source) = match shared_dir() {
                Some(d) => (HsData::load(&d)?, "the full HS2017/HS2022 files in ../shared/data/hs"),
                None => (HsData::excerpt(), "the five-chapter HS excerpt shipped with entrepot"),
            };
            println!("publishing real HS data from {source}…");
            let (w, f) = (wco.clone(), fr.clone());
            let published = tokio::task::spawn_blocking(move || fill(&w, &f, &data)).await??;
            println!("published {published} signed documents");
        }
        let own_head = |s: &Service| {
            let org = s.publisher.as_ref().map(|p| p.org.clone());
            org.and_then(|o| s.store.head(&o).ok().flatten()).map_or(0, |h| h.seq.0)
        };
        let expected = own_head(&wco) + own_head(&fr);
        let total = |s: &Service| s.store.heads().map(|h| h.iter().map(|(_, h)| h.seq.0).sum::<u64>()).unwrap_or(0);
        let started = Instant::now();
        let wait = async {
            loop {
                let held = total(&rep);
                if held >= expected {
                    println!(
                        "the replica holds all {held} documents ({:.1} s), each verified before it was stored",
                        started.elapsed().as_secs_f64()
                    );
                    report_payloads(&rep).await;
                    return true;
                }
                if started.elapsed() > Duration::from_secs(120) {
                    println!("the replica holds {held} of {expected} documents so far; replication continues");
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let interrupted = tokio::select! {
            _ = wait => false,
            _ = shutdown_signal() => true,
        };
        if !interrupted {
            println!();
            println!("Open the read replica's page:   http://{rep_http}/");
            println!("  HS tracker for 8806 (drones): http://{rep_http}/?view=hs&hs=HS2022/8806");
            println!("  documents citing 8549:        http://{rep_http}/v1/documents?hs=8549&edition=HS2022");
            println!("  network view:                 http://{rep_http}/?view=network");
            println!("  who transposed HS2017→HS2022: http://{rep_http}/?view=transposition&from=HS2017&to=HS2022");
            println!("  search 'drone':               http://{rep_http}/?view=search&q=drone");
            println!("  divergences in chapter 88:    http://{rep_http}/?view=divergences&chapter=88");
            println!("                                curl 'http://{rep_http}/v1/divergences?chapter=88'");
            println!("Publish more with the API (token in {}/keys/api.token). Stop with Ctrl-C.", dirs[0].display());
            shutdown_signal().await;
        }
        println!("stopping…");
        let _ = stop_tx.send(true);
        while servers.join_next().await.is_some() {}
        rep_run.0.shutdown().await;
        rep_run.1.shutdown().await;
        fr_run.0.shutdown().await;
        fr_run.1.shutdown().await;
        wco_run.0.shutdown().await;
        wco_run.1.shutdown().await;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}
