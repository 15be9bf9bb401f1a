//! The link model of the in-process network (`memnet.rs`): when bytes written into one
//! direction of a connection arrive at the other end. Sans-IO: time is a parameter, the
//! randomness is seeded, and nothing here sleeps or reads a clock.
//!
//! A direction of a connection behaves like one TCP stream on a path: bytes leave in order at
//! the link's bandwidth (a write waits behind the bytes queued before it), arrive one latency
//! later, and a lost segment delays what it carries, and everything behind it, by one
//! retransmission timeout (head-of-line blocking, as TCP does; nothing is ever dropped, since
//! a TCP stream loses no bytes, only time).

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Bytes one TCP segment carries (a 1500-byte MTU less the IP and TCP headers).
pub const SEGMENT_BYTES: usize = 1460;
/// The shortest retransmission timeout (Linux's `TCP_RTO_MIN`).
pub const RETRANSMIT_MIN: Duration = Duration::from_millis(200);

/// What a path between two nodes is like, one way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkParams {
    /// One-way delay (half the round trip).
    pub latency: Duration,
    /// Bytes per second the path carries; 0 means no limit.
    pub bandwidth_bytes_per_s: u64,
    /// Probability that one segment is lost (and retransmitted), in [0, 1).
    pub loss: f64,
}

impl LinkParams {
    /// A path with only a delay.
    pub fn delay(latency: Duration) -> LinkParams {
        LinkParams { latency, bandwidth_bytes_per_s: 0, loss: 0.0 }
    }

    /// The retransmission timeout on this path: a round trip and a margin, at least
    /// [`RETRANSMIT_MIN`].
    pub fn retransmit(&self) -> Duration {
        (self.latency * 4).max(RETRANSMIT_MIN)
    }
}

/// One direction of one connection.
#[derive(Debug)]
pub struct LinkModel {
    params: LinkParams,
    /// When the last byte accepted so far leaves the sender (the link is busy until then).
    busy_until: Option<Instant>,
    /// When the last chunk accepted so far arrives: no later chunk arrives before it.
    last_arrival: Option<Instant>,
    rng: StdRng,
}

impl LinkModel {
    /// A direction with these parameters; `seed` fixes which segments are lost.
    pub fn new(params: LinkParams, seed: u64) -> LinkModel {
        assert!((0.0..1.0).contains(&params.loss), "loss must be in [0, 1), not {}", params.loss);
        LinkModel { params, busy_until: None, last_arrival: None, rng: StdRng::seed_from_u64(seed) }
    }

    /// The parameters of this direction.
    pub fn params(&self) -> LinkParams {
        self.params
    }

    /// `bytes` written at `now`: returns when they arrive at the other end. Arrivals never go
    /// backwards, whatever `now` is.
    pub fn send(&mut self, now: Instant, bytes: usize) -> Instant {
        let start = self.busy_until.map_or(now, |b| b.max(now));
        let on_the_wire = match self.params.bandwidth_bytes_per_s {
            0 => Duration::ZERO,
            rate => Duration::from_nanos((bytes as u128 * 1_000_000_000 / rate as u128) as u64),
        };
        let left = start + on_the_wire;
        self.busy_until = Some(left);
        let segments = bytes.div_ceil(SEGMENT_BYTES).max(1);
        let mut arrival = left + self.params.latency;
        if self.params.loss > 0.0 {
            let delivered_first_time = (1.0 - self.params.loss).powi(segments as i32);
            if self.rng.gen_bool(1.0 - delivered_first_time) {
                arrival += self.params.retransmit();
            }
        }
        let arrival = self.last_arrival.map_or(arrival, |last| last.max(arrival));
        self.last_arrival = Some(arrival);
        arrival
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bytes_arrive_one_latency_later_on_an_unlimited_link() {
        let t0 = Instant::now();
        let mut link = LinkModel::new(LinkParams::delay(40 * MS), 1);
        assert_eq!(link.send(t0, 10_000), t0 + 40 * MS);
        assert_eq!(link.send(t0 + 5 * MS, 1), t0 + 45 * MS);
    }

    #[test]
    fn a_write_waits_behind_the_bytes_queued_before_it() {
        let t0 = Instant::now();
        // 1 MB/s: 100 kB take 100 ms on the wire.
        let mut link = LinkModel::new(LinkParams { latency: 10 * MS, bandwidth_bytes_per_s: 1_000_000, loss: 0.0 }, 1);
        assert_eq!(link.send(t0, 100_000), t0 + 110 * MS);
        // Written at once after: it leaves when the first has left.
        assert_eq!(link.send(t0, 100_000), t0 + 210 * MS);
        // Written after the link went idle: no queue.
        assert_eq!(link.send(t0 + 500 * MS, 1_000), t0 + 511 * MS);
    }

    #[test]
    fn a_lost_segment_delays_everything_behind_it_and_arrivals_stay_in_order() {
        let t0 = Instant::now();
        let params = LinkParams { latency: 100 * MS, bandwidth_bytes_per_s: 0, loss: 0.3 };
        let mut link = LinkModel::new(params, 7);
        let mut last = t0;
        let mut delayed = 0;
        for i in 0..1000u32 {
            let now = t0 + i * MS;
            let arrival = link.send(now, 100);
            assert!(arrival >= last, "arrivals never go backwards");
            assert!(arrival >= now + params.latency);
            if arrival >= now + params.latency + params.retransmit() {
                delayed += 1;
            }
            last = arrival;
        }
        // About 30 % of chunks are lost, and some behind them wait too.
        assert!(delayed > 250, "{delayed} delayed of 1000");
    }

    #[test]
    fn the_same_seed_loses_the_same_segments() {
        let t0 = Instant::now();
        let params = LinkParams { latency: 20 * MS, bandwidth_bytes_per_s: 5_000_000, loss: 0.05 };
        let run = |seed| {
            let mut link = LinkModel::new(params, seed);
            (0..500u32).map(|i| link.send(t0 + i * MS, 3000)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }
}
