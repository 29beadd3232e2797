//! Checks the CRD schema cannot express: the rules the Litmus operator and runner apply at run
//! time. Pure functions over the typed objects, reusable by the controller.
use std::collections::BTreeMap;

use serde_json::Value;

use super::problem::{Problem, index_field, join_field};
pub use super::rules::{
    INCOMPLETE_APPINFO, INCOMPLETE_CONFIGMAP, INCOMPLETE_SECRET, engine_rules, too_many_experiments,
};
use super::rules::{
    INCOMPLETE_HOSTFILE, empty_definition, empty_definition_fields, service_account, sidecars,
};
use crate::api::limits::{self, MAX_EXPERIMENT_NAME_LEN};
use crate::api::{ChaosEngine, ChaosExperiment, VolumeSource};

/// Run-time rules of a ChaosEngine (Litmus operator and runner): the engine rules of
/// [`engine_rules`] (what the controller refuses a whole engine for, in its words), then what the
/// controller checks per experiment before its launch (src/engine/plan/gate.rs `gate`) and what
/// would only fail later.
pub fn check_engine(engine: &ChaosEngine) -> Vec<Problem> {
    let mut out = engine_rules(engine);
    let spec = &engine.spec;
    out.extend(service_account(engine).err().map(|p| *p));
    out.extend(sidecars(engine).err().map(|p| *p));
    if spec.experiments.is_empty() {
        out.push(Problem::warning(
            "spec.experiments",
            "no experiments: the engine has nothing to run",
        ));
    }
    if too_many_experiments(engine) {
        return out;
    }
    for (i, experiment) in spec.experiments.iter().enumerate() {
        let base = index_field("spec.experiments", i);
        if experiment.name.chars().count() > MAX_EXPERIMENT_NAME_LEN {
            out.push(Problem::error(
                join_field(&base, "name"),
                limits::experiment_name_too_long(&experiment.name),
            ));
        }
        let components = join_field(&base, "spec.components");
        volumes(
            &experiment.spec.components.config_maps,
            &join_field(&components, "configMaps"),
            INCOMPLETE_CONFIGMAP,
            &mut out,
        );
        volumes(
            &experiment.spec.components.secrets,
            &join_field(&components, "secrets"),
            INCOMPLETE_SECRET,
            &mut out,
        );
    }
    if let Some(components) = &spec.components {
        for (i, sidecar) in components.sidecar.iter().enumerate() {
            let base = index_field("spec.components.sidecar", i);
            if sidecar.image.is_empty() {
                out.push(Problem::error(
                    join_field(&base, "image"),
                    "must not be empty",
                ));
            }
            volumes(
                &sidecar.secrets,
                &join_field(&base, "secrets"),
                INCOMPLETE_SECRET,
                &mut out,
            );
        }
    }
    out
}

fn volumes(entries: &[VolumeSource], field: &str, message: &str, out: &mut Vec<Problem>) {
    for (i, entry) in entries.iter().enumerate() {
        if entry.name.is_empty() || entry.mount_path.is_empty() {
            out.push(Problem::error(index_field(field, i), message));
        }
    }
}

/// Run-time rules of a ChaosExperiment (what the runner needs to build the Job).
pub fn check_experiment(experiment: &ChaosExperiment) -> Vec<Problem> {
    let mut out = Vec::new();
    let def = &experiment.spec.definition;
    if let Some(name) = experiment
        .metadata
        .name
        .as_deref()
        .filter(|n| n.chars().count() > MAX_EXPERIMENT_NAME_LEN)
    {
        out.push(Problem::error(
            "metadata.name",
            limits::experiment_name_too_long(name),
        ));
    }
    if def.image.trim().is_empty() {
        out.push(Problem::error("spec.definition.image", limits::EMPTY_IMAGE));
    }
    out.extend(empty_definition_fields(def).map(empty_definition));
    if def.labels.as_ref().is_none_or(BTreeMap::is_empty) {
        out.push(Problem::error(
            "spec.definition.labels",
            "must not be empty: they are the base labels of the experiment Job",
        ));
    }
    volumes(
        &def.config_maps,
        "spec.definition.configMaps",
        INCOMPLETE_CONFIGMAP,
        &mut out,
    );
    volumes(
        &def.secrets,
        "spec.definition.secrets",
        INCOMPLETE_SECRET,
        &mut out,
    );
    for (i, volume) in def.host_file_volumes.iter().enumerate() {
        if volume.name.is_empty() || volume.mount_path.is_empty() || volume.node_path.is_empty() {
            out.push(Problem::error(
                index_field("spec.definition.hostFileVolumes", i),
                INCOMPLETE_HOSTFILE,
            ));
        }
    }
    out
}

/// Legacy ChaosEngine `spec` fields (docs/litmus-compatibility.md#legacy-fields): kept, no effect.
pub fn legacy_engine_fields(doc: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(spec) = doc.get("spec").and_then(Value::as_object) else {
        return out;
    };
    for (key, message) in [
        (
            "annotationCheck",
            "legacy field, ignored (removed from Litmus in 2022)",
        ),
        (
            "monitoring",
            "legacy field, ignored (removed from Litmus in 2021)",
        ),
        ("chaosType", "legacy field, ignored"),
        (
            "jobCleanupPolicy",
            "ignored: the field is jobCleanUpPolicy (capital U)",
        ),
    ] {
        if spec.contains_key(key) {
            out.push(Problem::note(format!("spec.{key}"), message));
        }
    }
    out
}

/// Whether `name` is a DNS-1123 subdomain (what Kubernetes requires of most object names).
pub fn is_dns1123_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

/// Whether `name` is a DNS-1123 label (what Kubernetes requires of namespace names).
pub fn is_dns1123_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns1123_subdomain(name)
}

/// Checks of the parts every object has (`apiVersion`, `kind`, `metadata`) that the CRD schema
/// leaves to the apiserver. `doc` must be a mapping.
pub fn check_object_meta(doc: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let Some(meta) = doc.get("metadata").filter(|m| !m.is_null()) else {
        out.push(Problem::error("metadata.name", "required field is missing"));
        return out;
    };
    let Some(meta) = meta.as_object() else {
        out.push(Problem::error("metadata", "must be of type object"));
        return out;
    };
    let generate_name = meta.get("generateName").and_then(Value::as_str);
    match meta.get("name") {
        None if generate_name.is_some_and(|g| !g.is_empty()) => {}
        None => out.push(Problem::error("metadata.name", "required field is missing")),
        Some(Value::String(name)) if !is_dns1123_subdomain(name) => out.push(Problem::error(
            "metadata.name",
            format!(
                "{name:?} is not a valid name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, at most 253 characters"
            ),
        )),
        Some(Value::String(_)) => {}
        Some(_) => out.push(Problem::error("metadata.name", "must be of type string")),
    }
    match meta.get("namespace") {
        None => {}
        Some(Value::String(ns)) if !is_dns1123_label(ns) => out.push(Problem::error(
            "metadata.namespace",
            format!(
                "{ns:?} is not a valid namespace: lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters"
            ),
        )),
        Some(Value::String(_)) => {}
        Some(_) => out.push(Problem::error("metadata.namespace", "must be of type string")),
    }
    for key in ["labels", "annotations"] {
        let field = format!("metadata.{key}");
        match meta.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                for (k, v) in map {
                    if !v.is_string() {
                        out.push(Problem::error(
                            join_field(&field, k),
                            "must be of type string (quote it)",
                        ));
                    }
                }
            }
            Some(_) => out.push(Problem::error(field, "must be of type object")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns1123_subdomain("pod-delete"));
        assert!(is_dns1123_subdomain("a.b-c.d"));
        assert!(!is_dns1123_subdomain("Pod"));
        assert!(!is_dns1123_subdomain("-a"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain(""));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(is_dns1123_label("litmus"));
        assert!(!is_dns1123_label("a.b"));
    }
}
