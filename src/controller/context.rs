//! Shared state of the controller: the client, the caches fed by the watches, settings, and the
//! per-engine failure counts kube-runtime does not keep (the backoff is
//! src/controller/machinery.rs).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::runtime::reflector::ObjectRef;

use super::cache::ChaosCache;
use super::error::{Error, KubeContext};
use super::machinery::{Failures, Written};
use crate::api::{ChaosEngine, ChaosResult};
use crate::engine::PlanConfig;

/// How engine status is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMode {
    /// Our CRD: the `/status` subresource.
    Subresource,
    /// Litmus's own CRD (no subresource): merge patch of the main resource.
    MainResource,
}

impl StatusMode {
    /// How the status of `plural` (e.g. `chaosengines`) is written, by discovery of the
    /// litmuschaos.io API: `None` when it is not served; `Subresource` when `<plural>/status` is
    /// (our CRDs), else `MainResource` (Litmus's).
    pub async fn served(client: &Client, plural: &str) -> Result<Option<StatusMode>, Error> {
        let resources = client
            .list_api_group_resources(crate::api::API_VERSION)
            .await
            .during("discovering the litmuschaos.io API")?;
        let served = |name: &str| resources.resources.iter().any(|r| r.name == name);
        Ok(
            served(plural).then_some(if served(&format!("{plural}/status")) {
                StatusMode::Subresource
            } else {
                StatusMode::MainResource
            }),
        )
    }
}

/// Settings of `chaos-conductor run`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Only this namespace, or all when `None`.
    pub watch_namespace: Option<String>,
    /// Most engines reconciled at once.
    pub concurrency: u16,
    /// Decision tunables.
    pub plan: PlanConfig,
    /// Longest per-engine error backoff.
    pub max_backoff: Duration,
    /// The cluster-wide kill switch ConfigMap (see `controller::halt`); `None`: none.
    pub halt_switch: Option<super::halt::SwitchRef>,
    /// Watch Namespaces for the per-namespace kill switch annotation (needs list/watch namespaces).
    pub halt_namespace_annotations: bool,
    /// Every write is refused while this is closed (a leader that cannot prove it still leads).
    pub fence: crate::fence::Fence,
    /// Also reconcile ChaosSchedules (`crate::scheduler`).
    pub schedules: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            watch_namespace: None,
            concurrency: 32,
            plan: PlanConfig::default(),
            max_backoff: Duration::from_secs(300),
            halt_switch: None,
            halt_namespace_annotations: false,
            fence: crate::fence::Fence::default(),
            schedules: true,
        }
    }
}

/// Read-only caches of the chaos-side objects (label-filtered watches).
#[derive(Clone)]
pub struct Caches {
    pub jobs: ChaosCache<Job>,
    pub pods: ChaosCache<Pod>,
    pub results: ChaosCache<ChaosResult>,
    /// Bit set of the watches that finished their first list (see `controller::run`).
    pub synced: tokio::sync::watch::Receiver<u8>,
}

/// What this process knows of one engine's outbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outbox {
    /// Highest (run, seq) handed to an emitter task.
    pub scheduled: (i64, u64),
    /// Highest (run, seq) confirmed recorded.
    pub delivered: (i64, u64),
}

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub status_mode: StatusMode,
    pub caches: Caches,
    /// Engine UID → engine, so pods and results (linked only by the `chaosUID` label) find their engine.
    pub by_uid: Mutex<HashMap<String, ObjectRef<ChaosEngine>>>,
    /// resourceVersion of our last write per engine (see `apply::remember_write`).
    pub written: Written<ChaosEngine>,
    /// Consecutive failures per engine, for the capped exponential backoff.
    pub failures: Failures<ChaosEngine>,
    /// Engine uid → Jobs the API server refused to create (name → message), until the next pass
    /// of that engine reads them (see `observe`). Lost on restart, which only means the create is
    /// tried once more and refused again.
    pub rejected: Mutex<HashMap<String, std::collections::BTreeMap<String, String>>>,
    /// Engine uid → the owed Events (see `status.pendingEvents`) handed to an emitter and the
    /// ones confirmed delivered, as (run, seq).
    pub outbox: Mutex<HashMap<String, Outbox>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The kill switches (`controller::halt`).
    pub halt: Arc<super::halt::HaltState>,
    /// The `concurrency` reconcile slots, part of them kept from aborts (`controller::slots`).
    pub slots: super::slots::Slots,
    /// Owed-Event deliveries in flight at once (`apply::outbox`), `concurrency` of them: each
    /// request in flight holds its own connection to the API server, and after a restart every
    /// engine that ended in the last 15 minutes owes its last Events again, so unbounded a restart
    /// at 1,000 engines opened ≈ 900 connections at once (BENCHMARKS.md "Restart footprint").
    pub emitters: tokio::sync::Semaphore,
}

impl Context {
    /// Records that the API server refused `job` of engine `uid`.
    pub fn record_rejected(&self, uid: &str, job: &str, message: String) {
        if let Ok(mut r) = self.rejected.lock() {
            r.entry(uid.to_string())
                .or_default()
                .insert(job.to_string(), message);
        }
    }

    /// Takes the refusals recorded for engine `uid`.
    pub fn take_rejected(&self, uid: &str) -> std::collections::BTreeMap<String, String> {
        self.rejected
            .lock()
            .ok()
            .and_then(|mut r| r.remove(uid))
            .unwrap_or_default()
    }
}
