//! The pure scheduler driven by a fake clock: on-time dispatch, restarts,
//! outages under each misfire policy, grace, jitter, one-offs and edits.

use jiff::{SignedDuration, Timestamp};
use metronome::engine::{Decision, Outcome, Scheduler, SkipReason};
use metronome::entry::Entry;
use metronome::source::yaml::load_str;
use metronome::state::EntryState;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn entries(yaml: &str) -> Vec<Entry> {
    load_str("test.yaml", yaml, &None).unwrap_or_else(|e| panic!("{e}"))
}

fn one(body: &str) -> Entry {
    entries(&format!("schedules:\n  e:\n    task: t\n{body}")).remove(0)
}

/// What happened in one simulated stretch.
#[derive(Default, Debug)]
struct Log {
    sent: Vec<(String, Timestamp, Timestamp, bool)>,
    skipped: Vec<(String, SkipReason, u64, Timestamp, Timestamp)>,
}

/// Ticks the clock from `from` to `to` by `step`, recording every dispatch
/// as sent at the tick's time.
fn drive(s: &mut Scheduler, from: Timestamp, to: Timestamp, step: SignedDuration) -> Log {
    let mut log = Log::default();
    let mut now = from;
    while now <= to {
        if !s.is_active() {
            s.resume(now);
        }
        for d in s.poll(now) {
            match &d {
                Decision::Dispatch { entry, run, missed } => {
                    assert!(
                        run.due <= now,
                        "never early: {} due {} at {now}",
                        entry.name,
                        run.due
                    );
                    log.sent
                        .push((entry.name.clone(), run.scheduled, now, *missed));
                    s.record(&d, Some(&Outcome::Sent { at: now }));
                }
                Decision::Skip {
                    entry,
                    reason,
                    count,
                    first,
                    last,
                } => {
                    log.skipped
                        .push((entry.name.clone(), *reason, *count, *first, *last));
                    s.record(&d, None);
                }
            }
        }
        now = now.checked_add(step).unwrap();
    }
    log
}

fn states(s: &Scheduler) -> Vec<(Entry, EntryState)> {
    s.iter()
        .map(|(e, st, _)| ((**e).clone(), st.clone()))
        .collect()
}

fn restart(saved: Vec<(Entry, EntryState)>, now: Timestamp) -> Scheduler {
    let mut s = Scheduler::new();
    for (e, st) in saved {
        s.upsert(e, Some(st), now);
    }
    s
}

const SEC: SignedDuration = SignedDuration::from_secs(1);

#[test]
fn interval_runs_on_its_grid_exactly_once_each() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 10s"), None, t0);
    let log = drive(
        &mut s,
        t0,
        ts("2026-01-01T01:00:00Z"),
        SignedDuration::from_millis(250),
    );
    assert_eq!(log.sent.len(), 360);
    for (i, (_, scheduled, at, missed)) in log.sent.iter().enumerate() {
        assert_eq!(
            *scheduled,
            t0.checked_add(SignedDuration::from_secs(10 * (i as i64 + 1)))
                .unwrap()
        );
        assert!(at.duration_since(*scheduled) < SignedDuration::from_millis(250));
        assert!(!missed);
    }
    let (_, st, next) = s.get("e").unwrap();
    assert_eq!(st.total_runs, 360);
    assert_eq!(next.unwrap().scheduled, ts("2026-01-01T01:00:10Z"));
}

#[test]
fn slow_loop_does_not_drift_or_skip() {
    // The loop wakes only every 7 s; a 5 s interval still gets every slot.
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 5s"), None, t0);
    let log = drive(
        &mut s,
        t0,
        ts("2026-01-01T00:01:10Z"),
        SignedDuration::from_secs(7),
    );
    let times: Vec<i64> = log
        .sent
        .iter()
        .map(|x| x.1.as_second() - t0.as_second())
        .collect();
    assert_eq!(times, (1..=14).map(|k| k * 5).collect::<Vec<_>>());
}

#[test]
fn restart_neither_repeats_nor_loses() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    cron: '* * * * *'"), None, t0);
    let a = drive(&mut s, t0, ts("2026-01-01T00:10:30Z"), SEC);
    assert_eq!(a.sent.len(), 10);
    // Restart 20 s later, still before the next slot: nothing is owed.
    let mut s = restart(states(&s), ts("2026-01-01T00:10:50Z"));
    let b = drive(
        &mut s,
        ts("2026-01-01T00:10:50Z"),
        ts("2026-01-01T00:12:00Z"),
        SEC,
    );
    let got: Vec<Timestamp> = b.sent.iter().map(|x| x.1).collect();
    assert_eq!(
        got,
        [ts("2026-01-01T00:11:00Z"), ts("2026-01-01T00:12:00Z")]
    );
    assert!(b.sent.iter().all(|x| !x.3));
}

/// One day running, three days down, then back: what each policy does.
fn outage(policy_and_more: &str) -> (Log, Scheduler) {
    let t0 = ts("2026-03-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(
        one(&format!("    cron: '0 * * * *'\n{policy_and_more}")),
        None,
        t0,
    );
    let day = drive(
        &mut s,
        t0,
        ts("2026-03-02T00:00:00Z"),
        SignedDuration::from_secs(60),
    );
    assert_eq!(day.sent.len(), 24);
    let back = ts("2026-03-05T00:30:00Z");
    let mut s = restart(states(&s), back);
    let log = drive(
        &mut s,
        back,
        ts("2026-03-05T02:00:00Z"),
        SignedDuration::from_secs(60),
    );
    (log, s)
}

#[test]
fn outage_with_misfire_once_fires_the_latest_missed_run() {
    let (log, s) = outage("    misfire: once");
    // 72 hourly slots were missed (03-02 01:00 .. 03-05 00:00).
    assert_eq!(
        log.skipped,
        [(
            "e".into(),
            SkipReason::Misfire,
            71,
            ts("2026-03-02T01:00:00Z"),
            ts("2026-03-04T23:00:00Z")
        )]
    );
    let sent: Vec<(Timestamp, bool)> = log.sent.iter().map(|x| (x.1, x.3)).collect();
    assert_eq!(
        sent,
        [
            (ts("2026-03-05T00:00:00Z"), true),
            (ts("2026-03-05T01:00:00Z"), false),
            (ts("2026-03-05T02:00:00Z"), false)
        ]
    );
    assert_eq!(
        log.sent[0].2,
        ts("2026-03-05T00:30:00Z"),
        "caught up immediately on recovery"
    );
    assert_eq!(s.get("e").unwrap().1.total_runs, 27);
}

#[test]
fn outage_with_misfire_all_fires_every_missed_run_in_order() {
    let (log, _) = outage("    misfire: all");
    assert!(log.skipped.is_empty());
    let missed: Vec<Timestamp> = log.sent.iter().filter(|x| x.3).map(|x| x.1).collect();
    assert_eq!(missed.len(), 72);
    assert_eq!(missed[0], ts("2026-03-02T01:00:00Z"));
    assert_eq!(missed[71], ts("2026-03-05T00:00:00Z"));
    assert!(missed.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(log.sent.len(), 74);
}

#[test]
fn outage_with_misfire_skip_fires_none_of_them() {
    let (log, _) = outage("    misfire: skip");
    assert_eq!(
        log.skipped,
        [(
            "e".into(),
            SkipReason::Misfire,
            72,
            ts("2026-03-02T01:00:00Z"),
            ts("2026-03-05T00:00:00Z")
        )]
    );
    let sent: Vec<Timestamp> = log.sent.iter().map(|x| x.1).collect();
    assert_eq!(
        sent,
        [ts("2026-03-05T01:00:00Z"), ts("2026-03-05T02:00:00Z")]
    );
}

#[test]
fn grace_drops_runs_that_are_too_old() {
    // The latest missed run is 30 minutes old; grace is 10 minutes.
    let (log, _) = outage("    misfire: once\n    grace: 10m");
    assert_eq!(log.skipped.len(), 2);
    assert_eq!(
        log.skipped[1],
        (
            "e".into(),
            SkipReason::Grace,
            1,
            ts("2026-03-05T00:00:00Z"),
            ts("2026-03-05T00:00:00Z")
        )
    );
    assert!(log.sent.iter().all(|x| !x.3));
    let (log, _) = outage("    misfire: all\n    grace: 45m");
    let missed: Vec<Timestamp> = log.sent.iter().filter(|x| x.3).map(|x| x.1).collect();
    assert_eq!(
        missed,
        [ts("2026-03-05T00:00:00Z")],
        "only the run within 45 minutes"
    );
    assert_eq!(log.skipped[0].2, 71);
}

#[test]
fn misfire_all_is_bounded() {
    let t0 = ts("2026-03-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 1m\n    misfire: all"), None, t0);
    drive(&mut s, t0, ts("2026-03-01T00:05:00Z"), SEC);
    let back = ts("2026-03-04T00:05:30Z");
    let mut s = restart(states(&s), back);
    let log = drive(&mut s, back, back, SEC);
    // 4320 minutes missed: over the 1000 limit, so only the latest fires.
    assert_eq!(log.sent.len(), 1);
    assert_eq!(log.sent[0].1, ts("2026-03-04T00:05:00Z"));
    assert_eq!(log.skipped[0].2, 4319);
}

#[test]
fn interval_outage_under_once_is_constant_time() {
    // A one-second interval down for three days: 259 200 missed runs are
    // counted arithmetically, not walked.
    let t0 = ts("2026-03-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 1s"), None, t0);
    drive(&mut s, t0, ts("2026-03-01T00:00:10Z"), SEC);
    let back = ts("2026-03-04T00:00:10.5Z");
    let mut s = restart(states(&s), back);
    let log = drive(&mut s, back, back, SEC);
    assert_eq!(
        log.skipped,
        [(
            "e".into(),
            SkipReason::Misfire,
            259_199,
            ts("2026-03-01T00:00:11Z"),
            ts("2026-03-04T00:00:09Z")
        )]
    );
    assert_eq!(
        log.sent.iter().map(|x| x.1).collect::<Vec<_>>(),
        [ts("2026-03-04T00:00:10Z")]
    );
}

#[test]
fn failed_publish_comes_back_as_a_missed_run() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 1m"), None, t0);
    s.resume(t0);
    let now = ts("2026-01-01T00:01:00Z");
    let d = s.poll(now);
    assert_eq!(d.len(), 1);
    s.record(
        &d[0],
        Some(&Outcome::Failed {
            error: "connection refused".into(),
        }),
    );
    assert_eq!(
        s.get("e").unwrap().1.last_error.as_deref(),
        Some("connection refused")
    );
    s.pause();
    assert!(
        s.poll(ts("2026-01-01T00:01:30Z")).is_empty(),
        "nothing while paused"
    );
    // Broker back at 00:01:40: the failed run is owed, once.
    let log = drive(
        &mut s,
        ts("2026-01-01T00:01:40Z"),
        ts("2026-01-01T00:02:00Z"),
        SEC,
    );
    let sent: Vec<(Timestamp, bool)> = log.sent.iter().map(|x| (x.1, x.3)).collect();
    assert_eq!(
        sent,
        [
            (ts("2026-01-01T00:01:00Z"), true),
            (ts("2026-01-01T00:02:00Z"), false)
        ]
    );
    assert_eq!(s.get("e").unwrap().1.last_error, None);
}

#[test]
fn unknown_outcome_is_never_repeated() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 1m"), None, t0);
    s.resume(t0);
    let d = s.poll(ts("2026-01-01T00:01:00Z"));
    let at = ts("2026-01-01T00:01:01Z");
    s.record(
        &d[0],
        Some(&Outcome::Unknown {
            at,
            error: "timed out".into(),
        }),
    );
    s.pause();
    let log = drive(
        &mut s,
        ts("2026-01-01T00:01:30Z"),
        ts("2026-01-01T00:01:59Z"),
        SEC,
    );
    assert!(log.sent.is_empty());
}

#[test]
fn one_off_fires_once_and_is_finished() {
    let t0 = ts("2026-12-01T07:50:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    at: '2026-12-01T09:00:00+01:00'"), None, t0);
    let log = drive(&mut s, t0, ts("2026-12-01T08:10:00Z"), SEC);
    let sent: Vec<(Timestamp, Timestamp, bool)> =
        log.sent.iter().map(|x| (x.1, x.2, x.3)).collect();
    assert_eq!(
        sent,
        [(
            ts("2026-12-01T08:00:00Z"),
            ts("2026-12-01T08:00:00Z"),
            false
        )]
    );
    assert!(s.get("e").unwrap().2.is_none(), "nothing after the one run");
    // Restarted later with its state: never again.
    let mut s = restart(states(&s), ts("2026-12-02T00:00:00Z"));
    assert!(
        drive(
            &mut s,
            ts("2026-12-02T00:00:00Z"),
            ts("2026-12-02T00:00:05Z"),
            SEC
        )
        .sent
        .is_empty()
    );
}

#[test]
fn one_off_that_passed_while_down_follows_misfire() {
    let now = ts("2026-12-01T09:00:00Z");
    for (policy, expected) in [("once", 1), ("skip", 0)] {
        let mut s = Scheduler::new();
        s.upsert(
            one(&format!(
                "    at: '2026-12-01T08:00:00Z'\n    misfire: {policy}"
            )),
            None,
            now,
        );
        let log = drive(&mut s, now, now, SEC);
        assert_eq!(log.sent.len(), expected, "{policy}");
    }
}

#[test]
fn jitter_delays_dispatch_but_not_the_scheduled_time() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    let e = one("    cron: '0 * * * *'\n    jitter: 10m");
    let offset = e.jitter_offset();
    assert!(offset > SignedDuration::ZERO && offset < SignedDuration::from_mins(10));
    s.upsert(e, None, t0);
    s.resume(t0);
    assert!(s.poll(ts("2026-01-01T01:00:00Z")).is_empty());
    let due = ts("2026-01-01T01:00:00Z").checked_add(offset).unwrap();
    assert_eq!(s.next_wake(), Some(due));
    let d = s.poll(due);
    match &d[..] {
        [Decision::Dispatch { run, .. }] => {
            assert_eq!((run.scheduled, run.due), (ts("2026-01-01T01:00:00Z"), due))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn editing_a_schedule_owes_no_runs_from_before_the_edit() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    cron: '0 0 * * *'"), None, t0);
    drive(
        &mut s,
        t0,
        ts("2026-01-01T05:00:00Z"),
        SignedDuration::from_secs(60),
    );
    // Switch to hourly at 05:30: the hourly slots since midnight are not owed.
    let edit = ts("2026-01-01T05:30:00Z");
    s.upsert(one("    cron: '0 * * * *'"), None, edit);
    let log = drive(
        &mut s,
        edit,
        ts("2026-01-01T07:00:00Z"),
        SignedDuration::from_secs(60),
    );
    assert_eq!(
        log.sent.iter().map(|x| x.1).collect::<Vec<_>>(),
        [ts("2026-01-01T06:00:00Z"), ts("2026-01-01T07:00:00Z")]
    );
    assert!(log.skipped.is_empty());
}

#[test]
fn changing_an_interval_re_anchors_it() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 1h"), None, t0);
    let edit = ts("2026-01-01T00:17:00Z");
    s.upsert(one("    every: 30m"), None, edit);
    let log = drive(
        &mut s,
        edit,
        ts("2026-01-01T01:20:00Z"),
        SignedDuration::from_secs(60),
    );
    assert_eq!(
        log.sent.iter().map(|x| x.1).collect::<Vec<_>>(),
        [ts("2026-01-01T00:47:00Z"), ts("2026-01-01T01:17:00Z")]
    );
}

#[test]
fn disabled_entries_never_run_and_re_enabling_owes_nothing() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut s = Scheduler::new();
    s.upsert(one("    every: 1m\n    enabled: false"), None, t0);
    assert!(
        drive(&mut s, t0, ts("2026-01-01T01:00:00Z"), SEC)
            .sent
            .is_empty()
    );
    let on = ts("2026-01-01T01:00:30Z");
    s.upsert(one("    every: 1m"), None, on);
    let log = drive(&mut s, on, ts("2026-01-01T01:02:00Z"), SEC);
    assert_eq!(log.sent.len(), 2, "only the runs after re-enabling");
    assert!(log.sent.iter().all(|x| !x.3 && x.1 > on));
}

#[test]
fn many_entries_come_out_in_due_order() {
    let t0 = ts("2026-01-01T00:00:00Z");
    let mut yaml = String::from("schedules:\n");
    for i in 0..500 {
        yaml.push_str(&format!(
            "  e{i}:\n    task: t\n    every: {}s\n",
            7 + i % 53
        ));
    }
    let mut s = Scheduler::new();
    for e in entries(&yaml) {
        s.upsert(e, None, t0);
    }
    let log = drive(
        &mut s,
        t0,
        ts("2026-01-01T00:10:00Z"),
        SignedDuration::from_millis(500),
    );
    let expected: usize = (0..500).map(|i| 600 / (7 + i % 53)).sum();
    assert_eq!(log.sent.len(), expected);
    let mut seen = std::collections::HashSet::new();
    for (name, scheduled, _, _) in &log.sent {
        assert!(
            seen.insert((name.clone(), *scheduled)),
            "duplicate {name} {scheduled}"
        );
    }
    assert!(log.sent.windows(2).all(|w| w[0].2 <= w[1].2));
}
