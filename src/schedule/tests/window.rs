//! Work hours and days, a late run outside the window, and the schedule's time zone.
use serde_json::json;

use super::{Sim, hm, repeat_spec};

#[test]
fn work_hours_and_days() {
    // Spec scenario 6; 2024-06-17 is a Monday.
    let window =
        json!({"workHours": {"includedHours": "9-17"}, "workDays": {"includedDays": "Mon-Fri"}});
    let mut sim = Sim::new(
        "w",
        repeat_spec(30, window.clone()),
        "2024-06-17T08:10:00Z",
        60,
    );
    sim.run_until("2024-06-24T09:00:00Z");
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times[0], "Mon 09:00:00");
    assert_eq!(times[1], "Mon 09:30:00");
    assert_eq!(times[17], "Mon 17:30:00");
    assert_eq!(times[18], "Tue 09:00:00");
    assert_eq!(times.len(), 5 * 18 + 1, "nothing on Saturday or Sunday");
    assert!(
        times
            .iter()
            .all(|t| !t.starts_with("Sat") && !t.starts_with("Sun"))
    );

    let mut inside = Sim::new("w", repeat_spec(30, window), "2024-06-17T10:10:00Z", 60);
    inside.run_until("2024-06-17T10:31:00Z");
    let times: Vec<String> = inside.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 10:10:00", "Mon 10:30:00"]);

    // `includedHours: "*"` starts (Litmus never does, W10).
    let mut star = Sim::new(
        "star",
        repeat_spec(30, json!({"workHours": {"includedHours": "*"}})),
        "2024-06-17T10:10:00Z",
        60,
    );
    star.run_until("2024-06-17T10:31:00Z");
    assert_eq!(star.created.len(), 2);
}

#[test]
fn a_late_run_outside_the_window_is_skipped_not_started() {
    // Blocked from 17:00 to 18:30 with hours 9-17: the 17:30 tick is not caught up at 18:30.
    let window = json!({"workHours": {"includedHours": "9-17"}});
    let mut sim = Sim::new(
        "late",
        repeat_spec(30, window.clone()),
        "2024-06-17T17:00:00Z",
        90 * 60,
    );
    sim.run_until("2024-06-18T09:00:00Z");
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 17:00:00", "Tue 09:00:00"]);
    // Halted over the 17:30 tick and resumed at 18:30: skipped, and said so.
    let mut halted = Sim::new("late", repeat_spec(30, window), "2024-06-17T17:00:00Z", 60);
    halted.run_until("2024-06-17T17:05:00Z");
    halted.set_state("halt", "2024-06-17T17:10:00Z");
    halted.step();
    halted.set_state("active", "2024-06-17T18:30:00Z");
    halted.run_until("2024-06-18T09:00:00Z");
    let times: Vec<String> = halted.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 17:00:00", "Tue 09:00:00"]);
    assert!(
        halted
            .events
            .iter()
            .any(|(_, e)| e.starts_with("SkippedLateRun")),
        "{:?}",
        halted.events
    );
}

#[test]
fn time_zone_moves_the_window() {
    let mut s = repeat_spec(60, json!({"workHours": {"includedHours": "9"}}));
    s.time_zone = Some("Europe/Berlin".into());
    let mut sim = Sim::new("tz", s, "2024-06-17T00:00:00Z", 10);
    sim.run_until("2024-06-17T12:00:00Z");
    // 09:00 in Berlin (CEST, UTC+2) is 07:00 UTC.
    let times: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(times, ["Mon 07:00:00"]);
}
