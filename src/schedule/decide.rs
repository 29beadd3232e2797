//! One reconcile pass of a ChaosSchedule as a pure function: from the schedule, the engines it
//! owns and the clock, what to write, create, stop, delete, announce, and when to look again.
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::timing::{Repeat, Timing, gate, seed_from_uid, timing};
use crate::api::{
    API_VERSION, ChaosSchedule, ChaosScheduleStatus, ScheduleStatus, concurrency_policy,
    engine_status, schedule_state, schedule_status,
};

/// An engine whose controller ownerReference is the schedule (matched by UID, never by labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub name: String,
    pub uid: String,
    pub resource_version: Option<String>,
    pub created: Option<Timestamp>,
    /// `status.engineStatus`.
    pub engine_status: String,
    /// Has a deletion timestamp (its abort may still be running).
    pub deleting: bool,
}

impl Child {
    /// `completed` and `stopped` engines are finished (Litmus counts only `completed`, so a
    /// stopped engine blocked a repeat schedule forever).
    pub fn finished(&self) -> bool {
        self.engine_status == engine_status::COMPLETED
            || self.engine_status == engine_status::STOPPED
    }
}

/// What a pass reads.
#[derive(Debug, Clone, Copy)]
pub struct Observed<'a> {
    pub schedule: &'a ChaosSchedule,
    pub children: &'a [Child],
    pub now: Timestamp,
}

/// An Event on the schedule (source component `chaos-scheduler`, as Litmus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleEvent {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// Why a due run did not happen (bounded metric label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// An earlier engine was still running (Forbid).
    Forbid,
    /// Passed over while blocked, halted or down: only the latest missed run is caught up.
    Missed,
    /// Late, and now is outside the allowed hours/days.
    OutsideWindow,
    /// The previous engine was deleted while running (Litmus: its missed tick is skipped).
    EngineDeleted,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Forbid => "forbid",
            SkipReason::Missed => "missed",
            SkipReason::OutsideWindow => "outside_window",
            SkipReason::EngineDeleted => "engine_deleted",
        }
    }
}

/// An engine to create for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub name: String,
    /// The run time it stands for (its name suffix for repeat).
    pub scheduled: Timestamp,
}

/// The outcome of a pass.
#[derive(Debug, Clone, PartialEq)]
pub struct Pass {
    /// The whole desired status (written as a merge patch of what changed). When `create` is
    /// set, the last `active` entry is the new engine without its UID: the shell fills it in.
    pub status: ChaosScheduleStatus,
    /// The value `spec.scheduleState` must get, when it must change.
    pub schedule_state: Option<&'static str>,
    pub create: Option<Create>,
    /// Running engines to stop (`engineState: stop`): `Replace` with the opt-in.
    pub stop: Vec<String>,
    /// Finished engines beyond `historyLimit`.
    pub delete: Vec<String>,
    pub events: Vec<ScheduleEvent>,
    /// When to look again although nothing changes (the next run, or the end of the range).
    pub wake_at: Option<Timestamp>,
    pub skipped: Vec<(SkipReason, u32)>,
}

/// A late catch-up run is still started if it is at most this late even outside the window
/// (a tick at 17:59 with `includedHours: 9-17` that the controller handles at 18:00:01).
const LATE_SECONDS: i64 = 60;

/// Longest name Litmus's engines can have: the operator labels the runner pod `app: <engine>`,
/// and label values are at most 63 characters (repeat adds `-` and 10 digits).
const MAX_ENGINE_NAME: usize = 63;

fn whole_second(t: Timestamp) -> Timestamp {
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn reference(
    schedule: &ChaosSchedule,
    name: &str,
    uid: Option<&str>,
    rv: Option<&str>,
) -> ObjectReference {
    ObjectReference {
        api_version: Some(API_VERSION.into()),
        kind: Some("ChaosEngine".into()),
        name: Some(name.into()),
        namespace: schedule.metadata.namespace.clone(),
        uid: uid.map(Into::into),
        resource_version: rv.map(Into::into),
        ..Default::default()
    }
}

/// The run time a repeat engine stands for, from its name `<schedule>-<unix seconds>`. Only
/// applied to engines proven ours by ownerReference UID.
pub fn scheduled_of(schedule_name: &str, engine_name: &str) -> Option<Timestamp> {
    let suffix = engine_name.strip_prefix(schedule_name)?.strip_prefix('-')?;
    if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Timestamp::from_second(suffix.parse().ok()?).ok()
}

struct Builder<'a> {
    obs: Observed<'a>,
    now: Timestamp,
    status: ChaosScheduleStatus,
    sched: ScheduleStatus,
    pass: Pass,
}

/// Decides one pass.
pub fn decide(obs: Observed<'_>) -> Pass {
    let now = whole_second(obs.now);
    let status = obs.schedule.status.clone().unwrap_or_default();
    let sched = status.schedule.clone().unwrap_or_default();
    let mut b = Builder {
        obs,
        now,
        status,
        sched,
        pass: Pass {
            status: ChaosScheduleStatus::default(),
            schedule_state: None,
            create: None,
            stop: Vec::new(),
            delete: Vec::new(),
            events: Vec::new(),
            wake_at: None,
            skipped: Vec::new(),
        },
    };
    b.refresh_active();
    b.history_limit();
    b.dispatch();
    b.sched.message = b.sched.message.take().filter(|m| !m.is_empty());
    b.status.schedule = Some(b.sched).filter(|s| *s != ScheduleStatus::default());
    b.pass.status = b.status;
    b.pass
}

impl Builder<'_> {
    fn event(&mut self, warning: bool, reason: &'static str, message: String) {
        self.pass.events.push(ScheduleEvent {
            warning,
            reason,
            message,
        });
    }

    fn wake(&mut self, at: Option<Timestamp>) {
        if let Some(at) = at {
            self.pass.wake_at = Some(self.pass.wake_at.map_or(at, |w| w.min(at)));
        }
    }

    fn set_state(&mut self, state: &'static str) {
        if self.obs.schedule.spec.schedule_state.as_deref() != Some(state) {
            self.pass.schedule_state = Some(state);
        }
    }

    /// A problem in words: in the status, and as a Warning the first time it appears.
    fn problem(&mut self, reason: &'static str, message: String) {
        if self.sched.message.as_deref() != Some(message.as_str()) {
            self.event(true, reason, message.clone());
        }
        self.sched.message = Some(message);
        self.sched.expected_next_run_time = None;
    }

    /// Litmus's "refresh active", by ownerReference: finished and vanished engines leave
    /// `active`; unfinished owned engines missing from it are adopted.
    fn refresh_active(&mut self) {
        let children = self.obs.children;
        let old = std::mem::take(&mut self.status.active);
        for entry in &old {
            let name = entry.name.clone().unwrap_or_default();
            match children
                .iter()
                .find(|c| Some(c.uid.as_str()) == entry.uid.as_deref())
            {
                Some(c) if c.finished() => self.event(
                    false,
                    "SawCompletedEngine",
                    format!("Saw completed engine: {name}, status: {}", c.engine_status),
                ),
                Some(_) => {}
                None => {
                    self.event(
                        false,
                        "MissingEngine",
                        format!("Active engine went missing: {name}"),
                    );
                    self.status.last_schedule_completion_time = Some(Time(self.now));
                }
            }
        }
        let mut active: Vec<&Child> = children.iter().filter(|c| !c.finished()).collect();
        active.sort_by(|a, b| a.name.cmp(&b.name));
        self.status.active = active
            .into_iter()
            .map(|c| {
                // Litmus keeps the resourceVersion seen at creation; so do we.
                let rv = old
                    .iter()
                    .find(|e| e.uid.as_deref() == Some(c.uid.as_str()))
                    .and_then(|e| e.resource_version.clone())
                    .or_else(|| c.resource_version.clone());
                reference(self.obs.schedule, &c.name, Some(&c.uid), rv.as_deref())
            })
            .collect();
    }

    /// Our extension `historyLimit`: the oldest finished engines beyond the limit are deleted.
    fn history_limit(&mut self) {
        let Some(limit) = self.obs.schedule.spec.history_limit else {
            return;
        };
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        let mut finished: Vec<&Child> = self
            .obs
            .children
            .iter()
            .filter(|c| c.finished() && !c.deleting)
            .collect();
        if finished.len() <= limit {
            return;
        }
        finished.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        let excess = finished.len() - limit;
        self.pass.delete = finished[..excess].iter().map(|c| c.name.clone()).collect();
    }

    fn dispatch(&mut self) {
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

    fn complete_automatically(&mut self) {
        if self.sched.status.as_deref() != Some(schedule_status::COMPLETED) {
            self.sched.status = Some(schedule_status::COMPLETED.into());
            self.sched.end_time = Some(Time(self.now));
        }
        self.sched.expected_next_run_time = None;
        self.set_state(schedule_state::COMPLETE);
    }

    fn create(&mut self, name: String, scheduled: Timestamp) {
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

    fn policy(&self) -> &str {
        if self.obs.schedule.spec.enforce_concurrency_policy == Some(true) {
            self.obs
                .schedule
                .spec
                .concurrency_policy
                .as_deref()
                .unwrap_or(concurrency_policy::FORBID)
        } else {
            concurrency_policy::FORBID
        }
    }

    fn repeat(&mut self, name: &str, r: &Repeat) {
        let created = self
            .obs
            .schedule
            .metadata
            .creation_timestamp
            .as_ref()
            .map_or(self.now, |t| t.0);
        let gate = gate(r, created);
        if r.end.is_some_and(|end| self.now > end) {
            self.complete_automatically();
            return;
        }
        let seed = if r.random {
            let seed = self
                .obs
                .schedule
                .spec
                .random_seed
                .or(self.sched.random_seed)
                .unwrap_or_else(|| {
                    seed_from_uid(self.obs.schedule.metadata.uid.as_deref().unwrap_or(name))
                });
            self.sched.random_seed = Some(seed);
            seed
        } else {
            0
        };
        // Engines we own that stand for runs later than the recorded one: created right before a
        // crash or a failed status write. They are the runs; counting them prevents a duplicate.
        let recorded = self.status.last_schedule_time.as_ref().map(|t| t.0);
        let adopted: Vec<Timestamp> = self
            .obs
            .children
            .iter()
            .filter_map(|c| scheduled_of(name, &c.name))
            .filter(|t| recorded.is_none_or(|l| *t > l))
            .collect();
        let mut last = recorded;
        if let Some(newest) = adopted.iter().max().copied() {
            last = Some(newest);
            self.status.last_schedule_time = Some(Time(newest));
            self.sched.run_instances =
                Some(self.sched.run_instances.unwrap_or(0) + adopted.len() as i64);
            self.sched.start_time = Some(Time(gate));
            self.sched.status = Some(schedule_status::RUNNING.into());
            self.set_state(schedule_state::ACTIVE);
        }
        let Some((due, passed_over)) = r.latest_due(last, gate, self.now, seed) else {
            self.arm_next(r, last, gate, seed);
            return;
        };
        if passed_over > 0 {
            self.pass.skipped.push((SkipReason::Missed, passed_over));
        }
        let deleted_at = self
            .status
            .last_schedule_completion_time
            .as_ref()
            .map(|t| t.0);
        if deleted_at.is_some_and(|c| c >= due) {
            // Litmus: the run missed while the previous engine ran is skipped when that engine
            // was deleted (rather than completed).
            self.note_skip(due, SkipReason::EngineDeleted, None);
            self.arm_next(r, Some(due), gate, seed);
            return;
        }
        let late = self.now.as_second() - due.as_second() > LATE_SECONDS;
        if late && !r.allowed(self.now) {
            self.note_skip(
                due,
                SkipReason::OutsideWindow,
                Some((
                    false,
                    "SkippedLateRun",
                    format!(
                        "Skipped the run due at {}: it is late and now is outside includedHours/includedDays",
                        rfc1123(due)
                    ),
                )),
            );
            self.arm_next(r, Some(due), gate, seed);
            return;
        }
        let policy = self.policy().to_string();
        if !self.status.active.is_empty()
            && policy != concurrency_policy::ALLOW
            && policy != concurrency_policy::REPLACE
        {
            self.note_skip(
                due,
                SkipReason::Forbid,
                Some((
                    true,
                    "MissEngine",
                    format!(
                        "Missed scheduled time to start an engine because of an active engine at: {}",
                        rfc1123(due)
                    ),
                )),
            );
            // The timer stays armed while blocked: the next run, or the end of the range.
            self.arm_next(r, Some(due), gate, seed);
            return;
        }
        if policy == concurrency_policy::REPLACE {
            self.pass.stop = self
                .status
                .active
                .iter()
                .filter_map(|e| e.name.clone())
                .collect();
        }
        self.status.last_schedule_time = Some(Time(due));
        self.sched.run_instances = Some(self.sched.run_instances.unwrap_or(0) + 1);
        self.sched.start_time = Some(Time(gate));
        self.create(format!("{name}-{}", due.as_second()), due);
        self.arm_next(r, Some(due), gate, seed);
    }

    /// A due run that does not happen: announced once per run time (`lastMissedTime`).
    fn note_skip(
        &mut self,
        due: Timestamp,
        reason: SkipReason,
        event: Option<(bool, &'static str, String)>,
    ) {
        if self.sched.last_missed_time.as_ref().map(|t| t.0) == Some(due) {
            return;
        }
        self.sched.last_missed_time = Some(Time(due));
        self.pass.skipped.push((reason, 1));
        if let Some((warning, reason, message)) = event {
            self.event(warning, reason, message);
        }
    }

    /// Records the next run in `expectedNextRunTime` and arms the timer for it (or for the end of
    /// the range, when the schedule completes).
    fn arm_next(&mut self, r: &Repeat, last: Option<Timestamp>, gate: Timestamp, seed: i64) {
        let next = r
            .planned_after(last, gate, seed)
            .filter(|t| r.end.is_none_or(|e| *t <= e));
        self.sched.expected_next_run_time = next.map(Time);
        // Completion is strictly after the end of the range.
        let end_wake = r
            .end
            .and_then(|e| Timestamp::from_second(e.as_second() + 1).ok());
        self.wake(next);
        self.wake(end_wake);
    }
}

/// Litmus's `MissEngine` time format (Go RFC 1123 with numeric zone), in UTC.
pub fn rfc1123(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}
