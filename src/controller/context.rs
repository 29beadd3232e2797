//! Shared state of the controller: the client, the caches fed by the watches, settings, and the
//! per-engine error backoff kube-runtime does not keep.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::runtime::reflector::{ObjectRef, Store};

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
        }
    }
}

/// Read-only caches of the chaos-side objects (label-filtered watches).
#[derive(Clone)]
pub struct Caches {
    pub jobs: Store<Job>,
    pub pods: Store<Pod>,
    pub results: Store<ChaosResult>,
    /// Bit set of the watches that finished their first list (see `controller::run`).
    pub synced: tokio::sync::watch::Receiver<u8>,
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
    pub written: Mutex<HashMap<ObjectRef<ChaosEngine>, String>>,
    /// Consecutive failures per engine, for the capped exponential backoff.
    pub failures: Mutex<HashMap<ObjectRef<ChaosEngine>, u32>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The kill switches (`controller::halt`).
    pub halt: Arc<super::halt::HaltState>,
}

impl Context {
    /// The backoff for an engine's next retry after `failures` consecutive errors.
    pub fn backoff(&self, failures: u32) -> Duration {
        let base = Duration::from_millis(500);
        let factor = 2u32.saturating_pow(failures.min(16));
        base.saturating_mul(factor).min(self.settings.max_backoff)
    }
}
