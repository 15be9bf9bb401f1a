//! The wall clock, read at the edges only: the ingest pipeline's store-facing part, publishing,
//! the CLI and the running node pass the time down to the pure checks (`ingest::check`,
//! `Keyring::check`, the charter), which never read it themselves.

/// Milliseconds since the Unix epoch now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
