//! The abort: sweep every chaos Job and pod, force-delete what outlives its grace, then settle the
//! ChaosResults and the status, and release the finalizer.
use k8s_openapi::api::core::v1::Pod;

use super::{Planner, after, after_secs, parse_time, stamp, summary_verdict};
use crate::api::{ChaosResult, engine_status, experiment_status, result_phase, verdict};
use crate::engine::decision::{Effect, EventSpec, EventType};
use crate::engine::job;
use crate::engine::phase::{EnginePhase, ExperimentPhase};

impl<'a> Planner<'a> {
    pub(super) fn abort(&mut self) {
        let deleting = self.engine.metadata.deletion_timestamp.is_some();
        if self.status.phase != EnginePhase::Aborting {
            // The first sweep goes after the `Aborting` status: that write carries the
            // resourceVersion precondition, so it fences the sweep (no no-op patch of its own,
            // docs/performance.md "Mass abort"), and it records the abort first. A crash between
            // the two loses nothing: every later pass sweeps again while a Job or pod of the
            // engine is unmarked (below), and the live list (controller/observe.rs) sees what the
            // caches miss before the abort is called complete.
            let sweep = self.sweep();
            self.after.push(sweep);
            self.status.phase = EnginePhase::Aborting;
            self.status.aborted_at = Some(stamp(self.now));
            self.status.message = if deleting {
                "engine deleted: removing chaos resources".into()
            } else if self.engine.abort_requested() {
                "abort annotation set: removing chaos resources".into()
            } else {
                "engineState stop: removing chaos resources".into()
            };
        }
        let started = parse_time(self.status.aborted_at.as_deref()).unwrap_or(self.now);
        let grace = self.grace().unwrap_or(30).max(0);
        let deadline = after(after_secs(started, grace), self.cfg.abort_margin);
        let remaining: Vec<&Pod> = self.observed.pods.iter().collect();
        if !remaining.is_empty() {
            if self.now >= deadline {
                let names: Vec<String> = remaining
                    .iter()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                self.event(EventSpec::operator(
                    EventType::Warning,
                    "ChaosResourcesForceDeleted",
                    format!(
                        "chaos pods still present {}s after the abort, force-deleted: {}",
                        deadline.duration_since(started).as_secs(),
                        names.join(", ")
                    ),
                ));
                self.before.push(Effect::ForceDeletePods { names });
                self.wake(after_secs(self.now, 1));
            } else {
                // Pods created after the first sweep (helpers, probes) are swept too.
                let unmarked = remaining
                    .iter()
                    .any(|p| p.metadata.deletion_timestamp.is_none())
                    || self
                        .observed
                        .jobs
                        .iter()
                        .any(|j| j.metadata.deletion_timestamp.is_none());
                if unmarked {
                    self.sweep_once();
                }
                self.wake(deadline);
            }
            return;
        }
        if self
            .observed
            .jobs
            .iter()
            .any(|j| j.metadata.deletion_timestamp.is_none())
        {
            // A Job may still get a pod that is not in our cache yet: sweep and look again once
            // the watch shows the Job gone.
            self.sweep_once();
            self.wake(deadline);
            return;
        }
        // Every chaos pod is gone: settle the ChaosResults, the status, then the finalizer.
        let uid = self.engine.metadata.uid.clone().unwrap_or_default();
        for result in &self.observed.results {
            if let Some(updated) = settle_result(result, &uid) {
                self.before.push(Effect::ReplaceResult(Box::new(updated)));
            }
        }
        for i in 0..self.status.experiments.len() {
            if !self.status.experiments[i].phase.is_terminal() {
                self.abort_entry(i, None, None);
            }
        }
        self.status.engine_status = engine_status::STOPPED.into();
        self.status.phase = EnginePhase::Stopped;
        self.status.verdict = summary_verdict(&self.status.experiments);
        self.status
            .finished_at
            .get_or_insert_with(|| stamp(self.now));
        self.status.message = "chaos resources removed".into();
        self.event(EventSpec::operator(
            EventType::Normal,
            "ChaosEngineStopped",
            "Chaos resources deleted successfully",
        ));
        if !deleting && self.engine.abort_requested() {
            // The annotation is consumed: the engine rests at `stop`, and `active` re-runs it.
            self.after.push(Effect::StopEngine { clear_abort: true });
        }
        if deleting {
            self.after.push(Effect::RemoveFinalizer);
        }
    }

    /// Ends an entry as aborted (Litmus: `Forcefully Aborted` / `Stopped`).
    pub(super) fn abort_entry(&mut self, i: usize, pod: Option<String>, message: Option<String>) {
        self.end_entry(
            i,
            experiment_status::ABORTED,
            verdict::STOPPED,
            ExperimentPhase::Aborted,
            pod,
            message,
        );
    }
}

/// After an abort: fold target annotations (`<kind>/<name>=injected|reverted|targeted`) into
/// `status.history.targets` and mark a result still Running/Awaited as Stopped. `None` when the
/// result belongs to another engine or needs no change.
pub fn settle_result(result: &ChaosResult, engine_uid: &str) -> Option<ChaosResult> {
    let labels = result.metadata.labels.as_ref();
    if labels
        .and_then(|l| l.get(job::CHAOS_UID_LABEL))
        .is_none_or(|u| u != engine_uid)
    {
        return None;
    }
    let mut updated = result.clone();
    let mut status = updated.status.take().unwrap_or_default();
    let had_history = status.history.is_some();
    let mut history = status.history.take().unwrap_or_default();
    if let Some(annotations) = updated.metadata.annotations.as_mut() {
        let folded: Vec<(String, String)> = annotations
            .iter()
            .filter(|(k, v)| {
                k.contains('/') && matches!(v.as_str(), "injected" | "reverted" | "targeted")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, value) in folded {
            annotations.remove(&key);
            let (kind, name) = key.split_once('/').unwrap_or(("", key.as_str()));
            match history
                .targets
                .iter_mut()
                .find(|t| t.name == name && t.kind == kind)
            {
                Some(t) => t.chaos_status = value,
                None => history.targets.push(crate::api::TargetDetails {
                    name: name.into(),
                    kind: kind.into(),
                    chaos_status: value,
                }),
            }
        }
    }
    let es = &mut status.experiment_status;
    if es.phase == result_phase::RUNNING || es.verdict == verdict::AWAITED || es.verdict.is_empty()
    {
        es.phase = result_phase::STOPPED.into();
        es.verdict = verdict::STOPPED.into();
    }
    if had_history || !history.targets.is_empty() {
        status.history = Some(history);
    }
    updated.status = Some(status);
    (updated != *result).then_some(updated)
}
