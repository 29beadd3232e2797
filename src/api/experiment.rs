//! `ChaosExperiment`: the fault's image, command, default env, labels and volumes.
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{EnvVar, PodSecurityContext, SecurityContext};
use k8s_openapi::api::rbac::v1::PolicyRule;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::engine::VolumeSource;
use super::schema::preserve_unknown;

/// Pattern of `definition.scope` (Litmus CRD).
pub const SCOPE_PATTERN: &str = "^(Namespaced|Cluster)$";

/// The spec of a ChaosExperiment: only `definition`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "litmuschaos.io",
    version = "v1alpha1",
    kind = "ChaosExperiment",
    namespaced,
    category = "litmuschaos"
)]
pub struct ChaosExperimentSpec {
    #[serde(default)]
    pub definition: ExperimentDef,
}

/// `spec.definition` (preserves unknown keys like Litmus's CRD).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ExperimentDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SCOPE_PATTERN))]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub permissions: Vec<PolicyRule>,
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<RequiredVolumeSource>")]
    pub config_maps: Vec<VolumeSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<RequiredVolumeSource>")]
    pub secrets: Vec<VolumeSource>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_file_volumes: Vec<HostFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<ExperimentSecurityContext>,
    #[serde(default, rename = "hostPID", skip_serializing_if = "Option::is_none")]
    pub host_pid: Option<bool>,
    /// Informational: Litmus ignores the experiment's own annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub experiment_annotations: BTreeMap<String, String>,
}

/// Schema of a ChaosExperiment's configMaps/secrets entry: both fields required and non-empty.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
struct RequiredVolumeSource {
    #[schemars(length(min = 1))]
    name: String,
    #[schemars(length(min = 1))]
    mount_path: String,
}

/// A hostPath volume of the experiment pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostFile {
    #[schemars(length(min = 1))]
    pub name: String,
    #[schemars(length(min = 1))]
    pub mount_path: String,
    #[schemars(length(min = 1))]
    pub node_path: String,
    /// hostPath type; Litmus defaults it to `File`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub host_path_type: Option<String>,
}

/// Pod- and container-level security contexts of the experiment pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentSecurityContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}
