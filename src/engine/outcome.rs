//! What came of a dispatch ([`Outcome`]) and what it does to an entry's
//! durable state ([`apply_outcome`]), the same whether the scheduler
//! records it or a caller computes it ahead (the fenced Redis publish).
//!
//! Owns the bookkeeping of cursor, last run, counts, last error and history.
//!
//! Invariant: the cursor only moves forward, and only past runs that were
//! sent, possibly sent (unknown) or skipped; a failed run stays owed.

use jiff::Timestamp;

use super::decision::{Decision, Run};
use crate::state::{EntryState, HistoryItem, HistoryOutcome};

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

/// What [`Scheduler::record`](super::Scheduler::record) does to an entry's state, as a pure function:
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
