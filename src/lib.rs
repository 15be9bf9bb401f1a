//! entrepot: a peer-to-peer exchange node for signed customs and trade documents.
//!
//! See ARCHITECTURE.md for the code map and the invariants that hold between modules.

pub mod api;
pub mod authority;
pub mod bundle;
pub mod charter;
pub mod clock;
pub mod config;
pub mod config_check;
pub mod doctype;
pub mod document;
pub mod hsdata;
pub mod ingest;
pub mod json;
pub mod net;
pub mod node;
pub mod notice;
pub mod publish;
pub mod search;
pub mod service;
pub mod store;
pub mod sync;
pub mod tlog;
pub mod transposition;
pub mod vectors;

pub mod bench;
pub mod harness;
