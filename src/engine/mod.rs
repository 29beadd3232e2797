//! The pure core: what to do next for an engine, and the Job it launches. No I/O here; time is
//! passed in, so everything is tested without a cluster.
pub mod decision;
pub mod job;
pub mod phase;
pub mod plan;
pub mod random;
pub mod schedule;

pub use decision::{Decision, Effect, EventSource, EventSpec, EventType, JobRef};
pub use phase::{EnginePhase, ExperimentPhase};
pub use plan::{Lookups, Observed, PlanConfig, aborting, lookups, plan, verdicts_overdue};

#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod job_tests;
