//! The fake litmus-go experiment against a real cluster, with no controller: the test renders the
//! experiment Job by hand and checks what the fake writes (ChaosResult, engine Events) and how the
//! pod ends. Needs `scripts/cluster up`.
mod support;

use anyhow::{anyhow, ensure};
use chaos_conductor::api::{ChaosEngine, ChaosExperiment, ChaosResult, result_phase, verdict};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Container;
use kube::api::DeleteParams;
use support::*;

const WAIT: std::time::Duration = secs(60);

/// SA + experiment + engine (`more` adds to the builder) created, engine read back (for its UID).
async fn create_engine(
    env: &TestEnv,
    engine_name: &str,
    experiment: &str,
    more: impl FnOnce(EngineBuilder) -> EngineBuilder,
) -> (ChaosEngine, ChaosExperiment) {
    env.create_service_account("chaos-sa").await;
    let exp = env.create(&sample_experiment(experiment)).await;
    let engine = EngineBuilder::new(engine_name)
        .service_account("chaos-sa")
        .experiment(experiment);
    (env.create(&more(engine).build()).await, exp)
}

/// [`create_engine`] (TOTAL_CHAOS_DURATION 5, label team=sre) and its Job, rendered by hand.
async fn setup(env: &TestEnv, engine_name: &str, experiment: &str) -> (ChaosEngine, String) {
    let (engine, exp) = create_engine(env, engine_name, experiment, |b| {
        b.experiment_env(experiment, "TOTAL_CHAOS_DURATION", "5")
            .label("team", "sre")
    })
    .await;
    let job_name = format!("{experiment}-{}", random_suffix(6));
    env.create(&hand_rendered_job(&engine, &exp, &job_name))
        .await;
    (engine, job_name)
}

/// The pod template's containers of a hand-rendered Job.
fn containers_mut(job: &mut Job) -> &mut Vec<Container> {
    &mut job
        .spec
        .as_mut()
        .expect("Job spec")
        .template
        .spec
        .as_mut()
        .expect("pod spec")
        .containers
}

async fn result_with_phase(env: &TestEnv, name: &str, phase: &str) -> ChaosResult {
    let results = env.results();
    env.wait_for(
        &format!("ChaosResult {name} phase {phase}"),
        WAIT,
        async || {
            let r = results
                .get_opt(name)
                .await?
                .ok_or_else(|| anyhow!("no ChaosResult yet"))?;
            let st = r.status.clone().unwrap_or_default().experiment_status;
            ensure!(
                st.phase == phase,
                "phase {:?} verdict {:?}",
                st.phase,
                st.verdict
            );
            Ok(r)
        },
    )
    .await
}

#[tokio::test]
async fn fake_experiment_passes_and_reports_like_litmus_go() {
    let env = TestEnv::new("fake-experiment-pass").await;
    let fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let (engine, job_name) = setup(&env, "nginx-chaos", "pod-delete").await;
    let uid = engine.metadata.uid.clone().unwrap();

    let result = result_with_phase(&env, "nginx-chaos-pod-delete", result_phase::COMPLETED).await;
    let status = result.status.clone().unwrap();
    assert_eq!(status.experiment_status.verdict, verdict::PASS);
    assert_eq!(
        status.experiment_status.probe_success_percentage.as_deref(),
        Some("100")
    );
    assert_eq!(status.history.as_ref().map(|h| h.passed_runs), Some(1));
    assert_eq!(result.spec.engine, "nginx-chaos");
    assert_eq!(result.spec.experiment, "pod-delete");

    // The ChaosResult carries the pod's labels, chaosUID = engine UID.
    let pods = env.job_pods(&job_name).await;
    assert_eq!(pods.len(), 1, "one experiment pod");
    let pod_labels = pods[0].metadata.labels.clone().unwrap_or_default();
    let result_labels = result.metadata.labels.clone().unwrap_or_default();
    assert_eq!(result_labels, pod_labels);
    assert_eq!(result_labels.get("chaosUID"), Some(&uid));
    for key in ["job-name", "name", "app.kubernetes.io/part-of", "team"] {
        assert!(
            result_labels.contains_key(key),
            "result label {key} missing: {result_labels:?}"
        );
    }

    // The fake read its identity from the pod's env.
    let pod_name = pods[0].metadata.name.clone().unwrap();
    let seen = fake.pod(&pod_name).expect("fake handled the pod");
    assert_eq!(seen.engine, "nginx-chaos");
    assert_eq!(seen.chaos_uid, uid);
    assert_eq!(
        seen.env.get("POD_NAME"),
        Some(&pod_name),
        "downward API resolved"
    );
    assert_eq!(
        seen.env.get("TOTAL_CHAOS_DURATION").map(String::as_str),
        Some("5")
    );

    // Pod ends Succeeded (litmus-go exits 0), Job completes.
    let pods_api = env.pods();
    env.wait_for("experiment pod Succeeded", WAIT, async || {
        let p = pods_api.get(&pod_name).await?;
        ensure!(pod_phase(&p) == "Succeeded", "phase {}", pod_phase(&p));
        Ok(())
    })
    .await;
    let jobs = env.jobs();
    env.wait_for("experiment Job Complete", WAIT, async || {
        let j = jobs.get(&job_name).await?;
        ensure!(job_condition(&j, "Complete"), "{}", job_summary(&j));
        Ok(())
    })
    .await;

    // litmus-go's engine events, named <Reason><experiment><engineUID>, source = pod name.
    let events = env.engine_events("nginx-chaos").await;
    for (reason, type_, message) in [
        ("PreChaosCheck", "Normal", "AUT: Running"),
        (
            "ChaosInject",
            "Normal",
            "Injecting pod-delete chaos on application pod",
        ),
        ("PostChaosCheck", "Normal", "AUT: Running"),
        ("Summary", "Normal", "pod-delete experiment has been Passed"),
    ] {
        let e = events
            .iter()
            .find(|e| e.reason == reason)
            .unwrap_or_else(|| panic!("no {reason} event among {events:#?}"));
        assert_eq!(e.name, format!("{reason}pod-delete{uid}"));
        assert_eq!((e.type_.as_str(), e.message.as_str()), (type_, message));
        assert_eq!(e.component, pod_name);
        assert_eq!(e.kind, "ChaosEngine");
        assert_eq!(e.uid, uid);
        assert_eq!(e.count, 1);
    }
    let result_events = env.events_for("nginx-chaos-pod-delete").await;
    let reasons: Vec<&str> = result_events.iter().map(|e| e.reason.as_str()).collect();
    assert!(
        reasons.contains(&"Awaited") && reasons.contains(&"Pass"),
        "{reasons:?}"
    );

    assert_eq!(fake.seen().len(), 1);
    assert_eq!(
        fake.pod(&pod_name).unwrap().state,
        FakeState::Finished("Pass".into())
    );
    fake.assert_no_errors();
    fake.stop();
    env.cleanup().await;
}

#[tokio::test]
async fn fake_experiment_abort_writes_stopped() {
    let env = TestEnv::new("fake-experiment-abort").await;
    let fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::never_finish()),
    );
    // backoffLimit 0: the Job must not replace the deleted pod (whose run would reset the result).
    let (engine, exp) = create_engine(&env, "abort-chaos", "pod-delete", |b| b).await;
    let uid = engine.metadata.uid.clone().unwrap();
    let mut job = hand_rendered_job(&engine, &exp, "pod-delete-abcdef");
    job.spec.as_mut().unwrap().backoff_limit = Some(0);
    env.create(&job).await;

    let running = result_with_phase(&env, "abort-chaos-pod-delete", result_phase::RUNNING).await;
    assert_eq!(
        running.status.unwrap().experiment_status.verdict,
        verdict::AWAITED
    );
    let pod = env
        .job_pods("pod-delete-abcdef")
        .await
        .pop()
        .expect("experiment pod");
    let pod_name = pod.metadata.name.clone().unwrap();
    env.pods()
        .delete(&pod_name, &DeleteParams::default())
        .await
        .expect("delete pod");

    let stopped = result_with_phase(&env, "abort-chaos-pod-delete", result_phase::STOPPED).await;
    let status = stopped.status.unwrap();
    assert_eq!(status.experiment_status.verdict, verdict::STOPPED);
    let err = status.experiment_status.error_output.expect("errorOutput");
    assert_eq!(
        (err.error_code.as_str(), err.reason.as_str()),
        ("EXPERIMENT_ABORTED", "Chaos injection stopped!")
    );
    assert_eq!(status.history.map(|h| h.stopped_runs), Some(1));

    // The fake writes the result first, then the Summary event.
    let events = env
        .wait_for("the Summary event", WAIT, async || {
            let events = env.engine_events("abort-chaos").await;
            ensure!(
                events.iter().any(|e| e.reason == "Summary"),
                "events {events:?}"
            );
            Ok(events)
        })
        .await;
    let summary = events.iter().find(|e| e.reason == "Summary").unwrap();
    assert_eq!(summary.type_, "Warning");
    assert_eq!(summary.message, "pod-delete experiment has been aborted");
    assert_eq!(summary.name, format!("Summarypod-delete{uid}"));
    assert!(
        !events.iter().any(|e| e.reason == "PostChaosCheck"),
        "{events:#?}"
    );

    // kwok kills the deleted pod and removes it.
    let pods = env.pods();
    env.wait_for("the aborted pod to be removed", WAIT, async || {
        match pods.get_opt(&pod_name).await? {
            None => Ok(()),
            Some(p) => Err(anyhow!("still there, phase {}", pod_phase(&p))),
        }
    })
    .await;
    assert_eq!(fake.pod(&pod_name).unwrap().state, FakeState::Aborted);
    assert_eq!(fake.seen().len(), 1, "no replacement pod was played");
    fake.assert_no_errors();
    env.cleanup().await;
}

#[tokio::test]
async fn fake_experiment_fail_verdict_main_container_only_and_missing_env() {
    let env = TestEnv::new("fake-experiment-variants").await;
    let behaviour = Behaviour::pass().with(
        "pod-delete",
        ExperimentBehaviour::fail().main_container_only(),
    );
    let fake = FakeExperiment::start(env.client(), env.ns(), behaviour);
    let (engine, exp) = create_engine(&env, "variant-chaos", "pod-delete", |b| b).await;

    // Fail verdict; only the main container ends, the pod stays Running (sidecar-like).
    let mut job = hand_rendered_job(&engine, &exp, "pod-delete-fail01");
    let mut sidecar = containers_mut(&mut job)[0].clone();
    sidecar.name = "pod-delete-fail01-sidecar-abcdef".into();
    sidecar.env = None;
    containers_mut(&mut job).push(sidecar);
    env.create(&job).await;
    let result = result_with_phase(&env, "variant-chaos-pod-delete", result_phase::COMPLETED).await;
    let status = result.status.unwrap();
    assert_eq!(status.experiment_status.verdict, verdict::FAIL);
    assert_eq!(status.history.map(|h| h.failed_runs), Some(1));
    env.wait_for(
        "main container terminated, pod still Running",
        WAIT,
        async || {
            let p = env
                .job_pods("pod-delete-fail01")
                .await
                .pop()
                .ok_or_else(|| anyhow!("no pod"))?;
            let statuses = p
                .status
                .clone()
                .and_then(|s| s.container_statuses)
                .unwrap_or_default();
            let main_done = statuses.iter().any(|c| {
                c.name == "pod-delete-fail01"
                    && c.state
                        .as_ref()
                        .and_then(|s| s.terminated.as_ref())
                        .is_some_and(|t| t.exit_code == 0)
            });
            ensure!(
                main_done && pod_phase(&p) == "Running",
                "phase {} statuses {statuses:?}",
                pod_phase(&p)
            );
            Ok(())
        },
    )
    .await;
    let events = env.engine_events("variant-chaos").await;
    let summary = events
        .iter()
        .find(|e| e.reason == "Summary")
        .expect("Summary");
    assert_eq!(
        (summary.type_.as_str(), summary.message.as_str()),
        ("Warning", "pod-delete experiment has been Failed")
    );
    fake.assert_no_errors();

    // A pod without CHAOS_UID: the fake reports it and fails the pod (exit 1), writing nothing.
    let mut job = hand_rendered_job(&engine, &exp, "pod-delete-noenv1");
    containers_mut(&mut job)[0]
        .env
        .as_mut()
        .unwrap()
        .retain(|e| e.name != "CHAOS_UID");
    env.create(&job).await;
    let pod = env
        .wait_for("the env-less pod to fail", WAIT, async || {
            let p = env
                .job_pods("pod-delete-noenv1")
                .await
                .pop()
                .ok_or_else(|| anyhow!("no pod"))?;
            ensure!(pod_phase(&p) == "Failed", "phase {}", pod_phase(&p));
            Ok(p)
        })
        .await;
    let errors = fake.errors();
    assert!(
        errors.len() == 1 && errors[0].contains("CHAOS_UID"),
        "errors {errors:?}"
    );
    let name = pod.metadata.name.unwrap();
    assert_eq!(fake.pod(&name).unwrap().state, FakeState::Broken);
    env.cleanup().await;
}
