//! The write step: executes a Decision's effects and persists its status, idempotently.
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::ObjectRef;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::context::{Context, StatusMode};
use super::error::{Error, KubeContext, is_status};
use super::events;
use crate::api::{ChaosEngine, ChaosEngineStatus, ChaosResult, FINALIZER};
use crate::engine::job::CHAOS_UID_LABEL;
use crate::engine::plan::settle_result;
use crate::engine::{Decision, Effect};

/// Executes `decision` for `engine`: effects before the status, the status (only if changed),
/// effects after it. The engine's resourceVersion is carried from write to write, so every engine
/// write is conditional on the state the decision was made from.
pub async fn apply(
    ctx: &Arc<Context>,
    engine: &ChaosEngine,
    decision: &Decision,
) -> Result<(), Error> {
    let ns = engine.metadata.namespace.clone().unwrap_or_default();
    let mut current = engine.clone();
    for effect in &decision.before_status {
        run_effect(ctx, &ns, &mut current, effect).await?;
    }
    write_status(ctx, &mut current, &decision.status).await?;
    let (events, rest): (Vec<&Effect>, Vec<&Effect>) = decision
        .after_status
        .iter()
        .partition(|e| matches!(e, Effect::Event(_)));
    for effect in rest {
        run_effect(ctx, &ns, &mut current, effect).await?;
    }
    remember_write(ctx, &current);
    // Events are recorded off the reconcile slot, in order: they inform and are best effort, and
    // awaiting them held each engine's slot for several more round trips.
    if !events.is_empty() {
        let events: Vec<Effect> = events.into_iter().cloned().collect();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            for effect in &events {
                let _ = run_effect(&ctx, &ns, &mut current, effect).await;
            }
        });
    }
    Ok(())
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

async fn write_status(
    ctx: &Context,
    current: &mut ChaosEngine,
    desired: &ChaosEngineStatus,
) -> Result<(), Error> {
    let old = current.status.clone().unwrap_or_default();
    if !status_changed(&old, desired) {
        return Ok(());
    }
    let mut desired = desired.clone();
    // The generation of the object as it is stored with this status. Without a status subresource
    // this very write bumps it by one (our resourceVersion precondition rules out other writers);
    // comparing it with metadata.generation later tells a user's edit from our own writes.
    let generation = current.metadata.generation.map(|g| match ctx.status_mode {
        StatusMode::Subresource => g,
        StatusMode::MainResource => g + 1,
    });
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
            Ok(())
        }
        // Deleted meanwhile (finalizer removed by someone): nothing left to record.
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(e).during("writing engine status"),
    }
}

async fn run_effect(
    ctx: &Context,
    ns: &str,
    current: &mut ChaosEngine,
    effect: &Effect,
) -> Result<(), Error> {
    let uid = current.metadata.uid.clone().unwrap_or_default();
    let chaos_selector = ListParams::default().labels(&format!("{CHAOS_UID_LABEL}={uid}"));
    match effect {
        Effect::AddFinalizer => {
            let mut finalizers = current.metadata.finalizers.clone().unwrap_or_default();
            if finalizers.iter().any(|f| f == FINALIZER) {
                return Ok(());
            }
            finalizers.push(FINALIZER.into());
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
        Effect::CreateJob(job) => create_or_adopt(ctx, ns, current, job).await,
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
            ctx.metrics.api_write();
            jobs.delete_collection(&dp, &chaos_selector)
                .await
                .during("deleting chaos Jobs")?;
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

/// Creates the Job; when it already exists (a retried launch), adopts it if it is ours.
async fn create_or_adopt(
    ctx: &Context,
    ns: &str,
    engine: &ChaosEngine,
    job: &Job,
) -> Result<(), Error> {
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
            Ok(())
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
                Ok(())
            } else {
                Err(Error::JobConflict { job: name })
            }
        }
        Err(e) => Err(e).during("creating a Job"),
    }
}
