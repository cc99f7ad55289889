//! Saving run state from the loop: what changed since the last save, and
//! what a failed save means.
//!
//! **Invariant:** `Dirty` is cleared only by a save that was attempted;
//! a fatal store error stops the service, any other pauses dispatch.

use std::collections::HashSet;

use tracing::warn;

use super::ServiceError;
use crate::engine::Scheduler;
use crate::ports::store::{StateError, StateStore};

/// Entries whose run state changed since the last save, and names removed.
#[derive(Default)]
pub(super) struct Dirty {
    pub changed: HashSet<String>,
    pub removed: Vec<String>,
}

impl Dirty {
    pub fn clear(&mut self) {
        self.changed.clear();
        self.removed.clear();
    }
}

/// Saves what `dirty` lists and clears it. `fence` is the current term's
/// lease value. A store that asks for it (a state file whose journal
/// outgrew its snapshot) then gets every entry's state.
pub(super) async fn save(
    store: &dyn StateStore,
    sched: &Scheduler,
    dirty: &mut Dirty,
    fence: Option<&str>,
) -> Result<(), StateError> {
    let changed = dirty
        .changed
        .iter()
        .filter_map(|n| sched.get(n).map(|(e, s, _)| (e.name.as_str(), s)))
        .collect();
    let r = store.save(changed, &dirty.removed, fence).await;
    dirty.clear();
    r?;
    if store.wants_save_all() {
        store.save_all(sched.states().collect(), &[], fence).await?;
    }
    Ok(())
}

/// The first save of a standalone start: every entry's state as the
/// upsert left it (anchors of new entries, re-anchored schedules), so a
/// crash soon after neither forgets nor re-anchors them.
pub(super) async fn save_all(
    store: &dyn StateStore,
    sched: &Scheduler,
    dirty: &mut Dirty,
) -> Result<(), StateError> {
    let r = store
        .save_all(sched.states().collect(), &dirty.removed, None)
        .await;
    dirty.clear();
    r
}

/// A save's result for the loop: `Err` for a fatal store error, else
/// whether it was saved (if not, dispatch pauses; the state is written
/// again at the next save or takeover).
pub(super) fn saved(r: Result<(), StateError>) -> Result<bool, ServiceError> {
    match r {
        Ok(()) => Ok(true),
        Err(StateError::Fatal(e)) => Err(ServiceError::State(e)),
        Err(StateError::Unavailable(e)) => {
            warn!(error = %e, "run state not saved; pausing dispatch");
            Ok(false)
        }
    }
}
