//! The run loop: the only place that reads the clock and sleeps.
//!
//! Each turn re-reads the wall clock, asks [`engine::Scheduler`] what is due,
//! publishes it, records the outcomes and saves the run state, then sleeps
//! until the next run, at most [`SLEEP_CAP`] so clock steps are noticed.
//!
//! Other parts of the process (the HTTP API, file reloads, database change
//! listeners) talk to the loop through a [`Handle`]: they send [`Command`]s,
//! which the loop applies between turns, so the scheduler is only ever
//! touched by one task and needs no locks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::{mpsc, watch};
use tracing::{error, info, warn};

use crate::broker::redis::Fence;
use crate::broker::{Broker, PublishError};
use crate::celery::message::{self, Message, Publisher};
use crate::engine::{self, Decision, Outcome, Scheduler};
use crate::entry::Entry;
use crate::lease::{Role, Term};
use crate::state::file::StateFileError;
use crate::state::redis::RedisState;
use crate::state::{EntryState, HistoryItem, HistoryOutcome, StateError, StateStore};

pub mod inbox;
pub use inbox::{Command, Handle, channel};

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

/// Leadership, for instances sharing a lease (`--lock`). The run state
/// store must then be [`StateStore::Redis`].
pub struct Ha {
    /// The role kept by [`crate::lease::run`].
    pub role: watch::Receiver<Role>,
    /// This instance's id (its lease token), sent as `metronome_instance`.
    pub instance: String,
    /// The broker is the lease's Redis (same server and db): the lease
    /// check, the publish and the state write are one script.
    pub atomic: bool,
}

/// Header names carrying the dispatcher's identity.
pub const FENCE_HEADER: &str = "metronome_fence";
pub const INSTANCE_HEADER: &str = "metronome_instance";

/// Entries whose run state changed since the last save, and names removed.
#[derive(Default)]
struct Dirty {
    changed: HashSet<String>,
    removed: Vec<String>,
}

/// Saves what `dirty` lists and clears it. `fence` is the current term's
/// lease value (Redis store). A state file whose journal has outgrown its
/// snapshot gets a new snapshot, written in the background.
async fn save(
    store: &StateStore,
    sched: &Scheduler,
    dirty: &mut Dirty,
    fence: Option<&str>,
) -> Result<(), StateError> {
    let r = store
        .save(
            dirty
                .changed
                .iter()
                .filter_map(|n| sched.get(n).map(|(e, s, _)| (e.name.as_str(), s))),
            &dirty.removed,
            fence,
        )
        .await;
    dirty.changed.clear();
    dirty.removed.clear();
    r?;
    if let StateStore::File(f) = store
        && f.wants_snapshot()
    {
        f.snapshot(sched.states(), false).await?;
    }
    Ok(())
}

/// The first save of a standalone start: every entry's state as the
/// upsert left it (anchors of new entries, re-anchored schedules), so a
/// crash soon after neither forgets nor re-anchors them. The file store
/// writes it as a new snapshot in the background; a later save waits for
/// it, as the writer keeps requests in order.
async fn save_all(
    store: &StateStore,
    sched: &Scheduler,
    dirty: &mut Dirty,
) -> Result<(), StateError> {
    let all = sched.states();
    if let StateStore::File(f) = store {
        dirty.changed.clear();
        return Ok(f.snapshot(all, false).await?);
    }
    store.save(all, &dirty.removed, None).await?;
    dirty.changed.clear();
    dirty.removed.clear();
    Ok(())
}

/// A save error: fatal for the local file, else `false` (dispatch pauses;
/// the state is rewritten at the next takeover).
fn saved(r: Result<(), StateError>) -> Result<bool, ServiceError> {
    match r {
        Ok(()) => Ok(true),
        Err(StateError::File(e)) => Err(e.into()),
        Err(StateError::Redis(e)) => {
            warn!(error = %e, "run state not saved; pausing dispatch");
            Ok(false)
        }
    }
}

/// The lease value of the term we dispatch under, if it is still valid now.
fn live_fence(ha: &Option<Ha>, term: &Option<Term>) -> Option<String> {
    let (h, t) = (ha.as_ref()?, term.as_ref()?);
    let role = h.role.borrow();
    match role.term_at(Instant::now()) {
        Some(r) if r.fence == t.fence => Some(t.value.clone()),
        _ => None,
    }
}

/// Follows the lease's role: a new term pauses dispatch (the state is
/// reloaded before resuming), standing by pauses it. True if it changed.
fn follow(
    h: &mut Ha,
    term: &mut Option<Term>,
    sched: &mut Scheduler,
    publisher: &mut Publisher,
) -> bool {
    let role = h.role.borrow_and_update().clone();
    match role {
        Role::Leader(t) if term.as_ref().map(|c| c.fence) != Some(t.fence) => {
            sched.pause();
            publisher
                .headers
                .insert(FENCE_HEADER.into(), serde_json::json!(t.fence));
            info!(fence = t.fence, instance = %h.instance, "leader: loading run state");
            *term = Some(t);
            true
        }
        Role::Standby if term.is_some() => {
            sched.pause();
            publisher.headers.remove(FENCE_HEADER);
            info!(instance = %h.instance, "standby: not dispatching");
            *term = None;
            true
        }
        _ => false,
    }
}

/// A new term: replaces every entry's state with what Redis holds (the
/// previous leader's last word), then writes the result back under our
/// fence (anchors of new entries, changed schedules).
async fn takeover(
    r: &RedisState,
    fence: &str,
    sched: &mut Scheduler,
    states: &mut BTreeMap<String, EntryState>,
    dirty: &mut Dirty,
    now: Timestamp,
) -> Result<usize, StateError> {
    let mut loaded = r.load().await?;
    let entries: Vec<Entry> = sched.iter().map(|(e, _, _)| (**e).clone()).collect();
    for e in entries {
        sched.remove(&e.name);
        let st = loaded.remove(&e.name);
        sched.upsert(e, st, now);
    }
    *states = loaded;
    r.save(fence, sched.states(), &dirty.removed).await?;
    dirty.changed.clear();
    dirty.removed.clear();
    Ok(sched.len())
}

/// Runs until `shutdown` turns true. State is saved after every batch and
/// on the way out. `states` is the saved state by name; an entry added
/// later (by a command) also starts from its saved state. With `ha`, the
/// loop dispatches only while this instance leads, and reloads the state
/// from Redis whenever it (re)starts dispatching.
pub async fn run(
    entries: Vec<Arc<Entry>>,
    store: StateStore,
    states: BTreeMap<String, EntryState>,
    mut broker: Broker,
    mut shutdown: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<Command>,
    mut ha: Option<Ha>,
) -> Result<(), ServiceError> {
    let mut publisher = Publisher::for_this_process();
    if let Some(h) = &ha {
        publisher
            .headers
            .insert(INSTANCE_HEADER.into(), serde_json::json!(h.instance));
    }
    let mut sched = Scheduler::new();
    sched.reserve(entries.len());
    let now = Timestamp::now();
    let mut states = states;
    for e in entries {
        let st = states.remove(&e.name);
        sched.upsert(e, st, now);
    }
    let mut dirty = Dirty::default();
    let mut term: Option<Term> = None;
    // Standalone, every entry's state is saved once at start; after the
    // loop's first wake, so that readiness does not wait for it (it is
    // O(entries)). Runs dispatched before it are saved by their own turn.
    let mut first_save = ha.is_none();
    info!(entries = sched.len(), state = %store.describe(), "scheduler started");
    let mut backoff = BACKOFF_MIN;
    let mut paused_until: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Some(h) = &mut ha
            && follow(h, &mut term, &mut sched, &mut publisher)
        {
            paused_until = None;
            backoff = BACKOFF_MIN;
        }
        let fence = live_fence(&ha, &term);
        let may_dispatch = ha.is_none() || fence.is_some();
        if !may_dispatch && sched.is_active() {
            sched.pause();
        }
        let now = Timestamp::now();
        if may_dispatch && !sched.is_active() && paused_until.is_none_or(|t| Instant::now() >= t) {
            paused_until = None;
            let ready = match (&store, &fence) {
                (StateStore::Redis(r), Some(f)) => {
                    match takeover(r, f, &mut sched, &mut states, &mut dirty, now).await {
                        Ok(n) => {
                            info!(entries = n, "run state loaded; dispatching");
                            true
                        }
                        Err(e) => {
                            warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "cannot load run state; not dispatching yet");
                            paused_until = Some(Instant::now() + backoff);
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                            false
                        }
                    }
                }
                _ => true,
            };
            if ready {
                sched.resume(now);
            }
        }
        let decisions = sched.poll(now);
        if !decisions.is_empty() {
            let fenced = match (&store, &fence, &ha) {
                (StateStore::Redis(r), Some(f), Some(h)) => Some((r, f.as_str(), h.atomic)),
                _ => None,
            };
            let atomic = fenced.is_some_and(|(_, _, a)| a);
            let mut ok = dispatch(&mut sched, &mut broker, &publisher, &decisions, fenced).await;
            // The fenced script stored the sent runs' state already.
            dirty.changed.extend(
                decisions
                    .iter()
                    .filter(|d| !atomic || matches!(d, Decision::Skip { .. }))
                    .map(|d| d.entry().name.clone()),
            );
            ok &= saved(save(&store, &sched, &mut dirty, fence.as_deref()).await)?;
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
            None if !sched.is_active() => SLEEP_CAP.unsigned_abs(),
            None => {
                engine::sleep_for(sched.next_wake(), Timestamp::now(), SLEEP_CAP).unsigned_abs()
            }
        };
        let role = ha.as_mut().map(|h| &mut h.role);
        let wake = next_wake(wait, &mut shutdown, &mut commands, role).await;
        match wake {
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
                    let fence = live_fence(&ha, &term);
                    if !saved(save(&store, &sched, &mut dirty, fence.as_deref()).await)? {
                        sched.pause();
                        paused_until = Some(Instant::now() + backoff);
                    }
                }
            }
        }
        // After the wake is handled: a readiness probe that woke us is
        // answered first.
        if std::mem::take(&mut first_save) {
            saved(save_all(&store, &sched, &mut dirty).await)?;
        }
    }
    sched.pause();
    if let StateStore::File(f) = &store {
        // A clean stop leaves the whole state in the snapshot, the journal
        // empty (and waits for anything still queued).
        let all = sched.states();
        saved(f.snapshot(all, true).await.map_err(StateError::from))?;
    } else {
        if first_save {
            saved(save_all(&store, &sched, &mut dirty).await)?;
        }
        let fence = live_fence(&ha, &term);
        saved(save(&store, &sched, &mut dirty, fence.as_deref()).await)?;
    }
    store.close().await;
    info!("scheduler stopped; state saved");
    Ok(())
}

enum Wake {
    Timer,
    Shutdown,
    Command(Command),
}

/// Sleeps until the timer, a shutdown request, a command or a change of
/// role, whichever comes first.
async fn next_wake(
    d: Duration,
    shutdown: &mut watch::Receiver<bool>,
    commands: &mut mpsc::Receiver<Command>,
    role: Option<&mut watch::Receiver<Role>>,
) -> Wake {
    let role_changed = async move {
        let changed = match role {
            Some(r) => r.changed().await.is_ok(),
            None => false,
        };
        if !changed {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = tokio::time::sleep(d) => if *shutdown.borrow() { Wake::Shutdown } else { Wake::Timer },
        _ = shutdown.changed() => Wake::Shutdown,
        Some(cmd) = commands.recv() => Wake::Command(cmd),
        _ = role_changed => Wake::Timer,
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
/// Returns false if any publish failed. With `fenced` (run state store,
/// lease value, atomic), the lease is checked first: in the same script as
/// the publish when atomic, else just before publishing.
async fn dispatch(
    sched: &mut Scheduler,
    broker: &mut Broker,
    publisher: &Publisher,
    decisions: &[Decision],
    fenced: Option<(&RedisState, &str, bool)>,
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
    let (results, at) = match (fenced, &mut *broker) {
        (Some((r, value, true)), Broker::Redis(b)) => {
            // The state each run leaves behind, stored with its message.
            let mut after: HashMap<&str, EntryState> = HashMap::new();
            let states: Vec<(&str, String)> = sent_for
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
                .collect();
            let fence = Fence {
                lease_key: &r.keys().lock,
                value,
                state_key: &r.keys().state,
            };
            (b.publish_fenced(&batch, &states, fence).await, now)
        }
        (Some((r, value, _)), _) => {
            let results = match r.check(value).await {
                Ok(true) => broker.publish(&batch).await,
                Ok(false) => vec![Err(PublishError::Deposed); batch.len()],
                Err(e) => vec![Err(PublishError::Unavailable(e.to_string())); batch.len()],
            };
            (results, Timestamp::now())
        }
        (None, _) => (broker.publish(&batch).await, Timestamp::now()),
    };
    let mut all_ok = true;
    let mut deposed = 0u64;
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
            Err(e @ PublishError::Deposed) => {
                all_ok = false;
                deposed += 1;
                sched.record(
                    d,
                    Some(&Outcome::Failed {
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
    if deposed > 0 {
        warn!(
            runs = deposed,
            "not dispatched: the lease is no longer ours; standing by"
        );
    }
    all_ok
}
