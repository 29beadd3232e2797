//! The write step: executes a Decision's effects and persists its status, idempotently.
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::context::{Context, StatusMode};
use super::error::{Error, KubeContext, is_status};
use super::events;
use crate::api::{ChaosEngine, ChaosEngineStatus, ChaosResult, EnginePhase, FINALIZER};
use crate::engine::job::CHAOS_UID_LABEL;
use crate::engine::plan::settle_result;
use crate::engine::{Decision, Effect};

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

/// After a restart, owed events older than this are taken as delivered: re-checking every
/// finished engine's last events would cost two requests each, and a controller that was down
/// longer than this has lost nothing a user still waits for.
const OUTBOX_HORIZON_SECS: i64 = 900;
/// Attempts per owed event before it is left for a later pass (apiserver down for minutes).
const EMIT_ATTEMPTS: u32 = 8;

/// Emits the owed events of the engine's stored status that no emitter has taken yet, in order,
/// off the reconcile slot: the status already records them, so nothing is lost if this fails.
fn deliver_owed_events(ctx: &Arc<Context>, engine: ChaosEngine) {
    let Some(status) = engine.status.as_ref() else {
        return;
    };
    let uid = engine.metadata.uid.clone().unwrap_or_default();
    let owed: Vec<crate::api::OwedEvent> = {
        let Ok(mut outbox) = ctx.outbox.lock() else {
            return;
        };
        let known = outbox.contains_key(&uid);
        let entry = outbox.entry(uid.clone()).or_default();
        let now = Timestamp::now();
        let owed: Vec<_> = status
            .pending_events
            .iter()
            .filter(|e| (e.run, e.seq) > entry.scheduled)
            .filter(|e| {
                known
                    || e.at
                        .parse::<Timestamp>()
                        .is_ok_and(|at| now.duration_since(at).as_secs() < OUTBOX_HORIZON_SECS)
            })
            .cloned()
            .collect();
        if !known {
            // Those past the horizon count as delivered (see OUTBOX_HORIZON_SECS).
            let first_owed = owed.first().map(|e| (e.run, e.seq));
            if let Some(old) = status
                .pending_events
                .iter()
                .map(|e| (e.run, e.seq))
                .filter(|k| first_owed.is_none_or(|f| *k < f))
                .max()
            {
                entry.delivered = entry.delivered.max(old);
            }
        }
        if let Some(last) = owed.last() {
            entry.scheduled = entry.scheduled.max((last.run, last.seq));
        }
        owed
    };
    if owed.is_empty() {
        return;
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let ns = engine.metadata.namespace.clone().unwrap_or_default();
        let api: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
        for ev in &owed {
            let mut attempt = 0;
            loop {
                ctx.metrics.api_write();
                match events::emit_owed(&api, &engine, ev).await {
                    Ok(()) => {
                        if let Ok(mut o) = ctx.outbox.lock() {
                            let entry = o.entry(uid.clone()).or_default();
                            entry.delivered = entry.delivered.max((ev.run, ev.seq));
                        }
                        break;
                    }
                    Err(e) => {
                        ctx.metrics
                            .reconcile_errors
                            .with_label_values(&["event"])
                            .inc();
                        attempt += 1;
                        // A terminating namespace refuses new objects: nothing to retry for.
                        let forbidden =
                            matches!(&e, Error::Kube { source, .. } if is_status(source, 403));
                        if attempt >= EMIT_ATTEMPTS || forbidden {
                            warn!(reason = %ev.reason, error = %e, "could not record an event; a later pass retries it");
                            if let Ok(mut o) = ctx.outbox.lock() {
                                let entry = o.entry(uid.clone()).or_default();
                                entry.scheduled = entry.delivered;
                            }
                            return;
                        }
                        debug!(reason = %ev.reason, error = %e, attempt, "event not recorded yet; retrying");
                        tokio::time::sleep(Duration::from_millis(500u64 << attempt.min(6))).await;
                    }
                }
            }
        }
    });
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
    if let (Some(rv), Ok(mut written)) = (
        current.metadata.resource_version.clone(),
        ctx.written.lock(),
    ) {
        written.insert(ObjectRef::from_obj(current), rv);
    }
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
async fn write_status(
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
        .any(|c| c.type_ == super::halt::HELD_CONDITION);
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
async fn sync_observed_generation(ctx: &Context, current: &mut ChaosEngine) -> Result<(), Error> {
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
struct StatusWrite {
    /// `engineState: stop` is written right after, in a separate write (bumps the generation).
    stop_follows: bool,
    /// `engineState: stop` goes into this same patch (`Some(clear_abort)`), Litmus's CRD only.
    fold_stop: Option<bool>,
    /// Our finalizer goes into this same patch, Litmus's CRD only.
    add_finalizer: bool,
    /// Write even if nothing but generations changed.
    force: bool,
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

/// Runs one effect; `Ok(true)` when the engine must be planned again at once.
async fn run_effect(
    ctx: &Context,
    ns: &str,
    current: &mut ChaosEngine,
    effect: &Effect,
) -> Result<bool, Error> {
    if !matches!(effect, Effect::Event(_)) {
        ctx.settings.fence.check()?;
    }
    if let Effect::CreateJob(job) = effect {
        return create_or_adopt(ctx, ns, current, job).await;
    }
    run_other(ctx, ns, current, effect).await.map(|()| false)
}

async fn run_other(
    ctx: &Context,
    ns: &str,
    current: &mut ChaosEngine,
    effect: &Effect,
) -> Result<(), Error> {
    let uid = current.metadata.uid.clone().unwrap_or_default();
    let chaos_selector = ListParams::default().labels(&format!("{CHAOS_UID_LABEL}={uid}"));
    match effect {
        Effect::AddFinalizer => {
            if has_finalizer(current) {
                return Ok(());
            }
            let finalizers = with_finalizer(current);
            patch_engine(
                ctx,
                ns,
                current,
                json!({"metadata": {"finalizers": finalizers}}),
                "adding the finalizer",
            )
            .await
        }
        Effect::RemoveFinalizer => {
            let finalizers: Vec<String> = current
                .metadata
                .finalizers
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect();
            match patch_engine(
                ctx,
                ns,
                current,
                json!({"metadata": {"finalizers": finalizers}}),
                "removing the finalizer",
            )
            .await
            {
                Err(Error::Kube { source, .. }) if is_status(&source, 404) => Ok(()),
                other => other,
            }
        }
        Effect::StopEngine { clear_abort } => {
            let mut body = json!({"spec": {"engineState": "stop"}});
            if *clear_abort {
                body["metadata"] = json!({"annotations": {crate::api::ABORT_ANNOTATION: null}});
            }
            patch_engine(ctx, ns, current, body, "setting engineState stop").await
        }
        // Handled by run_effect (it reports refusals).
        Effect::CreateJob(_) => Ok(()),
        Effect::DeleteJob { name } => {
            let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Foreground),
                ..Default::default()
            };
            ctx.metrics.api_write();
            match jobs.delete(name, &dp).await {
                Ok(_) => Ok(()),
                Err(e) if is_status(&e, 404) => Ok(()),
                Err(e) => Err(e).during("deleting a Job"),
            }
        }
        Effect::DeleteChaosResources { grace_seconds } => {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                grace_period_seconds: grace_seconds.and_then(|g| u32::try_from(g).ok()),
                ..Default::default()
            };
            let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
            // Jobs: only those we own (a chaosUID label alone can be put on anyone's Job), each
            // deleted with a uid precondition, listed fresh so a Job created a moment ago is in.
            let listed = jobs
                .list_metadata(&chaos_selector)
                .await
                .during("listing chaos Jobs")?;
            for job in listed.items {
                let owned = job
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid && o.controller == Some(true));
                if !owned || job.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let name = job.metadata.name.clone().unwrap_or_default();
                let dp = DeleteParams {
                    preconditions: Some(kube::api::Preconditions {
                        uid: job.metadata.uid.clone(),
                        resource_version: None,
                    }),
                    ..dp.clone()
                };
                ctx.metrics.api_write();
                match jobs.delete(&name, &dp).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
                    Err(e) => return Err(e).during("deleting a chaos Job"),
                }
            }
            // Pods by label: litmus-go's helper and probe pods carry only chaosUID, no owner.
            ctx.metrics.api_write();
            pods.delete_collection(&dp, &chaos_selector)
                .await
                .during("deleting chaos pods")?;
            Ok(())
        }
        Effect::ForceDeletePods { names } => {
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            };
            for name in names {
                ctx.metrics.api_write();
                match pods.delete(name, &dp).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 404) => {}
                    Err(e) => return Err(e).during("force-deleting a chaos pod"),
                }
            }
            Ok(())
        }
        Effect::ReplaceResult(result) => {
            // The cache is trimmed and may lag: settle the live object (same pure rule) and write it
            // back with its resourceVersion, so nothing litmus-go wrote meanwhile is lost.
            let results: Api<ChaosResult> = Api::namespaced(ctx.client.clone(), ns);
            let name = result.metadata.name.clone().unwrap_or_default();
            let Some(live) = results
                .get_opt(&name)
                .await
                .during("reading a ChaosResult")?
            else {
                return Ok(());
            };
            let Some(settled) = settle_result(&live, &uid) else {
                return Ok(());
            };
            ctx.metrics.api_write();
            match results
                .replace(&name, &PostParams::default(), &settled)
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_status(&e, 404) => Ok(()),
                Err(e) => Err(e).during("updating a ChaosResult"),
            }
        }
        Effect::Event(ev) => {
            let api: Api<Event> = Api::namespaced(ctx.client.clone(), ns);
            ctx.metrics.api_write();
            // Events inform; the status is the record. A refused Event (e.g. the namespace is
            // terminating, which forbids new objects) must not block the run or the finalizer.
            if let Err(e) = events::emit(&api, current, ev).await {
                ctx.metrics
                    .reconcile_errors
                    .with_label_values(&["event"])
                    .inc();
                warn!(reason = %ev.reason, error = %e, "could not record an event");
            }
            Ok(())
        }
    }
}

/// Creates the Job; when it already exists (a retried launch), adopts it if it is ours. A Job the
/// API server refuses (invalid: 422/400) or a foreign Job holding the name is recorded for the
/// planner, which ends the experiment with that explanation: retrying cannot help. `Ok(true)`
/// then, so the engine is planned again at once.
async fn create_or_adopt(
    ctx: &Context,
    ns: &str,
    engine: &ChaosEngine,
    job: &Job,
) -> Result<bool, Error> {
    let engine_uid = engine.metadata.uid.as_deref().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let name = job.metadata.name.clone().unwrap_or_default();
    ctx.metrics.api_write();
    match jobs.create(&PostParams::default(), job).await {
        Ok(_) => {
            info!(job = %name, "experiment Job created");
            ctx.metrics.job_created();
            // Latency from the start of this run (the engine's creation for a first run).
            let started = engine
                .status
                .as_ref()
                .and_then(|s| s.started_at.as_deref())
                .and_then(|s| s.parse::<Timestamp>().ok())
                .or_else(|| engine.metadata.creation_timestamp.as_ref().map(|t| t.0));
            if let Some(started) = started {
                let secs = Timestamp::now().duration_since(started).as_secs_f64();
                ctx.metrics.engine_to_job.observe(secs.max(0.0));
            }
            Ok(false)
        }
        Err(e) if is_status(&e, 409) => {
            let existing = jobs.get(&name).await.during("reading an existing Job")?;
            let ours = existing
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == engine_uid && o.controller == Some(true));
            if ours {
                info!(job = %name, "experiment Job already existed: adopted");
                Ok(false)
            } else {
                let why = Error::JobConflict { job: name.clone() }.to_string();
                warn!(job = %name, "{why}");
                ctx.record_rejected(engine_uid, &name, why);
                Ok(true)
            }
        }
        Err(kube::Error::Api(ae)) if ae.code == 422 || ae.code == 400 => {
            warn!(job = %name, reason = %ae.reason, message = %ae.message, "the API server rejected the experiment Job");
            ctx.record_rejected(engine_uid, &name, ae.message.clone());
            Ok(true)
        }
        Err(e) => Err(e).during("creating a Job"),
    }
}
