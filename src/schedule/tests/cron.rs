//! The cron dialect: robfig's steps, errors and day-of-week rule, and `next_after` as a property.
use jiff::Timestamp;
use jiff::tz::TimeZone;
use proptest::prelude::*;

use super::{hm, ts};
use crate::schedule::cron::Cron;

fn ticks(expr: &str, from: &str, n: usize) -> Vec<String> {
    let cron = Cron::parse(expr).expect("parse");
    let mut t = ts(from);
    let mut out = Vec::new();
    for _ in 0..n {
        t = cron.next_after(t, &TimeZone::UTC).expect("next");
        out.push(t.strftime("%H:%M").to_string());
    }
    out
}

#[test]
fn cron_steps_restart_every_hour_and_day_as_robfig() {
    // 2024-06-17 is a Monday.
    let from = "2024-06-17T09:58:30Z";
    assert_eq!(ticks("*/5 * * * *", from, 3), ["10:00", "10:05", "10:10"]);
    // */7: :56 then :00 (a 4-minute gap).
    assert_eq!(
        ticks("*/7 * * * *", "2024-06-17T09:55:00Z", 3),
        ["09:56", "10:00", "10:07"]
    );
    // */90 collapses to hourly.
    assert_eq!(ticks("*/90 * * * *", from, 2), ["10:00", "11:00"]);
    assert_eq!(
        ticks("15 */2 * * *", "2024-06-17T21:00:00Z", 3),
        ["22:15", "00:15", "02:15"]
    );
    assert_eq!(
        ticks("0 */5 * * *", "2024-06-17T14:30:00Z", 3),
        ["15:00", "20:00", "00:00"]
    );
    assert_eq!(
        ticks("0 9-17/2 * * *", "2024-06-17T08:00:00Z", 6),
        ["09:00", "11:00", "13:00", "15:00", "17:00", "09:00"]
    );
    // A single hour with a step means "from there to 23".
    assert_eq!(
        ticks("0 10/2 * * *", "2024-06-17T08:00:00Z", 7),
        [
            "10:00", "12:00", "14:00", "16:00", "18:00", "20:00", "22:00"
        ]
    );
    assert_eq!(
        ticks("0 9,13/3 * * *", "2024-06-17T08:00:00Z", 5),
        ["09:00", "13:00", "16:00", "19:00", "22:00"]
    );
    // Next is strictly after.
    assert_eq!(ticks("*/5 * * * *", "2024-06-17T10:00:00Z", 1), ["10:05"]);
}

#[test]
fn cron_errors_are_robfigs() {
    for bad in [
        "*/0 * * * *",
        "*/5 * * * Mon, Tue",
        "*/5 * * * Fri-Mon",
        "*/5  * * *",
        "*/5 * * * 7",
        "*/5 * * * xyz",
        "*/5 24 * * *",
        "*/5 1-2-3 * * *",
        "*/5 */2/2 * * *",
        "*/-1 * * * *",
    ] {
        assert!(Cron::parse(bad).is_err(), "{bad:?} should not parse");
    }
    for good in [
        "*/5 * * * mon-FRI",
        "*/5 * * * Mon,Tue,Wed",
        "*/5 9-17 * * 1-5",
        "*-3 * * * *",
        "? * * * *",
    ] {
        assert!(Cron::parse(good).is_ok(), "{good:?} should parse");
    }
    // `*-3` is `*` (robfig ignores what follows the star).
    assert_eq!(ticks("*-3 * * * *", "2024-06-17T10:00:00Z", 1), ["10:01"]);
}

#[test]
fn day_of_week_restricts_only_with_star_day_of_month() {
    let cron = Cron::parse("0 9 * * Sat,Sun").expect("parse");
    let next = cron
        .next_after(ts("2024-06-17T10:00:00Z"), &TimeZone::UTC)
        .expect("next");
    assert_eq!(hm(next), "Sat 09:00:00");
    let prev = cron
        .latest_at_or_before(ts("2024-06-17T10:00:00Z"), &TimeZone::UTC)
        .expect("prev");
    assert_eq!(prev, ts("2024-06-16T09:00:00Z"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn next_after_is_the_first_match_strictly_after(
        step in 1u32..60, hour_lo in 0u32..23, offset in 0i64..(14 * 86_400),
    ) {
        let expr = format!("*/{step} {hour_lo}-23 * * Mon,Thu");
        let cron = Cron::parse(&expr).unwrap();
        let t = Timestamp::from_second(ts("2024-06-17T00:00:00Z").as_second() + offset).unwrap();
        let next = cron.next_after(t, &TimeZone::UTC).unwrap();
        prop_assert!(next > t);
        prop_assert!(cron.instant_allowed(next, &TimeZone::UTC));
        // Brute force: no matching minute in between.
        let mut m = (t.as_second() / 60 + 1) * 60;
        while m < next.as_second() {
            let x = Timestamp::from_second(m).unwrap();
            let dt = TimeZone::UTC.to_datetime(x);
            let matches = cron.instant_allowed(x, &TimeZone::UTC) && (dt.minute() as u32).is_multiple_of(step);
            prop_assert!(!matches, "{} matches before {}", x, next);
            m += 60;
        }
        let prev = cron.latest_at_or_before(next, &TimeZone::UTC).unwrap();
        prop_assert_eq!(prev, next);
    }
}
