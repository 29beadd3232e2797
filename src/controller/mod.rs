//! The imperative shell: watches, the read step, the write step, and the reconcile loop around the
//! pure core in [`crate::engine`].
//!
//! | what | module |
//! |---|---|
//! | the Controller: watches, caches, what triggers a pass | `run` |
//! | one pass over an engine, and the retry after a failed one | `reconcile` |
//! | the reconcile slots, part of them kept from aborts | `slots` |
//! | read what the decision needs | `observe` |
//! | the gates in front of a launch: kill switch, author re-check, their shared hold | `halt`, `author`, `hold` |
//! | write: effects and status | `apply` |
//! | Events, named the Litmus way | `events` |
//! | what both reconcilers share (this one and `crate::scheduler`) | `machinery` |
//! | an unreadable engine: release the finalizer the chart's policy put on it | `malformed` |
//! | shared state, settings, errors | `context`, `error` |
pub mod apply;
#[cfg(test)]
mod apply_tests;
pub mod author;
#[cfg(test)]
mod author_tests;
pub mod cache;
pub mod context;
pub mod error;
pub mod events;
pub mod halt;
mod hold;
pub mod machinery;
pub mod malformed;
pub mod observe;
#[cfg(test)]
mod observe_tests;
mod reconcile;
pub mod run;
mod slots;

pub use context::{Context, Settings, StatusMode};
pub use error::Error;
