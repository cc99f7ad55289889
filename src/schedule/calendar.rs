//! Calendar matching shared by `cron` and `crontab`: which wall-clock times
//! match, and how those wall-clock times become instants in a time zone.
//!
//! A [`CalendarSpec`] is a set of allowed seconds, minutes, hours, days of the
//! month, months and weekdays, plus the rule joining day-of-month and
//! day-of-week (Vixie's OR or Celery's AND). The parsers in [`super::cron`]
//! and [`super::crontab`] build one; this module only answers questions.
//!
//! Turning wall-clock matches into instants is where daylight saving time
//! bites. The zone's history is a sequence of *segments* with a constant UTC
//! offset, separated by transitions. Inside a segment wall time and real time
//! move together, so the first match is a plain search over civil times.
//! At a transition:
//!
//! * a *gap* (clocks jump forward) holds wall times that never happen. With
//!   [`Gap::Shift`] a match inside the gap fires once, at the transition
//!   instant (the first instant after the gap); with [`Gap::Skip`] it is lost;
//!   with [`Gap::Later`] the first match in the gap fires as much later as
//!   the clocks jumped (02:30 becomes 03:30: the wall time read with the
//!   offset before the jump), as Celery's `crontab` does.
//! * a *fold* (clocks go back) repeats wall times. With [`Fold::First`] only
//!   the earlier occurrence fires; with [`Fold::Both`] both do.
//!
//! The search never allocates and visits a handful of segments in practice.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

/// What a matching wall time inside a spring-forward gap does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gap {
    /// Fire once at the first instant after the gap.
    Shift,
    /// Do not fire.
    Skip,
    /// The first match in the gap fires at its wall time read with the
    /// offset before the gap (02:30 becomes 03:30), as Celery does.
    Later,
}

/// What a matching wall time inside a fall-back fold does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fold {
    /// Fire at the first occurrence only.
    First,
    /// Fire at both occurrences.
    Both,
}

/// The daylight-saving rule applied to one calendar entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DstRule {
    pub gap: Gap,
    pub fold: Fold,
}

impl DstRule {
    /// The Vixie cron default: fixed-time entries shift out of gaps and run
    /// once in folds; wildcard entries follow real time.
    pub fn default_for(fixed_time: bool) -> DstRule {
        if fixed_time {
            DstRule {
                gap: Gap::Shift,
                fold: Fold::First,
            }
        } else {
            DstRule {
                gap: Gap::Skip,
                fold: Fold::Both,
            }
        }
    }
}

/// How day-of-month and day-of-week combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DayRule {
    /// Both must match (Celery, and Vixie when either field starts with `*`).
    And,
    /// Either may match (Vixie when both fields are restricted).
    Or,
}

/// Allowed values of each calendar field, as bit sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CalendarSpec {
    /// Bits 0..=59.
    pub seconds: u64,
    /// Bits 0..=59.
    pub minutes: u64,
    /// Bits 0..=23.
    pub hours: u32,
    /// Bits 1..=31.
    pub days_of_month: u32,
    /// Bits 1..=12.
    pub months: u16,
    /// Bits 0..=6, 0 = Sunday.
    pub days_of_week: u8,
    pub day_rule: DayRule,
    /// Neither the minute nor the hour field starts with `*`.
    pub fixed_time: bool,
}

/// How far ahead a search goes before it concludes there is no further run.
/// Patterns are checked at load time to match some real day; the longest
/// real wait (29 February on a given weekday across a skipped leap year in
/// 2100) is about 40 years.
const SEARCH_YEARS: i16 = 100;

/// Returns the lowest set bit at position `from` or above.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    if from >= 64 {
        return None;
    }
    let rest = mask >> from;
    if rest == 0 {
        None
    } else {
        Some(from + rest.trailing_zeros())
    }
}

fn first_bit(mask: u64) -> u32 {
    mask.trailing_zeros()
}

/// Days in a month, February counted for the given year.
pub fn days_in_month(year: i16, month: i8) -> i8 {
    match month {
        2 => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl CalendarSpec {
    /// True if some real calendar day can match. `0 0 31 2 *` cannot; the
    /// loaders reject such patterns instead of searching forever.
    pub fn can_match(&self) -> bool {
        if self.seconds == 0
            || self.minutes == 0
            || self.hours == 0
            || self.months == 0
            || self.days_of_month == 0
            || self.days_of_week == 0
        {
            return false;
        }
        // Every (month, day) that exists falls on every weekday within the
        // 400-year Gregorian cycle, so a weekday set never empties the result.
        if self.day_rule == DayRule::Or {
            return true;
        }
        (1..=12i8).any(|m| {
            self.months & (1 << m) != 0
                && (1..=days_in_month(2000, m)).any(|d| self.days_of_month & (1 << d) != 0)
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        match self.day_rule {
            DayRule::And => dom && dow,
            DayRule::Or => dom || dow,
        }
    }

    /// The first allowed time of day at or after `t`, if any on that day.
    fn time_at_or_after(&self, t: Time) -> Option<Time> {
        let (h0, m0, s0) = (t.hour() as u32, t.minute() as u32, t.second() as u32);
        let hours = self.hours as u64;
        let build = |h: u32, m: u32, s: u32| Time::new(h as i8, m as i8, s as i8, 0).ok();
        let h = next_bit(hours, h0)?;
        if h == h0 {
            if let Some(m) = next_bit(self.minutes, m0) {
                if m > m0 {
                    return build(h, m, first_bit(self.seconds));
                }
                if let Some(s) = next_bit(self.seconds, s0) {
                    return build(h, m, s);
                }
                if let Some(m) = next_bit(self.minutes, m0 + 1) {
                    return build(h, m, first_bit(self.seconds));
                }
            }
            let h = next_bit(hours, h0 + 1)?;
            return build(h, first_bit(self.minutes), first_bit(self.seconds));
        }
        build(h, first_bit(self.minutes), first_bit(self.seconds))
    }

    /// The first matching wall-clock time in `[lower, upper)`. `lower` must
    /// be a whole second.
    pub fn next_civil(&self, lower: DateTime, upper: DateTime) -> Option<DateTime> {
        let mut date = lower.date();
        let mut from = lower.time();
        while date.to_datetime(Time::midnight()) < upper {
            if self.months & (1 << date.month()) == 0 {
                // Jump to the first day of the next month.
                date = date.last_of_month().tomorrow().ok()?;
                from = Time::midnight();
                continue;
            }
            if self.day_matches(date)
                && let Some(t) = self.time_at_or_after(from)
            {
                let dt = date.to_datetime(t);
                return (dt < upper).then_some(dt);
            }
            date = date.tomorrow().ok()?;
            from = Time::midnight();
        }
        None
    }

    /// True if the wall time matches the pattern.
    pub fn matches(&self, dt: DateTime) -> bool {
        self.day_matches(dt.date())
            && self.hours & (1 << dt.hour()) != 0
            && self.minutes & (1 << dt.minute()) != 0
            && self.seconds & (1 << dt.second()) != 0
            && dt.subsec_nanosecond() == 0
    }

    /// The first run strictly after `after` in zone `tz` under `rule`.
    pub fn next_after(&self, tz: &TimeZone, rule: DstRule, after: Timestamp) -> Option<Timestamp> {
        if rule.gap != Gap::Later {
            return self.next_plain(tz, rule, after);
        }
        let skip = DstRule {
            gap: Gap::Skip,
            ..rule
        };
        let real = self.next_plain(tz, skip, after);
        self.first_gap_match(tz, after, real).or(real)
    }

    /// Under [`Gap::Later`], as Celery steps from one run to the next civil
    /// match: when the next match after `after` lies in a gap (none before
    /// it), it fires shifted by the gap's length; later matches in the same
    /// gap are before that instant on the wall clock, so they do not fire.
    /// `real` is the next run outside gaps, which bounds the search.
    fn first_gap_match(
        &self,
        tz: &TimeZone,
        after: Timestamp,
        real: Option<Timestamp>,
    ) -> Option<Timestamp> {
        const MAX_TRANSITIONS: usize = 1000;
        for t in tz.following(after).take(MAX_TRANSITIONS) {
            let at = t.timestamp();
            if real.is_some_and(|r| r < at) {
                return None;
            }
            let old = tz.to_offset(at.checked_sub(SignedDuration::from_nanos(1)).ok()?);
            if t.offset() <= old {
                continue;
            }
            let gap = (old.to_datetime(at), t.offset().to_datetime(at));
            if let Some(c) = self.next_civil(gap.0, gap.1) {
                return old.to_timestamp(c).ok();
            }
        }
        None
    }

    /// [`Self::next_after`] for the rules decided segment by segment.
    fn next_plain(&self, tz: &TimeZone, rule: DstRule, after: Timestamp) -> Option<Timestamp> {
        let horizon = after
            .to_zoned(TimeZone::UTC)
            .year()
            .saturating_add(SEARCH_YEARS);
        let mut cursor = after;
        let mut offset = tz.to_offset(cursor);
        // Strictly after `after`: the next whole second of wall time.
        let mut lower = floor_second(offset.to_datetime(after))
            .checked_add(SignedDuration::from_secs(1))
            .ok()?;
        loop {
            let transition = tz.following(cursor).next();
            let seg_end = match &transition {
                Some(t) => offset.to_datetime(t.timestamp()),
                None => DateTime::MAX,
            };
            let upper = seg_end.min(year_start(horizon));
            let mut from = lower;
            while let Some(c) = self.next_civil(from, upper) {
                if rule.fold == Fold::First && is_later_occurrence(tz, c, offset) {
                    from = c.checked_add(SignedDuration::from_secs(1)).ok()?;
                    continue;
                }
                return offset.to_timestamp(c).ok();
            }
            let t = transition?;
            if upper < seg_end {
                return None; // past the search horizon
            }
            let new_offset = t.offset();
            let at = t.timestamp();
            if new_offset > offset && rule.gap == Gap::Shift {
                let gap_start = offset.to_datetime(at);
                let gap_end = new_offset.to_datetime(at);
                if self.next_civil(gap_start, gap_end).is_some() {
                    return Some(at);
                }
            }
            cursor = at;
            offset = new_offset;
            lower = new_offset.to_datetime(at);
        }
    }
}

fn floor_second(dt: DateTime) -> DateTime {
    dt.with().subsec_nanosecond(0).build().unwrap_or(dt)
}

fn year_start(year: i16) -> DateTime {
    Date::new(year.min(9999), 1, 1)
        .map(|d| d.to_datetime(Time::midnight()))
        .unwrap_or(DateTime::MAX)
}

/// True if `c` is a repeated wall time and `offset` is its later occurrence.
fn is_later_occurrence(tz: &TimeZone, c: DateTime, offset: Offset) -> bool {
    match tz.to_ambiguous_timestamp(c).offset() {
        AmbiguousOffset::Fold { before, after } => before != after && offset == after,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Gap::Later` as Celery: the first match of the Berlin spring gap,
    /// 02:00, fires at 03:00 CEST; the rest of the gap is behind the wall
    /// clock then, and the day goes on with 03:15 CEST.
    #[test]
    fn gap_later_reads_the_wall_time_with_the_old_offset() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let quarter = spec(1 << 0 | 1 << 15 | 1 << 30 | 1 << 45, 1 << 2 | 1 << 3);
        let rule = DstRule {
            gap: Gap::Later,
            fold: Fold::First,
        };
        let mut t: Timestamp = "2026-03-28T23:00:00Z".parse().unwrap();
        let mut got = Vec::new();
        for _ in 0..6 {
            t = quarter.next_after(&tz, rule, t).unwrap();
            got.push(t.to_string());
        }
        assert_eq!(
            got,
            [
                "2026-03-29T01:00:00Z",
                "2026-03-29T01:15:00Z",
                "2026-03-29T01:30:00Z",
                "2026-03-29T01:45:00Z",
                "2026-03-30T00:00:00Z",
                "2026-03-30T00:15:00Z"
            ]
        );
    }

    fn all(n: u32, from: u32) -> u64 {
        ((1u64 << n) - 1) & !((1u64 << from) - 1)
    }

    fn spec(minutes: u64, hours: u32) -> CalendarSpec {
        CalendarSpec {
            seconds: 1,
            minutes,
            hours,
            days_of_month: all(32, 1) as u32,
            months: all(13, 1) as u16,
            days_of_week: 0x7f,
            day_rule: DayRule::And,
            fixed_time: true,
        }
    }

    #[test]
    fn next_bit_finds_lowest_at_or_above() {
        assert_eq!(next_bit(0b1010, 0), Some(1));
        assert_eq!(next_bit(0b1010, 2), Some(3));
        assert_eq!(next_bit(0b1010, 4), None);
        assert_eq!(next_bit(u64::MAX, 64), None);
    }

    #[test]
    fn time_search_rolls_over_minutes_and_hours() {
        let s = spec(1 << 30, (1 << 2) | (1 << 5));
        let t = |h, m, s| Time::new(h, m, s, 0).unwrap();
        assert_eq!(s.time_at_or_after(t(0, 0, 0)), Some(t(2, 30, 0)));
        assert_eq!(s.time_at_or_after(t(2, 30, 0)), Some(t(2, 30, 0)));
        assert_eq!(s.time_at_or_after(t(2, 30, 1)), Some(t(5, 30, 0)));
        assert_eq!(s.time_at_or_after(t(5, 31, 0)), None);
    }

    #[test]
    fn impossible_day_is_detected() {
        let mut s = spec(1, 1);
        s.days_of_month = 1 << 31;
        s.months = 1 << 2;
        assert!(!s.can_match());
        s.days_of_month = 1 << 29;
        assert!(s.can_match(), "29 February exists in leap years");
        s.days_of_month = 1 << 30;
        assert!(!s.can_match());
        s.day_rule = DayRule::Or;
        assert!(s.can_match(), "with OR the weekday field can match");
    }

    #[test]
    fn days_in_month_handles_leap_years() {
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
        assert_eq!(days_in_month(2026, 4), 30);
        assert_eq!(days_in_month(2026, 12), 31);
    }
}
