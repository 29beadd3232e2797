//! The status write: what counts as a change, the merge patch that writes it, and the
//! observedGeneration stamped with it.
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tracing::debug;

use super::{engines, with_finalizer};
use crate::api::{ChaosEngine, ChaosEngineStatus};
use crate::controller::context::{Context, StatusMode};
use crate::controller::error::{Error, KubeContext, is_status};

/// Whether two statuses differ in anything but `observedGeneration` (which, on a CRD without a
/// status subresource, our own write bumps: comparing it would write forever).
pub fn status_changed(old: &ChaosEngineStatus, new: &ChaosEngineStatus) -> bool {
    without_generations(old) != without_generations(new)
}

/// The status with every `observedGeneration` cleared: on a CRD without a status subresource our
/// own write bumps the generation, so comparing it would make every pass write again.
fn without_generations(status: &ChaosEngineStatus) -> ChaosEngineStatus {
    let mut s = status.clone();
    s.observed_generation = None;
    for c in &mut s.conditions {
        c.observed_generation = None;
    }
    s
}

/// The merge patch that turns `old` into `new`: `new` whole, plus `null` for top-level keys that
/// `new` dropped (lists are replaced whole by a merge patch, so only top-level keys need it).
pub fn status_patch(old: &ChaosEngineStatus, new: &ChaosEngineStatus) -> Result<Value, Error> {
    let mut patch = serde_json::to_value(new)?;
    let old = serde_json::to_value(old)?;
    if let (Some(p), Some(o)) = (patch.as_object_mut(), old.as_object()) {
        for key in o.keys() {
            if !p.contains_key(key) {
                p.insert(key.clone(), Value::Null);
            }
        }
    }
    Ok(patch)
}

/// Writes the status when it changed (or when `fold_stop` asks for `engineState: stop` in the same
/// patch). `stop`: this pass sets `engineState: stop` right after, which bumps the generation once
/// more; observedGeneration is stamped with the generation the engine will have then, so
/// `kubectl wait --for=condition=Finished` and kstatus see a current object. Returns whether a
/// write was sent (it carries the resourceVersion precondition).
pub(super) async fn write_status(
    ctx: &Context,
    current: &mut ChaosEngine,
    desired: &ChaosEngineStatus,
    how: StatusWrite,
) -> Result<bool, Error> {
    let StatusWrite {
        stop_follows,
        fold_stop,
        add_finalizer,
        force,
    } = how;
    let old = current.status.clone().unwrap_or_default();
    if !status_changed(&old, desired) && fold_stop.is_none() && !add_finalizer && !force {
        return Ok(false);
    }
    ctx.settings.fence.check()?;
    let mut desired = desired.clone();
    // The generation of the object as it is stored with this status. Without a status subresource
    // this very write bumps it by one (our resourceVersion precondition rules out other writers);
    // comparing it with metadata.generation later tells a user's edit from our own writes. Our
    // own `stop` (folded into this patch, or the next write) bumps it by one, once.
    let bumps = i64::from(ctx.status_mode == StatusMode::MainResource)
        + i64::from(stop_follows && fold_stop.is_none());
    let generation = current.metadata.generation.map(|g| g + bumps);
    // A held engine (controller::halt) has not acted on this generation: keeping the old stamp
    // keeps a held restart a restart once the kill switch is released.
    let held = desired
        .conditions
        .iter()
        .any(|c| c.type_ == crate::controller::halt::HELD_CONDITION);
    desired.observed_generation = if held {
        old.observed_generation
    } else {
        generation
    };
    for c in &mut desired.conditions {
        c.observed_generation = generation;
    }
    let name = current.metadata.name.clone().unwrap_or_default();
    let ns = current.metadata.namespace.clone().unwrap_or_default();
    let mut body = json!({ "status": status_patch(&old, &desired)? });
    if let Some(rv) = &current.metadata.resource_version {
        body["metadata"] = json!({ "resourceVersion": rv });
    }
    if add_finalizer {
        body["metadata"]["finalizers"] = json!(with_finalizer(current));
    }
    if let Some(clear_abort) = fold_stop {
        body["spec"] = json!({"engineState": "stop"});
        if clear_abort {
            body["metadata"]["annotations"] = json!({crate::api::ABORT_ANNOTATION: null});
        }
    }
    ctx.metrics.api_write();
    let api = engines(ctx, &ns);
    let updated = match ctx.status_mode {
        StatusMode::Subresource => {
            api.patch_status(&name, &PatchParams::default(), &Patch::Merge(body))
                .await
        }
        StatusMode::MainResource => {
            api.patch(&name, &PatchParams::default(), &Patch::Merge(body))
                .await
        }
    };
    match updated {
        Ok(updated) => {
            debug!(phase = %desired.phase, "status written");
            *current = updated;
            Ok(true)
        }
        // Deleted meanwhile (finalizer removed by someone): nothing left to record.
        Err(e) if is_status(&e, 404) => Ok(false),
        Err(e) => Err(e).during("writing engine status"),
    }
}

/// After our own `engineState: stop` on an engine whose status did not change in that pass (a
/// stop that a crash kept from following the final status): stamp observedGeneration, so the
/// finished engine reads as current.
pub(super) async fn sync_observed_generation(
    ctx: &Context,
    current: &mut ChaosEngine,
) -> Result<(), Error> {
    let Some(status) = current.status.clone() else {
        return Ok(());
    };
    let finished = status.phase.is_finished();
    if !finished || status.observed_generation == current.metadata.generation {
        return Ok(());
    }
    // Forced: only the generations differ, which status_changed ignores on purpose.
    let how = StatusWrite {
        force: true,
        ..StatusWrite::default()
    };
    write_status(ctx, current, &status, how).await.map(|_| ())
}

/// How a status write is made.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StatusWrite {
    /// `engineState: stop` is written right after, in a separate write (bumps the generation).
    pub(super) stop_follows: bool,
    /// `engineState: stop` goes into this same patch (`Some(clear_abort)`), Litmus's CRD only.
    pub(super) fold_stop: Option<bool>,
    /// Our finalizer goes into this same patch, Litmus's CRD only.
    pub(super) add_finalizer: bool,
    /// Write even if nothing but generations changed.
    pub(super) force: bool,
}
