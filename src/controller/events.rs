//! Events on the engine, named and counted the way Litmus's runner does it, so consumers that read
//! them (chaos-exporter's start time comes from `ExperimentDependencyCheck`) keep working.
use k8s_openapi::api::core::v1::{Event, EventSource as K8sEventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::error::{Error, KubeContext, is_status};
use crate::api::ChaosEngine;
use crate::engine::{EventSource, EventSpec};

/// Component name of operator-type events.
pub const COMPONENT: &str = "chaos-conductor";

/// The Event object name: runner events `<Reason><experiment><engineUID>` (one object per reason
/// and experiment, counted: docs/litmus-compatibility.md#events); operator events
/// `<engine>.<reason>.<run>` (lowercase).
pub fn event_name(engine: &ChaosEngine, ev: &EventSpec) -> String {
    let uid = engine.metadata.uid.as_deref().unwrap_or_default();
    match &ev.source {
        EventSource::Runner { experiment } => format!("{}{}{}", ev.reason, experiment, uid),
        EventSource::Operator => {
            let run = engine.status.as_ref().and_then(|s| s.run_id).unwrap_or(0);
            format!(
                "{}.{}.{}",
                engine.metadata.name.as_deref().unwrap_or_default(),
                ev.reason.to_ascii_lowercase(),
                run
            )
        }
    }
}

fn component(engine: &ChaosEngine, ev: &EventSpec) -> String {
    match ev.source {
        EventSource::Runner { .. } => engine.runner_name(),
        EventSource::Operator => COMPONENT.into(),
    }
}

/// Creates the Event, or bumps count/message/lastTimestamp of the existing one (its type is kept,
/// as Litmus keeps it).
pub async fn emit(events: &Api<Event>, engine: &ChaosEngine, ev: &EventSpec) -> Result<(), Error> {
    let name = event_name(engine, ev);
    let now = Timestamp::now();
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: engine.metadata.namespace.clone(),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some(crate::api::API_VERSION.into()),
            kind: Some("ChaosEngine".into()),
            name: engine.metadata.name.clone(),
            namespace: engine.metadata.namespace.clone(),
            uid: engine.metadata.uid.clone(),
            ..Default::default()
        },
        reason: Some(ev.reason.clone()),
        message: Some(ev.message.clone()),
        type_: Some(ev.event_type.as_str().into()),
        source: Some(K8sEventSource {
            component: Some(component(engine, ev)),
            host: None,
        }),
        count: Some(1),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        event_time: None::<MicroTime>,
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(component(engine, ev)),
        ..Default::default()
    };
    match events.create(&PostParams::default(), &event).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 409) => {
            let existing = events
                .get(&name)
                .await
                .during("reading an existing event")?;
            let count = existing.count.unwrap_or(1) + 1;
            let patch = json!({
                "count": count,
                "message": ev.message,
                "lastTimestamp": Time(now),
            });
            events
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .during("updating an event")?;
            Ok(())
        }
        Err(e) => Err(e).during("creating an event"),
    }
}
