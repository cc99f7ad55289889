//! The run loop: the only place that reads the clock and sleeps.
//!
//! Each turn re-reads the wall clock, asks [`core::Scheduler`] what is due,
//! publishes it, records the outcomes and saves the run state, then sleeps
//! until the next run, at most [`SLEEP_CAP`] so clock steps are noticed.
//!
//! Other parts of the process (the HTTP API, file reloads, database change
//! listeners) talk to the loop through a [`Handle`]: they send [`Command`]s,
//! which the loop applies between turns, so the scheduler is only ever
//! touched by one task and needs no locks.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::broker::{Broker, PublishError};
use crate::celery::message::{self, Message, Publisher};
use crate::core::{self, Decision, Outcome, Scheduler};
use crate::entry::Entry;
use crate::state::file::StateFileError;
use crate::state::{EntryState, HistoryItem, HistoryOutcome, StateStore};

/// The longest single sleep.
pub const SLEEP_CAP: SignedDuration = SignedDuration::from_secs(1);
/// Backoff bounds after a failed publish.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// A request to the running loop.
pub enum Command {
    /// Add or replace entries (a reload or an edit).
    Upsert(Vec<Entry>),
    /// Remove entries by name.
    Remove(Vec<String>),
    /// Publish one run of an entry now, with a fresh task id.
    RunNow {
        name: String,
        reply: oneshot::Sender<Result<Uuid, String>>,
    },
    /// Read the scheduler's current view.
    Inspect(Box<dyn FnOnce(&Scheduler) + Send>),
}

/// Sends [`Command`]s to a running loop. Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    tx: mpsc::Sender<Command>,
}

/// A handle and the receiving end to give to [`run`].
pub fn channel() -> (Handle, mpsc::Receiver<Command>) {
    let (tx, rx) = mpsc::channel(256);
    (Handle { tx }, rx)
}

impl Handle {
    /// Sends a command; false if the loop has stopped.
    pub async fn send(&self, cmd: Command) -> bool {
        self.tx.send(cmd).await.is_ok()
    }

    /// True once the loop has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Runs `f` on the scheduler inside the loop and returns its result;
    /// `None` if the loop has stopped.
    pub async fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Scheduler) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let f = Box::new(move |s: &Scheduler| {
            let _ = tx.send(f(s));
        });
        self.send(Command::Inspect(f)).await.then_some(())?;
        rx.await.ok()
    }

    /// Publishes one run of `name` now; returns its task id.
    pub async fn run_now(&self, name: &str) -> Result<Uuid, String> {
        let (reply, rx) = oneshot::channel();
        if !self
            .send(Command::RunNow {
                name: name.to_string(),
                reply,
            })
            .await
        {
            return Err("the scheduler has stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| Err("the scheduler has stopped".into()))
    }
}

/// Errors that stop the service.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    State(#[from] StateFileError),
}

/// Entries whose run state changed since the last save, and names removed.
#[derive(Default)]
struct Dirty {
    changed: HashSet<String>,
    removed: Vec<String>,
}

/// Runs until `shutdown` turns true. State is saved after every batch and
/// on the way out. `states` is the saved state by name; an entry added
/// later (by a command) also starts from its saved state.
pub async fn run(
    entries: Vec<Entry>,
    store: StateStore,
    states: BTreeMap<String, EntryState>,
    mut broker: Broker,
    mut shutdown: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<Command>,
) -> Result<(), ServiceError> {
    let publisher = Publisher::for_this_process();
    let mut sched = Scheduler::new();
    let now = Timestamp::now();
    let mut states = states;
    for e in entries {
        let st = states.remove(&e.name);
        sched.upsert(e, st, now);
    }
    let mut dirty = Dirty::default();
    let save = |sched: &Scheduler, dirty: &mut Dirty| {
        let r = if store.whole() {
            store.save(
                sched
                    .names()
                    .filter_map(|n| sched.get(n).map(|(e, s, _)| (e.name.as_str(), s))),
                &dirty.removed,
            )
        } else {
            store.save(
                dirty
                    .changed
                    .iter()
                    .filter_map(|n| sched.get(n).map(|(e, s, _)| (e.name.as_str(), s))),
                &dirty.removed,
            )
        };
        dirty.changed.clear();
        dirty.removed.clear();
        r
    };
    dirty.changed.extend(sched.names().map(str::to_string));
    save(&sched, &mut dirty)?;
    info!(entries = sched.len(), state = %store.describe(), "scheduler started");
    let mut backoff = BACKOFF_MIN;
    let mut paused_until: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = Timestamp::now();
        if !sched.is_active() && paused_until.is_none_or(|t| Instant::now() >= t) {
            sched.resume(now);
            paused_until = None;
        }
        let decisions = sched.poll(now);
        if !decisions.is_empty() {
            let ok = dispatch(&mut sched, &mut broker, &publisher, &decisions).await;
            dirty
                .changed
                .extend(decisions.iter().map(|d| d.entry().name.clone()));
            save(&sched, &mut dirty)?;
            if ok {
                backoff = BACKOFF_MIN;
            } else {
                sched.pause();
                warn!(
                    retry_in_ms = backoff.as_millis() as u64,
                    "publishing failed; pausing dispatch"
                );
                paused_until = Some(Instant::now() + backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        let wait = match paused_until {
            Some(t) => t.saturating_duration_since(Instant::now()),
            None => core::sleep_for(sched.next_wake(), Timestamp::now(), SLEEP_CAP).unsigned_abs(),
        };
        match next_wake(wait, &mut shutdown, &mut commands).await {
            Wake::Timer => {}
            Wake::Shutdown => break,
            Wake::Command(cmd) => {
                if apply(
                    cmd,
                    &mut sched,
                    &mut broker,
                    &publisher,
                    &mut states,
                    &mut dirty,
                )
                .await
                {
                    save(&sched, &mut dirty)?;
                }
            }
        }
    }
    sched.pause();
    save(&sched, &mut dirty)?;
    store.close().await;
    info!("scheduler stopped; state saved");
    Ok(())
}

enum Wake {
    Timer,
    Shutdown,
    Command(Command),
}

/// Sleeps until the timer, a shutdown request or a command, whichever
/// comes first.
async fn next_wake(
    d: Duration,
    shutdown: &mut watch::Receiver<bool>,
    commands: &mut mpsc::Receiver<Command>,
) -> Wake {
    tokio::select! {
        _ = tokio::time::sleep(d) => if *shutdown.borrow() { Wake::Shutdown } else { Wake::Timer },
        _ = shutdown.changed() => Wake::Shutdown,
        Some(cmd) = commands.recv() => Wake::Command(cmd),
    }
}

/// Applies a command; true if the run state changed and should be saved.
async fn apply(
    cmd: Command,
    sched: &mut Scheduler,
    broker: &mut Broker,
    publisher: &Publisher,
    states: &mut BTreeMap<String, EntryState>,
    dirty: &mut Dirty,
) -> bool {
    match cmd {
        Command::Upsert(entries) => {
            let now = Timestamp::now();
            let n = entries.len();
            for e in entries {
                let st = states.remove(&e.name);
                dirty.changed.insert(e.name.clone());
                sched.upsert(e, st, now);
            }
            info!(entries = n, "schedule entries added or replaced");
            true
        }
        Command::Remove(names) => {
            for n in &names {
                if sched.remove(n).is_some() {
                    dirty.changed.remove(n);
                    dirty.removed.push(n.clone());
                }
            }
            info!(entries = names.len(), "schedule entries removed");
            true
        }
        Command::RunNow { name, reply } => {
            let Some((entry, _, _)) = sched.get(&name) else {
                let _ = reply.send(Err(format!("no schedule named `{name}`")));
                return false;
            };
            let m = message::build(entry, None, Timestamp::now(), publisher);
            let result = match broker.publish(std::slice::from_ref(&m)).await.pop() {
                Some(Ok(())) => {
                    info!(entry = %name, task = %entry.task, task_id = %m.task_id, "dispatched on request");
                    crate::metrics::requested();
                    Ok(m.task_id)
                }
                Some(Err(e)) => Err(e.to_string()),
                None => Err("the broker returned no result".into()),
            };
            let recorded = match &result {
                Ok(id) => sched.push_history(
                    &name,
                    HistoryItem {
                        at: Some(Timestamp::now()),
                        task_id: Some(id.to_string()),
                        ..HistoryItem::new(HistoryOutcome::Requested)
                    },
                ),
                Err(_) => false,
            };
            if recorded {
                dirty.changed.insert(name);
            }
            let _ = reply.send(result);
            recorded
        }
        Command::Inspect(f) => {
            f(sched);
            false
        }
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
                crate::metrics::skipped(&entry.name, reason.as_str(), *count);
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
                crate::metrics::dispatched(&entry.name, late);
                sched.record(d, Some(&Outcome::Sent { at }));
            }
            Err(e @ PublishError::Unknown(_)) => {
                all_ok = false;
                warn!(entry = %entry.name, scheduled = %run.scheduled, task_id = %m.task_id, error = %e,
                    "publish outcome unknown; counted as sent and not retried");
                crate::metrics::publish_error(&entry.name, "unknown");
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
                crate::metrics::publish_error(&entry.name, "unavailable");
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
