//! Where a pass starts: how the controller sees the engine ([`Situation`]), the engine-wide rules,
//! the status a fresh run starts from, and starting or re-running a run.
use k8s_openapi::jiff::Timestamp;

use super::{Planner, stamp};
use crate::api::{
    ChaosEngine, ChaosEngineStatus, ExperimentStatus, engine_status, experiment_pod,
    experiment_status, result_name, verdict,
};
use crate::engine::decision::{Effect, EventSpec, EventType, JobRef};
use crate::engine::job;
use crate::engine::phase::{EnginePhase, ExperimentPhase};
use crate::engine::random;
use crate::validate::rules::{controller_words, engine_rules};

impl<'a> Planner<'a> {
    /// Litmus's first Event of a run (docs/litmus-compatibility.md#events).
    fn initialized(&mut self) {
        self.event(EventSpec::operator(
            EventType::Normal,
            "ChaosEngineInitialized",
            format!(
                "Identifying app under test & launching {}",
                self.engine.runner_name()
            ),
        ));
    }

    pub(super) fn start(&mut self) {
        self.initialized();
        if let Some(problem) = engine_problem(self.engine) {
            self.invalid(problem);
            return;
        }
        self.progress();
    }

    fn invalid(&mut self, problem: String) {
        self.status.engine_status = engine_status::STOPPED.into();
        self.status.phase = EnginePhase::Invalid;
        self.status.message = problem.clone();
        self.status
            .finished_at
            .get_or_insert_with(|| stamp(self.now));
        if self.engine.wants_active() {
            self.before.push(Effect::StopEngine { clear_abort: false });
        }
        self.event(EventSpec::operator(
            EventType::Warning,
            "ChaosEngineInvalid",
            problem,
        ));
    }

    pub(super) fn restart(&mut self) {
        let was_stopped = self.status.engine_status == engine_status::STOPPED;
        self.sweep_once();
        if was_stopped {
            self.event(EventSpec::operator(
                EventType::Normal,
                "RestartInProgress",
                "ChaosEngine is restarted",
            ));
        }
        // The fresh status is written in this pass and the run proceeds in the next one, so a
        // retried restart can never delete a Job of the new run.
        let pending = std::mem::take(&mut self.status.pending_events);
        self.status = fresh_status(self.engine, self.now);
        self.status.pending_events = pending;
        self.initialized();
    }

    /// Deletes every Job and Pod labelled with the engine's chaosUID, once per pass (before the
    /// status, unless this pass already sweeps after it).
    pub(super) fn sweep_once(&mut self) {
        if !self
            .before
            .iter()
            .chain(&self.after)
            .any(|e| matches!(e, Effect::DeleteChaosResources { .. }))
        {
            let sweep = self.sweep();
            self.before.push(sweep);
        }
    }

    /// The sweep of an abort: the engine's Jobs as observed (the caches, or at the very end of an
    /// abort the live list, src/controller/observe.rs) that are not yet being deleted, and its pods
    /// by label. A Job not observed yet is swept by a later pass: the abort is complete only when
    /// a live list shows nothing left (docs/performance.md "Mass abort").
    pub(super) fn sweep(&self) -> Effect {
        Effect::DeleteChaosResources {
            grace_seconds: self.grace(),
            jobs: self
                .observed
                .jobs
                .iter()
                .filter(|j| j.metadata.deletion_timestamp.is_none())
                .filter_map(|j| {
                    Some(JobRef {
                        name: j.metadata.name.clone()?,
                        uid: j.metadata.uid.clone()?,
                    })
                })
                .collect(),
        }
    }
}

/// How the controller sees the engine before acting.
pub(super) enum Situation {
    /// Delete, abort annotation, or `stop` while running: remove all chaos.
    Abort,
    /// `stop` after the last experiment ended but before `completed` was written (crash window).
    FinishCompleted,
    /// `stop` and nothing running: nothing to do.
    Idle,
    /// `active` and never initialized (or initialized by someone else): start a run.
    Start,
    /// `active` after `completed` / `stopped` and a spec change: clean up the last run, start afresh.
    Restart,
    /// `active` after `completed` / `stopped`, spec unchanged since: write the pending `stop`.
    RestStopped,
    /// `active` and initialized: move the experiments on.
    Progress,
}

pub(super) fn situation(engine: &ChaosEngine) -> Situation {
    let status = engine.status.clone().unwrap_or_default();
    let all_finished =
        !status.experiments.is_empty() && status.experiments.iter().all(|e| e.phase.is_terminal());
    let aborting = status.phase == EnginePhase::Aborting;
    if engine.metadata.deletion_timestamp.is_some() || engine.abort_requested() || aborting {
        return Situation::Abort;
    }
    let initialized = status.engine_status == engine_status::INITIALIZED;
    if !engine.wants_active() {
        return match (initialized, all_finished) {
            (true, true) => Situation::FinishCompleted,
            (true, false) => Situation::Abort,
            _ => Situation::Idle,
        };
    }
    match status.engine_status.as_str() {
        // `active` again after the run ended is a re-run only if the spec changed since the status
        // was written (a user's edit bumps metadata.generation); otherwise the `stop` that follows
        // the final status was not written yet (a crash, or a pass on the status-write event).
        engine_status::COMPLETED | engine_status::STOPPED => {
            let changed_since = match (engine.metadata.generation, status.observed_generation) {
                (Some(g), Some(o)) => g > o,
                _ => true,
            };
            if changed_since {
                Situation::Restart
            } else {
                Situation::RestStopped
            }
        }
        engine_status::INITIALIZED if status.run_id.is_some() => Situation::Progress,
        _ => Situation::Start,
    }
}

/// The status a pass starts from: the stored one, or a fresh one when the run starts now.
pub(super) fn working_status(engine: &ChaosEngine, now: Timestamp) -> ChaosEngineStatus {
    match situation(engine) {
        Situation::Start => fresh_status(engine, now),
        _ => engine.status.clone().unwrap_or_default(),
    }
}

/// Whether this engine's pass is an abort (deleted, `stop` mid-run, the abort annotation): the
/// read step then checks the API, not only its caches, before the sweep is called complete.
pub fn aborting(engine: &ChaosEngine) -> bool {
    matches!(situation(engine), Situation::Abort)
}

/// Whether two statuses say the same, generations aside (see `apply::status_changed`).
pub fn same_status(a: &ChaosEngineStatus, b: &ChaosEngineStatus) -> bool {
    let clear = |s: &ChaosEngineStatus| {
        let mut s = s.clone();
        s.observed_generation = None;
        for c in &mut s.conditions {
            c.observed_generation = None;
        }
        s
    };
    clear(a) == clear(b)
}

/// The status a fresh run starts from.
pub(super) fn fresh_status(engine: &ChaosEngine, now: Timestamp) -> ChaosEngineStatus {
    let run_id = engine.metadata.generation.unwrap_or(1);
    let runner = engine.runner_name();
    let iteration = (iterations(engine) > 1).then_some(1);
    // A seed is recorded whenever spec.execution exists, so any run can be replayed exactly.
    let seed = engine.spec.execution.as_ref().map(|e| {
        e.seed.unwrap_or_else(|| {
            random::pick_seed(
                engine.metadata.uid.as_deref().unwrap_or_default(),
                run_id,
                now.as_nanosecond(),
            )
        })
    });
    ChaosEngineStatus {
        engine_status: engine_status::INITIALIZED.into(),
        phase: EnginePhase::Running,
        run_id: Some(run_id),
        started_at: Some(stamp(now)),
        seed,
        iteration,
        experiments: engine
            .spec
            .experiments
            .iter()
            .map(|e| ExperimentStatus {
                name: e.name.clone(),
                runner: runner.clone(),
                experiment_pod: experiment_pod::YET_TO_BE_LAUNCHED.into(),
                status: experiment_status::WAITING.into(),
                verdict: verdict::NOT_AVAILABLE.into(),
                last_update_time: Some(stamp(now)),
                phase: ExperimentPhase::Pending,
                run_id: Some(run_id),
                iteration,
                result_name: result_name(
                    engine.metadata.name.as_deref().unwrap_or_default(),
                    &e.name,
                    job::instance_id(e).as_deref(),
                ),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// How many times the experiment list runs (`spec.execution.iterations`, default 1).
pub(super) fn iterations(engine: &ChaosEngine) -> u32 {
    engine
        .spec
        .execution
        .as_ref()
        .and_then(|e| e.iterations)
        .unwrap_or(1)
        .max(1)
}

/// Why the engine as a whole is invalid: the first engine rule it breaks, in the rule book's words
/// (src/validate/rules.rs), so `validate` and the controller say the same for the same mistake.
pub fn engine_problem(engine: &ChaosEngine) -> Option<String> {
    engine_rules(engine).first().map(controller_words)
}
