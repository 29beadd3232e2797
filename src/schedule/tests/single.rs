//! `now` and `once` schedules: one engine named after the schedule, run once.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::{Sim, spec, ts};

#[test]
fn now_runs_one_engine_and_completes_once_it_finishes() {
    let mut sim = Sim::new(
        "sched",
        spec(json!({"now": true})),
        "2024-06-20T08:00:00Z",
        30,
    );
    sim.run_until("2024-06-20T09:00:00Z");
    assert_eq!(
        sim.created,
        [("sched".to_string(), ts("2024-06-20T08:00:00Z"))]
    );
    assert_eq!(sim.status(), "completed");
    assert_eq!(
        sim.schedule.spec.schedule_state.as_deref(),
        Some("complete")
    );
    let status = sim.schedule.status.clone().unwrap();
    assert!(status.active.is_empty());
    assert_eq!(status.schedule.as_ref().unwrap().run_instances, None);
    assert_eq!(
        status.last_schedule_time,
        Some(Time(ts("2024-06-20T08:00:00Z")))
    );
    let reasons: Vec<&str> = sim
        .events
        .iter()
        .map(|(_, e)| e.split(' ').next().unwrap())
        .collect();
    assert_eq!(reasons, ["SuccessfulCreate", "SawCompletedEngine"]);
    // Deleting the completed engine and reactivating does not run it again.
    sim.children.clear();
    sim.set_state("active", "2024-06-20T09:30:00Z");
    sim.run_until("2024-06-20T10:00:00Z");
    assert_eq!(sim.created.len(), 1);
    assert_eq!(sim.status(), "completed");
}

#[test]
fn once_waits_for_its_time_and_past_times_run_at_once() {
    let mut sim = Sim::new(
        "once",
        spec(json!({"once": {"executionTime": "2024-06-20T08:02:00Z"}})),
        "2024-06-20T08:00:00Z",
        30,
    );
    let first = sim.step();
    assert!(first.create.is_none());
    assert_eq!(first.wake_at, Some(ts("2024-06-20T08:02:00Z")));
    assert_eq!(
        first.status.schedule.unwrap().expected_next_run_time,
        Some(Time(ts("2024-06-20T08:02:00Z")))
    );
    sim.run_until("2024-06-20T09:00:00Z");
    assert_eq!(
        sim.created,
        [("once".to_string(), ts("2024-06-20T08:02:00Z"))]
    );
    assert_eq!(sim.status(), "completed");

    let mut past = Sim::new(
        "past",
        spec(json!({"once": {"executionTime": "2024-06-20T07:00:00Z"}})),
        "2024-06-20T08:00:00Z",
        30,
    );
    past.step();
    assert_eq!(past.created.len(), 1);

    // Halted before its time, resumed after it: runs at the resume.
    let mut halted = Sim::new(
        "halted",
        spec(json!({"once": {"executionTime": "2024-06-20T08:02:00Z"}})),
        "2024-06-20T08:00:00Z",
        30,
    );
    halted.step();
    halted.set_state("halt", "2024-06-20T08:01:00Z");
    halted.run_until("2024-06-20T08:05:00Z");
    assert!(halted.created.is_empty());
    assert_eq!(halted.status(), "halted");
    halted.set_state("active", "2024-06-20T08:05:00Z");
    halted.run_until("2024-06-20T08:05:00Z");
    assert_eq!(
        halted.created,
        [("halted".to_string(), ts("2024-06-20T08:05:00Z"))]
    );
}
