//! Table tests of the schedule core, one file per subject, and the helpers they share: `Sim`
//! runs whole timelines pass by pass (spec scenarios of docs/schedule.md).
//!
//! | file | what it tests |
//! |---|---|
//! | `cron.rs` | the cron dialect (robfig's steps, errors, day-of-week), `next_after` as a property |
//! | `timing.rs` | run times of every form as cron strings, and timing errors reported once |
//! | `single.rs` | `now` and `once` schedules |
//! | `repeat.rs` | repeat schedules: time ranges, Forbid, completion at the end, hour mode |
//! | `halt.rs` | halt, resume, catch-up, manual completion |
//! | `engines.rs` | the engines a schedule owns: deleted, stopped, adopted, concurrency, history |
//! | `window.rs` | work hours and days, late runs outside the window, time zones |
//! | `random.rs` | `random: true`: seeded timelines and property tests of the draws |
mod cron;
mod engines;
mod halt;
mod random;
mod repeat;
mod single;
mod timing;
mod window;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::decide::{Child, Observed, Pass, decide, scheduled_of};
use crate::api::{ChaosSchedule, ChaosScheduleSpec};

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn hm(t: Timestamp) -> String {
    t.strftime("%a %H:%M:%S").to_string()
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
