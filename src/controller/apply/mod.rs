//! The write step: executes a Decision's effects and persists its status, idempotently.
//!
//! | what | file |
//! |---|---|
//! | the order of a pass's writes, the fence, the engine's log lines, merge patches of the engine | `mod.rs` |
//! | the status: what counts as changed, the merge patch, observedGeneration | `status.rs` |
//! | each effect: finalizer, stop, Jobs (create or adopt, delete), chaos pods, ChaosResults, Events | `effects.rs` |
//! | the owed Events of `status.pendingEvents`, emitted off the reconcile slot | `outbox.rs` |
//!
//! Its unit tests against a mocked API are src/controller/apply_tests.rs.
mod effects;
mod outbox;
mod status;

use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::context::{Context, StatusMode};
use super::error::{Error, KubeContext};
use crate::api::{ChaosEngine, ChaosEngineStatus, EnginePhase, FINALIZER};
use crate::engine::{Decision, Effect};
use effects::run_effect;
use outbox::deliver_owed_events;
use status::{StatusWrite, sync_observed_generation, write_status};
pub use status::{status_changed, status_patch};

/// Executes `decision` for `engine`: effects before the status, the status (only if changed),
/// effects after it. The engine's resourceVersion is carried from write to write, so every engine
/// write is conditional on the state the decision was made from.
///
/// Fencing: no effect on other objects (create or delete a Job, delete pods, replace a result) is
/// sent before a conditional write of the engine succeeded in this pass: the status write, or a
/// no-op patch carrying the resourceVersion the decision was made from. A stale actor (a paused
/// leader, a lagging cache) fails that precondition instead of acting on an old view.
///
/// Returns whether the engine should be planned again at once (the API server refused a Job).
pub async fn apply(
    ctx: &Arc<Context>,
    engine: &ChaosEngine,
    decision: &Decision,
) -> Result<bool, Error> {
    let ns = engine.metadata.namespace.clone().unwrap_or_default();
    let mut current = engine.clone();
    let mut fenced = false;
    let mut replan = false;
    let (events, rest): (Vec<&Effect>, Vec<&Effect>) = decision
        .after_status
        .iter()
        .partition(|e| matches!(e, Effect::Event(_)));
    // On Litmus's CRD (no status subresource) the final status and `engineState: stop` are one
    // object: one merge patch, one generation bump, and observedGeneration says so.
    let stop = rest.iter().find_map(|e| match e {
        Effect::StopEngine { clear_abort } => Some(*clear_abort),
        _ => None,
    });
    let main_resource = ctx.status_mode == StatusMode::MainResource;
    let fold_stop = stop.filter(|_| main_resource);
    // Likewise the finalizer of a first pass goes into its status write there (the launch intent,
    // docs/performance.md): it is on the engine before any Job exists, in one conditional write.
    // The status subresource ignores metadata, so on our CRD it stays a write of its own.
    let old_status = current.status.clone().unwrap_or_default();
    let status_written = fold_stop.is_some() || status_changed(&old_status, &decision.status);
    let fold_finalizer = main_resource
        && status_written
        && decision
            .before_status
            .iter()
            .any(|e| matches!(e, Effect::AddFinalizer));
    for effect in &decision.before_status {
        if fold_finalizer && matches!(effect, Effect::AddFinalizer) {
            continue;
        }
        if needs_fence(effect) && !fenced {
            fence_write(ctx, &mut current).await?;
            fenced = true;
        }
        replan |= run_effect(ctx, &ns, &mut current, effect).await?;
    }
    let previous_phase = current.status.as_ref().map(|s| s.phase.clone());
    let how = StatusWrite {
        stop_follows: stop.is_some(),
        fold_stop,
        add_finalizer: fold_finalizer,
        force: false,
    };
    fenced |= write_status(ctx, &mut current, &decision.status, how).await?;
    log_transition(previous_phase.as_ref(), &decision.status);
    for effect in rest {
        if fold_stop.is_some() && matches!(effect, Effect::StopEngine { .. }) {
            continue;
        }
        if needs_fence(effect) && !fenced {
            fence_write(ctx, &mut current).await?;
            fenced = true;
        }
        replan |= run_effect(ctx, &ns, &mut current, effect).await?;
        if matches!(effect, Effect::StopEngine { .. }) {
            sync_observed_generation(ctx, &mut current).await?;
        }
    }
    remember_write(ctx, &current);
    // Events are recorded off the reconcile slot, in order: they inform and are best effort, and
    // awaiting them held each engine's slot for several more round trips.
    for effect in events {
        if let Effect::Event(ev) = effect {
            log_event(ev);
        }
    }
    deliver_owed_events(ctx, current);
    Ok(replan)
}

/// Effects on objects other than the engine, which must not be sent by a stale actor.
fn needs_fence(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::CreateJob(_)
            | Effect::DeleteJob { .. }
            | Effect::DeleteChaosResources { .. }
            | Effect::ForceDeletePods { .. }
            | Effect::ReplaceResult(_)
    )
}

/// Proves the decision was made from the engine as it is stored now: a merge patch that changes
/// nothing but carries the resourceVersion as a precondition (409 when anyone wrote since). The
/// API server writes nothing for a patch that changes nothing.
async fn fence_write(ctx: &Context, current: &mut ChaosEngine) -> Result<(), Error> {
    let ns = current.metadata.namespace.clone().unwrap_or_default();
    patch_engine(
        ctx,
        &ns,
        current,
        json!({}),
        "checking the engine is unchanged",
    )
    .await
}

/// The engine's story at INFO: every phase change with its verdict and why.
fn log_transition(previous: Option<&EnginePhase>, status: &ChaosEngineStatus) {
    if previous == Some(&status.phase) || status.phase.is_unset() {
        return;
    }
    match status.phase {
        EnginePhase::Completed => {
            info!(phase = %status.phase, verdict = %status.verdict, message = %status.message, "engine completed")
        }
        EnginePhase::Stopped => {
            info!(phase = %status.phase, verdict = %status.verdict, message = %status.message, "engine stopped: chaos resources removed")
        }
        EnginePhase::Aborting => {
            info!(phase = %status.phase, message = %status.message, "engine aborting")
        }
        EnginePhase::Invalid => {
            warn!(phase = %status.phase, message = %status.message, "engine invalid")
        }
        EnginePhase::Running | EnginePhase::Unknown(_) => {
            info!(phase = %status.phase, "engine phase changed")
        }
    }
}

/// Every Event is also a log line with the engine's context (the reconcile span): Warnings at
/// WARN, the rest at INFO, so the default log level tells each run's story.
fn log_event(ev: &crate::engine::EventSpec) {
    let experiment = match &ev.source {
        crate::engine::EventSource::Runner { experiment } => experiment.as_str(),
        crate::engine::EventSource::Operator => "",
    };
    match ev.event_type {
        crate::engine::EventType::Warning => {
            warn!(reason = %ev.reason, experiment, message = %ev.message, "event")
        }
        crate::engine::EventType::Normal => {
            info!(reason = %ev.reason, experiment, message = %ev.message, "event")
        }
    }
}

/// Remembers the resourceVersion of our last write to this engine, so a pass triggered before the
/// watch has delivered it does not plan on the older version (and fail its precondition).
fn remember_write(ctx: &Context, current: &ChaosEngine) {
    ctx.written
        .remember(current, current.metadata.resource_version.as_deref());
}

fn engines(ctx: &Context, ns: &str) -> Api<ChaosEngine> {
    Api::namespaced(ctx.client.clone(), ns)
}

/// A merge patch on the engine with a resourceVersion precondition; updates `current`.
async fn patch_engine(
    ctx: &Context,
    ns: &str,
    current: &mut ChaosEngine,
    mut body: Value,
    action: &'static str,
) -> Result<(), Error> {
    ctx.settings.fence.check()?;
    let name = current.metadata.name.clone().unwrap_or_default();
    if let Some(rv) = &current.metadata.resource_version {
        body["metadata"]["resourceVersion"] = json!(rv);
    }
    ctx.metrics.api_write();
    match engines(ctx, ns)
        .patch(&name, &PatchParams::default(), &Patch::Merge(body))
        .await
    {
        Ok(updated) => {
            *current = updated;
            Ok(())
        }
        Err(e) => Err(e).during(action),
    }
}

fn has_finalizer(engine: &ChaosEngine) -> bool {
    engine
        .metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == FINALIZER)
}

/// The engine's finalizers with ours added (a merge patch replaces the list whole; the write's
/// resourceVersion precondition keeps anyone else's that were added meanwhile).
fn with_finalizer(engine: &ChaosEngine) -> Vec<String> {
    let mut finalizers = engine.metadata.finalizers.clone().unwrap_or_default();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        finalizers.push(FINALIZER.into());
    }
    finalizers
}
