//! chaos-conductor: runs LitmusChaos ChaosEngines from one long-running controller.
pub mod api;
pub mod cli;
pub mod engine;
