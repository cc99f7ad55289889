//! Calendar schedules across daylight-saving transitions, month ends and
//! leap days, with exact expected instants; and a property test against a
//! brute-force oracle that walks real time minute by minute.

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp, Zoned};
use metronome::schedule::calendar::{CalendarSpec, DstRule, Fold, Gap};
use metronome::schedule::{Cron, Crontab, CrontabFields};
use proptest::prelude::*;

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap()
}

fn spec(expr: &str) -> CalendarSpec {
    Cron::parse(expr).unwrap().spec
}

/// The runs of `spec` in `zone` after `from`, rendered with offsets.
fn runs(expr: &str, zone: &str, from: &str, n: usize) -> Vec<String> {
    let s = spec(expr);
    runs_with(&s, DstRule::default_for(s.fixed_time), zone, from, n)
}

fn runs_with(s: &CalendarSpec, rule: DstRule, zone: &str, from: &str, n: usize) -> Vec<String> {
    let z = tz(zone);
    let from: Zoned = format!("{from}[{zone}]").parse().unwrap();
    let mut t = from.timestamp();
    let mut out = Vec::new();
    for _ in 0..n {
        let Some(next) = s.next_after(&z, rule, t) else {
            break;
        };
        assert!(next > t, "runs must move forward: {next} after {t}");
        out.push(
            next.to_zoned(z.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%:z")
                .to_string(),
        );
        t = next;
    }
    out
}

#[test]
fn new_york_spring_forward_fixed_time_shifts_to_the_end_of_the_gap() {
    assert_eq!(
        runs("30 2 * * *", "America/New_York", "2026-03-07T00:00", 3),
        [
            "2026-03-07T02:30:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:30:00-04:00"
        ]
    );
    // Two matches inside the gap still fire once.
    assert_eq!(
        runs("0,30 2 * * *", "America/New_York", "2026-03-07T12:00", 3),
        [
            "2026-03-08T03:00:00-04:00",
            "2026-03-09T02:00:00-04:00",
            "2026-03-09T02:30:00-04:00"
        ]
    );
    // A weekly Sunday job is not lost for a week.
    assert_eq!(
        runs("30 2 * * 0", "America/New_York", "2026-03-01T12:00", 1),
        ["2026-03-08T03:00:00-04:00"]
    );
}

#[test]
fn new_york_spring_forward_wildcard_follows_real_time() {
    assert_eq!(
        runs("0 * * * *", "America/New_York", "2026-03-08T00:00", 3),
        [
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:00:00-04:00"
        ]
    );
    assert_eq!(
        runs("*/15 2 * * *", "America/New_York", "2026-03-07T23:00", 2),
        ["2026-03-09T02:00:00-04:00", "2026-03-09T02:15:00-04:00"],
        "every 15 minutes during 02:xx has no runs on the day 02:xx does not exist"
    );
}

#[test]
fn new_york_fall_back() {
    assert_eq!(
        runs("30 1 * * *", "America/New_York", "2026-10-31T00:00", 3),
        [
            "2026-10-31T01:30:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-02T01:30:00-05:00"
        ],
        "a fixed-time entry runs once, at the first occurrence"
    );
    assert_eq!(
        runs("*/30 * * * *", "America/New_York", "2026-11-01T00:00", 6),
        [
            "2026-11-01T00:30:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ],
        "a wildcard entry runs in both copies of the repeated hour, monotonically"
    );
}

#[test]
fn berlin_both_transitions() {
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00", 2),
        ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
    );
    assert_eq!(
        runs("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00", 2),
        ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
    );
    assert_eq!(
        runs("30 * * * *", "Europe/Berlin", "2026-10-25T01:00", 4),
        [
            "2026-10-25T01:30:00+02:00",
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-25T03:30:00+01:00",
        ],
        "hourly keeps both 02:30s (Celery skips one: celery/celery#10107)"
    );
    assert_eq!(
        runs("30 * * * *", "Europe/Berlin", "2026-03-29T00:00", 3),
        [
            "2026-03-29T00:30:00+01:00",
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T03:30:00+02:00"
        ]
    );
}

#[test]
fn dst_overrides() {
    let fixed = spec("30 2 * * *");
    let skip = DstRule {
        gap: Gap::Skip,
        fold: Fold::First,
    };
    assert_eq!(
        runs_with(&fixed, skip, "America/New_York", "2026-03-07T12:00", 1),
        ["2026-03-09T02:30:00-04:00"]
    );
    let both = DstRule {
        gap: Gap::Shift,
        fold: Fold::Both,
    };
    assert_eq!(
        runs_with(
            &spec("30 1 * * *"),
            both,
            "America/New_York",
            "2026-10-31T12:00",
            3
        ),
        [
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-02T01:30:00-05:00"
        ]
    );
    let wild = spec("*/15 2 * * *");
    let shift = DstRule {
        gap: Gap::Shift,
        fold: Fold::Both,
    };
    assert_eq!(
        runs_with(&wild, shift, "America/New_York", "2026-03-08T00:00", 2),
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:00:00-04:00"]
    );
    let first = DstRule {
        gap: Gap::Skip,
        fold: Fold::First,
    };
    assert_eq!(
        runs_with(
            &spec("0 * * * *"),
            first,
            "America/New_York",
            "2026-11-01T00:30",
            3
        ),
        [
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T02:00:00-05:00",
            "2026-11-01T03:00:00-05:00"
        ]
    );
}

#[test]
fn half_hour_and_odd_offset_zones() {
    // Lord Howe moves its clocks by 30 minutes: 02:00 -> 02:30 on 2026-10-04.
    assert_eq!(
        runs("15 2 * * *", "Australia/Lord_Howe", "2026-10-03T12:00", 2),
        ["2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"]
    );
    // Chatham: +12:45 / +13:45, DST from 02:45 to 03:45 on 2026-09-27.
    assert_eq!(
        runs("0 3 * * *", "Pacific/Chatham", "2026-09-26T12:00", 2),
        ["2026-09-27T03:45:00+13:45", "2026-09-28T03:00:00+13:45"]
    );
    // Samoa skipped 2011-12-30 entirely: its noon run shifts to the first
    // instant after the gap, midnight of the 31st, then noon runs as usual.
    assert_eq!(
        runs("0 12 * * *", "Pacific/Apia", "2011-12-29T13:00", 2),
        ["2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"]
    );
    let wild = spec("0 * * * *");
    assert_eq!(
        runs_with(
            &wild,
            DstRule::default_for(false),
            "Pacific/Apia",
            "2011-12-29T23:30",
            2
        ),
        ["2011-12-31T00:00:00+14:00", "2011-12-31T01:00:00+14:00"],
        "a wildcard entry just continues in real time"
    );
}

#[test]
fn month_ends_and_leap_days() {
    assert_eq!(
        runs("0 0 29 2 *", "UTC", "2025-03-01T00:00", 3),
        [
            "2028-02-29T00:00:00+00:00",
            "2032-02-29T00:00:00+00:00",
            "2036-02-29T00:00:00+00:00"
        ]
    );
    assert_eq!(
        runs("0 0 31 * *", "UTC", "2026-01-31T00:00:01", 3),
        [
            "2026-03-31T00:00:00+00:00",
            "2026-05-31T00:00:00+00:00",
            "2026-07-31T00:00:00+00:00"
        ]
    );
    assert_eq!(
        runs("59 23 28-31 2 *", "UTC", "2100-02-01T00:00", 2),
        ["2100-02-28T23:59:00+00:00", "2101-02-28T23:59:00+00:00"],
        "2100 is not a leap year"
    );
    assert_eq!(
        runs("0 0 1 1 *", "UTC", "2026-12-31T23:59:59", 1),
        ["2027-01-01T00:00:00+00:00"]
    );
}

#[test]
fn impossible_patterns_are_rejected_at_parse_not_searched() {
    let err = Cron::parse("0 0 31 2 *").unwrap_err();
    assert!(err.to_string().contains("never matches"), "{err}");
    let err = Crontab::parse(&CrontabFields {
        day_of_month: "30,31".into(),
        month_of_year: "2".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("never matches"), "{err}");
}

#[test]
fn day_rules_or_versus_and() {
    // Vixie OR: Fridays and the 13th.
    assert_eq!(
        runs("0 0 13 * fri", "UTC", "2026-01-01T00:00", 4),
        [
            "2026-01-02T00:00:00+00:00",
            "2026-01-09T00:00:00+00:00",
            "2026-01-13T00:00:00+00:00",
            "2026-01-16T00:00:00+00:00"
        ]
    );
    // Celery AND: Friday the 13th.
    let tab = Crontab::parse(&CrontabFields {
        minute: "0".into(),
        hour: "0".into(),
        day_of_week: "fri".into(),
        day_of_month: "13".into(),
        month_of_year: "*".into(),
    })
    .unwrap();
    assert_eq!(
        runs_with(
            &tab.spec,
            DstRule::default_for(true),
            "UTC",
            "2026-01-01T00:00",
            3
        ),
        [
            "2026-02-13T00:00:00+00:00",
            "2026-03-13T00:00:00+00:00",
            "2026-11-13T00:00:00+00:00"
        ]
    );
    // The first Monday of the month.
    let tab = Crontab::parse(&CrontabFields {
        minute: "0".into(),
        hour: "9".into(),
        day_of_week: "mon".into(),
        day_of_month: "1-7".into(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        runs_with(
            &tab.spec,
            DstRule::default_for(true),
            "UTC",
            "2026-05-15T00:00",
            2
        ),
        ["2026-06-01T09:00:00+00:00", "2026-07-06T09:00:00+00:00"]
    );
}

#[test]
fn seconds_field() {
    assert_eq!(
        runs("*/20 * * * * *", "UTC", "2026-01-01T00:00:00", 4),
        [
            "2026-01-01T00:00:20+00:00",
            "2026-01-01T00:00:40+00:00",
            "2026-01-01T00:01:00+00:00",
            "2026-01-01T00:01:20+00:00"
        ]
    );
}

// ---------------------------------------------------------------------------
// The oracle: walk real time one minute at a time and apply the contract's
// rules directly to each instant.

fn oracle(
    s: &CalendarSpec,
    rule: DstRule,
    z: &TimeZone,
    after: Timestamp,
    until: Timestamp,
) -> Vec<Timestamp> {
    let minute = SignedDuration::from_mins(1);
    let secs = after.as_second();
    let mut t = Timestamp::from_second(secs - secs.rem_euclid(60) + 60).unwrap();
    let mut out = Vec::new();
    while t <= until {
        let off = z.to_offset(t);
        let before = z.to_offset(t.checked_sub(SignedDuration::from_nanos(1)).unwrap());
        let mut fire = false;
        if off > before && rule.gap == Gap::Shift {
            // `t` ends a gap: does any skipped wall minute match?
            let mut c = before.to_datetime(t);
            let end = off.to_datetime(t);
            while c < end {
                fire |= s.matches(c);
                c = c.checked_add(minute).unwrap();
            }
        }
        let c = off.to_datetime(t);
        if s.matches(c) {
            let later = matches!(z.to_ambiguous_timestamp(c).offset(),
                AmbiguousOffset::Fold { after: a, before: b } if a != b && a == off);
            fire |= !(later && rule.fold == Fold::First);
        }
        if fire && t > after {
            out.push(t);
        }
        t = t.checked_add(minute).unwrap();
    }
    out
}

fn ours(
    s: &CalendarSpec,
    rule: DstRule,
    z: &TimeZone,
    after: Timestamp,
    until: Timestamp,
) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut t = after;
    while let Some(n) = s.next_after(z, rule, t).filter(|n| *n <= until) {
        out.push(n);
        t = n;
    }
    out
}

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Australia/Adelaide",
    "Asia/Kathmandu",
    "America/Havana",
    "Africa/Casablanca",
    "Antarctica/Troll",
    "America/Santiago",
    "Europe/London",
    "Pacific/Apia",
];

fn field(max: u32, min: u32) -> impl Strategy<Value = String> {
    let v = min..=max;
    prop_oneof![
        3 => Just("*".to_string()),
        2 => (1..=max.min(30)).prop_map(|k| format!("*/{k}")),
        2 => v.clone().prop_map(|a| a.to_string()),
        2 => (v.clone(), v.clone()).prop_map(|(a, b)| format!("{},{}", a.min(b), a.max(b))),
        1 => (v.clone(), v.clone(), 1..=5u32).prop_map(|(a, b, k)| format!("{}-{}/{k}", a.min(b), a.max(b))),
    ]
}

fn expr() -> impl Strategy<Value = String> {
    (
        field(59, 0),
        field(23, 0),
        prop_oneof![4 => Just("*".to_string()), 1 => field(31, 1)],
        prop_oneof![6 => Just("*".to_string()), 1 => field(12, 1)],
        prop_oneof![3 => Just("*".to_string()), 1 => field(6, 0)],
    )
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

fn rule() -> impl Strategy<Value = Option<DstRule>> {
    prop_oneof![
        2 => Just(None),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(g, f)| Some(DstRule {
            gap: if g { Gap::Shift } else { Gap::Skip },
            fold: if f { Fold::First } else { Fold::Both },
        })),
    ]
}

/// A start instant: half the time near one of the zone's transitions.
fn start(zone: &'static str) -> impl Strategy<Value = Timestamp> {
    (
        2000i16..2037,
        0i64..365 * 86_400,
        any::<bool>(),
        -2 * 86_400i64..86_400,
    )
        .prop_map(move |(year, secs, near, shift)| {
            let base: Timestamp = format!("{year}-01-01T00:00:00Z").parse().unwrap();
            let random = base.checked_add(SignedDuration::from_secs(secs)).unwrap();
            let z = tz(zone);
            let pick = if near {
                z.following(random).next().map(|t| t.timestamp())
            } else {
                None
            };
            match pick {
                Some(t) => t.checked_add(SignedDuration::from_secs(shift)).unwrap(),
                None => random,
            }
        })
}

fn case() -> impl Strategy<Value = (String, &'static str, Option<DstRule>, Timestamp)> {
    (expr(), prop::sample::select(ZONES), rule())
        .prop_flat_map(|(e, z, r)| (Just(e), Just(z), Just(r), start(z)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_minute_walking_oracle((e, zone, r, after) in case(), sub in 0i64..60) {
        let Ok(cron) = Cron::parse(&e) else { return Ok(()) };
        let s = cron.spec;
        let rule = r.unwrap_or(DstRule::default_for(s.fixed_time));
        let z = tz(zone);
        // Sub-minute start instants must work too.
        let after = after.checked_add(SignedDuration::from_secs(sub)).unwrap();
        let until = after.checked_add(SignedDuration::from_hours(72)).unwrap();
        let expected = oracle(&s, rule, &z, after, until);
        let got = ours(&s, rule, &z, after, until);
        prop_assert_eq!(&got, &expected, "expr {} zone {} rule {:?} after {}", e, zone, rule, after);
        // And when nothing falls in the window, the next run is beyond it.
        if expected.is_empty()
            && let Some(n) = s.next_after(&z, rule, after)
        {
            prop_assert!(n > until);
        }
    }
}
