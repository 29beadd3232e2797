//! The controller on a cluster that still has Litmus-style CRDs: no status subresource (status is
//! written by merge patch on the object, which bumps metadata.generation) and a ChaosEngine `spec`
//! that keeps anything, so a malformed engine reaches the controller.
//!
//! This swaps the cluster-wide ChaosEngine CRD for the duration of the test, which would disturb
//! tests running beside it: it is `#[ignore]`d and `scripts/test` runs it alone, after the others
//! (`cargo test --test litmus_crds -- --ignored`). It restores our CRD at the end, pass or fail.
//!
//! In the same window: a forged status on the main resource naming an unrelated
//! Job (see `support::forged`).
mod support;

use std::time::Duration;

use chaos_conductor::api::{ChaosEngine, FINALIZER, all_crds};
use kube::ResourceExt;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::json;
use support::controller::InProcessController;
use support::crd_swap::with_litmus_shape;
use support::forged::{StatusWrite, forged_status_names_someone_elses_job};
use support::*;

#[tokio::test]
#[ignore = "swaps the cluster-wide ChaosEngine CRD; run alone: cargo test --test litmus_crds -- --ignored"]
async fn runs_on_litmus_crds_and_survives_a_malformed_engine() {
    let env = TestEnv::new("litmus-crds").await;
    let client = env.client();
    let ours = all_crds().remove(0);
    with_litmus_shape(&client, ours, async {
        scenario(env).await;
        // The forged status (support::forged) on Litmus's CRDs, in the same window with the swapped CRD.
        let forged = TestEnv::new("litmus-forged").await;
        forged.create_service_account(SAMPLE_SA).await;
        forged.create(&sample_experiment("pod-delete")).await;
        forged_status_names_someone_elses_job(&forged, StatusWrite::MainResource).await;
        forged.cleanup().await;
    })
    .await;
}

async fn scenario(env: TestEnv) {
    env.create_service_account("pod-delete-sa").await;
    env.create(&sample_experiment("pod-delete")).await;
    let _fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let _ctrl = InProcessController::start(env.client(), env.ns());

    // Accepted by Litmus's schema (spec keeps anything), unreadable for the controller.
    let dynamic: Api<DynamicObject> = Api::namespaced_with(
        env.client(),
        env.ns(),
        &ApiResource::erase::<ChaosEngine>(&()),
    );
    let broken: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosEngine",
        "metadata": {"name": "broken"},
        "spec": {"engineState": "active", "experiments": "not-a-list"}
    }))
    .unwrap();
    dynamic
        .create(&PostParams::default(), &broken)
        .await
        .expect("Litmus's schema accepts it");
    let versions = support::watch::EngineVersions::start(env.client(), env.ns(), "good").await;
    env.create(
        &EngineBuilder::new("good")
            .service_account("pod-delete-sa")
            .experiment("pod-delete")
            .build(),
    )
    .await;

    let engines = env.engines();
    let done = env
        .wait_for(
            "the good engine completes next to the malformed one",
            Duration::from_secs(90),
            async || {
                let e = engines.get("good").await?;
                match e.status.as_ref() {
                    Some(s) if s.engine_status == "completed" => Ok(e),
                    other => Err(anyhow::anyhow!("status {other:?}")),
                }
            },
        )
        .await;
    let st = done.status.clone().unwrap();
    assert_eq!(st.experiments[0].status, "Completed");
    assert_eq!(st.experiments[0].verdict, "Pass");
    assert_eq!(done.spec.engine_state.as_deref(), Some("stop"));

    // Written only on change: the generation (bumped by every write without a subresource) rests.
    let generation = done.metadata.generation.unwrap_or_default();
    assert!(generation <= 8, "{generation} writes for one experiment");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let later = engines.get("good").await.unwrap();
    assert_eq!(
        later.metadata.generation,
        Some(generation),
        "no status churn after completion"
    );

    // The controller's writes to the engine (docs/performance.md): the finalizer rides on the
    // launch intent, the final status and `stop` are one patch; `Running` is the one in between.
    let versions = versions.versions();
    let writes: Vec<_> = versions.iter().skip(1).collect();
    let described: Vec<String> = writes
        .iter()
        .map(|e| {
            let s = e.status.clone().unwrap_or_default();
            let x = s.experiments.first().cloned().unwrap_or_default();
            format!(
                "finalizers {:?} engineState {:?} engineStatus {:?} experiment {:?}/{:?} job {:?}",
                e.finalizers(),
                e.spec.engine_state,
                s.engine_status,
                x.phase,
                x.status,
                x.job_name
            )
        })
        .collect();
    assert!(
        (2..=3).contains(&writes.len()),
        "{} engine writes for one experiment: {described:#?}",
        writes.len()
    );
    let first = writes[0];
    let launched = first
        .status
        .as_ref()
        .and_then(|s| s.experiments.first())
        .is_some_and(|x| !x.job_name.is_empty());
    assert!(
        first.finalizers().iter().any(|f| f == FINALIZER) && launched,
        "the first write carries the finalizer and the launch intent: {described:#?}"
    );
    let last = writes[writes.len() - 1];
    assert!(
        last.spec.engine_state.as_deref() == Some("stop")
            && last
                .status
                .as_ref()
                .is_some_and(|s| s.engine_status == "completed"),
        "the last write carries the final status and stop: {described:#?}"
    );

    let warning = env
        .wait_for(
            "a Warning on the malformed engine",
            Duration::from_secs(60),
            async || {
                env.engine_events("broken")
                    .await
                    .into_iter()
                    .find(|e| e.reason == "ChaosEngineMalformed")
                    .ok_or_else(|| anyhow::anyhow!("no ChaosEngineMalformed event yet"))
            },
        )
        .await;
    assert_eq!(warning.type_, "Warning");
    assert!(
        warning.message.contains("ChaosEngine cannot be read"),
        "{}",
        warning.message
    );
    assert!(
        dynamic.get("broken").await.unwrap().finalizers().is_empty(),
        "left alone: no finalizer"
    );

    // With the chart's admission policy an unreadable engine is created with our finalizer (the
    // policy adds it to every new engine, docs/performance.md); its deletion still ends: nothing
    // of it exists, so the controller releases the finalizer (src/controller/malformed.rs).
    let policies = support::chart::ChartPolicies::install(&env).await;
    let unreadable: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1", "kind": "ChaosEngine",
        "metadata": {"name": "unreadable"},
        "spec": {"engineState": "active", "chaosServiceAccount": "pod-delete-sa",
                 "experiments": [{"name": "pod-delete"}],
                 "terminationGracePeriodSeconds": "thirty"}
    }))
    .unwrap();
    // Retried only while the API server's admission still types engines by the CRD swapped out
    // at the start: the policy's patch is applied through the OpenAPI schema, which follows a
    // CRD change asynchronously ("failed to convert original object to typed object"; seen once
    // under load). Any other refusal fails at once.
    let made = env
        .wait_for(
            "Litmus's schema and the chart's policies accept the unreadable engine",
            Duration::from_secs(60),
            async || match dynamic.create(&PostParams::default(), &unreadable).await {
                Ok(made) => Ok(made),
                Err(e)
                    if e.to_string()
                        .contains("failed to convert original object to typed object") =>
                {
                    Err(anyhow::anyhow!("admission still types by the old CRD: {e}"))
                }
                Err(e) => panic!("Litmus's schema and the chart's policies accept it: {e}"),
            },
        )
        .await;
    assert!(
        made.finalizers().iter().any(|f| f == FINALIZER),
        "created with our finalizer: {:?}",
        made.finalizers()
    );
    dynamic
        .delete("unreadable", &kube::api::DeleteParams::default())
        .await
        .expect("deleting the unreadable engine");
    env.wait_for(
        "the unreadable engine's deletion ends",
        Duration::from_secs(60),
        async || match dynamic.get_opt("unreadable").await? {
            None => Ok(()),
            Some(o) => Err(anyhow::anyhow!(
                "still there: finalizers {:?}",
                o.finalizers()
            )),
        },
    )
    .await;
    policies.remove().await;
    env.cleanup().await;
}
