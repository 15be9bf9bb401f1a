//! The `entrepot` command line.

mod cli;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
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
