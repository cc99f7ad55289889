//! The run-state store port: where each entry's [`EntryState`] is kept
//! between turns, restarts and leaders.
//!
//! **Invariant:** a save that returns `Ok` is durable (or, for the
//! database, queued to a writer that retries until it is); a fenced store
//! writes nothing without the current term's lease value.

use std::collections::BTreeMap;

use super::BoxFuture;
use crate::state::EntryState;

/// Entry states to save, by name.
pub type States<'a> = Vec<(&'a str, &'a EntryState)>;

/// Every entry's state as a store holds it.
pub type Loaded = BTreeMap<String, EntryState>;

/// A failed save or load.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The store cannot keep state at all (the local file cannot be
    /// written): the service stops rather than dispatch unrecorded runs.
    #[error(transparent)]
    Fatal(Box<dyn std::error::Error + Send + Sync>),
    /// Refused for now (deposed) or unreachable: dispatch pauses and the
    /// state is written again later.
    #[error(transparent)]
    Unavailable(Box<dyn std::error::Error + Send + Sync>),
}

/// Where run state is kept.
pub trait StateStore: Send + Sync {
    /// A label for logs.
    fn describe(&self) -> String;

    /// Saves `changed` and forgets `removed`. `fence` is the current term's
    /// lease value; a fenced store writes nothing without it.
    fn save<'a>(
        &'a self,
        changed: States<'a>,
        removed: &'a [String],
        fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>>;

    /// True when the store would rather be given every entry's state (a
    /// state file whose journal outgrew its snapshot).
    fn wants_save_all(&self) -> bool {
        false
    }

    /// Saves every entry's state (`all`) and forgets `removed`; by default
    /// one [`save`](StateStore::save). May return before it is durable,
    /// as long as later saves wait for it.
    fn save_all<'a>(
        &'a self,
        all: States<'a>,
        removed: &'a [String],
        fence: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), StateError>> {
        self.save(all, removed, fence)
    }

    /// What other instances may have written since this one started: the
    /// whole state, for a store shared between instances; `None` for a
    /// store only this process writes (read once, at start).
    fn reload(&self) -> BoxFuture<'_, Result<Option<Loaded>, StateError>> {
        Box::pin(async { Ok(None) })
    }

    /// The last word before exit: `all` is every entry's state. Waits for
    /// whatever is still queued.
    fn close<'a>(&'a self, all: States<'a>) -> BoxFuture<'a, Result<(), StateError>>;
}
