//! The end of an experiment and of a run: the verdict, Job cleanup per `jobCleanUpPolicy`, the
//! engine's summary verdict and the `Finished` condition.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::{Planner, stamp};
use crate::api::{ChaosResult, ExperimentStatus, engine_status, experiment_status, verdict};
use crate::engine::decision::{Effect, EventSpec, EventType};
use crate::engine::phase::{EnginePhase, ExperimentPhase};

impl<'a> Planner<'a> {
    /// Records a verdict and cleans up per `jobCleanUpPolicy`.
    pub(super) fn record_verdict(&mut self, i: usize, v: String, pod: Option<String>) {
        let entry = self.status.experiments[i].clone();
        self.end_entry(
            i,
            experiment_status::COMPLETED,
            &v,
            ExperimentPhase::Done,
            pod,
            None,
        );
        let delete = self.engine.spec.job_clean_up_policy.as_deref() == Some("delete");
        let message = if delete {
            // After the status write that records the verdict: a crash in between leaves a Job
            // that `clean_up_finished_jobs` deletes on the next pass.
            self.delete_owned_job_after(&entry.job_name);
            format!("Experiment Job: {} will be deleted", entry.job_name)
        } else {
            format!("Experiment Job {} will be retained", entry.job_name)
        };
        self.event(EventSpec::runner(
            &entry.name,
            EventType::Normal,
            "ExperimentJobCleanUp",
            message,
        ));
    }

    pub(super) fn complete(&mut self) {
        if self.engine.wants_active() {
            // Written after the status: an engine version with `stop` but experiments still
            // running would read as an abort. A crash in between leaves `active` + `completed` with
            // an unchanged generation, which the next pass finishes (Situation::RestStopped).
            self.after.push(Effect::StopEngine { clear_abort: false });
        }
        self.status.engine_status = engine_status::COMPLETED.into();
        self.status.phase = EnginePhase::Completed;
        // With iterations the verdict covers every iteration, not only the last.
        self.status.verdict = if self.status.runs.is_empty() {
            summary_verdict(&self.status.experiments)
        } else {
            self.runs_verdict()
        };
        if self.status.experiments.is_empty() {
            self.status.message = "no experiments listed".into();
        }
        self.status
            .finished_at
            .get_or_insert_with(|| stamp(self.now));
        self.event(EventSpec::operator(
            EventType::Normal,
            "ChaosEngineCompleted",
            "ChaosEngine completed, will delete or retain the resources according to jobCleanUpPolicy",
        ));
    }

    /// Ends an entry: Litmus's status and verdict, our phase, optionally the pod and why, and the
    /// end time (set once).
    pub(super) fn end_entry(
        &mut self,
        i: usize,
        status: &str,
        verdict: &str,
        phase: ExperimentPhase,
        pod: Option<String>,
        message: Option<String>,
    ) {
        let now = stamp(self.now);
        self.update_entry(i, |e| {
            if let Some(pod) = pod {
                e.experiment_pod = pod;
            }
            e.status = status.into();
            e.verdict = verdict.into();
            e.phase = phase;
            if let Some(message) = message {
                e.message = message;
            }
            e.finished_at.get_or_insert(now);
        });
    }

    /// jobCleanUpPolicy delete, converged: a Job of an experiment that already has its verdict is
    /// deleted even when the pass that recorded the verdict did not get to delete it.
    pub(super) fn clean_up_finished_jobs(&mut self) {
        if self.engine.spec.job_clean_up_policy.as_deref() != Some("delete") {
            return;
        }
        let done: Vec<String> = self
            .status
            .experiments
            .iter()
            .chain(self.status.runs.iter())
            .filter(|e| e.phase == ExperimentPhase::Done)
            .map(|e| e.job_name.clone())
            .collect();
        for name in done {
            self.delete_owned_job_after(&name);
        }
    }

    /// Deletes the Job after the status write, if it is one we observed (observe keeps only Jobs
    /// with our controller ownerReference) and not already being deleted.
    fn delete_owned_job_after(&mut self, name: &str) {
        self.delete_owned_job(name, false);
    }

    /// Deletes a Job only if it is one we observed (observe keeps only Jobs with our controller
    /// ownerReference and chaosUID label) and not already being deleted: a name in status proves
    /// nothing. `before`: ahead of the status write (the shell fences it with a conditional write).
    pub(super) fn delete_owned_job(&mut self, name: &str, before: bool) {
        let live = self.observed.jobs.iter().any(|j| {
            j.metadata.name.as_deref() == Some(name) && j.metadata.deletion_timestamp.is_none()
        });
        let effect = Effect::DeleteJob { name: name.into() };
        if live && !self.after.contains(&effect) && !self.before.contains(&effect) {
            if before {
                self.before.push(effect);
            } else {
                self.after.push(effect);
            }
        }
    }

    /// The `Finished` condition, with its transition time kept while its status is unchanged.
    pub(super) fn conditions(&self) -> Vec<Condition> {
        let (status, reason, message) = match &self.status.phase {
            EnginePhase::Completed => (
                "True",
                "Completed",
                format!("verdict: {}", self.status.verdict),
            ),
            EnginePhase::Stopped => ("True", "Stopped", "chaos resources removed".to_string()),
            EnginePhase::Invalid => ("True", "Invalid", self.status.message.clone()),
            EnginePhase::Aborting => ("False", "Aborting", "deleting chaos resources".to_string()),
            unset if unset.is_unset() => return self.status.conditions.clone(),
            EnginePhase::Running | EnginePhase::Unknown(_) => {
                ("False", "Running", "experiments in progress".to_string())
            }
        };
        let previous = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Finished");
        let transition = match previous {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Time(self.now),
        };
        vec![Condition {
            type_: "Finished".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: transition,
            // Stamped by the shell when it writes (see apply::status::write_status).
            observed_generation: None,
        }]
    }
}

/// The verdict of a ChaosResult once the experiment has written a final one.
pub(super) fn final_verdict(result: &ChaosResult) -> Option<String> {
    let v = result
        .status
        .as_ref()
        .map(|s| s.experiment_status.verdict.clone())
        .unwrap_or_default();
    (!v.is_empty() && v != verdict::AWAITED).then_some(v)
}

/// The engine-level verdict: `Pass` only when every experiment passed.
pub fn summary_verdict(entries: &[ExperimentStatus]) -> String {
    if entries.is_empty() {
        return verdict::NOT_AVAILABLE.into();
    }
    if entries.iter().all(|e| e.verdict == verdict::PASS) {
        return verdict::PASS.into();
    }
    for v in [verdict::FAIL, verdict::ERROR, verdict::STOPPED] {
        if entries.iter().any(|e| e.verdict == v) {
            return v.into();
        }
    }
    entries
        .iter()
        .find(|e| e.verdict != verdict::PASS)
        .map_or_else(String::new, |e| e.verdict.clone())
}
