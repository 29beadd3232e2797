//! crds/ must be exactly what `chaos-conductor crds` prints: the Helm chart and the local cluster
//! install from that folder, so a stale copy would test a different schema than the code has.
#[test]
fn crds_folder_matches_generated_output() {
    let generated = chaos_conductor::api::crds_yaml().expect("render CRDs");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/crds/litmuschaos.yaml");
    let on_disk = std::fs::read_to_string(path).expect("read crds/litmuschaos.yaml");
    assert!(
        generated == on_disk,
        "crds/litmuschaos.yaml is stale: run `cargo run -- crds > crds/litmuschaos.yaml`"
    );
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
