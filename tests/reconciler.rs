//! The reconciler against the real local control plane (scripts/cluster up), with the fake
//! litmus-go experiment: status strings, the rendered Job, Events, restarts and failures.
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chaos_conductor::api::{
    ChaosEngine, FINALIZER, SIDECAR_ANNOTATION, StatusCheckTimeout, VolumeSource,
};
use chaos_conductor::engine::PlanConfig;
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::controller::{ControllerProcess, InProcessController};
use support::*;

const SA: &str = SAMPLE_SA;
const WAIT: Duration = Duration::from_secs(60);

fn engine(name: &str) -> EngineBuilder {
    EngineBuilder::new(name).service_account(SA)
}

fn engine_status(e: &ChaosEngine) -> &str {
    e.status.as_ref().map_or("", |s| s.engine_status.as_str())
}

async fn completed(env: &TestEnv, name: &str) -> ChaosEngine {
    wait_engine(env, name, "engine completed", |e| {
        engine_status(e) == "completed"
    })
    .await
}

fn entry(e: &ChaosEngine, i: usize) -> (String, String, String, String) {
    let x = &e.status.as_ref().expect("status").experiments[i];
    (
        x.name.clone(),
        x.status.clone(),
        x.verdict.clone(),
        x.experiment_pod.clone(),
    )
}

async fn job_of(env: &TestEnv, e: &ChaosEngine, i: usize) -> Job {
    let name = e.status.as_ref().expect("status").experiments[i]
        .job_name
        .clone();
    env.jobs()
        .get(&name)
        .await
        .unwrap_or_else(|err| panic!("Job {name}: {err}"))
}

/// The engine writes after its creation (`versions`: every stored version, as watched), one line
/// each; asserts that there are at most `max` (each stored write is one watch event,
/// docs/performance.md) and returns them for further messages.
fn assert_engine_writes_at_most(versions: &[ChaosEngine], max: usize) -> Vec<String> {
    let writes: Vec<String> = versions
        .iter()
        .skip(1)
        .map(|v| {
            let s = v.status.clone().unwrap_or_default();
            format!(
                "finalizers {:?} engineState {:?} engineStatus {:?} experiments {:?}",
                v.finalizers(),
                v.spec.engine_state,
                s.engine_status,
                s.experiments
                    .iter()
                    .map(|x| (x.phase.clone(), x.status.clone(), x.job_name.clone()))
                    .collect::<Vec<_>>()
            )
        })
        .collect();
    assert!(
        writes.len() <= max,
        "{} engine writes for one experiment: {writes:#?}",
        writes.len()
    );
    writes
}

/// The Jobs in the test namespace.
async fn jobs_in(env: &TestEnv) -> Vec<Job> {
    env.jobs()
        .list(&Default::default())
        .await
        .expect("listing Jobs")
        .items
}

/// Waits until the test namespace holds no Job (jobCleanUpPolicy delete, the deadline's delete).
async fn wait_no_jobs(env: &TestEnv, what: &str) {
    let jobs = env.jobs();
    env.wait_for(what, WAIT, async || {
        let n = jobs.list(&Default::default()).await?.items.len();
        if n == 0 {
            Ok(())
        } else {
            Err(anyhow::anyhow!("{n} Jobs left"))
        }
    })
    .await
}

/// The engine's Warning Event with this reason; its message must be the experiment entry's
/// message (the controller explains the same failure in both places). `wait_event` already waited
/// for the reason, so what is asserted here is the type and the text.
fn assert_warning_explains(events: &[EventInfo], reason: &str, entry_message: &str) {
    let ev = events
        .iter()
        .find(|x| x.reason == reason)
        .unwrap_or_else(|| panic!("no {reason} in {events:?}"));
    assert_eq!(
        (ev.type_.as_str(), ev.message.as_str()),
        ("Warning", entry_message),
        "{reason}"
    );
}

#[tokio::test]
async fn one_experiment_passes_with_litmus_status_job_and_events() {
    let env = setup("pass", &["pod-delete"]).await;
    let fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let _ctrl = InProcessController::start(env.client(), env.ns());
    let e = engine("nginx-chaos")
        .label("context", "nginx-demo")
        .label("chaosUID", "schedule-uid")
        .experiment_env("pod-delete", "TOTAL_CHAOS_DURATION", "30")
        .build();
    let versions =
        support::watch::EngineVersions::start(env.client(), env.ns(), "nginx-chaos").await;
    env.create(&e).await;

    // Running/Awaited is published while the experiment runs.
    wait_engine(&env, "nginx-chaos", "Running/Awaited", |e| {
        e.status
            .as_ref()
            .and_then(|s| s.experiments.first())
            .is_some_and(|x| x.status == "Running" && x.verdict == "Awaited")
    })
    .await;
    completed(&env, "nginx-chaos").await;
    // On our CRD the final status (status subresource) and `engineState: stop` (the main resource)
    // are two writes, the stop second (docs/performance.md): wait for it, within the usual bound.
    let e = wait_engine(
        &env,
        "nginx-chaos",
        "engineState stop after completion (the operator writes stop on completion)",
        |e| engine_status(e) == "completed" && e.spec.engine_state.as_deref() == Some("stop"),
    )
    .await;
    let (name, status, verdict, pod) = entry(&e, 0);
    assert_eq!(
        (name.as_str(), status.as_str(), verdict.as_str()),
        ("pod-delete", "Completed", "Pass")
    );
    let st = e.status.clone().unwrap();
    assert_eq!(st.experiments[0].runner, "nginx-chaos-runner");
    assert_eq!(st.verdict, "Pass");
    assert!(e.finalizers().iter().any(|f| f == FINALIZER));
    // The engine writes of a run on our CRD (docs/performance.md): finalizer, launch intent,
    // Running, final status, `stop`; none more (each stored write is one watch event).
    assert_engine_writes_at_most(&versions.versions(), 5);

    // The Job as Litmus renders it, plus owner and backoffLimit 0.
    let job = job_of(&env, &e, 0).await;
    let job_name = job.name_any();
    assert!(
        job_name.starts_with("pod-delete-") && job_name.len() == 17,
        "{job_name}"
    );
    let labels = job.labels();
    assert_eq!(
        labels["chaosUID"],
        e.uid().unwrap(),
        "chaosUID applied after the engine's labels"
    );
    assert_eq!(labels["context"], "nginx-demo");
    assert_eq!(labels["name"], "pod-delete");
    let owner = &job.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("ChaosEngine", e.uid().unwrap().as_str(), Some(true))
    );
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let pod_spec = spec.template.spec.unwrap();
    assert_eq!(pod_spec.service_account_name.as_deref(), Some(SA));
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod_spec.containers[0].name, job_name,
        "main container named like the Job"
    );

    // What the experiment pod saw in its own env (the fake reads it like litmus-go).
    let seen = fake.pod(&pod).expect("the fake experiment ran the pod");
    assert_eq!(seen.engine, "nginx-chaos");
    assert_eq!(seen.experiment, "pod-delete");
    assert_eq!(seen.chaos_uid, e.uid().unwrap());
    assert_eq!(
        seen.env.get("TOTAL_CHAOS_DURATION").map(String::as_str),
        Some("30")
    );
    assert_eq!(
        seen.env.get("TARGETS").map(String::as_str),
        Some("deployment:default:[app=nginx]")
    );
    assert_eq!(
        seen.env.get("JOB_CLEANUP_POLICY").map(String::as_str),
        Some("retain")
    );
    assert_eq!(
        seen.env.get("STATUS_CHECK_TIMEOUT").map(String::as_str),
        Some("180")
    );
    assert_eq!(seen.env.get("POD_NAME"), Some(&pod));
    fake.assert_no_errors();

    let events = env
        .wait_event(
            "nginx-chaos",
            all_reasons(&[
                "ChaosEngineInitialized",
                "ExperimentDependencyCheck",
                "ExperimentJobCreate",
                "ExperimentJobCleanUp",
                "ChaosEngineCompleted",
            ]),
            WAIT,
        )
        .await;
    let ours: Vec<&EventInfo> = events
        .iter()
        .filter(|e| e.component.ends_with("-runner") || e.component == "chaos-conductor")
        .collect();
    let find = |reason: &str| {
        ours.iter()
            .find(|e| e.reason == reason)
            .unwrap_or_else(|| panic!("no {reason} in {events:?}"))
    };
    assert_eq!(
        find("ChaosEngineInitialized").message,
        "Identifying app under test & launching nginx-chaos-runner"
    );
    assert_eq!(
        find("ExperimentDependencyCheck").message,
        "Experiment resources validated for Chaos Experiment: pod-delete"
    );
    assert_eq!(
        find("ExperimentDependencyCheck").component,
        "nginx-chaos-runner"
    );
    assert_eq!(
        find("ExperimentDependencyCheck").name,
        format!("ExperimentDependencyCheckpod-delete{}", e.uid().unwrap())
    );
    assert_eq!(
        find("ExperimentJobCreate").message,
        format!("Experiment Job {job_name} for Chaos Experiment: pod-delete")
    );
    assert_eq!(
        find("ExperimentJobCleanUp").message,
        format!("Experiment Job {job_name} will be retained")
    );
    assert_eq!(
        find("ChaosEngineCompleted").message,
        "ChaosEngine completed, will delete or retain the resources according to jobCleanUpPolicy"
    );
    // Every Event we wrote is about this engine (involvedObject), not merely about some engine.
    let engine_uid = e.uid().unwrap();
    let strays: Vec<&&EventInfo> = ours
        .iter()
        .filter(|ev| ev.uid != engine_uid || ev.kind != "ChaosEngine")
        .collect();
    assert!(
        strays.is_empty(),
        "Events not on engine {engine_uid}: {strays:?}"
    );
    assert_eq!(jobs_in(&env).await.len(), 1, "exactly one Job");
    env.cleanup().await;
}

/// With the chart's admission policy on, the engine is created with our finalizer (the author
/// MutatingAdmissionPolicy adds it, docs/performance.md), so the controller writes the engine four
/// times in a run on our CRD: launch intent, Running, final status, `stop`; no finalizer write. Fails
/// if the policy stops adding it (five writes, the first a finalizer patch) or the controller writes
/// the finalizer anyway.
#[tokio::test]
async fn with_the_chart_policy_the_run_has_no_finalizer_write() {
    let env = setup("pass-policy", &["pod-delete"]).await;
    let policies = support::chart::ChartPolicies::install(&env).await;
    let _fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let _ctrl = InProcessController::start(env.client(), env.ns());
    let versions = support::watch::EngineVersions::start(env.client(), env.ns(), "folded").await;
    env.create(&engine("folded").experiment("pod-delete").build())
        .await;
    let e = wait_engine(&env, "folded", "completed and at stop", |e| {
        engine_status(e) == "completed" && e.spec.engine_state.as_deref() == Some("stop")
    })
    .await;
    assert_eq!(entry(&e, 0).2, "Pass");
    let versions = versions.versions();
    let created = versions.first().expect("the creation was watched");
    assert!(
        created.finalizers().iter().any(|f| f == FINALIZER),
        "created with our finalizer by the chart's policy: {:?}",
        created.finalizers()
    );
    let writes = assert_engine_writes_at_most(&versions, 4);
    let launched = versions
        .get(1)
        .and_then(|v| v.status.as_ref())
        .is_some_and(|s| {
            s.experiments
                .first()
                .is_some_and(|x| !x.job_name.is_empty())
        });
    assert!(
        launched,
        "the first write is the launch intent: {writes:#?}"
    );
    env.cleanup().await;
    policies.remove().await;
}

#[tokio::test]
async fn fail_and_error_verdicts_are_copied_from_the_chaos_result() {
    let env = setup("verdicts", &["pod-delete", "container-kill"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::pass()
            .with("pod-delete", ExperimentBehaviour::fail())
            .with(
                "container-kill",
                ExperimentBehaviour::error("STATUS_CHECKS_ERROR", "app not running"),
            ),
    );
    let _ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine("failing").experiment("pod-delete").build())
        .await;
    env.create(&engine("erroring").experiment("container-kill").build())
        .await;
    let f = completed(&env, "failing").await;
    assert_eq!(entry(&f, 0).1, "Completed");
    assert_eq!(entry(&f, 0).2, "Fail");
    let e = completed(&env, "erroring").await;
    assert_eq!(entry(&e, 0).2, "Error");
    assert_eq!(e.status.unwrap().verdict, "Error");
    env.cleanup().await;
}

#[tokio::test]
async fn missing_dependencies_skip_with_litmus_warnings() {
    let env = setup("missing", &["pod-delete"]).await;
    let mut with_cm = sample_experiment("needs-cm");
    with_cm.spec.definition.config_maps = vec![VolumeSource {
        name: "absent-cm".into(),
        mount_path: "/mnt/cm".into(),
    }];
    env.create(&with_cm).await;
    let _ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine("no-exp").experiment("does-not-exist").build())
        .await;
    env.create(&engine("no-cm").experiment("needs-cm").build())
        .await;
    env.create(
        &EngineBuilder::new("no-sa")
            .service_account("absent-sa")
            .experiment("pod-delete")
            .build(),
    )
    .await;

    let e = completed(&env, "no-exp").await;
    assert_eq!(
        entry(&e, 0),
        (
            "does-not-exist".into(),
            "ChaosExperiment Not Found".into(),
            "Fail".into(),
            "N/A".into()
        )
    );
    let ev = env
        .wait_event("no-exp", all_reasons(&["ExperimentNotFound"]), WAIT)
        .await;
    let w = ev
        .iter()
        .find(|x| x.reason == "ExperimentNotFound")
        .expect("ExperimentNotFound event");
    assert_eq!(
        (w.type_.as_str(), w.message.as_str()),
        (
            "Warning",
            "Experiment Job creation failed, skipping Chaos Experiment: does-not-exist"
        )
    );

    for (engine_name, exp, why) in [
        ("no-cm", "needs-cm", "ConfigMap absent-cm not found"),
        ("no-sa", "pod-delete", "ServiceAccount absent-sa not found"),
    ] {
        let e = completed(&env, engine_name).await;
        assert_eq!(
            entry(&e, 0),
            (exp.into(), "Skipped".into(), "Fail".into(), "N/A".into())
        );
        assert!(
            e.status.as_ref().unwrap().experiments[0]
                .message
                .contains(why)
        );
        let ev = env
            .wait_event(
                engine_name,
                all_reasons(&["ExperimentDependencyCheck"]),
                WAIT,
            )
            .await;
        assert!(
            ev.iter().any(|x| x.reason == "ExperimentDependencyCheck"
                && x.type_ == "Warning"
                && x.message
                    == format!("Experiment Job creation failed, skipping Chaos Experiment: {exp}")),
            "{ev:?}"
        );
    }
    assert!(
        jobs_in(&env).await.is_empty(),
        "no Job for skipped experiments"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn two_experiments_run_in_sequence_and_delete_policy_removes_jobs() {
    let env = setup("sequence", &["pod-delete", "container-kill"]).await;
    let fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(Duration::from_millis(1500))),
    );
    let _ctrl = InProcessController::start(env.client(), env.ns());
    env.create(
        &engine("seq")
            .experiment("pod-delete")
            .experiment("container-kill")
            .job_cleanup_policy(Some("delete"))
            .build(),
    )
    .await;
    // Never two experiment Jobs at once.
    let jobs = env.jobs();
    let mut max_alive = 0;
    let e = env
        .wait_for("both done", WAIT, async || {
            let alive = jobs
                .list(&Default::default())
                .await?
                .items
                .iter()
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .count();
            max_alive = max_alive.max(alive);
            let e = env.engines().get("seq").await?;
            if engine_status(&e) == "completed" {
                Ok(e)
            } else {
                Err(anyhow::anyhow!("{alive} jobs"))
            }
        })
        .await;
    assert!(max_alive <= 1, "{max_alive} Jobs alive at once");
    assert_eq!(entry(&e, 0).2, "Pass");
    assert_eq!(entry(&e, 1).2, "Pass");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].experiment, "pod-delete", "list order");
    let ev = env
        .wait_event("seq", all_reasons(&["ExperimentJobCleanUp"]), WAIT)
        .await;
    assert!(
        ev.iter()
            .any(|x| x.reason == "ExperimentJobCleanUp" && x.message.ends_with("will be deleted"))
    );
    wait_no_jobs(&env, "Jobs deleted").await;
    env.cleanup().await;
}

#[tokio::test]
async fn instance_id_and_sidecar_are_honoured() {
    let env = setup("instance", &["pod-delete"]).await;
    let fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let _ctrl = InProcessController::start(env.client(), env.ns());
    let e = engine("inst")
        .experiment_env("pod-delete", "INSTANCE_ID", "run-7")
        .annotation(SIDECAR_ANNOTATION, "true")
        .with(|e| {
            e.spec.components = Some(
                serde_json::from_value(json!({"sidecar": [{"image": "fluent/fluent-bit:2.2",
                "env": [{"name": "LOG_LEVEL", "value": "info"}]}]}))
                .unwrap(),
            );
        })
        .build();
    env.create(&e).await;
    let e = completed(&env, "inst").await;
    assert_eq!(entry(&e, 0).2, "Pass");
    assert_eq!(
        e.status.as_ref().unwrap().experiments[0].result_name,
        "inst-pod-delete-run-7"
    );
    env.results()
        .get("inst-pod-delete-run-7")
        .await
        .expect("result named with INSTANCE_ID");
    let job = job_of(&env, &e, 0).await;
    let containers = job.spec.unwrap().template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2);
    assert!(
        containers[1]
            .name
            .starts_with(&format!("{}-sidecar-", containers[0].name))
    );
    assert_eq!(fake.seen()[0].instance_id, "run-7");
    env.cleanup().await;
}

#[tokio::test]
async fn failed_pod_and_pending_pod_end_with_a_reason() {
    let env = setup("abnormal", &["pod-delete", "container-kill"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::pass().with("pod-delete", ExperimentBehaviour::pod_fails(2)),
    );
    let _ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine("crashes").experiment("pod-delete").build())
        .await;
    let mut stuck = engine("stuck").experiment("container-kill");
    let c = stuck.components_mut("container-kill");
    c.experiment_annotations =
        BTreeMap::from([("e2e.test/stay-pending".to_string(), "true".to_string())]);
    c.status_check_timeouts = Some(StatusCheckTimeout {
        delay: None,
        timeout: Some(3),
    });
    env.create(&stuck.build()).await;

    let e = completed(&env, "crashes").await;
    assert_eq!(
        (entry(&e, 0).1.as_str(), entry(&e, 0).2.as_str()),
        ("Skipped", "Fail")
    );
    assert!(
        e.status.as_ref().unwrap().experiments[0]
            .message
            .contains("chaos pod status is Failed")
    );
    let ev = env
        .wait_event(
            "crashes",
            all_reasons(&["ChaosContainerWatchNotPermitted", "ExperimentPodFailed"]),
            WAIT,
        )
        .await;
    assert_warning_explains(
        &ev,
        "ChaosContainerWatchNotPermitted",
        "Experiment Job creation failed, skipping Chaos Experiment: pod-delete",
    );
    assert_warning_explains(
        &ev,
        "ExperimentPodFailed",
        &e.status.as_ref().unwrap().experiments[0].message,
    );

    let e = completed(&env, "stuck").await;
    assert_eq!(entry(&e, 0).1, "Skipped");
    // Under load the Job controller may not even have created the pod within 3 s; either way the
    // experiment ends on STATUS_CHECK_TIMEOUT with a message that says so.
    let message = &e.status.as_ref().unwrap().experiments[0].message;
    assert!(
        message.contains("stayed Pending longer than STATUS_CHECK_TIMEOUT (3s)")
            || message.contains("no experiment pod appeared within STATUS_CHECK_TIMEOUT (3s)"),
        "{message}"
    );
    let ev = env
        .wait_event("stuck", all_reasons(&["ExperimentPodPendingTimeout"]), WAIT)
        .await;
    assert_warning_explains(&ev, "ExperimentPodPendingTimeout", message);
    env.cleanup().await;
}

#[tokio::test]
async fn overall_deadline_ends_a_hung_experiment_and_deletes_its_job() {
    let env = setup("deadline", &["pod-delete"]).await;
    let _fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::never_finish()),
    );
    let plan = PlanConfig {
        experiment_deadline: Duration::from_secs(4),
        ..PlanConfig::default()
    };
    let _ctrl = InProcessController::start_with(env.client(), env.ns(), plan);
    env.create(&engine("hung").experiment("pod-delete").build())
        .await;
    let e = completed(&env, "hung").await;
    assert!(
        e.status.as_ref().unwrap().experiments[0]
            .message
            .contains("did not finish within the deadline of 4s")
    );
    let ev = env
        .wait_event("hung", all_reasons(&["ExperimentTimeout"]), WAIT)
        .await;
    assert_warning_explains(
        &ev,
        "ExperimentTimeout",
        &e.status.as_ref().unwrap().experiments[0].message,
    );
    wait_no_jobs(&env, "hung Job deleted").await;
    env.cleanup().await;
}

#[tokio::test]
async fn rerun_through_engine_state_active_starts_a_fresh_run() {
    let env = setup("rerun", &["pod-delete"]).await;
    let fake = FakeExperiment::start(env.client(), env.ns(), Behaviour::pass());
    let _ctrl = InProcessController::start(env.client(), env.ns());
    env.create(&engine("again").experiment("pod-delete").build())
        .await;
    // The controller writes `completed` and then `engineState: stop` (two writes on our CRD, see
    // docs/litmus-compatibility.md): `active` sent in between is a no-op that the stop then
    // overwrites, so a re-run waits for `stop`, as a user must.
    let first = wait_engine(&env, "again", "engine completed and stopped", |e| {
        engine_status(e) == "completed" && e.spec.engine_state.as_deref() == Some("stop")
    })
    .await;
    let first_job = first.status.as_ref().unwrap().experiments[0]
        .job_name
        .clone();
    env.engines()
        .patch(
            "again",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"engineState": "active"}})),
        )
        .await
        .unwrap();
    let second = wait_engine(&env, "again", "second run completed", |e| {
        engine_status(e) == "completed"
            && e.status
                .as_ref()
                .is_some_and(|s| s.experiments[0].job_name != first_job)
    })
    .await;
    let st = second.status.unwrap();
    assert_eq!(st.experiments.len(), 1, "no duplicate status entry");
    assert_eq!(st.experiments[0].verdict, "Pass");
    assert_ne!(st.run_id, first.status.unwrap().run_id);
    assert_eq!(fake.seen().len(), 2);
    let result = env.results().get("again-pod-delete").await.unwrap();
    assert_eq!(
        result.status.unwrap().history.unwrap().passed_runs,
        2,
        "history accumulates across runs"
    );
    env.cleanup().await;
}

#[tokio::test]
async fn killed_controller_resumes_and_adopts_the_same_job() {
    let env = setup("sigkill", &["pod-delete"]).await;
    let fake = FakeExperiment::start(
        env.client(),
        env.ns(),
        Behaviour::all(ExperimentBehaviour::pass().run_time(Duration::from_secs(6))),
    );
    let ctrl = ControllerProcess::start(env.ns(), &format!("{}-first", env.ns()), &[]);
    env.create(&engine("resume").experiment("pod-delete").build())
        .await;
    let running = wait_engine(&env, "resume", "experiment running", |e| {
        e.status
            .as_ref()
            .and_then(|s| s.experiments.first())
            .is_some_and(|x| x.status == "Running")
    })
    .await;
    let job_name = running.status.as_ref().unwrap().experiments[0]
        .job_name
        .clone();
    ctrl.kill();
    let ctrl = ControllerProcess::start(env.ns(), &format!("{}-second", env.ns()), &[]);
    let e = completed(&env, "resume").await;
    let st = e.status.as_ref().unwrap();
    assert_eq!(st.experiments.len(), 1);
    assert_eq!(st.experiments[0].job_name, job_name, "the same Job");
    assert_eq!(st.experiments[0].verdict, "Pass");
    let jobs = jobs_in(&env).await;
    assert_eq!(jobs.len(), 1, "no second Job");
    assert_eq!(fake.seen().len(), 1, "the experiment ran once");
    let completions = env
        .wait_event("resume", all_reasons(&["ChaosEngineCompleted"]), WAIT)
        .await
        .into_iter()
        .filter(|x| x.reason == "ChaosEngineCompleted")
        .map(|x| x.count)
        .sum::<i32>();
    assert_eq!(completions, 1, "exactly one verdict");
    env.cleanup().await;
    ctrl.kill();
}
