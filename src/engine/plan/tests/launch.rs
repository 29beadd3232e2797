//! Validating and launching one experiment, and the launch's crash windows (plan/launch.rs).
use std::collections::BTreeMap;

use serde_json::json;

use crate::api::*;
use crate::engine::decision::{Effect, EventSource, EventType};
use crate::engine::fixtures::*;
use crate::engine::plan::{Observed, lookups, plan};

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
        ended_without_pod(entry),
        ("ChaosExperiment Not Found", "Fail", "N/A")
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
            ended_without_pod(entry),
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
    assert_eq!(ended(entry), ("Skipped", "Fail", "Failed"));
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
