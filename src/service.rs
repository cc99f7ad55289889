//! The run loop: the only place that reads the clock and sleeps.
//!
//! Each turn re-reads the wall clock, asks [`core::Scheduler`] what is due,
//! publishes it, records the outcomes and saves the run state, then sleeps
//! until the next run, at most [`SLEEP_CAP`] so clock steps are noticed.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::broker::{Broker, PublishError};
use crate::celery::message::{self, Message, Publisher};
use crate::core::{self, Decision, Outcome, Scheduler};
use crate::entry::Entry;
use crate::state::file::{StateFile, StateFileError};

/// The longest single sleep.
pub const SLEEP_CAP: SignedDuration = SignedDuration::from_secs(1);
/// Backoff bounds after a failed publish.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    State(#[from] StateFileError),
}

/// Runs until `shutdown` turns true. State is saved after every batch and
/// on the way out.
pub async fn run(
    entries: Vec<Entry>,
    state_file: StateFile,
    states: std::collections::BTreeMap<String, crate::state::EntryState>,
    mut broker: Broker,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), ServiceError> {
    let publisher = Publisher::for_this_process();
    let mut sched = Scheduler::new();
    let now = Timestamp::now();
    let mut states = states;
    for e in entries {
        let st = states.remove(&e.name);
        sched.upsert(e, st, now);
    }
    let save = |sched: &Scheduler| {
        state_file.save(
            sched
                .names()
                .filter_map(|n| sched.get(n).map(|(e, s, _)| (e.name.as_str(), s))),
        )
    };
    save(&sched)?;
    info!(entries = sched.len(), state_file = %state_file.path().display(), "scheduler started");
    let mut backoff = BACKOFF_MIN;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = Timestamp::now();
        if !sched.is_active() {
            sched.resume(now);
        }
        let decisions = sched.poll(now);
        if !decisions.is_empty() {
            let ok = dispatch(&mut sched, &mut broker, &publisher, &decisions).await;
            save(&sched)?;
            if ok {
                backoff = BACKOFF_MIN;
            } else {
                sched.pause();
                warn!(
                    retry_in_ms = backoff.as_millis() as u64,
                    "publishing failed; pausing dispatch"
                );
                if sleep_or_shutdown(backoff, &mut shutdown).await {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        }
        let wait = core::sleep_for(sched.next_wake(), Timestamp::now(), SLEEP_CAP);
        if sleep_or_shutdown(wait.unsigned_abs(), &mut shutdown).await {
            break;
        }
    }
    sched.pause();
    save(&sched)?;
    info!("scheduler stopped; state saved");
    Ok(())
}

/// Sleeps; true if shutdown was requested meanwhile.
async fn sleep_or_shutdown(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        _ = shutdown.changed() => true,
    }
}

/// Publishes the dispatch decisions as one batch and records every outcome.
/// Returns false if any publish failed.
async fn dispatch(
    sched: &mut Scheduler,
    broker: &mut Broker,
    publisher: &Publisher,
    decisions: &[Decision],
) -> bool {
    let now = Timestamp::now();
    let mut batch: Vec<Message> = Vec::new();
    let mut sent_for: Vec<usize> = Vec::new();
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
                sched.record(d, None);
            }
        }
    }
    if batch.is_empty() {
        return true;
    }
    let results = broker.publish(&batch).await;
    let at = Timestamp::now();
    let mut all_ok = true;
    for ((i, m), r) in sent_for.iter().zip(&batch).zip(results) {
        let d = &decisions[*i];
        let Decision::Dispatch { entry, run, missed } = d else {
            continue;
        };
        match r {
            Ok(()) => {
                let late = message::lateness(run.due, at);
                info!(
                    entry = %entry.name, task = %entry.task, scheduled = %run.scheduled,
                    lateness_ms = late.as_millis() as i64, task_id = %m.task_id, missed = *missed,
                    queue = %m.route.queue, "dispatched"
                );
                sched.record(d, Some(&Outcome::Sent { at }));
            }
            Err(e @ PublishError::Unknown(_)) => {
                all_ok = false;
                warn!(entry = %entry.name, scheduled = %run.scheduled, task_id = %m.task_id, error = %e,
                    "publish outcome unknown; counted as sent and not retried");
                sched.record(
                    d,
                    Some(&Outcome::Unknown {
                        at,
                        error: e.to_string(),
                    }),
                );
            }
            Err(e @ PublishError::Unavailable(_)) => {
                all_ok = false;
                error!(entry = %entry.name, scheduled = %run.scheduled, error = %e, "publish failed");
                sched.record(
                    d,
                    Some(&Outcome::Failed {
                        error: e.to_string(),
                    }),
                );
            }
        }
    }
    all_ok
}
