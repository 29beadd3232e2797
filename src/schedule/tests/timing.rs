//! Run times of every form as Litmus's cron strings, and timing problems reported once.
use serde_json::json;

use super::{Sim, repeat_spec, spec};
use crate::api::ChaosScheduleSpec;
use crate::schedule::timing::{Timing, timing};

fn cron_text(spec: &ChaosScheduleSpec) -> Result<String, String> {
    match timing(spec) {
        Ok(Timing::Repeat(r)) => Ok(r.cron_text.clone()),
        Ok(other) => Err(format!("not repeat: {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn cron_strings_are_litmus_strings_and_window_fields_are_robust() {
    assert_eq!(
        cron_text(&repeat_spec(5, json!({}))).unwrap(),
        "*/5 * * * *"
    );
    let windowed = repeat_spec(
        30,
        json!({"workHours": {"includedHours": "9-17"}, "workDays": {"includedDays": "Mon-Fri"}}),
    );
    assert_eq!(cron_text(&windowed).unwrap(), "*/30 9-17 * * Mon-Fri");
    let hour = spec(
        json!({"repeat": {"properties": {"minChaosInterval": {"hour": {"everyNthHour": 2, "minuteOfTheHour": 15}}}}}),
    );
    assert_eq!(cron_text(&hour).unwrap(), "15 */2 * * *");
    // Fixed here (Litmus: parse error at run time, W10).
    let spaced = repeat_spec(5, json!({"workDays": {"includedDays": "Mon, Tue"}}));
    assert_eq!(cron_text(&spaced).unwrap(), "*/5 * * * Mon,Tue");
    let wrapped = repeat_spec(5, json!({"workDays": {"includedDays": "Sat-Sun"}}));
    assert_eq!(cron_text(&wrapped).unwrap(), "*/5 * * * 6-6,0-0");
    let night = repeat_spec(5, json!({"workHours": {"includedHours": "22-2"}}));
    assert_eq!(cron_text(&night).unwrap(), "*/5 22-23,0-2 * * *");
    let star = repeat_spec(5, json!({"workHours": {"includedHours": "*"}}));
    assert_eq!(cron_text(&star).unwrap(), "*/5 * * * *");
    // Clear errors (Litmus: FailedNeedsStart with a cron or strconv message).
    let zero = cron_text(&repeat_spec(0, json!({}))).unwrap_err();
    assert!(
        zero.contains("minute.everyNthMinute: 0 is not allowed"),
        "{zero}"
    );
    let empty =
        cron_text(&repeat_spec(5, json!({"workHours": {"includedHours": ""}}))).unwrap_err();
    assert!(
        empty.contains("workHours.includedHours: must not be empty"),
        "{empty}"
    );
    let unknown = cron_text(&repeat_spec(
        5,
        json!({"workDays": {"includedDays": "Mon,Funday"}}),
    ))
    .unwrap_err();
    assert!(
        unknown.contains("\"Funday\" is not a number or a known name"),
        "{unknown}"
    );
    let bad_zone = {
        let mut s = repeat_spec(5, json!({}));
        s.time_zone = Some("Mars/Olympus".into());
        cron_text(&s).unwrap_err()
    };
    assert!(bad_zone.contains("spec.timeZone"), "{bad_zone}");
    assert!(timing(&spec(json!({"now": false}))).is_err());
    assert!(matches!(
        timing(&spec(json!({"now": true}))),
        Ok(Timing::Now)
    ));
}

#[test]
fn invalid_timing_is_reported_once_with_a_clear_message() {
    let mut sim = Sim::new("bad", repeat_spec(0, json!({})), "2024-06-20T08:00:00Z", 10);
    let first = sim.step();
    assert_eq!(first.events.len(), 1);
    assert!(first.events[0].warning);
    assert_eq!(first.events[0].reason, "FailedNeedsStart");
    assert!(
        first.events[0]
            .message
            .contains("everyNthMinute: 0 is not allowed")
    );
    assert!(first.wake_at.is_none());
    let second = sim.step();
    assert!(second.events.is_empty(), "not repeated on every pass");
    assert!(sim.created.is_empty());
}

#[test]
fn names_too_long_for_label_values_are_refused() {
    let long = "x".repeat(53);
    let mut sim = Sim::new(&long, repeat_spec(1, json!({})), "2024-06-20T08:00:00Z", 10);
    let pass = sim.step();
    assert!(pass.create.is_none());
    assert!(pass.events[0].message.contains("too long"));
}
