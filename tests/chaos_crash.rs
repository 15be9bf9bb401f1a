//! Chaos: a publisher and two replicas, each a real `entrepot run` process, killed with SIGKILL
//! at seeded random moments while documents are being published over HTTP, ingested and
//! synced, and restarted at once. At the end every acknowledged (201) document is on every
//! node, every store opens, and the three nodes hold identical feeds.
//!
//! `ENTREPOT_CHAOS_KILLS` (default 50) scales the run; `ENTREPOT_CHAOS_SEED` replays a kill
//! schedule (the moments and victims; thread timing still varies from run to run).

mod common;
#[path = "common/procs.rs"]
mod procs;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use procs::*;

#[test]
fn nodes_killed_at_random_moments_lose_no_acknowledged_document_and_converge() {
    let kills: usize = std::env::var("ENTREPOT_CHAOS_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(50);
    let seed: u64 = std::env::var("ENTREPOT_CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0xC4A0_5EED);
    println!("chaos: {kills} kills, seed {seed} (ENTREPOT_CHAOS_KILLS / ENTREPOT_CHAOS_SEED to scale / replay)");
    let tmp = tempfile::tempdir().unwrap();
    let hosts: Vec<_> = (0..3).map(|_| ("127.0.0.1".to_string(), free_port(), free_port())).collect();
    let nodes = init_nodes(tmp.path(), "chaos-test", &["WCO"], &["R1", "R2"], &hosts);
    set_bootstrap(&nodes[1], std::slice::from_ref(&nodes[0].p2p));
    set_bootstrap(&nodes[2], &[nodes[1].p2p.clone(), nodes[0].p2p.clone()]);
    let mut procs: Vec<Option<Proc>> = nodes.iter().map(|n| Some(Proc::start(n, &[]))).collect();

    // The publisher: POSTs continuously; only 201 answers count as acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let publisher = {
        let (stop, acked, attempts, node) = (stop.clone(), acked.clone(), attempts.clone(), nodes[0].clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                attempts.fetch_add(1, Ordering::Relaxed);
                match publish_one(&node, n) {
                    Some(id) => acked.lock().unwrap().push(id),
                    None => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })
    };

    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut per_node = [0usize; 3];
    for k in 0..kills {
        std::thread::sleep(Duration::from_millis(100 + rng.below(500)));
        let victim = rng.below(3) as usize;
        procs[victim].take().unwrap().kill();
        per_node[victim] += 1;
        std::thread::sleep(Duration::from_millis(rng.below(200)));
        procs[victim] = Some(Proc::start(&nodes[victim], &[]));
        if k % 10 == 9 {
            println!("chaos: {} kills, {} acknowledged so far", k + 1, acked.lock().unwrap().len());
        }
    }
    stop.store(true, Ordering::Relaxed);
    publisher.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let chaos_time = started.elapsed();
    println!(
        "chaos: {kills} SIGKILLs (publisher {}, R1 {}, R2 {}) in {chaos_time:.1?}; {} of {} publish attempts acknowledged",
        per_node[0],
        per_node[1],
        per_node[2],
        acked.len(),
        attempts.load(Ordering::Relaxed)
    );
    assert!(!acked.is_empty(), "nothing was acknowledged during the chaos");

    // Converge: identical feeds everywhere, holding at least every acknowledged document.
    let deadline = Instant::now() + Duration::from_secs(120);
    let converged_at = loop {
        let all: Vec<_> = nodes.iter().map(|n| feeds(n.http)).collect();
        let head = all[0].as_ref().and_then(|f| f.get(0)).and_then(|f| f["seq"].as_u64()).unwrap_or(0);
        if all.iter().all(|f| f.is_some() && f == &all[0]) && head as usize >= acked.len() {
            break Instant::now();
        }
        assert!(Instant::now() < deadline, "no convergence within 120 s: {all:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("chaos: converged {:.1?} after the last kill", converged_at.duration_since(started + chaos_time));
    for node in &nodes {
        for id in &acked {
            // Read as the node's operator (with its token): thousands of reads in a row are
            // over the per-client rate limit an anonymous reader gets.
            let path = format!("/v1/documents/{id}");
            let got = try_request(node.http, "GET", &path, Some(&node.token), b"", Duration::from_secs(10));
            assert_eq!(got.map(|g| g.0), Some(200), "acknowledged {id} missing on {}", node.dir.display());
        }
    }
    for p in procs.iter_mut() {
        assert!(p.take().unwrap().stop(), "a node did not stop cleanly after the chaos");
    }
    for node in &nodes {
        let opened = entrepot::config::open(&node.dir).expect("store opens after the chaos");
        let docs: usize = opened.store.heads().unwrap().iter().map(|(_, h)| h.seq.0 as usize).sum();
        assert!(docs >= acked.len());
    }
    println!("chaos: all {} acknowledged documents on all 3 nodes; all stores open", acked.len());
}
