//! The three CRDs as installed: derived from the types, then adjusted where Litmus differs from
//! kube-derive's defaults.
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use super::{ChaosEngine, ChaosExperimentDerived, ChaosResult, ChaosSchedule};

/// ChaosEngine, ChaosExperiment, ChaosResult and ChaosSchedule CRDs, in that order.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    let mut result = ChaosResult::crd();
    // litmus-go writes ChaosResult status with a full update of the object; with a status
    // subresource that update would silently drop the status, so the result CRD must not have one.
    for version in &mut result.spec.versions {
        version.subresources = None;
    }
    let mut experiment = ChaosExperimentDerived::crd();
    for version in &mut experiment.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            add_description(schema);
        }
    }
    let mut crds = vec![ChaosEngine::crd(), experiment, result, ChaosSchedule::crd()];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) = version
                .schema
                .as_mut()
                .and_then(|s| s.open_api_v3_schema.as_mut())
            {
                let mut value = serde_json::to_value(&*schema).unwrap_or_default();
                apiserver_friendly(&mut value);
                if let Ok(cleaned) = serde_json::from_value(value) {
                    *schema = cleaned;
                }
            }
        }
    }
    crds
}

/// Litmus's ChaosExperiment CRD declares a top-level `description` (a map of strings; ChaosHub
/// faults carry `description.message`). kube's derive only knows `spec` and `status`, so it is
/// added here; without it a strict `kubectl apply` of a hub fault fails on an unknown field.
/// The root schema keeps the kind's name as its title (the derive names it after the derived type).
fn add_description(schema: &mut JSONSchemaProps) {
    schema.title = Some(super::EXPERIMENT_KIND.into());
    let description = JSONSchemaProps {
        type_: Some("object".into()),
        additional_properties: Some(JSONSchemaPropsOrBool::Schema(Box::new(JSONSchemaProps {
            type_: Some("string".into()),
            ..JSONSchemaProps::default()
        }))),
        ..JSONSchemaProps::default()
    };
    schema
        .properties
        .get_or_insert_with(Default::default)
        .insert("description".into(), description);
}

/// Adapts a derived schema to the apiserver: `default`s come from `#[serde(default)]` and would
/// make the apiserver write values into users' objects (and `""` violates patterns), and the
/// apiserver only knows the signed integer formats.
fn apiserver_friendly(node: &mut serde_json::Value) {
    match node {
        serde_json::Value::Object(map) => {
            map.remove("default");
            if let Some(serde_json::Value::String(format)) = map.get_mut("format") {
                match format.as_str() {
                    "uint32" => *format = "int32".into(),
                    "uint64" | "uint" => *format = "int64".into(),
                    _ => {}
                }
            }
            for (key, child) in map.iter_mut() {
                // Property names are data, not schema keywords: recurse into their schemas only.
                if key == "properties" {
                    if let serde_json::Value::Object(props) = child {
                        props.values_mut().for_each(apiserver_friendly);
                    }
                } else {
                    apiserver_friendly(child);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(apiserver_friendly),
        _ => {}
    }
}

/// The CRDs as one multi-document YAML stream (what `chaos-conductor crds` prints and crds/ holds).
pub fn crds_yaml() -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    for crd in all_crds() {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd)?);
    }
    Ok(out)
}
