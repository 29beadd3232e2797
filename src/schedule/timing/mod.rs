//! When a schedule's runs are due: the schedule type read from the spec, Litmus's cron string for
//! `repeat`, and the run times (fixed ticks, or one seeded draw per slot with `random: true`).
//!
//! This file reads the timing from the spec (types, errors, the cron string, window fields);
//! `runs.rs` computes the run times of a `repeat` (the start gate, ticks, slots and draws, the
//! latest due run, the next planned one).
mod runs;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::cron::{Cron, CronError, DAY_NAMES};
use crate::api::{ChaosScheduleSpec, ScheduleRepeat};
pub use runs::{gate, seed_from_uid};

/// Why the schedule's timing cannot be read. Messages name the field and say what to write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimingError {
    #[error("spec.schedule: set exactly one of now: true, once or repeat")]
    NoType,
    #[error(
        "spec.schedule.repeat.properties.minChaosInterval: set minute.everyNthMinute or hour.everyNthHour"
    )]
    NoInterval,
    #[error(
        "spec.schedule.repeat.properties.minChaosInterval.{field}: {value} is not allowed; use a whole number from 1 to {max}"
    )]
    BadInterval {
        field: &'static str,
        value: i64,
        max: i64,
    },
    #[error(
        "spec.schedule.repeat.properties.minChaosInterval.hour.minuteOfTheHour: {0} is not a minute (0-59)"
    )]
    BadMinute(i64),
    #[error("spec.schedule.repeat.{field}: {message}")]
    Window {
        field: &'static str,
        message: String,
    },
    #[error("spec.timeZone: {0:?} is not a known IANA time zone (e.g. UTC, Europe/Berlin)")]
    TimeZone(String),
    #[error(
        "the cron schedule {cron:?} built from minChaosInterval, includedHours and includedDays is invalid: {source}"
    )]
    Cron {
        cron: String,
        #[source]
        source: CronError,
    },
}

/// What kind of schedule this is.
#[derive(Debug, Clone)]
pub enum Timing {
    /// One engine immediately.
    Now,
    /// One engine at this instant (`None`: Litmus decodes a missing time as year 1 → now).
    Once(Option<Timestamp>),
    /// An engine per tick.
    Repeat(Box<Repeat>),
}

/// A `repeat` schedule, ready to compute run times.
#[derive(Debug, Clone)]
pub struct Repeat {
    pub cron: Cron,
    /// The allowed hours and days alone (`* H * * D`): the work window, without the steps.
    pub window: Cron,
    /// The cron string, as Litmus builds it (after our normalisation of the window fields).
    pub cron_text: String,
    /// The nominal minimum interval in seconds (N minutes or N hours).
    pub interval: i64,
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub random: bool,
    pub tz: TimeZone,
}

/// Reads the schedule type and its timing from the spec (Litmus's first-match order: `now: true`,
/// then `once`, then `repeat`).
pub fn timing(spec: &ChaosScheduleSpec) -> Result<Timing, TimingError> {
    let schedule = spec.schedule.as_ref().ok_or(TimingError::NoType)?;
    if schedule.now == Some(true) {
        return Ok(Timing::Now);
    }
    if let Some(once) = &schedule.once {
        return Ok(Timing::Once(once.execution_time.as_ref().map(|t| t.0)));
    }
    let repeat = schedule.repeat.as_ref().ok_or(TimingError::NoType)?;
    let tz = match spec.time_zone.as_deref().map(str::trim) {
        None | Some("") => TimeZone::UTC,
        Some(name) => jiff::tz::db()
            .get(name)
            .map_err(|_| TimingError::TimeZone(name.into()))?,
    };
    Ok(Timing::Repeat(Box::new(repeat_timing(repeat, tz)?)))
}

/// The cron string and nominal interval of `repeat` (Litmus createEngineForRepeat.go:306-342):
/// minute mode `*/N H * * D`, hour mode `M H/N * * D`.
pub fn repeat_timing(repeat: &ScheduleRepeat, tz: TimeZone) -> Result<Repeat, TimingError> {
    let hours = match &repeat.work_hours {
        Some(w) => normalise_window(&w.included_hours, 23, &[], "workHours.includedHours")?,
        None => "*".to_string(),
    };
    let days = match &repeat.work_days {
        Some(w) => normalise_window(&w.included_days, 6, DAY_NAMES, "workDays.includedDays")?,
        None => "*".to_string(),
    };
    let properties = repeat.properties.as_ref().ok_or(TimingError::NoInterval)?;
    let interval = properties
        .min_chaos_interval
        .as_ref()
        .ok_or(TimingError::NoInterval)?;
    let (cron_text, seconds) = if let Some(minute) = &interval.minute {
        let n = minute.every_nth_minute.unwrap_or(0);
        if !(1..=MAX_MINUTES).contains(&n) {
            return Err(TimingError::BadInterval {
                field: "minute.everyNthMinute",
                value: n,
                max: MAX_MINUTES,
            });
        }
        (format!("*/{n} {hours} * * {days}"), n * 60)
    } else if let Some(hour) = &interval.hour {
        let n = hour.every_nth_hour.unwrap_or(0);
        if !(1..=MAX_HOURS).contains(&n) {
            return Err(TimingError::BadInterval {
                field: "hour.everyNthHour",
                value: n,
                max: MAX_HOURS,
            });
        }
        let m = hour.minute_of_the_hour.unwrap_or(0);
        if !(0..=59).contains(&m) {
            return Err(TimingError::BadMinute(m));
        }
        (format!("{m} {hours}/{n} * * {days}"), n * 3600)
    } else {
        return Err(TimingError::NoInterval);
    };
    let cron = Cron::parse(&cron_text).map_err(|source| TimingError::Cron {
        cron: cron_text.clone(),
        source,
    })?;
    let window_text = format!("* {hours} * * {days}");
    let window = Cron::parse(&window_text).map_err(|source| TimingError::Cron {
        cron: cron_text.clone(),
        source,
    })?;
    let range = repeat.time_range.as_ref();
    Ok(Repeat {
        cron,
        window,
        cron_text,
        interval: seconds,
        start: range.and_then(|r| r.start_time.as_ref()).map(|t| t.0),
        end: range.and_then(|r| r.end_time.as_ref()).map(|t| t.0),
        random: properties.random == Some(true),
        tz,
    })
}

/// Largest accepted `everyNthMinute` (a week; the cron step collapses anything ≥ 60 to hourly).
pub const MAX_MINUTES: i64 = 7 * 24 * 60;
/// Largest accepted `everyNthHour` (a week; the cron step collapses anything ≥ 24 to daily).
pub const MAX_HOURS: i64 = 7 * 24;

/// Makes a window field robust where Litmus breaks at run time, without changing the meaning of
/// any string Litmus accepts: spaces around items are dropped (`Mon, Tue`), and a reversed range
/// without a step wraps around (`Fri-Mon` = `Fri-Sat,Sun-Mon`, `22-2` = `22-23,0-2`).
pub fn normalise_window(
    raw: &str,
    max: u32,
    names: &[&str],
    field: &'static str,
) -> Result<String, TimingError> {
    if raw.trim().is_empty() {
        return Err(TimingError::Window {
            field,
            message: "must not be empty (use \"*\" for all)".into(),
        });
    }
    let mut items = Vec::new();
    for item in raw.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(TimingError::Window {
                field,
                message: format!("{raw:?} has an empty item between commas"),
            });
        }
        if item.chars().any(char::is_whitespace) {
            return Err(TimingError::Window {
                field,
                message: format!("{item:?} contains a space; separate items with commas"),
            });
        }
        items.push(wrap_range(item, max, names));
    }
    Ok(items.join(","))
}

fn wrap_range(item: &str, max: u32, names: &[&str]) -> String {
    let value = |s: &str| -> Option<u32> {
        let lower = s.to_ascii_lowercase();
        names
            .iter()
            .position(|n| *n == lower)
            .map(|i| i as u32)
            .or_else(|| s.parse().ok())
    };
    if item.contains('/') {
        return item.into();
    }
    match item.split_once('-') {
        Some((a, b)) => match (value(a), value(b)) {
            (Some(a), Some(b)) if a > b && a <= max && b <= max => {
                format!("{a}-{max},0-{b}")
            }
            _ => item.into(),
        },
        None => item.into(),
    }
}
