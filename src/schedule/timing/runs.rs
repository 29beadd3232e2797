//! The run times of a `repeat` schedule: the start gate, cron ticks and the allowed window, slots
//! and seeded draws (`random: true`), the latest due run with what was passed over, the next
//! planned run.
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use super::Repeat;

/// The start gate: `timeRange.startTime`, or the creation time when later (Litmus: no engine
/// before `startTime`; the first engine right at the gate if its hour and day are allowed).
pub fn gate(repeat: &Repeat, created: Timestamp) -> Timestamp {
    match repeat.start {
        Some(start) if start > created => start,
        _ => created,
    }
}

/// Most slots a single search walks before it re-anchors: the computation stays bounded however
/// long the schedule was halted or the controller down (Litmus walks every missed tick).
const MAX_STEPS: usize = 2000;

impl Repeat {
    /// The first cron tick strictly after `t`.
    pub fn next_tick(&self, t: Timestamp) -> Option<Timestamp> {
        self.cron.next_after(t, &self.tz)
    }

    /// Whether `t` is in an allowed hour and day (`includedHours` / `includedDays`; Litmus's
    /// first-run check looks at those fields, not at the hour step).
    pub fn allowed(&self, t: Timestamp) -> bool {
        self.window.instant_allowed(t, &self.tz)
    }

    /// The first slot's start: the gate when its hour and day are allowed, else the next tick.
    fn first_slot(&self, gate: Timestamp) -> Option<Timestamp> {
        if self.allowed(gate) {
            Some(gate)
        } else {
            self.next_tick(gate)
        }
    }

    /// The slot starting at `s`: up to the next tick, the end of the allowed window, and the end
    /// of the time range, whichever comes first. Whole seconds, end exclusive.
    pub fn slot(&self, s: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let next = self.next_tick(s)?;
        let mut end = self.window.window_end(s, next, &self.tz);
        if let Some(range_end) = self.end {
            let inclusive = Timestamp::from_second(range_end.as_second().saturating_add(1)).ok()?;
            end = end.min(inclusive);
        }
        Some((s, end))
    }

    /// The run drawn in the slot starting at `s` after a run at `prev`: uniform over the whole
    /// seconds of the slot that are at least one interval after `prev`; `None` when none is.
    pub fn draw(&self, s: Timestamp, prev: Option<Timestamp>, seed: i64) -> Option<Timestamp> {
        let (start, end) = self.slot(s)?;
        let mut lo = start.as_second();
        if let Some(prev) = prev {
            lo = lo.max(prev.as_second().saturating_add(self.interval));
        }
        let hi = end.as_second();
        if lo >= hi {
            return None;
        }
        let span = (hi - lo) as u64;
        let offset = ((u128::from(slot_hash(seed, s.as_second())) * u128::from(span)) >> 64) as i64;
        Timestamp::from_second(lo + offset).ok()
    }

    /// The run that follows `last` (the first run when `None`), strictly after it.
    pub fn planned_after(
        &self,
        last: Option<Timestamp>,
        gate: Timestamp,
        seed: i64,
    ) -> Option<Timestamp> {
        let first = self.first_slot(gate)?;
        if !self.random {
            return match last {
                None => Some(first),
                Some(l) if l < first => Some(first),
                Some(l) => self.next_tick(l),
            };
        }
        let (mut s, prev) = match last {
            Some(l) if l >= first => (self.next_tick(l)?, Some(l)),
            _ => (first, None),
        };
        for _ in 0..MAX_STEPS {
            if self.end.is_some_and(|e| s > e) {
                return None;
            }
            if let Some(t) = self.draw(s, prev, seed) {
                return Some(t);
            }
            s = self.next_tick(s)?;
        }
        None
    }

    /// The latest run due at or before `now` after `last`, and how many runs before it were
    /// passed over (capped). `None` when nothing is due.
    pub fn latest_due(
        &self,
        last: Option<Timestamp>,
        gate: Timestamp,
        now: Timestamp,
        seed: i64,
    ) -> Option<(Timestamp, u32)> {
        let mut due = self.planned_after(last, gate, seed)?;
        if due > now {
            return None;
        }
        if !self.random {
            // The latest tick at or before now (a direct search, no walk over missed ticks).
            let latest = self.cron.latest_at_or_before(now, &self.tz);
            let mut skipped = 0;
            if let Some(latest) = latest.filter(|t| *t > due) {
                skipped = 1 + self.count_ticks(due, latest);
                due = latest;
            }
            return Some((due, skipped));
        }
        let mut skipped = 0;
        for _ in 0..MAX_STEPS {
            match self.planned_after(Some(due), gate, seed) {
                Some(next) if next <= now => {
                    due = next;
                    skipped += 1;
                }
                _ => return Some((due, skipped)),
            }
        }
        // Very long outage: re-anchor on the slot of the latest tick, drawn as a first run.
        let anchor = self.cron.latest_at_or_before(now, &self.tz)?;
        let redrawn = self.draw(anchor, None, seed).filter(|t| *t <= now);
        Some((redrawn.unwrap_or(due).max(due), skipped))
    }

    /// Ticks strictly between `from` and `to` (capped): runs that will never happen.
    fn count_ticks(&self, from: Timestamp, to: Timestamp) -> u32 {
        let mut n = 0;
        let mut t = from;
        while n < MAX_STEPS as u32 {
            match self.next_tick(t) {
                Some(next) if next < to => {
                    n += 1;
                    t = next;
                }
                _ => break,
            }
        }
        n
    }
}

/// 64 uniform bits from the seed and the slot (SHA-256: stable across versions and platforms).
fn slot_hash(seed: i64, slot: i64) -> u64 {
    let mut h = Sha256::new();
    h.update(b"chaosschedule-slot");
    h.update(seed.to_be_bytes());
    h.update(slot.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// The seed picked when the user gives none: derived from the schedule's UID, so it is stable
/// across restarts even before it is recorded, and fits a JSON number exactly (53 bits).
pub fn seed_from_uid(uid: &str) -> i64 {
    let digest = Sha256::digest(uid.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(bytes) >> 11) as i64
}
