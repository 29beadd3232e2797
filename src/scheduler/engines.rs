//! The engines a schedule creates, and the slim view of ChaosEngines the schedule reconciler
//! caches (metadata and `status.engineStatus` only: a second full engine cache would double the
//! controller's memory).
use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use kube::api::{ApiResource, DynamicObject, TypeMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{API_VERSION, ChaosEngine, ChaosSchedule, FINALIZER, engine_status};
use crate::schedule::Child;

/// Label Litmus puts on every scheduled engine.
pub const APP_LABEL: &str = "app";
/// Its value.
pub const APP_VALUE: &str = "chaos-engine";
/// Label carrying the schedule's UID.
pub const CHAOS_UID_LABEL: &str = "chaosUID";
/// Annotation never copied onto engines (kubectl's copy of the whole schedule, W19).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A ChaosEngine as the schedule reconciler sees it. Lenient: a malformed status does not break
/// the watch.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct EngineView {
    pub metadata: ObjectMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl Resource for EngineView {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ChaosEngine".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        crate::api::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        crate::api::VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "chaosengines".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl EngineView {
    /// Trims what the cache keeps.
    pub fn trim(&mut self) {
        self.metadata.managed_fields = None;
        self.metadata.annotations = None;
        self.metadata.labels = None;
        let status = self
            .status
            .as_ref()
            .and_then(|s| s.get("engineStatus"))
            .cloned();
        self.status = status.map(|s| serde_json::json!({ "engineStatus": s }));
    }

    /// `status.engineStatus`, empty when absent or not a string.
    pub fn engine_status(&self) -> String {
        self.status
            .as_ref()
            .and_then(|s| s.get("engineStatus"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// Whether the schedule with this UID is the engine's controller owner.
    pub fn owned_by(&self, schedule_uid: &str) -> bool {
        controlled_by(&self.metadata, schedule_uid)
    }

    /// The core's view of it.
    pub fn child(&self) -> Child {
        Child {
            name: self.metadata.name.clone().unwrap_or_default(),
            uid: self.metadata.uid.clone().unwrap_or_default(),
            resource_version: self.metadata.resource_version.clone(),
            created: self.metadata.creation_timestamp.as_ref().map(|t| t.0),
            engine_status: self.engine_status(),
            deleting: self.metadata.deletion_timestamp.is_some(),
        }
    }
}

/// Whether `meta` has a controller ownerReference to a ChaosSchedule with this UID.
pub fn controlled_by(meta: &ObjectMeta, schedule_uid: &str) -> bool {
    !schedule_uid.is_empty()
        && meta.owner_references.iter().flatten().any(|o| {
            o.controller == Some(true) && o.kind == "ChaosSchedule" && o.uid == schedule_uid
        })
}

/// The engine for one run (Litmus schedule.go:73-98): the template verbatim with
/// `engineState: active`; labels `app: chaos-engine`, `chaosUID: <schedule UID>` over the
/// schedule's labels (Litmus lets schedule labels replace them, W6); the schedule's annotations
/// without kubectl's last-applied copy (W19); one controller ownerReference.
pub fn engine_for(schedule: &ChaosSchedule, name: &str) -> Result<DynamicObject, String> {
    let mut spec = schedule.spec.engine_template_spec.clone();
    let Some(map) = spec.as_object_mut() else {
        return Err("spec.engineTemplateSpec is missing or not an object".into());
    };
    // Litmus forces `active`; a template without engineState is fine here (W5).
    map.insert("engineState".into(), Value::String("active".into()));
    let uid = schedule.metadata.uid.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = schedule.metadata.labels.clone().unwrap_or_default();
    labels.insert(APP_LABEL.into(), APP_VALUE.into());
    labels.insert(CHAOS_UID_LABEL.into(), uid.clone());
    let mut annotations = schedule.metadata.annotations.clone().unwrap_or_default();
    annotations.remove(LAST_APPLIED);
    let owner = OwnerReference {
        api_version: API_VERSION.into(),
        kind: "ChaosSchedule".into(),
        name: schedule.metadata.name.clone().unwrap_or_default(),
        uid,
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let resource = ApiResource::erase::<ChaosEngine>(&());
    Ok(DynamicObject {
        types: Some(TypeMeta {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
        }),
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: schedule.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: Some(annotations).filter(|a| !a.is_empty()),
            owner_references: Some(vec![owner]),
            // Created with our finalizer: this process reconciles the engine, and its first pass
            // then has no finalizer write of its own (docs/performance.md).
            finalizers: Some(vec![FINALIZER.into()]),
            ..Default::default()
        },
        data: serde_json::json!({ "spec": spec }),
    })
}

/// Whether an engine with this status is finished (also used by tests).
pub fn is_finished(status: &str) -> bool {
    status == engine_status::COMPLETED || status == engine_status::STOPPED
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schedule() -> ChaosSchedule {
        let mut s: ChaosSchedule = serde_json::from_value(json!({
            "apiVersion": "litmuschaos.io/v1alpha1",
            "kind": "ChaosSchedule",
            "metadata": {
                "name": "nightly", "namespace": "litmus", "uid": "u-1",
                "labels": {"team": "sre", "app": "nginx"},
                "annotations": {"note": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
            },
            "spec": {
                "schedule": {"now": true},
                "engineTemplateSpec": {
                    "annotationCheck": "false",
                    "appinfo": {"appns": "default"},
                    "experiments": [{"name": "pod-delete"}],
                    "futureField": {"kept": true}
                }
            }
        }))
        .unwrap();
        s.metadata.namespace = Some("litmus".into());
        s
    }

    #[test]
    fn engine_is_the_template_verbatim_with_litmus_metadata() {
        let e = engine_for(&schedule(), "nightly").unwrap();
        let spec = &e.data["spec"];
        assert_eq!(
            spec["engineState"], "active",
            "added although the template has none"
        );
        assert_eq!(
            spec["annotationCheck"], "false",
            "unknown keys reach the engine"
        );
        assert_eq!(spec["futureField"]["kept"], true);
        let labels = e.metadata.labels.unwrap();
        assert_eq!(
            labels["app"], "chaos-engine",
            "our labels win over the schedule's"
        );
        assert_eq!(labels["chaosUID"], "u-1");
        assert_eq!(labels["team"], "sre");
        let annotations = e.metadata.annotations.unwrap();
        assert_eq!(annotations["note"], "x");
        assert!(!annotations.contains_key(LAST_APPLIED));
        let owner = &e.metadata.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ChaosSchedule", "u-1")
        );
        assert_eq!(owner.controller, Some(true));
        assert_eq!(owner.block_owner_deletion, Some(true));
        assert_eq!(e.metadata.namespace.as_deref(), Some("litmus"));
        assert_eq!(
            e.metadata.finalizers,
            Some(vec![FINALIZER.to_string()]),
            "created with our finalizer (no first-pass finalizer write)"
        );
    }

    #[test]
    fn ownership_is_by_controller_uid_only() {
        let e = engine_for(&schedule(), "nightly").unwrap();
        assert!(controlled_by(&e.metadata, "u-1"));
        assert!(!controlled_by(&e.metadata, "u-2"));
        assert!(!controlled_by(&e.metadata, ""));
        let mut not_controller = e.metadata.clone();
        if let Some(o) = not_controller.owner_references.as_mut() {
            o[0].controller = None;
        }
        assert!(!controlled_by(&not_controller, "u-1"));
    }
}
