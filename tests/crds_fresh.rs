//! crds/ must be exactly what `chaos-conductor crds` prints, and the Helm chart's crds/ a copy of
//! it: the chart and the local cluster install from those files, so a stale copy would test a
//! different schema than the code has. `cargo crds` rewrites both (see CONTRIBUTING.md).
use std::path::{Path, PathBuf};

const REGENERATE: &str = "regenerate both with `cargo crds`";

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The generated CRDs and where they must be written.
fn targets() -> (String, [PathBuf; 2]) {
    let generated = chaos_conductor::api::crds_yaml().expect("render CRDs");
    (
        generated,
        [
            repo_file("crds/litmuschaos.yaml"),
            repo_file("charts/chaos-conductor/crds/litmuschaos.yaml"),
        ],
    )
}

#[test]
fn crds_folder_and_chart_copy_match_generated_output() {
    let (generated, files) = targets();
    for path in &files {
        let on_disk = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}; {REGENERATE}", path.display()));
        assert!(
            generated == on_disk,
            "{} is stale; {REGENERATE}",
            path.display()
        );
    }
    // Helm installs every file in the chart's crds/: nothing but the one copy may be there.
    let chart_crds = repo_file("charts/chaos-conductor/crds");
    let names: Vec<String> = std::fs::read_dir(&chart_crds)
        .expect("read charts/chaos-conductor/crds")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(
        names,
        ["litmuschaos.yaml"],
        "files in {}",
        chart_crds.display()
    );
    let meta = std::fs::symlink_metadata(&files[1]).expect("stat the chart copy");
    assert!(
        meta.file_type().is_file(),
        "the chart's CRDs must be a regular file (a copy, not a symlink): helm package drops links"
    );
}

/// Not a check: `cargo crds` (an alias for this test) writes the generated CRDs to crds/ and to
/// the chart's copy.
#[test]
#[ignore = "writes files: run by `cargo crds`"]
fn write_crds_and_chart_copy() {
    let (generated, files) = targets();
    for path in &files {
        std::fs::write(path, &generated)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
}

#[test]
fn result_crd_has_no_status_subresource_and_engine_crd_has_one() {
    let crds = chaos_conductor::api::all_crds();
    let engine = &crds[0];
    let result = &crds[2];
    assert_eq!(engine.spec.names.kind, "ChaosEngine");
    assert!(
        engine.spec.versions[0]
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    assert_eq!(result.spec.names.kind, "ChaosResult");
    assert!(result.spec.versions[0].subresources.is_none());
}

#[test]
fn schedule_crd_has_status_subresource_printer_columns_and_litmus_shape() {
    let crds = chaos_conductor::api::all_crds();
    let schedule = crds
        .iter()
        .find(|c| c.spec.names.kind == "ChaosSchedule")
        .expect("ChaosSchedule CRD");
    assert_eq!(
        schedule.metadata.name.as_deref(),
        Some("chaosschedules.litmuschaos.io")
    );
    assert_eq!(schedule.spec.scope, "Namespaced");
    let version = &schedule.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<&str> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["Status", "Last Run", "Next Run", "Runs", "Age"]);
    let schema = serde_json::to_value(version.schema.as_ref().unwrap()).unwrap();
    let spec = &schema["openAPIV3Schema"]["properties"]["spec"];
    // Litmus keeps unknown keys under spec and status; so do we.
    assert_eq!(spec["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(
        schema["openAPIV3Schema"]["properties"]["status"]["x-kubernetes-preserve-unknown-fields"],
        true
    );
    for field in [
        "chaosServiceAccount",
        "schedule",
        "scheduleState",
        "concurrencyPolicy",
        "engineTemplateSpec",
    ] {
        assert!(
            spec["properties"][field].is_object(),
            "spec.{field} missing"
        );
    }
    let days = &spec["properties"]["schedule"]["properties"]["repeat"]["properties"]["workDays"];
    assert_eq!(
        days["properties"]["includedDays"]["pattern"],
        "((Mon|Tue|Wed|Thu|Fri|Sat|Sun)(,))*(Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
    );
    // The template is the engine spec schema (its engineState pattern included).
    assert_eq!(
        spec["properties"]["engineTemplateSpec"]["properties"]["engineState"]["pattern"],
        "^(active|stop)$"
    );
}
