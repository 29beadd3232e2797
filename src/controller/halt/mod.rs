//! The kill switch. Cluster-wide: a ConfigMap the chart creates (`<release>-halt` in the release
//! namespace, data `halted: "true"`); per namespace: the annotation `chaos-conductor.io/halt: "true"`
//! on the Namespace. While a switch covers an engine's namespace, a running engine is aborted through
//! the ordinary abort path (as if `litmuschaos.io/abort` were set) and an engine that would start
//! or restart a run is held: nothing is launched, its status and a Warning Event say which switch
//! holds it. Releasing the switch reconciles every engine again, so held engines start.
//!
//! Why a ConfigMap and not a new CRD: Helm never upgrades CRDs and the chart must also run with
//! Litmus's own CRDs; who may halt is ordinary RBAC on one named object (`resourceNames`), and
//! `kubectl` can engage it when our CLI is not at hand.
//!
//! The rest of the controller sees this module through [`HaltState::engaged_for`] and
//! [`plan_gated`] (one call at the reconcile entry), and the trigger stream [`HaltState::changes`].
use std::collections::{BTreeMap, BTreeSet};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::Stream;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{Timestamp, Unit};
use kube::{Resource, ResourceExt};
use prometheus::{IntCounter, IntGauge, Registry};
use tracing::{info, warn};

mod watch;

pub use watch::{from_config_map, from_namespace, spawn_watches};

use crate::api::{ABORT_ANNOTATION, ChaosEngine, OwedEvent, engine_status};
use crate::engine::{
    Decision, Effect, EnginePhase, EventSpec, EventType, Observed, PlanConfig, plan,
};

/// Namespace annotation that halts chaos in that namespace (`"true"`).
pub const NAMESPACE_ANNOTATION: &str = "chaos-conductor.io/halt";
/// Optional namespace annotation with the reason shown in status and events.
pub const NAMESPACE_REASON_ANNOTATION: &str = "chaos-conductor.io/halt-reason";
/// ConfigMap key that engages the cluster-wide switch (`"true"`).
pub const HALTED_KEY: &str = "halted";
/// ConfigMap key with the reason shown in status and events.
pub const REASON_KEY: &str = "reason";
/// Condition type on a held engine.
pub const HELD_CONDITION: &str = "Held";
/// Event reason on an engine the switch aborted.
pub const HALT_ABORT_REASON: &str = "ChaosHalted";
/// Event reason on an engine the switch holds.
pub const HELD_REASON: &str = "ChaosEngineHeld";
/// Event reason when a held engine is released.
pub const RELEASED_REASON: &str = "ChaosEngineReleased";

/// An engaged switch: which object, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engaged {
    /// The object that engaged it, e.g. `ConfigMap chaos-conductor/chaos-conductor-halt`.
    pub switch: String,
    /// Free text from the switch (may be empty).
    pub reason: String,
}

impl Engaged {
    fn describe(&self) -> String {
        if self.reason.is_empty() {
            format!("kill switch {} engaged", self.switch)
        } else {
            format!("kill switch {} engaged ({})", self.switch, self.reason)
        }
    }
}

/// Where the cluster-wide switch lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchRef {
    pub namespace: String,
    pub name: String,
}

impl std::str::FromStr for SwitchRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Self {
                    namespace: ns.into(),
                    name: name.into(),
                })
            }
            _ => Err(format!("{s:?}: expected NAMESPACE/NAME of a ConfigMap")),
        }
    }
}

impl std::fmt::Display for SwitchRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

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
    held_gauge: IntGauge,
    aborts: IntCounter,
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

    fn set_cluster(&self, value: Option<Engaged>) {
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

    fn set_namespaces(&self, value: BTreeMap<String, Engaged>) {
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

    fn mark_held(&self, key: String, held: bool) {
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

/// A run of this engine is under way: the switch aborts it.
fn running(engine: &ChaosEngine) -> bool {
    let status = engine.status.clone().unwrap_or_default();
    status.engine_status == engine_status::INITIALIZED && status.run_id.is_some()
}

/// Paths that launch nothing and must go on under the switch: deletion, stop, an abort under way.
fn ending(engine: &ChaosEngine) -> bool {
    let aborting = engine
        .status
        .as_ref()
        .is_some_and(|s| s.phase == EnginePhase::Aborting);
    engine.metadata.deletion_timestamp.is_some()
        || !engine.wants_active()
        || engine.abort_requested()
        || aborting
}

/// Whether `decision` starts a run (also the point where src/controller/author.rs re-checks the
/// engine's recorded author).
pub(crate) fn starts_run(engine: &ChaosEngine, decision: &Decision) -> bool {
    !running(engine)
        && decision.status.engine_status == engine_status::INITIALIZED
        && decision.status.run_id.is_some()
}

/// Whether `decision` would start a run or create a Job.
fn launches(engine: &ChaosEngine, decision: &Decision) -> bool {
    starts_run(engine, decision)
        || decision
            .effects()
            .any(|e| matches!(e, Effect::CreateJob(_)))
}

fn has_held(engine: &ChaosEngine) -> bool {
    engine
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == HELD_CONDITION))
}

fn key(engine: &ChaosEngine) -> String {
    format!(
        "{}/{}",
        engine.meta().namespace.as_deref().unwrap_or_default(),
        engine.meta().name.as_deref().unwrap_or_default()
    )
}

/// `plan`, gated by the kill switch covering the engine (call after [`HaltState::wait_known`]):
/// - not engaged: `plan` as is (a held engine's `Held` condition goes, with a Normal Event);
/// - engaged, run under way: `plan` of the engine as if the abort annotation were set (the
///   ordinary abort path: chaos deleted, ChaosResults Stopped, engine stopped), with the switch
///   named in the status message and a Warning Event;
/// - engaged, deleting / stopping / aborting: `plan` as is (launches nothing);
/// - engaged, anything else that would start a run or create a Job: held instead.
pub fn plan_gated(
    state: &HaltState,
    engine: &ChaosEngine,
    observed: &Observed,
    now: Timestamp,
    cfg: &PlanConfig,
) -> Decision {
    let engaged = state.engaged_for(engine.meta().namespace.as_deref().unwrap_or_default());
    let decision = match &engaged {
        Some(e) if running(engine) && !ending(engine) => {
            let mut aborted = engine.clone();
            aborted
                .annotations_mut()
                .insert(ABORT_ANNOTATION.into(), "true".into());
            let mut d = plan(&aborted, observed, now, cfg);
            if d.status.phase == EnginePhase::Aborting {
                d.status.message = format!("{}: removing chaos resources", e.describe());
            }
            owe(
                &mut d,
                observed,
                now,
                EventSpec::operator(
                    EventType::Warning,
                    HALT_ABORT_REASON,
                    format!("{}: run aborted", e.describe()),
                ),
            );
            state.aborts.inc();
            d
        }
        _ => {
            let mut d = plan(engine, observed, now, cfg);
            if let Some(e) = &engaged
                && launches(engine, &d)
            {
                d = hold(engine, observed, e, now);
            } else if has_held(engine) {
                d.status.conditions.retain(|c| c.type_ != HELD_CONDITION);
                owe(
                    &mut d,
                    observed,
                    now,
                    EventSpec::operator(
                        EventType::Normal,
                        RELEASED_REASON,
                        "kill switch released: the engine runs",
                    ),
                );
            }
            d
        }
    };
    state.mark_held(key(engine), has_held_status(&decision));
    decision
}

fn has_held_status(d: &Decision) -> bool {
    d.status
        .conditions
        .iter()
        .any(|c| c.type_ == HELD_CONDITION)
}

/// The decision that holds an engine: its stored status plus a `Held` condition and message;
/// no effect but the Warning Event, once.
fn hold(engine: &ChaosEngine, observed: &Observed, e: &Engaged, now: Timestamp) -> Decision {
    let mut status = engine.status.clone().unwrap_or_default();
    let message = format!("held: {}; starts when released", e.describe());
    let already = has_held(engine) && status.message == message;
    status.message = message.clone();
    status.conditions.retain(|c| c.type_ != HELD_CONDITION);
    let transition = engine
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == HELD_CONDITION))
        .map_or(Time(now), |c| c.last_transition_time.clone());
    status.conditions.push(Condition {
        type_: HELD_CONDITION.into(),
        status: "True".into(),
        reason: "KillSwitchEngaged".into(),
        message: message.clone(),
        last_transition_time: transition,
        observed_generation: None,
    });
    let mut d = Decision {
        before_status: Vec::new(),
        status,
        after_status: Vec::new(),
        requeue_after: None,
    };
    if !already {
        owe(
            &mut d,
            observed,
            now,
            EventSpec::operator(EventType::Warning, HELD_REASON, message),
        );
    }
    d
}

/// Adds an Event to the decision the way `plan` does: into the status outbox
/// (`status.pendingEvents`, delivered by the shell after the write) and as an effect (logged).
pub(crate) fn owe(d: &mut Decision, observed: &Observed, now: Timestamp, ev: EventSpec) {
    let status = &mut d.status;
    if let Some(delivered) = observed.events_delivered {
        status.pending_events.retain(|e| (e.run, e.seq) > delivered);
    }
    let seq = status.event_seq.unwrap_or(0) + 1;
    status.event_seq = Some(seq);
    status.pending_events.push(OwedEvent {
        run: status.run_id.unwrap_or(0),
        seq,
        experiment: String::new(),
        type_: ev.event_type.as_str().into(),
        reason: ev.reason.clone(),
        message: ev.message.clone(),
        at: now.round(Unit::Second).unwrap_or(now).to_string(),
    });
    d.after_status.push(Effect::Event(ev));
}

#[cfg(test)]
mod tests;
