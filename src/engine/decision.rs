//! What the scheduler tells the loop to do: a [`Run`] of an entry, and the
//! [`Decision`] to publish it or to skip runs (with a [`SkipReason`]).
//!
//! Owns these value types only; no policy lives here.
//!
//! Invariant: a run is identified by its entry and `scheduled` time;
//! `due` is `scheduled` plus the entry's jitter.

use std::sync::Arc;

use jiff::Timestamp;

use crate::entry::Entry;

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

    /// Skips `count` runs of `entry`, scheduled from `first` to `last`.
    pub(super) fn skip(
        entry: &Arc<Entry>,
        reason: SkipReason,
        count: u64,
        first: Timestamp,
        last: Timestamp,
    ) -> Decision {
        Decision::Skip {
            entry: entry.clone(),
            reason,
            count,
            first,
            last,
        }
    }

    /// Skips the single run `run` of `entry`.
    pub(super) fn skip_one(entry: &Arc<Entry>, reason: SkipReason, run: Run) -> Decision {
        Decision::skip(entry, reason, 1, run.scheduled, run.scheduled)
    }
}
