//! Launching one experiment: the checks Litmus makes before it creates a Job (experiment, service
//! account, sidecars, ConfigMaps and Secrets), the Job itself, and the experiments that end here.
use super::{Planner, after, parse_time, stamp};
use crate::api::limits;
use crate::api::{experiment_pod, experiment_status, verdict};
use crate::engine::decision::{Effect, EventSpec, EventType};
use crate::engine::job::{self, JobIdentity, RenderError};
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
        let Some(looked_up) = self.observed.experiments.get(&name) else {
            return LaunchOutcome::NeedsLookup;
        };
        let Some(experiment) = looked_up else {
            let why = format!(
                "ChaosExperiment {name} not found in namespace {}",
                self.namespace()
            );
            self.skip_before_launch(
                i,
                experiment_status::NOT_FOUND,
                why,
                Some("ExperimentNotFound"),
            );
            return LaunchOutcome::Skipped;
        };
        let Some(entry) = self.entry_spec(i) else {
            return LaunchOutcome::NeedsLookup;
        };
        if name.chars().count() > limits::MAX_EXPERIMENT_NAME_LEN {
            // The API server would refuse the Job: say why without asking it.
            let why = limits::experiment_name_too_long(&name);
            self.skip_before_launch(i, experiment_status::SKIPPED, why.clone(), None);
            self.event(EventSpec::runner(
                &name,
                EventType::Warning,
                "ExperimentJobRejected",
                why,
            ));
            return LaunchOutcome::Skipped;
        }
        let sa = self
            .engine
            .spec
            .chaos_service_account
            .clone()
            .unwrap_or_default();
        if sa.is_empty() {
            self.skip_before_launch(
                i,
                experiment_status::SKIPPED,
                RenderError::NoServiceAccount.to_string(),
                None,
            );
            return LaunchOutcome::Skipped;
        }
        match self.observed.service_account_exists {
            None => return LaunchOutcome::NeedsLookup,
            Some(false) => {
                let why = format!(
                    "ServiceAccount {sa} not found in namespace {}",
                    self.namespace()
                );
                self.skip_before_launch(i, experiment_status::SKIPPED, why, None);
                return LaunchOutcome::Skipped;
            }
            Some(true) => {}
        }
        if self.engine.sidecar_enabled()
            && self
                .engine
                .spec
                .components
                .as_ref()
                .is_none_or(|c| c.sidecar.is_empty())
        {
            let why = RenderError::NoSidecar.to_string();
            self.skip_before_launch(
                i,
                experiment_status::SKIPPED,
                why,
                Some("SideCarPatchError"),
            );
            return LaunchOutcome::Skipped;
        }
        let sources = match job::mounted_sources(experiment, entry) {
            Ok(s) => s,
            Err(e) => {
                self.skip_before_launch(i, experiment_status::SKIPPED, e.to_string(), None);
                return LaunchOutcome::Skipped;
            }
        };
        let missing = sources
            .config_maps
            .iter()
            .find(|c| self.observed.missing_config_maps.contains(&c.name))
            .map(|c| {
                format!(
                    "ConfigMap {} not found in namespace {}",
                    c.name,
                    self.namespace()
                )
            })
            .or_else(|| {
                sources
                    .secrets
                    .iter()
                    .find(|s| self.observed.missing_secrets.contains(&s.name))
                    .map(|s| {
                        format!(
                            "Secret {} not found in namespace {}",
                            s.name,
                            self.namespace()
                        )
                    })
            });
        if let Some(why) = missing {
            self.skip_before_launch(i, experiment_status::SKIPPED, why, None);
            return LaunchOutcome::Skipped;
        }
        let run_id = self.status.run_id.unwrap_or(1);
        let iteration = self.status.experiments[i].iteration.unwrap_or(1);
        let id = JobIdentity {
            index: self.index_of(i),
            run_id,
            iteration,
            entry,
        };
        let job = match job::render_job(self.engine, experiment, id) {
            Ok(job) => job,
            Err(e) => {
                self.skip_before_launch(i, experiment_status::SKIPPED, e.to_string(), None);
                return LaunchOutcome::Skipped;
            }
        };
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
