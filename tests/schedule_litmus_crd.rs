//! The schedule reconciler on Litmus's ChaosSchedule CRD shape: no status subresource (status and
//! `spec.scheduleState` in one merge patch of the object) and a `spec` that keeps anything.
//!
//! Swaps the cluster-wide ChaosSchedule CRD, so it is `#[ignore]`d and `scripts/test` runs it alone
//! after the others (`cargo test --test schedule_litmus_crd -- --ignored`). Our CRD is restored at
//! the end, pass or fail.
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosSchedule, all_crds};
use chaos_conductor::controller::StatusMode;
use futures::FutureExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use support::controller::InProcessController;
use support::*;

const CRD: &str = "chaosschedules.litmuschaos.io";

fn ours() -> CustomResourceDefinition {
    all_crds()
        .into_iter()
        .find(|c| c.spec.names.kind == "ChaosSchedule")
        .expect("ChaosSchedule CRD")
}

/// Litmus's shape: no subresources, no printer columns, `spec` and `status` keep unknown fields.
fn litmus_style(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let free = || -> JSONSchemaProps {
        serde_json::from_value(
            json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        )
        .unwrap()
    };
    for v in &mut crd.spec.versions {
        v.subresources = None;
        v.additional_printer_columns = None;
        if let Some(schema) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            let props = schema.properties.get_or_insert_with(Default::default);
            props.insert("spec".into(), free());
            props.insert("status".into(), free());
        }
    }
    crd
}

async fn install(client: &Client, crd: CustomResourceDefinition, want: StatusMode) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = crd;
    let current = api.get(CRD).await.expect("read the ChaosSchedule CRD");
    crd.metadata.resource_version = current.metadata.resource_version;
    api.replace(CRD, &PostParams::default(), &crd)
        .await
        .expect("replace the ChaosSchedule CRD");
    wait_for(
        "discovery to show the CRD change",
        Duration::from_secs(60),
        async || {
            let mode = chaos_conductor::scheduler::discover(client)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if mode == Some(want) {
                Ok(())
            } else {
                Err(anyhow::anyhow!("still {mode:?}"))
            }
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "swaps the cluster-wide ChaosSchedule CRD; run alone: cargo test --test schedule_litmus_crd -- --ignored"]
async fn schedules_run_on_litmus_crd_without_status_subresource() {
    let env = setup("sched-litmus-crd", &["pod-delete"]).await;
    let client = env.client();
    install(&client, litmus_style(ours()), StatusMode::MainResource).await;
    let outcome = std::panic::AssertUnwindSafe(scenario(&env))
        .catch_unwind()
        .await;
    install(&client, ours(), StatusMode::Subresource).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
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
