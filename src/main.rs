//! The `chaos-conductor` command line: parse arguments, set up logging, call into the library.
use std::process::ExitCode;

use clap::Parser;

use chaos_conductor::cli::{Cli, run_cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    run_cli(cli)
}
