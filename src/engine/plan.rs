//! The decision: given an engine, what was observed and the time, what to do next.
//!
//! `plan` is a pure function (no I/O, time passed in), so every transition is unit-tested without a
//! cluster. The shell gathers [`Observed`], executes the [`Decision`] and persists its status.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp, Unit};

use super::decision::{Decision, Effect, EventSpec, EventType};
use super::job::{self, JobIdentity, RenderError};
use super::phase::{EnginePhase, ExperimentPhase};
use super::random;
use super::schedule::{self, Start};
use crate::api::limits;
use crate::api::{
    ChaosEngine, ChaosEngineStatus, ChaosExperiment, ChaosResult, ExperimentStatus, engine_status,
    experiment_pod, experiment_status, result_name, result_phase, verdict,
};

pub use crate::api::limits::MAX_RUN_RECORDS;

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

/// What the shell read for this pass.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// ChaosExperiments looked up (see [`lookups`]): `None` = not found in the engine namespace.
    pub experiments: BTreeMap<String, Option<ChaosExperiment>>,
    /// Whether `spec.chaosServiceAccount` exists (`None` = not looked up).
    pub service_account_exists: Option<bool>,
    /// ConfigMaps referenced by the looked-up experiments that do not exist.
    pub missing_config_maps: BTreeSet<String>,
    /// Secrets referenced by the looked-up experiments that do not exist.
    pub missing_secrets: BTreeSet<String>,
    /// Jobs labelled `chaosUID=<engine uid>`.
    pub jobs: Vec<Job>,
    /// Pods labelled `chaosUID=<engine uid>`.
    pub pods: Vec<Pod>,
    /// ChaosResults of this engine (label `chaosUID`, or named after it).
    pub results: Vec<ChaosResult>,
    /// Jobs of this engine the API server refused to create (name → its message): a terminal,
    /// explained outcome for that experiment, never a retry.
    pub rejected_jobs: BTreeMap<String, String>,
    /// The last owed Event (run, seq) known delivered (see `status.pendingEvents`).
    pub events_delivered: Option<(i64, u64)>,
}

/// What the shell must read before planning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookups {
    /// ChaosExperiments (names) that may be launched in this pass.
    pub experiments: Vec<String>,
    /// The service account to check, when something may be launched.
    pub service_account: Option<String>,
}

/// Why the engine as a whole is invalid, in Litmus's words where Litmus has them.
pub fn engine_problem(engine: &ChaosEngine) -> Option<String> {
    let spec = &engine.spec;
    if let Some(sel) = &spec.selectors {
        let workloads = sel.workloads.as_ref().is_some_and(|w| !w.is_empty());
        let pods = sel.pods.as_ref().is_some_and(|p| !p.is_empty());
        if !workloads && !pods {
            return Some("spec.selectors: provide workloads or pods".into());
        }
    }
    if let Some(app) = &spec.appinfo {
        let kind = app.appkind.as_deref().is_some_and(|s| !s.is_empty());
        let label = app.applabel.as_deref().is_some_and(|s| !s.is_empty());
        if kind != label {
            return Some("incomplete appinfo, provide appkind and applabel both".into());
        }
    }
    if spec.experiments.len() > limits::MAX_EXPERIMENTS {
        return Some(format!(
            "spec.experiments: {}",
            limits::too_many_experiments(spec.experiments.len())
        ));
    }
    if let Some(n) = spec.execution.as_ref().and_then(|x| x.iterations)
        && n > limits::MAX_ITERATIONS
    {
        return Some(format!(
            "spec.execution.iterations: {}",
            limits::too_many_iterations(n)
        ));
    }
    let mut seen = BTreeSet::new();
    for e in &spec.experiments {
        if e.name.is_empty() {
            return Some("spec.experiments: every experiment needs a name".into());
        }
        if !seen.insert(e.name.as_str()) {
            return Some(format!(
                "spec.experiments: experiment {} is listed twice (names must be unique)",
                e.name
            ));
        }
    }
    if let Some(err) = schedule::check(engine) {
        return Some(err);
    }
    None
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

/// The status a fresh run starts from.
fn fresh_status(engine: &ChaosEngine, now: Timestamp) -> ChaosEngineStatus {
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
        phase: EnginePhase::Running.as_str().into(),
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
                phase: ExperimentPhase::Pending.as_str().into(),
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
fn iterations(engine: &ChaosEngine) -> u32 {
    engine
        .spec
        .execution
        .as_ref()
        .and_then(|e| e.iterations)
        .unwrap_or(1)
        .max(1)
}

/// How the controller sees the engine before acting.
enum Situation {
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

fn situation(engine: &ChaosEngine) -> Situation {
    let status = engine.status.clone().unwrap_or_default();
    let all_finished = !status.experiments.is_empty()
        && status
            .experiments
            .iter()
            .all(|e| ExperimentPhase::parse(&e.phase).is_terminal());
    let aborting = status.phase == EnginePhase::Aborting.as_str();
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

/// Whether this engine's pass is an abort (deleted, `stop` mid-run, the abort annotation): the
/// read step then checks the API, not only its caches, before the sweep is called complete.
pub fn aborting(engine: &ChaosEngine) -> bool {
    matches!(situation(engine), Situation::Abort)
}

/// The status a pass starts from: the stored one, or a fresh one when the run starts now.
fn working_status(engine: &ChaosEngine, now: Timestamp) -> ChaosEngineStatus {
    match situation(engine) {
        Situation::Start => fresh_status(engine, now),
        _ => engine.status.clone().unwrap_or_default(),
    }
}

/// What to read before [`plan`]: the experiments that may be launched in this pass.
pub fn lookups(engine: &ChaosEngine, now: Timestamp) -> Lookups {
    if !matches!(situation(engine), Situation::Start | Situation::Progress)
        || engine_problem(engine).is_some()
    {
        return Lookups::default();
    }
    let status = working_status(engine, now);
    if parse_time(status.next_iteration_at.as_deref()).is_some_and(|at| now < at) {
        return Lookups::default();
    }
    // Everything that may be decided in this pass is looked up now: an experiment skipped at
    // validation (not found, a missing ConfigMap...) lets the next one start in the same pass, so
    // once anything may launch, every pending experiment is read (one pass, however many).
    let may_launch = schedule::startable(engine, &status)
        .into_iter()
        .any(|s| matches!(s, Start::Launch(_)));
    let experiments: Vec<String> = if may_launch {
        status
            .experiments
            .iter()
            .filter(|e| ExperimentPhase::parse(&e.phase) == ExperimentPhase::Pending)
            .map(|e| e.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    let service_account = (!experiments.is_empty())
        .then(|| {
            engine
                .spec
                .chaos_service_account
                .clone()
                .filter(|s| !s.is_empty())
        })
        .flatten();
    Lookups {
        experiments,
        service_account,
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

    fn namespace(&self) -> &str {
        self.engine
            .metadata
            .namespace
            .as_deref()
            .unwrap_or_default()
    }

    fn wake(&mut self, at: Timestamp) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    fn event(&mut self, ev: EventSpec) {
        self.owed.push(ev.clone());
        self.after.push(Effect::Event(ev));
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

    /// The `Finished` condition, with its transition time kept while its status is unchanged.
    fn conditions(&self) -> Vec<Condition> {
        let (status, reason, message) = match self.status.phase.as_str() {
            "Completed" => (
                "True",
                "Completed",
                format!("verdict: {}", self.status.verdict),
            ),
            "Stopped" => ("True", "Stopped", "chaos resources removed".to_string()),
            "Invalid" => ("True", "Invalid", self.status.message.clone()),
            "Aborting" => ("False", "Aborting", "deleting chaos resources".to_string()),
            "" => return self.status.conditions.clone(),
            _ => ("False", "Running", "experiments in progress".to_string()),
        };
        let previous = self
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Finished");
        let transition = match previous {
            Some(c) if c.status == status => c.last_transition_time.clone(),
            _ => Time(self.now),
        };
        vec![Condition {
            type_: "Finished".into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_transition_time: transition,
            // Stamped by the shell when it writes (see apply::write_status).
            observed_generation: None,
        }]
    }

    fn start(&mut self) {
        self.event(EventSpec::operator(
            EventType::Normal,
            "ChaosEngineInitialized",
            format!(
                "Identifying app under test & launching {}",
                self.engine.runner_name()
            ),
        ));
        if let Some(problem) = engine_problem(self.engine) {
            self.invalid(problem);
            return;
        }
        self.progress();
    }

    fn invalid(&mut self, problem: String) {
        self.status.engine_status = engine_status::STOPPED.into();
        self.status.phase = EnginePhase::Invalid.as_str().into();
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

    fn restart(&mut self) {
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
        self.event(EventSpec::operator(
            EventType::Normal,
            "ChaosEngineInitialized",
            format!(
                "Identifying app under test & launching {}",
                self.engine.runner_name()
            ),
        ));
    }

    /// Deletes every Job and Pod labelled with the engine's chaosUID, once per pass.
    fn sweep_once(&mut self) {
        if !self
            .before
            .iter()
            .any(|e| matches!(e, Effect::DeleteChaosResources { .. }))
        {
            self.before.push(Effect::DeleteChaosResources {
                grace_seconds: self.grace(),
            });
        }
    }

    fn grace(&self) -> Option<i64> {
        self.engine
            .spec
            .termination_grace_period_seconds
            .filter(|g| *g != 0)
    }

    fn progress(&mut self) {
        // Entries follow spec.experiments (an edit of the list during a run adds/drops entries by name).
        self.reconcile_entries();
        for i in 0..self.status.experiments.len() {
            let phase = ExperimentPhase::parse(&self.status.experiments[i].phase);
            match phase {
                ExperimentPhase::Launched | ExperimentPhase::Running => self.monitor(i),
                _ => {}
            }
        }
        self.stop_on_failure();
        // Between iterations: nothing starts before the persisted time (a requeue, never a sleep).
        if let Some(at) = parse_time(self.status.next_iteration_at.as_deref()) {
            if self.now < at {
                self.wake(at);
                return;
            }
            self.status.next_iteration_at = None;
        }
        // Launch in a loop: an experiment skipped at validation lets the next one start at once.
        loop {
            let starts = schedule::startable(self.engine, &self.status);
            if starts.is_empty() {
                break;
            }
            let mut progressed = false;
            for start in starts {
                match start {
                    Start::Skip(i, why) => {
                        self.end_not_launched(i, experiment_status::SKIPPED, why, None);
                        progressed = true;
                    }
                    Start::Launch(i) => match self.launch(i, false) {
                        LaunchOutcome::Launched | LaunchOutcome::Skipped => progressed = true,
                        LaunchOutcome::NeedsLookup => self.wake(self.now),
                    },
                }
            }
            if !progressed {
                break;
            }
        }
        if self
            .status
            .experiments
            .iter()
            .all(|e| ExperimentPhase::parse(&e.phase).is_terminal())
        {
            let current = self.status.iteration.unwrap_or(1);
            if current < iterations(self.engine) && !self.failed_with_stop() {
                self.next_iteration(current);
            } else {
                if self.status.iteration.is_some() {
                    self.archive_iteration(current);
                }
                self.complete();
            }
        }
    }

    fn reconcile_entries(&mut self) {
        let fresh = fresh_status(self.engine, self.now);
        let mut entries = Vec::with_capacity(fresh.experiments.len());
        for mut f in fresh.experiments {
            match self.status.experiments.iter().find(|e| e.name == f.name) {
                Some(existing) => entries.push(existing.clone()),
                None => {
                    f.iteration = self.status.iteration;
                    entries.push(f)
                }
            }
        }
        self.status.experiments = entries;
    }

    /// Whether `stopOnFailure` is set and an experiment of this iteration did not pass.
    fn failed_with_stop(&self) -> bool {
        self.engine
            .spec
            .execution
            .as_ref()
            .and_then(|e| e.stop_on_failure)
            == Some(true)
            && self.status.experiments.iter().any(|e| {
                ExperimentPhase::parse(&e.phase).is_terminal() && e.verdict != verdict::PASS
            })
    }

    /// `stopOnFailure`: once an experiment did not pass, the running ones are aborted (their Jobs
    /// deleted, so they get SIGTERM and revert); the schedule cancels what has not started.
    fn stop_on_failure(&mut self) {
        if !self.failed_with_stop() {
            return;
        }
        let failed = self
            .status
            .experiments
            .iter()
            .find(|e| ExperimentPhase::parse(&e.phase).is_terminal() && e.verdict != verdict::PASS)
            .map(|e| e.name.clone())
            .unwrap_or_default();
        for i in 0..self.status.experiments.len() {
            if !ExperimentPhase::parse(&self.status.experiments[i].phase).is_active() {
                continue;
            }
            let job = self.status.experiments[i].job_name.clone();
            self.delete_owned_job(&job, true);
            let why = format!("aborted: experiment {failed} did not pass and stopOnFailure is set");
            self.abort_entry(i, None, Some(why));
        }
    }

    /// Records this iteration's entries in `status.runs`, keeping the newest [`MAX_RUN_RECORDS`]:
    /// the oldest are folded into a count and a summary verdict, so the engine verdict still
    /// covers every iteration and the object never outgrows etcd.
    fn archive_iteration(&mut self, iteration: u32) {
        for e in &self.status.experiments {
            let mut record = e.clone();
            record.iteration = Some(iteration);
            self.status.runs.push(record);
        }
        let excess = self.status.runs.len().saturating_sub(MAX_RUN_RECORDS);
        if excess == 0 {
            return;
        }
        let mut folded: Vec<ExperimentStatus> = self.status.runs.drain(..excess).collect();
        if let Some(v) = self.status.dropped_runs_verdict.take() {
            folded.push(ExperimentStatus {
                verdict: v,
                ..Default::default()
            });
        }
        self.status.dropped_runs_verdict = Some(summary_verdict(&folded));
        let dropped = u32::try_from(excess).unwrap_or(u32::MAX);
        self.status.dropped_runs = Some(
            self.status
                .dropped_runs
                .unwrap_or(0)
                .saturating_add(dropped),
        );
    }

    /// The verdict over every iteration: the kept records and the summary of the dropped ones.
    fn runs_verdict(&self) -> String {
        let mut all = self.status.runs.clone();
        if let Some(v) = &self.status.dropped_runs_verdict {
            all.push(ExperimentStatus {
                verdict: v.clone(),
                ..Default::default()
            });
        }
        summary_verdict(&all)
    }

    /// Starts the next iteration: fresh entries, and the seeded interval before it may launch.
    fn next_iteration(&mut self, current: u32) {
        self.archive_iteration(current);
        let next = current + 1;
        let exec = self.engine.spec.execution.clone().unwrap_or_default();
        let secs = random::interval(
            exec.min_interval_seconds.unwrap_or(0),
            exec.max_interval_seconds,
            self.status.seed.unwrap_or(0),
            current,
        );
        let mut fresh = fresh_status(self.engine, self.now).experiments;
        for e in &mut fresh {
            e.iteration = Some(next);
        }
        self.status.experiments = fresh;
        self.status.iteration = Some(next);
        let at = after_secs(self.now, i64::try_from(secs).unwrap_or(i64::MAX));
        self.status.next_iteration_at = (secs > 0).then(|| stamp(at));
        self.wake(at);
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

    /// Ends an entry: Litmus's status and verdict, our phase, optionally the pod and why, and the
    /// end time (set once).
    fn end_entry(
        &mut self,
        i: usize,
        status: &str,
        verdict: &str,
        phase: ExperimentPhase,
        pod: Option<String>,
        message: Option<String>,
    ) {
        let now = stamp(self.now);
        self.update_entry(i, |e| {
            if let Some(pod) = pod {
                e.experiment_pod = pod;
            }
            e.status = status.into();
            e.verdict = verdict.into();
            e.phase = phase.as_str().into();
            if let Some(message) = message {
                e.message = message;
            }
            e.finished_at.get_or_insert(now);
        });
    }

    /// Ends an entry as aborted (Litmus: `Forcefully Aborted` / `Stopped`).
    fn abort_entry(&mut self, i: usize, pod: Option<String>, message: Option<String>) {
        self.end_entry(
            i,
            experiment_status::ABORTED,
            verdict::STOPPED,
            ExperimentPhase::Aborted,
            pod,
            message,
        );
    }

    /// Ends an experiment that never got a Job (validation failure).
    fn end_not_launched(&mut self, i: usize, status: &str, why: String, reason: Option<&str>) {
        let name = self.status.experiments[i].name.clone();
        self.end_entry(
            i,
            status,
            verdict::FAIL,
            ExperimentPhase::Skipped,
            Some(experiment_pod::NOT_AVAILABLE.into()),
            Some(why),
        );
        let reason = reason.unwrap_or("ExperimentDependencyCheck");
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            reason,
            format!("Experiment Job creation failed, skipping Chaos Experiment: {name}"),
        ));
    }

    /// Launches entry `i`: checks what Litmus checks, renders the Job and records the intent.
    ///
    /// The Job is created only after the status naming it was written (the write carries a
    /// resourceVersion precondition), so an actor with a stale view fails instead of launching.
    /// `relaunch`: the intent was recorded but the Job does not exist (a crash between the write
    /// and the create); the status and its events already say Launched.
    fn launch(&mut self, i: usize, relaunch: bool) -> LaunchOutcome {
        let name = self.status.experiments[i].name.clone();
        let Some(looked_up) = self.observed.experiments.get(&name) else {
            return LaunchOutcome::NeedsLookup;
        };
        let Some(experiment) = looked_up else {
            let why = format!(
                "ChaosExperiment {name} not found in namespace {}",
                self.namespace()
            );
            self.end_not_launched(
                i,
                experiment_status::NOT_FOUND,
                why,
                Some("ExperimentNotFound"),
            );
            return LaunchOutcome::Skipped;
        };
        let Some(entry) = self.entry_spec(i) else {
            return LaunchOutcome::NeedsLookup;
        };
        if name.chars().count() > limits::MAX_EXPERIMENT_NAME_LEN {
            // The API server would refuse the Job: say why without asking it.
            let why = limits::experiment_name_too_long(&name);
            self.end_not_launched(i, experiment_status::SKIPPED, why.clone(), None);
            self.event(EventSpec::runner(
                &name,
                EventType::Warning,
                "ExperimentJobRejected",
                why,
            ));
            return LaunchOutcome::Skipped;
        }
        let sa = self
            .engine
            .spec
            .chaos_service_account
            .clone()
            .unwrap_or_default();
        if sa.is_empty() {
            self.end_not_launched(
                i,
                experiment_status::SKIPPED,
                RenderError::NoServiceAccount.to_string(),
                None,
            );
            return LaunchOutcome::Skipped;
        }
        match self.observed.service_account_exists {
            None => return LaunchOutcome::NeedsLookup,
            Some(false) => {
                let why = format!(
                    "ServiceAccount {sa} not found in namespace {}",
                    self.namespace()
                );
                self.end_not_launched(i, experiment_status::SKIPPED, why, None);
                return LaunchOutcome::Skipped;
            }
            Some(true) => {}
        }
        if self.engine.sidecar_enabled()
            && self
                .engine
                .spec
                .components
                .as_ref()
                .is_none_or(|c| c.sidecar.is_empty())
        {
            let why = RenderError::NoSidecar.to_string();
            self.end_not_launched(
                i,
                experiment_status::SKIPPED,
                why,
                Some("SideCarPatchError"),
            );
            return LaunchOutcome::Skipped;
        }
        let sources = match job::mounted_sources(experiment, entry) {
            Ok(s) => s,
            Err(e) => {
                self.end_not_launched(i, experiment_status::SKIPPED, e.to_string(), None);
                return LaunchOutcome::Skipped;
            }
        };
        let missing = sources
            .config_maps
            .iter()
            .find(|c| self.observed.missing_config_maps.contains(&c.name))
            .map(|c| {
                format!(
                    "ConfigMap {} not found in namespace {}",
                    c.name,
                    self.namespace()
                )
            })
            .or_else(|| {
                sources
                    .secrets
                    .iter()
                    .find(|s| self.observed.missing_secrets.contains(&s.name))
                    .map(|s| {
                        format!(
                            "Secret {} not found in namespace {}",
                            s.name,
                            self.namespace()
                        )
                    })
            });
        if let Some(why) = missing {
            self.end_not_launched(i, experiment_status::SKIPPED, why, None);
            return LaunchOutcome::Skipped;
        }
        let run_id = self.status.run_id.unwrap_or(1);
        let iteration = self.status.experiments[i].iteration.unwrap_or(1);
        let id = JobIdentity {
            index: self.index_of(i),
            run_id,
            iteration,
            entry,
        };
        let job = match job::render_job(self.engine, experiment, id) {
            Ok(job) => job,
            Err(e) => {
                self.end_not_launched(i, experiment_status::SKIPPED, e.to_string(), None);
                return LaunchOutcome::Skipped;
            }
        };
        let job_name = job.metadata.name.clone().unwrap_or_default();
        self.after.push(Effect::CreateJob(Box::new(job)));
        let deadline = after(self.now, self.cfg.experiment_deadline);
        if relaunch {
            let launched = parse_time(self.status.experiments[i].launched_at.as_deref());
            self.wake(launched.map_or(deadline, |t| after(t, self.cfg.experiment_deadline)));
            return LaunchOutcome::Launched;
        }
        let now = stamp(self.now);
        self.update_entry(i, |e| {
            e.phase = ExperimentPhase::Launched.as_str().into();
            e.job_name = job_name.clone();
            e.run_id = Some(run_id);
            e.launched_at.get_or_insert(now);
        });
        self.event(EventSpec::runner(
            &name,
            EventType::Normal,
            "ExperimentDependencyCheck",
            format!("Experiment resources validated for Chaos Experiment: {name}"),
        ));
        self.event(EventSpec::runner(
            &name,
            EventType::Normal,
            "ExperimentJobCreate",
            format!("Experiment Job {job_name} for Chaos Experiment: {name}"),
        ));
        self.wake(deadline);
        LaunchOutcome::Launched
    }

    fn monitor(&mut self, i: usize) {
        let entry = self.status.experiments[i].clone();
        let name = entry.name.clone();
        let launched = parse_time(entry.launched_at.as_deref()).unwrap_or(self.now);
        let deadline = after(launched, self.cfg.experiment_deadline);
        let timeout = self
            .entry_spec(i)
            .map_or(job::DEFAULT_STATUS_CHECK_TIMEOUT, |e| {
                job::status_check_timeouts(e).1
            });
        let pending_deadline = |since: Timestamp| after_secs(since, timeout);
        let job = self
            .observed
            .jobs
            .iter()
            .find(|j| j.metadata.name.as_deref() == Some(entry.job_name.as_str()));
        let result = self.result_for(&entry);

        if job.is_none() && entry.job_name != self.derived_job_name(i) {
            // Status names a Job this run never created and we do not own: written by someone
            // else. Nothing is done to that Job; the entry ends, saying so.
            let why = format!(
                "status named Job {:?}, which this engine did not create; ignored (status is written by the controller only)",
                entry.job_name
            );
            self.update_entry(i, |e| e.job_name.clear());
            self.end_launched(i, why, "ExperimentStatusUntrusted");
            return;
        }
        if self.now >= deadline {
            self.delete_owned_job(&entry.job_name, true);
            let secs = self.cfg.experiment_deadline.as_secs();
            self.end_launched(
                i,
                format!(
                    "experiment did not finish within the deadline of {secs}s; its Job was deleted"
                ),
                "ExperimentTimeout",
            );
            return;
        }
        self.wake(deadline);

        let Some(_job) = job else {
            if let Some(v) = result.as_ref().and_then(|r| final_verdict(r)) {
                // The Job was cleaned up after the container ended but before we wrote it down.
                self.record_verdict(i, v, None);
                return;
            }
            if ExperimentPhase::parse(&entry.phase) == ExperimentPhase::Launched {
                if let Some(message) = self.observed.rejected_jobs.get(&entry.job_name) {
                    self.job_rejected(i, message.clone());
                    return;
                }
                // Intent recorded, Job never created (or not yet): create it now, but only under
                // the name this run derives (a name in status is not proof of anything).
                if entry.job_name == self.derived_job_name(i) {
                    if let LaunchOutcome::NeedsLookup = self.launch(i, true) {
                        self.wake(self.now);
                    }
                    return;
                }
            }
            self.end_launched(
                i,
                format!(
                    "experiment Job {} disappeared before the experiment finished",
                    entry.job_name
                ),
                "ExperimentJobVanished",
            );
            return;
        };
        let Some(pod) = self.pod_of(&entry.job_name) else {
            let due = pending_deadline(launched);
            if self.now >= due {
                self.end_launched(
                    i,
                    format!("no experiment pod appeared within STATUS_CHECK_TIMEOUT ({timeout}s)"),
                    "ExperimentPodPendingTimeout",
                );
            } else {
                self.wake(due);
            }
            return;
        };
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let pod_phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let main = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == entry.job_name));
        let terminated = main
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.terminated.as_ref());

        if pod_phase == "Failed"
            && pod.metadata.deletion_timestamp.is_some()
            && self
                .result_any_run(&entry)
                .and_then(final_verdict)
                .as_deref()
                == Some(verdict::STOPPED)
        {
            // Deleted from outside (e.g. its namespace is being deleted): the experiment caught
            // SIGTERM and recorded Stopped; that is an abort, not a failed experiment.
            let why = format!("experiment pod {pod_name} was deleted; the experiment stopped");
            self.abort_entry(i, Some(pod_name), Some(why));
            return;
        }
        if pod_phase == "Failed" {
            let detail = terminated.map_or(String::new(), |t| {
                format!(
                    " (exit code {}, reason {})",
                    t.exit_code,
                    t.reason.clone().unwrap_or_default()
                )
            });
            self.end_launched(
                i,
                format!(
                    "status check failed as chaos pod status is Failed: pod {pod_name}{detail}"
                ),
                "ExperimentPodFailed",
            );
            return;
        }
        if pod_phase == "Succeeded" || terminated.is_some() {
            let ended = terminated
                .and_then(|t| t.finished_at.as_ref())
                .map_or(self.now, |t| t.0);
            match result.as_ref().and_then(|r| final_verdict(r)) {
                Some(v) => self.record_verdict(i, v, Some(pod_name)),
                None => {
                    let due = after(ended, self.cfg.verdict_grace);
                    if self.now >= due {
                        let why = format!(
                            "ChaosResult {} has no verdict {}s after the experiment container terminated",
                            entry.result_name,
                            self.cfg.verdict_grace.as_secs()
                        );
                        self.update_entry(i, |e| e.message = why.clone());
                        self.event(EventSpec::runner(
                            &name,
                            EventType::Warning,
                            "ExperimentVerdictMissing",
                            why,
                        ));
                        self.record_verdict(i, verdict::ERROR.into(), Some(pod_name));
                    } else {
                        self.wake(due);
                    }
                }
            }
            return;
        }
        if pod_phase == "Pending" || pod_phase.is_empty() {
            let since = pod
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(launched, |t| t.0);
            let due = pending_deadline(since);
            if self.now >= due {
                self.end_launched(i, format!("experiment pod {pod_name} stayed Pending longer than STATUS_CHECK_TIMEOUT ({timeout}s)"), "ExperimentPodPendingTimeout");
            } else {
                self.wake(due);
            }
            return;
        }
        // Running: written once when first seen, not on a timer.
        let now = stamp(self.now);
        self.update_entry(i, |e| {
            e.experiment_pod = pod_name;
            e.status = experiment_status::RUNNING.into();
            e.verdict = verdict::AWAITED.into();
            e.phase = ExperimentPhase::Running.as_str().into();
            e.running_at.get_or_insert(now);
        });
    }

    /// The experiment pod of a Job: the newest one not being deleted.
    fn pod_of(&self, job_name: &str) -> Option<&'a Pod> {
        self.observed
            .pods
            .iter()
            .filter(|p| {
                let labels = p.metadata.labels.as_ref();
                labels
                    .and_then(|l| {
                        l.get("job-name")
                            .or_else(|| l.get("batch.kubernetes.io/job-name"))
                    })
                    .is_some_and(|v| v == job_name)
            })
            .max_by_key(|p| {
                (
                    p.metadata.deletion_timestamp.is_none(),
                    p.metadata.creation_timestamp.clone(),
                )
            })
    }

    /// The ChaosResult of this experiment's current run: matched by name, and by the `job-name`
    /// label litmus-go copies from its pod into every result it writes while running. A result
    /// without it (written before the run, or left by an earlier run's abort path, which keeps only
    /// `chaosUID`) is not this run's verdict.
    fn result_for(&self, entry: &ExperimentStatus) -> Option<&'a ChaosResult> {
        self.observed
            .results
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(entry.result_name.as_str()))
            .filter(|r| result_job(r) == Some(entry.job_name.as_str()))
    }

    /// The result of entry's experiment whatever run wrote it: only to tell, for a pod deleted
    /// from outside, whether the experiment caught SIGTERM (litmus-go's abort path drops job-name).
    fn result_any_run(&self, entry: &ExperimentStatus) -> Option<&'a ChaosResult> {
        self.observed
            .results
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(entry.result_name.as_str()))
            .filter(|r| result_job(r).is_none_or(|j| j == entry.job_name))
    }

    /// Records a verdict and cleans up per `jobCleanUpPolicy`.
    fn record_verdict(&mut self, i: usize, v: String, pod: Option<String>) {
        let entry = self.status.experiments[i].clone();
        self.end_entry(
            i,
            experiment_status::COMPLETED,
            &v,
            ExperimentPhase::Done,
            pod,
            None,
        );
        let delete = self.engine.spec.job_clean_up_policy.as_deref() == Some("delete");
        let message = if delete {
            // After the status write that records the verdict: a crash in between leaves a Job
            // that `clean_up_finished_jobs` deletes on the next pass.
            self.delete_owned_job_after(&entry.job_name);
            format!("Experiment Job: {} will be deleted", entry.job_name)
        } else {
            format!("Experiment Job {} will be retained", entry.job_name)
        };
        self.event(EventSpec::runner(
            &entry.name,
            EventType::Normal,
            "ExperimentJobCleanUp",
            message,
        ));
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

    /// The API server refused the Job (invalid name, image, resources...): the experiment ends,
    /// explained with the server's own words, and the engine goes on.
    fn job_rejected(&mut self, i: usize, message: String) {
        let name = self.status.experiments[i].name.clone();
        let job = self.status.experiments[i].job_name.clone();
        let why = format!("the API server rejected experiment Job {job}: {message}");
        self.end_entry(
            i,
            experiment_status::SKIPPED,
            verdict::FAIL,
            ExperimentPhase::Failed,
            Some(experiment_pod::NOT_AVAILABLE.into()),
            Some(why.clone()),
        );
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            "ExperimentDependencyCheck",
            format!("Experiment Job creation failed, skipping Chaos Experiment: {name}"),
        ));
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            "ExperimentJobRejected",
            why,
        ));
    }

    /// Deletes the Job after the status write, if it is one we observed (observe keeps only Jobs
    /// with our controller ownerReference) and not already being deleted.
    fn delete_owned_job_after(&mut self, name: &str) {
        self.delete_owned_job(name, false);
    }

    /// Deletes a Job only if it is one we observed (observe keeps only Jobs with our controller
    /// ownerReference and chaosUID label) and not already being deleted: a name in status proves
    /// nothing. `before`: ahead of the status write (the shell fences it with a conditional write).
    fn delete_owned_job(&mut self, name: &str, before: bool) {
        let live = self.observed.jobs.iter().any(|j| {
            j.metadata.name.as_deref() == Some(name) && j.metadata.deletion_timestamp.is_none()
        });
        let effect = Effect::DeleteJob { name: name.into() };
        if live && !self.after.contains(&effect) && !self.before.contains(&effect) {
            if before {
                self.before.push(effect);
            } else {
                self.after.push(effect);
            }
        }
    }

    /// jobCleanUpPolicy delete, converged: a Job of an experiment that already has its verdict is
    /// deleted even when the pass that recorded the verdict did not get to delete it.
    fn clean_up_finished_jobs(&mut self) {
        if self.engine.spec.job_clean_up_policy.as_deref() != Some("delete") {
            return;
        }
        let done: Vec<String> = self
            .status
            .experiments
            .iter()
            .chain(self.status.runs.iter())
            .filter(|e| ExperimentPhase::parse(&e.phase) == ExperimentPhase::Done)
            .map(|e| e.job_name.clone())
            .collect();
        for name in done {
            self.delete_owned_job_after(&name);
        }
    }

    /// Ends a launched experiment that did not complete normally (Litmus: `Skipped` / `Fail`).
    fn end_launched(&mut self, i: usize, why: String, reason: &str) {
        let name = self.status.experiments[i].name.clone();
        self.end_entry(
            i,
            experiment_status::SKIPPED,
            verdict::FAIL,
            ExperimentPhase::Failed,
            None,
            Some(why.clone()),
        );
        self.event(EventSpec::runner(
            &name,
            EventType::Warning,
            "ChaosContainerWatchNotPermitted",
            format!("Experiment Job creation failed, skipping Chaos Experiment: {name}"),
        ));
        self.event(EventSpec::runner(&name, EventType::Warning, reason, why));
    }

    fn complete(&mut self) {
        if self.engine.wants_active() {
            // Written after the status: an engine version with `stop` but experiments still
            // running would read as an abort. A crash in between leaves `active` + `completed` with
            // an unchanged generation, which the next pass finishes (Situation::RestStopped).
            self.after.push(Effect::StopEngine { clear_abort: false });
        }
        self.status.engine_status = engine_status::COMPLETED.into();
        self.status.phase = EnginePhase::Completed.as_str().into();
        // With iterations the verdict covers every iteration, not only the last.
        self.status.verdict = if self.status.runs.is_empty() {
            summary_verdict(&self.status.experiments)
        } else {
            self.runs_verdict()
        };
        if self.status.experiments.is_empty() {
            self.status.message = "no experiments listed".into();
        }
        self.status
            .finished_at
            .get_or_insert_with(|| stamp(self.now));
        self.event(EventSpec::operator(
            EventType::Normal,
            "ChaosEngineCompleted",
            "ChaosEngine completed, will delete or retain the resources according to jobCleanUpPolicy",
        ));
    }

    fn abort(&mut self) {
        let deleting = self.engine.metadata.deletion_timestamp.is_some();
        if self.status.phase != EnginePhase::Aborting.as_str() {
            self.sweep_once();
            self.status.phase = EnginePhase::Aborting.as_str().into();
            self.status.aborted_at = Some(stamp(self.now));
            self.status.message = if deleting {
                "engine deleted: removing chaos resources".into()
            } else if self.engine.abort_requested() {
                "abort annotation set: removing chaos resources".into()
            } else {
                "engineState stop: removing chaos resources".into()
            };
        }
        let started = parse_time(self.status.aborted_at.as_deref()).unwrap_or(self.now);
        let grace = self.grace().unwrap_or(30).max(0);
        let deadline = after(after_secs(started, grace), self.cfg.abort_margin);
        let remaining: Vec<&Pod> = self.observed.pods.iter().collect();
        if !remaining.is_empty() {
            if self.now >= deadline {
                let names: Vec<String> = remaining
                    .iter()
                    .filter_map(|p| p.metadata.name.clone())
                    .collect();
                self.event(EventSpec::operator(
                    EventType::Warning,
                    "ChaosResourcesForceDeleted",
                    format!(
                        "chaos pods still present {}s after the abort, force-deleted: {}",
                        deadline.duration_since(started).as_secs(),
                        names.join(", ")
                    ),
                ));
                self.before.push(Effect::ForceDeletePods { names });
                self.wake(after_secs(self.now, 1));
            } else {
                // Pods created after the first sweep (helpers, probes) are swept too.
                let unmarked = remaining
                    .iter()
                    .any(|p| p.metadata.deletion_timestamp.is_none())
                    || self
                        .observed
                        .jobs
                        .iter()
                        .any(|j| j.metadata.deletion_timestamp.is_none());
                if unmarked {
                    self.sweep_once();
                }
                self.wake(deadline);
            }
            return;
        }
        if self
            .observed
            .jobs
            .iter()
            .any(|j| j.metadata.deletion_timestamp.is_none())
        {
            // A Job may still get a pod that is not in our cache yet: sweep and look again once
            // the watch shows the Job gone.
            self.sweep_once();
            self.wake(deadline);
            return;
        }
        // Every chaos pod is gone: settle the ChaosResults, the status, then the finalizer.
        let uid = self.engine.metadata.uid.clone().unwrap_or_default();
        for result in &self.observed.results {
            if let Some(updated) = settle_result(result, &uid) {
                self.before.push(Effect::ReplaceResult(Box::new(updated)));
            }
        }
        for i in 0..self.status.experiments.len() {
            if !ExperimentPhase::parse(&self.status.experiments[i].phase).is_terminal() {
                self.abort_entry(i, None, None);
            }
        }
        self.status.engine_status = engine_status::STOPPED.into();
        self.status.phase = EnginePhase::Stopped.as_str().into();
        self.status.verdict = summary_verdict(&self.status.experiments);
        self.status
            .finished_at
            .get_or_insert_with(|| stamp(self.now));
        self.status.message = "chaos resources removed".into();
        self.event(EventSpec::operator(
            EventType::Normal,
            "ChaosEngineStopped",
            "Chaos resources deleted successfully",
        ));
        if !deleting && self.engine.abort_requested() {
            // The annotation is consumed: the engine rests at `stop`, and `active` re-runs it.
            self.after.push(Effect::StopEngine { clear_abort: true });
        }
        if deleting {
            self.after.push(Effect::RemoveFinalizer);
        }
    }
}

enum LaunchOutcome {
    Launched,
    Skipped,
    NeedsLookup,
}

/// The Job a ChaosResult says it was written for (litmus-go copies the pod's labels).
fn result_job(r: &ChaosResult) -> Option<&str> {
    let labels = r.metadata.labels.as_ref()?;
    labels
        .get("job-name")
        .or_else(|| labels.get("batch.kubernetes.io/job-name"))
        .map(String::as_str)
}

/// The verdict of a ChaosResult once the experiment has written a final one.
fn final_verdict(result: &ChaosResult) -> Option<String> {
    let v = result
        .status
        .as_ref()
        .map(|s| s.experiment_status.verdict.clone())
        .unwrap_or_default();
    (!v.is_empty() && v != verdict::AWAITED).then_some(v)
}

/// The engine-level verdict: `Pass` only when every experiment passed.
pub fn summary_verdict(entries: &[ExperimentStatus]) -> String {
    if entries.is_empty() {
        return verdict::NOT_AVAILABLE.into();
    }
    if entries.iter().all(|e| e.verdict == verdict::PASS) {
        return verdict::PASS.into();
    }
    for v in [verdict::FAIL, verdict::ERROR, verdict::STOPPED] {
        if entries.iter().any(|e| e.verdict == v) {
            return v.into();
        }
    }
    entries
        .iter()
        .find(|e| e.verdict != verdict::PASS)
        .map_or_else(String::new, |e| e.verdict.clone())
}

/// After an abort: fold target annotations (`<kind>/<name>=injected|reverted|targeted`) into
/// `status.history.targets` and mark a result still Running/Awaited as Stopped. `None` when the
/// result belongs to another engine or needs no change.
pub fn settle_result(result: &ChaosResult, engine_uid: &str) -> Option<ChaosResult> {
    let labels = result.metadata.labels.as_ref();
    if labels
        .and_then(|l| l.get(job::CHAOS_UID_LABEL))
        .is_none_or(|u| u != engine_uid)
    {
        return None;
    }
    let mut updated = result.clone();
    let mut status = updated.status.take().unwrap_or_default();
    let had_history = status.history.is_some();
    let mut history = status.history.take().unwrap_or_default();
    if let Some(annotations) = updated.metadata.annotations.as_mut() {
        let folded: Vec<(String, String)> = annotations
            .iter()
            .filter(|(k, v)| {
                k.contains('/') && matches!(v.as_str(), "injected" | "reverted" | "targeted")
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (key, value) in folded {
            annotations.remove(&key);
            let (kind, name) = key.split_once('/').unwrap_or(("", key.as_str()));
            match history
                .targets
                .iter_mut()
                .find(|t| t.name == name && t.kind == kind)
            {
                Some(t) => t.chaos_status = value,
                None => history.targets.push(crate::api::TargetDetails {
                    name: name.into(),
                    kind: kind.into(),
                    chaos_status: value,
                }),
            }
        }
    }
    let es = &mut status.experiment_status;
    if es.phase == result_phase::RUNNING || es.verdict == verdict::AWAITED || es.verdict.is_empty()
    {
        es.phase = result_phase::STOPPED.into();
        es.verdict = verdict::STOPPED.into();
    }
    if had_history || !history.targets.is_empty() {
        status.history = Some(history);
    }
    updated.status = Some(status);
    (updated != *result).then_some(updated)
}
