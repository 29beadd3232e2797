//! Acting on a launched experiment: [`Planner::monitor`] turns the [`Assessment`] of assess.rs into
//! the status, the Events and the wake-up; the ways a launched experiment ends abnormally.
use super::assess::Assessment;
use super::launch::LaunchOutcome;
use super::{Planner, after, parse_time, stamp};
use crate::api::{experiment_status, verdict};
use crate::engine::decision::{EventSpec, EventType};
use crate::engine::phase::ExperimentPhase;

impl<'a> Planner<'a> {
    /// Acts on what [`Planner::assess`] found for the launched entry `i`.
    pub(super) fn monitor(&mut self, i: usize) {
        let entry = self.status.experiments[i].clone();
        let name = entry.name.clone();
        let assessment = self.assess(i);
        if !matches!(
            assessment,
            Assessment::ForeignJob | Assessment::DeadlinePassed
        ) {
            let launched = parse_time(entry.launched_at.as_deref()).unwrap_or(self.now);
            self.wake(after(launched, self.cfg.experiment_deadline));
        }
        match assessment {
            Assessment::ForeignJob => {
                // Written by someone else: nothing is done to that Job; the entry ends, saying so.
                let why = format!(
                    "status named Job {:?}, which this engine did not create; ignored (status is written by the controller only)",
                    entry.job_name
                );
                self.update_entry(i, |e| e.job_name.clear());
                self.fail_after_launch(i, why, "ExperimentStatusUntrusted");
            }
            Assessment::DeadlinePassed => {
                self.delete_owned_job(&entry.job_name, true);
                let secs = self.cfg.experiment_deadline.as_secs();
                let why = format!(
                    "experiment did not finish within the deadline of {secs}s; its Job was deleted"
                );
                self.fail_after_launch(i, why, "ExperimentTimeout");
            }
            Assessment::JobGoneWithVerdict(v) => self.record_verdict(i, v, None),
            Assessment::JobRejected(message) => self.job_rejected(i, message),
            Assessment::JobNeverCreated => {
                if let LaunchOutcome::NeedsLookup = self.launch(i, true) {
                    self.wake(self.now);
                }
            }
            Assessment::JobVanished => {
                let why = format!(
                    "experiment Job {} disappeared before the experiment finished",
                    entry.job_name
                );
                self.fail_after_launch(i, why, "ExperimentJobVanished");
            }
            Assessment::NoPodInTime { timeout } => {
                let why =
                    format!("no experiment pod appeared within STATUS_CHECK_TIMEOUT ({timeout}s)");
                self.fail_after_launch(i, why, "ExperimentPodPendingTimeout");
            }
            Assessment::WaitingForPod { due }
            | Assessment::VerdictDue { due }
            | Assessment::Pending { due } => self.wake(due),
            Assessment::DeletedWithStopped { pod } => {
                // Deleted from outside (e.g. its namespace is being deleted): the experiment caught
                // SIGTERM and recorded Stopped; that is an abort, not a failed experiment.
                let why = format!("experiment pod {pod} was deleted; the experiment stopped");
                self.abort_entry(i, Some(pod), Some(why));
            }
            Assessment::PodFailed { pod, detail } => {
                let why =
                    format!("status check failed as chaos pod status is Failed: pod {pod}{detail}");
                self.fail_after_launch(i, why, "ExperimentPodFailed");
            }
            Assessment::Verdict { pod, verdict } => self.record_verdict(i, verdict, Some(pod)),
            Assessment::VerdictMissing { pod } => {
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
                self.record_verdict(i, verdict::ERROR.into(), Some(pod));
            }
            Assessment::PendingTooLong { pod, timeout } => {
                let why = format!(
                    "experiment pod {pod} stayed Pending longer than STATUS_CHECK_TIMEOUT ({timeout}s)"
                );
                self.fail_after_launch(i, why, "ExperimentPodPendingTimeout");
            }
            Assessment::Running { pod } => {
                // Written once when first seen, not on a timer.
                let now = stamp(self.now);
                self.update_entry(i, |e| {
                    e.experiment_pod = pod;
                    e.status = experiment_status::RUNNING.into();
                    e.verdict = verdict::AWAITED.into();
                    e.phase = ExperimentPhase::Running;
                    e.running_at.get_or_insert(now);
                });
            }
        }
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
}
