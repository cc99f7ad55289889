//! What is due now: an entry's [`Slot`] (entry, durable state, next run),
//! the next run after a given one, and the decision for a run that fell due
//! while dispatching was active (disabled, past its grace, expired, or
//! dispatched). Also how long the loop may sleep.
//!
//! Owns the per-entry slot and the grace and expiry rules.
//!
//! Invariant: pure; `now` is an argument, and a slot's `next` is always
//! the first run after its `considered` time.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::decision::{Decision, Run, SkipReason};
use crate::entry::{Entry, Expires};
use crate::state::EntryState;

/// One entry as the scheduler keeps it.
pub(super) struct Slot {
    pub(super) entry: Arc<Entry>,
    pub(super) state: EntryState,
    /// Scheduled time of the last run handed out by `poll` (may be ahead of
    /// `state.cursor` until recorded).
    pub(super) considered: Option<Timestamp>,
    pub(super) next: Option<Run>,
}

/// The first run strictly after `after` (or the first run at all). A
/// disabled entry has runs too: they are skipped as `disabled` when due.
pub(super) fn next_run(slot: &Slot, after: Option<Timestamp>) -> Option<Run> {
    let e = &slot.entry;
    let anchor = slot.state.anchor.unwrap_or(Timestamp::UNIX_EPOCH);
    let after = after.unwrap_or(Timestamp::MIN);
    let scheduled = e.next_after(anchor, after)?;
    let due = scheduled.checked_add(e.jitter_offset()).ok()?;
    Some(Run { scheduled, due })
}

/// Decides `run`, which fell due while dispatching was active: skipped if
/// the entry is disabled or the run is older than its grace, else
/// dispatched unless expired. Leaves `slot.considered` at the run.
pub(super) fn decide_due(slot: &mut Slot, run: Run, now: Timestamp) -> Decision {
    let decision = if !slot.entry.enabled {
        Decision::skip_one(&slot.entry, SkipReason::Disabled, run)
    } else if within_grace(&slot.entry, run, now) {
        dispatch_unless_expired(&slot.entry, run, false, now)
    } else {
        Decision::skip_one(&slot.entry, SkipReason::Grace, run)
    };
    slot.considered = Some(run.scheduled);
    decision
}

/// True if `run` is not older than the entry's grace at `now`.
pub(super) fn within_grace(entry: &Entry, run: Run, now: Timestamp) -> bool {
    entry
        .timing
        .grace
        .is_none_or(|g| now.duration_since(run.due) <= g)
}

/// When a run of `entry` scheduled at `scheduled` expires, if it does.
pub fn expires_at(entry: &Entry, scheduled: Timestamp) -> Option<Timestamp> {
    entry.options.expires.map(|e| match e {
        Expires::After(d) => scheduled.checked_add(d).unwrap_or(Timestamp::MAX),
        Expires::At(t) => t,
    })
}

/// Dispatches `run`, or skips it as expired if its expiry is not after `now`.
pub(super) fn dispatch_unless_expired(
    entry: &Arc<Entry>,
    run: Run,
    missed: bool,
    now: Timestamp,
) -> Decision {
    match expires_at(entry, run.scheduled) {
        Some(x) if x <= now => Decision::skip_one(entry, SkipReason::Expired, run),
        _ => Decision::Dispatch {
            entry: entry.clone(),
            run,
            missed,
        },
    }
}

/// How long the loop may sleep: until the next due run, capped so clock
/// steps and suspends are noticed within `cap`.
pub fn sleep_for(
    next_wake: Option<Timestamp>,
    now: Timestamp,
    cap: SignedDuration,
) -> SignedDuration {
    match next_wake {
        Some(w) => now.duration_until(w).clamp(SignedDuration::ZERO, cap),
        None => cap,
    }
}
