//! The schedule reconciler's write step: executes a [`Pass`] (engines to create or delete, the
//! status, Events) against the API.
use k8s_openapi::api::core::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use crate::api::{ChaosEngine, ChaosSchedule};
use crate::controller::error::{Error, KubeContext, is_status};
use crate::schedule::{Pass, ScheduleEvent};

use super::engines::{controlled_by, engine_for};
use super::{Ctx, best_effort, remember_write, write};

pub(super) async fn apply(
    ctx: &Ctx,
    schedule: &ChaosSchedule,
    pass: &mut Pass,
) -> Result<(), Error> {
    let ns = schedule.namespace().unwrap_or_default();
    let uid = schedule.uid().unwrap_or_default();
    let events: Api<Event> = Api::namespaced(ctx.client.clone(), &ns);
    let dynamic: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &ns,
        &kube::api::ApiResource::erase::<ChaosEngine>(&()),
    );
    let mut pending_events = std::mem::take(&mut pass.events);
    if let Some(create) = pass.create.clone() {
        // SuccessfulCreate is sent right after the create, not with the other events.
        pending_events.retain(|e| e.reason != "SuccessfulCreate");
        // Decided on a current view? A no-op patch conditional on the resourceVersion we read
        // fails (409) if the schedule changed since, e.g. another replica's write.
        ctx.fence.check()?;
        let api: Api<ChaosSchedule> = Api::namespaced(ctx.client.clone(), &ns);
        api.patch(
            &schedule.name_any(),
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "resourceVersion": schedule.resource_version() } }),
            ),
        )
        .await
        .during("checking the ChaosSchedule is current")?;
        ctx.fence.check()?;
        let created = match engine_for(schedule, &create.name) {
            Err(message) => Err(message),
            Ok(engine) => match dynamic.create(&PostParams::default(), &engine).await {
                Ok(obj) => {
                    ctx.metrics.runs_created.inc();
                    let ev = ScheduleEvent {
                        warning: false,
                        reason: "SuccessfulCreate",
                        message: format!("Created engine {}", create.name),
                    };
                    best_effort(write::emit(&events, schedule, &ev).await);
                    Ok(obj.metadata)
                }
                Err(e) if is_status(&e, 409) => {
                    // The deterministic name exists: ours (a retry after a lost status write)
                    // is adopted; anyone else's is left alone and this run is skipped.
                    let existing = dynamic
                        .get(&create.name)
                        .await
                        .during("reading the existing engine")?;
                    if controlled_by(&existing.metadata, &uid) {
                        Ok(existing.metadata)
                    } else {
                        ctx.metrics
                            .runs_skipped
                            .with_label_values(&["name_taken"])
                            .inc();
                        Err(format!(
                            "Error creating engine: chaosengines.litmuschaos.io \"{}\" already exists and is not owned by this schedule",
                            create.name
                        ))
                    }
                }
                Err(e) => {
                    let ev = ScheduleEvent {
                        warning: true,
                        reason: "FailedCreate",
                        message: format!("Error creating engine: {e}"),
                    };
                    best_effort(write::emit(&events, schedule, &ev).await);
                    return Err(e).during("creating an engine");
                }
            },
        };
        let status = &mut pass.status;
        match created {
            Ok(meta) => {
                if let Some(entry) = status
                    .active
                    .iter_mut()
                    .find(|e| e.name.as_deref() == Some(create.name.as_str()) && e.uid.is_none())
                {
                    entry.uid = meta.uid;
                    entry.resource_version = meta.resource_version;
                }
            }
            Err(message) => {
                status.active.retain(|e| {
                    !(e.name.as_deref() == Some(create.name.as_str()) && e.uid.is_none())
                });
                if let Some(s) = status.schedule.as_mut() {
                    s.message = Some(message.clone());
                }
                pending_events.push(ScheduleEvent {
                    warning: true,
                    reason: "FailedCreate",
                    message,
                });
            }
        }
    }
    let engines_api: Api<ChaosEngine> = Api::namespaced(ctx.client.clone(), &ns);
    for name in &pass.stop {
        ctx.fence.check()?;
        // Replace (opt-in): the older run is stopped the Litmus way; the uid pins the object.
        let Some(entry_uid) = pass
            .status
            .active
            .iter()
            .find(|e| e.name.as_deref() == Some(name.as_str()))
            .and_then(|e| e.uid.clone())
        else {
            continue;
        };
        let patch = json!({ "metadata": { "uid": entry_uid }, "spec": { "engineState": "stop" } });
        match engines_api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => return Err(e).during("stopping a replaced engine"),
        }
    }
    for name in &pass.delete {
        let Some(child_uid) = ctx
            .engines
            .state()
            .iter()
            .find(|e| e.name_any() == *name && e.namespace().as_deref() == Some(ns.as_str()))
            .filter(|e| e.owned_by(&uid))
            .and_then(|e| e.uid())
        else {
            continue;
        };
        ctx.fence.check()?;
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(child_uid),
                resource_version: None,
            }),
            ..DeleteParams::background()
        };
        match engines_api.delete(name, &params).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
            Err(e) => return Err(e).during("deleting an engine beyond historyLimit"),
        }
    }
    ctx.fence.check()?;
    let api: Api<ChaosSchedule> = Api::namespaced(ctx.client.clone(), &ns);
    let rv =
        write::write_schedule(&api, ctx.mode, schedule, &pass.status, pass.schedule_state).await?;
    remember_write(ctx, schedule, rv);
    for (reason, n) in &pass.skipped {
        ctx.metrics
            .runs_skipped
            .with_label_values(&[reason.as_str()])
            .inc_by(u64::from(*n));
    }
    for ev in &pending_events {
        if ctx.fence.check().is_err() {
            break;
        }
        best_effort(write::emit(&events, schedule, ev).await);
    }
    Ok(())
}
