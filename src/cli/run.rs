//! `chaos-conductor run`: the long-running controller.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::controller::{self, Settings};
use crate::engine::PlanConfig;
use crate::metrics::Metrics;
use crate::telemetry::{self, LogFormat};

/// Options of `run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only this namespace (empty: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,
    /// Most engines reconciled at the same time.
    #[arg(long, env = "CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
    /// Longest an experiment may run (seconds from Job creation) before it is ended.
    #[arg(long, env = "EXPERIMENT_DEADLINE_SECONDS", default_value_t = 3600)]
    pub experiment_deadline_seconds: u64,
    /// Seconds to wait for a ChaosResult verdict after the experiment container terminated.
    #[arg(long, env = "VERDICT_GRACE_SECONDS", default_value_t = 60)]
    pub verdict_grace_seconds: u64,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter (RUST_LOG overrides).
    #[arg(long, env = "LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

impl RunArgs {
    fn settings(&self) -> Settings {
        Settings {
            watch_namespace: Some(self.watch_namespace.clone()).filter(|n| !n.is_empty()),
            concurrency: self.concurrency.max(1),
            plan: PlanConfig {
                experiment_deadline: Duration::from_secs(self.experiment_deadline_seconds.max(1)),
                verdict_grace: Duration::from_secs(self.verdict_grace_seconds),
                ..PlanConfig::default()
            },
            ..Settings::default()
        }
    }
}

/// Runs the controller until SIGTERM / Ctrl-C.
pub fn run(args: &RunArgs) -> ExitCode {
    telemetry::init(args.log_format, &args.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_async(args: &RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let metrics = Arc::new(Metrics::new()?);
    controller::run::run(client, args.settings(), metrics, shutdown_signal()).await?;
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
