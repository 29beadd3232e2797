//! What the pure core decides: the effects to execute, the status to persist, when to look again.
use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;

use crate::api::{ChaosEngineStatus, ChaosResult};

/// Kind of Event, as Kubernetes spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    /// `Normal` or `Warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// Who "emits" an Event: the Litmus operator's events, or the (virtual) runner's per-experiment
/// events, which Litmus names `<Reason><experiment><engineUID>` with source `<engine>-runner`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    Operator,
    Runner { experiment: String },
}

/// One Job to delete: its name, and its uid for the delete's precondition (a Job of that name
/// created since, by anyone, is not touched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub name: String,
    pub uid: String,
}

/// An Event on the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub source: EventSource,
    pub event_type: EventType,
    pub reason: String,
    pub message: String,
}

impl EventSpec {
    /// An operator event.
    pub fn operator(event_type: EventType, reason: &str, message: impl Into<String>) -> Self {
        Self {
            source: EventSource::Operator,
            event_type,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A runner event about one experiment.
    pub fn runner(
        experiment: &str,
        event_type: EventType,
        reason: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            source: EventSource::Runner {
                experiment: experiment.into(),
            },
            event_type,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// One write to the API. Every effect is idempotent: repeating it after a crash does no harm.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Add the finalizer (merge patch with a resourceVersion precondition).
    AddFinalizer,
    /// Remove the finalizer (last step of a delete).
    RemoveFinalizer,
    /// Create the Job; AlreadyExists with our ownerReference is adoption.
    CreateJob(Box<Job>),
    /// Delete a Job (foreground: its pod goes first); NotFound is done.
    DeleteJob { name: String },
    /// Delete these Jobs of the engine (each with its uid as precondition) and every Pod labelled
    /// `chaosUID=<engine uid>`, with the given grace period.
    DeleteChaosResources {
        grace_seconds: Option<i64>,
        jobs: Vec<JobRef>,
    },
    /// Force-delete (grace 0) these pods, left over after the abort's grace period.
    ForceDeletePods { names: Vec<String> },
    /// Replace a ChaosResult (full update with its resourceVersion, as litmus-go writes it).
    ReplaceResult(Box<ChaosResult>),
    /// Patch `spec.engineState: stop` (and clear the abort annotation when `clear_abort`).
    StopEngine { clear_abort: bool },
    /// Create or bump an Event on the engine.
    Event(EventSpec),
}

/// The outcome of one planning pass.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decision {
    /// Effects to execute before the status write, in order.
    pub before_status: Vec<Effect>,
    /// The status to persist (written only when it differs from the current one).
    pub status: ChaosEngineStatus,
    /// Effects to execute after the status write, in order (events, finalizer removal).
    pub after_status: Vec<Effect>,
    /// When to plan again even if nothing changes (deadlines); `None` waits for a watch event.
    pub requeue_after: Option<Duration>,
}

impl Decision {
    /// All effects, in execution order (status write in between not shown).
    pub fn effects(&self) -> impl Iterator<Item = &Effect> {
        self.before_status.iter().chain(self.after_status.iter())
    }

    /// The events this decision emits, in order.
    pub fn events(&self) -> impl Iterator<Item = &EventSpec> {
        self.effects().filter_map(|e| match e {
            Effect::Event(ev) => Some(ev),
            _ => None,
        })
    }
}
