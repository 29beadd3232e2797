//! Prometheus metrics of the controller. Labels are bounded: no object names on controller-health
//! metrics (error categories and phases are fixed sets).
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

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
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
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
            registry,
        };
        m.registry.register(Box::new(m.reconciles.clone()))?;
        m.registry.register(Box::new(m.reconcile_errors.clone()))?;
        m.registry.register(Box::new(m.reconcile_duration.clone()))?;
        m.registry.register(Box::new(m.in_flight.clone()))?;
        m.registry.register(Box::new(m.last_success.clone()))?;
        m.registry.register(Box::new(m.api_writes.clone()))?;
        m.registry.register(Box::new(m.jobs_created.clone()))?;
        Ok(m)
    }

    /// Counts one write request.
    pub fn api_write(&self) {
        self.api_writes.inc();
    }

    /// Counts one experiment Job created.
    pub fn job_created(&self) {
        self.jobs_created.inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let encoder = prometheus::TextEncoder::new();
        encoder.encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}
