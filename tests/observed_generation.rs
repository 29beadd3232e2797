//! `kubectl wait --for=condition=Finished chaosengine/X` (and kstatus-based tools:
//! Argo CD, Flux) must see a completed engine as current: after the controller's own final writes
//! (including `engineState: stop`, which bumps metadata.generation), status.observedGeneration and
//! the Finished condition's observedGeneration equal metadata.generation.
mod support;

use std::process::Command;
use std::time::Duration;

use chaos_conductor::api::ChaosEngine;
use support::controller::InProcessController;
use support::*;

fn finished(e: &ChaosEngine) -> bool {
    e.status
        .as_ref()
        .is_some_and(|s| s.engine_status == "completed")
}

#[tokio::test]
async fn completed_engine_is_observed_at_its_current_generation() {
    let env = setup("observed-gen", &["pod-delete"]).await;
    let _fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let ctrl = InProcessController::start(env.client(), env.ns());
    env.create(
        &EngineBuilder::new("gen")
            .service_account(SAMPLE_SA)
            .experiment("pod-delete")
            .build(),
    )
    .await;
    wait_engine(&env, "gen", "engine completed", finished).await;
    // The controller's last writes (engineState: stop, final status) may follow the completion.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let e = env.engines().get("gen").await.expect("engine");
    let generation = e.metadata.generation;
    let st = e.status.clone().unwrap_or_default();
    let condition = st
        .conditions
        .iter()
        .find(|c| c.type_ == "Finished")
        .cloned();
    println!(
        "MEASURED observed-generation: generation={generation:?} status.observedGeneration={:?} Finished={:?} engineState={:?}",
        st.observed_generation,
        condition
            .as_ref()
            .map(|c| (&c.status, &c.reason, c.observed_generation)),
        e.spec.engine_state
    );
    let condition = condition.expect("a Finished condition");
    assert_eq!(condition.status, "True");
    assert_eq!(
        st.observed_generation, generation,
        "status.observedGeneration behind metadata.generation"
    );
    assert_eq!(
        condition.observed_generation, generation,
        "the Finished condition's observedGeneration behind metadata.generation"
    );

    // And kubectl agrees, when the cluster's kubectl is at hand (scripts/test puts it on PATH).
    let kubectl = Command::new("kubectl")
        .args(["--kubeconfig"])
        .arg(kubeconfig_path())
        .args([
            "-n",
            env.ns(),
            "wait",
            "--for=condition=Finished",
            "chaosengine/gen",
        ])
        .args(["--timeout=10s"])
        .output();
    match kubectl {
        Ok(out) => assert!(
            out.status.success(),
            "kubectl wait --for=condition=Finished: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("[observed-gen] kubectl not run ({e}); the API check above stands"),
    }
    env.cleanup().await;
    ctrl.stop().await;
}
