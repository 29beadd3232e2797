//! One effect of a decision against the API: the finalizer, `engineState: stop`, Jobs (create
//! or adopt, delete), chaos pods, ChaosResults, Events. A 404 on delete counts as done.
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams, PropagationPolicy};
use serde_json::json;
use tracing::{error, info, warn};

use super::{has_finalizer, patch_engine, with_finalizer};
use crate::api::{ChaosEngine, ChaosResult, FINALIZER};
use crate::controller::context::Context;
use crate::controller::error::{Error, KubeContext, is_status};
use crate::controller::events;
use crate::engine::job::CHAOS_UID_LABEL;
use crate::engine::plan::settle_result;
use crate::engine::{Effect, JobRef};
use crate::fence;

/// Runs one effect; `Ok(true)` when the engine must be planned again at once.
pub(super) async fn run_effect(
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
        Effect::DeleteChaosResources {
            grace_seconds,
            jobs,
        } => {
            let dp = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                grace_period_seconds: grace_seconds.and_then(|g| u32::try_from(g).ok()),
                ..Default::default()
            };
            let jobs_api: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
            // Jobs: those the core observed as ours (owner uid, src/controller/observe.rs), each
            // deleted with its uid as precondition, so a Job of the same name made since by anyone
            // is not touched. No fresh list here: a Job the caches miss is found by the live list
            // that ends every abort, and swept by that pass (docs/performance.md "Mass abort").
            for JobRef { name, uid: job_uid } in jobs {
                let dp = DeleteParams {
                    preconditions: Some(kube::api::Preconditions {
                        uid: Some(job_uid.clone()),
                        resource_version: None,
                    }),
                    ..dp.clone()
                };
                ctx.metrics.api_write();
                match jobs_api.delete(name, &dp).await {
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
    let pp = PostParams::default();
    ctx.metrics.api_write();
    let mut created = jobs
        .create(&pp, &with_leader_token(job, ctx.settings.fence.token()))
        .await;
    if let Err(e) = &created
        && let Some(refusal) = fence::refused(e)
    {
        // A past leadership's create, refused by the API server (not the engine's fault: retried,
        // and a stale replica's fence stays closed). Unless we provably still lead: then the
        // server's copy of the Lease is stale, and the client-side fence alone must do.
        if !ctx
            .settings
            .fence
            .refusal_means_stale_server_cache(std::time::Instant::now())
        {
            return Err(Error::Fenced(refusal));
        }
        error!(job = %name, %refusal, "the API server refuses the current leader's Job: its copy of the Lease is stale (docs/leader-fence.md); creating the Job without the leader token");
        ctx.metrics.api_write();
        created = jobs.create(&pp, job).await;
    }
    match created {
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

/// `job` carrying the leadership token, for the chart's leader-fence policy (src/fence.rs).
fn with_leader_token(job: &Job, token: Option<String>) -> Job {
    let mut job = job.clone();
    if let Some(token) = token {
        job.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(fence::LEADER_ANNOTATION.into(), token);
    }
    job
}
