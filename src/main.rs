//! The `entrepot` command line.

mod cli;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    trim_freed_memory_periodically();
    cli::main()
}

/// Most glibc malloc arenas. By default glibc gives up to eight per core, one per thread that
/// allocates at once; the ingest, checking, RocksDB and tokio threads each keep freed memory
/// in their own. Two measured 10–20 MiB less peak RSS during a bootstrap (docs/PERFORMANCE.md).
const MALLOC_ARENAS_MAX: i32 = 2;

fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS_MAX);
    }
}

/// How often freed heap memory is given back to the system.
const MALLOC_TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// glibc keeps the memory a bootstrap freed (memtables flushed, batches verified) in its
/// heaps, so a replica at rest kept its peak RSS (docs/PERFORMANCE.md, issue 16). A thread
/// gives it back every [`MALLOC_TRIM_INTERVAL`]; it lives as long as the process and does
/// nothing else, so there is nothing to notice when it ends (it cannot, but by a panic, which
/// only stops the trimming).
fn trim_freed_memory_periodically() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let _ = std::thread::Builder::new().name("malloc-trim".into()).spawn(|| loop {
        std::thread::sleep(MALLOC_TRIM_INTERVAL);
        // SAFETY: malloc_trim only returns free pages of the allocator's heaps to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    });
}
