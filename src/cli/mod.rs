//! Subcommands of the `chaos-conductor` binary.
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod halt;
pub mod run;
pub mod validate;

/// Runs LitmusChaos ChaosEngines from one long-running controller (no runner pod per engine).
#[derive(Parser, Debug)]
#[command(name = "chaos-conductor", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the ChaosEngine, ChaosExperiment and ChaosResult CRDs as YAML.
    Crds,
    /// Check ChaosEngine / ChaosExperiment / ChaosResult YAML offline (CRD schemas, run-time
    /// rules, cross-references); exit 1 when there is an error.
    Validate(validate::ValidateArgs),
    /// Run the controller: watch ChaosEngines and drive each run to its verdict.
    Run(run::RunArgs),
    /// Engage the kill switch: abort every running engine and hold new ones (cluster-wide, or
    /// one namespace with --namespace) until `resume`.
    Halt(halt::HaltArgs),
    /// Release the kill switch: held engines start.
    Resume(halt::HaltArgs),
}

/// Runs the parsed command and returns the process exit code.
pub fn run_cli(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Crds => print_crds(),
        Command::Validate(args) => validate::run(&args),
        Command::Run(args) => run::run(&args),
        Command::Halt(args) => halt::run(&args, true),
        Command::Resume(args) => halt::run(&args, false),
    }
}

fn print_crds() -> ExitCode {
    match crate::api::crds_yaml() {
        Ok(yaml) => {
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::stdout().write_all(yaml.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot render the CRDs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime of a subcommand (`multi_thread` for the controller; one thread is enough for
/// a single request), or the message and exit code when it cannot start.
fn runtime(multi_thread: bool) -> Result<tokio::runtime::Runtime, ExitCode> {
    let mut builder = if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().map_err(|e| {
        eprintln!("error: cannot start the async runtime: {e}");
        ExitCode::FAILURE
    })
}
