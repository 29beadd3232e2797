//! The `litmuschaos.io/v1alpha1` API types, wire-compatible with Litmus's own CRDs.
//!
//! Field names, validation patterns and status strings follow docs/litmus-compatibility.md (#crds,
//! #engine-fields, #status-strings); our additions (the persisted phase machine) live in extra
//! status fields that Litmus consumers ignore.
mod crd;
pub mod engine;
pub mod experiment;
pub mod limits;
pub mod phase;
pub mod result;
pub mod schedule;
pub mod schema;
pub mod status;

pub use crd::{all_crds, crds_yaml};
pub use engine::*;
pub use experiment::*;
pub use phase::{EnginePhase, ExperimentPhase};
pub use result::*;
pub use schedule::*;
pub use status::*;

/// API group of all four kinds.
pub const GROUP: &str = "litmuschaos.io";
/// API version of all four kinds.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` string of all four kinds.
pub const API_VERSION: &str = "litmuschaos.io/v1alpha1";
