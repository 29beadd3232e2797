//! The schedule reconciler on Litmus's ChaosSchedule CRD shape: no status subresource (status and
//! `spec.scheduleState` in one merge patch of the object) and a `spec` that keeps anything.
//!
//! Swaps the cluster-wide ChaosSchedule CRD, so it is `#[ignore]`d and `scripts/test` runs it alone
//! after the others (`cargo test --test schedule_litmus_crd -- --ignored`). Our CRD is restored at
//! the end, pass or fail.
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosSchedule, all_crds};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::Api;
use support::controller::InProcessController;
use support::crd_swap::with_litmus_shape;
use support::*;

fn ours() -> CustomResourceDefinition {
    all_crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "ChaosSchedule")
        .expect("ChaosSchedule CRD")
}

#[tokio::test]
#[ignore = "swaps the cluster-wide ChaosSchedule CRD; run alone: cargo test --test schedule_litmus_crd -- --ignored"]
async fn schedules_run_on_litmus_crd_without_status_subresource() {
    let env = setup("sched-litmus-crd", &["pod-delete"]).await;
    let client = env.client();
    with_litmus_shape(&client, ours(), scenario(&env)).await;
    env.cleanup().await;
}

async fn scenario(env: &TestEnv) {
    let _fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let _ctrl = InProcessController::start_all(env.client(), env.ns());
    // A template without engineState (Litmus's controller then never runs it, W5) and a key this
    // version does not know, under a spec the CRD keeps as is.
    let yaml = format!(
        r#"apiVersion: litmuschaos.io/v1alpha1
kind: ChaosSchedule
metadata:
  name: litmus-shape
spec:
  futureKey: kept
  schedule:
    now: true
  engineTemplateSpec:
    chaosServiceAccount: {SAMPLE_SA}
    appinfo: {{appns: default, applabel: app=nginx, appkind: deployment}}
    jobCleanUpPolicy: retain
    experiments:
      - name: pod-delete
"#
    );
    env.apply_yaml(&yaml).await.expect("apply");
    let api = env.api::<ChaosSchedule>();
    let done = env
        .wait_for("completed", Duration::from_secs(120), async || {
            let s = api.get("litmus-shape").await?;
            let status = s
                .status
                .as_ref()
                .and_then(|st| st.schedule.as_ref())
                .and_then(|st| st.status.clone());
            if status.as_deref() == Some("completed") {
                Ok(s)
            } else {
                Err(anyhow::anyhow!("{:?}", s.status))
            }
        })
        .await;
    // One merge patch carries both: they are never seen apart.
    assert_eq!(done.spec.schedule_state.as_deref(), Some("complete"));
    let raw: kube::api::DynamicObject = Api::namespaced_with(
        env.client(),
        env.ns(),
        &kube::api::ApiResource::erase::<ChaosSchedule>(&()),
    )
    .get("litmus-shape")
    .await
    .expect("raw schedule");
    assert_eq!(
        raw.data["spec"]["futureKey"], "kept",
        "unknown keys survive our writes"
    );
    let engine = env.engines().get("litmus-shape").await.expect("engine");
    assert_eq!(
        engine.spec.engine_state.as_deref(),
        Some("stop"),
        "ran and finished"
    );
    assert!(
        engine
            .owner_references()
            .iter()
            .any(|o| o.kind == "ChaosSchedule")
    );
}
