//! Prometheus metrics: controller health (bounded labels: error categories and phases, never an
//! object name) and experiment outcomes with chaos-exporter's families and labels, so Litmus
//! dashboards work without a separate exporter.
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use prometheus::{
    Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry,
};

mod exporter;

use crate::api::{ChaosEngine, ChaosResult};
use exporter::{AWAITED_LABELS, ExporterFamilies, RESULT_LABELS, VERDICT_LABELS};

/// Where the outcome gauges are computed from at scrape time.
pub struct Sources {
    pub engines: Store<DeserializeGuard<ChaosEngine>>,
    pub results: crate::controller::cache::ChaosCache<ChaosResult>,
}

/// The controller's metrics, registered in their own registry.
pub struct Metrics {
    pub registry: Registry,
    pub reconciles: IntCounter,
    pub reconcile_errors: IntCounterVec,
    pub reconcile_duration: Histogram,
    pub in_flight: IntGauge,
    pub last_success: IntGauge,
    pub api_writes: IntCounter,
    pub jobs_created: IntCounter,
    pub engine_to_job: Histogram,
    engines_by_phase: IntGaugeVec,
    exporter: ExporterFamilies,
    sources: OnceLock<Sources>,
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> Result<GaugeVec, prometheus::Error> {
    GaugeVec::new(Opts::new(name, help), labels)
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let exporter = ExporterFamilies {
            passed: gauge_vec(
                "litmuschaos_passed_experiments",
                "Total number of passed experiments",
                RESULT_LABELS,
            )?,
            failed: gauge_vec(
                "litmuschaos_failed_experiments",
                "Total number of failed experiments",
                RESULT_LABELS,
            )?,
            awaited: gauge_vec(
                "litmuschaos_awaited_experiments",
                "Total number of awaited experiments",
                AWAITED_LABELS,
            )?,
            probe_success: gauge_vec(
                "litmuschaos_probe_success_percentage",
                "ProbeSuccessPercentage for the experiments",
                RESULT_LABELS,
            )?,
            verdict: gauge_vec(
                "litmuschaos_experiment_verdict",
                "Verdict of the experiments",
                VERDICT_LABELS,
            )?,
            start_time: gauge_vec(
                "litmuschaos_experiment_start_time",
                "start time of the experiments",
                RESULT_LABELS,
            )?,
            end_time: gauge_vec(
                "litmuschaos_experiment_end_time",
                "end time of the experiments",
                RESULT_LABELS,
            )?,
            total_duration: gauge_vec(
                "litmuschaos_experiment_total_duration",
                "total duration of the experiments",
                RESULT_LABELS,
            )?,
            ns_passed: gauge_vec(
                "litmuschaos_namespace_scoped_passed_experiments",
                "Total number of passed experiments in watch namespace",
                &["chaosresult_namespace"],
            )?,
            ns_failed: gauge_vec(
                "litmuschaos_namespace_scoped_failed_experiments",
                "Total number of failed experiments in watch namespace",
                &["chaosresult_namespace"],
            )?,
            ns_awaited: gauge_vec(
                "litmuschaos_namespace_scoped_awaited_experiments",
                "Total number of awaited experiments in watch namespace",
                &["chaosresult_namespace"],
            )?,
            ns_run_count: gauge_vec(
                "litmuschaos_namespace_scoped_experiments_run_count",
                "Total experiments run in watch namespace",
                &["chaosresult_namespace"],
            )?,
            cluster_passed: Gauge::new(
                "litmuschaos_cluster_scoped_passed_experiments",
                "Total number of passed experiments in all namespaces",
            )?,
            cluster_failed: Gauge::new(
                "litmuschaos_cluster_scoped_failed_experiments",
                "Total number of failed experiments in all namespaces",
            )?,
            cluster_awaited: Gauge::new(
                "litmuschaos_cluster_scoped_awaited_experiments",
                "Total number of awaited experiments in all namespaces",
            )?,
            cluster_run_count: Gauge::new(
                "litmuschaos_cluster_scoped_experiments_run_count",
                "Total experiments run in all namespaces",
            )?,
        };
        let m = Self {
            reconciles: IntCounter::new("chaos_conductor_reconciles_total", "Reconcile passes")?,
            reconcile_errors: IntCounterVec::new(
                Opts::new("chaos_conductor_reconcile_errors_total", "Failed reconcile passes by error category"),
                &["category"],
            )?,
            reconcile_duration: Histogram::with_opts(
                HistogramOpts::new("chaos_conductor_reconcile_duration_seconds", "Duration of a reconcile pass")
                    .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            )?,
            in_flight: IntGauge::new("chaos_conductor_reconciles_in_flight", "Reconcile passes running now")?,
            last_success: IntGauge::new(
                "chaos_conductor_last_successful_reconcile_timestamp_seconds",
                "Unix time of the last successful reconcile",
            )?,
            api_writes: IntCounter::new("chaos_conductor_api_writes_total", "Write requests sent to the API server")?,
            jobs_created: IntCounter::new("chaos_conductor_jobs_created_total", "Experiment Jobs created")?,
            engine_to_job: Histogram::with_opts(
                HistogramOpts::new(
                    "chaos_conductor_engine_to_job_seconds",
                    "Time from the start of an engine run (creation or re-activation) to its first Job",
                )
                .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0]),
            )?,
            engines_by_phase: IntGaugeVec::new(
                Opts::new("chaos_conductor_engines", "ChaosEngines by phase (status.phase; empty = new)"),
                &["phase"],
            )?,
            exporter,
            sources: OnceLock::new(),
            registry,
        };
        m.register_all()?;
        Ok(m)
    }

    fn register_all(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.reconciles.clone()))?;
        r.register(Box::new(self.reconcile_errors.clone()))?;
        r.register(Box::new(self.reconcile_duration.clone()))?;
        r.register(Box::new(self.in_flight.clone()))?;
        r.register(Box::new(self.last_success.clone()))?;
        r.register(Box::new(self.api_writes.clone()))?;
        r.register(Box::new(self.jobs_created.clone()))?;
        r.register(Box::new(self.engine_to_job.clone()))?;
        r.register(Box::new(self.engines_by_phase.clone()))?;
        let e = &self.exporter;
        for g in e.vecs() {
            r.register(Box::new(g.clone()))?;
        }
        for g in [
            &e.cluster_passed,
            &e.cluster_failed,
            &e.cluster_awaited,
            &e.cluster_run_count,
        ] {
            r.register(Box::new(g.clone()))?;
        }
        Ok(())
    }

    /// Gives the metrics the caches to compute outcome gauges from (once, at controller start).
    pub fn set_sources(&self, sources: Sources) {
        let _ = self.sources.set(sources);
    }

    /// Counts one write request.
    pub fn api_write(&self) {
        self.api_writes.inc();
    }

    /// Raises the in-flight gauge for as long as the returned guard lives: dropped at the end of
    /// the pass, or when the reconcile future is cancelled or unwinds from a panic, so the gauge
    /// never stays raised for a pass that is no longer running.
    pub fn in_flight_guard(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Counts one experiment Job created.
    pub fn job_created(&self) {
        self.jobs_created.inc();
    }

    /// Recomputes the gauges derived from the caches (called on each scrape).
    pub fn refresh(&self) {
        let Some(sources) = self.sources.get() else {
            return;
        };
        // References into the store's snapshot: no copy of every engine per scrape.
        let snapshot: Vec<Arc<DeserializeGuard<ChaosEngine>>> = sources.engines.state();
        let engines: BTreeMap<(&str, &str), &ChaosEngine> = snapshot
            .iter()
            .filter_map(|g| g.0.as_ref().ok())
            .map(|e| {
                (
                    (
                        e.metadata.namespace.as_deref().unwrap_or_default(),
                        e.metadata.name.as_deref().unwrap_or_default(),
                    ),
                    e,
                )
            })
            .collect();
        self.engines_by_phase.reset();
        for e in engines.values() {
            let phase = e
                .status
                .as_ref()
                .map(|s| s.phase.to_string())
                .unwrap_or_default();
            self.engines_by_phase
                .with_label_values(&[phase.as_str()])
                .inc();
        }
        self.refresh_exporter(&engines, &sources.results.all());
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// One reconcile pass counted in `chaos_conductor_reconciles_in_flight` (see
/// [`Metrics::in_flight_guard`]); lowers the gauge when dropped.
#[must_use = "the pass is counted only while the guard lives"]
pub struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests;
