//! The persisted phases, defined with the status types in src/api/phase.rs (the status fields are
//! typed by them); re-exported here for the planner.
pub use crate::api::phase::{EnginePhase, ExperimentPhase};
