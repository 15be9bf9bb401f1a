//! Per-client rate limit: one token bucket per client address, decided without I/O.
//!
//! Why by address and in the node: the API is meant for an administration's own systems, a few
//! callers each making many requests; one runaway script must not starve the others, and a
//! node behind no proxy has nothing else to protect it. Behind a reverse proxy every request
//! comes from the proxy's address: raise the limit there or let the proxy limit (docs/OPERATIONS.md).
//!
//! Bounds: each bucket holds at most `burst` requests and refills at `per_second`; at most
//! [`CLIENTS_MAX`] buckets are kept (full buckets are forgotten first, since a new bucket is a
//! full one; then the least recently used). IPv6 clients are grouped by their /64, the block
//! one subscriber usually holds, so one host cannot mint fresh buckets.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Client buckets kept at once.
pub const CLIENTS_MAX: usize = 4096;
/// Default sustained rate per client, requests a second.
pub const PER_SECOND_DEFAULT: u32 = 100;
/// Default burst per client, requests.
pub const BURST_DEFAULT: u32 = 400;

/// A bucket's tokens are counted in thousandths, so refill is integer arithmetic.
const MILLI: u64 = 1000;

/// The limit: `per_second == 0` turns it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit { per_second: PER_SECOND_DEFAULT, burst: BURST_DEFAULT }
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// Refuse; a token is back after this many seconds (at least 1).
    Deny {
        retry_after_secs: u64,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    milli_tokens: u64,
    updated: Instant,
}

/// The buckets of every client seen lately.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The address a bucket is kept for: IPv4 as is, IPv6 by its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter { limit, buckets: HashMap::new() }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn capacity(&self) -> u64 {
        u64::from(self.limit.burst.max(1)) * MILLI
    }

    /// Tokens of `b` at `now`, refilled.
    fn refilled(&self, b: &Bucket, now: Instant) -> u64 {
        let elapsed_ms = u64::try_from(now.saturating_duration_since(b.updated).as_millis()).unwrap_or(u64::MAX);
        // per_second tokens a second is per_second thousandths a millisecond.
        b.milli_tokens.saturating_add(elapsed_ms.saturating_mul(u64::from(self.limit.per_second))).min(self.capacity())
    }

    /// Counts one request of `client` at `now`.
    pub fn check(&mut self, client: IpAddr, now: Instant) -> Verdict {
        if self.limit.per_second == 0 {
            return Verdict::Allow;
        }
        let key = client_key(client);
        if !self.buckets.contains_key(&key) && self.buckets.len() >= CLIENTS_MAX {
            self.make_room(now);
        }
        let capacity = self.capacity();
        let tokens = match self.buckets.get(&key) {
            Some(b) => self.refilled(b, now),
            None => capacity,
        };
        let (tokens, verdict) = if tokens >= MILLI {
            (tokens - MILLI, Verdict::Allow)
        } else {
            let missing_ms = (MILLI - tokens).div_ceil(u64::from(self.limit.per_second));
            (tokens, Verdict::Deny { retry_after_secs: missing_ms.div_ceil(1000).max(1) })
        };
        self.buckets.insert(key, Bucket { milli_tokens: tokens, updated: now });
        debug_assert!(self.buckets.len() <= CLIENTS_MAX);
        verdict
    }

    /// Forgets full buckets (a forgotten client starts full again: nothing changes for it),
    /// then, if none was full, the least recently used one.
    fn make_room(&mut self, now: Instant) {
        let capacity = self.capacity();
        let full: Vec<IpAddr> =
            self.buckets.iter().filter(|(_, b)| self.refilled(b, now) >= capacity).map(|(k, _)| *k).collect();
        for k in &full {
            self.buckets.remove(k);
        }
        if self.buckets.len() >= CLIENTS_MAX {
            if let Some(oldest) = self.buckets.iter().min_by_key(|(_, b)| b.updated).map(|(k, _)| *k) {
                self.buckets.remove(&oldest);
            }
        }
    }

    /// Buckets kept now.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_burst_then_the_sustained_rate() {
        let mut l = Limiter::new(RateLimit { per_second: 10, burst: 5 });
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(l.check(ip("10.0.0.1"), t0), Verdict::Allow);
        }
        assert_eq!(l.check(ip("10.0.0.1"), t0), Verdict::Deny { retry_after_secs: 1 });
        // Another client is not affected.
        assert_eq!(l.check(ip("10.0.0.2"), t0), Verdict::Allow);
        // 100 ms is one token at 10 a second.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!(l.check(ip("10.0.0.1"), t1), Verdict::Allow);
        assert!(matches!(l.check(ip("10.0.0.1"), t1), Verdict::Deny { .. }));
        // Over a long pause the bucket refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        let allowed = (0..20).filter(|_| l.check(ip("10.0.0.1"), t2) == Verdict::Allow).count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn retry_after_says_when_a_token_is_back() {
        let mut l = Limiter::new(RateLimit { per_second: 1, burst: 1 });
        let t0 = Instant::now();
        assert_eq!(l.check(ip("192.0.2.1"), t0), Verdict::Allow);
        assert_eq!(l.check(ip("192.0.2.1"), t0), Verdict::Deny { retry_after_secs: 1 });
        assert_eq!(l.check(ip("192.0.2.1"), t0 + Duration::from_millis(999)), Verdict::Deny { retry_after_secs: 1 });
        assert_eq!(l.check(ip("192.0.2.1"), t0 + Duration::from_millis(1000)), Verdict::Allow);
    }

    #[test]
    fn ipv6_hosts_in_one_64_share_a_bucket_and_zero_turns_the_limit_off() {
        let mut l = Limiter::new(RateLimit { per_second: 1, burst: 1 });
        let t0 = Instant::now();
        assert_eq!(l.check(ip("2001:db8:1:2::1"), t0), Verdict::Allow);
        assert!(matches!(l.check(ip("2001:db8:1:2::ffff"), t0), Verdict::Deny { .. }));
        assert_eq!(l.check(ip("2001:db8:1:3::1"), t0), Verdict::Allow);
        let mut off = Limiter::new(RateLimit { per_second: 0, burst: 0 });
        assert!((0..10_000).all(|_| off.check(ip("10.0.0.1"), t0) == Verdict::Allow));
        assert_eq!(off.clients(), 0);
    }

    #[test]
    fn the_bucket_map_stays_bounded_and_keeps_busy_clients() {
        let mut l = Limiter::new(RateLimit { per_second: 1, burst: 2 });
        let t0 = Instant::now();
        // A busy client drains its bucket, more recently than any passer-by came.
        let busy = t0 + Duration::from_millis(600);
        assert_eq!(l.check(ip("10.9.9.9"), busy), Verdict::Allow);
        assert_eq!(l.check(ip("10.9.9.9"), busy), Verdict::Allow);
        for i in 0..(CLIENTS_MAX as u32 * 2) {
            let t = t0 + Duration::from_millis(u64::from(i % 500));
            l.check(IpAddr::V4((0x0b00_0000 + i).into()), t);
            assert!(l.clients() <= CLIENTS_MAX);
        }
        // Passers-by were evicted before it was: it is still limited.
        let t = t0 + Duration::from_millis(700);
        assert!(matches!(l.check(ip("10.9.9.9"), t), Verdict::Deny { .. }));
    }
}
