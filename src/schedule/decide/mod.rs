//! One reconcile pass of a ChaosSchedule as a pure function: from the schedule, the engines it
//! owns and the clock, what to write, create, stop, delete, announce, and when to look again.
//!
//! [`decide`] builds the pass in three steps, each in one file of this folder:
//!
//! | step | file |
//! |---|---|
//! | the engines it owns: refresh `active`, `historyLimit` | `active.rs` |
//! | what `scheduleState` asks for; the checks before a run; `now` and `once` | `dispatch.rs` |
//! | repeat: the due run, catch-up, skips, concurrency policy, the next timer | `repeat.rs` |
//!
//! This file holds the inputs and outputs, the entry point, and the builder's shared helpers.
mod active;
mod dispatch;
mod repeat;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;

use crate::api::{API_VERSION, ChaosSchedule, ChaosScheduleStatus, ScheduleStatus, engine_status};

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
}

/// Litmus's `MissEngine` time format (Go RFC 1123 with numeric zone), in UTC.
pub fn rfc1123(t: Timestamp) -> String {
    t.strftime("%a, %d %b %Y %H:%M:%S +0000").to_string()
}
