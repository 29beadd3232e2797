//! The decision: given an engine, what was observed and the time, what to do next.
//!
//! `plan` is a pure function (no I/O, time passed in), so every transition is unit-tested without a
//! cluster. The shell gathers [`Observed`], executes the [`Decision`] and persists its status.
//!
//! A run goes validate → launch → monitor → cleanup → verdict, or aborts
//! (docs/litmus-compatibility.md#state-machine). [`plan`] dispatches on the engine's situation; each
//! phase is one file of this folder:
//!
//! | phase | file |
//! |---|---|
//! | what the shell reads before a pass (`lookups`) and gives it (`Observed`) | `observed.rs` |
//! | situation, start, re-run, engine rules (from src/validate/rules.rs) | `start.rs` |
//! | progress of the experiment list, stopOnFailure, iterations | `batch.rs` |
//! | the launch gate for one experiment: what it reads, what it checks | `gate.rs` |
//! | launching through the gate, and the experiments that end before they run | `launch.rs` |
//! | what is observed of a launched experiment, in the order it is checked | `assess.rs` |
//! | acting on it: running, verdict, abnormal endings | `monitor.rs` |
//! | verdict, Job cleanup, completion, the `Finished` condition | `finish.rs` |
//! | abort: sweep, force-delete, settle ChaosResults | `abort.rs` |
//!
//! This file holds the tunables, the dispatcher, and the [`Planner`]'s shared helpers.
mod abort;
mod assess;
mod batch;
mod finish;
mod gate;
mod launch;
mod monitor;
mod observed;
mod start;
#[cfg(test)]
mod tests;

use std::time::Duration;

use k8s_openapi::jiff::{SignedDuration, Timestamp, Unit};

use super::decision::{Decision, Effect, EventSpec};
use super::job;
use crate::api::{ChaosEngine, ChaosEngineStatus, ExperimentStatus};

pub use crate::api::limits::MAX_RUN_RECORDS;
pub use abort::settle_result;
pub use assess::{Assessment, assess, verdicts_overdue};
pub use finish::summary_verdict;
pub use gate::{Launchable, Resolved, Skip, gate, resolve};
pub use observed::{Lookups, Observed, lookups};
use start::{Situation, situation, working_status};
pub use start::{aborting, engine_problem, same_status};

/// Tunables of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanConfig {
    /// Longest an experiment may run from Job creation before it is ended (and its Job deleted).
    pub experiment_deadline: Duration,
    /// How long to wait for the ChaosResult verdict after the experiment container terminated.
    pub verdict_grace: Duration,
    /// Extra wait beyond the grace period for aborted chaos pods before force deletion.
    pub abort_margin: Duration,
}

impl Default for PlanConfig {
    fn default() -> Self {
        Self {
            experiment_deadline: Duration::from_secs(3600),
            verdict_grace: Duration::from_secs(60),
            abort_margin: Duration::from_secs(30),
        }
    }
}

/// Plans one pass for `engine`.
pub fn plan(
    engine: &ChaosEngine,
    observed: &Observed,
    now: Timestamp,
    cfg: &PlanConfig,
) -> Decision {
    let mut p = Planner::new(engine, observed, now, cfg);
    if !engine
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|x| x == crate::api::FINALIZER))
        && engine.metadata.deletion_timestamp.is_none()
    {
        p.before.push(Effect::AddFinalizer);
    }
    match situation(engine) {
        Situation::Abort => p.abort(),
        Situation::FinishCompleted => p.complete(),
        Situation::Idle => {}
        Situation::Start => p.start(),
        Situation::Restart => p.restart(),
        Situation::RestStopped => p.after.push(Effect::StopEngine {
            clear_abort: engine.abort_requested(),
        }),
        Situation::Progress => p.progress(),
    }
    if !matches!(situation(engine), Situation::Abort) {
        p.clean_up_finished_jobs();
    }
    p.finish()
}

struct Planner<'a> {
    engine: &'a ChaosEngine,
    observed: &'a Observed,
    now: Timestamp,
    cfg: &'a PlanConfig,
    status: ChaosEngineStatus,
    before: Vec<Effect>,
    after: Vec<Effect>,
    wake_at: Option<Timestamp>,
    /// Events of this pass, in order; written into the status outbox by `finish`.
    owed: Vec<EventSpec>,
}

impl<'a> Planner<'a> {
    fn new(
        engine: &'a ChaosEngine,
        observed: &'a Observed,
        now: Timestamp,
        cfg: &'a PlanConfig,
    ) -> Self {
        Self {
            engine,
            observed,
            now,
            cfg,
            status: working_status(engine, now),
            before: Vec::new(),
            after: Vec::new(),
            wake_at: None,
            owed: Vec::new(),
        }
    }

    fn wake(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    fn event(&mut self, ev: EventSpec) {
        self.owed.push(ev.clone());
        self.after.push(Effect::Event(ev));
    }

    fn grace(&self) -> Option<i64> {
        self.engine
            .spec
            .termination_grace_period_seconds
            .filter(|g| *g != 0)
    }

    fn entry_spec(&self, i: usize) -> Option<&'a crate::api::ExperimentList> {
        let name = &self.status.experiments[i].name;
        self.engine
            .spec
            .experiments
            .iter()
            .find(|e| &e.name == name)
    }

    fn index_of(&self, i: usize) -> usize {
        let name = &self.status.experiments[i].name;
        self.engine
            .spec
            .experiments
            .iter()
            .position(|e| &e.name == name)
            .unwrap_or(i)
    }

    fn update_entry(&mut self, i: usize, f: impl FnOnce(&mut ExperimentStatus)) {
        let before = self.status.experiments[i].clone();
        f(&mut self.status.experiments[i]);
        if self.status.experiments[i] != before {
            self.status.experiments[i].last_update_time = Some(stamp(self.now));
        }
    }

    /// The Job name this run derives for entry `i` (see [`job::job_name`]).
    fn derived_job_name(&self, i: usize) -> String {
        let entry = &self.status.experiments[i];
        job::job_name(
            &entry.name,
            self.engine.metadata.uid.as_deref().unwrap_or_default(),
            entry.run_id.or(self.status.run_id).unwrap_or(1),
            self.index_of(i),
            entry.iteration.unwrap_or(1),
        )
    }

    /// The outbox: this pass's events go into the status it writes (see
    /// `ChaosEngineStatus::pending_events`); delivered ones are dropped when a write happens anyway.
    fn fill_outbox(&mut self) {
        let changed = self
            .engine
            .status
            .as_ref()
            .is_none_or(|stored| !same_status(stored, &self.status));
        if !changed && self.owed.is_empty() {
            return;
        }
        if let Some(delivered) = self.observed.events_delivered {
            self.status
                .pending_events
                .retain(|e| (e.run, e.seq) > delivered);
        }
        let run = self.status.run_id.unwrap_or(0);
        let at = stamp(self.now);
        for ev in std::mem::take(&mut self.owed) {
            let seq = self.status.event_seq.unwrap_or(0) + 1;
            self.status.event_seq = Some(seq);
            let experiment = match ev.source {
                super::decision::EventSource::Runner { experiment } => experiment,
                super::decision::EventSource::Operator => String::new(),
            };
            self.status.pending_events.push(crate::api::OwedEvent {
                run,
                seq,
                experiment,
                type_: ev.event_type.as_str().into(),
                reason: ev.reason,
                message: ev.message,
                at: at.clone(),
            });
        }
    }

    fn finish(mut self) -> Decision {
        self.status.conditions = self.conditions();
        self.fill_outbox();
        let requeue_after = self.wake_at.map(|at| {
            let millis = at.duration_since(self.now).as_millis().max(0);
            // Never spin: a due deadline is looked at again in a moment, not in a hot loop.
            Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX).max(200))
        });
        Decision {
            before_status: self.before,
            status: self.status,
            after_status: self.after,
            requeue_after,
        }
    }
}

/// RFC 3339 at whole seconds, as Kubernetes writes timestamps.
fn stamp(now: Timestamp) -> String {
    now.round(Unit::Second).unwrap_or(now).to_string()
}

fn parse_time(s: Option<&str>) -> Option<Timestamp> {
    s.and_then(|s| s.parse::<Timestamp>().ok())
}

/// `t + d`, saturating instead of panicking at the end of time.
fn after(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

fn after_secs(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .unwrap_or(Timestamp::MAX)
}
