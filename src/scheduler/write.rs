//! Writes of the schedule reconciler: merge patches of only the keys it owns (`status`,
//! `spec.scheduleState`) with a resourceVersion precondition, Events with source
//! `chaos-scheduler`, and the engine side effects (create, stop, delete).
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::api::{API_VERSION, ChaosSchedule, ChaosScheduleStatus};
use crate::controller::StatusMode;
use crate::controller::error::{Error, KubeContext, is_status};
use crate::schedule::ScheduleEvent;

/// Event source component, as Litmus's chaos-scheduler.
pub const COMPONENT: &str = "chaos-scheduler";

/// The JSON merge patch turning `old` into `new` (`None` when equal): removed keys become `null`,
/// arrays and scalars are replaced whole.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            out.insert(k.clone(), d);
                        }
                    }
                    None => {
                        out.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

/// Writes what changed; returns the schedule's new resourceVersion when something was written.
pub async fn write_schedule(
    api: &Api<ChaosSchedule>,
    mode: StatusMode,
    schedule: &ChaosSchedule,
    status: &ChaosScheduleStatus,
    state: Option<&str>,
) -> Result<Option<String>, Error> {
    let old = serde_json::to_value(schedule.status.clone().unwrap_or_default())?;
    let new = serde_json::to_value(status)?;
    let diff = merge_diff(&old, &new);
    if diff.is_none() && state.is_none() {
        return Ok(None);
    }
    let name = schedule.name_any();
    let mut rv = schedule.resource_version();
    let params = PatchParams::default();
    let precondition = |rv: &Option<String>| json!({ "resourceVersion": rv });
    match mode {
        StatusMode::MainResource => {
            // Litmus's CRD has no status subresource: one patch of the main resource.
            let mut patch = json!({ "metadata": precondition(&rv) });
            if let Some(d) = diff {
                patch["status"] = d;
            }
            if let Some(s) = state {
                patch["spec"] = json!({ "scheduleState": s });
            }
            let written = api
                .patch(&name, &params, &Patch::Merge(patch))
                .await
                .during("writing the ChaosSchedule")?;
            rv = written.resource_version();
        }
        StatusMode::Subresource => {
            if let Some(d) = diff {
                let patch = json!({ "metadata": precondition(&rv), "status": d });
                let written = api
                    .patch_status(&name, &params, &Patch::Merge(patch))
                    .await
                    .during("writing the ChaosSchedule status")?;
                rv = written.resource_version();
            }
            if let Some(s) = state {
                let patch =
                    json!({ "metadata": precondition(&rv), "spec": { "scheduleState": s } });
                let written = api
                    .patch(&name, &params, &Patch::Merge(patch))
                    .await
                    .during("writing spec.scheduleState")?;
                rv = written.resource_version();
            }
        }
    }
    Ok(rv)
}

/// Creates the Event, or bumps the count of the identical one (same reason and message), as
/// client-go's correlator does for Litmus.
pub async fn emit(
    api: &Api<Event>,
    schedule: &ChaosSchedule,
    ev: &ScheduleEvent,
) -> Result<(), Error> {
    let digest = Sha256::digest(ev.message.as_bytes());
    let name = format!(
        "{}.{}.{:02x}{:02x}{:02x}{:02x}",
        schedule.name_any(),
        ev.reason.to_ascii_lowercase(),
        digest[0],
        digest[1],
        digest[2],
        digest[3]
    );
    let now = Time(jiff::Timestamp::now());
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: schedule.namespace(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some(ChaosSchedule::kind(&()).into()),
            name: Some(schedule.name_any()),
            namespace: schedule.namespace(),
            uid: schedule.uid(),
            resource_version: schedule.resource_version(),
            ..Default::default()
        },
        reason: Some(ev.reason.into()),
        message: Some(ev.message.clone()),
        type_: Some(if ev.warning { "Warning" } else { "Normal" }.into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now.clone()),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(COMPONENT.into()),
        ..Default::default()
    };
    match api.create(&PostParams::default(), &event).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 409) => {
            let existing = api.get(&name).await.during("reading an existing event")?;
            let patch = json!({
                "count": existing.count.unwrap_or(1) + 1,
                "lastTimestamp": now,
            });
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .during("updating an event")?;
            Ok(())
        }
        Err(e) => Err(e).during("creating an event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_diff_touches_only_what_changed() {
        let old = json!({"schedule": {"status": "running", "runInstances": 1}, "active": [{"name": "a"}]});
        let new =
            json!({"schedule": {"status": "running", "runInstances": 2}, "lastScheduleTime": "t"});
        assert_eq!(
            merge_diff(&old, &new),
            Some(json!({"schedule": {"runInstances": 2}, "active": null, "lastScheduleTime": "t"}))
        );
        assert_eq!(merge_diff(&old, &old), None);
    }
}
