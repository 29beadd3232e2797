//! Watching a launched experiment: the deadline, its Job and pod, its ChaosResult, and the ways it
//! can end abnormally.
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::jiff::Timestamp;

use super::finish::final_verdict;
use super::launch::LaunchOutcome;
use super::{Observed, PlanConfig, Planner, after, after_secs, parse_time, stamp};
use crate::api::{ChaosEngine, ChaosResult, ExperimentStatus, experiment_status, verdict};
use crate::engine::decision::{EventSpec, EventType};
use crate::engine::job;
use crate::engine::phase::ExperimentPhase;

impl<'a> Planner<'a> {
    pub(super) fn monitor(&mut self, i: usize) {
        let entry = self.status.experiments[i].clone();
        let name = entry.name.clone();
        let launched = parse_time(entry.launched_at.as_deref()).unwrap_or(self.now);
        let deadline = after(launched, self.cfg.experiment_deadline);
        let timeout = self
            .entry_spec(i)
            .map_or(job::DEFAULT_STATUS_CHECK_TIMEOUT, |e| {
                job::status_check_timeouts(e).1
            });
        let pending_deadline = |since: Timestamp| after_secs(since, timeout);
        let job = self
            .observed
            .jobs
            .iter()
            .find(|j| j.metadata.name.as_deref() == Some(entry.job_name.as_str()));
        let result = self.result_for(&entry);

        if job.is_none() && entry.job_name != self.derived_job_name(i) {
            // Status names a Job this run never created and we do not own: written by someone
            // else. Nothing is done to that Job; the entry ends, saying so.
            let why = format!(
                "status named Job {:?}, which this engine did not create; ignored (status is written by the controller only)",
                entry.job_name
            );
            self.update_entry(i, |e| e.job_name.clear());
            self.fail_after_launch(i, why, "ExperimentStatusUntrusted");
            return;
        }
        if self.now >= deadline {
            self.delete_owned_job(&entry.job_name, true);
            let secs = self.cfg.experiment_deadline.as_secs();
            self.fail_after_launch(
                i,
                format!(
                    "experiment did not finish within the deadline of {secs}s; its Job was deleted"
                ),
                "ExperimentTimeout",
            );
            return;
        }
        self.wake(deadline);

        let Some(_job) = job else {
            if let Some(v) = result.as_ref().and_then(|r| final_verdict(r)) {
                // The Job was cleaned up after the container ended but before we wrote it down.
                self.record_verdict(i, v, None);
                return;
            }
            if entry.phase == ExperimentPhase::Launched {
                if let Some(message) = self.observed.rejected_jobs.get(&entry.job_name) {
                    self.job_rejected(i, message.clone());
                    return;
                }
                // Intent recorded, Job never created (or not yet): create it now, but only under
                // the name this run derives (a name in status is not proof of anything).
                if entry.job_name == self.derived_job_name(i) {
                    if let LaunchOutcome::NeedsLookup = self.launch(i, true) {
                        self.wake(self.now);
                    }
                    return;
                }
            }
            self.fail_after_launch(
                i,
                format!(
                    "experiment Job {} disappeared before the experiment finished",
                    entry.job_name
                ),
                "ExperimentJobVanished",
            );
            return;
        };
        let Some(pod) = self.pod_of(&entry.job_name) else {
            let due = pending_deadline(launched);
            if self.now >= due {
                self.fail_after_launch(
                    i,
                    format!("no experiment pod appeared within STATUS_CHECK_TIMEOUT ({timeout}s)"),
                    "ExperimentPodPendingTimeout",
                );
            } else {
                self.wake(due);
            }
            return;
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let pod_phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let terminated = main_terminated(pod, &entry.job_name);

        if pod_phase == "Failed"
            && pod.metadata.deletion_timestamp.is_some()
            && self
                .result_any_run(&entry)
                .and_then(final_verdict)
                .as_deref()
                == Some(verdict::STOPPED)
        {
            // Deleted from outside (e.g. its namespace is being deleted): the experiment caught
            // SIGTERM and recorded Stopped; that is an abort, not a failed experiment.
            let why = format!("experiment pod {pod_name} was deleted; the experiment stopped");
            self.abort_entry(i, Some(pod_name), Some(why));
            return;
        }
        if pod_phase == "Failed" {
            let detail = terminated.map_or(String::new(), |t| {
                format!(
                    " (exit code {}, reason {})",
                    t.exit_code,
                    t.reason.clone().unwrap_or_default()
                )
            });
            self.fail_after_launch(
                i,
                format!(
                    "status check failed as chaos pod status is Failed: pod {pod_name}{detail}"
                ),
                "ExperimentPodFailed",
            );
            return;
        }
        if let Some(due) = self.verdict_due(pod, &entry.job_name) {
            match result.as_ref().and_then(|r| final_verdict(r)) {
                Some(v) => self.record_verdict(i, v, Some(pod_name)),
                None => {
                    if self.now >= due {
                        let why = format!(
                            "ChaosResult {} has no verdict {}s after the experiment container terminated",
                            entry.result_name,
                            self.cfg.verdict_grace.as_secs()
                        );
                        self.update_entry(i, |e| e.message = why.clone());
                        self.event(EventSpec::runner(
                            &name,
                            EventType::Warning,
                            "ExperimentVerdictMissing",
                            why,
                        ));
                        self.record_verdict(i, verdict::ERROR.into(), Some(pod_name));
                    } else {
                        self.wake(due);
                    }
                }
            }
            return;
        }
        if pod_phase == "Pending" || pod_phase.is_empty() {
            let since = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(launched, |t| t.0);
            let due = pending_deadline(since);
            if self.now >= due {
                self.fail_after_launch(i, format!("experiment pod {pod_name} stayed Pending longer than STATUS_CHECK_TIMEOUT ({timeout}s)"), "ExperimentPodPendingTimeout");
            } else {
                self.wake(due);
            }
            return;
        }
        // Running: written once when first seen, not on a timer.
        let now = stamp(self.now);
        self.update_entry(i, |e| {
            e.experiment_pod = pod_name;
            e.status = experiment_status::RUNNING.into();
            e.verdict = verdict::AWAITED.into();
            e.phase = ExperimentPhase::Running;
            e.running_at.get_or_insert(now);
        });
    }

    /// Ends a launched experiment that did not complete normally (Litmus: `Skipped` / `Fail`).
    fn fail_after_launch(&mut self, i: usize, why: String, reason: &str) {
        let name = self.status.experiments[i].name.clone();
        self.end_entry(
            i,
            experiment_status::SKIPPED,
            verdict::FAIL,
            ExperimentPhase::Failed,
            None,
            Some(why.clone()),
        );
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            "ChaosContainerWatchNotPermitted",
            format!("Experiment Job creation failed, skipping Chaos Experiment: {name}"),
        ));
        self.event(EventSpec::runner(&name, EventType::Warning, reason, why));
    }

    /// When an ended experiment pod's verdict is due: its main container's end plus the grace
    /// (`None` while the pod has not ended).
    fn verdict_due(&self, pod: &Pod, job_name: &str) -> Option<Timestamp> {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminated = main_terminated(pod, job_name);
        if phase != Some("Succeeded") && terminated.is_none() {
            return None;
        }
        let ended = terminated
            .and_then(|t| t.finished_at.as_ref())
            .map_or(self.now, |t| t.0);
        Some(after(ended, self.cfg.verdict_grace))
    }

    /// The experiment pod of a Job: the newest one not being deleted.
    fn pod_of(&self, job_name: &str) -> Option<&'a Pod> {
        self.observed
            .pods
            .iter()
            .filter(|p| {
                let labels = p.metadata.labels.as_ref();
                labels
                    .and_then(|l| {
                        l.get("job-name")
                            .or_else(|| l.get("batch.kubernetes.io/job-name"))
                    })
                    .is_some_and(|v| v == job_name)
            })
            .max_by_key(|p| {
                (
                    p.metadata.deletion_timestamp.is_none(),
                    p.metadata.creation_timestamp.clone(),
                )
            })
    }

    /// The ChaosResult of this experiment's current run: matched by name, and by the `job-name`
    /// label litmus-go copies from its pod into every result it writes while running. A result
    /// without it (written before the run, or left by an earlier run's abort path, which keeps only
    /// `chaosUID`) is not this run's verdict.
    fn result_for(&self, entry: &ExperimentStatus) -> Option<&'a ChaosResult> {
        self.observed
            .results
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(entry.result_name.as_str()))
            .filter(|r| result_job(r) == Some(entry.job_name.as_str()))
    }

    /// The result of entry's experiment whatever run wrote it: only to tell, for a pod deleted
    /// from outside, whether the experiment caught SIGTERM (litmus-go's abort path drops job-name).
    fn result_any_run(&self, entry: &ExperimentStatus) -> Option<&'a ChaosResult> {
        self.observed
            .results
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(entry.result_name.as_str()))
            .filter(|r| result_job(r).is_none_or(|j| j == entry.job_name))
    }
}

/// The ChaosResults whose verdict this pass would call missing (their pod ended longer than the
/// grace ago and the observed result has no verdict of this run). A missing verdict is terminal,
/// and the shell's pod cache may be fresher than its ChaosResult cache (each watch reconnects on
/// its own, e.g. after an apiserver restart), so the shell confirms these from the API before
/// planning. Empty in a normal run, which therefore reads nothing extra.
pub fn verdicts_overdue(
    engine: &ChaosEngine,
    observed: &Observed,
    now: Timestamp,
    cfg: &PlanConfig,
) -> Vec<String> {
    let p = Planner::new(engine, observed, now, cfg);
    p.status
        .experiments
        .iter()
        .filter(|e| e.phase.is_active() && !e.job_name.is_empty())
        .filter(|e| {
            p.pod_of(&e.job_name)
                .filter(|pod| {
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Failed")
                })
                .and_then(|pod| p.verdict_due(pod, &e.job_name))
                .is_some_and(|due| now >= due)
        })
        .filter(|e| p.result_for(e).and_then(final_verdict).is_none())
        .map(|e| e.result_name.clone())
        .collect()
}

/// The terminated state of a pod's main container (named like its Job).
fn main_terminated<'p>(pod: &'p Pod, job_name: &str) -> Option<&'p ContainerStateTerminated> {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == job_name))
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.terminated.as_ref())
}

/// The Job a ChaosResult says it was written for (litmus-go copies the pod's labels).
fn result_job(r: &ChaosResult) -> Option<&str> {
    let labels = r.metadata.labels.as_ref()?;
    labels
        .get("job-name")
        .or_else(|| labels.get("batch.kubernetes.io/job-name"))
        .map(String::as_str)
}
