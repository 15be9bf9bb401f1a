//! The transparency log of each feed (docs/PROTOCOL.md §13): an RFC 6962 Merkle tree over the
//! feed's document ids, checkpoints its publisher signs as C2SP signed notes, and witness
//! cosignatures (C2SP `tlog-cosignature`) that make each one a receipt. Pure: no I/O, no
//! clock (times are parameters); the store keeps the tree's nodes (`store/tlog.rs`).

pub mod checkpoint;
pub mod merkle;
pub mod note;
pub mod signed;
