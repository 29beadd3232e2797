//! Run-time rules of a ChaosSchedule: the schedule fields (where Litmus's chaos-scheduler fails
//! late or silently, docs/schedule.md W10/W11) and the engine template with the engine rules.
use serde_json::Value;

use super::checks::{check_engine, legacy_engine_fields};
use super::problem::Problem;
use crate::api::{ChaosEngine, ChaosSchedule, concurrency_policy, schedule_state};
use crate::schedule::cron::CronError;
use crate::schedule::{Timing, TimingError, timing};

const REPEAT: &str = "spec.schedule.repeat";
const INTERVAL: &str = "spec.schedule.repeat.properties.minChaosInterval";
const TEMPLATE: &str = "spec.engineTemplateSpec";

/// Problems visible in the raw document only (shapes that do not decode).
pub fn check_schedule_document(doc: &Value) -> Vec<Problem> {
    let mut out = Vec::new();
    let interval = doc.pointer("/spec/schedule/repeat/properties/minChaosInterval");
    if let Some(Value::String(s)) = interval {
        out.push(Problem::error(
            INTERVAL,
            format!(
                "{s:?} is the legacy string form (Litmus ≤ 1.13); write minute: {{everyNthMinute: N}} or hour: {{everyNthHour: N, minuteOfTheHour: M}}"
            ),
        ));
    }
    if let Some(days) = doc
        .pointer("/spec/schedule/repeat/workDays/includedDays")
        .and_then(Value::as_str)
        && !days
            .split([',', '-'])
            .any(|d| ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&d.trim()))
    {
        out.push(Problem::error(
            "spec.schedule.repeat.workDays.includedDays",
            format!(
                "{days:?}: the CRD requires capitalised day names (Mon,Tue,… or Mon-Fri); numbers and lowercase names are rejected by the API server"
            ),
        ));
    }
    if let Some(template) = doc.pointer("/spec/engineTemplateSpec") {
        let wrapped = serde_json::json!({ "spec": template });
        out.extend(legacy_engine_fields(&wrapped).into_iter().map(retarget));
        if template.get("engineState").is_none() {
            out.push(Problem::note(
                format!("{TEMPLATE}.engineState"),
                "not set: engines run with engineState active (Litmus's chaos-scheduler writes \"\" back and then every write of it is rejected, so set it when Litmus may run this schedule)",
            ));
        }
    }
    out
}

/// Moves an engine problem under the template (`spec.x` → `spec.engineTemplateSpec.x`), in a
/// message that names its field too.
fn retarget(mut p: Problem) -> Problem {
    let field = match p.field.strip_prefix("spec") {
        Some(rest) => format!("{TEMPLATE}{rest}"),
        None => TEMPLATE.to_string(),
    };
    if p.names_its_field() {
        p.message = format!("{field}{}", &p.message[p.field.len()..]);
    }
    p.field = field;
    p
}

/// Rules of a decoded ChaosSchedule.
pub fn check_schedule(schedule: &ChaosSchedule) -> Vec<Problem> {
    let mut out = Vec::new();
    let spec = &schedule.spec;
    let name = schedule.metadata.name.clone().unwrap_or_default();

    match spec.schedule_state.as_deref() {
        None | Some("") => {}
        Some(schedule_state::ACTIVE | schedule_state::HALT | schedule_state::COMPLETE) => {}
        Some(schedule_state::STOP) => out.push(Problem::warning(
            "spec.scheduleState",
            "stop does nothing (as in Litmus); use halt to pause or complete to finish",
        )),
        Some(other) => out.push(Problem::error(
            "spec.scheduleState",
            format!("{other:?} is not one of active, halt, complete: nothing would be scheduled"),
        )),
    }
    match spec.concurrency_policy.as_deref() {
        None | Some("") | Some(concurrency_policy::FORBID) => {}
        Some(p @ (concurrency_policy::ALLOW | concurrency_policy::REPLACE)) => {
            if spec.enforce_concurrency_policy != Some(true) {
                out.push(Problem::note(
                    "spec.concurrencyPolicy",
                    format!("{p} behaves as Forbid (as in Litmus) unless spec.enforceConcurrencyPolicy is true"),
                ));
            }
        }
        Some(other) => out.push(Problem::error(
            "spec.concurrencyPolicy",
            format!("{other:?} is not one of Forbid, Allow, Replace"),
        )),
    }
    if spec.chaos_service_account.is_some() {
        out.push(Problem::note(
            "spec.chaosServiceAccount",
            "ignored (as in Litmus): engines use engineTemplateSpec.chaosServiceAccount",
        ));
    }

    // Each part is checked on its own, so one mistake does not hide the others.
    let mut timing_ok = true;
    if let Some(zone) = spec
        .time_zone
        .as_deref()
        .map(str::trim)
        .filter(|z| !z.is_empty())
        && jiff::tz::db().get(zone).is_err()
    {
        out.push(timing_problem(&TimingError::TimeZone(zone.into())));
        timing_ok = false;
    }
    if let Some(repeat) = spec.schedule.as_ref().and_then(|s| s.repeat.as_ref()) {
        for problem in window_problems(repeat) {
            out.push(problem);
            timing_ok = false;
        }
        let bare = crate::api::ScheduleRepeat {
            work_hours: None,
            work_days: None,
            ..repeat.clone()
        };
        if let Err(e) = crate::schedule::timing::repeat_timing(&bare, jiff::tz::TimeZone::UTC) {
            out.push(timing_problem(&e));
            timing_ok = false;
        }
        if let Some(range) = &repeat.time_range {
            let (start, end) = (range.start_time.as_ref(), range.end_time.as_ref());
            if let (Some(start), Some(end)) = (start, end)
                && end.0 <= start.0
            {
                out.push(Problem::error(
                    format!("{REPEAT}.timeRange.endTime"),
                    "is not after startTime: the schedule would complete without running",
                ));
            } else if let Some(end) = end
                && end.0 < jiff::Timestamp::now()
            {
                out.push(Problem::warning(
                    format!("{REPEAT}.timeRange.endTime"),
                    "is in the past: the schedule completes at once with no engine",
                ));
            }
        }
        interval_semantics(spec, &mut out);
        window_portability(spec, &mut out);
        if repeat.properties.as_ref().and_then(|p| p.random) == Some(true) {
            out.push(Problem::note(
                format!("{REPEAT}.properties.random"),
                "each run is drawn at random inside its slot, at least one interval after the previous (Litmus ignores random)",
            ));
        }
    }
    let timing = if timing_ok {
        match timing(spec) {
            Ok(t) => Some(t),
            Err(e) => {
                out.push(timing_problem(&e));
                None
            }
        }
    } else {
        None
    };
    let limit = match spec.schedule.as_ref() {
        Some(s) if s.now != Some(true) && s.once.is_none() && s.repeat.is_some() => 52,
        _ => 63,
    };
    if name.len() > limit {
        out.push(Problem::error(
            "metadata.name",
            format!(
                "{} characters: at most {limit} for this schedule type, since engine names are derived from it and must be valid label values",
                name.len()
            ),
        ));
    }
    if let Some(Timing::Once(None)) = &timing {
        out.push(Problem::warning(
            "spec.schedule.once.executionTime",
            "not set: the engine is created immediately (as in Litmus); set a time, or use now: true",
        ));
    }

    let template = &spec.engine_template_spec;
    if !template.is_object() {
        out.push(Problem::error(
            TEMPLATE,
            "required: the spec of the engines this schedule creates",
        ));
    } else if let Ok(spec) = serde_json::from_value(template.clone()) {
        let mut engine = ChaosEngine::new(&name, spec);
        engine.metadata.namespace = schedule.metadata.namespace.clone();
        out.extend(check_engine(&engine).into_iter().map(retarget));
    }
    out
}

fn timing_problem(e: &TimingError) -> Problem {
    let field = match e {
        TimingError::NoType => "spec.schedule".to_string(),
        TimingError::NoInterval => INTERVAL.to_string(),
        TimingError::BadInterval { field, .. } => format!("{INTERVAL}.{field}"),
        TimingError::BadMinute(_) => format!("{INTERVAL}.hour.minuteOfTheHour"),
        TimingError::Window { field, .. } => format!("{REPEAT}.{field}"),
        TimingError::TimeZone(_) => "spec.timeZone".to_string(),
        TimingError::Cron { source, .. } => match source {
            CronError::Field { field: "hour", .. } => format!("{REPEAT}.workHours.includedHours"),
            CronError::Field {
                field: "day-of-week",
                ..
            } => format!("{REPEAT}.workDays.includedDays"),
            CronError::Field {
                field: "minute", ..
            } => INTERVAL.to_string(),
            _ => REPEAT.to_string(),
        },
    };
    let message = e.to_string();
    let message = match message.split_once(": ") {
        // The field is already in the location.
        Some((prefix, rest)) if prefix.starts_with("spec.") => rest.to_string(),
        _ => message,
    };
    Problem::error(field, message)
}

/// `includedHours` / `includedDays`, each parsed as its own cron field.
fn window_problems(repeat: &crate::api::ScheduleRepeat) -> Vec<Problem> {
    use crate::schedule::cron::{Cron, DAY_NAMES};
    use crate::schedule::timing::normalise_window;
    let mut out = Vec::new();
    let mut check =
        |raw: &str, max: u32, names: &[&str], field: &'static str, cron: fn(&str) -> String| {
            let result = normalise_window(raw, max, names, field).and_then(|normalised| {
                Cron::parse(&cron(&normalised))
                    .map(|_| ())
                    .map_err(|source| TimingError::Window {
                        field,
                        message: match source {
                            CronError::Field { message, .. } => message,
                            other => other.to_string(),
                        },
                    })
            });
            if let Err(e) = result {
                out.push(timing_problem(&e));
            }
        };
    if let Some(h) = &repeat.work_hours {
        check(&h.included_hours, 23, &[], "workHours.includedHours", |h| {
            format!("* {h} * * *")
        });
    }
    if let Some(d) = &repeat.work_days {
        check(
            &d.included_days,
            6,
            DAY_NAMES,
            "workDays.includedDays",
            |d| format!("* * * * {d}"),
        );
    }
    out
}

/// Litmus's cron-step semantics that surprise users (kept for compatibility).
fn interval_semantics(spec: &crate::api::ChaosScheduleSpec, out: &mut Vec<Problem>) {
    let Some(interval) = spec
        .schedule
        .as_ref()
        .and_then(|s| s.repeat.as_ref())
        .and_then(|r| r.properties.as_ref())
        .and_then(|p| p.min_chaos_interval.as_ref())
    else {
        return;
    };
    if let Some(n) = interval
        .minute
        .as_ref()
        .and_then(|m| m.every_nth_minute)
        .filter(|n| *n >= 1)
    {
        let field = format!("{INTERVAL}.minute.everyNthMinute");
        if n >= 60 {
            out.push(Problem::warning(
                field,
                format!("{n}: a cron minute step; runs hourly at :00, not every {n} minutes (Litmus semantics); use hour: {{everyNthHour: N}}"),
            ));
        } else if 60 % n != 0 {
            out.push(Problem::note(
                field,
                format!("{n} does not divide 60: the cron step restarts every hour, so the gap before :00 is {} minutes", 60 - n * (59 / n)),
            ));
        }
    }
    if let Some(n) = interval
        .hour
        .as_ref()
        .and_then(|h| h.every_nth_hour)
        .filter(|n| *n >= 1)
    {
        let field = format!("{INTERVAL}.hour.everyNthHour");
        if n >= 24 {
            out.push(Problem::warning(
                field,
                format!(
                    "{n}: a cron hour step; runs once a day, not every {n} hours (Litmus semantics)"
                ),
            ));
        } else if 24 % n != 0 {
            out.push(Problem::note(
                field,
                format!("{n} does not divide 24: the cron step restarts every day (a shorter gap before 00:00)"),
            ));
        }
    }
}

/// Window fields this controller accepts but Litmus's chaos-scheduler cannot run.
fn window_portability(spec: &crate::api::ChaosScheduleSpec, out: &mut Vec<Problem>) {
    let Some(repeat) = spec.schedule.as_ref().and_then(|s| s.repeat.as_ref()) else {
        return;
    };
    let litmus_fails = "works here; Litmus's chaos-scheduler fails on it at run time";
    if let Some(h) = &repeat.work_hours {
        let hours = &h.included_hours;
        if hours.trim() == "*" || hours.contains('/') {
            out.push(Problem::note(
                format!("{REPEAT}.workHours.includedHours"),
                format!(
                    "{hours:?} {litmus_fails} (its first-run check only reads numbers and ranges)"
                ),
            ));
        } else if hours.contains(' ') || reversed(hours, &[]) {
            out.push(Problem::warning(
                format!("{REPEAT}.workHours.includedHours"),
                format!("{hours:?} {litmus_fails}"),
            ));
        }
    }
    if let Some(d) = &repeat.work_days {
        let days = &d.included_days;
        if days.contains(' ') || reversed(days, crate::schedule::cron::DAY_NAMES) {
            out.push(Problem::warning(
                format!("{REPEAT}.workDays.includedDays"),
                format!("{days:?} {litmus_fails} (write e.g. Sat,Sun or Mon,Tue)"),
            ));
        }
    }
}

fn reversed(field: &str, names: &[&str]) -> bool {
    let value = |s: &str| -> Option<u32> {
        let lower = s.trim().to_ascii_lowercase();
        names
            .iter()
            .position(|n| *n == lower)
            .map(|i| i as u32)
            .or_else(|| lower.parse().ok())
    };
    field.split(',').any(|item| {
        !item.contains('/')
            && item
                .split_once('-')
                .and_then(|(a, b)| Some(value(a)? > value(b)?))
                .unwrap_or(false)
    })
}
