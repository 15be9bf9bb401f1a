//! The standard `process_*` metrics (resident memory, CPU seconds, open and maximum file
//! descriptors, start time), read from `/proc/self` at each scrape, and the size and free
//! space of the store's filesystem.
//!
//! Why by hand rather than a crate: prometheus-client has no process collector, and the
//! crates that read `/proc` bring far more than these six numbers need. Off Linux there is
//! no `/proc/self`, and none of these series is exposed (absent, not a false 0).

/// What the kernel says of this process now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: Option<u64>,
    pub start_time_seconds: f64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, 100 on every Linux
/// architecture the node is built for (the kernel's ABI; `sysconf(_SC_CLK_TCK)` answers the
/// same, but needs `unsafe`).
const TICKS_PER_SECOND: f64 = 100.0;

/// This process's figures, or `None` where `/proc/self` cannot be read (not Linux).
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    parse(&stat, &status, &boot, &limits, open_fds)
}

/// The store's filesystem: (bytes available to this unprivileged process, total bytes), or
/// `None` off Unix or when `statvfs` fails.
pub fn filesystem(path: &std::path::Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        let s = rustix::fs::statvfs(path).ok()?;
        Some((s.f_bavail.saturating_mul(s.f_frsize), s.f_blocks.saturating_mul(s.f_frsize)))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// The figures from the texts of `/proc/self/stat`, `/proc/self/status`, `/proc/stat` and
/// `/proc/self/limits`.
fn parse(stat: &str, status: &str, boot: &str, limits: &str, open_fds: u64) -> Option<ProcessStats> {
    // The command name (field 2) is in parentheses and may hold spaces or ')': fields are
    // counted from after its last ')'. After it, field 3 (state) is index 0.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ticks = field(14)? + field(15)?;
    let start_ticks = field(22)?;
    let virtual_bytes = field(23)?;
    let resident_kib: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().strip_suffix("kB")?.trim().parse().ok()?;
    let boot_seconds: u64 = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse().ok()?;
    let max_fds = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok());
    Some(ProcessStats {
        cpu_seconds: ticks as f64 / TICKS_PER_SECOND,
        resident_bytes: resident_kib * 1024,
        virtual_bytes,
        open_fds,
        max_fds,
        start_time_seconds: boot_seconds as f64 + start_ticks as f64 / TICKS_PER_SECOND,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_are_read_field_by_field_even_with_a_parenthesis_in_the_name() {
        let stat = "4242 (entre) p) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 \
                    104857600 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let status = "Name:\tentrepot\nVmPeak:\t  200000 kB\nVmRSS:\t   12288 kB\nThreads:\t9\n";
        let boot = "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let s = parse(stat, status, boot, limits, 17).unwrap();
        assert_eq!(s.cpu_seconds, 3.0);
        assert_eq!(s.resident_bytes, 12288 * 1024);
        assert_eq!(s.virtual_bytes, 104_857_600);
        assert_eq!(s.open_fds, 17);
        assert_eq!(s.max_fds, Some(1024));
        assert!((s.start_time_seconds - 1_700_000_123.45).abs() < 1e-3, "{s:?}");
        assert_eq!(parse("garbage", status, boot, limits, 1), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_as_started_before_now_with_memory_and_descriptors() {
        let s = read().expect("/proc/self on Linux");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        assert!(s.start_time_seconds <= now + 1.0 && s.start_time_seconds > now - 86_400.0 * 365.0, "{s:?}");
        assert!(s.resident_bytes > 1024 * 1024, "{s:?}");
        assert!(s.open_fds >= 3 && s.max_fds.is_some_and(|m| m >= s.open_fds), "{s:?}");
        let (tmp_avail, tmp_size) = filesystem(&std::env::temp_dir()).expect("statvfs of the temp dir");
        assert!(tmp_size > 0 && tmp_avail <= tmp_size, "{tmp_avail} of {tmp_size}");
    }
}
