//! Moving the experiment list on: monitor what runs, stop on failure, start what the schedule
//! allows, and go from one iteration to the next.
use super::launch::LaunchOutcome;
use super::start::{fresh_status, iterations};
use super::{Planner, after_secs, parse_time, stamp, summary_verdict};
use crate::api::limits::MAX_RUN_RECORDS;
use crate::api::{ExperimentStatus, experiment_status, verdict};
use crate::engine::random;
use crate::engine::schedule::{self, Start};

impl<'a> Planner<'a> {
    pub(super) fn progress(&mut self) {
        // Entries follow spec.experiments (an edit of the list during a run adds/drops entries by name).
        self.reconcile_entries();
        for i in 0..self.status.experiments.len() {
            if self.status.experiments[i].phase.is_active() {
                self.monitor(i);
            }
        }
        self.stop_on_failure();
        // Between iterations: nothing starts before the persisted time (a requeue, never a sleep).
        if let Some(at) = parse_time(self.status.next_iteration_at.as_deref()) {
            if self.now < at {
                self.wake(at);
                return;
            }
            self.status.next_iteration_at = None;
        }
        // Launch in a loop: an experiment skipped at validation lets the next one start at once.
        loop {
            let starts = schedule::startable(self.engine, &self.status);
            if starts.is_empty() {
                break;
            }
            let mut progressed = false;
            for start in starts {
                match start {
                    Start::Skip(i, why) => {
                        self.skip_before_launch(i, experiment_status::SKIPPED, why, None);
                        progressed = true;
                    }
                    Start::Launch(i) => match self.launch(i, false) {
                        LaunchOutcome::Launched | LaunchOutcome::Skipped => progressed = true,
                        LaunchOutcome::NeedsLookup => self.wake(self.now),
                    },
                }
            }
            if !progressed {
                break;
            }
        }
        if self
            .status
            .experiments
            .iter()
            .all(|e| e.phase.is_terminal())
        {
            let current = self.status.iteration.unwrap_or(1);
            if current < iterations(self.engine) && !self.failed_with_stop() {
                self.next_iteration(current);
            } else {
                if self.status.iteration.is_some() {
                    self.archive_iteration(current);
                }
                self.complete();
            }
        }
    }

    fn reconcile_entries(&mut self) {
        let fresh = fresh_status(self.engine, self.now);
        let mut entries = Vec::with_capacity(fresh.experiments.len());
        for mut f in fresh.experiments {
            match self.status.experiments.iter().find(|e| e.name == f.name) {
                Some(existing) => entries.push(existing.clone()),
                None => {
                    f.iteration = self.status.iteration;
                    entries.push(f)
                }
            }
        }
        self.status.experiments = entries;
    }

    /// Whether `stopOnFailure` is set and an experiment of this iteration did not pass.
    fn failed_with_stop(&self) -> bool {
        self.engine
            .spec
            .execution
            .as_ref()
            .and_then(|e| e.stop_on_failure)
            == Some(true)
            && self
                .status
                .experiments
                .iter()
                .any(|e| e.phase.is_terminal() && e.verdict != verdict::PASS)
    }

    /// `stopOnFailure`: once an experiment did not pass, the running ones are aborted (their Jobs
    /// deleted, so they get SIGTERM and revert); the schedule cancels what has not started.
    fn stop_on_failure(&mut self) {
        if !self.failed_with_stop() {
            return;
        }
        let failed = self
            .status
            .experiments
            .iter()
            .find(|e| e.phase.is_terminal() && e.verdict != verdict::PASS)
            .map(|e| e.name.clone())
            .unwrap_or_default();
        for i in 0..self.status.experiments.len() {
            if !self.status.experiments[i].phase.is_active() {
                continue;
            }
            let job = self.status.experiments[i].job_name.clone();
            self.delete_owned_job(&job, true);
            let why = format!("aborted: experiment {failed} did not pass and stopOnFailure is set");
            self.abort_entry(i, None, Some(why));
        }
    }

    /// Starts the next iteration: fresh entries, and the seeded interval before it may launch.
    fn next_iteration(&mut self, current: u32) {
        self.archive_iteration(current);
        let next = current + 1;
        let exec = self.engine.spec.execution.clone().unwrap_or_default();
        let secs = random::interval(
            exec.min_interval_seconds.unwrap_or(0),
            exec.max_interval_seconds,
            self.status.seed.unwrap_or(0),
            current,
        );
        let mut fresh = fresh_status(self.engine, self.now).experiments;
        for e in &mut fresh {
            e.iteration = Some(next);
        }
        self.status.experiments = fresh;
        self.status.iteration = Some(next);
        let at = after_secs(self.now, i64::try_from(secs).unwrap_or(i64::MAX));
        self.status.next_iteration_at = (secs > 0).then(|| stamp(at));
        self.wake(at);
    }

    /// Records this iteration's entries in `status.runs`, keeping the newest [`MAX_RUN_RECORDS`]:
    /// the oldest are folded into a count and a summary verdict, so the engine verdict still
    /// covers every iteration and the object never outgrows etcd.
    fn archive_iteration(&mut self, iteration: u32) {
        for e in &self.status.experiments {
            let mut record = e.clone();
            record.iteration = Some(iteration);
            self.status.runs.push(record);
        }
        let excess = self.status.runs.len().saturating_sub(MAX_RUN_RECORDS);
        if excess == 0 {
            return;
        }
        let mut folded: Vec<ExperimentStatus> = self.status.runs.drain(..excess).collect();
        if let Some(v) = self.status.dropped_runs_verdict.take() {
            folded.push(ExperimentStatus {
                verdict: v,
                ..Default::default()
            });
        }
        self.status.dropped_runs_verdict = Some(summary_verdict(&folded));
        let dropped = u32::try_from(excess).unwrap_or(u32::MAX);
        self.status.dropped_runs = Some(
            self.status
                .dropped_runs
                .unwrap_or(0)
                .saturating_add(dropped),
        );
    }

    /// The verdict over every iteration: the kept records and the summary of the dropped ones.
    pub(super) fn runs_verdict(&self) -> String {
        let mut all = self.status.runs.clone();
        if let Some(v) = &self.status.dropped_runs_verdict {
            all.push(ExperimentStatus {
                verdict: v.clone(),
                ..Default::default()
            });
        }
        summary_verdict(&all)
    }
}
