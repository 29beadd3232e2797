//! Builders shared by the pure core's unit tests (src/engine/plan/tests/, src/engine/job_tests.rs):
//! an engine, its experiment, pods, results, and the shell's persisting of a decision.
use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStatus, Pod,
    PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::json;

use crate::api::*;
use crate::engine::Decision;
use crate::engine::decision::{Effect, EventType};
use crate::engine::plan::{Observed, PlanConfig, plan};

pub(crate) const UID: &str = "6e76bd74-0000-4000-8000-000000000001";

pub(crate) fn now() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

pub(crate) fn later(secs: i64) -> Timestamp {
    now().checked_add(SignedDuration::from_secs(secs)).unwrap()
}

pub(crate) fn engine_yaml(extra_spec: serde_json::Value) -> ChaosEngine {
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

pub(crate) fn engine() -> ChaosEngine {
    engine_yaml(json!({}))
}

pub(crate) fn experiment(name: &str) -> ChaosExperiment {
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

pub(crate) fn observed_all_present(names: &[&str]) -> Observed {
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
pub(crate) fn persisted(mut e: ChaosEngine, d: &Decision) -> ChaosEngine {
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

/// How an experiment entry ended, as the tests compare it: (status, verdict, phase).
pub(crate) fn ended(e: &ExperimentStatus) -> (&str, &str, &str) {
    (e.status.as_str(), e.verdict.as_str(), e.phase.as_str())
}

/// How an entry that never had a pod ended: (status, verdict, experimentPod).
pub(crate) fn ended_without_pod(e: &ExperimentStatus) -> (&str, &str, &str) {
    (
        e.status.as_str(),
        e.verdict.as_str(),
        e.experiment_pod.as_str(),
    )
}

pub(crate) fn reasons(d: &Decision) -> Vec<(String, EventType)> {
    d.events()
        .map(|e| (e.reason.clone(), e.event_type))
        .collect()
}

pub(crate) fn created_job(d: &Decision) -> Job {
    d.effects()
        .find_map(|e| match e {
            Effect::CreateJob(j) => Some((**j).clone()),
            _ => None,
        })
        .expect("a CreateJob effect")
}

pub(crate) fn pod(job: &str, phase: &str, main: Option<ContainerState>) -> Pod {
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

pub(crate) fn running() -> ContainerState {
    ContainerState {
        running: Some(ContainerStateRunning {
            started_at: Some(Time(now())),
        }),
        ..Default::default()
    }
}

pub(crate) fn terminated(code: i32, reason: &str) -> ContainerState {
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

pub(crate) fn result(job: &str, verdict: &str, phase: &str) -> ChaosResult {
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

pub(crate) fn job_obj(name: &str) -> Job {
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("litmus".into()),
            uid: Some(format!("uid-{name}")),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Runs an engine to the point where its single experiment's Job was created and persisted.
pub(crate) fn launched() -> (ChaosEngine, String) {
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

pub(crate) fn cfg() -> PlanConfig {
    PlanConfig::default()
}

/// Runs the engine's current experiments to Pass (as the shell + a passing experiment would).
pub(crate) fn pass_all_running(e: &ChaosEngine, at: Timestamp) -> Decision {
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

/// The engine after its experiment pod was seen Running (status persisted).
pub(crate) fn running_engine() -> (ChaosEngine, String) {
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

/// A small engine for the shell's gates in front of a launch (src/controller/halt/,
/// src/controller/author.rs): one experiment, our finalizer, no status, no annotations.
pub(crate) fn gate_engine() -> ChaosEngine {
    let mut e = ChaosEngine::new(
        "e",
        ChaosEngineSpec {
            chaos_service_account: Some("sa".into()),
            experiments: vec![ExperimentList {
                name: "pod-delete".into(),
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    e.metadata.namespace = Some("ns".into());
    e.metadata.uid = Some("uid-1".into());
    e.metadata.generation = Some(1);
    e.metadata.finalizers = Some(vec![FINALIZER.into()]);
    e
}

/// The reasons of the Events a decision owes (`status.pendingEvents`), in order.
pub(crate) fn owed_reasons(d: &Decision) -> Vec<String> {
    d.status
        .pending_events
        .iter()
        .map(|e| e.reason.clone())
        .collect()
}
