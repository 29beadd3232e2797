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
    let cli = Cli::parse();
    run_cli(cli)
}
