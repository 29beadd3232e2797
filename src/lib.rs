//! chaos-conductor: runs LitmusChaos ChaosEngines from one long-running controller.
pub mod api;
pub mod cli;
pub mod controller;
pub mod engine;
pub mod fence;
pub mod leader;
pub mod metrics;
pub mod ratelimit;
pub mod schedule;
pub mod scheduler;
pub mod server;
pub mod telemetry;
pub mod validate;
