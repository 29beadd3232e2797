//! Monitoring a launched experiment: running, verdicts, abnormal endings (plan/monitor.rs).
use std::time::Duration;

use k8s_openapi::api::core::v1::ContainerStatus;
use k8s_openapi::jiff::Timestamp;

use crate::engine::decision::{Effect, EventType};
use crate::engine::fixtures::*;
use crate::engine::plan::{Observed, plan, verdicts_overdue};

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
        assert_eq!(ended(entry), ("Completed", v, "Done"));
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
        assert_eq!(ended(entry), ("Skipped", "Fail", "Failed"), "{what}");
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
fn a_job_that_vanished_while_running_fails_the_experiment() {
    let (e, _) = running_engine();
    let d = plan(&e, &Observed::default(), later(10), &cfg());
    let entry = &d.status.experiments[0];
    assert_eq!(ended(entry), ("Skipped", "Fail", "Failed"));
    assert!(
        entry
            .message
            .contains("disappeared before the experiment finished")
    );
    assert!(d.events().any(|e| e.reason == "ExperimentJobVanished"));
    assert!(!d.effects().any(|x| matches!(x, Effect::CreateJob(_))));
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
fn an_overdue_verdict_is_named_for_a_live_read_only_after_the_grace() {
    let (e, job) = launched();
    let ended = Observed {
        jobs: vec![job_obj(&job)],
        pods: vec![pod(&job, "Succeeded", Some(terminated(0, "Completed")))],
        ..Default::default()
    };
    let name = e.status.as_ref().unwrap().experiments[0]
        .result_name
        .clone();
    assert!(verdicts_overdue(&e, &ended, later(30), &cfg()).is_empty());
    assert_eq!(verdicts_overdue(&e, &ended, later(61), &cfg()), vec![name]);
    // With this run's verdict observed there is nothing to confirm.
    let with_verdict = Observed {
        results: vec![result(&job, "Pass", "Completed")],
        ..ended.clone()
    };
    assert!(verdicts_overdue(&e, &with_verdict, later(61), &cfg()).is_empty());
    // A running pod owes no verdict yet, however long it runs.
    let running_pod = Observed {
        pods: vec![pod(&job, "Running", Some(running()))],
        ..ended.clone()
    };
    assert!(verdicts_overdue(&e, &running_pod, later(600), &cfg()).is_empty());
}
