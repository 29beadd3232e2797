//! `scheduleState` changes: halt and resume, catch-up after a long halt, manual completion.
use serde_json::json;

use super::{Sim, hm, repeat_spec, ts};

#[test]
fn halt_then_resume_catches_up_the_latest_tick_once() {
    // Spec scenario 5.
    let mut sim = Sim::new("s", repeat_spec(1, json!({})), "2024-06-20T10:03:00Z", 20);
    sim.run_until("2024-06-20T10:03:29Z");
    sim.set_state("halt", "2024-06-20T10:03:30Z");
    sim.run_until("2024-06-20T10:07:29Z");
    assert_eq!(sim.status(), "halted");
    let during: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(during, ["Thu 10:03:00"]);
    sim.set_state("active", "2024-06-20T10:07:30Z");
    sim.step();
    assert_eq!(sim.status(), "running");
    sim.run_until("2024-06-20T10:09:30Z");
    let names: Vec<String> = sim.created.iter().map(|(_, t)| hm(*t)).collect();
    assert_eq!(
        names,
        [
            "Thu 10:03:00",
            "Thu 10:07:30",
            "Thu 10:08:00",
            "Thu 10:09:00"
        ]
    );
    assert_eq!(sim.suffixes()[1], ts("2024-06-20T10:07:00Z").as_second());

    // Resumed before the next tick: nothing immediate, running again at once.
    let mut quick = Sim::new("q", repeat_spec(1, json!({})), "2024-06-20T10:03:00Z", 20);
    quick.run_until("2024-06-20T10:03:29Z");
    quick.set_state("halt", "2024-06-20T10:03:30Z");
    quick.step();
    quick.set_state("active", "2024-06-20T10:03:45Z");
    quick.step();
    assert_eq!(quick.status(), "running");
    assert_eq!(quick.created.len(), 1);
    quick.run_until("2024-06-20T10:04:00Z");
    assert_eq!(quick.created.len(), 2);
    assert_eq!(hm(quick.created[1].1), "Thu 10:04:00");
}

#[test]
fn catch_up_after_a_long_halt_is_one_run_and_bounded() {
    let mut sim = Sim::new("s", repeat_spec(1, json!({})), "2024-06-20T10:00:00Z", 5);
    sim.step();
    sim.set_state("halt", "2024-06-20T10:00:10Z");
    sim.step();
    sim.set_state("active", "2025-06-20T10:00:30Z");
    let pass = sim.step();
    assert_eq!(sim.created.len(), 2);
    assert_eq!(sim.suffixes()[1], ts("2025-06-20T10:00:00Z").as_second());
    let missed: u32 = pass.skipped.iter().map(|(_, n)| *n).sum();
    assert!(missed >= 1000, "missed runs are counted (capped): {missed}");
}

#[test]
fn manual_complete_with_an_active_engine_completes_once_it_drains() {
    let mut sim = Sim::new("m", repeat_spec(1, json!({})), "2024-06-20T08:00:00Z", 90);
    sim.run_until("2024-06-20T08:00:10Z");
    sim.set_state("complete", "2024-06-20T08:00:20Z");
    sim.step();
    assert_ne!(sim.status(), "completed");
    sim.run_until("2024-06-20T08:05:00Z");
    assert_eq!(sim.status(), "completed");
    assert_eq!(sim.created.len(), 1);
    assert!(
        sim.events
            .iter()
            .any(|(_, e)| e == "ScheduleCompleted Schedule completed successfully")
    );
}
