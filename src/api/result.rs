//! `ChaosResult`: written by the experiment (litmus-go), read for the verdict.
//!
//! Its status is written by litmus-go with full updates, so the CRD has no status subresource and a
//! schema that keeps whatever litmus-go writes (only the fields we read are typed here).
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::preserve_unknown;

/// `spec` of a ChaosResult.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "litmuschaos.io",
    version = "v1alpha1",
    kind = "ChaosResult",
    namespaced,
    derive = "PartialEq",
    status = "ChaosResultStatus",
    category = "litmuschaos",
    printcolumn = r#"{"name":"Phase","type":"string","jsonPath":".status.experimentStatus.phase"}"#,
    printcolumn = r#"{"name":"Verdict","type":"string","jsonPath":".status.experimentStatus.verdict"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[schemars(transform = preserve_unknown)]
pub struct ChaosResultSpec {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
}

/// `status` of a ChaosResult.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ChaosResultStatus {
    /// `experimentStatus` (older litmus-go wrote `experimentstatus`).
    #[serde(default, alias = "experimentstatus")]
    pub experiment_status: ResultExperimentStatus,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probe_statuses: Vec<ProbeStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<ResultHistory>,
}

/// `status.experimentStatus`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ResultExperimentStatus {
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_success_percentage: Option<String>,
    /// `errorOutput` (older litmus-go wrote `failStep`, a string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_output: Option<ErrorOutput>,
}

/// `status.experimentStatus.errorOutput`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorOutput {
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub reason: String,
}

/// One of `status.probeStatuses[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(transform = preserve_unknown)]
pub struct ProbeStatus {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub probe_type: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub status: ProbeVerdict,
}

/// `probeStatuses[].status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ProbeVerdict {
    #[serde(default)]
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `status.history`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ResultHistory {
    #[serde(default)]
    pub passed_runs: i64,
    #[serde(default)]
    pub failed_runs: i64,
    #[serde(default)]
    pub stopped_runs: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetDetails>,
}

/// `status.history.targets[]`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetDetails {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub chaos_status: String,
}

/// ChaosResult `experimentStatus.phase` values.
pub mod result_phase {
    pub const RUNNING: &str = "Running";
    pub const COMPLETED: &str = "Completed";
    pub const COMPLETED_WITH_ERROR: &str = "Completed_With_Error";
    pub const COMPLETED_WITH_PROBE_FAILURE: &str = "Completed_With_Probe_Failure";
    pub const STOPPED: &str = "Stopped";
    pub const ERROR: &str = "Error";
}

/// The ChaosResult name litmus-go uses: `<engine>-<experiment>[-<INSTANCE_ID>]`.
pub fn result_name(engine: &str, experiment: &str, instance_id: Option<&str>) -> String {
    match instance_id {
        Some(id) if !id.is_empty() => format!("{engine}-{experiment}-{id}"),
        _ => format!("{engine}-{experiment}"),
    }
}
