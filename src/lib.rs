//! chaos-conductor: runs LitmusChaos ChaosEngines from one long-running controller.
pub mod api;
pub mod cli;
pub mod validate;
pub mod controller;
pub mod engine;
pub mod metrics;
pub mod telemetry;
