//! Publishing one turn's decisions as a batch and recording every outcome.
//!
//! Under a lease the batch goes out fenced: through the broker's
//! [`AtomicPublish`](crate::ports::broker::AtomicPublish) when it offers it
//! (lease check, publish and state write in one step), else after a
//! [`Lease::check`] just before publishing.
//!
//! **Invariant:** every decision is recorded exactly once, and an
//! "unknown" publish is recorded as sent, so it is never repeated.

use std::collections::HashMap;

use jiff::Timestamp;
use tracing::{error, info, warn};

use crate::celery::message::{self, Message, Publisher};
use crate::engine::{self, Decision, Outcome, Scheduler};
use crate::ports::broker::{Broker, PublishError, Published};
use crate::ports::lease::Lease;
use crate::state::EntryState;

/// The lease a batch is published under.
pub(super) struct Fenced<'a> {
    /// The lease's value during our term.
    pub value: &'a str,
    pub lease: &'a dyn Lease,
}

/// What came of a batch.
pub(super) struct Sent {
    /// Every message reached the broker.
    pub all_ok: bool,
    /// The broker stored the sent runs' state with them.
    pub atomic: bool,
}

/// Publishes the dispatch decisions as one batch and records every
/// outcome. `now` is the turn's time, stamped on the messages and, for a
/// fenced publish, on the state stored with them; `acked` says when the
/// broker answered (the turn's `now` plus the monotonic time since), the
/// publish time recorded otherwise, as lateness is measured to the ack.
pub(super) async fn dispatch(
    sched: &mut Scheduler,
    broker: &mut dyn Broker,
    publisher: &Publisher,
    decisions: &[Decision],
    fenced: Option<Fenced<'_>>,
    now: Timestamp,
    acked: impl FnOnce() -> Timestamp,
) -> Sent {
    let (batch, sent_for) = build(sched, publisher, decisions, now);
    if batch.is_empty() {
        return Sent {
            all_ok: true,
            atomic: false,
        };
    }
    let atomic = fenced.is_some() && broker.atomic().is_some();
    let results = match fenced {
        Some(f) if atomic => {
            let states = states_after(sched, decisions, &sent_for, now);
            let a = broker.atomic().expect("the broker offers a fenced publish");
            a.publish_fenced(&batch, &states, f.value).await
        }
        Some(f) => match f.lease.check(f.value).await {
            Ok(true) => broker.publish(&batch).await,
            Ok(false) => vec![Err(PublishError::Deposed); batch.len()],
            Err(e) => {
                let e = PublishError::Unavailable(format!("lease check: {e}"));
                vec![Err(e); batch.len()]
            }
        },
        None => broker.publish(&batch).await,
    };
    let at = if atomic { now } else { acked() };
    let all_ok = record(sched, decisions, &sent_for, &batch, results, at);
    Sent { all_ok, atomic }
}

/// The messages of the decisions to dispatch, with the index of the
/// decision behind each; skips are recorded here.
fn build(
    sched: &mut Scheduler,
    publisher: &Publisher,
    decisions: &[Decision],
    now: Timestamp,
) -> (Vec<Message>, Vec<usize>) {
    let mut batch = Vec::new();
    let mut sent_for = Vec::new();
    for (i, d) in decisions.iter().enumerate() {
        match d {
            Decision::Dispatch { entry, run, .. } => {
                batch.push(message::build(entry, Some(run.scheduled), now, publisher));
                sent_for.push(i);
            }
            Decision::Skip {
                entry,
                reason,
                count,
                first,
                last,
            } => {
                warn!(entry = %entry.name, task = %entry.task, reason = reason.as_str(), count, first = %first, last = %last, "runs skipped");
                crate::metrics::skipped(&entry.name, reason.as_str(), *count);
                sched.record(d, None);
            }
        }
    }
    (batch, sent_for)
}

/// The state each sent run leaves behind (entry name, JSON), stored with
/// its message by a fenced publish.
fn states_after<'a>(
    sched: &Scheduler,
    decisions: &'a [Decision],
    sent_for: &[usize],
    now: Timestamp,
) -> Vec<(&'a str, String)> {
    let mut after: HashMap<&str, EntryState> = HashMap::new();
    sent_for
        .iter()
        .map(|i| {
            let d = &decisions[*i];
            let name = d.entry().name.as_str();
            let st = after.entry(name).or_insert_with(|| {
                sched
                    .get(name)
                    .map(|(_, s, _)| s.clone())
                    .unwrap_or_default()
            });
            engine::apply_outcome(st, d, Some(&Outcome::Sent { at: now }));
            (name, serde_json::to_string(st).expect("state serializes"))
        })
        .collect()
}

/// Records each message's result; false if any publish failed.
fn record(
    sched: &mut Scheduler,
    decisions: &[Decision],
    sent_for: &[usize],
    batch: &[Message],
    results: Published,
    at: Timestamp,
) -> bool {
    let mut all_ok = true;
    let mut deposed = 0u64;
    for ((i, m), r) in sent_for.iter().zip(batch).zip(results) {
        let d = &decisions[*i];
        let Decision::Dispatch { entry, run, missed } = d else {
            continue;
        };
        let outcome = match r {
            Ok(()) => {
                let late = message::lateness(run.due, at);
                info!(
                    entry = %entry.name, task = %entry.task, scheduled = %run.scheduled,
                    lateness_ms = late.as_millis() as i64, task_id = %m.task_id, missed = *missed,
                    queue = %m.route.queue, "dispatched"
                );
                crate::metrics::dispatched(&entry.name, late);
                Outcome::Sent { at }
            }
            Err(e) => {
                all_ok = false;
                match &e {
                    PublishError::Unknown(_) => {
                        warn!(entry = %entry.name, scheduled = %run.scheduled, task_id = %m.task_id, error = %e,
                            "publish outcome unknown; counted as sent and not retried");
                        crate::metrics::publish_error(&entry.name, "unknown");
                    }
                    PublishError::Deposed => deposed += 1,
                    PublishError::Unavailable(_) => {
                        error!(entry = %entry.name, scheduled = %run.scheduled, error = %e, "publish failed");
                        crate::metrics::publish_error(&entry.name, "unavailable");
                    }
                }
                failure(e, at)
            }
        };
        sched.record(d, Some(&outcome));
    }
    if deposed > 0 {
        warn!(
            runs = deposed,
            "not dispatched: the lease is no longer ours; standing by"
        );
    }
    all_ok
}

/// The outcome a failed publish is recorded as: an unknown one counts as
/// sent (never retried); the others come back as missed runs.
fn failure(e: PublishError, at: Timestamp) -> Outcome {
    match e {
        PublishError::Unknown(_) => Outcome::Unknown {
            at,
            error: e.to_string(),
        },
        PublishError::Deposed | PublishError::Unavailable(_) => Outcome::Failed {
            error: e.to_string(),
        },
    }
}
