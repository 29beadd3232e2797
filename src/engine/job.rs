//! Rendering the experiment Job exactly as Litmus's chaos-runner does
//! (docs/litmus-compatibility.md#job-rendering), plus our compatible improvements: a controller
//! ownerReference, `backoffLimit: 0`, `chaosUID` applied last, a deterministic name and a
//! deterministic env order.
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, HostPathVolumeSource,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use crate::api::{ChaosEngine, ChaosExperiment, ExperimentList, VolumeSource};

/// Label that links every chaos-side object to its engine.
pub const CHAOS_UID_LABEL: &str = "chaosUID";
/// Default of `STATUS_CHECK_DELAY` (seconds).
pub const DEFAULT_STATUS_CHECK_DELAY: i64 = 2;
/// Default of `STATUS_CHECK_TIMEOUT` (seconds).
pub const DEFAULT_STATUS_CHECK_TIMEOUT: i64 = 180;
/// ConfigMap/Secret volume mode Litmus uses (0644).
const VOLUME_DEFAULT_MODE: i32 = 420;

/// Why a Job cannot be rendered. Each maps to a Litmus skip reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("Incomplete Information in ConfigMap, will skip execution")]
    IncompleteConfigMap,
    #[error("Incomplete Information in Secret, will skip execution")]
    IncompleteSecret,
    #[error("Incomplete Information in HostFileVolume, will skip execution")]
    IncompleteHostFile,
    #[error("ChaosExperiment {0}: spec.definition.{1} must not be empty")]
    EmptyDefinitionField(String, &'static str),
    #[error("spec.chaosServiceAccount must be set")]
    NoServiceAccount,
    #[error(
        "sidecar is enabled by the sidecar/enabled annotation but spec.components.sidecar is empty"
    )]
    NoSidecar,
    #[error("engine has no name, namespace or uid yet")]
    IncompleteEngine,
}

/// Everything the Job is derived from, besides the engine and the experiment.
#[derive(Debug, Clone, Copy)]
pub struct JobIdentity<'a> {
    /// Index of the experiment in `spec.experiments`.
    pub index: usize,
    /// Run of the engine (`status.runId`).
    pub run_id: i64,
    /// Iteration (1-based) for `spec.execution.iterations`, 1 otherwise.
    pub iteration: u32,
    /// The experiment's entry in the engine.
    pub entry: &'a ExperimentList,
}

/// `<experiment>-<6 [a-z0-9]>`, the suffix derived from engine UID, run, index and iteration so a
/// retried launch computes the same name and finds its Job instead of making a second one.
pub fn job_name(
    experiment: &str,
    engine_uid: &str,
    run_id: i64,
    index: usize,
    iteration: u32,
) -> String {
    format!(
        "{experiment}-{}",
        suffix6(&format!("{engine_uid}/{run_id}/{index}/{iteration}"))
    )
}

/// Six characters from `[a-z0-9]`, a pure function of `seed`.
pub fn suffix6(seed: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(6)
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

/// The `TARGETS` string of docs/litmus-compatibility.md#targets (empty without target information).
pub fn targets(engine: &ChaosEngine) -> String {
    let spec = &engine.spec;
    if let Some(selectors) = &spec.selectors {
        if let Some(workloads) = selectors.workloads.as_ref().filter(|w| !w.is_empty()) {
            return workloads
                .iter()
                .map(|w| {
                    let what = w
                        .names
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .or(w.labels.as_deref());
                    format!("{}:{}:[{}]", w.kind, w.namespace, what.unwrap_or_default())
                })
                .collect::<Vec<_>>()
                .join(";");
        }
        if let Some(pods) = selectors.pods.as_ref().filter(|p| !p.is_empty()) {
            return pods
                .iter()
                .map(|p| format!("pod:{}:[{}]", p.namespace, p.names))
                .collect::<Vec<_>>()
                .join(";");
        }
    }
    let Some(app) = &spec.appinfo else {
        return String::new();
    };
    let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let (ns, label, kind) = (
        non_empty(&app.appns),
        non_empty(&app.applabel),
        non_empty(&app.appkind),
    );
    if ns.is_none() && label.is_none() && kind.is_none() {
        return String::new();
    }
    format!(
        "{}:{}:[{}]",
        kind.unwrap_or_else(|| "KIND".into()),
        ns.unwrap_or_else(|| engine.metadata.namespace.clone().unwrap_or_default()),
        label.unwrap_or_default()
    )
}

/// `INSTANCE_ID` as set by plain value in the engine's env for this experiment (changes the
/// ChaosResult name, as in litmus-go).
pub fn instance_id(entry: &ExperimentList) -> Option<String> {
    entry
        .spec
        .components
        .env
        .iter()
        .rev()
        .find(|e| e.name == "INSTANCE_ID")
        .and_then(|e| e.value.clone())
        .filter(|v| !v.is_empty())
}

/// `(STATUS_CHECK_DELAY, STATUS_CHECK_TIMEOUT)` in seconds: engine values when non-zero, else the defaults.
pub fn status_check_timeouts(entry: &ExperimentList) -> (i64, i64) {
    let t = entry
        .spec
        .components
        .status_check_timeouts
        .clone()
        .unwrap_or_default();
    (
        t.delay
            .filter(|d| *d != 0)
            .unwrap_or(DEFAULT_STATUS_CHECK_DELAY),
        t.timeout
            .filter(|d| *d != 0)
            .unwrap_or(DEFAULT_STATUS_CHECK_TIMEOUT),
    )
}

/// An ordered env list where setting a name again replaces the value in place, so the order is
/// deterministic (Litmus's hash map made it random, which breaks `$(VAR)` expansion).
#[derive(Debug, Default, Clone)]
struct EnvList(Vec<EnvVar>);

impl EnvList {
    fn set(&mut self, var: EnvVar) {
        match self.0.iter_mut().find(|e| e.name == var.name) {
            Some(existing) => *existing = var,
            None => self.0.push(var),
        }
    }
    fn set_value(&mut self, name: &str, value: impl Into<String>) {
        self.set(EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        });
    }
    fn set_if_non_empty(&mut self, name: &str, value: &str) {
        if !value.is_empty() {
            self.set_value(name, value);
        }
    }
}

fn downward(name: &str, field: &str) -> EnvVar {
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

fn experiment_pull_policy(experiment: &ChaosExperiment) -> String {
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

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

/// Renders the experiment Job for one experiment of one run.
pub fn render_job(
    engine: &ChaosEngine,
    experiment: &ChaosExperiment,
    id: JobIdentity<'_>,
) -> Result<Job, RenderError> {
    let (Some(engine_name), Some(namespace), Some(uid)) = (
        engine.metadata.name.as_deref(),
        engine.metadata.namespace.as_deref(),
        engine.metadata.uid.as_deref(),
    ) else {
        return Err(RenderError::IncompleteEngine);
    };
    let def = &experiment.spec.definition;
    let comps = &id.entry.spec.components;
    let exp_name = id.entry.name.as_str();
    if def.command.is_empty() {
        return Err(RenderError::EmptyDefinitionField(
            exp_name.into(),
            "command",
        ));
    }
    if def.args.is_empty() {
        return Err(RenderError::EmptyDefinitionField(exp_name.into(), "args"));
    }
    let service_account = engine
        .spec
        .chaos_service_account
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or(RenderError::NoServiceAccount)?;
    let sources = mounted_sources(experiment, id.entry)?;
    let name = job_name(exp_name, uid, id.run_id, id.index, id.iteration);

    // Labels: experiment labels, then the engine's, then chaosUID last so nothing can override it
    // (chaos-scheduler engines carry their own chaosUID label:
    // docs/litmus-compatibility.md#job-rendering).
    let mut labels = def.labels.clone().unwrap_or_default();
    labels.extend(engine.metadata.labels.clone().unwrap_or_default());
    labels.insert(CHAOS_UID_LABEL.into(), uid.into());
    let annotations = non_empty_map(comps.experiment_annotations.clone());

    let mut volumes: Vec<Volume> = Vec::new();
    let mut mounts: Vec<VolumeMount> = Vec::new();
    for cm in &sources.config_maps {
        volumes.push(Volume {
            name: cm.name.clone(),
            config_map: Some(ConfigMapVolumeSource {
                name: cm.name.clone(),
                default_mode: Some(VOLUME_DEFAULT_MODE),
                ..Default::default()
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: cm.name.clone(),
            mount_path: cm.mount_path.clone(),
            ..Default::default()
        });
    }
    for secret in &sources.secrets {
        volumes.push(secret_volume(&secret.name));
        mounts.push(VolumeMount {
            name: secret.name.clone(),
            mount_path: secret.mount_path.clone(),
            ..Default::default()
        });
    }
    for host in &def.host_file_volumes {
        volumes.push(Volume {
            name: host.name.clone(),
            host_path: Some(HostPathVolumeSource {
                path: host.node_path.clone(),
                type_: Some(
                    host.host_path_type
                        .clone()
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| "File".into()),
                ),
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: host.name.clone(),
            mount_path: host.mount_path.clone(),
            ..Default::default()
        });
    }

    let security = def.security_context.clone().unwrap_or_default();
    let image = comps
        .experiment_image
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| def.image.clone());
    let main = Container {
        name: name.clone(),
        image: Some(image),
        command: Some(def.command.clone()),
        args: Some(def.args.clone()),
        image_pull_policy: Some(experiment_pull_policy(experiment)),
        env: Some(merge_env(engine, experiment, id.entry)),
        security_context: security.container_security_context.clone(),
        resources: comps.resources.clone(),
        volume_mounts: non_empty(mounts),
        ..Default::default()
    };
    let mut containers = vec![main];
    if engine.sidecar_enabled() {
        let sidecars = engine
            .spec
            .components
            .as_ref()
            .map(|c| c.sidecar.clone())
            .unwrap_or_default();
        if sidecars.is_empty() {
            return Err(RenderError::NoSidecar);
        }
        for (i, sidecar) in sidecars.iter().enumerate() {
            let mut env = EnvList(sidecar.env.clone());
            env.set(downward("POD_NAME", "metadata.name"));
            env.set(downward("POD_NAMESPACE", "metadata.namespace"));
            env.set_value("MAIN_CONTAINER", name.clone());
            let mut sidecar_mounts = Vec::new();
            for secret in &sidecar.secrets {
                // Litmus added a second volume of the same name (an invalid pod); share it instead.
                if !volumes.iter().any(|v| v.name == secret.name) {
                    volumes.push(secret_volume(&secret.name));
                }
                sidecar_mounts.push(VolumeMount {
                    name: secret.name.clone(),
                    mount_path: secret.mount_path.clone(),
                    ..Default::default()
                });
            }
            containers.push(Container {
                name: format!("{name}-sidecar-{}", suffix6(&format!("{name}/sidecar/{i}"))),
                image: Some(sidecar.image.clone()),
                image_pull_policy: Some(
                    sidecar
                        .image_pull_policy
                        .clone()
                        .filter(|p| !p.is_empty())
                        .unwrap_or_else(|| "IfNotPresent".into()),
                ),
                env: Some(env.0),
                env_from: non_empty(sidecar.env_from.clone()),
                resources: comps.resources.clone(),
                volume_mounts: non_empty(sidecar_mounts),
                ..Default::default()
            });
        }
    }

    let grace = engine
        .spec
        .termination_grace_period_seconds
        .filter(|g| *g != 0);
    let pod_spec = PodSpec {
        service_account_name: Some(service_account),
        restart_policy: Some("Never".into()),
        volumes: non_empty(volumes),
        containers,
        termination_grace_period_seconds: grace,
        security_context: security.pod_security_context.clone(),
        host_pid: def.host_pid.filter(|h| *h),
        image_pull_secrets: non_empty(comps.experiment_image_pull_secrets.clone()),
        node_selector: non_empty_map(comps.node_selector.clone()),
        tolerations: non_empty(comps.tolerations.clone()),
        ..Default::default()
    };
    let owner = OwnerReference {
        api_version: crate::api::API_VERSION.into(),
        kind: "ChaosEngine".into(),
        name: engine_name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    Ok(Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.into()),
            labels: Some(labels.clone()),
            annotations: annotations.clone(),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations,
                    ..Default::default()
                }),
                spec: Some(pod_spec),
            },
            ..Default::default()
        }),
        status: None,
    })
}

fn secret_volume(name: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(name.into()),
            default_mode: Some(VOLUME_DEFAULT_MODE),
            ..Default::default()
        }),
        ..Default::default()
    }
}
