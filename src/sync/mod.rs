//! Replication logic, free of I/O: the sync protocol's messages and their byte encoding
//! (`wire`), and the state machine that decides what to fetch from whom (`engine`).
//!
//! Nothing here imports libp2p, tokio or RocksDB: the node feeds the engine events (peer
//! connected, status received, range arrived, documents ingested) and carries out the
//! actions it returns. That keeps the replication rules testable without sockets.

pub mod engine;
pub mod heads;
pub mod wire;

pub use engine::{Action, IngestResult, Offense, PeerKey, RangeId, SyncConfig, SyncEngine};
pub use wire::{FeedHead, HeadsDigest, RefusalCode, Request, Response, Status};
