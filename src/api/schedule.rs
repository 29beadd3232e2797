//! `ChaosSchedule`: creates ChaosEngines now, once, or repeatedly (Litmus's chaos-scheduler CRD).
//!
//! Field names, the `schedule` schema and the status strings follow Litmus's
//! `deploy/crds/chaosschedule_crd.yaml` (see docs/schedule.md). Our extensions are extra, optional
//! fields that Litmus's controller ignores: `timeZone`, `historyLimit`, `randomSeed`,
//! `enforceConcurrencyPolicy` in the spec, and `expectedNextRunTime` (declared but never written by
//! Litmus), `randomSeed`, `lastMissedTime`, `message` in the status.
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ChaosEngineSpec;
use super::schema::preserve_unknown;

/// Pattern of `repeat.workDays.includedDays` (Litmus CRD; unanchored, so the apiserver accepts any
/// string containing one capitalised day name).
pub const INCLUDED_DAYS_PATTERN: &str =
    "((Mon|Tue|Wed|Thu|Fri|Sat|Sun)(,))*(Mon|Tue|Wed|Thu|Fri|Sat|Sun)";

/// Values of `spec.scheduleState` (Litmus has no enum; other strings are accepted and ignored).
pub mod schedule_state {
    pub const ACTIVE: &str = "active";
    pub const HALT: &str = "halt";
    pub const COMPLETE: &str = "complete";
    pub const STOP: &str = "stop";
}

/// Values of `status.schedule.status`.
pub mod schedule_status {
    pub const RUNNING: &str = "running";
    pub const HALTED: &str = "halted";
    pub const COMPLETED: &str = "completed";
}

/// Values of `spec.concurrencyPolicy` (Litmus constants; only honoured with
/// `enforceConcurrencyPolicy: true`, otherwise every value means Forbid).
pub mod concurrency_policy {
    pub const ALLOW: &str = "Allow";
    pub const FORBID: &str = "Forbid";
    pub const REPLACE: &str = "Replace";
}

/// The desired state of a ChaosSchedule.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "litmuschaos.io",
    version = "v1alpha1",
    kind = "ChaosSchedule",
    namespaced,
    derive = "PartialEq",
    status = "ChaosScheduleStatus",
    category = "litmuschaos",
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.schedule.status","description":"running, halted or completed"}"#,
    printcolumn = r#"{"name":"Last Run","type":"date","jsonPath":".status.lastScheduleTime","description":"Scheduled time of the latest engine"}"#,
    printcolumn = r#"{"name":"Next Run","type":"string","jsonPath":".status.schedule.expectedNextRunTime","description":"When the next engine is due"}"#,
    printcolumn = r#"{"name":"Runs","type":"integer","jsonPath":".status.schedule.runInstances","description":"Engines created by a repeat schedule"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ChaosScheduleSpec {
    /// Litmus: documented as the runner's service account, never read. Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chaos_service_account: Option<String>,
    /// Exactly one of `now`, `once`, `repeat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// `active` (or empty) runs, `halt` pauses creation, `complete` finishes. Written by the
    /// controller too (`active` on each creation, `complete` on completion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_state: Option<String>,
    /// `Allow`, `Forbid` or `Replace`; behaves as `Forbid` unless `enforceConcurrencyPolicy` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency_policy: Option<String>,
    /// The spec of every engine created (verbatim, with `engineState: active`). Kept as raw JSON so
    /// keys this version does not know reach the engines unchanged.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    #[schemars(schema_with = "engine_template_schema")]
    pub engine_template_spec: Value,
    /// chaos-conductor extension: honour `concurrencyPolicy` `Allow` / `Replace` (default false:
    /// every value behaves as Litmus's Forbid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforce_concurrency_policy: Option<bool>,
    /// chaos-conductor extension: IANA time zone of the cron fields (`includedHours`,
    /// `includedDays`, `minuteOfTheHour`, the steps). Default UTC, as Litmus in practice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// chaos-conductor extension: keep only this many finished engines of this schedule (oldest
    /// deleted first). Default: keep all, as Litmus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub history_limit: Option<i64>,
    /// chaos-conductor extension: seed of `random: true` draws (default: derived from the
    /// schedule's UID and recorded in `status.schedule.randomSeed`). Same seed, same timeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub random_seed: Option<i64>,
}

/// The engine template's schema: the ChaosEngine spec schema. Litmus's copy has no preserve flag
/// at this level and prunes legacy keys (`annotationCheck`); ours keeps them (a loosening).
fn engine_template_schema(generator: &mut SchemaGenerator) -> Schema {
    ChaosEngineSpec::json_schema(generator)
}

/// `spec.schedule`: exactly one of `now`, `once`, `repeat`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = one_schedule_type)]
pub struct Schedule {
    /// `true`: one engine immediately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub now: Option<bool>,
    /// One engine at `executionTime`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once: Option<ScheduleOnce>,
    /// An engine per cron tick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<ScheduleRepeat>,
}

fn one_schedule_type(schema: &mut Schema) {
    schema.insert(
        "oneOf".into(),
        serde_json::json!([{"required": ["now"]}, {"required": ["once"]}, {"required": ["repeat"]}]),
    );
}

/// `schedule.once`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleOnce {
    /// When the engine is created (immediately when past or absent, as Litmus).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_time: Option<Time>,
}

/// `schedule.repeat`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = repeat_requires_properties)]
pub struct ScheduleRepeat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_range: Option<TimeRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<ScheduleProperty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_hours: Option<WorkHours>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_days: Option<WorkDays>,
}

fn repeat_requires_properties(schema: &mut Schema) {
    schema.insert("required".into(), serde_json::json!(["properties"]));
}

/// `repeat.timeRange`: no engine before `startTime`; the schedule completes after `endTime`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TimeRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
}

/// `repeat.properties`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = properties_requires_interval)]
pub struct ScheduleProperty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_chaos_interval: Option<MinChaosInterval>,
    /// Litmus: declared, never read. Here: each run is drawn uniformly inside its allowed slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<bool>,
}

fn properties_requires_interval(schema: &mut Schema) {
    schema.insert("required".into(), serde_json::json!(["minChaosInterval"]));
}

/// `properties.minChaosInterval`: exactly one of `hour` / `minute`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = exactly_one_property)]
pub struct MinChaosInterval {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<HourInterval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minute: Option<MinuteInterval>,
}

fn exactly_one_property(schema: &mut Schema) {
    schema.insert("minProperties".into(), 1.into());
    schema.insert("maxProperties".into(), 1.into());
}

/// `minChaosInterval.hour`: cron `M H/N * * D`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HourInterval {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_nth_hour: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minute_of_the_hour: Option<i64>,
}

/// `minChaosInterval.minute`: cron `*/N H * * D`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MinuteInterval {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_nth_minute: Option<i64>,
}

/// `repeat.workHours`: a cron hour field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkHours {
    pub included_hours: String,
}

/// `repeat.workDays`: a cron day-of-week field.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkDays {
    #[schemars(regex(pattern = INCLUDED_DAYS_PATTERN))]
    pub included_days: String,
}

/// What the controller reports. Field names and strings as Litmus's; empty fields are omitted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ChaosScheduleStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleStatus>,
    /// Scheduled time of the latest engine (repeat: the tick it stands for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<Time>,
    /// Litmus: set when an active engine disappeared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_completion_time: Option<Time>,
    /// Engines of this schedule that have not finished.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub active: Vec<ObjectReference>,
}

/// `status.schedule`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// `running`, `halted` or `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<Time>,
    /// Engines created by a repeat schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_instances: Option<i64>,
    /// When the next engine is due (the drawn time with `random: true`). Written by us; Litmus
    /// declares it and never writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_next_run_time: Option<Time>,
    /// chaos-conductor: the seed of `random: true` draws.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_seed: Option<i64>,
    /// chaos-conductor: the latest run time that was due while an engine blocked it (a
    /// `MissEngine` event was sent for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_missed_time: Option<Time>,
    /// chaos-conductor: why the schedule cannot run, in words (empty when it can).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
