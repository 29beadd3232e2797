//! Repeat schedules: runs in a time range, Forbid with long runs, completion at the end of the
//! range, hour-mode alignment, a range already past.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::{Sim, hm, repeat_spec, spec, ts};

#[test]
fn repeat_in_a_time_range_with_short_runs() {
    // Spec scenario 3: exactly 6 engines, named by their ticks, then completed.
    let mut sim = Sim::new(
        "schedule-nginx",
        repeat_spec(
            2,
            json!({"timeRange": {"startTime": "2024-06-20T08:00:40Z", "endTime": "2024-06-20T08:10:40Z"}}),
        ),
        "2024-06-20T08:00:10Z",
        30,
    );
    sim.run_until("2024-06-20T09:00:00Z");
    assert_eq!(
        sim.suffixes(),
        [
            1718870440, 1718870520, 1718870640, 1718870760, 1718870880, 1718871000
        ]
    );
    assert_eq!(sim.max_active, 1);
    assert_eq!(sim.status(), "completed");
    let s = sim.schedule.status.clone().unwrap();
    assert_eq!(s.schedule.as_ref().unwrap().run_instances, Some(6));
    assert_eq!(
        s.schedule.as_ref().unwrap().end_time,
        Some(Time(ts("2024-06-20T08:10:41Z")))
    );
    assert_eq!(
        sim.schedule.spec.schedule_state.as_deref(),
        Some("complete")
    );
}

#[test]
fn repeat_forbid_with_runs_longer_than_the_interval() {
    // Spec scenario 4: runs of 5 minutes every 2: never two at once, catch-up of the latest tick.
    let mut sim = Sim::new(
        "schedule-nginx",
        repeat_spec(2, json!({"timeRange": {"endTime": "2024-06-20T08:19:00Z"}})),
        "2024-06-20T08:00:40Z",
        300,
    );
    sim.run_until("2024-06-20T09:00:00Z");
    assert_eq!(
        sim.suffixes(),
        [1718870440, 1718870640, 1718871000, 1718871240]
    );
    let created: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(
        created,
        [
            "Thu 08:00:40",
            "Thu 08:05:40",
            "Thu 08:10:40",
            "Thu 08:15:40"
        ]
    );
    assert_eq!(sim.max_active, 1);
    // A MissEngine per tick that passed while blocked, each at its tick (the timer stays armed).
    let missed: Vec<String> = sim
        .events
        .iter()
        .filter(|(_, e)| e.starts_with("MissEngine"))
        .map(|(t, _)| hm(*t))
        .collect();
    assert_eq!(
        missed,
        [
            "Thu 08:02:00",
            "Thu 08:04:00",
            "Thu 08:06:00",
            "Thu 08:08:00",
            "Thu 08:10:00",
            "Thu 08:12:00",
            "Thu 08:14:00",
            "Thu 08:16:00",
            "Thu 08:18:00"
        ]
    );
    assert!(sim.events.iter().any(|(_, e)| e
        == "MissEngine Missed scheduled time to start an engine because of an active engine at: Thu, 20 Jun 2024 08:02:00 +0000"));
    // Completed at the end of the range while the fourth engine keeps running (and is tracked).
    assert_eq!(sim.status(), "completed");
}

#[test]
fn completion_at_end_time_happens_on_the_timer_while_blocked() {
    let mut sim = Sim::new(
        "s",
        repeat_spec(2, json!({"timeRange": {"endTime": "2024-06-20T08:19:00Z"}})),
        "2024-06-20T08:00:40Z",
        3600,
    );
    sim.run_until("2024-06-20T08:19:01Z");
    assert_eq!(sim.created.len(), 1);
    assert_eq!(sim.status(), "completed");
    let s = sim.schedule.status.clone().unwrap();
    assert_eq!(
        s.schedule.unwrap().end_time,
        Some(Time(ts("2024-06-20T08:19:01Z")))
    );
    assert_eq!(s.active.len(), 1, "the running engine is still tracked");
}

#[test]
fn hour_mode_alignment_is_cron_step_semantics() {
    // Spec scenario 7.
    let hour = |n: i64, m: Option<i64>| {
        let mut h = json!({"everyNthHour": n});
        if let Some(m) = m {
            h["minuteOfTheHour"] = json!(m);
        }
        spec(json!({"repeat": {"properties": {"minChaosInterval": {"hour": h}}}}))
    };
    let mut sim = Sim::new("h", hour(2, Some(15)), "2024-06-17T03:00:00Z", 60);
    sim.run_until("2024-06-18T01:00:00Z");
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(
        &times[..3],
        ["Mon 03:00:00", "Mon 04:15:00", "Mon 06:15:00"]
    );
    assert_eq!(times.last().unwrap(), "Tue 00:15:00");

    let mut five = Sim::new("h", hour(5, None), "2024-06-17T00:00:00Z", 60);
    five.run_until("2024-06-18T00:00:00Z");
    let times: Vec<String> = five.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(
        times,
        [
            "Mon 00:00:00",
            "Mon 05:00:00",
            "Mon 10:00:00",
            "Mon 15:00:00",
            "Mon 20:00:00",
            "Tue 00:00:00"
        ]
    );
}

#[test]
fn end_time_already_past_completes_with_no_engine_and_no_event() {
    // Spec scenario 8 (Litmus's shipped sample CR).
    let mut sim = Sim::new(
        "sample",
        repeat_spec(
            5,
            json!({"timeRange": {"startTime": "2020-05-12T05:47:00Z", "endTime": "2020-09-13T02:58:00Z"}}),
        ),
        "2024-06-20T08:00:00Z",
        30,
    );
    let pass = sim.step();
    assert!(pass.create.is_none());
    assert!(pass.events.is_empty());
    assert_eq!(pass.schedule_state, Some("complete"));
    assert_eq!(sim.status(), "completed");
    assert_eq!(pass.wake_at, None);
}
