//! The switch state as last seen by the watches (src/controller/halt/watch.rs), the trigger
//! stream that reconciles every engine when it changes, and its metrics.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::Stream;
use prometheus::{IntCounter, IntGauge, Registry};
use tracing::{info, warn};

use super::Engaged;

/// The switch state as last seen by the watches, and its metrics.
pub struct HaltState {
    cluster: RwLock<Option<Engaged>>,
    namespaces: RwLock<BTreeMap<String, Engaged>>,
    held: RwLock<BTreeSet<String>>,
    cluster_known: AtomicBool,
    namespaces_known: AtomicBool,
    changed: tokio::sync::watch::Sender<u64>,
    halted_gauge: IntGauge,
    namespaces_gauge: IntGauge,
    pub(super) held_gauge: IntGauge,
    pub(super) aborts: IntCounter,
}

impl HaltState {
    /// A state with nothing engaged. `cluster_switch` / `namespace_watch` say which watches will
    /// feed it; a source that is not watched counts as known (and never engaged).
    pub fn new(
        registry: &Registry,
        cluster_switch: bool,
        namespace_watch: bool,
    ) -> Result<Self, prometheus::Error> {
        let halted_gauge = IntGauge::new(
            "chaos_conductor_halted",
            "1 while the cluster-wide kill switch (ConfigMap) is engaged",
        )?;
        let namespaces_gauge = IntGauge::new(
            "chaos_conductor_halted_namespaces",
            "Namespaces halted by the chaos-conductor.io/halt annotation",
        )?;
        let held_gauge = IntGauge::new(
            "chaos_conductor_engines_held",
            "ChaosEngines held (not started) by a kill switch",
        )?;
        let aborts = IntCounter::new(
            "chaos_conductor_halt_aborts_total",
            "Running ChaosEngines aborted by a kill switch",
        )?;
        registry.register(Box::new(halted_gauge.clone()))?;
        registry.register(Box::new(namespaces_gauge.clone()))?;
        registry.register(Box::new(held_gauge.clone()))?;
        registry.register(Box::new(aborts.clone()))?;
        Ok(Self {
            cluster: RwLock::new(None),
            namespaces: RwLock::new(BTreeMap::new()),
            held: RwLock::new(BTreeSet::new()),
            cluster_known: AtomicBool::new(!cluster_switch),
            namespaces_known: AtomicBool::new(!namespace_watch),
            changed: tokio::sync::watch::channel(0).0,
            halted_gauge,
            namespaces_gauge,
            held_gauge,
            aborts,
        })
    }

    /// Whether both sources have been read once. Until then nothing may start: a switch engaged
    /// while the controller was down must hold engines from the first pass.
    pub fn known(&self) -> bool {
        self.cluster_known.load(Ordering::Acquire) && self.namespaces_known.load(Ordering::Acquire)
    }

    /// The switch that covers `namespace`, if any (cluster-wide first).
    pub fn engaged_for(&self, namespace: &str) -> Option<Engaged> {
        if let Some(e) = self.cluster.read().ok().and_then(|c| c.clone()) {
            return Some(e);
        }
        self.namespaces
            .read()
            .ok()
            .and_then(|n| n.get(namespace).cloned())
    }

    /// Waits (bounded) until both sources were read once; `false` on timeout.
    pub async fn wait_known(&self, timeout: std::time::Duration) -> bool {
        let mut rx = self.changed.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|_| self.known()))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// One item per change of the engaged set (for `Controller::reconcile_all_on`).
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + 'static {
        futures::stream::unfold(self.changed.subscribe(), |mut rx| async move {
            rx.changed().await.ok()?;
            Some(((), rx))
        })
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub(super) fn set_cluster(&self, value: Option<Engaged>) {
        let changed = self
            .cluster
            .write()
            .map(|mut c| {
                let changed = *c != value;
                *c = value.clone();
                changed
            })
            .unwrap_or(false);
        self.halted_gauge.set(i64::from(value.is_some()));
        let first = !self.cluster_known.swap(true, Ordering::AcqRel);
        if changed {
            match &value {
                Some(e) => {
                    warn!(switch = %e.switch, reason = %e.reason, "cluster-wide kill switch ENGAGED: aborting running engines, holding new ones")
                }
                None => info!("cluster-wide kill switch released"),
            }
        }
        if changed || first {
            self.notify();
        }
    }

    pub(super) fn set_namespaces(&self, value: BTreeMap<String, Engaged>) {
        let changed = self
            .namespaces
            .write()
            .map(|mut n| {
                let changed = *n != value;
                if changed {
                    for ns in value.keys().filter(|k| !n.contains_key(*k)) {
                        warn!(namespace = %ns, "namespace kill switch ENGAGED");
                    }
                    for ns in n.keys().filter(|k| !value.contains_key(*k)) {
                        info!(namespace = %ns, "namespace kill switch released");
                    }
                }
                *n = value.clone();
                changed
            })
            .unwrap_or(false);
        self.namespaces_gauge
            .set(i64::try_from(value.len()).unwrap_or(i64::MAX));
        let first = !self.namespaces_known.swap(true, Ordering::AcqRel);
        if changed || first {
            self.notify();
        }
    }

    pub(super) fn mark_held(&self, key: String, held: bool) {
        if let Ok(mut set) = self.held.write() {
            let changed = if held {
                set.insert(key)
            } else {
                set.remove(&key)
            };
            if changed {
                self.held_gauge
                    .set(i64::try_from(set.len()).unwrap_or(i64::MAX));
            }
        }
    }
}
