//! The imperative shell: watches, the read step, the write step, and the reconcile loop around the
//! pure core in [`crate::engine`].
pub mod apply;
pub mod author;
#[cfg(test)]
mod author_tests;
pub mod context;
pub mod error;
pub mod events;
pub mod halt;
mod hold;
pub mod machinery;
pub mod observe;
mod reconcile;
pub mod run;

pub use context::{Context, Settings, StatusMode};
pub use error::Error;
