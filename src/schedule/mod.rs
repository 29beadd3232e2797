//! ChaosSchedule, the pure core: when runs are due (Litmus's cron strings, work hours and days,
//! time range, seeded random draws) and what one reconcile pass does (create, adopt, block,
//! halt, complete). No I/O; the clock is passed in. The reconciler around it is
//! `crate::scheduler`. Not to be confused with [`crate::engine::schedule`], which orders the
//! experiments inside one engine.
pub mod cron;
pub mod decide;
pub mod timing;

pub use decide::{Child, Create, Observed, Pass, ScheduleEvent, SkipReason, decide};
pub use timing::{Repeat, Timing, TimingError, timing};

#[cfg(test)]
mod tests;
