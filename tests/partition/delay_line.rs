//! A userspace Ethernet switch that delays frames by the distance between regions, because this
//! kernel has neither `sch_netem` nor the `fq` qdisc (`tc qdisc add … netem` answers "Specified
//! qdisc kind is unknown"; there are no kernel modules to load).
//!
//! Each host namespace gets a TAP device (`eth0`, created from a thread that entered the
//! namespace with `setns`); this process holds every TAP's file descriptor and is the only path
//! between them. A frame read from host *a* for host *b* goes through:
//! 1. *a*'s uplink: a FIFO of at most [`QUEUE_FRAMES_MAX`] frames, drained at [`RATE_BITS_PER_S`]
//!    (serialization time of the frame's bytes, Ethernet header included); drop-tail when full;
//! 2. the one-way delay of the region pair, half the round trip of [`RTT_MS`];
//! 3. *b*'s downlink: the same kind of FIFO and rate, then written to *b*'s TAP.
//!
//! Forwarding learns source MACs; broadcast, multicast and unknown destinations go to every
//! other port, each copy with its own delay. A cut (a set of regions) drops every frame between
//! a region inside it and one outside, at ingress and again before delivery, so frames in flight
//! on a cut link are lost as on a real one. Frames in flight are bounded by
//! [`IN_FLIGHT_FRAMES_MAX`] beyond the per-queue bounds.
//!
//! The switch runs on one thread owned by [`DelayLine`]: dropping it stops and joins the thread,
//! which closes the TAP descriptors (non-persistent TAPs then vanish with them).

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The five regions, in the order of [`RTT_MS`].
pub const REGIONS: [&str; 5] = ["europe", "africa", "americas", "asia", "oceania"];

/// Round trips between regions in milliseconds (symmetric): 20 ms inside a region; between two,
/// figures of the order of today's submarine routes (London–Lagos ~100, London–New York ~80,
/// London–Singapore ~170, London–Sydney ~280, Lagos–Sydney ~300, New York–Tokyo ~160,
/// Los Angeles–Sydney ~150, Singapore–Sydney ~100), rounded.
pub const RTT_MS: [[u64; 5]; 5] = [
    [20, 100, 80, 170, 280],
    [100, 20, 200, 250, 300],
    [80, 200, 20, 160, 150],
    [170, 250, 160, 20, 100],
    [280, 300, 150, 100, 20],
];

/// Each host's link, each way.
pub const RATE_BITS_PER_S: u64 = 20_000_000;
/// Frames one uplink or downlink queue holds before it drops new ones (drop-tail): ~155 ms of
/// full-size (1,514-byte) frames at 20 Mbit/s, about one long-haul round trip.
pub const QUEUE_FRAMES_MAX: usize = 256;
/// Frames held in the delay line at once, across all links (a bound on memory whatever the
/// traffic: ~100 MB at most of full-size frames).
pub const IN_FLIGHT_FRAMES_MAX: usize = 65_536;
/// Largest frame read from a TAP (MTU 1,500 plus the Ethernet header; larger reads are cut).
const FRAME_BYTES_MAX: usize = 1_514;
/// Frames read from one TAP per round, so one busy host cannot starve the others' ingress.
const READS_PER_ROUND_MAX: usize = 64;
/// Longest sleep of the switch thread, so it notices a stop request.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// Source MACs remembered (cleared when full: 24 hosts need 24).
const MACS_MAX: usize = 1_024;

const _: () = assert!(QUEUE_FRAMES_MAX * 2 <= IN_FLIGHT_FRAMES_MAX);

/// The one-way delay between regions `a` and `b`.
pub fn one_way(a: usize, b: usize) -> Duration {
    Duration::from_millis(RTT_MS[a][b]) / 2
}

/// Time to put `bytes` on a link at [`RATE_BITS_PER_S`].
fn serialization(bytes: usize) -> Duration {
    Duration::from_nanos(bytes as u64 * 8 * 1_000_000_000 / RATE_BITS_PER_S)
}

/// Runs `f` on a fresh thread that first joins network namespace `ns` (`ip netns add` name);
/// the thread ends with `f`, so no other code runs in that namespace by accident.
pub fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        let joined = s
            .spawn(|| {
                let file = File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
                // SAFETY: setns on a descriptor we own; it changes only this thread's namespace.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    return Err(format!("setns({path}): {}", std::io::Error::last_os_error()));
                }
                Ok(f())
            })
            .join();
        joined.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// The `ifreq` that `TUNSETIFF` reads: a name and flags, padded to the kernel's 40 bytes.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Creates TAP device `name` (IFF_TAP | IFF_NO_PI, non-blocking) in namespace `ns`.
pub fn create_tap(ns: &str, name: &str) -> Result<File, String> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(format!("interface name {name:?} longer than {} bytes", libc::IFNAMSIZ - 1));
    }
    in_netns(ns, || {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")
            .map_err(|e| format!("cannot open /dev/net/tun: {e}"))?;
        let mut req = IfReq { name: [0; libc::IFNAMSIZ], flags: (libc::IFF_TAP | libc::IFF_NO_PI) as _, _pad: [0; 22] };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes an `ifreq`, which `IfReq` lays out.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) } != 0 {
            return Err(format!("TUNSETIFF {name} in {ns}: {}", std::io::Error::last_os_error()));
        }
        Ok(file)
    })?
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// What the switch did, for the test's report.
#[derive(Default)]
pub struct Counters {
    pub forwarded: AtomicU64,
    pub dropped_queue: AtomicU64,
    pub dropped_cut: AtomicU64,
    pub dropped_in_flight: AtomicU64,
    pub write_errors: AtomicU64,
}

impl Counters {
    pub fn summary(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{} frames delivered; dropped: {} on full queues, {} across the cut, {} over the in-flight bound; {} write errors",
            g(&self.forwarded),
            g(&self.dropped_queue),
            g(&self.dropped_cut),
            g(&self.dropped_in_flight),
            g(&self.write_errors)
        )
    }
}

/// The running switch. Dropping it stops and joins its thread.
pub struct DelayLine {
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicU32>,
    pub counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl DelayLine {
    /// Starts switching between `ports` (TAP descriptors), `regions[i]` being port i's region.
    pub fn start(ports: Vec<File>, regions: Vec<usize>) -> DelayLine {
        assert_eq!(ports.len(), regions.len(), "one region per port");
        assert!(regions.iter().all(|r| *r < REGIONS.len()), "regions are 0..{}", REGIONS.len());
        let stop = Arc::new(AtomicBool::new(false));
        let cut = Arc::new(AtomicU32::new(0));
        let counters = Arc::new(Counters::default());
        let switch = Switch::new(ports, regions, stop.clone(), cut.clone(), counters.clone());
        let thread = std::thread::Builder::new().name("delay-line".into()).spawn(move || switch.run()).unwrap();
        DelayLine { stop, cut, counters, thread: Some(thread) }
    }

    /// Cuts `regions` off from the others (frames inside the set and outside it still flow).
    pub fn cut_off(&self, regions: &[usize]) {
        self.cut.store(regions.iter().fold(0, |m, r| m | 1 << r), Ordering::SeqCst);
    }

    /// Removes the cut.
    pub fn heal(&self) {
        self.cut.store(0, Ordering::SeqCst);
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A frame waiting in the delay line for its next step at `at`.
struct Pending {
    at: Instant,
    /// Tie-break: equal times keep their order.
    seq: u64,
    step: Step,
    from: usize,
    to: usize,
    frame: Arc<[u8]>,
}

#[derive(Clone, Copy)]
enum Step {
    /// At the far end of the long-haul link, entering `to`'s downlink queue.
    Arrive,
    /// Out of `to`'s downlink: written to its TAP.
    Deliver,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    /// Reversed: the earliest is the greatest, for `BinaryHeap`.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

/// A FIFO link drained at [`RATE_BITS_PER_S`]: the departure times of the frames it holds.
#[derive(Default)]
struct Link {
    departures: VecDeque<Instant>,
}

impl Link {
    /// Queues a frame of `bytes` arriving at `now`: its departure time, or `None` when full.
    fn enqueue(&mut self, now: Instant, bytes: usize) -> Option<Instant> {
        while self.departures.front().is_some_and(|d| *d <= now) {
            self.departures.pop_front();
        }
        if self.departures.len() >= QUEUE_FRAMES_MAX {
            return None;
        }
        let start = self.departures.back().map_or(now, |d| (*d).max(now));
        let departure = start + serialization(bytes);
        self.departures.push_back(departure);
        Some(departure)
    }
}

struct Switch {
    ports: Vec<File>,
    regions: Vec<usize>,
    uplinks: Vec<Link>,
    downlinks: Vec<Link>,
    macs: HashMap<[u8; 6], usize>,
    pending: BinaryHeap<Pending>,
    seq: u64,
    stop: Arc<AtomicBool>,
    cut: Arc<AtomicU32>,
    counters: Arc<Counters>,
}

impl Switch {
    fn new(
        ports: Vec<File>,
        regions: Vec<usize>,
        stop: Arc<AtomicBool>,
        cut: Arc<AtomicU32>,
        counters: Arc<Counters>,
    ) -> Switch {
        let n = ports.len();
        Switch {
            ports,
            regions,
            uplinks: (0..n).map(|_| Link::default()).collect(),
            downlinks: (0..n).map(|_| Link::default()).collect(),
            macs: HashMap::new(),
            pending: BinaryHeap::new(),
            seq: 0,
            stop,
            cut,
            counters,
        }
    }

    fn run(mut self) {
        let mut buf = vec![0u8; FRAME_BYTES_MAX];
        let mut fds: Vec<libc::pollfd> =
            self.ports.iter().map(|p| libc::pollfd { fd: p.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while self.pending.peek().is_some_and(|p| p.at <= now) {
                let p = self.pending.pop().expect("peeked");
                self.step(p);
            }
            let wait = self.pending.peek().map_or(IDLE_WAIT, |p| p.at.saturating_duration_since(now)).min(IDLE_WAIT);
            let ts = libc::timespec { tv_sec: 0, tv_nsec: wait.subsec_nanos() as _ };
            // SAFETY: `fds` is a valid array of `fds.len()` pollfds; a null sigmask keeps ours.
            let ready = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as _, &ts, std::ptr::null()) };
            if ready <= 0 {
                continue;
            }
            for (port, pfd) in fds.iter().enumerate() {
                if pfd.revents & libc::POLLIN == 0 {
                    continue;
                }
                for _ in 0..READS_PER_ROUND_MAX {
                    // SAFETY: reads into `buf`, which is `buf.len()` bytes long.
                    let n = unsafe { libc::read(pfd.fd, buf.as_mut_ptr().cast(), buf.len()) };
                    if n <= 0 {
                        break;
                    }
                    self.ingress(port, &buf[..n as usize]);
                }
            }
        }
    }

    fn is_cut(&self, a: usize, b: usize) -> bool {
        let mask = self.cut.load(Ordering::Relaxed);
        let inside = |port: usize| mask & (1 << self.regions[port]) != 0;
        inside(a) != inside(b)
    }

    /// A frame read from `from`'s TAP: through its uplink, then towards each destination.
    fn ingress(&mut self, from: usize, frame: &[u8]) {
        if frame.len() < 14 {
            return;
        }
        let dst: [u8; 6] = frame[0..6].try_into().expect("6 bytes");
        let src: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
        if src[0] & 1 == 0 {
            if self.macs.len() >= MACS_MAX {
                self.macs.clear();
            }
            self.macs.insert(src, from);
        }
        let now = Instant::now();
        let Some(departure) = self.uplinks[from].enqueue(now, frame.len()) else {
            bump(&self.counters.dropped_queue);
            return;
        };
        let frame: Arc<[u8]> = frame.into();
        let known = (dst[0] & 1 == 0).then(|| self.macs.get(&dst).copied()).flatten();
        let targets: Vec<usize> = match known {
            Some(to) if to != from => vec![to],
            Some(_) => vec![],
            None => (0..self.ports.len()).filter(|to| *to != from).collect(),
        };
        for to in targets {
            if self.is_cut(from, to) {
                bump(&self.counters.dropped_cut);
                continue;
            }
            let at = departure + one_way(self.regions[from], self.regions[to]);
            self.schedule(at, Step::Arrive, from, to, frame.clone());
        }
    }

    fn schedule(&mut self, at: Instant, step: Step, from: usize, to: usize, frame: Arc<[u8]>) {
        if self.pending.len() >= IN_FLIGHT_FRAMES_MAX {
            bump(&self.counters.dropped_in_flight);
            return;
        }
        self.seq += 1;
        self.pending.push(Pending { at, seq: self.seq, step, from, to, frame });
    }

    fn step(&mut self, p: Pending) {
        if self.is_cut(p.from, p.to) {
            bump(&self.counters.dropped_cut);
            return;
        }
        match p.step {
            Step::Arrive => match self.downlinks[p.to].enqueue(p.at, p.frame.len()) {
                Some(departure) => self.schedule(departure, Step::Deliver, p.from, p.to, p.frame),
                None => bump(&self.counters.dropped_queue),
            },
            Step::Deliver => {
                // SAFETY: writes `p.frame`, which is `p.frame.len()` bytes long.
                let n = unsafe { libc::write(self.ports[p.to].as_raw_fd(), p.frame.as_ptr().cast(), p.frame.len()) };
                if n == p.frame.len() as isize {
                    bump(&self.counters.forwarded);
                } else {
                    bump(&self.counters.write_errors);
                }
            }
        }
    }
}
