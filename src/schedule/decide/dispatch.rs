//! What `spec.scheduleState` asks for (halt, complete, active, stop), the checks before a run
//! (timing, name length, template), and the `now` / `once` schedules.
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Builder, Create, reference};
use crate::api::{schedule_state, schedule_status};
use crate::schedule::timing::{Timing, timing};

/// Longest name Litmus's engines can have: the operator labels the runner pod `app: <engine>`,
/// and label values are at most 63 characters (repeat adds `-` and 10 digits).
const MAX_ENGINE_NAME: usize = 63;

impl Builder<'_> {
    pub(super) fn dispatch(&mut self) {
        let state = self
            .obs
            .schedule
            .spec
            .schedule_state
            .clone()
            .unwrap_or_default();
        match state.as_str() {
            schedule_state::HALT => {
                if self.sched.status.as_deref() != Some(schedule_status::HALTED) {
                    self.sched.status = Some(schedule_status::HALTED.into());
                    self.event(
                        false,
                        "ScheduleHalted",
                        "Schedule halted successfully".into(),
                    );
                }
                self.sched.expected_next_run_time = None;
                self.sched.message = None;
            }
            schedule_state::COMPLETE => {
                self.sched.expected_next_run_time = None;
                if self.status.active.is_empty() {
                    self.sched.message = None;
                    if self.sched.status.as_deref() != Some(schedule_status::COMPLETED) {
                        self.sched.status = Some(schedule_status::COMPLETED.into());
                        self.sched.end_time = Some(Time(self.now));
                        self.event(
                            false,
                            "ScheduleCompleted",
                            "Schedule completed successfully".into(),
                        );
                    }
                } else {
                    // Litmus never completes here (W3); we complete once the engines drain.
                    self.sched.message = Some(format!(
                        "completing once {} active engine(s) finish",
                        self.status.active.len()
                    ));
                }
            }
            "" | schedule_state::ACTIVE => self.run(),
            schedule_state::STOP => {
                self.sched.expected_next_run_time = None;
            }
            other => {
                self.sched.expected_next_run_time = None;
                self.sched.message = Some(format!(
                    "spec.scheduleState {other:?} is not one of active, halt, complete: nothing is scheduled"
                ));
            }
        }
    }

    fn run(&mut self) {
        if self.sched.status.as_deref() == Some(schedule_status::HALTED) {
            // Resumed: say so now (Litmus shows `halted` until the next engine, W15).
            self.sched.status = Some(schedule_status::RUNNING.into());
        }
        if self.obs.schedule.metadata.deletion_timestamp.is_some() {
            return;
        }
        let timing = match timing(&self.obs.schedule.spec) {
            Ok(t) => t,
            Err(e) => {
                self.problem(
                    "FailedNeedsStart",
                    format!("Cannot determine if engine needs to be started: {e}"),
                );
                return;
            }
        };
        let name = self.obs.schedule.metadata.name.clone().unwrap_or_default();
        let limit = match timing {
            Timing::Repeat(_) => MAX_ENGINE_NAME - 11,
            _ => MAX_ENGINE_NAME,
        };
        if name.len() > limit {
            self.problem(
                "FailedCreate",
                format!(
                    "metadata.name: {} characters is too long for this schedule type (at most {limit}): engine names derived from it would not be valid label values",
                    name.len()
                ),
            );
            return;
        }
        if !self.obs.schedule.spec.engine_template_spec.is_object() {
            self.problem(
                "FailedCreate",
                "spec.engineTemplateSpec is missing or not an object: there is no engine to create"
                    .into(),
            );
            return;
        }
        self.sched.message = None;
        match timing {
            Timing::Now => self.single(&name, None),
            Timing::Once(at) => self.single(&name, at),
            Timing::Repeat(r) => self.repeat(&name, &r),
        }
    }

    pub(super) fn complete_automatically(&mut self) {
        if self.sched.status.as_deref() != Some(schedule_status::COMPLETED) {
            self.sched.status = Some(schedule_status::COMPLETED.into());
            self.sched.end_time = Some(Time(self.now));
        }
        self.sched.expected_next_run_time = None;
        self.set_state(schedule_state::COMPLETE);
    }

    pub(super) fn create(&mut self, name: String, scheduled: Timestamp) {
        self.event(false, "SuccessfulCreate", format!("Created engine {name}"));
        self.status
            .active
            .push(reference(self.obs.schedule, &name, None, None));
        self.sched.status = Some(schedule_status::RUNNING.into());
        self.set_state(schedule_state::ACTIVE);
        self.pass.create = Some(Create { name, scheduled });
    }

    /// `now` and `once`: one engine named after the schedule, run once.
    fn single(&mut self, name: &str, at: Option<Timestamp>) {
        let own = self.obs.children.iter().find(|c| c.name == name).cloned();
        match own {
            Some(c) if c.finished() => self.complete_automatically(),
            Some(c) => {
                // Ours and running (possibly created before a crash that lost the status write).
                if self.status.last_schedule_time.is_none() {
                    let t = c.created.unwrap_or(self.now);
                    self.status.last_schedule_time = Some(Time(t));
                    self.sched.start_time = Some(Time(t));
                }
                self.sched.status = Some(schedule_status::RUNNING.into());
                self.sched.expected_next_run_time = None;
                self.set_state(schedule_state::ACTIVE);
            }
            // Ran already and its engine is gone: a now/once schedule runs once (Litmus would
            // create it again).
            None if self.status.last_schedule_time.is_some() => self.complete_automatically(),
            None => match at {
                Some(at) if at > self.now => {
                    self.sched.expected_next_run_time = Some(Time(at));
                    self.wake(Some(at));
                }
                _ => {
                    self.status.last_schedule_time = Some(Time(self.now));
                    self.sched.start_time = Some(Time(self.now));
                    self.sched.expected_next_run_time = None;
                    self.create(name.to_string(), self.now);
                }
            },
        }
    }
}
