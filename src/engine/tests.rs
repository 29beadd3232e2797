//! Table-style tests of the pure core: every transition of `plan`, Job rendering, env precedence,
//! volume merging and TARGETS, with no cluster.
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, EnvVar, Pod,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use serde_json::json;

use super::decision::{Effect, EventSource, EventType};
use super::job::{self, JobIdentity, merge_env, merge_volume_sources, render_job, targets};
use super::plan::{Observed, PlanConfig, lookups, plan, settle_result, summary_verdict};
use crate::api::*;

const UID: &str = "6e76bd74-0000-4000-8000-000000000001";

fn now() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn later(secs: i64) -> Timestamp {
    now().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

fn engine_yaml(extra_spec: serde_json::Value) -> ChaosEngine {
    let mut spec = json!({
        "engineState": "active",
        "chaosServiceAccount": "pod-delete-sa",
        "appinfo": {"appns": "default", "applabel": "app=nginx", "appkind": "deployment"},
        "experiments": [{"name": "pod-delete", "spec": {"components": {"env": [
            {"name": "TOTAL_CHAOS_DURATION", "value": "30"}
        ]}}}]
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosEngine",
        "metadata": {"name": "nginx-chaos", "namespace": "litmus", "uid": UID, "generation": 3,
                     "labels": {"context": "demo", "chaosUID": "schedule-uid"},
                     "finalizers": [FINALIZER]},
        "spec": spec
    }))
    .unwrap()
}

fn engine() -> ChaosEngine {
    engine_yaml(json!({}))
}

fn experiment(name: &str) -> ChaosExperiment {
    serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosExperiment",
        "metadata": {"name": name, "namespace": "litmus"},
        "spec": {"definition": {
            "image": "litmuschaos/go-runner:3.x",
            "command": ["/bin/bash"],
            "args": ["-c", format!("./experiments -name {name}")],
            "imagePullPolicy": "Always",
            "env": [
                {"name": "TOTAL_CHAOS_DURATION", "value": "15"},
                {"name": "DEFAULT_HEALTH_CHECK", "value": "false"},
                {"name": "CHAOS_INTERVAL", "value": "5"}
            ],
            "labels": {"name": name, "app.kubernetes.io/part-of": "litmus", "chaosUID": "bogus"},
            "configMaps": [{"name": "exp-config", "mountPath": "/mnt/config"}],
            "secrets": [{"name": "cloud-secret", "mountPath": "/etc/cloud"}]
        }}
    }))
    .unwrap()
}

fn observed_all_present(names: &[&str]) -> Observed {
    Observed {
        experiments: names
            .iter()
            .map(|n| (n.to_string(), Some(experiment(n))))
            .collect(),
        service_account_exists: Some(true),
        ..Default::default()
    }
}

/// Applies a decision's status to the engine, as the shell would.
fn persisted(mut e: ChaosEngine, d: &super::Decision) -> ChaosEngine {
    e.status = Some(d.status.clone());
    for effect in d.effects() {
        if let Effect::StopEngine { clear_abort } = effect {
            e.spec.engine_state = Some("stop".into());
            if *clear_abort && let Some(a) = e.metadata.annotations.as_mut() {
                a.remove(ABORT_ANNOTATION);
            }
        }
    }
    e
}

fn reasons(d: &super::Decision) -> Vec<(String, EventType)> {
    d.events()
        .map(|e| (e.reason.clone(), e.event_type))
        .collect()
}

fn created_job(d: &super::Decision) -> Job {
    d.effects()
        .find_map(|e| match e {
            Effect::CreateJob(j) => Some((**j).clone()),
            _ => None,
        })
        .expect("a CreateJob effect")
}

fn pod(job: &str, phase: &str, main: Option<ContainerState>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{job}-abcde")),
            namespace: Some("litmus".into()),
            labels: Some(BTreeMap::from([
                ("job-name".to_string(), job.to_string()),
                ("chaosUID".to_string(), UID.to_string()),
            ])),
            creation_timestamp: Some(Time(now())),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            container_statuses: main.map(|state| {
                vec![ContainerStatus {
                    name: job.into(),
                    state: Some(state),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    }
}

fn running() -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(Time(now())),
        }),
        ..Default::default()
    }
}

fn terminated(code: i32, reason: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            reason: Some(reason.into()),
            finished_at: Some(Time(now())),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn result(job: &str, verdict: &str, phase: &str) -> ChaosResult {
    serde_json::from_value(json!({
        "apiVersion": "litmuschaos.io/v1alpha1",
        "kind": "ChaosResult",
        "metadata": {"name": "nginx-chaos-pod-delete", "namespace": "litmus",
                     "labels": {"chaosUID": UID, "job-name": job}},
        "spec": {"engine": "nginx-chaos", "experiment": "pod-delete"},
        "status": {"experimentStatus": {"phase": phase, "verdict": verdict}}
    }))
    .unwrap()
}

fn job_obj(name: &str) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("litmus".into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Runs an engine to the point where its single experiment's Job was created and persisted.
fn launched() -> (ChaosEngine, String) {
    let e = engine();
    let d = plan(
        &e,
        &observed_all_present(&["pod-delete"]),
        now(),
        &PlanConfig::default(),
    );
    let job = created_job(&d).metadata.name.unwrap();
    (persisted(e, &d), job)
}

fn cfg() -> PlanConfig {
    PlanConfig::default()
}

#[test]
fn new_engine_asks_for_its_experiment_and_service_account() {
    let l = lookups(&engine(), now());
    assert_eq!(l.experiments, vec!["pod-delete".to_string()]);
    assert_eq!(l.service_account.as_deref(), Some("pod-delete-sa"));
}

#[test]
fn new_engine_is_initialized_validated_and_launched_in_one_pass() {
    let e = engine();
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    assert_eq!(d.status.engine_status, "initialized");
    assert_eq!(d.status.run_id, Some(3));
    let entry = &d.status.experiments[0];
    assert_eq!(entry.name, "pod-delete");
    assert_eq!(entry.runner, "nginx-chaos-runner");
    assert_eq!(entry.experiment_pod, "Yet to be launched");
    assert_eq!(entry.status, "Waiting for Job Creation");
    assert_eq!(entry.verdict, "N/A");
    assert_eq!(entry.phase, "Launched");
    let job = created_job(&d);
    let name = job.metadata.name.clone().unwrap();
    assert_eq!(entry.job_name, name);
    assert!(name.starts_with("pod-delete-") && name.len() == "pod-delete-".len() + 6);
    assert!(
        name["pod-delete-".len()..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    );
    assert_eq!(
        reasons(&d),
        vec![
            ("ChaosEngineInitialized".into(), EventType::Normal),
            ("ExperimentDependencyCheck".into(), EventType::Normal),
            ("ExperimentJobCreate".into(), EventType::Normal),
        ]
    );
    let msgs: Vec<String> = d.events().map(|e| e.message.clone()).collect();
    assert_eq!(
        msgs[0],
        "Identifying app under test & launching nginx-chaos-runner"
    );
    assert_eq!(
        msgs[1],
        "Experiment resources validated for Chaos Experiment: pod-delete"
    );
    assert_eq!(
        msgs[2],
        format!("Experiment Job {name} for Chaos Experiment: pod-delete")
    );
    assert!(
        d.requeue_after.is_some(),
        "the experiment deadline is a requeue"
    );
}

#[test]
fn finalizer_is_added_when_missing() {
    let mut e = engine();
    e.metadata.finalizers = None;
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    assert_eq!(d.before_status.first(), Some(&Effect::AddFinalizer));
    let with = plan(
        &engine(),
        &observed_all_present(&["pod-delete"]),
        now(),
        &cfg(),
    );
    assert!(!with.effects().any(|e| *e == Effect::AddFinalizer));
}

#[test]
fn launched_but_status_not_written_recreates_the_same_job_name() {
    // A crash after CreateJob and before the status write: the next pass plans from the old status.
    let e = engine();
    let first = created_job(&plan(
        &e,
        &observed_all_present(&["pod-delete"]),
        now(),
        &cfg(),
    ));
    let again = created_job(&plan(
        &e,
        &observed_all_present(&["pod-delete"]),
        later(30),
        &cfg(),
    ));
    assert_eq!(first.metadata.name, again.metadata.name);
    assert_eq!(first, again, "the rendered Job does not depend on time");
}

#[test]
fn already_launched_does_not_create_a_second_job() {
    let (e, job) = launched();
    let mut o = Observed {
        jobs: vec![job_obj(&job)],
        ..Default::default()
    };
    o.pods.push(pod(&job, "Pending", None));
    let d = plan(&e, &o, later(5), &cfg());
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
    assert_eq!(
        d.status,
        e.status.clone().unwrap(),
        "nothing changed, nothing to write"
    );
}

#[test]
fn missing_experiment_is_reported_and_engine_completes() {
    let e = engine();
    let o = Observed {
        experiments: BTreeMap::from([("pod-delete".to_string(), None)]),
        service_account_exists: Some(true),
        ..Default::default()
    };
    let d = plan(&e, &o, now(), &cfg());
    let entry = &d.status.experiments[0];
    assert_eq!(
        (
            entry.experiment_pod.as_str(),
            entry.status.as_str(),
            entry.verdict.as_str()
        ),
        ("N/A", "ChaosExperiment Not Found", "Fail")
    );
    assert!(
        entry
            .message
            .contains("ChaosExperiment pod-delete not found in namespace litmus")
    );
    let ev: Vec<_> = d.events().collect();
    assert!(ev.iter().any(|e| e.reason == "ExperimentNotFound"
        && e.event_type == EventType::Warning
        && e.message == "Experiment Job creation failed, skipping Chaos Experiment: pod-delete"
        && e.source
            == EventSource::Runner {
                experiment: "pod-delete".into()
            }));
    assert_eq!(d.status.engine_status, "completed");
    assert_eq!(d.status.verdict, "Fail");
    assert!(
        d.after_status
            .contains(&Effect::StopEngine { clear_abort: false })
    );
    assert!(ev.iter().any(|e| e.reason == "ChaosEngineCompleted"
        && e.message == "ChaosEngine completed, will delete or retain the resources according to jobCleanUpPolicy"));
}

#[test]
fn missing_dependencies_skip_with_the_litmus_event() {
    let cases: Vec<(&str, Observed, &str)> = vec![
        (
            "configmap",
            Observed {
                missing_config_maps: ["exp-config".to_string()].into(),
                ..observed_all_present(&["pod-delete"])
            },
            "ConfigMap exp-config not found in namespace litmus",
        ),
        (
            "secret",
            Observed {
                missing_secrets: ["cloud-secret".to_string()].into(),
                ..observed_all_present(&["pod-delete"])
            },
            "Secret cloud-secret not found in namespace litmus",
        ),
        (
            "service account",
            Observed {
                service_account_exists: Some(false),
                ..observed_all_present(&["pod-delete"])
            },
            "ServiceAccount pod-delete-sa not found in namespace litmus",
        ),
    ];
    for (what, o, msg) in cases {
        let d = plan(&engine(), &o, now(), &cfg());
        let entry = &d.status.experiments[0];
        assert_eq!(
            (
                entry.status.as_str(),
                entry.verdict.as_str(),
                entry.experiment_pod.as_str()
            ),
            ("Skipped", "Fail", "N/A"),
            "{what}"
        );
        assert_eq!(entry.message, msg, "{what}");
        assert!(
            d.events().any(|e| e.reason == "ExperimentDependencyCheck"
                && e.event_type == EventType::Warning
                && e.message
                    == "Experiment Job creation failed, skipping Chaos Experiment: pod-delete"),
            "{what}"
        );
        assert!(
            !d.effects().any(|x| matches!(x, Effect::CreateJob(_))),
            "{what}"
        );
    }
}

#[test]
fn incomplete_engine_configmap_and_missing_sidecar_skip() {
    let e = engine_yaml(
        json!({"experiments": [{"name": "pod-delete", "spec": {"components": {
        "configMaps": [{"name": "x"}]}}}]}),
    );
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    assert_eq!(
        d.status.experiments[0].message,
        "Incomplete Information in ConfigMap, will skip execution"
    );

    let mut e = engine();
    e.metadata.annotations = Some(BTreeMap::from([(
        SIDECAR_ANNOTATION.to_string(),
        "true".to_string(),
    )]));
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    assert!(
        d.events()
            .any(|e| e.reason == "SideCarPatchError" && e.event_type == EventType::Warning)
    );
    assert_eq!(d.status.experiments[0].status, "Skipped");
}

#[test]
fn empty_service_account_skips() {
    let e = engine_yaml(json!({"chaosServiceAccount": ""}));
    assert_eq!(lookups(&e, now()).service_account, None);
    let o = Observed {
        service_account_exists: None,
        ..observed_all_present(&["pod-delete"])
    };
    let d = plan(&e, &o, now(), &cfg());
    assert_eq!(
        d.status.experiments[0].message,
        "spec.chaosServiceAccount must be set"
    );
}

#[test]
fn pod_running_is_written_once() {
    let (e, job) = launched();
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Running", Some(running()))],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    let entry = &d.status.experiments[0];
    assert_eq!(
        (entry.status.as_str(), entry.verdict.as_str()),
        ("Running", "Awaited")
    );
    assert_eq!(entry.experiment_pod, format!("{job}-abcde"));
    assert_eq!(entry.running_at.as_deref(), Some("2026-11-26T12:00:10Z"));
    let e2 = persisted(e, &d);
    let d2 = plan(&e2, &o, later(20), &cfg());
    assert_eq!(
        d2.status,
        e2.status.clone().unwrap(),
        "a second pass changes nothing (no timestamp churn)"
    );
    assert_eq!(d2.events().count(), 0);
}

#[test]
fn verdict_comes_from_the_current_runs_result() {
    let (e, job) = launched();
    let base = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Running", Some(terminated(0, "Completed")))],
        ..Default::default()
    };
    // A result left by an earlier run (other job-name) is not this run's verdict: wait for it.
    let stale = Observed {
        results: vec![result("pod-delete-old000", "Pass", "Completed")],
        ..base.clone()
    };
    let d = plan(&e, &stale, later(10), &cfg());
    assert_eq!(d.status.experiments[0].phase, "Launched");
    assert!(d.requeue_after.is_some());
    // Awaited is not a verdict either.
    let awaited = Observed {
        results: vec![result(&job, "Awaited", "Running")],
        ..base.clone()
    };
    assert_eq!(
        plan(&e, &awaited, later(10), &cfg()).status.experiments[0].phase,
        "Launched"
    );
    for v in ["Pass", "Fail", "Error", "Stopped"] {
        let o = Observed {
            results: vec![result(&job, v, "Completed")],
            ..base.clone()
        };
        let d = plan(&e, &o, later(10), &cfg());
        let entry = &d.status.experiments[0];
        assert_eq!(
            (
                entry.status.as_str(),
                entry.verdict.as_str(),
                entry.phase.as_str()
            ),
            ("Completed", v, "Done")
        );
        assert_eq!(d.status.engine_status, "completed");
        assert_eq!(d.status.verdict, v);
        assert!(d.events().any(|e| e.reason == "ExperimentJobCleanUp"
            && e.message == format!("Experiment Job {job} will be retained")));
        assert!(
            !d.effects().any(|x| matches!(x, Effect::DeleteJob { .. })),
            "retain keeps the Job"
        );
    }
}

#[test]
fn cleanup_policy_delete_deletes_the_job() {
    let e = engine_yaml(json!({"jobCleanUpPolicy": "delete"}));
    let d0 = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    let job = created_job(&d0).metadata.name.unwrap();
    let e = persisted(e, &d0);
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Succeeded", Some(terminated(0, "Completed")))],
        results: vec![result(&job, "Pass", "Completed")],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    // After the status write that records the verdict (the write fences the delete).
    assert!(
        d.after_status
            .contains(&Effect::DeleteJob { name: job.clone() })
    );
    assert!(
        d.events()
            .any(|e| e.message == format!("Experiment Job: {job} will be deleted"))
    );
}

#[test]
fn job_deleted_after_verdict_but_before_status_still_records_the_verdict() {
    let (e, job) = launched();
    let o = Observed {
        results: vec![result(&job, "Pass", "Completed")],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    assert_eq!(d.status.experiments[0].verdict, "Pass");
}

#[test]
fn abnormal_endings_say_why() {
    let (e, job) = launched();
    let timeout_s = 180;
    let cases: Vec<(&str, Observed, Timestamp, &str, &str)> = vec![
        (
            "pod failed",
            Observed {
                jobs: vec![job_obj(&job)],
                pods: vec![pod(&job, "Failed", Some(terminated(1, "Error")))],
                ..Default::default()
            },
            later(10),
            "ExperimentPodFailed",
            "status check failed as chaos pod status is Failed",
        ),
        (
            "pod pending",
            Observed {
                jobs: vec![job_obj(&job)],
                pods: vec![pod(&job, "Pending", None)],
                ..Default::default()
            },
            later(timeout_s + 1),
            "ExperimentPodPendingTimeout",
            "stayed Pending longer than STATUS_CHECK_TIMEOUT (180s)",
        ),
        (
            "no pod",
            Observed {
                jobs: vec![job_obj(&job)],
                ..Default::default()
            },
            later(timeout_s + 1),
            "ExperimentPodPendingTimeout",
            "no experiment pod appeared",
        ),
        (
            "deadline",
            Observed {
                jobs: vec![job_obj(&job)],
                pods: vec![pod(&job, "Running", Some(running()))],
                ..Default::default()
            },
            later(3600),
            "ExperimentTimeout",
            "did not finish within the deadline of 3600s",
        ),
    ];
    for (what, o, at, reason, text) in cases {
        let d = plan(&e, &o, at, &cfg());
        let entry = &d.status.experiments[0];
        assert_eq!(
            (
                entry.status.as_str(),
                entry.verdict.as_str(),
                entry.phase.as_str()
            ),
            ("Skipped", "Fail", "Failed"),
            "{what}"
        );
        assert!(entry.message.contains(text), "{what}: {}", entry.message);
        assert!(
            d.events()
                .any(|e| e.reason == "ChaosContainerWatchNotPermitted"
                    && e.event_type == EventType::Warning),
            "{what}"
        );
        assert!(
            d.events()
                .any(|e| e.reason == reason && e.message.contains(text)),
            "{what}"
        );
        assert_eq!(d.status.engine_status, "completed", "{what}");
    }
    // Before the pending deadline the pass only waits, and says when to look again.
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Pending", None)],
        ..Default::default()
    };
    let d = plan(&e, &o, later(60), &cfg());
    assert_eq!(d.status.experiments[0].phase, "Launched");
    assert_eq!(d.requeue_after, Some(Duration::from_secs(120)));
}

#[test]
fn injected_sidecar_does_not_hide_completion() {
    let (e, job) = launched();
    let mut p = pod(&job, "Running", Some(terminated(0, "Completed")));
    if let Some(cs) = p
        .status
        .as_mut()
        .and_then(|s| s.container_statuses.as_mut())
    {
        cs.push(ContainerStatus {
            name: "istio-proxy".into(),
            state: Some(running()),
            ..Default::default()
        });
    }
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![p],
        results: vec![result(&job, "Pass", "Completed")],
        ..Default::default()
    };
    assert_eq!(
        plan(&e, &o, later(10), &cfg()).status.experiments[0].verdict,
        "Pass"
    );
}

#[test]
fn missing_verdict_ends_with_error_after_the_grace() {
    let (e, job) = launched();
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Succeeded", Some(terminated(0, "Completed")))],
        ..Default::default()
    };
    let d = plan(&e, &o, later(61), &cfg());
    let entry = &d.status.experiments[0];
    assert_eq!(
        (entry.status.as_str(), entry.verdict.as_str()),
        ("Completed", "Error")
    );
    assert!(d.events().any(|e| e.reason == "ExperimentVerdictMissing"));
}

#[test]
fn two_experiments_run_in_sequence() {
    let e =
        engine_yaml(json!({"experiments": [{"name": "pod-delete"}, {"name": "container-kill"}]}));
    let o = observed_all_present(&["pod-delete", "container-kill"]);
    let d = plan(&e, &o, now(), &cfg());
    assert_eq!(
        d.effects()
            .filter(|x| matches!(x, Effect::CreateJob(_)))
            .count(),
        1
    );
    assert_eq!(d.status.experiments[1].phase, "Pending");
    let job = d.status.experiments[0].job_name.clone();
    let e = persisted(e, &d);
    assert!(
        lookups(&e, now()).experiments.is_empty(),
        "the second waits for the first"
    );
    let o2 = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Succeeded", Some(terminated(0, "Completed")))],
        results: vec![result(&job, "Pass", "Completed")],
        ..observed_all_present(&["container-kill"])
    };
    let d = plan(&e, &o2, later(30), &cfg());
    assert_eq!(d.status.experiments[0].verdict, "Pass");
    assert_eq!(d.status.experiments[1].phase, "Launched");
    assert!(
        created_job(&d)
            .metadata
            .name
            .unwrap()
            .starts_with("container-kill-")
    );
    assert_eq!(d.status.engine_status, "initialized");
}

#[test]
fn skipped_experiment_lets_the_next_one_start_in_the_same_pass() {
    let e = engine_yaml(json!({"experiments": [{"name": "missing"}, {"name": "pod-delete"}]}));
    let mut o = observed_all_present(&["pod-delete"]);
    o.experiments.insert("missing".into(), None);
    let d = plan(&e, &o, now(), &cfg());
    assert_eq!(d.status.experiments[0].status, "ChaosExperiment Not Found");
    assert_eq!(d.status.experiments[1].phase, "Launched");
}

#[test]
fn stop_while_running_aborts_then_stops() {
    let (mut e, job) = launched();
    e.spec.engine_state = Some("stop".into());
    let running_pod = pod(&job, "Running", Some(running()));
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![running_pod.clone()],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    assert_eq!(
        d.before_status,
        vec![Effect::DeleteChaosResources {
            grace_seconds: None
        }]
    );
    assert_eq!(d.status.phase, "Aborting");
    assert_eq!(d.status.engine_status, "initialized");
    let e = persisted(e, &d);
    // Pods still terminating: wait (a requeue, never a blocking wait).
    let mut terminating = running_pod;
    terminating.metadata.deletion_timestamp = Some(Time(later(10)));
    let o = Observed {
        pods: vec![terminating.clone()],
        ..Default::default()
    };
    let d = plan(&e, &o, later(20), &cfg());
    assert!(d.before_status.is_empty());
    assert_eq!(
        d.requeue_after,
        Some(Duration::from_secs(50)),
        "grace 30s + margin 30s from the abort"
    );
    // Past grace + margin: force-delete and say so.
    let d = plan(&e, &o, later(71), &cfg());
    assert!(d.before_status.iter().any(
        |x| matches!(x, Effect::ForceDeletePods { names } if names == &vec![format!("{job}-abcde")])
    ));
    assert!(d.events().any(|e| e.reason == "ChaosResourcesForceDeleted" && e.event_type == EventType::Warning));
    // Pods gone: results settled, entries aborted, stopped, event.
    let o = Observed {
        results: vec![result(&job, "Awaited", "Running")],
        ..Default::default()
    };
    let d = plan(&e, &o, later(30), &cfg());
    let entry = &d.status.experiments[0];
    assert_eq!(
        (entry.status.as_str(), entry.verdict.as_str()),
        ("Forcefully Aborted", "Stopped")
    );
    assert_eq!(d.status.engine_status, "stopped");
    assert!(
        d.events().any(|e| e.reason == "ChaosEngineStopped"
            && e.message == "Chaos resources deleted successfully")
    );
    let settled = d
        .before_status
        .iter()
        .find_map(|x| match x {
            Effect::ReplaceResult(r) => Some(r.clone()),
            _ => None,
        })
        .unwrap();
    let st = settled.status.unwrap().experiment_status;
    assert_eq!(
        (st.phase.as_str(), st.verdict.as_str()),
        ("Stopped", "Stopped")
    );
    assert!(
        !d.effects().any(|x| *x == Effect::RemoveFinalizer),
        "only a delete removes the finalizer"
    );
    // Stopped and stop: nothing more to do.
    let e = persisted(e, &d);
    let d = plan(&e, &Observed::default(), later(40), &cfg());
    assert!(d.effects().next().is_none());
}

#[test]
fn delete_removes_the_finalizer_last_even_with_nothing_to_delete() {
    let mut e = engine();
    e.metadata.deletion_timestamp = Some(Time(now()));
    let d = plan(&e, &Observed::default(), now(), &cfg());
    assert_eq!(d.after_status.last(), Some(&Effect::RemoveFinalizer));
    assert!(d.events().any(|e| e.reason == "ChaosEngineStopped"));
    assert!(!d.effects().any(|x| *x == Effect::AddFinalizer));
}

#[test]
fn abort_annotation_aborts_and_rests_at_stop() {
    let (mut e, job) = launched();
    e.metadata.annotations = Some(BTreeMap::from([(
        ABORT_ANNOTATION.to_string(),
        "true".to_string(),
    )]));
    // A Job still listed: sweep, then wait for the watch to show it gone.
    let o = Observed {
        jobs: vec![job_obj(&job)],
        ..Default::default()
    };
    let d = plan(&e, &o, later(5), &cfg());
    assert_eq!(d.status.phase, "Aborting");
    let e = persisted(e, &d);
    // Nothing left: settle in the same pass.
    let d = plan(&e, &Observed::default(), later(6), &cfg());
    assert_eq!(d.status.engine_status, "stopped");
    assert!(
        d.after_status
            .contains(&Effect::StopEngine { clear_abort: true })
    );
}

#[test]
fn stop_after_everything_ended_completes_instead_of_aborting() {
    // Crash window: engineState stop was written, completed was not.
    let (e, job) = launched();
    let o = Observed {
        results: vec![result(&job, "Pass", "Completed")],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    let mut e = e;
    e.status = Some(d.status.clone());
    e.status.as_mut().unwrap().engine_status = "initialized".into();
    e.status.as_mut().unwrap().phase = "Running".into();
    e.spec.engine_state = Some("stop".into());
    let d = plan(&e, &Observed::default(), later(11), &cfg());
    assert_eq!(d.status.engine_status, "completed");
    assert!(
        !d.effects()
            .any(|x| matches!(x, Effect::DeleteChaosResources { .. }))
    );
}

#[test]
fn rerun_after_completion_starts_a_fresh_run() {
    let (e, job) = launched();
    let o = Observed {
        results: vec![result(&job, "Pass", "Completed")],
        ..Default::default()
    };
    let e = persisted(e.clone(), &plan(&e, &o, later(10), &cfg()));
    assert_eq!(e.status.as_ref().unwrap().engine_status, "completed");
    let mut e = e;
    e.spec.engine_state = Some("active".into());
    e.metadata.generation = Some(7);
    let d = plan(&e, &Observed::default(), later(20), &cfg());
    assert_eq!(
        d.before_status,
        vec![Effect::DeleteChaosResources {
            grace_seconds: None
        }]
    );
    assert_eq!(d.status.engine_status, "initialized");
    assert_eq!(d.status.run_id, Some(7));
    assert_eq!(d.status.experiments[0].status, "Waiting for Job Creation");
    assert!(d.events().any(|e| e.reason == "ChaosEngineInitialized"));
    assert!(
        !d.events().any(|e| e.reason == "RestartInProgress"),
        "Litmus says RestartInProgress only after an abort"
    );
    let e = persisted(e, &d);
    let d = plan(
        &e,
        &observed_all_present(&["pod-delete"]),
        later(21),
        &cfg(),
    );
    let new_job = created_job(&d).metadata.name.unwrap();
    assert_ne!(new_job, job, "a new run gets a new Job");
}

#[test]
fn invalid_engine_stops_with_a_reason() {
    let e = engine_yaml(json!({"appinfo": {"appns": "default", "appkind": "deployment"}}));
    let d = plan(&e, &Observed::default(), now(), &cfg());
    assert_eq!(d.status.engine_status, "stopped");
    assert_eq!(d.status.phase, "Invalid");
    assert_eq!(
        d.status.message,
        "incomplete appinfo, provide appkind and applabel both"
    );
    assert!(
        d.before_status
            .contains(&Effect::StopEngine { clear_abort: false })
    );
    assert!(
        d.events()
            .any(|e| e.reason == "ChaosEngineInvalid" && e.event_type == EventType::Warning)
    );
    let dup = engine_yaml(json!({"experiments": [{"name": "a"}, {"name": "a"}]}));
    assert!(
        plan(&dup, &Observed::default(), now(), &cfg())
            .status
            .message
            .contains("listed twice")
    );
}

#[test]
fn parallel_respects_its_limit_and_graph_skips_failed_dependencies() {
    let e = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"mode": "parallel", "maxParallel": 2}
    }));
    let d = plan(&e, &observed_all_present(&["a", "b", "c"]), now(), &cfg());
    assert_eq!(
        d.effects()
            .filter(|x| matches!(x, Effect::CreateJob(_)))
            .count(),
        2
    );

    let g = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"mode": "graph", "dependsOn": {"b": ["a"], "c": ["a"]}, "requirePass": true}
    }));
    let d = plan(&g, &observed_all_present(&["a", "b", "c"]), now(), &cfg());
    assert_eq!(
        d.effects()
            .filter(|x| matches!(x, Effect::CreateJob(_)))
            .count(),
        1
    );
    let job = d.status.experiments[0].job_name.clone();
    let g = persisted(g, &d);
    let mut r = result(&job, "Fail", "Completed");
    r.metadata.name = Some("nginx-chaos-a".into());
    let o = Observed {
        results: vec![r],
        ..Default::default()
    };
    let d = plan(&g, &o, later(10), &cfg());
    assert_eq!(d.status.experiments[1].status, "Skipped");
    assert!(
        d.status.experiments[2]
            .message
            .contains("dependency a did not pass")
    );
    assert_eq!(d.status.engine_status, "completed");

    let cyclic = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}],
        "execution": {"mode": "graph", "dependsOn": {"a": ["b"], "b": ["a"]}}
    }));
    let d = plan(&cyclic, &Observed::default(), now(), &cfg());
    assert_eq!(d.status.phase, "Invalid");
    assert!(d.status.message.contains("dependency cycle"));
}

#[test]
fn rendered_job_follows_litmus() {
    let e = engine_yaml(json!({
        "terminationGracePeriodSeconds": 60,
        "jobCleanUpPolicy": "retain",
        "experiments": [{"name": "pod-delete", "spec": {"components": {
            "env": [{"name": "TOTAL_CHAOS_DURATION", "value": "30"}, {"name": "STATUS_CHECK_TIMEOUT", "value": "5"}],
            "experimentAnnotations": {"sidecar.istio.io/inject": "false"},
            "experimentImage": "my/go-runner:1",
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "statusCheckTimeouts": {"timeout": 300},
            "configMaps": [{"name": "exp-config", "mountPath": "/mnt/other"}, {"name": "more", "mountPath": "/mnt/more"}]
        }}}]
    }));
    let exp = experiment("pod-delete");
    let entry = &e.spec.experiments[0];
    let j = render_job(
        &e,
        &exp,
        JobIdentity {
            index: 0,
            run_id: 3,
            iteration: 1,
            entry,
        },
    )
    .unwrap();
    let name = j.metadata.name.clone().unwrap();
    let labels = j.metadata.labels.clone().unwrap();
    assert_eq!(
        labels["chaosUID"], UID,
        "chaosUID is applied after the engine's own chaosUID label"
    );
    assert_eq!(labels["name"], "pod-delete");
    assert_eq!(labels["context"], "demo");
    let owner = &j.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("ChaosEngine", UID, Some(true))
    );
    let spec = j.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    let tpl = spec.template;
    assert_eq!(
        tpl.metadata.unwrap().annotations.unwrap()["sidecar.istio.io/inject"],
        "false"
    );
    let pod = tpl.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some("pod-delete-sa"));
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(pod.termination_grace_period_seconds, Some(60));
    let main = &pod.containers[0];
    assert_eq!(main.name, name, "main container is named like the Job");
    assert_eq!(main.image.as_deref(), Some("my/go-runner:1"));
    let env: BTreeMap<String, Option<String>> = main
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value))
        .collect();
    let v = |k: &str| env.get(k).cloned().flatten();
    assert_eq!(v("CHAOSENGINE").as_deref(), Some("nginx-chaos"));
    assert_eq!(
        v("TARGETS").as_deref(),
        Some("deployment:default:[app=nginx]")
    );
    assert_eq!(v("CHAOS_UID").as_deref(), Some(UID));
    assert_eq!(v("EXPERIMENT_NAME").as_deref(), Some("pod-delete"));
    assert_eq!(
        v("TOTAL_CHAOS_DURATION").as_deref(),
        Some("30"),
        "engine env beats experiment env"
    );
    assert_eq!(
        v("DEFAULT_HEALTH_CHECK").as_deref(),
        Some("false"),
        "experiment env beats runner-derived"
    );
    assert_eq!(
        v("STATUS_CHECK_TIMEOUT").as_deref(),
        Some("300"),
        "forced after user env"
    );
    assert_eq!(v("STATUS_CHECK_DELAY").as_deref(), Some("2"));
    assert_eq!(v("JOB_CLEANUP_POLICY").as_deref(), Some("retain"));
    assert_eq!(v("TERMINATION_GRACE_PERIOD_SECONDS").as_deref(), Some("60"));
    assert_eq!(v("LIB_IMAGE_PULL_POLICY").as_deref(), Some("Always"));
    let pod_name = main.env.as_ref().unwrap().last().unwrap();
    assert_eq!(pod_name.name, "POD_NAME");
    assert_eq!(
        pod_name
            .value_from
            .as_ref()
            .unwrap()
            .field_ref
            .as_ref()
            .unwrap()
            .field_path,
        "metadata.name"
    );
    let mounts: Vec<(String, String)> = main
        .volume_mounts
        .clone()
        .unwrap()
        .into_iter()
        .map(|m| (m.name, m.mount_path))
        .collect();
    assert_eq!(
        mounts,
        vec![
            ("exp-config".into(), "/mnt/other".into()),
            ("more".into(), "/mnt/more".into()),
            ("cloud-secret".into(), "/etc/cloud".into()),
        ]
    );
    assert_eq!(pod.node_selector.unwrap()["kubernetes.io/os"], "linux");
}

#[test]
fn sidecars_get_their_env_and_shared_secret_volumes() {
    let mut e = engine_yaml(json!({"components": {"sidecar": [{
        "image": "fluent/fluent-bit:2.2", "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "secrets": [{"name": "cloud-secret", "mountPath": "/etc/fb"}]
    }]}}));
    e.metadata.annotations = Some(BTreeMap::from([(
        SIDECAR_ANNOTATION.to_string(),
        "true".to_string(),
    )]));
    let entry = &e.spec.experiments[0];
    let j = render_job(
        &e,
        &experiment("pod-delete"),
        JobIdentity {
            index: 0,
            run_id: 1,
            iteration: 1,
            entry,
        },
    )
    .unwrap();
    let pod = j.spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.containers.len(), 2);
    let sc = &pod.containers[1];
    assert!(
        sc.name
            .starts_with(&format!("{}-sidecar-", pod.containers[0].name))
    );
    assert_eq!(sc.image_pull_policy.as_deref(), Some("IfNotPresent"));
    let names: Vec<&str> = sc
        .env
        .as_ref()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        names,
        vec!["LOG_LEVEL", "POD_NAME", "POD_NAMESPACE", "MAIN_CONTAINER"]
    );
    let vols: Vec<&str> = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(
        vols.iter().filter(|v| **v == "cloud-secret").count(),
        1,
        "no duplicate volume names"
    );
}

#[test]
fn targets_follow_litmus_formats() {
    let cases = vec![
        (json!({"appinfo": null}), ""),
        (
            json!({"appinfo": {"applabel": "app=x", "appkind": "deployment"}}),
            "deployment:litmus:[app=x]",
        ),
        (json!({"appinfo": {"appns": "prod"}}), "KIND:prod:[]"),
        (
            json!({"appinfo": null, "selectors": {"workloads": [
            {"kind": "deployment", "namespace": "a", "names": "x,y"},
            {"kind": "statefulset", "namespace": "b", "labels": "app=db"}]}}),
            "deployment:a:[x,y];statefulset:b:[app=db]",
        ),
        (
            json!({"appinfo": null, "selectors": {"pods": [{"namespace": "a", "names": "p1,p2"}]}}),
            "pod:a:[p1,p2]",
        ),
    ];
    for (spec, want) in cases {
        assert_eq!(targets(&engine_yaml(spec.clone())), want, "{spec}");
    }
}

#[test]
fn instance_id_changes_the_result_name() {
    let e = engine_yaml(
        json!({"experiments": [{"name": "pod-delete", "spec": {"components": {"env": [
        {"name": "INSTANCE_ID", "value": "run-7"}]}}}]}),
    );
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    assert_eq!(
        d.status.experiments[0].result_name,
        "nginx-chaos-pod-delete-run-7"
    );
}

#[test]
fn settle_result_folds_every_target_annotation() {
    let mut r = result("j", "Pass", "Completed");
    r.metadata.annotations = Some(BTreeMap::from([
        ("pod/nginx-1".to_string(), "injected".to_string()),
        ("pod/nginx-2".to_string(), "reverted".to_string()),
        ("unrelated".to_string(), "keep".to_string()),
    ]));
    let s = settle_result(&r, UID).unwrap();
    assert_eq!(s.metadata.annotations.unwrap().len(), 1);
    let targets = s.status.unwrap().history.unwrap().targets;
    assert_eq!(targets.len(), 2);
    assert_eq!(targets[0].kind, "pod");
    assert!(settle_result(&r, "another-engine").is_none());
    assert!(
        settle_result(&result("j", "Pass", "Completed"), UID).is_none(),
        "nothing to change"
    );
}

#[test]
fn summary_verdict_is_pass_only_when_all_pass() {
    let entry = |v: &str| ExperimentStatus {
        verdict: v.into(),
        ..Default::default()
    };
    assert_eq!(summary_verdict(&[entry("Pass"), entry("Pass")]), "Pass");
    assert_eq!(summary_verdict(&[entry("Pass"), entry("Fail")]), "Fail");
    assert_eq!(
        summary_verdict(&[entry("Error"), entry("Stopped")]),
        "Error"
    );
    assert_eq!(summary_verdict(&[]), "N/A");
}

fn env_var(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}

proptest! {
    #[test]
    fn env_precedence_holds_for_any_names(
        exp_env in proptest::collection::vec(("[A-Z_]{1,6}", "[a-z0-9]{0,4}"), 0..8),
        eng_env in proptest::collection::vec(("[A-Z_]{1,6}", "[a-z0-9]{0,4}"), 0..8),
    ) {
        let mut exp = experiment("pod-delete");
        exp.spec.definition.env = exp_env.iter().map(|(n, v)| env_var(n, v)).collect();
        let mut e = engine();
        e.spec.experiments[0].spec.components.env = eng_env.iter().map(|(n, v)| env_var(n, v)).collect();
        let merged = merge_env(&e, &exp, &e.spec.experiments[0]);
        let names: Vec<&str> = merged.iter().map(|v| v.name.as_str()).collect();
        let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
        prop_assert_eq!(names.len(), unique.len(), "each name once");
        let get = |n: &str| merged.iter().find(|v| v.name == n).and_then(|v| v.value.clone());
        let forced = ["STATUS_CHECK_DELAY", "STATUS_CHECK_TIMEOUT", "JOB_CLEANUP_POLICY", "POD_NAME"];
        for (n, _) in eng_env.iter().chain(exp_env.iter()) {
            if forced.contains(&n.as_str()) { continue; }
            let want = eng_env.iter().rev().find(|(k, _)| k == n)
                .or_else(|| exp_env.iter().rev().find(|(k, _)| k == n))
                .map(|(_, v)| v.clone());
            prop_assert_eq!(get(n), want, "{}", n);
        }
        prop_assert_eq!(get("STATUS_CHECK_TIMEOUT"), Some("180".to_string()));
        prop_assert_eq!(merged.last().map(|v| v.name.as_str()), Some("POD_NAME"));
    }

    #[test]
    fn volume_merge_keeps_experiment_order_and_engine_wins(
        exp in proptest::collection::btree_map("[a-d]", "/[a-z]{1,3}", 0..4),
        eng in proptest::collection::vec(("[a-f]", "/[a-z]{1,3}"), 0..5),
    ) {
        let exp_v: Vec<VolumeSource> = exp.iter().map(|(n, m)| VolumeSource { name: n.clone(), mount_path: m.clone() }).collect();
        let eng_v: Vec<VolumeSource> = eng.iter().map(|(n, m)| VolumeSource { name: n.clone(), mount_path: m.clone() }).collect();
        let merged = merge_volume_sources(&exp_v, &eng_v);
        // Every experiment entry stays, in its place; the engine's last word on a name wins.
        for (i, v) in exp_v.iter().enumerate() {
            prop_assert_eq!(&merged[i].name, &v.name);
        }
        for v in &merged {
            let want = eng_v.iter().rev().find(|e| e.name == v.name).map(|e| &e.mount_path)
                .or_else(|| exp_v.iter().find(|e| e.name == v.name).map(|e| &e.mount_path));
            prop_assert_eq!(Some(&v.mount_path), want);
        }
        let names: std::collections::BTreeSet<&String> = exp_v.iter().chain(eng_v.iter()).map(|v| &v.name).collect();
        prop_assert!(merged.len() >= names.len());
    }

    #[test]
    fn job_names_are_litmus_shaped_and_deterministic(uid in "[a-f0-9-]{36}", run in 1i64..1000, idx in 0usize..20) {
        let a = job::job_name("pod-delete", &uid, run, idx, 1);
        prop_assert_eq!(&a, &job::job_name("pod-delete", &uid, run, idx, 1));
        let suffix = &a["pod-delete-".len()..];
        prop_assert_eq!(suffix.len(), 6);
        prop_assert!(suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
    }
}

/// Runs the engine's current experiments to Pass (as the shell + a passing experiment would).
fn pass_all_running(e: &ChaosEngine, at: Timestamp) -> super::Decision {
    let st = e.status.clone().unwrap();
    let mut o = Observed::default();
    for x in &st.experiments {
        if x.job_name.is_empty() {
            continue;
        }
        o.jobs.push(job_obj(&x.job_name));
        o.pods.push(pod(
            &x.job_name,
            "Succeeded",
            Some(terminated(0, "Completed")),
        ));
        let mut r = result(&x.job_name, "Pass", "Completed");
        r.metadata.name = Some(x.result_name.clone());
        o.results.push(r);
    }
    plan(e, &o, at, &cfg())
}

#[test]
fn iterations_wait_their_interval_and_replay_with_the_same_seed() {
    let spec = json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"iterations": 2, "minIntervalSeconds": 30, "maxIntervalSeconds": 90, "randomOrder": true, "seed": 7}
    });
    let run = |spec: serde_json::Value| {
        let e = engine_yaml(spec);
        let o = observed_all_present(&["a", "b", "c"]);
        let mut order = Vec::new();
        let d = plan(&e, &o, now(), &cfg());
        assert_eq!(d.status.seed, Some(7));
        assert_eq!(d.status.iteration, Some(1));
        let mut e = persisted(e, &d);
        let mut t = 0;
        // Iteration 1: three experiments one after another, in the seeded order.
        for _ in 0..3 {
            let launched: Vec<String> = e
                .status
                .as_ref()
                .unwrap()
                .experiments
                .iter()
                .filter(|x| x.phase == "Launched")
                .map(|x| x.name.clone())
                .collect();
            order.extend(launched);
            t += 10;
            let d = pass_all_running(&e, later(t));
            let d = if d.effects().any(|x| matches!(x, Effect::CreateJob(_)))
                || d.status.iteration == Some(2)
            {
                d
            } else {
                plan(&persisted(e.clone(), &d), &o, later(t), &cfg())
            };
            e = persisted(e, &d);
            if e.status.as_ref().unwrap().iteration == Some(2) {
                break;
            }
            let d = plan(&e, &o, later(t), &cfg());
            e = persisted(e, &d);
        }
        let st = e.status.clone().unwrap();
        assert_eq!(st.iteration, Some(2));
        assert_eq!(st.runs.len(), 3, "iteration 1 archived");
        let next: Timestamp = st.next_iteration_at.clone().unwrap().parse().unwrap();
        let wait = next.duration_since(later(t)).as_secs();
        assert!(
            (30..=90).contains(&wait),
            "interval {wait}s within [30, 90]"
        );
        // Before the interval nothing launches, and the pass says when to look again.
        let d = plan(&e, &o, later(t + 1), &cfg());
        assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
        assert_eq!(
            d.requeue_after,
            Some(Duration::from_secs((wait - 1) as u64))
        );
        // After it, iteration 2 launches with Job names distinct from iteration 1.
        let d = plan(&e, &o, next, &cfg());
        let job = created_job(&d).metadata.name.unwrap();
        assert!(st.runs.iter().all(|r| r.job_name != job));
        (order, wait)
    };
    let first = run(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"iterations": 2, "minIntervalSeconds": 30, "maxIntervalSeconds": 90, "randomOrder": true, "seed": 7}
    }));
    let again = run(spec);
    assert_eq!(
        first, again,
        "the same seed gives the same order and interval"
    );
}

#[test]
fn a_seed_is_picked_and_recorded_when_none_is_given() {
    let e = engine_yaml(json!({"execution": {"mode": "sequential"}}));
    let d = plan(&e, &observed_all_present(&["pod-delete"]), now(), &cfg());
    assert!(d.status.seed.is_some());
    let plain = plan(
        &engine(),
        &observed_all_present(&["pod-delete"]),
        now(),
        &cfg(),
    );
    assert_eq!(
        plain.status.seed, None,
        "no execution block: Litmus's status, no seed"
    );
    assert_eq!(plain.status.iteration, None);
}

#[test]
fn stop_on_failure_aborts_running_and_cancels_pending() {
    let e = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
        "execution": {"mode": "parallel", "maxParallel": 2, "stopOnFailure": true}
    }));
    let d = plan(&e, &observed_all_present(&["a", "b", "c"]), now(), &cfg());
    let e = persisted(e, &d);
    let st = e.status.clone().unwrap();
    let (ja, jb) = (
        st.experiments[0].job_name.clone(),
        st.experiments[1].job_name.clone(),
    );
    let mut r = result(&ja, "Fail", "Completed");
    r.metadata.name = Some("nginx-chaos-a".into());
    let o = Observed {
        jobs: vec![job_obj(&ja), job_obj(&jb)],
        pods: vec![
            pod(&ja, "Succeeded", Some(terminated(0, "Completed"))),
            pod(&jb, "Running", Some(running())),
        ],
        results: vec![r],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    let s = &d.status.experiments;
    assert_eq!(
        (
            s[0].verdict.as_str(),
            s[1].status.as_str(),
            s[2].status.as_str()
        ),
        ("Fail", "Forcefully Aborted", "Skipped")
    );
    assert!(d.before_status.contains(&Effect::DeleteJob { name: jb }));
    assert_eq!(d.status.engine_status, "completed");
    assert_eq!(d.status.verdict, "Fail");
}

#[test]
fn stop_is_written_after_the_final_status_and_a_missed_stop_is_not_a_rerun() {
    let (e, job) = launched();
    let o = Observed {
        results: vec![result(&job, "Pass", "Completed")],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    assert_eq!(d.status.engine_status, "completed");
    // Never an engine version with `stop` while its experiments still look running.
    assert!(
        !d.before_status
            .iter()
            .any(|x| matches!(x, Effect::StopEngine { .. }))
    );
    assert!(
        d.after_status
            .contains(&Effect::StopEngine { clear_abort: false })
    );
    // The controller died before writing `stop`: the status was stamped with the generation it
    // was written at, the spec did not change since, so only the `stop` is written now.
    let mut e = e;
    e.status = Some(d.status.clone());
    e.status.as_mut().unwrap().observed_generation = e.metadata.generation;
    let d = plan(&e, &Observed::default(), later(20), &cfg());
    assert_eq!(
        d.after_status,
        vec![Effect::StopEngine { clear_abort: false }]
    );
    assert!(d.before_status.is_empty(), "no re-run, no cleanup");
    assert_eq!(d.status.engine_status, "completed");
    // A user's `active` bumps the generation: that is a re-run.
    e.metadata.generation = e.metadata.generation.map(|g| g + 2);
    let d = plan(&e, &Observed::default(), later(30), &cfg());
    assert_eq!(d.status.engine_status, "initialized");
}

/// The engine after its experiment pod was seen Running (status persisted).
fn running_engine() -> (ChaosEngine, String) {
    let (e, job) = launched();
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Running", Some(running()))],
        ..Default::default()
    };
    let d = plan(&e, &o, later(2), &cfg());
    assert_eq!(d.status.experiments[0].phase, "Running");
    (persisted(e, &d), job)
}

#[test]
fn a_job_that_vanished_while_running_fails_the_experiment() {
    let (e, _) = running_engine();
    let d = plan(&e, &Observed::default(), later(10), &cfg());
    let entry = &d.status.experiments[0];
    assert_eq!(
        (
            entry.status.as_str(),
            entry.verdict.as_str(),
            entry.phase.as_str()
        ),
        ("Skipped", "Fail", "Failed")
    );
    assert!(
        entry
            .message
            .contains("disappeared before the experiment finished")
    );
    assert!(d.events().any(|e| e.reason == "ExperimentJobVanished"));
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
}

#[test]
fn the_job_is_created_after_the_status_that_names_it() {
    let d = plan(
        &engine(),
        &observed_all_present(&["pod-delete"]),
        now(),
        &cfg(),
    );
    assert!(
        !d.before_status
            .iter()
            .any(|x| matches!(x, Effect::CreateJob(_)))
    );
    assert!(
        d.after_status
            .iter()
            .any(|x| matches!(x, Effect::CreateJob(_)))
    );
    assert_eq!(d.status.experiments[0].phase, "Launched");
}

#[test]
fn a_recorded_launch_without_its_job_creates_it_without_new_events() {
    // A crash between the status write and the create: the same Job is created, nothing else.
    let (e, job) = launched();
    let d = plan(&e, &observed_all_present(&["pod-delete"]), later(3), &cfg());
    assert_eq!(created_job(&d).metadata.name.as_deref(), Some(job.as_str()));
    assert_eq!(d.status, e.status.clone().unwrap(), "no status change");
    assert_eq!(
        d.events().count(),
        0,
        "its events were owed by the first launch"
    );
    // Without the ChaosExperiment read yet, it asks to be planned again instead of failing.
    let d = plan(&e, &Observed::default(), later(3), &cfg());
    assert!(d.requeue_after.is_some());
    assert_eq!(d.status.experiments[0].phase, "Launched");
}

#[test]
fn a_job_name_in_status_that_this_run_does_not_derive_is_never_created() {
    let (mut e, _) = launched();
    if let Some(s) = e.status.as_mut() {
        s.experiments[0].job_name = "nightly-backup".into();
    }
    let d = plan(&e, &observed_all_present(&["pod-delete"]), later(3), &cfg());
    assert!(
        !d.effects()
            .any(|x| matches!(x, Effect::CreateJob(_) | Effect::DeleteJob { .. }))
    );
    assert_eq!(d.status.experiments[0].phase, "Failed");
    assert_eq!(
        d.status.experiments[0].job_name, "",
        "the foreign name is not kept"
    );
    assert!(d.events().any(|e| e.reason == "ExperimentStatusUntrusted"));
}

#[test]
fn a_job_the_api_server_rejected_ends_the_experiment_and_the_engine_goes_on() {
    let (e, job) = launched();
    let mut o = observed_all_present(&["pod-delete"]);
    o.rejected_jobs.insert(
        job.clone(),
        "Job.batch \"x\" is invalid: spec.template.spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1".into(),
    );
    let d = plan(&e, &o, later(1), &cfg());
    let entry = &d.status.experiments[0];
    assert_eq!(
        (
            entry.status.as_str(),
            entry.verdict.as_str(),
            entry.phase.as_str()
        ),
        ("Skipped", "Fail", "Failed")
    );
    assert!(
        entry
            .message
            .contains("must be less than or equal to cpu limit"),
        "{}",
        entry.message
    );
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
    let rejected = d
        .events()
        .find(|e| e.reason == "ExperimentJobRejected")
        .expect("a Warning with the server's message");
    assert_eq!(rejected.event_type, EventType::Warning);
    assert!(rejected.message.contains("cpu limit"));
    assert_eq!(
        d.status.engine_status, "completed",
        "the engine goes on to its end"
    );
}

#[test]
fn a_result_not_written_for_this_run_is_not_its_verdict() {
    let (e, job) = running_engine();
    let mut stale = result(&job, "Pass", "Completed");
    if let Some(l) = stale.metadata.labels.as_mut() {
        l.remove("job-name");
    }
    let o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Succeeded", Some(terminated(0, "Completed")))],
        results: vec![stale],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    assert_eq!(
        d.status.experiments[0].verdict, "Awaited",
        "still waiting for its verdict"
    );
    let d = plan(&e, &o, later(600), &cfg());
    assert_eq!(d.status.experiments[0].verdict, "Error");
    assert!(d.events().any(|e| e.reason == "ExperimentVerdictMissing"));
}

#[test]
fn a_sequential_engine_looks_up_every_pending_experiment_at_once() {
    let names: Vec<String> = (0..50).map(|i| format!("missing-{i}")).collect();
    let list: Vec<serde_json::Value> = names.iter().map(|n| json!({"name": n})).collect();
    let e = engine_yaml(json!({"experiments": list}));
    let wanted = lookups(&e, now());
    assert_eq!(wanted.experiments, names);
    let o = Observed {
        experiments: names.iter().map(|n| (n.clone(), None)).collect(),
        service_account_exists: Some(true),
        ..Default::default()
    };
    let d = plan(&e, &o, now(), &cfg());
    assert!(
        d.status
            .experiments
            .iter()
            .all(|x| x.status == "ChaosExperiment Not Found")
    );
    assert_eq!(d.status.engine_status, "completed", "decided in one pass");
}

#[test]
fn many_iterations_keep_status_runs_bounded_and_the_verdict_covers_all() {
    let e = engine_yaml(json!({
        "experiments": [{"name": "a"}, {"name": "b"}],
        "execution": {"mode": "parallel", "iterations": 80, "seed": 1}
    }));
    let o = observed_all_present(&["a", "b"]);
    let mut e = persisted(e.clone(), &plan(&e, &o, now(), &cfg()));
    let mut t = 0;
    let mut first_failed = false;
    for _ in 0..400 {
        t += 1;
        let st = e.status.clone().unwrap();
        if st.engine_status == "completed" {
            break;
        }
        // Iteration 1's experiment `a` fails; every other run passes.
        let d = if !first_failed && st.experiments.iter().any(|x| x.phase == "Launched") {
            first_failed = true;
            let x = st.experiments.iter().find(|x| x.name == "a").unwrap();
            let mut obs = Observed::default();
            obs.jobs.push(job_obj(&x.job_name));
            obs.pods
                .push(pod(&x.job_name, "Failed", Some(terminated(1, "Error"))));
            plan(&e, &obs, later(t), &cfg())
        } else if st.experiments.iter().any(|x| x.phase == "Launched") {
            pass_all_running(&e, later(t))
        } else {
            plan(&e, &o, later(t), &cfg())
        };
        e = persisted(e, &d);
    }
    let st = e.status.unwrap();
    assert_eq!(st.engine_status, "completed");
    assert_eq!(st.runs.len(), super::plan::MAX_RUN_RECORDS);
    assert_eq!(st.dropped_runs, Some(160 - 100));
    assert_eq!(
        st.verdict, "Fail",
        "the failure of iteration 1 still counts"
    );
}

#[test]
fn events_are_owed_in_the_status_that_records_their_transition() {
    let d = plan(
        &engine(),
        &observed_all_present(&["pod-delete"]),
        now(),
        &cfg(),
    );
    let owed: Vec<&str> = d
        .status
        .pending_events
        .iter()
        .map(|e| e.reason.as_str())
        .collect();
    let emitted: Vec<String> = d.events().map(|e| e.reason.clone()).collect();
    assert_eq!(
        owed, emitted,
        "every event of the pass is in the outbox, in order"
    );
    let seqs: Vec<u64> = d.status.pending_events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(d.status.event_seq, Some(seqs.len() as u64));
    assert!(d.status.pending_events.iter().all(|e| e.run == 3));
    // Delivered events are dropped by the next write that happens anyway, never by a write of
    // their own; new ones continue the sequence.
    let (e, job) = (
        persisted(engine(), &d),
        created_job(&d).metadata.name.unwrap(),
    );
    let mut o = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Pending", None)],
        events_delivered: Some((3, seqs.len() as u64)),
        ..Default::default()
    };
    let idle = plan(&e, &o, later(1), &cfg());
    assert_eq!(
        idle.status,
        e.status.clone().unwrap(),
        "no write just to drop delivered events"
    );
    o.pods = vec![pod(&job, "Succeeded", Some(terminated(0, "Completed")))];
    o.results = vec![result(&job, "Pass", "Completed")];
    let done = plan(&e, &o, later(5), &cfg());
    let reasons: Vec<&str> = done
        .status
        .pending_events
        .iter()
        .map(|e| e.reason.as_str())
        .collect();
    assert_eq!(reasons, ["ExperimentJobCleanUp", "ChaosEngineCompleted"]);
    assert_eq!(done.status.pending_events[0].seq, seqs.len() as u64 + 1);
}
