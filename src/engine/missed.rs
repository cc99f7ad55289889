//! The missed-run policy: what happens to the runs of one entry that fell
//! due before dispatching (re)started, per its `misfire` setting (`skip`,
//! `once`, `all`), its grace and its expiry.
//!
//! Owns the catch-up walk (bounded by [`CATCH_UP_WALK_LIMIT`], O(1) for
//! intervals under `once`/`skip`) and the decisions it yields.
//!
//! Invariant: pure; every missed run is accounted for exactly once, as
//! skipped or dispatched, and `slot.considered` ends at the last of them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use jiff::{SignedDuration, Timestamp};

use super::decision::{Decision, Run, SkipReason};
use super::due::{Slot, dispatch_unless_expired, next_run, within_grace};
use crate::entry::{MISFIRE_ALL_LIMIT, Misfire};
use crate::schedule::Schedule;

/// Ceiling on runs walked for one entry in one catch-up, so a pathological
/// schedule (a seconds-level cron after a long outage) cannot stall the loop.
const CATCH_UP_WALK_LIMIT: u64 = 5_000_000;

/// The missed runs of one entry, as walked.
struct Walk {
    /// How many runs were missed.
    count: u64,
    /// The last of them.
    last: Run,
    /// Under `misfire: all`, the newest `MISFIRE_ALL_LIMIT + 1` of them in
    /// time order (one more than the limit, to tell "too many" apart).
    kept: Vec<Run>,
}

/// Handles the runs of one entry that fell due before `since`, starting
/// with `first`. Leaves `slot.considered` at the last missed run.
pub(super) fn decide_missed(
    slot: &mut Slot,
    first: Run,
    since: Timestamp,
    now: Timestamp,
    out: &mut Vec<Decision>,
) {
    // Runs missed while disabled are skipped as disabled, like `misfire: skip`.
    let (policy, missed_reason) = if slot.entry.enabled {
        (slot.entry.misfire, SkipReason::Misfire)
    } else {
        (Misfire::Skip, SkipReason::Disabled)
    };
    let walk = walk_missed(slot, policy, first, since);
    slot.considered = Some(walk.last.scheduled);
    let slot = &*slot;
    match policy {
        Misfire::Skip => out.push(Decision::skip(
            &slot.entry,
            missed_reason,
            walk.count,
            first.scheduled,
            walk.last.scheduled,
        )),
        Misfire::Once => decide_once(slot, first, &walk, now, out),
        Misfire::All => decide_all(slot, first, walk, now, out),
    }
}

/// Walks the missed runs from `first`, keeping the few `policy` may
/// dispatch.
fn walk_missed(slot: &Slot, policy: Misfire, first: Run, since: Timestamp) -> Walk {
    if let Some((count, last)) = interval_missed(slot, policy, first, since) {
        return Walk {
            count,
            last,
            kept: Vec::new(),
        };
    }
    let mut count: u64 = 0;
    let mut last = first;
    let mut kept: BinaryHeap<Reverse<Run>> = BinaryHeap::new();
    let mut cur = Some(first);
    while let Some(run) = cur {
        if run.due >= since || count >= CATCH_UP_WALK_LIMIT {
            break;
        }
        count += 1;
        last = run;
        if policy == Misfire::All {
            kept.push(Reverse(run));
            if kept.len() > MISFIRE_ALL_LIMIT + 1 {
                kept.pop();
            }
        }
        cur = next_run(slot, Some(run.scheduled));
    }
    let mut kept: Vec<Run> = kept.into_iter().map(|r| r.0).collect();
    kept.sort();
    Walk { count, last, kept }
}

/// `misfire: once`: every missed run but the last is skipped; the last is
/// dispatched if within grace.
fn decide_once(slot: &Slot, first: Run, walk: &Walk, now: Timestamp, out: &mut Vec<Decision>) {
    let last = walk.last;
    if walk.count > 1 {
        out.push(skip_all_but_last(slot, first, walk));
    }
    if within_grace(&slot.entry, last, now) {
        out.push(dispatch_unless_expired(&slot.entry, last, true, now));
    } else {
        out.push(Decision::skip_one(&slot.entry, SkipReason::Grace, last));
    }
}

/// `misfire: all`: every missed run within grace is dispatched, the rest
/// skipped as late; past [`MISFIRE_ALL_LIMIT`] only the last one is.
fn decide_all(slot: &Slot, first: Run, walk: Walk, now: Timestamp, out: &mut Vec<Decision>) {
    let runs = if walk.count as usize > MISFIRE_ALL_LIMIT {
        // Too many: fire the latest only, and say so.
        out.push(skip_all_but_last(slot, first, &walk));
        vec![walk.last]
    } else {
        walk.kept
    };
    let (late, ok): (Vec<Run>, Vec<Run>) = runs
        .into_iter()
        .partition(|r| !within_grace(&slot.entry, *r, now));
    if let (Some(a), Some(b)) = (late.first(), late.last()) {
        out.push(Decision::skip(
            &slot.entry,
            SkipReason::Grace,
            late.len() as u64,
            a.scheduled,
            b.scheduled,
        ));
    }
    out.extend(
        ok.into_iter()
            .map(|run| dispatch_unless_expired(&slot.entry, run, true, now)),
    );
}

/// Skips the walked runs from `first` up to the one before the last, as
/// misfires.
fn skip_all_but_last(slot: &Slot, first: Run, walk: &Walk) -> Decision {
    let prev_last = previous_missed(slot, first, walk.last);
    Decision::skip(
        &slot.entry,
        SkipReason::Misfire,
        walk.count - 1,
        first.scheduled,
        prev_last,
    )
}

/// For intervals under `once`/`skip`: the number of missed runs from
/// `first` and the last one, in O(1) however long the outage.
fn interval_missed(
    slot: &Slot,
    policy: Misfire,
    first: Run,
    since: Timestamp,
) -> Option<(u64, Run)> {
    let (Schedule::Every(i), Misfire::Once | Misfire::Skip) = (&slot.entry.schedule, policy) else {
        return None;
    };
    let e = &slot.entry;
    let anchor = e.timing.start_at.or(slot.state.anchor)?;
    let j = e.jitter_offset();
    let mut limit = since
        .checked_sub(j)
        .ok()?
        .checked_sub(SignedDuration::from_nanos(1))
        .ok()?;
    if let Some(end) = e.timing.end_at {
        limit = limit.min(end.checked_sub(SignedDuration::from_nanos(1)).ok()?);
    }
    let last = i.last_at_or_before(anchor, limit)?.max(first.scheduled);
    let count = (last.as_nanosecond() - first.scheduled.as_nanosecond()) / i.every.as_nanos() + 1;
    Some((
        count as u64,
        Run {
            scheduled: last,
            due: last.checked_add(j).ok()?,
        },
    ))
}

/// The scheduled time of the missed run just before `last`.
fn previous_missed(slot: &Slot, first: Run, last: Run) -> Timestamp {
    if let Schedule::Every(i) = &slot.entry.schedule {
        return last
            .scheduled
            .checked_sub(i.every)
            .unwrap_or(first.scheduled)
            .max(first.scheduled);
    }
    let mut prev = first.scheduled;
    let mut cur = Some(first);
    while let Some(r) = cur {
        if r.scheduled >= last.scheduled {
            break;
        }
        prev = r.scheduled;
        cur = next_run(slot, Some(r.scheduled));
    }
    prev
}
