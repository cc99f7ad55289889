//! The pure scheduler: given entries, their run state and "now", decide
//! which runs are due and when to wake next.
//!
//! Nothing here reads a clock, sleeps or does I/O; `now` is always an
//! argument, so a whole year can be simulated in milliseconds.
//!
//! Each entry's next run sits in one ordered queue keyed by its due time
//! (scheduled time plus jitter), so finding due runs costs O(log n) per run
//! whatever the number of entries.
//!
//! # Missed runs
//!
//! The scheduler dispatches only while *active* ([`Scheduler::resume`] to
//! [`Scheduler::pause`]). A run whose due time is before the moment
//! dispatching (re)started was *missed*; the entry's `misfire` policy decides
//! what happens to it. A run that falls due while active is dispatched even
//! if the loop is a little late, unless it is older than the entry's `grace`.
//!
//! # Protocol
//!
//! [`Scheduler::poll`] returns [`Decision`]s; the caller acts on each and
//! reports back with [`Scheduler::record`] before the next poll. A failed
//! publish is recorded and followed by [`Scheduler::pause`]; the next
//! [`Scheduler::resume`] recomputes every entry from its durable state, so
//! the failed run comes back as a missed run.

use std::collections::{BTreeSet, BinaryHeap};
use std::hash::BuildHasher;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::NameHasher;
use crate::entry::{Entry, Expires, MISFIRE_ALL_LIMIT, Misfire};
use crate::schedule::Schedule;
use crate::state::{EntryState, HistoryItem, HistoryOutcome, TimingKey};

/// One run of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Run {
    /// The time the schedule names; identifies the run (task id, state).
    pub scheduled: Timestamp,
    /// When it is dispatched: `scheduled` plus the entry's jitter.
    pub due: Timestamp,
}

/// Why runs were not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// Missed, and the misfire policy drops it.
    Misfire,
    /// Older than the entry's grace.
    Grace,
    /// Its `options.expires` had passed when it fell due: a worker would
    /// discard it, so it is not sent.
    Expired,
    /// It fell due while the entry was disabled.
    Disabled,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Misfire => "misfire",
            SkipReason::Grace => "grace",
            SkipReason::Expired => "expired",
            SkipReason::Disabled => "disabled",
        }
    }
}

/// What to do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Publish this run.
    Dispatch {
        entry: Arc<Entry>,
        run: Run,
        missed: bool,
    },
    /// `count` runs from `first` to `last` (scheduled times) are dropped.
    Skip {
        entry: Arc<Entry>,
        reason: SkipReason,
        count: u64,
        first: Timestamp,
        last: Timestamp,
    },
}

impl Decision {
    pub fn entry(&self) -> &Arc<Entry> {
        match self {
            Decision::Dispatch { entry, .. } | Decision::Skip { entry, .. } => entry,
        }
    }
}

/// The result of acting on a [`Decision::Dispatch`].
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The broker has it.
    Sent { at: Timestamp },
    /// The broker does not have it; the run stays owed.
    Failed { error: String },
    /// It may or may not have arrived (a timeout after sending). Counted as
    /// sent so it is never repeated: at most once wins over at least once.
    Unknown { at: Timestamp, error: String },
}

struct Slot {
    entry: Arc<Entry>,
    state: EntryState,
    /// Scheduled time of the last run handed out by `poll` (may be ahead of
    /// `state.cursor` until recorded).
    considered: Option<Timestamp>,
    next: Option<Run>,
}

/// The scheduler's view of all entries.
#[derive(Default)]
pub struct Scheduler {
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// Slot numbers, hashed by their entry's name (the name is not copied).
    by_name: hashbrown::HashTable<u32>,
    hasher: NameHasher,
    queue: BTreeSet<(Timestamp, u32)>,
    active_since: Option<Timestamp>,
}

/// Ceiling on runs walked for one entry in one catch-up, so a pathological
/// schedule (a seconds-level cron after a long outage) cannot stall the loop.
const CATCH_UP_WALK_LIMIT: u64 = 5_000_000;

impl Scheduler {
    pub fn new() -> Scheduler {
        Scheduler::default()
    }

    /// Makes room for `additional` more entries (one allocation instead of
    /// repeated growth when loading many).
    pub fn reserve(&mut self, additional: usize) {
        self.slots.reserve(additional);
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_name
            .reserve(additional, |&id| hasher.hash_one(slot_name(slots, id)));
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// True between `resume` and `pause`.
    pub fn is_active(&self) -> bool {
        self.active_since.is_some()
    }

    /// The slot number of `name`.
    fn id(&self, name: &str) -> Option<u32> {
        let slots = &self.slots;
        self.by_name
            .find(self.hasher.hash_one(name), |&id| {
                slot_name(slots, id) == name
            })
            .copied()
    }

    /// Adds or replaces an entry. `state` is its durable state if any (only
    /// used for a new entry). A changed schedule (see
    /// [`Entry::timing_key`]) starts afresh at `now`: no run before `now` is
    /// owed for it; so does an entry that becomes enabled.
    pub fn upsert(
        &mut self,
        entry: impl Into<Arc<Entry>>,
        state: Option<EntryState>,
        now: Timestamp,
    ) {
        let entry: Arc<Entry> = entry.into();
        let key = TimingKey::Hash(entry.timing_key());
        let (id, mut st, was_enabled, considered, new) = match self.id(&entry.name) {
            Some(id) => {
                let slot = self.slots[id as usize].take().expect("indexed slot exists");
                if let Some(n) = slot.next {
                    self.queue.remove(&(n.due, id));
                }
                (
                    id,
                    slot.state,
                    Some(slot.entry.enabled),
                    slot.considered,
                    false,
                )
            }
            None => {
                let id = self.free.pop().unwrap_or_else(|| {
                    self.slots.push(None);
                    (self.slots.len() - 1) as u32
                });
                let st = state.unwrap_or_default();
                let considered = st.cursor;
                (id, st, None, considered, true)
            }
        };
        let fresh = st.timing_key.is_none();
        let changed = !fresh && st.timing_key != key;
        let reenabled = was_enabled == Some(false) && entry.enabled;
        if st.anchor.is_none() || changed {
            st.anchor = Some(now);
        }
        let mut considered = considered;
        if changed
            || reenabled
            || (fresh && st.cursor.is_none() && !matches!(entry.schedule, Schedule::At(_)))
        {
            st.cursor = Some(st.cursor.map_or(now, |c| c.max(now)));
            considered = Some(considered.map_or(now, |c| c.max(now)));
        }
        st.timing_key = key;
        let mut slot = Slot {
            entry,
            state: st,
            considered,
            next: None,
        };
        slot.next = next_run(&slot, slot.considered);
        if let Some(n) = slot.next {
            self.queue.insert((n.due, id));
        }
        let hash = self.hasher.hash_one(slot.entry.name.as_str());
        self.slots[id as usize] = Some(slot);
        if new {
            let (slots, hasher) = (&self.slots, &self.hasher);
            self.by_name
                .insert_unique(hash, id, |&id| hasher.hash_one(slot_name(slots, id)));
        }
    }

    /// Removes an entry; returns its state.
    pub fn remove(&mut self, name: &str) -> Option<EntryState> {
        let slots = &self.slots;
        let found = self
            .by_name
            .find_entry(self.hasher.hash_one(name), |&id| {
                slot_name(slots, id) == name
            })
            .ok()?;
        let (id, _) = found.remove();
        let slot = self.slots[id as usize].take()?;
        if let Some(n) = slot.next {
            self.queue.remove(&(n.due, id));
        }
        self.free.push(id);
        Some(slot.state)
    }

    /// Every entry's name with its durable state: what a state store saves.
    pub fn states(&self) -> impl Iterator<Item = (&str, &EntryState)> {
        self.slots
            .iter()
            .flatten()
            .map(|s| (s.entry.name.as_str(), &s.state))
    }

    /// An entry, its durable state and its next run.
    pub fn get(&self, name: &str) -> Option<(&Arc<Entry>, &EntryState, Option<Run>)> {
        let slot = self.slots[self.id(name)? as usize].as_ref()?;
        Some((&slot.entry, &slot.state, slot.next))
    }

    /// Every entry with its state and next run.
    pub fn iter(&self) -> impl Iterator<Item = (&Arc<Entry>, &EntryState, Option<Run>)> {
        self.slots
            .iter()
            .flatten()
            .map(|s| (&s.entry, &s.state, s.next))
    }

    /// Appends an outcome that is not a scheduled run's (a run-now) to an
    /// entry's history; false if there is no such entry.
    pub fn push_history(&mut self, name: &str, item: HistoryItem) -> bool {
        let Some(id) = self.id(name) else {
            return false;
        };
        match self.slots[id as usize].as_mut() {
            Some(slot) => {
                slot.state.push_history(item);
                true
            }
            None => false,
        }
    }

    /// Starts (or restarts) dispatching at `now`. Every entry's next run is
    /// recomputed from its durable state, so runs that were handed out but
    /// never recorded as sent come back, as missed runs.
    ///
    /// A slot's next run is always the first after `considered` (upsert and
    /// poll keep it so), so only slots where `considered` ran ahead of the
    /// durable cursor need a new one; at start-up that is none of them.
    pub fn resume(&mut self, now: Timestamp) {
        self.active_since = Some(now);
        for (id, slot) in self.slots.iter_mut().enumerate() {
            let Some(slot) = slot else { continue };
            if slot.considered == slot.state.cursor {
                continue;
            }
            if let Some(n) = slot.next {
                self.queue.remove(&(n.due, id as u32));
            }
            slot.considered = slot.state.cursor;
            slot.next = next_run(slot, slot.considered);
            if let Some(n) = slot.next {
                self.queue.insert((n.due, id as u32));
            }
        }
    }

    /// Stops dispatching (leadership lost, broker down, shutting down).
    pub fn pause(&mut self) {
        self.active_since = None;
    }

    /// When the next run falls due, if any.
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.queue.first().map(|(t, _)| *t)
    }

    /// The decisions due at `now`, in due order. Empty while paused.
    pub fn poll(&mut self, now: Timestamp) -> Vec<Decision> {
        let mut out = Vec::new();
        let Some(since) = self.active_since else {
            return out;
        };
        while let Some(&(due, id)) = self.queue.first() {
            if due > now {
                break;
            }
            self.queue.pop_first();
            let slot = self.slots[id as usize]
                .as_mut()
                .expect("queued slot exists");
            let Some(run) = slot.next.take() else {
                continue;
            };
            if run.due < since {
                decide_missed(slot, run, since, now, &mut out);
            } else {
                if !slot.entry.enabled {
                    out.push(skip(
                        slot,
                        SkipReason::Disabled,
                        1,
                        run.scheduled,
                        run.scheduled,
                    ));
                } else if within_grace(&slot.entry, run, now) {
                    out.push(dispatch_unless_expired(&slot.entry, run, false, now));
                } else {
                    out.push(skip(
                        slot,
                        SkipReason::Grace,
                        1,
                        run.scheduled,
                        run.scheduled,
                    ));
                }
                slot.considered = Some(run.scheduled);
            }
            slot.next = next_run(slot, slot.considered);
            if let Some(n) = slot.next {
                self.queue.insert((n.due, id));
            }
        }
        out
    }

    /// Records what came of a decision in the entry's durable state. Returns
    /// the new state, for the caller to persist.
    pub fn record(
        &mut self,
        decision: &Decision,
        outcome: Option<&Outcome>,
    ) -> Option<&EntryState> {
        let id = self.id(&decision.entry().name)?;
        let slot = self.slots[id as usize].as_mut()?;
        apply_outcome(&mut slot.state, decision, outcome);
        Some(&slot.state)
    }
}

/// The name of the entry in a live slot (the name index holds only those).
fn slot_name(slots: &[Option<Slot>], id: u32) -> &str {
    &slots[id as usize]
        .as_ref()
        .expect("indexed slot exists")
        .entry
        .name
}

fn within_grace(entry: &Entry, run: Run, now: Timestamp) -> bool {
    entry
        .timing
        .grace
        .is_none_or(|g| now.duration_since(run.due) <= g)
}

fn skip(
    slot: &Slot,
    reason: SkipReason,
    count: u64,
    first: Timestamp,
    last: Timestamp,
) -> Decision {
    Decision::Skip {
        entry: slot.entry.clone(),
        reason,
        count,
        first,
        last,
    }
}

/// When a run of `entry` scheduled at `scheduled` expires, if it does.
pub fn expires_at(entry: &Entry, scheduled: Timestamp) -> Option<Timestamp> {
    entry.options.expires.map(|e| match e {
        Expires::After(d) => scheduled.checked_add(d).unwrap_or(Timestamp::MAX),
        Expires::At(t) => t,
    })
}

/// Dispatches `run`, or skips it as expired if its expiry is not after `now`.
fn dispatch_unless_expired(entry: &Arc<Entry>, run: Run, missed: bool, now: Timestamp) -> Decision {
    match expires_at(entry, run.scheduled) {
        Some(x) if x <= now => Decision::Skip {
            entry: entry.clone(),
            reason: SkipReason::Expired,
            count: 1,
            first: run.scheduled,
            last: run.scheduled,
        },
        _ => Decision::Dispatch {
            entry: entry.clone(),
            run,
            missed,
        },
    }
}

/// The first run strictly after `after` (or the first run at all). A
/// disabled entry has runs too: they are skipped as `disabled` when due.
fn next_run(slot: &Slot, after: Option<Timestamp>) -> Option<Run> {
    let e = &slot.entry;
    let anchor = slot.state.anchor.unwrap_or(Timestamp::UNIX_EPOCH);
    let after = after.unwrap_or(Timestamp::MIN);
    let scheduled = e.next_after(anchor, after)?;
    let due = scheduled.checked_add(e.jitter_offset()).ok()?;
    Some(Run { scheduled, due })
}

/// Handles the runs of one entry that fell due before `since`, starting
/// with `first`. Leaves `slot.considered` at the last missed run.
fn decide_missed(
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
    // Walk the missed runs, keeping the few we may dispatch.
    let mut count: u64 = 0;
    let mut last = first;
    let mut kept: BinaryHeap<std::cmp::Reverse<Run>> = BinaryHeap::new();
    let mut cur = Some(first);
    if let Some((n, l)) = interval_missed(slot, policy, first, since) {
        (count, last, cur) = (n, l, None);
    }
    while let Some(run) = cur {
        if run.due >= since || count >= CATCH_UP_WALK_LIMIT {
            break;
        }
        count += 1;
        last = run;
        if policy == Misfire::All {
            // Keep the newest MISFIRE_ALL_LIMIT + 1 to tell "too many" apart.
            kept.push(std::cmp::Reverse(run));
            if kept.len() > MISFIRE_ALL_LIMIT + 1 {
                kept.pop();
            }
        }
        cur = next_run(slot, Some(run.scheduled));
    }
    slot.considered = Some(last.scheduled);
    let entry = slot.entry.clone();
    let dispatch = |run: Run| dispatch_unless_expired(&entry, run, true, now);
    match policy {
        Misfire::Skip => out.push(skip(
            slot,
            missed_reason,
            count,
            first.scheduled,
            last.scheduled,
        )),
        Misfire::Once => {
            if count > 1 {
                let before_last = count - 1;
                let prev_last = previous_missed(slot, first, last);
                out.push(skip(
                    slot,
                    SkipReason::Misfire,
                    before_last,
                    first.scheduled,
                    prev_last,
                ));
            }
            if within_grace(&slot.entry, last, now) {
                out.push(dispatch(last));
            } else {
                out.push(skip(
                    slot,
                    SkipReason::Grace,
                    1,
                    last.scheduled,
                    last.scheduled,
                ));
            }
        }
        Misfire::All => {
            let mut runs: Vec<Run> = kept.into_iter().map(|r| r.0).collect();
            runs.sort();
            if count as usize > MISFIRE_ALL_LIMIT {
                // Too many: fire the latest only, and say so.
                let prev_last = previous_missed(slot, first, last);
                out.push(skip(
                    slot,
                    SkipReason::Misfire,
                    count - 1,
                    first.scheduled,
                    prev_last,
                ));
                runs = vec![last];
            }
            let (late, ok): (Vec<Run>, Vec<Run>) = runs
                .into_iter()
                .partition(|r| !within_grace(&slot.entry, *r, now));
            if let (Some(a), Some(b)) = (late.first(), late.last()) {
                out.push(skip(
                    slot,
                    SkipReason::Grace,
                    late.len() as u64,
                    a.scheduled,
                    b.scheduled,
                ));
            }
            out.extend(ok.into_iter().map(dispatch));
        }
    }
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

/// What [`Scheduler::record`] does to an entry's state, as a pure function:
/// lets a caller compute the state a run *will* leave behind, to store it
/// together with the publish (the fenced Redis dispatch).
pub fn apply_outcome(st: &mut EntryState, decision: &Decision, outcome: Option<&Outcome>) {
    let advance = |c: &mut Option<Timestamp>, t: Timestamp| *c = Some(c.map_or(t, |c| c.max(t)));
    let sent = |outcome, run: &Run, at: Timestamp| HistoryItem {
        scheduled: Some(run.scheduled),
        at: Some(at),
        lateness_ms: Some(run.due.duration_until(at).as_millis() as i64),
        ..HistoryItem::new(outcome)
    };
    match (decision, outcome) {
        (Decision::Dispatch { run, .. }, Some(Outcome::Sent { at })) => {
            advance(&mut st.cursor, run.scheduled);
            st.last_run = Some(st.last_run.map_or(run.scheduled, |l| l.max(run.scheduled)));
            st.last_sent_at = Some(*at);
            st.total_runs += 1;
            st.last_error = None;
            st.push_history(sent(HistoryOutcome::Sent, run, *at));
        }
        (Decision::Dispatch { run, .. }, Some(Outcome::Unknown { at, error })) => {
            advance(&mut st.cursor, run.scheduled);
            st.last_run = Some(st.last_run.map_or(run.scheduled, |l| l.max(run.scheduled)));
            st.last_sent_at = Some(*at);
            st.total_runs += 1;
            st.last_error = Some(error.clone());
            st.push_history(HistoryItem {
                error: Some(error.clone()),
                ..sent(HistoryOutcome::Unknown, run, *at)
            });
        }
        (Decision::Dispatch { run, .. }, Some(Outcome::Failed { error })) => {
            st.last_error = Some(error.clone());
            st.push_history(HistoryItem {
                scheduled: Some(run.scheduled),
                error: Some(error.clone()),
                ..HistoryItem::new(HistoryOutcome::Failed)
            });
        }
        (Decision::Dispatch { .. }, None) => {}
        (
            Decision::Skip {
                reason,
                count,
                first,
                last,
                ..
            },
            _,
        ) => {
            advance(&mut st.cursor, *last);
            st.push_history(HistoryItem {
                scheduled: Some(*first),
                last: (last != first).then_some(*last),
                count: *count,
                reason: Some(reason.as_str().to_string()),
                ..HistoryItem::new(HistoryOutcome::Skipped)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a full rebuild at `resume` would give: each slot's first run
    /// after its durable cursor, and the queue of exactly those.
    fn rebuilt(s: &Scheduler) -> (Vec<Option<Run>>, BTreeSet<(Timestamp, u32)>) {
        let mut queue = BTreeSet::new();
        let next = s
            .slots
            .iter()
            .enumerate()
            .map(|(id, slot)| {
                let slot = slot.as_ref()?;
                let n = next_run(slot, slot.state.cursor);
                if let Some(n) = n {
                    queue.insert((n.due, id as u32));
                }
                n
            })
            .collect();
        (next, queue)
    }

    fn state(s: &Scheduler) -> (Vec<Option<Run>>, BTreeSet<(Timestamp, u32)>) {
        let next = s
            .slots
            .iter()
            .map(|x| x.as_ref().and_then(|x| x.next))
            .collect();
        (next, s.queue.clone())
    }

    #[test]
    fn resume_leaves_the_queue_as_a_full_rebuild_would() {
        let text = "schedules:\n  a: {task: t, every: 10s}\n  b: {task: t, cron: '*/7 * * * * *', jitter: 3s}\n  c: {task: t, every: 1m, misfire: all}\n  d: {task: t, at: '2026-01-01T00:00:30Z'}\n  e: {task: t, every: 5s, enabled: false}\n";
        let entries = crate::source::yaml::load_str("r.yaml", text, &None).unwrap();
        let t = |s: u64| {
            "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap()
                + SignedDuration::from_secs(s as i64)
        };
        let mut s = Scheduler::new();
        for e in entries.iter().cloned() {
            s.upsert(e, None, t(0));
        }
        s.resume(t(0));
        assert_eq!(state(&s), rebuilt(&s), "at start-up");
        let mut unrecorded = 0;
        for step in 1..200u64 {
            let now = t(step);
            for (i, d) in s.poll(now).iter().enumerate() {
                // Every third dispatch fails to publish and is not recorded
                // as sent: a later resume must bring it back.
                let outcome = match d {
                    Decision::Dispatch { .. } if (step + i as u64).is_multiple_of(3) => {
                        unrecorded += 1;
                        None
                    }
                    _ => Some(Outcome::Sent { at: now }),
                };
                s.record(d, outcome.as_ref());
            }
            if step.is_multiple_of(17) {
                s.pause();
                s.resume(t(step + 30));
                assert_eq!(state(&s), rebuilt(&s), "after pause at {step}");
            }
            if step == 50 {
                s.remove("c");
                let mut e = entries[0].clone();
                e.schedule = Schedule::Every(crate::schedule::Interval {
                    every: SignedDuration::from_secs(4),
                });
                s.upsert(e, None, now);
            }
        }
        assert!(unrecorded > 0, "some runs were handed out and not recorded");
        assert_eq!(s.len(), 4);
        assert!(s.get("c").is_none() && s.get("a").is_some());
    }
}
