//! The [`Scheduler`]: every entry with its run state, in one queue ordered
//! by due time, with the protocol `upsert`/`remove`, `resume`/`pause`,
//! `poll` and `record`.
//!
//! Owns the slots, the name index and the due queue; what is due is decided
//! in `due`, what was missed in `missed`, what a result does in `outcome`.
//!
//! Invariant: the queue holds exactly one `(due, slot)` for each slot whose
//! `next` is set, and a slot's `next` is the first run after `considered`.

use std::collections::BTreeSet;
use std::hash::BuildHasher;
use std::sync::Arc;

use jiff::Timestamp;

use super::decision::{Decision, Run};
use super::due::{Slot, decide_due, next_run};
use super::missed::decide_missed;
use super::outcome::{Outcome, apply_outcome};
use crate::NameHasher;
use crate::entry::Entry;
use crate::schedule::Schedule;
use crate::state::{EntryState, HistoryItem, TimingKey};

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
                out.push(decide_due(slot, run, now));
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

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

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
