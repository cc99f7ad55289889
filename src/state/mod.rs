//! Durable run state per entry, and the stores that keep it.
//!
//! The state says which runs are decided (sent or deliberately skipped), so
//! a restart or a new leader neither repeats nor loses a run.

pub mod file;
pub mod redis;
pub mod sql;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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
    /// True if [`StateStore::save`] needs every entry (the file is rewritten
    /// whole); false if only the changed ones.
    pub fn whole(&self) -> bool {
        matches!(self, StateStore::File(_))
    }

    /// Saves `entries` (every entry if [`StateStore::whole`], else the
    /// changed ones) and forgets `removed`. The SQL store queues the write
    /// and never fails here; it retries on its own while the database is
    /// down. The Redis store writes only under `fence` (the lease value of
    /// the current term) and writes nothing without one (standby).
    pub async fn save<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a EntryState)>,
        removed: &[String],
        fence: Option<&str>,
    ) -> Result<(), StateError> {
        match self {
            StateStore::File(f) => Ok(f.save(entries)?),
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
