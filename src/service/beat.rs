//! One scheduler at work: what the loop holds between turns, and a turn.
//!
//! [`Beat::tick`] reads the clock once; follows the lease's role (a new
//! term pauses dispatch until the shared state is reloaded); resumes when
//! allowed; dispatches whatever is due; saves; and says when to wake next.
//!
//! **Invariant:** the scheduler is touched only from here, by one task,
//! with the `now` of the current turn.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::dispatch::{self, Fenced};
use super::saving::{self, Dirty, saved};
use super::{FENCE_HEADER, Ha, INSTANCE_HEADER, Parts, SLEEP_CAP, ServiceError};
use crate::celery::message::Publisher;
use crate::engine::{self, Decision, Scheduler};
use crate::ports::broker::Broker;
use crate::ports::clock::Clock;
use crate::ports::lease::{Role, Term};
use crate::ports::store::{StateError, StateStore};
use crate::state::EntryState;

/// Backoff bounds after a failed publish or save.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The loop's state between turns.
pub struct Beat {
    pub(super) sched: Scheduler,
    pub(super) store: Box<dyn StateStore>,
    pub(super) broker: Box<dyn Broker>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) publisher: Publisher,
    /// Saved states of entries not (yet) in the scheduler.
    pub(super) states: BTreeMap<String, EntryState>,
    pub(super) dirty: Dirty,
    ha: Option<Ha>,
    term: Option<Term>,
    /// Standalone, every entry's state is saved once at start, after the
    /// loop's first wake, so that readiness does not wait for it (it is
    /// O(entries)). Runs dispatched before it are saved by their own turn.
    pending_first_save: bool,
    backoff: Duration,
    paused_until: Option<Instant>,
}

impl Beat {
    /// The scheduler with `parts`' entries and their saved state.
    pub fn start(parts: Parts) -> Beat {
        let Parts {
            entries,
            store,
            mut states,
            broker,
            ha,
            clock,
        } = parts;
        let mut publisher = Publisher::for_this_process();
        if let Some(h) = &ha {
            publisher
                .headers
                .insert(INSTANCE_HEADER.into(), serde_json::json!(h.lease.token()));
        }
        let mut sched = Scheduler::new();
        sched.reserve(entries.len());
        let now = clock.now();
        for e in entries {
            let st = states.remove(&e.name);
            sched.upsert(e, st, now);
        }
        info!(entries = sched.len(), state = %store.describe(), "scheduler started");
        Beat {
            sched,
            store,
            broker,
            clock,
            publisher,
            states,
            dirty: Dirty::default(),
            pending_first_save: ha.is_none(),
            ha,
            term: None,
            backoff: BACKOFF_MIN,
            paused_until: None,
        }
    }

    /// The role receiver, for the loop to wake on a change of role.
    pub fn role_mut(&mut self) -> Option<&mut watch::Receiver<Role>> {
        self.ha.as_mut().map(|h| &mut h.role)
    }

    /// One turn; returns when to wake for the next.
    pub async fn tick(&mut self) -> Result<Instant, ServiceError> {
        let (now, instant) = (self.clock.now(), self.clock.instant());
        if self.follow_role() {
            self.paused_until = None;
            self.backoff = BACKOFF_MIN;
        }
        let fence = self.live_fence(instant);
        let may_dispatch = self.ha.is_none() || fence.is_some();
        if !may_dispatch && self.sched.is_active() {
            self.sched.pause();
        }
        if may_dispatch && !self.sched.is_active() && self.paused_until.is_none_or(|t| instant >= t)
        {
            self.paused_until = None;
            if self.ready(fence.as_deref(), now).await {
                self.sched.resume(now);
            }
        }
        let decisions = self.sched.poll(now);
        if !decisions.is_empty() {
            self.dispatch(&decisions, fence.as_deref(), now, instant)
                .await?;
        }
        Ok(self.wake_at(now, instant))
    }

    /// When the next turn is due, on the monotonic clock.
    fn wake_at(&self, now: Timestamp, instant: Instant) -> Instant {
        match self.paused_until {
            Some(t) => t,
            None if !self.sched.is_active() => instant + SLEEP_CAP.unsigned_abs(),
            None => {
                instant + engine::sleep_for(self.sched.next_wake(), now, SLEEP_CAP).unsigned_abs()
            }
        }
    }

    /// Publishes `decisions`, records the outcomes and saves; pauses with
    /// backoff if anything failed.
    async fn dispatch(
        &mut self,
        decisions: &[Decision],
        fence: Option<&str>,
        now: Timestamp,
        instant: Instant,
    ) -> Result<(), ServiceError> {
        let clock = self.clock.clone();
        let acked = move || {
            let elapsed = clock.instant().saturating_duration_since(instant);
            now.saturating_add(SignedDuration::try_from(elapsed).unwrap_or(SignedDuration::MAX))
                .unwrap_or(now)
        };
        let fenced = match (fence, &self.ha) {
            (Some(value), Some(h)) => Some(Fenced {
                value,
                lease: h.lease.as_ref(),
            }),
            _ => None,
        };
        let sent = dispatch::dispatch(
            &mut self.sched,
            self.broker.as_mut(),
            &self.publisher,
            decisions,
            fenced,
            now,
            acked,
        )
        .await;
        // The fenced script stored the sent runs' state already.
        self.dirty.changed.extend(
            decisions
                .iter()
                .filter(|d| !sent.atomic || matches!(d, Decision::Skip { .. }))
                .map(|d| d.entry().name.clone()),
        );
        let saved_ok =
            saved(saving::save(self.store.as_ref(), &self.sched, &mut self.dirty, fence).await)?;
        if sent.all_ok && saved_ok {
            self.backoff = BACKOFF_MIN;
        } else {
            self.sched.pause();
            warn!(
                retry_in_ms = self.backoff.as_millis() as u64,
                "publishing failed; pausing dispatch"
            );
            self.pause_with_backoff();
        }
        Ok(())
    }

    /// Pauses for the current backoff, counted from now (a failed publish
    /// may have taken a while), and doubles it.
    fn pause_with_backoff(&mut self) {
        self.paused_until = Some(self.clock.instant() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// Before resuming under a new term: reloads the shared state. False
    /// (and a retry after backoff) if it cannot be read.
    async fn ready(&mut self, fence: Option<&str>, now: Timestamp) -> bool {
        let Some(f) = fence else {
            return true;
        };
        match self.takeover(f, now).await {
            Ok(n) => {
                info!(entries = n, "run state loaded; dispatching");
                true
            }
            Err(e) => {
                warn!(error = %e, retry_in_ms = self.backoff.as_millis() as u64, "cannot load run state; not dispatching yet");
                self.pause_with_backoff();
                false
            }
        }
    }

    /// A new term: replaces every entry's state with what the shared store
    /// holds (the previous leader's last word), then writes the result
    /// back under our fence (anchors of new entries, changed schedules).
    async fn takeover(&mut self, fence: &str, now: Timestamp) -> Result<usize, StateError> {
        let Some(mut loaded) = self.store.reload().await? else {
            return Ok(self.sched.len());
        };
        let entries: Vec<crate::entry::Entry> =
            self.sched.iter().map(|(e, _, _)| (**e).clone()).collect();
        for e in entries {
            self.sched.remove(&e.name);
            let st = loaded.remove(&e.name);
            self.sched.upsert(e, st, now);
        }
        self.states = loaded;
        let all = self.sched.states().collect();
        self.store
            .save(all, &self.dirty.removed, Some(fence))
            .await?;
        self.dirty.clear();
        Ok(self.sched.len())
    }

    /// Follows the lease's role: a new term pauses dispatch (the state is
    /// reloaded before resuming), standing by pauses it. True if it changed.
    fn follow_role(&mut self) -> bool {
        let Some(h) = &mut self.ha else {
            return false;
        };
        let role = h.role.borrow_and_update().clone();
        match role {
            Role::Leader(t) if self.term.as_ref().map(|c| c.fence) != Some(t.fence) => {
                self.sched.pause();
                self.publisher
                    .headers
                    .insert(FENCE_HEADER.into(), serde_json::json!(t.fence));
                info!(fence = t.fence, instance = %h.lease.token(), "leader: loading run state");
                self.term = Some(t);
                true
            }
            Role::Standby if self.term.is_some() => {
                self.sched.pause();
                self.publisher.headers.remove(FENCE_HEADER);
                info!(instance = %h.lease.token(), "standby: not dispatching");
                self.term = None;
                true
            }
            _ => false,
        }
    }

    /// The lease value of the term we dispatch under, if it is still valid
    /// at `instant`.
    pub(super) fn live_fence(&self, instant: Instant) -> Option<String> {
        let (h, t) = (self.ha.as_ref()?, self.term.as_ref()?);
        let role = h.role.borrow();
        match role.term_at(instant) {
            Some(r) if r.fence == t.fence => Some(t.value.clone()),
            _ => None,
        }
    }

    /// Saves what changed; on a save that failed for now, pauses.
    pub(super) async fn save_or_pause(&mut self) -> Result<(), ServiceError> {
        let instant = self.clock.instant();
        let fence = self.live_fence(instant);
        let r = saving::save(
            self.store.as_ref(),
            &self.sched,
            &mut self.dirty,
            fence.as_deref(),
        );
        if !saved(r.await)? {
            self.sched.pause();
            self.paused_until = Some(instant + self.backoff);
        }
        Ok(())
    }

    /// The standalone start's save of every entry, once.
    pub async fn first_save(&mut self) -> Result<(), ServiceError> {
        if std::mem::take(&mut self.pending_first_save) {
            saved(saving::save_all(self.store.as_ref(), &self.sched, &mut self.dirty).await)?;
        }
        Ok(())
    }

    /// The way out: stops dispatching, saves what is pending and closes
    /// the store with every entry's state.
    pub async fn stop(mut self) -> Result<(), ServiceError> {
        self.sched.pause();
        self.first_save().await?;
        let fence = self.live_fence(self.clock.instant());
        let r = saving::save(
            self.store.as_ref(),
            &self.sched,
            &mut self.dirty,
            fence.as_deref(),
        );
        saved(r.await)?;
        saved(self.store.close(self.sched.states().collect()).await)?;
        info!("scheduler stopped; state saved");
        Ok(())
    }
}
