//! Metrics of the schedule reconciler, registered beside the engine controller's. Labels are
//! bounded: reasons and error categories are fixed sets; nothing is labelled per schedule.
use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Schedule metrics.
pub struct ScheduleMetrics {
    pub reconciles: IntCounter,
    pub errors: IntCounterVec,
    pub runs_created: IntCounter,
    pub runs_skipped: IntCounterVec,
    next_run: IntGauge,
    /// Next run per schedule (namespace/name), for the earliest-next-run gauge.
    next_by_schedule: Mutex<HashMap<String, i64>>,
}

impl ScheduleMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            reconciles: IntCounter::new(
                "chaos_conductor_schedule_reconciles_total",
                "ChaosSchedule reconcile passes",
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "chaos_conductor_schedule_reconcile_errors_total",
                    "Failed ChaosSchedule reconcile passes by error category",
                ),
                &["category"],
            )?,
            runs_created: IntCounter::new(
                "chaos_conductor_schedule_runs_created_total",
                "ChaosEngines created by ChaosSchedules",
            )?,
            runs_skipped: IntCounterVec::new(
                Opts::new(
                    "chaos_conductor_schedule_runs_skipped_total",
                    "Due schedule runs that did not start, by reason (forbid, missed, outside_window, engine_deleted, name_taken)",
                ),
                &["reason"],
            )?,
            next_run: IntGauge::new(
                "chaos_conductor_schedule_next_run_timestamp_seconds",
                "Unix time of the earliest next run over all schedules (0: none planned)",
            )?,
            next_by_schedule: Mutex::new(HashMap::new()),
        };
        registry.register(Box::new(m.reconciles.clone()))?;
        registry.register(Box::new(m.errors.clone()))?;
        registry.register(Box::new(m.runs_created.clone()))?;
        registry.register(Box::new(m.runs_skipped.clone()))?;
        registry.register(Box::new(m.next_run.clone()))?;
        Ok(m)
    }

    /// Records a schedule's next run (`None`: nothing planned, or the schedule is gone).
    pub fn set_next_run(&self, key: String, next: Option<i64>) {
        let Ok(mut map) = self.next_by_schedule.lock() else {
            return;
        };
        match next {
            Some(t) => map.insert(key, t),
            None => map.remove(&key),
        };
        self.next_run.set(map.values().copied().min().unwrap_or(0));
    }
}
