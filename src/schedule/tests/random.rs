//! `random: true`: the same seed gives the same timeline, the draw is recorded, and every draw
//! respects the interval, the window and the range (property tests).
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;
use serde_json::json;

use super::{Sim, repeat_spec, ts};
use crate::schedule::cron::{self, Cron};

fn random_timeline(
    seed: i64,
    extra: serde_json::Value,
    minute: i64,
    until: &str,
) -> Vec<Timestamp> {
    let mut s = repeat_spec(minute, extra);
    if let Some(r) = s.schedule.as_mut().and_then(|s| s.repeat.as_mut()) {
        r.properties.as_mut().unwrap().random = Some(true);
    }
    s.random_seed = Some(seed);
    let mut sim = Sim::new("r", s, "2024-06-17T08:00:00Z", 5);
    sim.run_until(until);
    sim.created.iter().map(|(_, t)| *t).collect()
}

#[test]
fn random_same_seed_same_timeline_and_the_draw_is_recorded() {
    let a = random_timeline(42, json!({}), 10, "2024-06-17T12:00:00Z");
    let b = random_timeline(42, json!({}), 10, "2024-06-17T12:00:00Z");
    let c = random_timeline(43, json!({}), 10, "2024-06-17T12:00:00Z");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.len() >= 12, "{}", a.len());
    // Not on the ticks.
    assert!(a.iter().filter(|t| t.as_second() % 600 != 0).count() > a.len() / 2);
    for w in a.windows(2) {
        assert!(
            w[1].as_second() - w[0].as_second() >= 600,
            "{} then {}",
            w[0],
            w[1]
        );
    }
    // expectedNextRunTime holds the drawn time, and the seed is recorded.
    let mut s = repeat_spec(10, json!({}));
    s.schedule
        .as_mut()
        .unwrap()
        .repeat
        .as_mut()
        .unwrap()
        .properties
        .as_mut()
        .unwrap()
        .random = Some(true);
    let mut sim = Sim::new("r", s, "2024-06-17T08:00:00Z", 5);
    let pass = sim.step();
    let st = pass.status.schedule.unwrap();
    assert!(st.random_seed.is_some());
    let expected = st.expected_next_run_time.expect("next").0;
    assert_eq!(pass.wake_at, Some(expected));
    sim.now = expected;
    sim.step();
    assert_eq!(sim.created.last().unwrap().1, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_draws_respect_interval_window_and_range(
        seed in 0i64..1_000_000,
        minute in prop_oneof![Just(1i64), Just(5), Just(7), Just(15), Just(30), Just(45), Just(90)],
        first_hour in 0u32..20,
        span in 1u32..4,
        days in prop_oneof![Just("Mon-Fri"), Just("Mon,Wed,Sat"), Just("Sun"), Just("Mon-Sun")],
        start_offset in 0i64..7200,
        length in 3600i64..(3 * 86_400),
    ) {
        let hours = format!("{first_hour}-{}", first_hour + span);
        let start = ts("2024-06-17T06:00:00Z").as_second() + start_offset;
        let end = start + length;
        let range = json!({
            "startTime": Timestamp::from_second(start).unwrap().to_string(),
            "endTime": Timestamp::from_second(end).unwrap().to_string(),
        });
        let extra = json!({
            "workHours": {"includedHours": hours},
            "workDays": {"includedDays": days},
            "timeRange": range,
        });
        let until = Timestamp::from_second(end + 60).unwrap().to_string();
        let times = random_timeline(seed, extra.clone(), minute, &until);
        let again = random_timeline(seed, extra, minute, &until);
        prop_assert_eq!(&times, &again);
        let days = crate::schedule::timing::normalise_window(days, 6, cron::DAY_NAMES, "d").unwrap();
        let cron = Cron::parse(&format!("* {hours} * * {days}")).unwrap();
        for (i, t) in times.iter().enumerate() {
            prop_assert!(t.as_second() >= start && t.as_second() <= end, "{} outside the range", t);
            prop_assert!(cron.instant_allowed(*t, &TimeZone::UTC), "{} outside hours/days", t);
            if i > 0 {
                prop_assert!(t.as_second() - times[i - 1].as_second() >= minute * 60,
                    "{} closer than {} min to {}", t, minute, times[i - 1]);
            }
        }
    }

}
