//! `ChaosEngine`: what to break, how, and (in its status) how far the run has come.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    EnvFromSource, EnvVar, LocalObjectReference, ResourceRequirements, Toleration,
};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::{free_object, preserve_unknown};
use super::status::ChaosEngineStatus;

/// Pattern of `spec.engineState` (Litmus CRD).
pub const ENGINE_STATE_PATTERN: &str = "^(active|stop)$";
/// Pattern of `spec.jobCleanUpPolicy` (Litmus CRD).
pub const JOB_CLEANUP_POLICY_PATTERN: &str = "^(delete|retain)$";
/// Pattern of `appinfo.appkind` and `selectors.workloads[].kind` (Litmus CRD).
pub const APP_KIND_PATTERN: &str =
    "^(^$|deployment|statefulset|daemonset|deploymentconfig|rollout)$";
/// Pattern of `components.runner.type` (Litmus CRD; legacy, ignored).
pub const RUNNER_TYPE_PATTERN: &str = "^(go)$";
/// Pattern of a probe's `type` (Litmus CRD).
pub const PROBE_TYPE_PATTERN: &str = "^(k8sProbe|httpProbe|cmdProbe|promProbe|sloProbe)$";
/// Pattern of a probe's `mode` (Litmus CRD).
pub const PROBE_MODE_PATTERN: &str = "^(SOT|EOT|Edge|Continuous|OnChaos)$";

/// Engine annotation that switches sidecars on (any value but `"false"`).
pub const SIDECAR_ANNOTATION: &str = "sidecar/enabled";
/// Engine annotation that aborts a run (`"true"`).
pub const ABORT_ANNOTATION: &str = "litmuschaos.io/abort";
/// Finalizer that guarantees abort cleanup before an engine disappears.
pub const FINALIZER: &str = "chaosengine.litmuschaos.io/finalizer";

/// The desired state of a ChaosEngine.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "litmuschaos.io",
    version = "v1alpha1",
    kind = "ChaosEngine",
    namespaced,
    derive = "PartialEq",
    status = "ChaosEngineStatus",
    shortname = "ce",
    category = "litmuschaos",
    printcolumn = r#"{"name":"Engine","type":"string","jsonPath":".status.engineStatus","description":"Litmus engine status: initialized, completed or stopped"}"#,
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.phase","description":"Where the run stands"}"#,
    printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.verdict","description":"Summary of the experiments' verdicts"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ChaosEngineSpec {
    /// `active` (run) or `stop` (abort, or finished). Empty means `active`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = ENGINE_STATE_PATTERN))]
    pub engine_state: Option<String>,
    /// Service account of the experiment Job pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos_service_account: Option<String>,
    /// Legacy target description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appinfo: Option<ApplicationParams>,
    /// Newer target description (one of workloads or pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<Selectors>,
    /// Extra apps to health-check, `"ns:label,ns:label"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auxiliary_app_info: Option<String>,
    /// `delete` or `retain`; empty behaves as `retain` (Litmus's code semantics).
    #[serde(
        default,
        rename = "jobCleanUpPolicy",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(regex(pattern = JOB_CLEANUP_POLICY_PATTERN))]
    pub job_clean_up_policy: Option<String>,
    /// Grace period of experiment pods and of abort deletions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Passed as `DEFAULT_HEALTH_CHECK`; omitted means false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_health_check: Option<bool>,
    /// Runner settings (accepted, inert: there is no runner pod) and sidecars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<EngineComponents>,
    /// The experiments to run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<ExperimentList>,
    /// chaos-conductor extension: how the listed experiments run (sequential by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Execution>,
}

/// Legacy `appinfo` target description.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ApplicationParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applabel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = APP_KIND_PATTERN))]
    pub appkind: Option<String>,
}

/// `selectors`: exactly one of `workloads` or `pods`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(transform = one_of_pods_or_workloads)]
pub struct Selectors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<Vec<Workload>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<Vec<PodSelector>>,
}

fn one_of_pods_or_workloads(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([{"required": ["pods"]}, {"required": ["workloads"]}]),
    );
}

/// One workload target: `kind`, `namespace`, and one of `names` / `labels`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(transform = one_of_names_or_labels)]
pub struct Workload {
    #[schemars(regex(pattern = APP_KIND_PATTERN))]
    pub kind: String,
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
}

fn one_of_names_or_labels(schema: &mut schemars::Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([{"required": ["names"]}, {"required": ["labels"]}]),
    );
}

/// One pod target: `namespace` and comma-separated `names`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct PodSelector {
    pub namespace: String,
    pub names: String,
}

/// `spec.components`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct EngineComponents {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecar: Vec<Sidecar>,
}

/// `spec.components.runner`: accepted for compatibility; chaos-conductor starts no runner pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct RunnerInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runner_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub runner_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<VolumeSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<VolumeSource>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = RUNNER_TYPE_PATTERN))]
    pub runner_type: Option<String>,
}

/// A sidecar container added to experiment pods when the engine has `sidecar/enabled`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sidecar {
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<VolumeSource>,
}

/// A ConfigMap or Secret mounted into the experiment container. The engine's entries are checked
/// at run time (Litmus skips the experiment when one is incomplete), so both fields default.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeSource {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub mount_path: String,
}

/// `spec.experiments[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExperimentList {
    pub name: String,
    #[serde(default)]
    pub spec: ExperimentAttributes,
}

/// `spec.experiments[].spec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ExperimentAttributes {
    #[serde(default)]
    pub components: ExperimentComponents,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe: Vec<ProbeAttributes>,
}

/// `spec.experiments[].spec.components`: the engine's overrides of the ChaosExperiment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ExperimentComponents {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_maps: Vec<VolumeSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<VolumeSource>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub experiment_annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiment_image_pull_secrets: Vec<LocalObjectReference>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_check_timeouts: Option<StatusCheckTimeout>,
}

/// `statusCheckTimeouts`: seconds; 0 or absent means the default (2 / 180).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct StatusCheckTimeout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// A probe, read by litmus-go only; kept loosely typed except for the validated `type` and `mode`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ProbeAttributes {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    #[schemars(regex(pattern = PROBE_TYPE_PATTERN))]
    pub probe_type: String,
    #[serde(default)]
    #[schemars(regex(pattern = PROBE_MODE_PATTERN))]
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_object")]
    pub run_properties: Option<serde_json::Value>,
}

/// chaos-conductor extension (`spec.execution`): how an engine's experiments run.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// `sequential` (default, Litmus behaviour), `parallel` or `graph`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = "^(sequential|parallel|graph)$"))]
    pub mode: Option<String>,
    /// Most experiments running at once in `parallel` / `graph` mode (0 or absent: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_parallel: Option<u32>,
    /// `graph` mode: experiment name → the experiments it waits for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub depends_on: BTreeMap<String, Vec<String>>,
    /// `graph` mode: start an experiment only when the ones it waits for passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pass: Option<bool>,
    /// How many times the whole list runs (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub iterations: Option<u32>,
    /// Minimum seconds between the end of one iteration and the start of the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_interval_seconds: Option<u32>,
    /// Maximum seconds between iterations (a seeded random pick in [min, max]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_interval_seconds: Option<u32>,
    /// Shuffle the experiment order of every iteration (seeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_order: Option<bool>,
    /// Seed of every random choice; recorded in the status when the controller picks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Cancel what has not started and abort what runs once an experiment fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_on_failure: Option<bool>,
}

impl ChaosEngine {
    /// `spec.engineState` with Litmus's default: empty means active.
    pub fn wants_active(&self) -> bool {
        matches!(
            self.spec.engine_state.as_deref(),
            None | Some("") | Some("active")
        )
    }

    /// Whether the abort annotation is set.
    pub fn abort_requested(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ABORT_ANNOTATION))
            .is_some_and(|v| v == "true")
    }

    /// Whether sidecars are enabled (annotation present and not `"false"`).
    pub fn sidecar_enabled(&self) -> bool {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(SIDECAR_ANNOTATION))
            .is_some_and(|v| v != "false")
    }

    /// `<engine>-runner`, the runner name Litmus consumers display.
    pub fn runner_name(&self) -> String {
        format!(
            "{}-runner",
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }
}
