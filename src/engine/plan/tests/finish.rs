//! Verdicts, Job cleanup, completion and the status outbox (plan/finish.rs, plan/mod.rs).

use serde_json::json;

use crate::api::*;
use crate::engine::decision::Effect;
use crate::engine::fixtures::*;
use crate::engine::plan::{Observed, plan, summary_verdict};

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
