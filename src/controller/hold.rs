//! Holding an engine instead of starting its run, the decision shape both gates in front of a
//! launch share: the kill switch (src/controller/halt/) and the author re-check
//! (src/controller/author.rs). Also how either adds an Event to a decision the way `plan` does.
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{Timestamp, Unit};

use crate::api::{ChaosEngine, OwedEvent};
use crate::engine::{Decision, Effect, EventSpec, EventType, Observed};

/// Why an engine is held, in its status and its Warning Event.
#[derive(Debug, Clone)]
pub(crate) struct Hold<'a> {
    /// The condition type on the held engine.
    pub condition: &'a str,
    /// The condition's reason.
    pub reason: &'a str,
    /// The Warning Event's reason.
    pub event_reason: &'a str,
    /// The status message, also the condition's and the Event's message.
    pub message: String,
    /// When to plan again although nothing changes (`None`: on the next change).
    pub requeue_after: Option<Duration>,
}

/// The decision that holds an engine: its stored status with the hold's message and condition
/// (its transition time kept while the engine stays held), nothing launched, and no effect but
/// the Warning Event, owed once per message.
pub(crate) fn hold(
    engine: &ChaosEngine,
    observed: &Observed,
    hold: Hold<'_>,
    now: Timestamp,
) -> Decision {
    let mut status = engine.status.clone().unwrap_or_default();
    let already = has_condition(engine, hold.condition) && status.message == hold.message;
    let transition = status
        .conditions
        .iter()
        .find(|c| c.type_ == hold.condition)
        .map_or(Time(now), |c| c.last_transition_time.clone());
    status.message = hold.message.clone();
    status.conditions.retain(|c| c.type_ != hold.condition);
    status.conditions.push(Condition {
        type_: hold.condition.into(),
        status: "True".into(),
        reason: hold.reason.into(),
        message: hold.message.clone(),
        last_transition_time: transition,
        observed_generation: None,
    });
    let mut d = Decision {
        before_status: Vec::new(),
        status,
        after_status: Vec::new(),
        requeue_after: hold.requeue_after,
    };
    if !already {
        owe(
            &mut d,
            observed,
            now,
            EventSpec::operator(EventType::Warning, hold.event_reason, hold.message),
        );
    }
    d
}

/// Ends a hold: the decision loses the hold's condition and owes a Normal Event saying the run
/// goes on.
pub(crate) fn release(
    d: &mut Decision,
    observed: &Observed,
    condition: &str,
    event_reason: &str,
    message: &str,
    now: Timestamp,
) {
    d.status.conditions.retain(|c| c.type_ != condition);
    owe(
        d,
        observed,
        now,
        EventSpec::operator(EventType::Normal, event_reason, message),
    );
}

/// Whether the engine's stored status has a condition of this type.
pub(crate) fn has_condition(engine: &ChaosEngine, condition: &str) -> bool {
    engine
        .status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == condition))
}

/// Adds an Event to the decision the way `plan` does: into the status outbox
/// (`status.pendingEvents`, delivered by the shell after the write) and as an effect (logged).
pub(crate) fn owe(d: &mut Decision, observed: &Observed, now: Timestamp, ev: EventSpec) {
    let status = &mut d.status;
    if let Some(delivered) = observed.events_delivered {
        status.pending_events.retain(|e| (e.run, e.seq) > delivered);
    }
    let seq = status.event_seq.unwrap_or(0) + 1;
    status.event_seq = Some(seq);
    status.pending_events.push(OwedEvent {
        run: status.run_id.unwrap_or(0),
        seq,
        experiment: String::new(),
        type_: ev.event_type.as_str().into(),
        reason: ev.reason.clone(),
        message: ev.message.clone(),
        at: now.round(Unit::Second).unwrap_or(now).to_string(),
    });
    d.after_status.push(Effect::Event(ev));
}
