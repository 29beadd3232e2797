//! What the shell reads for one pass: [`lookups`] says what to read before [`super::plan`], and
//! [`Observed`] is what was read. Nothing is read that the pass could not use.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::parse_time;
use super::start::{Situation, engine_problem, situation, working_status};
use crate::api::{ChaosEngine, ChaosExperiment, ChaosResult};
use crate::engine::schedule::{self, Start};

/// What the shell read for this pass.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// ChaosExperiments looked up (see [`lookups`]): `None` = not found in the engine namespace.
    pub experiments: BTreeMap<String, Option<ChaosExperiment>>,
    /// Whether `spec.chaosServiceAccount` exists (`None` = not looked up).
    pub service_account_exists: Option<bool>,
    /// ConfigMaps referenced by the looked-up experiments that do not exist.
    pub missing_config_maps: BTreeSet<String>,
    /// Secrets referenced by the looked-up experiments that do not exist.
    pub missing_secrets: BTreeSet<String>,
    /// Jobs labelled `chaosUID=<engine uid>`.
    pub jobs: Vec<Job>,
    /// Pods labelled `chaosUID=<engine uid>`.
    pub pods: Vec<Pod>,
    /// ChaosResults of this engine (label `chaosUID`, or named after it).
    pub results: Vec<ChaosResult>,
    /// Jobs of this engine the API server refused to create (name → its message): a terminal,
    /// explained outcome for that experiment, never a retry.
    pub rejected_jobs: BTreeMap<String, String>,
    /// The last owed Event (run, seq) known delivered (see `status.pendingEvents`).
    pub events_delivered: Option<(i64, u64)>,
}

/// What the shell must read before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// ChaosExperiments (names) that may be launched in this pass.
    pub experiments: Vec<String>,
    /// The service account to check, when something may be launched.
    pub service_account: Option<String>,
}

/// What to read before [`plan`]: the experiments that may be launched in this pass.
pub fn lookups(engine: &ChaosEngine, now: Timestamp) -> Lookups {
    if !matches!(situation(engine), Situation::Start | Situation::Progress)
        || engine_problem(engine).is_some()
    {
        return Lookups::default();
    }
    let status = working_status(engine, now);
    if parse_time(status.next_iteration_at.as_deref()).is_some_and(|at| now < at) {
        return Lookups::default();
    }
    // Everything that may be decided in this pass is looked up now: an experiment skipped at
    // validation (not found, a missing ConfigMap...) lets the next one start in the same pass, so
    // once anything may launch, every pending experiment is read (one pass, however many).
    let may_launch = schedule::startable(engine, &status)
        .into_iter()
        .any(|s| matches!(s, Start::Launch(_)));
    let experiments: Vec<String> = if may_launch {
        status
            .experiments
            .iter()
            .filter(|e| e.phase.is_pending())
            .map(|e| e.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    let service_account = (!experiments.is_empty())
        .then(|| {
            engine
                .spec
                .chaos_service_account
                .clone()
                .filter(|s| !s.is_empty())
        })
        .flatten();
    Lookups {
        experiments,
        service_account,
    }
}
