//! `plan`, gated by the kill switch covering the engine: a running engine is aborted through the
//! ordinary abort path, one that would start is held, a held one is released.
use k8s_openapi::jiff::Timestamp;
use kube::{Resource, ResourceExt};

use super::{Engaged, HALT_ABORT_REASON, HELD_CONDITION, HELD_REASON, HaltState, RELEASED_REASON};
use crate::api::{ABORT_ANNOTATION, ChaosEngine, engine_status};
use crate::controller::hold::{self, Hold, has_condition, owe};
use crate::engine::{
    Decision, Effect, EnginePhase, EventSpec, EventType, Observed, PlanConfig, plan,
};

/// A run of this engine is under way (initialized, with a run id): the switch aborts it.
pub(crate) fn running(engine: &ChaosEngine) -> bool {
    // Read in place: every pass of an engine with a recorded author asks this (author::may_check).
    engine
        .status
        .as_ref()
        .is_some_and(|s| s.engine_status == engine_status::INITIALIZED && s.run_id.is_some())
}

/// Paths that launch nothing and must go on under the switch: deletion, stop, an abort under way.
fn ending(engine: &ChaosEngine) -> bool {
    let aborting = engine
        .status
        .as_ref()
        .is_some_and(|s| s.phase == EnginePhase::Aborting);
    engine.metadata.deletion_timestamp.is_some()
        || !engine.wants_active()
        || engine.abort_requested()
        || aborting
}

/// Whether `decision` starts a run (also the point where src/controller/author.rs re-checks the
/// engine's recorded author).
pub(crate) fn starts_run(engine: &ChaosEngine, decision: &Decision) -> bool {
    !running(engine)
        && decision.status.engine_status == engine_status::INITIALIZED
        && decision.status.run_id.is_some()
}

/// Whether `decision` would start a run or create a Job.
fn launches(engine: &ChaosEngine, decision: &Decision) -> bool {
    starts_run(engine, decision)
        || decision
            .effects()
            .any(|e| matches!(e, Effect::CreateJob(_)))
}

fn key(engine: &ChaosEngine) -> String {
    format!(
        "{}/{}",
        engine.meta().namespace.as_deref().unwrap_or_default(),
        engine.meta().name.as_deref().unwrap_or_default()
    )
}

/// `plan`, gated by the kill switch covering the engine (call after [`HaltState::wait_known`]):
/// - not engaged: `plan` as is (a held engine's `Held` condition goes, with a Normal Event);
/// - engaged, run under way: `plan` of the engine as if the abort annotation were set (the
///   ordinary abort path: chaos deleted, ChaosResults Stopped, engine stopped), with the switch
///   named in the status message and a Warning Event;
/// - engaged, deleting / stopping / aborting: `plan` as is (launches nothing);
/// - engaged, anything else that would start a run or create a Job: held instead.
pub fn plan_gated(
    state: &HaltState,
    engine: &ChaosEngine,
    observed: &Observed,
    now: Timestamp,
    cfg: &PlanConfig,
) -> Decision {
    let engaged = state.engaged_for(engine.meta().namespace.as_deref().unwrap_or_default());
    let decision = match &engaged {
        Some(e) if running(engine) && !ending(engine) => {
            let mut aborted = engine.clone();
            aborted
                .annotations_mut()
                .insert(ABORT_ANNOTATION.into(), "true".into());
            let mut d = plan(&aborted, observed, now, cfg);
            if d.status.phase == EnginePhase::Aborting {
                d.status.message = format!("{}: removing chaos resources", e.describe());
            }
            owe(
                &mut d,
                observed,
                now,
                EventSpec::operator(
                    EventType::Warning,
                    HALT_ABORT_REASON,
                    format!("{}: run aborted", e.describe()),
                ),
            );
            state.aborts.inc();
            d
        }
        _ => {
            let mut d = plan(engine, observed, now, cfg);
            if let Some(e) = &engaged
                && launches(engine, &d)
            {
                d = hold_by_switch(engine, observed, e, now);
            } else if has_condition(engine, HELD_CONDITION) {
                hold::release(
                    &mut d,
                    observed,
                    HELD_CONDITION,
                    RELEASED_REASON,
                    "kill switch released: the engine runs",
                    now,
                );
            }
            d
        }
    };
    state.mark_held(key(engine), has_held_status(&decision));
    decision
}

pub(super) fn has_held_status(d: &Decision) -> bool {
    d.status
        .conditions
        .iter()
        .any(|c| c.type_ == HELD_CONDITION)
}

/// The decision that holds an engine: its stored status plus a `Held` condition and message;
/// no effect but the Warning Event, once.
fn hold_by_switch(
    engine: &ChaosEngine,
    observed: &Observed,
    e: &Engaged,
    now: Timestamp,
) -> Decision {
    let held = Hold {
        condition: HELD_CONDITION,
        reason: "KillSwitchEngaged",
        event_reason: HELD_REASON,
        message: format!("held: {}; starts when released", e.describe()),
        requeue_after: None,
    };
    hold::hold(engine, observed, held, now)
}
