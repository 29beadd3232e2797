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
