//! The loop's inbox: how the HTTP API, file reloads and database change
//! listeners reach the scheduler.
//!
//! They send [`Command`]s through a [`Handle`]; the loop applies them
//! between turns, so the scheduler is only ever touched by one task and
//! needs no locks. This is the only part of [`crate::service`] that sources
//! and `http` import.

use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::engine::Scheduler;
use crate::entry::Entry;
use crate::ports::broker::PublishError;

/// A request to the running loop.
pub enum Command {
    /// Add or replace entries (a reload or an edit).
    Upsert(Vec<Arc<Entry>>),
    /// Remove entries by name.
    Remove(Vec<String>),
    /// Publish one run of an entry now, with a fresh task id.
    RunNow {
        name: String,
        reply: oneshot::Sender<Result<Uuid, RunNowError>>,
    },
    /// Read the scheduler's current view.
    Inspect(Box<dyn FnOnce(&Scheduler) + Send>),
}

/// Why a run-now request was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunNowError {
    #[error("no schedule named `{0}`")]
    NoSuchSchedule(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("the broker returned no result")]
    NoResult,
    #[error("the scheduler has stopped")]
    Stopped,
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
    pub async fn run_now(&self, name: &str) -> Result<Uuid, RunNowError> {
        let (reply, rx) = oneshot::channel();
        if !self
            .send(Command::RunNow {
                name: name.to_string(),
                reply,
            })
            .await
        {
            return Err(RunNowError::Stopped);
        }
        rx.await.unwrap_or(Err(RunNowError::Stopped))
    }
}

/// The outcome of the latest reload attempt, for the API and metrics.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct ReloadStatus {
    /// The schedule files watched.
    pub files: Vec<String>,
    /// When the files were last read after a change or SIGHUP (RFC 3339).
    #[schema(value_type = Option<String>)]
    pub last_attempt: Option<Timestamp>,
    /// When a version was last accepted (RFC 3339).
    #[schema(value_type = Option<String>)]
    pub last_success: Option<Timestamp>,
    /// The errors of the last attempt; empty when it succeeded.
    pub errors: Vec<String>,
    /// Accepted reloads since start.
    pub reloads: u64,
    /// Rejected reloads since start.
    pub failures: u64,
}

impl ReloadStatus {
    /// The figures the reload metrics show.
    pub fn metrics(&self) -> crate::metrics::Reloads {
        crate::metrics::Reloads {
            applied: self.reloads,
            failures: self.failures,
            ok: self.errors.is_empty(),
            last_success: self.last_success,
        }
    }
}

/// Shared view of [`ReloadStatus`]: written by the file watcher, read by
/// the API.
pub type SharedStatus = Arc<Mutex<ReloadStatus>>;
