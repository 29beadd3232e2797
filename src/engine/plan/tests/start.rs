//! Starting a run: lookups, initialization, the finalizer, engine rules, re-runs (plan/start.rs).

use serde_json::json;

use crate::engine::decision::{Effect, EventType};
use crate::engine::fixtures::*;
use crate::engine::plan::{Observed, lookups, plan};

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
            grace_seconds: None,
            jobs: Vec::new(),
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
