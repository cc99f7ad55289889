//! The `every` schedule kind: runs at `anchor + k × every` for whole `k`.
//!
//! Anchoring at a fixed instant, instead of "last run plus interval" as
//! Celery does, means no drift accumulates however late a dispatch is. The
//! anchor is `start_at` when set, else the time the entry was first seen
//! (kept in the run state, so restarts do not move it).
//!
//! [`Relative`] is Celery's `relative=True`: the runs are rounded down to
//! the interval's resolution (local midnight for a day or more, the top of
//! the hour for an hour or more, the minute for a minute or more) in the
//! entry's zone.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan, Unit, Zoned, ZonedRound};

/// An interval schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    pub every: SignedDuration,
}

impl Interval {
    /// The first run strictly after `after`, counting from `anchor`.
    pub fn next_after(&self, anchor: Timestamp, after: Timestamp) -> Option<Timestamp> {
        let every = self.every.as_nanos();
        if every <= 0 {
            return None;
        }
        let since = after.as_nanosecond() - anchor.as_nanosecond();
        let k = if since < 0 { 0 } else { since / every + 1 };
        let at = anchor.as_nanosecond().checked_add(k.checked_mul(every)?)?;
        Timestamp::from_nanosecond(at).ok()
    }

    /// The last run at or before `at` (and not before the anchor).
    pub fn last_at_or_before(&self, anchor: Timestamp, at: Timestamp) -> Option<Timestamp> {
        let every = self.every.as_nanos();
        let since = at.as_nanosecond() - anchor.as_nanosecond();
        if every <= 0 || since < 0 {
            return None;
        }
        Timestamp::from_nanosecond(anchor.as_nanosecond() + since / every * every).ok()
    }
}

/// Celery's `schedule(run_every, relative=True)`.
///
/// Celery computes each deadline as `last run + every` rounded down to the
/// resolution of `every`; from a run on a boundary that is the boundary
/// `every` rounded down to whole units later. So the runs are: the first
/// boundary at or before `anchor + every`, then every `step` (whole days in
/// the local calendar, or whole hours or minutes of real time). Under a
/// minute, there is nothing to round: the grid is the anchored interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Relative {
    pub every: SignedDuration,
}

impl Relative {
    const DAY: i64 = 86_400;

    /// The rounding unit and the whole units in `every`.
    fn unit(&self) -> Option<(Unit, i64)> {
        let secs = self.every.as_secs();
        [
            (Unit::Day, Self::DAY),
            (Unit::Hour, 3600),
            (Unit::Minute, 60),
        ]
        .into_iter()
        .find(|(_, u)| secs >= *u)
        .map(|(unit, u)| (unit, secs / u))
    }

    /// The first run strictly after `after`, for an entry first seen at
    /// `anchor`, in `tz`.
    pub fn next_after(
        &self,
        tz: &TimeZone,
        anchor: Timestamp,
        after: Timestamp,
    ) -> Option<Timestamp> {
        let Some((unit, n)) = self.unit() else {
            return Interval { every: self.every }.next_after(anchor, after);
        };
        let start = anchor.to_zoned(tz.clone());
        if unit == Unit::Day {
            // Local calendar days: the date `every` after the anchor, at midnight.
            // Python adds a timedelta to an aware datetime on the wall clock.
            let first = start.datetime().checked_add(self.every).ok()?.date();
            let after_local = after.to_zoned(tz.clone());
            let mut k = if after_local.date() < first {
                0
            } else {
                (first.until(after_local.date()).ok()?.get_days() as i64) / n
            };
            loop {
                let day = first.checked_add((k * n).days()).ok()?;
                let at = day.to_zoned(tz.clone()).ok()?.timestamp();
                if at > after {
                    return Some(at);
                }
                k += 1;
            }
        }
        let end = start.checked_add(self.every).ok()?;
        let first = floor(&end, unit)?.timestamp();
        let step = SignedDuration::from_secs(n * if unit == Unit::Hour { 3600 } else { 60 });
        Interval { every: step }.next_after(first, after)
    }
}

/// `z` rounded down to the start of its `unit` on its local clock.
fn floor(z: &Zoned, unit: Unit) -> Option<Zoned> {
    z.round(
        ZonedRound::new()
            .smallest(unit)
            .mode(jiff::RoundMode::Trunc),
    )
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_rounds_to_the_resolution_in_the_zone() {
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        let hourly = Relative {
            every: SignedDuration::from_secs(3600),
        };
        // First seen 11:20 local: the first run is 12:00, then every hour.
        let a = ts("2026-01-10T10:20:00Z");
        assert_eq!(
            hourly.next_after(&berlin, a, a),
            Some(ts("2026-01-10T11:00:00Z"))
        );
        assert_eq!(
            hourly.next_after(&berlin, a, ts("2026-01-10T11:00:00Z")),
            Some(ts("2026-01-10T12:00:00Z"))
        );
        // 90 minutes rounds to whole hours: Celery's deadline is floor(last + 90m).
        let ninety = Relative {
            every: SignedDuration::from_secs(5400),
        };
        assert_eq!(
            ninety.next_after(&berlin, a, a),
            Some(ts("2026-01-10T11:00:00Z"))
        );
        assert_eq!(
            ninety.next_after(&berlin, a, ts("2026-01-10T11:00:00Z")),
            Some(ts("2026-01-10T12:00:00Z"))
        );
        // A day: local midnight, across the spring change (23 h that day).
        let daily = Relative {
            every: SignedDuration::from_secs(86_400),
        };
        let b = ts("2026-03-27T15:00:00Z");
        assert_eq!(
            daily.next_after(&berlin, b, b),
            Some(ts("2026-03-27T23:00:00Z"))
        );
        assert_eq!(
            daily.next_after(&berlin, b, ts("2026-03-27T23:00:00Z")),
            Some(ts("2026-03-28T23:00:00Z"))
        );
        assert_eq!(
            daily.next_after(&berlin, b, ts("2026-03-28T23:00:00Z")),
            Some(ts("2026-03-29T22:00:00Z"))
        );
        // Under a minute there is nothing to round.
        let fast = Relative {
            every: SignedDuration::from_secs(20),
        };
        assert_eq!(
            fast.next_after(&berlin, a, a),
            Some(ts("2026-01-10T10:20:20Z"))
        );
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn runs_on_the_anchor_grid() {
        let i = Interval {
            every: SignedDuration::from_secs(30),
        };
        let a = ts("2026-01-01T00:00:00Z");
        assert_eq!(i.next_after(a, ts("2025-12-31T00:00:00Z")), Some(a));
        assert_eq!(i.next_after(a, a), Some(ts("2026-01-01T00:00:30Z")));
        assert_eq!(
            i.next_after(a, ts("2026-01-01T00:00:29.999Z")),
            Some(ts("2026-01-01T00:00:30Z"))
        );
        // A late dispatch does not shift the grid.
        assert_eq!(
            i.next_after(a, ts("2026-01-01T00:07:31.5Z")),
            Some(ts("2026-01-01T00:08:00Z"))
        );
        assert_eq!(
            i.last_at_or_before(a, ts("2026-01-01T00:07:31.5Z")),
            Some(ts("2026-01-01T00:07:30Z"))
        );
        assert_eq!(i.last_at_or_before(a, ts("2025-01-01T00:00:00Z")), None);
    }
}
