//! What a pass sees of a launched experiment: [`assess`] reads the observed Job, pod and
//! ChaosResult against the deadlines, in a fixed order, and names the one thing that decides this
//! pass ([`Assessment`]); monitor.rs acts on it. Pure.
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::jiff::Timestamp;

use super::finish::final_verdict;
use super::{Observed, PlanConfig, Planner, after, after_secs, parse_time};
use crate::api::{ChaosEngine, ChaosResult, ExperimentStatus, verdict};
use crate::engine::job;
use crate::engine::phase::ExperimentPhase;

/// What decides a pass over a launched experiment; the checks run in this order and the first that
/// holds wins. `wait`/`due` are when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assessment {
    /// The status names a Job this run did not create, and no such Job of ours exists.
    ForeignJob,
    /// The experiment deadline (from the launch) passed.
    DeadlinePassed,
    /// No Job, but this run's verdict is in (the Job was cleaned up before the verdict was written).
    JobGoneWithVerdict(String),
    /// No Job: the API server refused to create it (its message).
    JobRejected(String),
    /// No Job: the launch was recorded but its Job never created; create it now.
    JobNeverCreated,
    /// No Job, none of the above: it disappeared before the experiment finished.
    JobVanished,
    /// The Job has no pod, STATUS_CHECK_TIMEOUT (seconds) after the launch.
    NoPodInTime { timeout: i64 },
    /// The Job has no pod yet.
    WaitingForPod { due: Timestamp },
    /// The pod was deleted from outside and the experiment recorded `Stopped`: an abort.
    DeletedWithStopped { pod: String },
    /// The pod failed (`detail`: its main container's exit code and reason, if known).
    PodFailed { pod: String, detail: String },
    /// The main container ended and this run's verdict is in.
    Verdict { pod: String, verdict: String },
    /// The main container ended longer than the verdict grace ago, and no verdict of this run.
    VerdictMissing { pod: String },
    /// The main container ended; the verdict may still come until `due`.
    VerdictDue { due: Timestamp },
    /// The pod stayed Pending longer than STATUS_CHECK_TIMEOUT (seconds).
    PendingTooLong { pod: String, timeout: i64 },
    /// The pod is Pending.
    Pending { due: Timestamp },
    /// The pod runs.
    Running { pod: String },
}

/// The [`Assessment`] of `status.experiments[i]` of `engine` (launched or running), as `plan`
/// would act on it in this pass.
pub fn assess(
    engine: &ChaosEngine,
    observed: &Observed,
    now: Timestamp,
    cfg: &PlanConfig,
    i: usize,
) -> Assessment {
    Planner::new(engine, observed, now, cfg).assess(i)
}

impl<'a> Planner<'a> {
    /// The ordered checks of a launched entry `i` (see [`Assessment`]).
    pub(super) fn assess(&self, i: usize) -> Assessment {
        let entry = &self.status.experiments[i];
        let launched = parse_time(entry.launched_at.as_deref()).unwrap_or(self.now);
        let timeout = self
            .entry_spec(i)
            .map_or(job::DEFAULT_STATUS_CHECK_TIMEOUT, |e| {
                job::status_check_timeouts(e).1
            });
        let job = self
            .observed
            .jobs
            .iter()
            .find(|j| j.metadata.name.as_deref() == Some(entry.job_name.as_str()));
        let verdict_in = || self.result_for(entry).and_then(final_verdict);
        if job.is_none() && entry.job_name != self.derived_job_name(i) {
            return Assessment::ForeignJob;
        }
        if self.now >= after(launched, self.cfg.experiment_deadline) {
            return Assessment::DeadlinePassed;
        }
        if job.is_none() {
            if let Some(v) = verdict_in() {
                return Assessment::JobGoneWithVerdict(v);
            }
            if entry.phase == ExperimentPhase::Launched {
                if let Some(message) = self.observed.rejected_jobs.get(&entry.job_name) {
                    return Assessment::JobRejected(message.clone());
                }
                // Only under the name this run derives (a name in status is not proof of anything).
                if entry.job_name == self.derived_job_name(i) {
                    return Assessment::JobNeverCreated;
                }
            }
            return Assessment::JobVanished;
        }
        let Some(pod) = self.pod_of(&entry.job_name) else {
            let due = after_secs(launched, timeout);
            return if self.now >= due {
                Assessment::NoPodInTime { timeout }
            } else {
                Assessment::WaitingForPod { due }
            };
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        if phase == "Failed" {
            let stopped = self.result_any_run(entry).and_then(final_verdict);
            if pod.metadata.deletion_timestamp.is_some()
                && stopped.as_deref() == Some(verdict::STOPPED)
            {
                return Assessment::DeletedWithStopped { pod: pod_name };
            }
            let detail = main_terminated(pod, &entry.job_name).map_or(String::new(), |t| {
                format!(
                    " (exit code {}, reason {})",
                    t.exit_code,
                    t.reason.clone().unwrap_or_default()
                )
            });
            return Assessment::PodFailed {
                pod: pod_name,
                detail,
            };
        }
        if let Some(due) = self.verdict_due(pod, &entry.job_name) {
            return match verdict_in() {
                Some(verdict) => Assessment::Verdict {
                    pod: pod_name,
                    verdict,
                },
                None if self.now >= due => Assessment::VerdictMissing { pod: pod_name },
                None => Assessment::VerdictDue { due },
            };
        }
        if phase == "Pending" || phase.is_empty() {
            let since = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(launched, |t| t.0);
            let due = after_secs(since, timeout);
            return if self.now >= due {
                Assessment::PendingTooLong {
                    pod: pod_name,
                    timeout,
                }
            } else {
                Assessment::Pending { due }
            };
        }
        Assessment::Running { pod: pod_name }
    }

    /// When an ended experiment pod's verdict is due: its main container's end plus the grace
    /// (`None` while the pod has not ended).
    pub(super) fn verdict_due(&self, pod: &Pod, job_name: &str) -> Option<Timestamp> {
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
    pub(super) fn pod_of(&self, job_name: &str) -> Option<&'a Pod> {
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
    pub(super) fn result_for(&self, entry: &ExperimentStatus) -> Option<&'a ChaosResult> {
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
