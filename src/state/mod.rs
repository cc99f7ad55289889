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

/// [`EntryState::timing_key`]: kept as a number, written as the sixteen
/// lowercase hex digits every release has stored. Any other stored text (an
/// old key format) is kept as it is and matches no entry, so the entry
/// starts afresh, as it would have before.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum TimingKey {
    /// Never written (a fresh entry).
    #[default]
    None,
    Hash(u64),
    /// Boxed twice so the key stays two words.
    #[allow(clippy::redundant_allocation)]
    Other(Box<Box<str>>),
}

impl TimingKey {
    pub fn is_none(&self) -> bool {
        matches!(self, TimingKey::None)
    }
}

impl std::fmt::Display for TimingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimingKey::None => Ok(()),
            TimingKey::Hash(h) => write!(f, "{h:016x}"),
            TimingKey::Other(s) => f.write_str(s),
        }
    }
}

impl From<&str> for TimingKey {
    fn from(s: &str) -> TimingKey {
        let hex = s.len() == 16 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        match s {
            "" => TimingKey::None,
            _ if hex => TimingKey::Hash(u64::from_str_radix(s, 16).expect("16 hex digits")),
            _ => TimingKey::Other(Box::new(s.into())),
        }
    }
}

impl From<String> for TimingKey {
    fn from(s: String) -> TimingKey {
        TimingKey::from(s.as_str())
    }
}

impl Serialize for TimingKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TimingKey::Hash(h) => {
                let mut buf = [0u8; 16];
                for (i, b) in buf.iter_mut().enumerate() {
                    *b = b"0123456789abcdef"[(h >> (60 - 4 * i)) as usize & 15];
                }
                s.serialize_str(std::str::from_utf8(&buf).expect("ASCII"))
            }
            TimingKey::None => s.serialize_str(""),
            TimingKey::Other(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for TimingKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TimingKey, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = TimingKey;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a timing key string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<TimingKey, E> {
                Ok(TimingKey::from(s))
            }
        }
        d.deserialize_str(V)
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
    #[serde(default, skip_serializing_if = "TimingKey::is_none")]
    pub timing_key: TimingKey,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_keys_are_written_as_before() {
        let st = EntryState {
            timing_key: TimingKey::Hash(0x00c1_d0a6_20c8_b102),
            ..Default::default()
        };
        let text = serde_json::to_string(&st).unwrap();
        assert_eq!(text, r#"{"total_runs":0,"timing_key":"00c1d0a620c8b102"}"#);
        assert_eq!(serde_json::from_str::<EntryState>(&text).unwrap(), st);
        assert_eq!(st.timing_key.to_string(), "00c1d0a620c8b102");
        let fresh = serde_json::to_string(&EntryState::default()).unwrap();
        assert_eq!(fresh, r#"{"total_runs":0}"#, "no key, nothing written");
    }

    #[test]
    fn other_stored_keys_are_kept_as_text() {
        for old in ["every:1s", "00C1D0A620C8B102", "abc"] {
            let k = TimingKey::from(old);
            assert!(matches!(k, TimingKey::Other(_)), "{old}");
            assert_eq!(k.to_string(), old);
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{old}\""));
        }
        assert_eq!(TimingKey::from(""), TimingKey::None);
        assert_eq!(
            TimingKey::from("ffffffffffffffff"),
            TimingKey::Hash(u64::MAX)
        );
    }
}
