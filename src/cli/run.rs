//! `chaos-conductor run`: the long-running controller.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::controller::Settings;
use crate::engine::PlanConfig;
use crate::leader::{self, LeaseSettings};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimitLayer;
use crate::server::{self, Health};
use crate::telemetry::{self, LogFormat};

/// Options of `run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Watch only this namespace (empty: all namespaces).
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    pub watch_namespace: String,
    /// Most engines reconciled at the same time.
    #[arg(long, env = "CONCURRENCY", default_value_t = 32)]
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
    /// Address of /metrics, /healthz and /readyz (empty: no HTTP server).
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: String,
    /// Elect a leader through a Lease so only one replica reconciles.
    #[arg(long, env = "LEADER_ELECT", default_value_t = false)]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: the pod's namespace, else `default`).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE", default_value = "")]
    pub leader_election_namespace: String,
    /// Name of the Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "chaos-conductor")]
    pub lease_name: String,
    /// Seconds a Lease lasts without renewal (how long a dead leader blocks takeover).
    #[arg(long, env = "LEASE_DURATION_SECONDS", default_value_t = 10)]
    pub lease_duration_seconds: u64,
    /// Average API requests per second (0: unlimited).
    #[arg(long, env = "CLIENT_QPS", default_value_t = 500)]
    pub client_qps: u32,
    /// Requests allowed at once above the average rate.
    #[arg(long, env = "CLIENT_BURST", default_value_t = 1000)]
    pub client_burst: u32,
    /// The cluster-wide kill switch: NAMESPACE/NAME of a ConfigMap whose `halted: "true"` aborts
    /// and holds every engine (empty: none; Namespace annotations still work).
    #[arg(long, env = "HALT_CONFIGMAP", default_value = "")]
    pub halt_configmap: String,
    /// Watch Namespaces for the per-namespace kill switch annotation `chaos-conductor.io/halt`
    /// (needs list/watch namespaces; default: on when watching all namespaces).
    #[arg(long, env = "HALT_NAMESPACE_ANNOTATIONS")]
    pub halt_namespace_annotations: Option<bool>,
    /// Also reconcile ChaosSchedules (turn off while Litmus's chaos-scheduler still runs).
    #[arg(long, env = "SCHEDULES", default_value_t = true, action = clap::ArgAction::Set)]
    pub schedules: bool,
    /// This replica's identity in the Lease (default: POD_NAME, else host name + pid).
    #[arg(long, env = "POD_NAME", default_value = "")]
    pub identity: String,
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
            halt_namespace_annotations: self
                .halt_namespace_annotations
                .unwrap_or(self.watch_namespace.is_empty()),
            schedules: self.schedules,
            ..Settings::default()
        }
    }
}

/// Runs the controller until SIGTERM / Ctrl-C.
pub fn run(args: &RunArgs) -> ExitCode {
    telemetry::init(args.log_format, &args.log_level);
    let runtime = match super::runtime(true) {
        Ok(rt) => rt,
        Err(code) => return code,
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
    let mut settings = args.settings();
    if !args.halt_configmap.is_empty() {
        settings.halt_switch = Some(
            args.halt_configmap
                .parse()
                .map_err(|e| anyhow::anyhow!("--halt-configmap / HALT_CONFIGMAP: {e}"))?,
        );
    }
    let config = kube::Config::infer().await?;
    let builder = kube::client::ClientBuilder::try_from(config)?;
    let client = match RateLimitLayer::new(args.client_qps, args.client_burst) {
        Some(limit) => builder.with_layer(&limit).build(),
        None => builder.build(),
    };
    let metrics = Arc::new(Metrics::new()?);
    let health = Arc::new(Health::default());
    if !args.metrics_addr.is_empty() {
        let addr: std::net::SocketAddr = args
            .metrics_addr
            .parse()
            .map_err(|e| anyhow::anyhow!("--metrics-addr {:?}: {e}", args.metrics_addr))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
        tokio::spawn(server::serve(listener, metrics.clone(), health.clone()));
    }
    let parts = crate::controller::run::Parts {
        client,
        settings,
        metrics,
        health,
    };
    if args.leader_elect {
        let lease = LeaseSettings {
            namespace: Some(args.leader_election_namespace.clone())
                .filter(|n| !n.is_empty())
                .or_else(|| {
                    std::fs::read_to_string(SA_NAMESPACE_FILE)
                        .ok()
                        .map(|s| s.trim().to_string())
                })
                .unwrap_or_else(|| "default".into()),
            name: args.lease_name.clone(),
            identity: Some(args.identity.clone())
                .filter(|i| !i.is_empty())
                .unwrap_or_else(default_identity),
            duration_seconds: args.lease_duration_seconds.max(2),
            grace_seconds: (args.lease_duration_seconds / 3).max(1),
        };
        leader::run_when_leading(parts, lease, shutdown_signal()).await?;
    } else {
        crate::scheduler::run_all(parts, shutdown_signal()).await?;
    }
    Ok(())
}

const SA_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "chaos-conductor".into());
    format!("{host}-{}", std::process::id())
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
