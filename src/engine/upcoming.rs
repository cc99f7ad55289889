//! Listings of future runs: the next N runs of many entries merged in time
//! order, for `metronome next` and the API's next-runs endpoint.
//!
//! Owns nothing but the merge; it reads entries and their anchors.
//!
//! Invariant: pure, and independent of the scheduler's queue and run
//! state; disabled entries have no upcoming runs.

use std::collections::BinaryHeap;

use jiff::Timestamp;

use super::decision::Run;
use crate::entry::Entry;

/// The next `count` runs of `entries` strictly after `from` (by due time)
/// and before `until`, merged in time order. Each item pairs an entry with
/// its interval anchor.
pub fn upcoming<'a>(
    entries: impl IntoIterator<Item = (&'a Entry, Timestamp)>,
    from: Timestamp,
    until: Option<Timestamp>,
    count: usize,
) -> Vec<(&'a Entry, Run)> {
    use std::cmp::Reverse;
    let next = |e: &Entry, anchor: Timestamp, after_due: Timestamp| -> Option<Run> {
        if !e.enabled {
            return None;
        }
        let j = e.jitter_offset();
        let scheduled = e.next_after(anchor, after_due.checked_sub(j).ok()?)?;
        let run = Run {
            scheduled,
            due: scheduled.checked_add(j).ok()?,
        };
        until.is_none_or(|u| run.due < u).then_some(run)
    };
    let entries: Vec<(&Entry, Timestamp)> = entries.into_iter().collect();
    let mut heap = BinaryHeap::new();
    for (i, (e, anchor)) in entries.iter().enumerate() {
        if let Some(r) = next(e, *anchor, from) {
            heap.push(Reverse((r.due, i, r)));
        }
    }
    let mut out = Vec::with_capacity(count.min(10_000));
    while out.len() < count {
        let Some(Reverse((_, i, run))) = heap.pop() else {
            break;
        };
        let (e, anchor) = entries[i];
        out.push((e, run));
        if let Some(r) = next(e, anchor, run.due) {
            heap.push(Reverse((r.due, i, r)));
        }
    }
    out
}
