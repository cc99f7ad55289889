//! The `every` schedule kind: runs at `anchor + k × every` for whole `k`.
//!
//! Anchoring at a fixed instant, instead of "last run plus interval" as
//! Celery does, means no drift accumulates however late a dispatch is. The
//! anchor is `start_at` when set, else the time the entry was first seen
//! (kept in the run state, so restarts do not move it).

use jiff::{SignedDuration, Timestamp};

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

#[cfg(test)]
mod tests {
    use super::*;

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
