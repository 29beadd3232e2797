//! Rendering the experiment Job exactly as Litmus's chaos-runner does
//! (docs/litmus-compatibility.md#job-rendering), plus our compatible improvements: a controller
//! ownerReference, `backoffLimit: 0`, `chaosUID` applied last, a deterministic name and a
//! deterministic env order.
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMapVolumeSource, Container, HostPathVolumeSource, PodSpec, PodTemplateSpec,
    SecretVolumeSource, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::ExperimentList;
use crate::engine::plan::Launchable;
use crate::validate::rules;

mod env;
mod names;

use env::{EnvList, downward, experiment_pull_policy};
pub use env::{MountedSources, merge_env, merge_volume_sources, mounted_sources};
pub use names::{instance_id, job_name, status_check_timeouts, suffix6, targets};

/// Label that links every chaos-side object to its engine.
pub const CHAOS_UID_LABEL: &str = "chaosUID";
/// Default of `STATUS_CHECK_DELAY` (seconds).
pub const DEFAULT_STATUS_CHECK_DELAY: i64 = 2;
/// Default of `STATUS_CHECK_TIMEOUT` (seconds).
pub const DEFAULT_STATUS_CHECK_TIMEOUT: i64 = 180;
/// ConfigMap/Secret volume mode Litmus uses (0644).
const VOLUME_DEFAULT_MODE: i32 = 420;

/// Why a Job cannot be rendered. Each maps to a Litmus skip reason; the words are the rule book's
/// (src/validate/rules.rs), so `validate` says the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("{}", rules::INCOMPLETE_CONFIGMAP)]
    IncompleteConfigMap,
    #[error("{}", rules::INCOMPLETE_SECRET)]
    IncompleteSecret,
    #[error("{}", rules::INCOMPLETE_HOSTFILE)]
    IncompleteHostFile,
    #[error("ChaosExperiment {0}: {words}", words = rules::empty_definition(.1).message)]
    EmptyDefinitionField(String, &'static str),
    #[error("{}", rules::NO_SERVICE_ACCOUNT)]
    NoServiceAccount,
    #[error("{}", rules::NO_SIDECAR)]
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

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn non_empty_map(m: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!m.is_empty()).then_some(m)
}

/// Renders the experiment Job of a launch that passed the gate (src/engine/plan/gate.rs): every
/// check (service account, ConfigMaps/Secrets, sidecars, the definition's command and args, the
/// engine's identity) was made there, once, so rendering cannot fail.
pub fn render_job(launch: &Launchable<'_>) -> Job {
    let engine = launch.engine();
    let experiment = launch.experiment();
    let id = launch.identity();
    let (engine_name, namespace, uid) = launch.engine_identity();
    let def = &experiment.spec.definition;
    let comps = &id.entry.spec.components;
    let exp_name = id.entry.name.as_str();
    let service_account = launch.service_account().to_string();
    let sources = launch.sources();
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
    // Sidecars only when the annotation enables them; the gate refused an enabled but empty list.
    for (i, sidecar) in launch.sidecars().iter().enumerate() {
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
    Job {
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
    }
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
