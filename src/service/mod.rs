//! The run loop: a few lines around [`Beat::tick`], in the manner of
//! Celery's `beat.Service.start`.
//!
//! Each turn reads the [`Clock`] once and hands that `now` to everything
//! the turn does: asking [`crate::engine::Scheduler`] what is due,
//! publishing it, recording the outcomes and saving the run state. It then
//! sleeps until the next run (at most [`SLEEP_CAP`], so clock steps are
//! noticed), a command, a change of role or shutdown.
//!
//! The loop holds only ports: a [`Broker`], a [`StateStore`], optionally a
//! [`Lease`] with the role its keeper publishes, and the clock. It never
//! names a backend. Other parts of the process (the HTTP API, file reloads,
//! database change listeners) reach it through the [`inbox`].
//!
//! **Invariant:** only this loop (and the clock seam) reads the wall clock
//! on the dispatch path, once per turn; nothing is published without the
//! lease (with one) and without its state being saved in the same turn.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::entry::Entry;
use crate::ports::broker::Broker;
use crate::ports::clock::Clock;
use crate::ports::lease::{Lease, Role};
use crate::ports::store::StateStore;
use crate::state::EntryState;

mod beat;
mod commands;
mod dispatch;
pub mod inbox;
mod saving;
#[cfg(test)]
mod tests;

pub use beat::Beat;
pub use inbox::{Command, Handle, channel};

/// The longest single sleep.
pub const SLEEP_CAP: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);

/// Header names carrying the dispatcher's identity.
pub const FENCE_HEADER: &str = "metronome_fence";
pub const INSTANCE_HEADER: &str = "metronome_instance";

/// Errors that stop the service: the run state cannot be kept at all.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    State(Box<dyn std::error::Error + Send + Sync>),
}

/// Leadership, for instances sharing a lease (`--lock`). The run state
/// store is then one the instances share.
pub struct Ha {
    /// The role kept by [`crate::lease::keeper::run`].
    pub role: watch::Receiver<Role>,
    /// Asked just before a publish the broker cannot fence by itself. Its
    /// token is this instance's id, sent as `metronome_instance`.
    pub lease: Arc<dyn Lease>,
}

/// What the loop is built from.
pub struct Parts {
    /// The entries to start with.
    pub entries: Vec<Arc<Entry>>,
    /// Where run state is kept, and what it held at start (by name; an
    /// entry added later by a command also starts from its saved state).
    pub store: Box<dyn StateStore>,
    pub states: BTreeMap<String, EntryState>,
    pub broker: Box<dyn Broker>,
    /// With a lease, the loop dispatches only while this instance leads,
    /// and reloads the state whenever it (re)starts dispatching.
    pub ha: Option<Ha>,
    pub clock: Arc<dyn Clock>,
}

/// Runs until `shutdown` turns true. State is saved after every batch and
/// on the way out.
pub async fn run(
    parts: Parts,
    mut shutdown: watch::Receiver<bool>,
    mut commands: mpsc::Receiver<Command>,
) -> Result<(), ServiceError> {
    let mut beat = Beat::start(parts);
    while !*shutdown.borrow() {
        let wake_at = beat.tick().await?;
        match next_wake(wake_at, &mut shutdown, &mut commands, beat.role_mut()).await {
            Wake::Timer => {}
            Wake::Shutdown => break,
            Wake::Command(cmd) => beat.command(cmd).await?,
        }
        // After the wake is handled: a readiness probe that woke us is
        // answered first.
        beat.first_save().await?;
    }
    beat.stop().await
}

enum Wake {
    Timer,
    Shutdown,
    Command(Command),
}

/// Sleeps until `at`, a shutdown request, a command or a change of role,
/// whichever comes first.
async fn next_wake(
    at: Instant,
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
        _ = tokio::time::sleep_until(at) => if *shutdown.borrow() { Wake::Shutdown } else { Wake::Timer },
        _ = shutdown.changed() => Wake::Shutdown,
        Some(cmd) = commands.recv() => Wake::Command(cmd),
        _ = role_changed => Wake::Timer,
    }
}
