//! chaos-exporter's families and labels (docs/litmus-compatibility.md#consumers), computed from the caches
//! at scrape time, so Litmus dashboards work without a separate exporter.
use std::collections::BTreeMap;
use std::sync::Arc;

use prometheus::{Gauge, GaugeVec};

use super::Metrics;
use crate::api::{ChaosEngine, ChaosResult, verdict};

/// chaos-exporter's per-result and aggregate families.
pub(super) struct ExporterFamilies {
    pub(super) passed: GaugeVec,
    pub(super) failed: GaugeVec,
    pub(super) awaited: GaugeVec,
    pub(super) probe_success: GaugeVec,
    pub(super) verdict: GaugeVec,
    pub(super) start_time: GaugeVec,
    pub(super) end_time: GaugeVec,
    pub(super) total_duration: GaugeVec,
    pub(super) ns_passed: GaugeVec,
    pub(super) ns_failed: GaugeVec,
    pub(super) ns_awaited: GaugeVec,
    pub(super) ns_run_count: GaugeVec,
    pub(super) cluster_passed: Gauge,
    pub(super) cluster_failed: Gauge,
    pub(super) cluster_awaited: Gauge,
    pub(super) cluster_run_count: Gauge,
}

pub(super) const RESULT_LABELS: &[&str] = &[
    "chaosresult_namespace",
    "chaosresult_name",
    "chaosengine_name",
    "chaosengine_context",
    "fault_name",
];
pub(super) const AWAITED_LABELS: &[&str] = &[
    "chaosresult_namespace",
    "chaosresult_name",
    "chaosengine_name",
    "chaosengine_context",
    "workflow_name",
    "fault_name",
];
pub(super) const VERDICT_LABELS: &[&str] = &[
    "chaosresult_namespace",
    "chaosresult_name",
    "chaosengine_name",
    "chaosengine_context",
    "chaosresult_verdict",
    "probe_success_percentage",
    "app_label",
    "app_namespace",
    "app_kind",
    "workflow_name",
    "fault_name",
];

impl ExporterFamilies {
    /// The labelled families (registered once, reset before every refresh).
    pub(super) fn vecs(&self) -> [&GaugeVec; 12] {
        [
            &self.passed,
            &self.failed,
            &self.awaited,
            &self.probe_success,
            &self.verdict,
            &self.start_time,
            &self.end_time,
            &self.total_duration,
            &self.ns_passed,
            &self.ns_failed,
            &self.ns_awaited,
            &self.ns_run_count,
        ]
    }
}

impl Metrics {
    pub(super) fn refresh_exporter(
        &self,
        engines: &BTreeMap<(&str, &str), &ChaosEngine>,
        results: &[Arc<ChaosResult>],
    ) {
        let e = &self.exporter;
        for g in e.vecs() {
            g.reset();
        }
        let (mut c_pass, mut c_fail, mut c_await, mut c_runs) = (0.0, 0.0, 0.0, 0.0);
        for r in results {
            let ns = r.metadata.namespace.clone().unwrap_or_default();
            let name = r.metadata.name.clone().unwrap_or_default();
            let engine = engines.get(&(ns.as_str(), r.spec.engine.as_str())).copied();
            let label = |k: &str| {
                engine
                    .and_then(|e| e.metadata.labels.as_ref())
                    .and_then(|l| l.get(k))
                    .cloned()
                    .unwrap_or_default()
            };
            let context = label("context");
            let workflow = label("workflow_name");
            let fault = r.spec.experiment.clone();
            let status = r.status.clone().unwrap_or_default();
            let history = status.history.clone().unwrap_or_default();
            let v = status.experiment_status.verdict.clone();
            let awaited = if v == verdict::AWAITED { 1.0 } else { 0.0 };
            let percent = status
                .experiment_status
                .probe_success_percentage
                .clone()
                .unwrap_or_default();
            let base = [
                ns.as_str(),
                name.as_str(),
                r.spec.engine.as_str(),
                context.as_str(),
                fault.as_str(),
            ];
            e.passed
                .with_label_values(&base)
                .set(history.passed_runs as f64);
            e.failed
                .with_label_values(&base)
                .set(history.failed_runs as f64);
            e.awaited
                .with_label_values(&[
                    ns.as_str(),
                    name.as_str(),
                    r.spec.engine.as_str(),
                    context.as_str(),
                    workflow.as_str(),
                    fault.as_str(),
                ])
                .set(awaited);
            e.probe_success
                .with_label_values(&base)
                .set(percent.parse::<f64>().unwrap_or(0.0));
            let app = engine
                .and_then(|e| e.spec.appinfo.clone())
                .unwrap_or_default();
            e.verdict
                .with_label_values(&[
                    ns.as_str(),
                    name.as_str(),
                    r.spec.engine.as_str(),
                    context.as_str(),
                    v.as_str(),
                    percent.as_str(),
                    app.applabel.as_deref().unwrap_or_default(),
                    app.appns.as_deref().unwrap_or_default(),
                    app.appkind.as_deref().unwrap_or_default(),
                    workflow.as_str(),
                    fault.as_str(),
                ])
                .set(1.0);
            // Start/end come from our persisted timestamps of the experiment's entry in the engine
            // (the exporter derives them from the ExperimentDependencyCheck and Summary events).
            if let Some(entry) = engine
                .and_then(|e| e.status.as_ref())
                .and_then(|s| s.experiments.iter().find(|x| x.result_name == name))
            {
                let ts = |s: &Option<String>| {
                    s.as_deref()
                        .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
                        .map(|t| t.as_second() as f64)
                };
                let (start, end) = (ts(&entry.launched_at), ts(&entry.finished_at));
                if let Some(start) = start {
                    e.start_time.with_label_values(&base).set(start);
                }
                if let Some(end) = end {
                    e.end_time.with_label_values(&base).set(end);
                }
                if let (Some(start), Some(end)) = (start, end) {
                    e.total_duration.with_label_values(&base).set(end - start);
                }
            }
            let runs = (history.passed_runs + history.failed_runs + history.stopped_runs) as f64;
            e.ns_passed
                .with_label_values(&[ns.as_str()])
                .add(history.passed_runs as f64);
            e.ns_failed
                .with_label_values(&[ns.as_str()])
                .add(history.failed_runs as f64);
            e.ns_awaited.with_label_values(&[ns.as_str()]).add(awaited);
            e.ns_run_count.with_label_values(&[ns.as_str()]).add(runs);
            c_pass += history.passed_runs as f64;
            c_fail += history.failed_runs as f64;
            c_await += awaited;
            c_runs += runs;
        }
        e.cluster_passed.set(c_pass);
        e.cluster_failed.set(c_fail);
        e.cluster_awaited.set(c_await);
        e.cluster_run_count.set(c_runs);
    }
}
