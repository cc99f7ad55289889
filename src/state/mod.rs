//! Durable run state per entry, and the stores that keep it.
//!
//! The state says which runs are decided (sent or deliberately skipped), so
//! a restart or a new leader neither repeats nor loses a run.

pub mod file;
pub mod redis;
pub mod sql;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Default number of outcomes kept per entry in [`EntryState::history`].
pub const DEFAULT_HISTORY_LIMIT: usize = 20;

static HISTORY_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_HISTORY_LIMIT);

/// Sets how many outcomes each entry keeps (process-wide; `--history`).
/// 0 keeps none.
pub fn set_history_limit(n: usize) {
    HISTORY_LIMIT.store(n, Ordering::Relaxed);
}

/// How many outcomes each entry keeps.
pub fn history_limit() -> usize {
    HISTORY_LIMIT.load(Ordering::Relaxed)
}

/// What came of a run, in [`HistoryItem`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryOutcome {
    /// The broker has it.
    Sent,
    /// Published, but whether it arrived is unknown (counted as sent).
    Unknown,
    /// Not delivered; the run comes back as a missed run.
    Failed,
    /// Deliberately not sent: see `reason`.
    Skipped,
    /// Published on request (run-now), outside the schedule.
    Requested,
}

/// One outcome in an entry's run history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub outcome: HistoryOutcome,
    /// Scheduled time of the run (the first one for a skip of several);
    /// none for run-now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<Timestamp>,
    /// Scheduled time of the last run, for a skip of several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<Timestamp>,
    /// How many runs (more than 1 only for skips).
    #[serde(default = "one")]
    pub count: u64,
    /// When it was published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
    /// Publish time minus due time, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lateness_ms: Option<i64>,
    /// Why runs were skipped: `misfire`, `grace`, `expired`, `disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The publish error, for `failed` and `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The task id of a run-now (scheduled runs' ids follow from the entry
    /// name and scheduled time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
}

fn one() -> u64 {
    1
}

impl HistoryItem {
    /// An item with only the outcome set.
    pub fn new(outcome: HistoryOutcome) -> HistoryItem {
        HistoryItem {
            outcome,
            scheduled: None,
            last: None,
            count: 1,
            at: None,
            lateness_ms: None,
            reason: None,
            error: None,
            task_id: None,
        }
    }
}

/// What is remembered about one entry between runs and restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryState {
    /// Every run whose scheduled (nominal) time is at or before this instant
    /// has been decided. `None` for a one-off never considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Timestamp>,
    /// Scheduled time of the last run sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<Timestamp>,
    /// When that run was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sent_at: Option<Timestamp>,
    /// How many runs were sent.
    #[serde(default)]
    pub total_runs: u64,
    /// The last publish error, cleared by the next success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Interval anchor: when the entry was first seen (or re-anchored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<Timestamp>,
    /// The entry's [`timing_key`](crate::entry::Entry::timing_key) when the
    /// state was last written; a different key means the schedule changed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub timing_key: String,
    /// The latest outcomes, oldest first, at most [`history_limit`].
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    pub history: VecDeque<HistoryItem>,
}

impl EntryState {
    /// Appends an outcome, dropping the oldest beyond [`history_limit`].
    pub fn push_history(&mut self, item: HistoryItem) {
        let limit = history_limit();
        if limit == 0 {
            self.history.clear();
            return;
        }
        while self.history.len() >= limit {
            self.history.pop_front();
        }
        self.history.push_back(item);
    }
}

/// Where run state is kept: a local file (standalone, YAML only), the
/// schedule database, or Redis next to the lease (`--lock`).
pub enum StateStore {
    File(file::StateFile),
    Sql(sql::SqlState),
    Redis(redis::RedisState),
}

/// A failed save.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The local file cannot be written: fatal.
    #[error(transparent)]
    File(#[from] file::StateFileError),
    /// Redis refused (deposed) or is unreachable: dispatch pauses and the
    /// state is written again later.
    #[error(transparent)]
    Redis(#[from] redis::RedisStateError),
}

impl StateStore {
    /// Saves the state of `entries` (the ones that changed) and forgets
    /// `removed`. The file store appends them to its journal and returns
    /// once they are durable. The SQL store queues the write and never
    /// fails here; it retries on its own while the database is down. The
    /// Redis store writes only under `fence` (the lease value of the
    /// current term) and writes nothing without one (standby).
    pub async fn save<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
        removed: &[String],
        fence: Option<&str>,
    ) -> Result<(), StateError> {
        match self {
            StateStore::File(f) => Ok(f.append(entries, removed).await?),
            StateStore::Sql(s) => {
                s.save(entries, removed);
                Ok(())
            }
            StateStore::Redis(r) => match fence {
                Some(v) => Ok(r.save(v, entries, removed).await?),
                None => Ok(()),
            },
        }
    }

    /// Flushes pending writes before exit.
    pub async fn close(self) {
        if let StateStore::Sql(s) = self
            && !s.close(std::time::Duration::from_secs(5)).await
        {
            tracing::error!("run state could not be written to the database before exit");
        }
    }

    /// A label for logs.
    pub fn describe(&self) -> String {
        match self {
            StateStore::File(f) => f.path().display().to_string(),
            StateStore::Sql(_) => "database".to_string(),
            StateStore::Redis(r) => format!("redis hash {}", r.keys().state),
        }
    }
}
