//! Repeat schedules: the latest due run, runs adopted after a lost status write, catch-up and
//! skips (missed, outside the window, engine deleted, Forbid), Replace, and the next timer.
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Builder, SkipReason, rfc1123, scheduled_of};
use crate::api::{concurrency_policy, schedule_state, schedule_status};
use crate::schedule::timing::{Repeat, gate, seed_from_uid};

/// A late catch-up run is still started if it is at most this late even outside the window
/// (a tick at 17:59 with `includedHours: 9-17` that the controller handles at 18:00:01).
const LATE_SECONDS: i64 = 60;

impl Builder<'_> {
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

    pub(super) fn repeat(&mut self, name: &str, r: &Repeat) {
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
