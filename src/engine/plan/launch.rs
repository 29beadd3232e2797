//! Launching one experiment: the [`gate`] (the checks Litmus makes before it creates a Job, each
//! made once: experiment, service account, sidecars, ConfigMaps and Secrets), the Job rendered from
//! the [`Launchable`] it returns, and the experiments that end here.
use super::{Observed, Planner, after, parse_time, stamp};
use crate::api::limits;
use crate::api::{ChaosEngine, ChaosExperiment, ExperimentList, Sidecar};
use crate::api::{experiment_pod, experiment_status, verdict};
use crate::engine::decision::{Effect, EventSpec, EventType};
use crate::engine::job::{self, JobIdentity, MountedSources, RenderError};
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
        let launch = match gate(self.engine, self.observed, &name, run_id, iteration) {
            None => return LaunchOutcome::NeedsLookup,
            Some(Err(skip)) => {
                self.skip_at_gate(i, skip);
                return LaunchOutcome::Skipped;
            }
            Some(Ok(launch)) => launch,
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

/// Why the gate refused a launch: the experiment ends `Skipped` (or `ChaosExperiment Not Found`)
/// with this as its message, and no Job is created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Skip {
    #[error("ChaosExperiment {name} not found in namespace {namespace}")]
    ExperimentNotFound { name: String, namespace: String },
    /// Longer than a Job name allows ([`limits::MAX_EXPERIMENT_NAME_LEN`]).
    #[error("{}", limits::experiment_name_too_long(.0))]
    NameTooLong(String),
    #[error("ServiceAccount {name} not found in namespace {namespace}")]
    ServiceAccountNotFound { name: String, namespace: String },
    #[error("ConfigMap {name} not found in namespace {namespace}")]
    ConfigMapNotFound { name: String, namespace: String },
    #[error("Secret {name} not found in namespace {namespace}")]
    SecretNotFound { name: String, namespace: String },
    /// The Job cannot be built: no service account, no sidecar while enabled, an incomplete
    /// ConfigMap/Secret/hostFileVolume, an empty command or args, an engine without identity.
    #[error(transparent)]
    Unrenderable(#[from] RenderError),
}

impl Skip {
    /// The experiment entry's Litmus status.
    fn status(&self) -> &'static str {
        match self {
            Skip::ExperimentNotFound { .. } => experiment_status::NOT_FOUND,
            _ => experiment_status::SKIPPED,
        }
    }

    /// The reason of the Warning Event, when Litmus's runner has its own for this case.
    fn reason(&self) -> Option<&'static str> {
        match self {
            Skip::ExperimentNotFound { .. } => Some("ExperimentNotFound"),
            Skip::Unrenderable(RenderError::NoSidecar) => Some("SideCarPatchError"),
            _ => None,
        }
    }
}

/// A launch that passed [`gate`]: the only input of [`job::render_job`], so no Job is rendered from
/// an unchecked launch. Only the gate builds one (the fields are private).
#[derive(Debug)]
pub struct Launchable<'a> {
    engine: &'a ChaosEngine,
    experiment: &'a ChaosExperiment,
    id: JobIdentity<'a>,
    identity: (&'a str, &'a str, &'a str),
    service_account: &'a str,
    sources: MountedSources,
    sidecars: &'a [Sidecar],
}

impl<'a> Launchable<'a> {
    pub fn engine(&self) -> &'a ChaosEngine {
        self.engine
    }
    pub fn experiment(&self) -> &'a ChaosExperiment {
        self.experiment
    }
    pub fn identity(&self) -> JobIdentity<'a> {
        self.id
    }
    /// The engine's name, namespace and uid.
    pub fn engine_identity(&self) -> (&'a str, &'a str, &'a str) {
        self.identity
    }
    pub fn service_account(&self) -> &'a str {
        self.service_account
    }
    /// The merged ConfigMaps and Secrets, each complete and observed present.
    pub fn sources(&self) -> &MountedSources {
        &self.sources
    }
    /// The sidecars to add: empty unless the sidecar annotation enables them.
    pub fn sidecars(&self) -> &'a [Sidecar] {
        self.sidecars
    }
}

/// The checks Litmus makes before it creates an experiment's Job, each made once, in Litmus's order:
/// the experiment exists, its name fits a Job name, the service account is set and exists, enabled
/// sidecars are listed, the merged ConfigMaps/Secrets are complete and exist, the definition has
/// command and args. `None`: something it needs was not read in this pass (plan again once it is).
pub fn gate<'a>(
    engine: &'a ChaosEngine,
    observed: &'a Observed,
    name: &str,
    run_id: i64,
    iteration: u32,
) -> Option<Result<Launchable<'a>, Skip>> {
    let namespace = engine.metadata.namespace.as_deref().unwrap_or_default();
    let absent = |name: &str| (name.to_string(), namespace.to_string());
    let Some(experiment) = observed.experiments.get(name)? else {
        let (name, namespace) = absent(name);
        return Some(Err(Skip::ExperimentNotFound { name, namespace }));
    };
    let index = engine
        .spec
        .experiments
        .iter()
        .position(|e| e.name == name)?;
    let entry = &engine.spec.experiments[index];
    if name.chars().count() > limits::MAX_EXPERIMENT_NAME_LEN {
        return Some(Err(Skip::NameTooLong(name.to_string())));
    }
    let Some(service_account) = engine
        .spec
        .chaos_service_account
        .as_deref()
        .filter(|s| !s.is_empty())
    else {
        return Some(Err(RenderError::NoServiceAccount.into()));
    };
    if !observed.service_account_exists? {
        let (name, namespace) = absent(service_account);
        return Some(Err(Skip::ServiceAccountNotFound { name, namespace }));
    }
    Some(
        checked(engine, observed, experiment, entry).map(|(sources, sidecars, identity)| {
            Launchable {
                engine,
                experiment,
                id: JobIdentity {
                    index,
                    run_id,
                    iteration,
                    entry,
                },
                identity,
                service_account,
                sources,
                sidecars,
            }
        }),
    )
}

type Checked<'a> = (MountedSources, &'a [Sidecar], (&'a str, &'a str, &'a str));

/// The gate's checks that need no lookup left: sidecars, sources, the definition, the engine.
fn checked<'a>(
    engine: &'a ChaosEngine,
    observed: &Observed,
    experiment: &ChaosExperiment,
    entry: &ExperimentList,
) -> Result<Checked<'a>, Skip> {
    let namespace = engine.metadata.namespace.as_deref().unwrap_or_default();
    let absent = |name: &str| (name.to_string(), namespace.to_string());
    let sidecars = match engine.spec.components.as_ref() {
        _ if !engine.sidecar_enabled() => &[][..],
        Some(c) if !c.sidecar.is_empty() => c.sidecar.as_slice(),
        _ => return Err(RenderError::NoSidecar.into()),
    };
    let sources = job::mounted_sources(experiment, entry)?;
    if let Some(c) = sources
        .config_maps
        .iter()
        .find(|c| observed.missing_config_maps.contains(&c.name))
    {
        let (name, namespace) = absent(&c.name);
        return Err(Skip::ConfigMapNotFound { name, namespace });
    }
    if let Some(s) = sources
        .secrets
        .iter()
        .find(|s| observed.missing_secrets.contains(&s.name))
    {
        let (name, namespace) = absent(&s.name);
        return Err(Skip::SecretNotFound { name, namespace });
    }
    let (Some(engine_name), Some(namespace), Some(uid)) = (
        engine.metadata.name.as_deref(),
        engine.metadata.namespace.as_deref(),
        engine.metadata.uid.as_deref(),
    ) else {
        return Err(RenderError::IncompleteEngine.into());
    };
    let def = &experiment.spec.definition;
    for (field, empty) in [
        ("command", def.command.is_empty()),
        ("args", def.args.is_empty()),
    ] {
        if empty {
            return Err(RenderError::EmptyDefinitionField(entry.name.clone(), field).into());
        }
    }
    Ok((sources, sidecars, (engine_name, namespace, uid)))
}
