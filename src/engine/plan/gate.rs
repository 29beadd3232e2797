//! The launch gate: the checks Litmus makes before it creates an experiment's Job, each made once
//! (experiment, name length, service account, sidecars, ConfigMaps and Secrets, definition). First
//! [`resolve`] what the checks read, then [`gate`] decides: a [`Launchable`] (the only input of
//! [`job::render_job`]) or the [`Skip`] that ends the experiment.
use super::Observed;
use crate::api::experiment_status;
use crate::api::limits;
use crate::api::{ChaosEngine, ChaosExperiment, ExperimentList, Sidecar};
use crate::engine::job::{self, JobIdentity, MountedSources, RenderError};
use crate::validate::rules;

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
    pub(super) fn status(&self) -> &'static str {
        match self {
            Skip::ExperimentNotFound { .. } => experiment_status::NOT_FOUND,
            _ => experiment_status::SKIPPED,
        }
    }

    /// The reason of the Warning Event, when Litmus's runner has its own for this case.
    pub(super) fn reason(&self) -> Option<&'static str> {
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

/// The engine's service account, as the gate needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Account<'a> {
    /// `spec.chaosServiceAccount` is empty or absent.
    Unset,
    /// Named, and looked up in this pass.
    Read { name: &'a str, exists: bool },
}

/// What the gate reads for one experiment, all of it read in this pass: there is no "not read"
/// left in it, so the gate always has an answer. Built only by [`resolve`].
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    engine: &'a ChaosEngine,
    observed: &'a Observed,
    index: usize,
    entry: &'a ExperimentList,
    /// `None`: looked up and not found in the engine namespace.
    experiment: Option<&'a ChaosExperiment>,
    account: Account<'a>,
}

/// What the gate needs for experiment `name`, once it was read: `None` while the ChaosExperiment or
/// the named service account was not looked up in this pass (plan again once it is; the shell
/// reads both together, see [`super::lookups`]). ConfigMaps and Secrets are read as the sets of
/// missing ones, so they are always answered.
pub fn resolve<'a>(
    engine: &'a ChaosEngine,
    observed: &'a Observed,
    name: &str,
) -> Option<Resolved<'a>> {
    let experiment = observed.experiments.get(name)?.as_ref();
    let index = engine
        .spec
        .experiments
        .iter()
        .position(|e| e.name == name)?;
    let account = match rules::service_account(engine) {
        Err(_) => Account::Unset,
        Ok(name) => Account::Read {
            name,
            exists: observed.service_account_exists?,
        },
    };
    Some(Resolved {
        engine,
        observed,
        index,
        entry: &engine.spec.experiments[index],
        experiment,
        account,
    })
}

/// The checks Litmus makes before it creates an experiment's Job, each made once, in Litmus's order:
/// the experiment exists, its name fits a Job name, the service account is set and exists, enabled
/// sidecars are listed, the merged ConfigMaps/Secrets are complete and exist, the definition has
/// command and args.
pub fn gate(resolved: Resolved<'_>, run_id: i64, iteration: u32) -> Result<Launchable<'_>, Skip> {
    let Resolved {
        engine,
        observed,
        index,
        entry,
        experiment,
        account,
    } = resolved;
    let namespace = engine.metadata.namespace.as_deref().unwrap_or_default();
    let absent = |name: &str| (name.to_string(), namespace.to_string());
    let Some(experiment) = experiment else {
        let (name, namespace) = absent(&entry.name);
        return Err(Skip::ExperimentNotFound { name, namespace });
    };
    if entry.name.chars().count() > limits::MAX_EXPERIMENT_NAME_LEN {
        return Err(Skip::NameTooLong(entry.name.clone()));
    }
    let service_account = match account {
        Account::Unset => return Err(RenderError::NoServiceAccount.into()),
        Account::Read {
            name,
            exists: false,
        } => {
            let (name, namespace) = absent(name);
            return Err(Skip::ServiceAccountNotFound { name, namespace });
        }
        Account::Read { name, exists: true } => name,
    };
    let (sources, sidecars, identity) = checked(engine, observed, experiment, entry)?;
    Ok(Launchable {
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
    })
}

type Checked<'a> = (MountedSources, &'a [Sidecar], (&'a str, &'a str, &'a str));

/// The gate's checks after the service account: sidecars, sources, the definition, the engine.
fn checked<'a>(
    engine: &'a ChaosEngine,
    observed: &Observed,
    experiment: &ChaosExperiment,
    entry: &ExperimentList,
) -> Result<Checked<'a>, Skip> {
    let namespace = engine.metadata.namespace.as_deref().unwrap_or_default();
    let absent = |name: &str| (name.to_string(), namespace.to_string());
    let sidecars = rules::sidecars(engine).map_err(|_| RenderError::NoSidecar)?;
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
    if let Some(field) = rules::empty_definition_fields(&experiment.spec.definition).next() {
        return Err(RenderError::EmptyDefinitionField(entry.name.clone(), field).into());
    }
    Ok((sources, sidecars, (engine_name, namespace, uid)))
}
