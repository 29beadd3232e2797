//! Launching one experiment: through the gate (gate.rs), the Job rendered from the
//! [`Launchable`](super::Launchable) it returns, and the experiments that end before they run (refused by the gate, or their Job by
//! the API server).
use super::gate::{Skip, gate, resolve};
use super::{Planner, after, parse_time, stamp};
use crate::api::{experiment_pod, experiment_status, verdict};
use crate::engine::decision::{Effect, EventSpec, EventType};
use crate::engine::job;
use crate::engine::phase::ExperimentPhase;

impl<'a> Planner<'a> {
    /// Launches entry `i`: checks what Litmus checks, renders the Job and records the intent.
    ///
    /// The Job is created only after the status naming it was written (the write carries a
    /// resourceVersion precondition), so an actor with a stale view fails instead of launching.
    /// `relaunch`: the intent was recorded but the Job does not exist (a crash between the write
    /// and the create); the status and its events already say Launched.
    pub(super) fn launch(&mut self, i: usize, relaunch: bool) -> LaunchOutcome {
        let name = self.status.experiments[i].name.clone();
        let run_id = self.status.run_id.unwrap_or(1);
        let iteration = self.status.experiments[i].iteration.unwrap_or(1);
        let Some(resolved) = resolve(self.engine, self.observed, &name) else {
            return LaunchOutcome::NeedsLookup;
        };
        let launch = match gate(resolved, run_id, iteration) {
            Err(skip) => {
                self.skip_at_gate(i, skip);
                return LaunchOutcome::Skipped;
            }
            Ok(launch) => launch,
        };
        let job = job::render_job(&launch);
        let job_name = job.metadata.name.clone().unwrap_or_default();
        self.after.push(Effect::CreateJob(Box::new(job)));
        let deadline = after(self.now, self.cfg.experiment_deadline);
        if relaunch {
            let launched = parse_time(self.status.experiments[i].launched_at.as_deref());
            self.wake(launched.map_or(deadline, |t| after(t, self.cfg.experiment_deadline)));
            return LaunchOutcome::Launched;
        }
        let now = stamp(self.now);
        self.update_entry(i, |e| {
            e.phase = ExperimentPhase::Launched;
            e.job_name = job_name.clone();
            e.run_id = Some(run_id);
            e.launched_at.get_or_insert(now);
        });
        self.event(EventSpec::runner(
            &name,
            EventType::Normal,
            "ExperimentDependencyCheck",
            format!("Experiment resources validated for Chaos Experiment: {name}"),
        ));
        self.event(EventSpec::runner(
            &name,
            EventType::Normal,
            "ExperimentJobCreate",
            format!("Experiment Job {job_name} for Chaos Experiment: {name}"),
        ));
        self.wake(deadline);
        LaunchOutcome::Launched
    }

    /// Ends an experiment the gate refused, in Litmus's words (its status and Event reason).
    fn skip_at_gate(&mut self, i: usize, skip: Skip) {
        let why = skip.to_string();
        self.skip_before_launch(i, skip.status(), why.clone(), skip.reason());
        if let Skip::NameTooLong(_) = skip {
            // The API server would refuse the Job: say why without asking it.
            let name = self.status.experiments[i].name.clone();
            self.event(EventSpec::runner(
                &name,
                EventType::Warning,
                "ExperimentJobRejected",
                why,
            ));
        }
    }

    /// Ends an experiment that never got a Job (validation failure).
    pub(super) fn skip_before_launch(
        &mut self,
        i: usize,
        status: &str,
        why: String,
        reason: Option<&str>,
    ) {
        let name = self.status.experiments[i].name.clone();
        self.end_entry(
            i,
            status,
            verdict::FAIL,
            ExperimentPhase::Skipped,
            Some(experiment_pod::NOT_AVAILABLE.into()),
            Some(why),
        );
        let reason = reason.unwrap_or("ExperimentDependencyCheck");
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            reason,
            format!("Experiment Job creation failed, skipping Chaos Experiment: {name}"),
        ));
    }

    /// The API server refused the Job (invalid name, image, resources...): the experiment ends,
    /// explained with the server's own words, and the engine goes on.
    pub(super) fn job_rejected(&mut self, i: usize, message: String) {
        let name = self.status.experiments[i].name.clone();
        let job = self.status.experiments[i].job_name.clone();
        let why = format!("the API server rejected experiment Job {job}: {message}");
        self.end_entry(
            i,
            experiment_status::SKIPPED,
            verdict::FAIL,
            ExperimentPhase::Failed,
            Some(experiment_pod::NOT_AVAILABLE.into()),
            Some(why.clone()),
        );
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            "ExperimentDependencyCheck",
            format!("Experiment Job creation failed, skipping Chaos Experiment: {name}"),
        ));
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            "ExperimentJobRejected",
            why,
        ));
    }
}

pub(super) enum LaunchOutcome {
    Launched,
    Skipped,
    NeedsLookup,
}
