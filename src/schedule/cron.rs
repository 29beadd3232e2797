//! The 5-field cron dialect of robfig/cron v3 `ParseStandard`, which Litmus's chaos-scheduler feeds
//! the strings it builds from `minChaosInterval`, `includedHours` and `includedDays`.
//!
//! Hand-written rather than taken from a crate because compatibility is in the details: `n/step`
//! means "n to the field maximum", `*-5` is `*`, day-of-week is 0-6 only (7 is an error), names are
//! case-insensitive, and day-of-month and day-of-week combine with AND when either is `*`
//! (docs/schedule.md cites the robfig source lines). Times are evaluated in a time zone on civil
//! (wall-clock) minutes.
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// Set when a field was `*` (or `?`) without a step > 1 (robfig's `starBit`).
const STAR: u64 = 1 << 63;

/// Why a cron string does not parse (robfig's messages, reworded).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("expected exactly 5 fields, found {found}: {expr:?}")]
    FieldCount { found: usize, expr: String },
    #[error("{field} field: {message}")]
    Field {
        field: &'static str,
        message: String,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bounds {
    field: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Bounds = Bounds {
    field: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Bounds = Bounds {
    field: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    field: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
/// Index + 1 = month number.
const MONTH_NAMES: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const MONTH: Bounds = Bounds {
    field: "month",
    min: 1,
    max: 12,
    names: MONTH_NAMES,
};
/// Index = day number (Sunday 0).
pub const DAY_NAMES: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const DOW: Bounds = Bounds {
    field: "day-of-week",
    min: 0,
    max: 6,
    names: DAY_NAMES,
};

/// A parsed schedule: one bit set per field (bit n = value n), plus [`STAR`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
}

/// How far `next`/`prev` search before giving up (robfig: 5 years).
const SEARCH_DAYS: i32 = 5 * 366;

impl Cron {
    /// Parses like robfig's `ParseStandard` (fields split on any whitespace).
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount {
                found: fields.len(),
                expr: expr.into(),
            });
        }
        Ok(Cron {
            minute: parse_field(fields[0], MINUTE)?,
            hour: parse_field(fields[1], HOUR)?,
            dom: parse_field(fields[2], DOM)?,
            month: parse_field(fields[3], MONTH)?,
            dow: parse_field(fields[4], DOW)?,
        })
    }

    fn day_matches(&self, d: Date) -> bool {
        let dom = self.dom & (1 << d.day() as u64) != 0;
        let dow = self.dow & (1 << d.weekday().to_sunday_zero_offset() as u64) != 0;
        if self.dom & STAR != 0 || self.dow & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }

    fn date_matches(&self, d: Date) -> bool {
        self.month & (1 << d.month() as u64) != 0 && self.day_matches(d)
    }

    /// Whether the hour (and its day) of civil time `t` is one the schedule may fire in: the
    /// "work hours / work days" window.
    pub fn hour_allowed(&self, t: DateTime) -> bool {
        self.date_matches(t.date()) && self.hour & (1 << t.hour() as u64) != 0
    }

    /// Whether the instant `t` falls in an allowed hour and day in `tz`.
    pub fn instant_allowed(&self, t: Timestamp, tz: &TimeZone) -> bool {
        self.hour_allowed(tz.to_datetime(t))
    }

    /// The first matching civil minute at or after `from` (seconds ignored), within the search limit.
    fn next_civil(&self, from: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let (mut h0, mut m0) = (from.hour() as u64, from.minute() as u64);
        for _ in 0..SEARCH_DAYS {
            if self.date_matches(date) {
                for h in h0..24 {
                    if self.hour & (1 << h) == 0 {
                        continue;
                    }
                    let start = if h == h0 { m0 } else { 0 };
                    if let Some(m) = (start..60).find(|m| self.minute & (1 << m) != 0) {
                        return Some(date.at(h as i8, m as i8, 0, 0));
                    }
                }
            }
            date = date.tomorrow().ok()?;
            (h0, m0) = (0, 0);
        }
        None
    }

    /// The last matching civil minute at or before `from` (seconds ignored).
    fn prev_civil(&self, from: DateTime) -> Option<DateTime> {
        let mut date = from.date();
        let (mut h0, mut m0) = (from.hour() as i64, from.minute() as i64);
        for _ in 0..SEARCH_DAYS {
            if self.date_matches(date) {
                for h in (0..=h0).rev() {
                    if self.hour & (1 << h) == 0 {
                        continue;
                    }
                    let end = if h == h0 { m0 } else { 59 };
                    if let Some(m) = (0..=end).rev().find(|m| self.minute & (1 << m) != 0) {
                        return Some(date.at(h as i8, m as i8, 0, 0));
                    }
                }
            }
            date = date.yesterday().ok()?;
            (h0, m0) = (23, 59);
        }
        None
    }

    /// The first tick strictly after `t` (robfig `Next`), evaluated in `tz`.
    pub fn next_after(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let civil = tz.to_datetime(t);
        let mut from = minute_of(civil).checked_add(1.minute()).ok()?;
        // A civil minute can map before `t` around a DST fold: keep searching past it.
        for _ in 0..4 {
            let found = self.next_civil(from)?;
            let instant = to_instant(found, tz)?;
            if instant > t {
                return Some(instant);
            }
            from = found.checked_add(1.minute()).ok()?;
        }
        None
    }

    /// The last tick at or before `t`, evaluated in `tz`.
    pub fn latest_at_or_before(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let mut from = minute_of(tz.to_datetime(t));
        for _ in 0..4 {
            let found = self.prev_civil(from)?;
            let instant = to_instant(found, tz)?;
            if instant <= t {
                return Some(instant);
            }
            from = found.checked_sub(1.minute()).ok()?;
        }
        None
    }

    /// The end of the allowed window that contains `t` (the first hour boundary after `t` whose
    /// hour or day is not allowed), or `limit` if the window reaches it.
    pub fn window_end(&self, t: Timestamp, limit: Timestamp, tz: &TimeZone) -> Timestamp {
        let Ok(mut cursor) = minute_of(tz.to_datetime(t)).with().minute(0).build() else {
            return limit;
        };
        // Bounded like the tick search; `limit` (the next tick) normally ends it much sooner.
        for _ in 0..SEARCH_DAYS * 24 {
            let Ok(next) = cursor.checked_add(1.hour()) else {
                return limit;
            };
            cursor = next;
            let Some(instant) = to_instant(cursor, tz) else {
                return limit;
            };
            if instant >= limit {
                return limit;
            }
            if !self.hour_allowed(cursor) {
                return instant;
            }
        }
        limit
    }
}

fn minute_of(t: DateTime) -> DateTime {
    t.with().second(0).subsec_nanosecond(0).build().unwrap_or(t)
}

/// The instant of a civil time in `tz`: a time skipped by DST moves forward, a repeated one is
/// taken at its first occurrence (jiff's "compatible" disambiguation, as most cron daemons).
fn to_instant(t: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    tz.to_ambiguous_zoned(t)
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

fn parse_field(field: &str, b: Bounds) -> Result<u64, CronError> {
    let mut bits = 0;
    for item in field.split(',') {
        bits |= parse_range(item, b).map_err(|message| CronError::Field {
            field: b.field,
            message,
        })?;
    }
    Ok(bits)
}

/// One item: `*`, `n`, `a-b`, each optionally `/step` (robfig parser.go `getRange`).
fn parse_range(expr: &str, b: Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let mut extra = 0;
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = b.min;
        end = b.max;
        extra = STAR;
    } else {
        start = int_or_name(low_high[0], b)?;
        end = match low_high.len() {
            1 => start,
            2 => int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr:?}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = plain_int(range_and_step[1])?;
            if single {
                end = b.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr:?}")),
    };
    if start < b.min {
        return Err(format!(
            "{start} is below the minimum {} in {expr:?}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!("{end} is above the maximum {} in {expr:?}", b.max));
    }
    if start > end {
        return Err(format!(
            "range start {start} is after its end {end} in {expr:?}"
        ));
    }
    if step == 0 {
        return Err(format!("step must be a positive number in {expr:?}"));
    }
    let mut bits = extra;
    let mut v = start;
    while v <= end {
        bits |= 1 << v;
        v += step;
    }
    Ok(bits)
}

fn int_or_name(s: &str, b: Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        // Month names start at 1, day names at 0.
        return Ok(i as u32 + b.min);
    }
    plain_int(s)
}

fn plain_int(s: &str) -> Result<u32, String> {
    let n: i64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number{}", name_hint(s)))?;
    if n < 0 {
        return Err(format!("negative number {n}"));
    }
    u32::try_from(n).map_err(|_| format!("{n} is too large"))
}

fn name_hint(s: &str) -> &'static str {
    if s.chars().all(|c| c.is_ascii_alphabetic()) && !s.is_empty() {
        " or a known name"
    } else {
        ""
    }
}
