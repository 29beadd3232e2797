//! Table tests of the schedule core: the cron dialect, run times of every form, and whole
//! timelines simulated pass by pass (spec scenarios of docs/schedule.md), plus property tests of
//! `random: true`.
use jiff::Timestamp;
use jiff::tz::TimeZone;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use proptest::prelude::*;
use serde_json::json;

use super::cron::Cron;
use super::decide::{Child, Observed, Pass, decide, scheduled_of};
use super::timing::{Timing, timing};
use crate::api::{ChaosSchedule, ChaosScheduleSpec};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn hm(t: Timestamp) -> String {
    t.strftime("%a %H:%M:%S").to_string()
}

fn ticks(expr: &str, from: &str, n: usize) -> Vec<String> {
    let cron = Cron::parse(expr).expect("parse");
    let mut t = ts(from);
    let mut out = Vec::new();
    for _ in 0..n {
        t = cron.next_after(t, &TimeZone::UTC).expect("next");
        out.push(t.strftime("%H:%M").to_string());
    }
    out
}

#[test]
fn cron_steps_restart_every_hour_and_day_as_robfig() {
    // 2024-06-17 is a Monday.
    let from = "2024-06-17T09:58:30Z";
    assert_eq!(ticks("*/5 * * * *", from, 3), ["10:00", "10:05", "10:10"]);
    // */7: :56 then :00 (a 4-minute gap).
    assert_eq!(
        ticks("*/7 * * * *", "2024-06-17T09:55:00Z", 3),
        ["09:56", "10:00", "10:07"]
    );
    // */90 collapses to hourly.
    assert_eq!(ticks("*/90 * * * *", from, 2), ["10:00", "11:00"]);
    assert_eq!(
        ticks("15 */2 * * *", "2024-06-17T21:00:00Z", 3),
        ["22:15", "00:15", "02:15"]
    );
    assert_eq!(
        ticks("0 */5 * * *", "2024-06-17T14:30:00Z", 3),
        ["15:00", "20:00", "00:00"]
    );
    assert_eq!(
        ticks("0 9-17/2 * * *", "2024-06-17T08:00:00Z", 6),
        ["09:00", "11:00", "13:00", "15:00", "17:00", "09:00"]
    );
    // A single hour with a step means "from there to 23".
    assert_eq!(
        ticks("0 10/2 * * *", "2024-06-17T08:00:00Z", 7),
        [
            "10:00", "12:00", "14:00", "16:00", "18:00", "20:00", "22:00"
        ]
    );
    assert_eq!(
        ticks("0 9,13/3 * * *", "2024-06-17T08:00:00Z", 5),
        ["09:00", "13:00", "16:00", "19:00", "22:00"]
    );
    // Next is strictly after.
    assert_eq!(ticks("*/5 * * * *", "2024-06-17T10:00:00Z", 1), ["10:05"]);
}

#[test]
fn cron_errors_are_robfigs() {
    for bad in [
        "*/0 * * * *",
        "*/5 * * * Mon, Tue",
        "*/5 * * * Fri-Mon",
        "*/5  * * *",
        "*/5 * * * 7",
        "*/5 * * * xyz",
        "*/5 24 * * *",
        "*/5 1-2-3 * * *",
        "*/5 */2/2 * * *",
        "*/-1 * * * *",
    ] {
        assert!(Cron::parse(bad).is_err(), "{bad:?} should not parse");
    }
    for good in [
        "*/5 * * * mon-FRI",
        "*/5 * * * Mon,Tue,Wed",
        "*/5 9-17 * * 1-5",
        "*-3 * * * *",
        "? * * * *",
    ] {
        assert!(Cron::parse(good).is_ok(), "{good:?} should parse");
    }
    // `*-3` is `*` (robfig ignores what follows the star).
    assert_eq!(ticks("*-3 * * * *", "2024-06-17T10:00:00Z", 1), ["10:01"]);
}

#[test]
fn day_of_week_restricts_only_with_star_day_of_month() {
    let cron = Cron::parse("0 9 * * Sat,Sun").expect("parse");
    let next = cron
        .next_after(ts("2024-06-17T10:00:00Z"), &TimeZone::UTC)
        .expect("next");
    assert_eq!(hm(next), "Sat 09:00:00");
    let prev = cron
        .latest_at_or_before(ts("2024-06-17T10:00:00Z"), &TimeZone::UTC)
        .expect("prev");
    assert_eq!(prev, ts("2024-06-16T09:00:00Z"));
}

fn spec(schedule: serde_json::Value) -> ChaosScheduleSpec {
    serde_json::from_value(json!({
        "schedule": schedule,
        "engineTemplateSpec": {"engineState": "active", "experiments": [{"name": "pod-delete"}]}
    }))
    .expect("spec")
}

fn repeat_spec(minute: i64, extra: serde_json::Value) -> ChaosScheduleSpec {
    let mut repeat =
        json!({"properties": {"minChaosInterval": {"minute": {"everyNthMinute": minute}}}});
    if let (Some(r), Some(e)) = (repeat.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            r.insert(k.clone(), v.clone());
        }
    }
    spec(json!({ "repeat": repeat }))
}

fn cron_text(spec: &ChaosScheduleSpec) -> Result<String, String> {
    match timing(spec) {
        Ok(Timing::Repeat(r)) => Ok(r.cron_text.clone()),
        Ok(other) => Err(format!("not repeat: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn cron_strings_are_litmus_strings_and_window_fields_are_robust() {
    assert_eq!(
        cron_text(&repeat_spec(5, json!({}))).unwrap(),
        "*/5 * * * *"
    );
    let windowed = repeat_spec(
        30,
        json!({"workHours": {"includedHours": "9-17"}, "workDays": {"includedDays": "Mon-Fri"}}),
    );
    assert_eq!(cron_text(&windowed).unwrap(), "*/30 9-17 * * Mon-Fri");
    let hour = spec(
        json!({"repeat": {"properties": {"minChaosInterval": {"hour": {"everyNthHour": 2, "minuteOfTheHour": 15}}}}}),
    );
    assert_eq!(cron_text(&hour).unwrap(), "15 */2 * * *");
    // Fixed here (Litmus: parse error at run time, W10).
    let spaced = repeat_spec(5, json!({"workDays": {"includedDays": "Mon, Tue"}}));
    assert_eq!(cron_text(&spaced).unwrap(), "*/5 * * * Mon,Tue");
    let wrapped = repeat_spec(5, json!({"workDays": {"includedDays": "Sat-Sun"}}));
    assert_eq!(cron_text(&wrapped).unwrap(), "*/5 * * * 6-6,0-0");
    let night = repeat_spec(5, json!({"workHours": {"includedHours": "22-2"}}));
    assert_eq!(cron_text(&night).unwrap(), "*/5 22-23,0-2 * * *");
    let star = repeat_spec(5, json!({"workHours": {"includedHours": "*"}}));
    assert_eq!(cron_text(&star).unwrap(), "*/5 * * * *");
    // Clear errors (Litmus: FailedNeedsStart with a cron or strconv message).
    let zero = cron_text(&repeat_spec(0, json!({}))).unwrap_err();
    assert!(
        zero.contains("minute.everyNthMinute: 0 is not allowed"),
        "{zero}"
    );
    let empty =
        cron_text(&repeat_spec(5, json!({"workHours": {"includedHours": ""}}))).unwrap_err();
    assert!(
        empty.contains("workHours.includedHours: must not be empty"),
        "{empty}"
    );
    let unknown = cron_text(&repeat_spec(
        5,
        json!({"workDays": {"includedDays": "Mon,Funday"}}),
    ))
    .unwrap_err();
    assert!(
        unknown.contains("\"Funday\" is not a number or a known name"),
        "{unknown}"
    );
    let bad_zone = {
        let mut s = repeat_spec(5, json!({}));
        s.time_zone = Some("Mars/Olympus".into());
        cron_text(&s).unwrap_err()
    };
    assert!(bad_zone.contains("spec.timeZone"), "{bad_zone}");
    assert!(timing(&spec(json!({"now": false}))).is_err());
    assert!(matches!(
        timing(&spec(json!({"now": true}))),
        Ok(Timing::Now)
    ));
}

// --- whole timelines, pass by pass ---------------------------------------------------------

struct Sim {
    schedule: ChaosSchedule,
    /// (child, when its run ends)
    children: Vec<(Child, Timestamp)>,
    run_seconds: i64,
    created: Vec<(String, Timestamp)>,
    events: Vec<(Timestamp, String)>,
    max_active: usize,
    now: Timestamp,
}

impl Sim {
    fn new(name: &str, spec: ChaosScheduleSpec, created: &str, run_seconds: i64) -> Sim {
        let mut schedule = ChaosSchedule::new(name, spec);
        schedule.metadata.namespace = Some("litmus".into());
        schedule.metadata.uid = Some("uid-1".into());
        schedule.metadata.creation_timestamp = Some(Time(ts(created)));
        Sim {
            schedule,
            children: Vec::new(),
            run_seconds,
            created: Vec::new(),
            events: Vec::new(),
            max_active: 0,
            now: ts(created),
        }
    }

    fn step(&mut self) -> Pass {
        let now = self.now;
        for (child, ends) in &mut self.children {
            if *ends <= now && child.engine_status.is_empty() {
                child.engine_status = "completed".into();
            }
        }
        let children: Vec<Child> = self.children.iter().map(|(c, _)| c.clone()).collect();
        let mut pass = decide(Observed {
            schedule: &self.schedule,
            children: &children,
            now,
        });
        for e in &pass.events {
            self.events
                .push((now, format!("{} {}", e.reason, e.message)));
        }
        if let Some(create) = &pass.create {
            let uid = format!("engine-{}", self.created.len());
            if let Some(entry) = pass.status.active.last_mut() {
                entry.uid = Some(uid.clone());
            }
            self.children.push((
                Child {
                    name: create.name.clone(),
                    uid,
                    resource_version: Some("1".into()),
                    created: Some(now),
                    engine_status: String::new(),
                    deleting: false,
                },
                Timestamp::from_second(now.as_second() + self.run_seconds).unwrap(),
            ));
            self.created.push((create.name.clone(), now));
        }
        for name in &pass.stop {
            for (c, _) in &mut self.children {
                if &c.name == name {
                    c.engine_status = "stopped".into();
                }
            }
        }
        self.children
            .retain(|(c, _)| !pass.delete.contains(&c.name));
        self.schedule.status = Some(pass.status.clone());
        if let Some(state) = pass.schedule_state {
            self.schedule.spec.schedule_state = Some(state.into());
        }
        let active = self
            .children
            .iter()
            .filter(|(c, _)| c.engine_status.is_empty())
            .count();
        self.max_active = self.max_active.max(active);
        pass
    }

    /// Runs passes at every wake-up and every engine completion (the watch), until `until`.
    fn run_until(&mut self, until: &str) {
        let until = ts(until);
        loop {
            let pass = self.step();
            let next_end = self
                .children
                .iter()
                .filter(|(c, ends)| c.engine_status.is_empty() && *ends > self.now)
                .map(|(_, ends)| *ends)
                .min();
            let next = match (pass.wake_at, next_end) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => match a.or(b) {
                    Some(t) => t,
                    None => return,
                },
            };
            assert!(next > self.now, "wake-up {next} not after {}", self.now);
            if next > until {
                return;
            }
            self.now = next;
        }
    }

    fn suffixes(&self) -> Vec<i64> {
        self.created
            .iter()
            .filter_map(|(n, _)| scheduled_of(self.schedule.metadata.name.as_deref().unwrap(), n))
            .map(|t| t.as_second())
            .collect()
    }

    fn status(&self) -> String {
        self.schedule
            .status
            .as_ref()
            .and_then(|s| s.schedule.as_ref())
            .and_then(|s| s.status.clone())
            .unwrap_or_default()
    }

    fn set_state(&mut self, state: &str, at: &str) {
        self.now = ts(at);
        self.schedule.spec.schedule_state = Some(state.into());
    }
}

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
fn halt_then_resume_catches_up_the_latest_tick_once() {
    // Spec scenario 5.
    let mut sim = Sim::new("s", repeat_spec(1, json!({})), "2024-06-20T10:03:00Z", 20);
    sim.run_until("2024-06-20T10:03:29Z");
    sim.set_state("halt", "2024-06-20T10:03:30Z");
    sim.run_until("2024-06-20T10:07:29Z");
    assert_eq!(sim.status(), "halted");
    let during: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(during, ["Thu 10:03:00"]);
    sim.set_state("active", "2024-06-20T10:07:30Z");
    sim.step();
    assert_eq!(sim.status(), "running");
    sim.run_until("2024-06-20T10:09:30Z");
    let names: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(
        names,
        [
            "Thu 10:03:00",
            "Thu 10:07:30",
            "Thu 10:08:00",
            "Thu 10:09:00"
        ]
    );
    assert_eq!(sim.suffixes()[1], ts("2024-06-20T10:07:00Z").as_second());

    // Resumed before the next tick: nothing immediate, running again at once.
    let mut quick = Sim::new("q", repeat_spec(1, json!({})), "2024-06-20T10:03:00Z", 20);
    quick.run_until("2024-06-20T10:03:29Z");
    quick.set_state("halt", "2024-06-20T10:03:30Z");
    quick.step();
    quick.set_state("active", "2024-06-20T10:03:45Z");
    quick.step();
    assert_eq!(quick.status(), "running");
    assert_eq!(quick.created.len(), 1);
    quick.run_until("2024-06-20T10:04:00Z");
    assert_eq!(quick.created.len(), 2);
    assert_eq!(hm(quick.created[1].1), "Thu 10:04:00");
}

#[test]
fn catch_up_after_a_long_halt_is_one_run_and_bounded() {
    let mut sim = Sim::new("s", repeat_spec(1, json!({})), "2024-06-20T10:00:00Z", 5);
    sim.step();
    sim.set_state("halt", "2024-06-20T10:00:10Z");
    sim.step();
    sim.set_state("active", "2025-06-20T10:00:30Z");
    let pass = sim.step();
    assert_eq!(sim.created.len(), 2);
    assert_eq!(sim.suffixes()[1], ts("2025-06-20T10:00:00Z").as_second());
    let missed: u32 = pass.skipped.iter().map(|(_, n)| *n).sum();
    assert!(missed >= 1000, "missed runs are counted (capped): {missed}");
}

#[test]
fn work_hours_and_days() {
    // Spec scenario 6; 2024-06-17 is a Monday.
    let window =
        json!({"workHours": {"includedHours": "9-17"}, "workDays": {"includedDays": "Mon-Fri"}});
    let mut sim = Sim::new(
        "w",
        repeat_spec(30, window.clone()),
        "2024-06-17T08:10:00Z",
        60,
    );
    sim.run_until("2024-06-24T09:00:00Z");
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times[0], "Mon 09:00:00");
    assert_eq!(times[1], "Mon 09:30:00");
    assert_eq!(times[17], "Mon 17:30:00");
    assert_eq!(times[18], "Tue 09:00:00");
    assert_eq!(times.len(), 5 * 18 + 1, "nothing on Saturday or Sunday");
    assert!(
        times
            .iter()
            .all(|t| !t.starts_with("Sat") && !t.starts_with("Sun"))
    );

    let mut inside = Sim::new("w", repeat_spec(30, window), "2024-06-17T10:10:00Z", 60);
    inside.run_until("2024-06-17T10:31:00Z");
    let times: Vec<String> = inside.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 10:10:00", "Mon 10:30:00"]);

    // `includedHours: "*"` starts (Litmus never does, W10).
    let mut star = Sim::new(
        "star",
        repeat_spec(30, json!({"workHours": {"includedHours": "*"}})),
        "2024-06-17T10:10:00Z",
        60,
    );
    star.run_until("2024-06-17T10:31:00Z");
    assert_eq!(star.created.len(), 2);
}

#[test]
fn a_late_run_outside_the_window_is_skipped_not_started() {
    // Blocked from 17:00 to 18:30 with hours 9-17: the 17:30 tick is not caught up at 18:30.
    let window = json!({"workHours": {"includedHours": "9-17"}});
    let mut sim = Sim::new(
        "late",
        repeat_spec(30, window.clone()),
        "2024-06-17T17:00:00Z",
        90 * 60,
    );
    sim.run_until("2024-06-18T09:00:00Z");
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 17:00:00", "Tue 09:00:00"]);
    // Halted over the 17:30 tick and resumed at 18:30: skipped, and said so.
    let mut halted = Sim::new("late", repeat_spec(30, window), "2024-06-17T17:00:00Z", 60);
    halted.run_until("2024-06-17T17:05:00Z");
    halted.set_state("halt", "2024-06-17T17:10:00Z");
    halted.step();
    halted.set_state("active", "2024-06-17T18:30:00Z");
    halted.run_until("2024-06-18T09:00:00Z");
    let times: Vec<String> = halted.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 17:00:00", "Tue 09:00:00"]);
    assert!(
        halted
            .events
            .iter()
            .any(|(_, e)| e.starts_with("SkippedLateRun")),
        "{:?}",
        halted.events
    );
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
fn manual_complete_with_an_active_engine_completes_once_it_drains() {
    let mut sim = Sim::new("m", repeat_spec(1, json!({})), "2024-06-20T08:00:00Z", 90);
    sim.run_until("2024-06-20T08:00:10Z");
    sim.set_state("complete", "2024-06-20T08:00:20Z");
    sim.step();
    assert_ne!(sim.status(), "completed");
    sim.run_until("2024-06-20T08:05:00Z");
    assert_eq!(sim.status(), "completed");
    assert_eq!(sim.created.len(), 1);
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| e == "ScheduleCompleted Schedule completed successfully")
    );
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

#[test]
fn invalid_timing_is_reported_once_with_a_clear_message() {
    let mut sim = Sim::new("bad", repeat_spec(0, json!({})), "2024-06-20T08:00:00Z", 10);
    let first = sim.step();
    assert_eq!(first.events.len(), 1);
    assert!(first.events[0].warning);
    assert_eq!(first.events[0].reason, "FailedNeedsStart");
    assert!(
        first.events[0]
            .message
            .contains("everyNthMinute: 0 is not allowed")
    );
    assert!(first.wake_at.is_none());
    let second = sim.step();
    assert!(second.events.is_empty(), "not repeated on every pass");
    assert!(sim.created.is_empty());
}

#[test]
fn names_too_long_for_label_values_are_refused() {
    let long = "x".repeat(53);
    let mut sim = Sim::new(&long, repeat_spec(1, json!({})), "2024-06-20T08:00:00Z", 10);
    let pass = sim.step();
    assert!(pass.create.is_none());
    assert!(pass.events[0].message.contains("too long"));
}

#[test]
fn time_zone_moves_the_window() {
    let mut s = repeat_spec(60, json!({"workHours": {"includedHours": "9"}}));
    s.time_zone = Some("Europe/Berlin".into());
    let mut sim = Sim::new("tz", s, "2024-06-17T00:00:00Z", 10);
    sim.run_until("2024-06-17T12:00:00Z");
    // 09:00 in Berlin (CEST, UTC+2) is 07:00 UTC.
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 07:00:00"]);
}

// --- random: true ----------------------------------------------------------------------------

fn random_timeline(
    seed: i64,
    extra: serde_json::Value,
    minute: i64,
    until: &str,
) -> Vec<Timestamp> {
    let mut s = repeat_spec(minute, extra);
    if let Some(r) = s.schedule.as_mut().and_then(|s| s.repeat.as_mut()) {
        r.properties.as_mut().unwrap().random = Some(true);
    }
    s.random_seed = Some(seed);
    let mut sim = Sim::new("r", s, "2024-06-17T08:00:00Z", 5);
    sim.run_until(until);
    sim.created.iter().map(|(_, t)| *t).collect()
}

#[test]
fn random_same_seed_same_timeline_and_the_draw_is_recorded() {
    let a = random_timeline(42, json!({}), 10, "2024-06-17T12:00:00Z");
    let b = random_timeline(42, json!({}), 10, "2024-06-17T12:00:00Z");
    let c = random_timeline(43, json!({}), 10, "2024-06-17T12:00:00Z");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.len() >= 12, "{}", a.len());
    // Not on the ticks.
    assert!(a.iter().filter(|t| t.as_second() % 600 != 0).count() > a.len() / 2);
    for w in a.windows(2) {
        assert!(
            w[1].as_second() - w[0].as_second() >= 600,
            "{} then {}",
            w[0],
            w[1]
        );
    }
    // expectedNextRunTime holds the drawn time, and the seed is recorded.
    let mut s = repeat_spec(10, json!({}));
    s.schedule
        .as_mut()
        .unwrap()
        .repeat
        .as_mut()
        .unwrap()
        .properties
        .as_mut()
        .unwrap()
        .random = Some(true);
    let mut sim = Sim::new("r", s, "2024-06-17T08:00:00Z", 5);
    let pass = sim.step();
    let st = pass.status.schedule.unwrap();
    assert!(st.random_seed.is_some());
    let expected = st.expected_next_run_time.expect("next").0;
    assert_eq!(pass.wake_at, Some(expected));
    sim.now = expected;
    sim.step();
    assert_eq!(sim.created.last().unwrap().1, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_draws_respect_interval_window_and_range(
        seed in 0i64..1_000_000,
        minute in prop_oneof![Just(1i64), Just(5), Just(7), Just(15), Just(30), Just(45), Just(90)],
        first_hour in 0u32..20,
        span in 1u32..4,
        days in prop_oneof![Just("Mon-Fri"), Just("Mon,Wed,Sat"), Just("Sun"), Just("Mon-Sun")],
        start_offset in 0i64..7200,
        length in 3600i64..(3 * 86_400),
    ) {
        let hours = format!("{first_hour}-{}", first_hour + span);
        let start = ts("2024-06-17T06:00:00Z").as_second() + start_offset;
        let end = start + length;
        let range = json!({
            "startTime": Timestamp::from_second(start).unwrap().to_string(),
            "endTime": Timestamp::from_second(end).unwrap().to_string(),
        });
        let extra = json!({
            "workHours": {"includedHours": hours},
            "workDays": {"includedDays": days},
            "timeRange": range,
        });
        let until = Timestamp::from_second(end + 60).unwrap().to_string();
        let times = random_timeline(seed, extra.clone(), minute, &until);
        let again = random_timeline(seed, extra, minute, &until);
        prop_assert_eq!(&times, &again);
        let days = super::timing::normalise_window(days, 6, super::cron::DAY_NAMES, "d").unwrap();
        let cron = Cron::parse(&format!("* {hours} * * {days}")).unwrap();
        for (i, t) in times.iter().enumerate() {
            prop_assert!(t.as_second() >= start && t.as_second() <= end, "{} outside the range", t);
            prop_assert!(cron.instant_allowed(*t, &TimeZone::UTC), "{} outside hours/days", t);
            if i > 0 {
                prop_assert!(t.as_second() - times[i - 1].as_second() >= minute * 60,
                    "{} closer than {} min to {}", t, minute, times[i - 1]);
            }
        }
    }

    #[test]
    fn next_after_is_the_first_match_strictly_after(
        step in 1u32..60, hour_lo in 0u32..23, offset in 0i64..(14 * 86_400),
    ) {
        let expr = format!("*/{step} {hour_lo}-23 * * Mon,Thu");
        let cron = Cron::parse(&expr).unwrap();
        let t = Timestamp::from_second(ts("2024-06-17T00:00:00Z").as_second() + offset).unwrap();
        let next = cron.next_after(t, &TimeZone::UTC).unwrap();
        prop_assert!(next > t);
        prop_assert!(cron.instant_allowed(next, &TimeZone::UTC));
        // Brute force: no matching minute in between.
        let mut m = (t.as_second() / 60 + 1) * 60;
        while m < next.as_second() {
            let x = Timestamp::from_second(m).unwrap();
            let dt = TimeZone::UTC.to_datetime(x);
            let matches = cron.instant_allowed(x, &TimeZone::UTC) && (dt.minute() as u32).is_multiple_of(step);
            prop_assert!(!matches, "{} matches before {}", x, next);
            m += 60;
        }
        let prev = cron.latest_at_or_before(next, &TimeZone::UTC).unwrap();
        prop_assert_eq!(prev, next);
    }
}
