//! The ChaosEngine's status: Litmus's fields and status strings (docs/litmus-compatibility.md
//! #status-strings), plus our persisted phase machine and the Event outbox.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::phase::{EnginePhase, ExperimentPhase};
use super::schema::preserve_unknown;

/// An Event a transition owes (see `ChaosEngineStatus::pending_events`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwedEvent {
    /// The run (`status.runId`) whose transition owes it.
    pub run: i64,
    /// Order within the run, from 1.
    pub seq: u64,
    /// The experiment of a runner event (`<engine>-runner` source); empty for operator events.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub experiment: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// When the transition was decided (RFC 3339).
    pub at: String,
}

/// The observed state of a ChaosEngine: Litmus's fields plus the persisted phase machine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = preserve_unknown)]
pub struct ChaosEngineStatus {
    /// Litmus: `initialized`, `completed` or `stopped`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub engine_status: String,
    /// Litmus: one entry per experiment name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub experiments: Vec<ExperimentStatus>,
    /// Where the run stands (see [`EnginePhase`]).
    #[serde(default, skip_serializing_if = "EnginePhase::is_unset")]
    #[schemars(with = "String")]
    pub phase: EnginePhase,
    /// Summary of the experiments' verdicts (`Pass` only if all passed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verdict: String,
    /// Identifies one run of the engine: the engine's `metadata.generation` when the run started.
    /// Job names are derived from it, so a retried launch finds its Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Why the engine is in its phase, in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the run started (RFC 3339), set once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When the run ended (RFC 3339), set once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// When an abort started (RFC 3339); bounds the wait for chaos pods to go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<String>,
    /// Seed used for `spec.execution` random choices (picked by the controller when not given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Current iteration (from 1) when `spec.execution.iterations` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// While waiting between iterations: when the next one may start (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_iteration_at: Option<String>,
    /// Per-iteration and per-experiment records of `spec.execution` runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<ExperimentStatus>,
    /// How many of the oldest `runs` records were dropped to keep the object small (etcd refuses
    /// objects over ~1.5 MB); their verdicts still count, through `droppedRunsVerdict`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_runs: Option<u32>,
    /// The summary verdict of the dropped `runs` records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_runs_verdict: Option<String>,
    /// The outbox: Events owed by the transitions this status records, written with them, so an
    /// Event is never lost to a crash between the transition and its Event. Each is emitted once
    /// (its `seq` is stamped on the Event object; a retry adopts), and dropped from here by a
    /// later status write once delivered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_events: Vec<OwedEvent>,
    /// The last `seq` handed out in this run (see `pendingEvents`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_seq: Option<u64>,
    /// Standard conditions (`Ready`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One entry of `status.experiments[]` (Litmus's fields first, then ours).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    pub name: String,
    #[serde(default)]
    pub runner: String,
    #[serde(default)]
    pub experiment_pod: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub verdict: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    /// Our phase of this experiment (see [`ExperimentPhase`]).
    #[serde(default, skip_serializing_if = "ExperimentPhase::is_unset")]
    #[schemars(with = "String")]
    pub phase: ExperimentPhase,
    /// The experiment Job's name once known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub job_name: String,
    /// Run of the engine this entry belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    /// Iteration (from 1) when `spec.execution.iterations` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// Name of the ChaosResult the verdict is read from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub result_name: String,
    /// Why the experiment ended as it did when it did not complete normally.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the Job was created (RFC 3339), set once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<String>,
    /// When the experiment pod was first seen running (RFC 3339), set once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_at: Option<String>,
    /// When the experiment ended (RFC 3339), set once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

/// Litmus `status.engineStatus` values.
pub mod engine_status {
    pub const INITIALIZED: &str = "initialized";
    pub const COMPLETED: &str = "completed";
    pub const STOPPED: &str = "stopped";
}

/// Litmus `status.experiments[].status` values (exact strings).
pub mod experiment_status {
    pub const WAITING: &str = "Waiting for Job Creation";
    pub const RUNNING: &str = "Running";
    pub const COMPLETED: &str = "Completed";
    pub const NOT_FOUND: &str = "ChaosExperiment Not Found";
    pub const SKIPPED: &str = "Skipped";
    pub const ABORTED: &str = "Forcefully Aborted";
}

/// Litmus `status.experiments[].experimentPod` placeholders.
pub mod experiment_pod {
    pub const YET_TO_BE_LAUNCHED: &str = "Yet to be launched";
    pub const NOT_AVAILABLE: &str = "N/A";
}

/// Verdict strings (engine status and ChaosResult).
pub mod verdict {
    pub const NOT_AVAILABLE: &str = "N/A";
    pub const AWAITED: &str = "Awaited";
    pub const PASS: &str = "Pass";
    pub const FAIL: &str = "Fail";
    pub const ERROR: &str = "Error";
    pub const STOPPED: &str = "Stopped";
}
