//! The `chaos-conductor` command line: parse arguments, set up logging, call into the library.
use std::process::ExitCode;

use clap::Parser;

use chaos_conductor::cli::{Cli, run_cli};

// mimalloc returns freed memory to the system more readily than glibc's per-thread arenas, which
// keeps the controller's resident memory close to what its caches actually hold. The
// `system-alloc` feature keeps the system allocator instead, for heap profilers that hook malloc
// (heaptrack; `BENCH_HEAPTRACK` in scripts/bench).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    without_transparent_huge_pages();
    let cli = Cli::parse();
    run_cli(cli)
}

/// Transparent huge pages off for this process. mimalloc advises the kernel to back its arenas
/// with 2 MiB pages, and a huge page is resident whole however little of it is used: at 1,000
/// engines that was a third of the controller's RSS (BENCHMARKS.md "Footprint at 1,000 engines:
/// transparent huge pages"). The controller's heap is small and scattered, so it gains nothing
/// from them. Set before anything else allocates much; only pages touched earlier can be huge.
#[cfg(target_os = "linux")]
fn without_transparent_huge_pages() {
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        // Only memory is at stake (a seccomp profile may refuse prctl): say so and go on.
        eprintln!(
            "chaos-conductor: transparent huge pages stay on (prctl PR_SET_THP_DISABLE: {e}); \
             resident memory will be higher"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn without_transparent_huge_pages() {}
