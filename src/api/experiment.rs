//! `ChaosExperiment`: the fault's image, command, default env, labels and volumes.
use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{EnvVar, PodSecurityContext, SecurityContext};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{CustomResource, Resource};
use schemars::JsonSchema;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};

use super::engine::VolumeSource;
use super::schema::preserve_unknown;

/// Pattern of `definition.scope` (Litmus CRD).
pub const SCOPE_PATTERN: &str = "^(Namespaced|Cluster)$";

/// Kind of the ChaosExperiment resource.
pub const EXPERIMENT_KIND: &str = "ChaosExperiment";

// The derive generates `ChaosExperimentDerived`, used only for the CRD: kube's derive knows `spec`
// and `status` alone, while Litmus's ChaosExperiment has a top-level `description` too (hub faults
// carry it). `ChaosExperiment` below is the type the code uses, and it carries the description.
/// The spec of a ChaosExperiment: only `definition`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "litmuschaos.io",
    version = "v1alpha1",
    kind = "ChaosExperiment",
    root = "ChaosExperimentDerived",
    namespaced,
    category = "litmuschaos"
)]
pub struct ChaosExperimentSpec {
    #[serde(default)]
    pub definition: ExperimentDef,
}

/// A `litmuschaos.io/v1alpha1` ChaosExperiment: metadata, the hub's `description` and the spec.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ChaosExperiment {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// ChaosHub's description of the fault (`message` and the like); informational only.
    #[serde(default)]
    pub description: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub spec: ChaosExperimentSpec,
}

impl ChaosExperiment {
    /// An experiment named `name` (no namespace, no description).
    pub fn new(name: &str, spec: ChaosExperimentSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            description: None,
            spec,
        }
    }
}

/// Written by hand because `apiVersion` and `kind` must be on the wire but are not fields.
impl Serialize for ChaosExperiment {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = if self.description.is_some() { 5 } else { 4 };
        let mut out = serializer.serialize_struct("ChaosExperiment", fields)?;
        out.serialize_field("apiVersion", super::API_VERSION)?;
        out.serialize_field("kind", EXPERIMENT_KIND)?;
        out.serialize_field("metadata", &self.metadata)?;
        if let Some(description) = &self.description {
            out.serialize_field("description", description)?;
        }
        out.serialize_field("spec", &self.spec)?;
        out.end()
    }
}

impl Resource for ChaosExperiment {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        EXPERIMENT_KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        super::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        super::VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        super::API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "chaosexperiments".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_round_trips_with_api_version_and_kind() {
        let yaml = "apiVersion: litmuschaos.io/v1alpha1\nkind: ChaosExperiment\ndescription:\n  message: Deletes a pod\nmetadata:\n  name: pod-delete\nspec:\n  definition:\n    image: go-runner\n";
        let exp: ChaosExperiment = serde_norway::from_str(yaml).unwrap();
        assert_eq!(
            exp.description.as_ref().and_then(|d| d.get("message")),
            Some(&"Deletes a pod".to_string())
        );
        let value = serde_json::to_value(&exp).unwrap();
        assert_eq!(value["apiVersion"], "litmuschaos.io/v1alpha1");
        assert_eq!(value["kind"], "ChaosExperiment");
        assert_eq!(value["description"]["message"], "Deletes a pod");
        assert_eq!(value["spec"]["definition"]["image"], "go-runner");
        let plain = ChaosExperiment::new("x", ChaosExperimentSpec::default());
        assert!(
            serde_json::to_value(&plain)
                .unwrap()
                .get("description")
                .is_none()
        );
    }
}
