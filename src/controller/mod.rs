//! The imperative shell: watches, the read step, the write step, and the reconcile loop around the
//! pure core in [`crate::engine`].
pub mod apply;
#[cfg(test)]
mod apply_tests;
pub mod author;
pub mod context;
pub mod error;
pub mod events;
pub mod halt;
pub mod malformed;
pub mod observe;
#[cfg(test)]
mod observe_tests;
pub mod run;

pub use context::{Context, Settings, StatusMode};
pub use error::Error;
