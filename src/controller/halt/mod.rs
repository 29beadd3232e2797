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
//!
//! | what | file |
//! |---|---|
//! | the switches' names, what an engaged switch says | `mod.rs` |
//! | the state the watches feed, its metrics | `state.rs` |
//! | the watches of the ConfigMap and the Namespaces | `watch.rs` |
//! | `plan`, gated: abort a running engine, hold one that would start, release it | `gate.rs` |
mod gate;
mod state;
mod watch;

pub use gate::plan_gated;
pub(crate) use gate::{running, starts_run};
pub use state::HaltState;
pub use watch::{from_config_map, from_namespace, spawn_watches};

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

#[cfg(test)]
mod tests;
