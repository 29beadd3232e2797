//! The engines a schedule owns: a deleted running engine, stopped engines, an engine created
//! before a lost status write, concurrency policies, `historyLimit`.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::{Sim, hm, repeat_spec, spec, ts};

#[test]
fn deleted_running_engine_skips_the_missed_tick() {
    // Spec scenario 9: every 2 min, runs of 5 min, the running engine deleted at +3 min.
    let mut sim = Sim::new("d", repeat_spec(2, json!({})), "2024-06-20T08:00:00Z", 300);
    sim.run_until("2024-06-20T08:02:59Z");
    sim.children.clear();
    sim.now = ts("2024-06-20T08:03:00Z");
    sim.run_until("2024-06-20T08:04:00Z");
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| e == "MissingEngine Active engine went missing: d-1718870400")
    );
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Thu 08:00:00", "Thu 08:04:00"]);
    assert!(
        sim.schedule
            .status
            .as_ref()
            .unwrap()
            .last_schedule_completion_time
            .is_some()
    );
}

#[test]
fn stopped_engines_count_as_finished() {
    let mut sim = Sim::new(
        "st",
        repeat_spec(1, json!({})),
        "2024-06-20T08:00:00Z",
        3600,
    );
    sim.run_until("2024-06-20T08:00:30Z");
    sim.children[0].0.engine_status = "stopped".into();
    sim.now = ts("2024-06-20T08:00:40Z");
    sim.run_until("2024-06-20T08:01:00Z");
    assert_eq!(sim.created.len(), 2);
}

#[test]
fn engine_created_before_a_lost_status_write_is_adopted_not_duplicated() {
    let mut sim = Sim::new("c", repeat_spec(5, json!({})), "2024-06-20T08:00:00Z", 600);
    sim.step();
    assert_eq!(sim.created.len(), 1);
    // The status write was lost: the schedule still shows nothing; the engine exists.
    sim.schedule.status = None;
    sim.schedule.spec.schedule_state = None;
    sim.now = ts("2024-06-20T08:00:01Z");
    let pass = sim.step();
    assert!(pass.create.is_none(), "{pass:?}");
    let status = pass.status;
    assert_eq!(status.active.len(), 1);
    assert_eq!(
        status.last_schedule_time,
        Some(Time(ts("2024-06-20T08:00:00Z")))
    );
    assert_eq!(status.schedule.unwrap().run_instances, Some(1));

    // now/once: the engine named after the schedule is the run.
    let mut now = Sim::new("n", spec(json!({"now": true})), "2024-06-20T08:00:00Z", 600);
    now.step();
    now.schedule.status = None;
    let pass = now.step();
    assert!(pass.create.is_none());
    assert_eq!(pass.status.active.len(), 1);
}

#[test]
fn allow_and_replace_need_the_opt_in() {
    let with = |policy: &str, opt_in: bool| {
        let mut s = repeat_spec(1, json!({}));
        s.concurrency_policy = Some(policy.into());
        s.enforce_concurrency_policy = Some(opt_in);
        let mut sim = Sim::new("p", s, "2024-06-20T08:00:00Z", 150);
        sim.run_until("2024-06-20T08:02:30Z");
        sim
    };
    assert_eq!(with("Allow", false).max_active, 1);
    assert_eq!(with("Allow", true).max_active, 3);
    let replace = with("Replace", true);
    assert_eq!(replace.max_active, 1);
    assert_eq!(replace.created.len(), 3);
}

#[test]
fn history_limit_deletes_the_oldest_finished_engines() {
    let mut s = repeat_spec(1, json!({}));
    s.history_limit = Some(2);
    let mut sim = Sim::new("h", s, "2024-06-20T08:00:00Z", 10);
    sim.run_until("2024-06-20T08:10:00Z");
    assert_eq!(sim.created.len(), 11);
    assert!(sim.children.len() <= 3);
    assert!(sim.children.iter().any(|(c, _)| {
        c.name
            .ends_with(&ts("2024-06-20T08:10:00Z").as_second().to_string())
    }));
}
