//! The experiment container's env and mounted sources, merged with Litmus's precedence
//! (docs/litmus-compatibility.md#env-precedence, #volumes).
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};

use crate::api::{ChaosEngine, ChaosExperiment, ExperimentList, VolumeSource};

use super::RenderError;
use super::names::{status_check_timeouts, targets};

/// An ordered env list where setting a name again replaces the value in place, so the order is
/// deterministic (Litmus's hash map made it random, which breaks `$(VAR)` expansion).
#[derive(Debug, Default, Clone)]
pub(super) struct EnvList(pub(super) Vec<EnvVar>);

impl EnvList {
    pub(super) fn set(&mut self, var: EnvVar) {
        match self.0.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = var,
            None => self.0.push(var),
        }
    }
    pub(super) fn set_value(&mut self, name: &str, value: impl Into<String>) {
        self.set(EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        });
    }
    pub(super) fn set_if_non_empty(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.set_value(name, value);
        }
    }
}

pub(super) fn downward(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: field.into(),
                api_version: None,
            }),
            ..Default::default()
        }),
    }
}

/// The experiment container's env with the precedence of
/// docs/litmus-compatibility.md#env-precedence: runner-derived → ChaosExperiment env → engine env →
/// forced STATUS_CHECK_* / JOB_CLEANUP_POLICY → downward-API POD_NAME.
pub fn merge_env(
    engine: &ChaosEngine,
    experiment: &ChaosExperiment,
    entry: &ExperimentList,
) -> Vec<EnvVar> {
    let spec = &engine.spec;
    let def = &experiment.spec.definition;
    let mut env = EnvList::default();
    env.set_if_non_empty(
        "CHAOSENGINE",
        engine.metadata.name.as_deref().unwrap_or_default(),
    );
    env.set_if_non_empty("TARGETS", &targets(engine));
    env.set_if_non_empty(
        "CHAOS_NAMESPACE",
        engine.metadata.namespace.as_deref().unwrap_or_default(),
    );
    env.set_if_non_empty(
        "AUXILIARY_APPINFO",
        spec.auxiliary_app_info.as_deref().unwrap_or_default(),
    );
    env.set_if_non_empty(
        "CHAOS_UID",
        engine.metadata.uid.as_deref().unwrap_or_default(),
    );
    env.set_if_non_empty("EXPERIMENT_NAME", &entry.name);
    env.set_if_non_empty("LIB_IMAGE_PULL_POLICY", &experiment_pull_policy(experiment));
    env.set_value(
        "TERMINATION_GRACE_PERIOD_SECONDS",
        spec.termination_grace_period_seconds
            .unwrap_or(0)
            .to_string(),
    );
    env.set_value(
        "DEFAULT_HEALTH_CHECK",
        spec.default_health_check.unwrap_or(false).to_string(),
    );
    env.set_if_non_empty(
        "CHAOS_SERVICE_ACCOUNT",
        spec.chaos_service_account.as_deref().unwrap_or_default(),
    );
    for var in &def.env {
        env.set(var.clone());
    }
    for var in &entry.spec.components.env {
        env.set(var.clone());
    }
    let (delay, timeout) = status_check_timeouts(entry);
    env.set_value("STATUS_CHECK_DELAY", delay.to_string());
    env.set_value("STATUS_CHECK_TIMEOUT", timeout.to_string());
    env.set_value(
        "JOB_CLEANUP_POLICY",
        spec.job_clean_up_policy.clone().unwrap_or_default(),
    );
    env.set(downward("POD_NAME", "metadata.name"));
    env.0
}

pub(super) fn experiment_pull_policy(experiment: &ChaosExperiment) -> String {
    experiment
        .spec
        .definition
        .image_pull_policy
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "Always".into())
}

/// Merges the experiment's ConfigMaps/Secrets with the engine's
/// (docs/litmus-compatibility.md#volumes): an engine entry with a known name replaces its
/// mountPath, a new name is appended.
pub fn merge_volume_sources(
    from_experiment: &[VolumeSource],
    from_engine: &[VolumeSource],
) -> Vec<VolumeSource> {
    let mut merged = from_experiment.to_vec();
    for over in from_engine {
        match merged.iter_mut().find(|v| v.name == over.name) {
            Some(existing) => existing.mount_path.clone_from(&over.mount_path),
            None => merged.push(over.clone()),
        }
    }
    merged
}

/// The ConfigMaps and Secrets an experiment mounts, after merging and completeness checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountedSources {
    pub config_maps: Vec<VolumeSource>,
    pub secrets: Vec<VolumeSource>,
}

/// Merged and checked ConfigMaps/Secrets/hostFileVolumes of one experiment.
pub fn mounted_sources(
    experiment: &ChaosExperiment,
    entry: &ExperimentList,
) -> Result<MountedSources, RenderError> {
    let def = &experiment.spec.definition;
    let comps = &entry.spec.components;
    let config_maps = merge_volume_sources(&def.config_maps, &comps.config_maps);
    if config_maps
        .iter()
        .any(|v| v.name.is_empty() || v.mount_path.is_empty())
    {
        return Err(RenderError::IncompleteConfigMap);
    }
    let secrets = merge_volume_sources(&def.secrets, &comps.secrets);
    if secrets
        .iter()
        .any(|v| v.name.is_empty() || v.mount_path.is_empty())
    {
        return Err(RenderError::IncompleteSecret);
    }
    if def
        .host_file_volumes
        .iter()
        .any(|h| h.name.is_empty() || h.mount_path.is_empty() || h.node_path.is_empty())
    {
        return Err(RenderError::IncompleteHostFile);
    }
    Ok(MountedSources {
        config_maps,
        secrets,
    })
}
