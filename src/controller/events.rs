//! Events on the engine, named and counted the way Litmus's runner does it, so consumers that read
//! them (chaos-exporter's start time comes from `ExperimentDependencyCheck`) keep working.
use k8s_openapi::api::core::v1::{Event, EventSource as K8sEventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::error::{Error, KubeContext, is_status};
use crate::api::{ChaosEngine, OwedEvent};
use crate::engine::{EventSource, EventSpec, EventType};

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

/// Annotation on each Event: the `<run>/<seq>` of the last owed event (see
/// `ChaosEngineStatus::pending_events`) it records, so a retry after a crash adopts it instead of
/// counting it twice.
pub const SEQ_ANNOTATION: &str = "chaos-conductor.io/event-seq";

fn parse_seq(v: &str) -> Option<(i64, u64)> {
    let (run, seq) = v.split_once('/')?;
    Some((run.parse().ok()?, seq.parse().ok()?))
}

/// The EventSpec of an owed event.
pub fn spec_of(owed: &OwedEvent) -> EventSpec {
    let event_type = if owed.type_ == EventType::Warning.as_str() {
        EventType::Warning
    } else {
        EventType::Normal
    };
    if owed.experiment.is_empty() {
        EventSpec::operator(event_type, &owed.reason, owed.message.clone())
    } else {
        EventSpec::runner(
            &owed.experiment,
            event_type,
            &owed.reason,
            owed.message.clone(),
        )
    }
}

/// Emits an owed event exactly once: created, or (same name, an earlier seq) counted, or (its seq
/// already there) adopted.
pub async fn emit_owed(
    events: &Api<Event>,
    engine: &ChaosEngine,
    owed: &OwedEvent,
) -> Result<(), Error> {
    // Operator event names carry the run: the owed event's own, even after a restart moved on.
    let mut engine = engine.clone();
    if let Some(s) = engine.status.as_mut() {
        s.run_id = Some(owed.run);
    }
    emit_with_seq(events, &engine, &spec_of(owed), Some((owed.run, owed.seq))).await
}

/// Creates the Event, or bumps count/message/lastTimestamp of the existing one (its type is kept,
/// as Litmus keeps it).
pub async fn emit(events: &Api<Event>, engine: &ChaosEngine, ev: &EventSpec) -> Result<(), Error> {
    emit_with_seq(events, engine, ev, None).await
}

async fn emit_with_seq(
    events: &Api<Event>,
    engine: &ChaosEngine,
    ev: &EventSpec,
    seq: Option<(i64, u64)>,
) -> Result<(), Error> {
    let name = event_name(engine, ev);
    let now = Timestamp::now();
    let stamp = seq.map(|(run, seq)| format!("{run}/{seq}"));
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: engine.metadata.namespace.clone(),
            annotations: stamp
                .clone()
                .map(|s| [(SEQ_ANNOTATION.to_string(), s)].into_iter().collect()),
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
            let recorded = existing
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SEQ_ANNOTATION))
                .and_then(|v| parse_seq(v));
            if let (Some(ours), Some(recorded)) = (seq, recorded)
                && recorded >= ours
            {
                // Already recorded (a retry after a crash or a lost response): adopt it.
                return Ok(());
            }
            let count = existing.count.unwrap_or(1) + 1;
            let mut patch = json!({
                "count": count,
                "message": ev.message,
                "lastTimestamp": Time(now),
            });
            if let Some(s) = stamp {
                // The resourceVersion makes the count bump and the seq one atomic step.
                patch["metadata"] = json!({
                    "annotations": {SEQ_ANNOTATION: s},
                    "resourceVersion": existing.metadata.resource_version,
                });
            }
            events
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .during("updating an event")?;
            Ok(())
        }
        Err(e) => Err(e).during("creating an event"),
    }
}
