//! Aborts: stop, delete, the abort annotation, settling ChaosResults (plan/abort.rs).
use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::*;
use crate::engine::decision::{Effect, EventType, JobRef};
use crate::engine::fixtures::*;
use crate::engine::plan::{Observed, plan, settle_result};

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
    // The first sweep follows the `Aborting` status, whose conditional write fences it.
    assert!(d.before_status.is_empty(), "{:?}", d.before_status);
    assert_eq!(
        d.after_status
            .iter()
            .filter(|x| matches!(x, Effect::DeleteChaosResources { .. }))
            .collect::<Vec<_>>(),
        vec![&Effect::DeleteChaosResources {
            grace_seconds: None,
            jobs: vec![JobRef {
                name: job.clone(),
                uid: format!("uid-{job}"),
            }],
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

/// The sweep names the Jobs it observed; one first seen on a later pass (the cache was behind, or
/// only the live list that ends an abort found it) is swept then, and one already being deleted
/// is not deleted again.
#[test]
fn a_job_first_seen_after_the_first_sweep_is_swept_by_name() {
    let (mut e, job) = launched();
    e.spec.engine_state = Some("stop".into());
    let sweeps = |d: &crate::engine::Decision| -> Vec<Vec<JobRef>> {
        d.effects()
            .filter_map(|x| match x {
                Effect::DeleteChaosResources { jobs, .. } => Some(jobs.clone()),
                _ => None,
            })
            .collect()
    };
    // Its pod is cached, the Job not yet: the first sweep deletes pods by label, names no Job.
    let o = Observed {
        pods: vec![pod(&job, "Running", Some(running()))],
        ..Default::default()
    };
    let d = plan(&e, &o, later(10), &cfg());
    assert_eq!(d.status.phase, "Aborting");
    assert_eq!(sweeps(&d), vec![Vec::<JobRef>::new()]);
    let e = persisted(e, &d);
    // The Job shows up, beside another of ours already marked for deletion.
    let mut gone = job_obj("pod-delete-old");
    gone.metadata.deletion_timestamp = Some(Time(later(10)));
    let o = Observed {
        jobs: vec![gone, job_obj(&job)],
        ..Default::default()
    };
    let d = plan(&e, &o, later(11), &cfg());
    assert_eq!(d.status.phase, "Aborting");
    assert_eq!(
        sweeps(&d),
        vec![vec![JobRef {
            name: job.clone(),
            uid: format!("uid-{job}"),
        }]]
    );
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
